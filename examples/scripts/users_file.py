"""A users file for the example auth scripts: one account per line, `user@server:HASH`.

HASH is `pbkdf2_sha256$ITERATIONS$SALT$DIGEST` (salt and digest in unpadded base64), so the file
never holds a password. Writers take an exclusive lock (`USERS_FILE.lock`) and replace the file
atomically through a temporary file in the same directory, so several script processes can share
it; the scripts therefore need write access to the directory, not only to the file. Readers
reload it when it changes on disk.

A file that is missing or cannot be read raises OSError: the auth scripts then exit instead of
answering, so an outage is never mistaken for a wrong password. Run as root (an administrator
adding a user), writers keep the file's owner and group, and give a new file those of its
directory, so the service user can still read it.
"""
import base64
import fcntl
import hashlib
import hmac
import os
import secrets
import sys
import tempfile

DEFAULT_ITERATIONS = int(os.environ.get("USERS_FILE_ITERATIONS", "200000"))


def _b64(data):
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text):
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password, iterations=DEFAULT_ITERATIONS):
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8", "surrogateescape"), salt, iterations)
    return f"pbkdf2_sha256${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password, encoded):
    try:
        scheme, iterations, salt, digest = encoded.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        candidate = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8", "surrogateescape"), _unb64(salt), int(iterations))
        return hmac.compare_digest(candidate, _unb64(digest))
    except (ValueError, TypeError):
        return False


def _keep_owner(fd, like):
    """Run as root, gives the file open at fd the owner and group of `like` (a stat result)."""
    if os.geteuid() == 0:
        os.fchown(fd, like.st_uid, like.st_gid)


class UsersFile:
    def __init__(self, path):
        self.path = path
        self.accounts = {}
        self.stamp = None

    def _reload(self, missing_ok=False):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise
            self.accounts, self.stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self.stamp:
            return
        accounts = {}
        with open(self.path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                line = line.rstrip("\n")
                if line and not line.startswith("#") and ":" in line:
                    jid, encoded = line.split(":", 1)
                    accounts[jid] = encoded
        self.accounts, self.stamp = accounts, stamp

    def check(self, jid, password):
        self._reload()
        encoded = self.accounts.get(jid)
        return encoded is not None and verify_password(password, encoded)

    def exists(self, jid):
        self._reload()
        return jid in self.accounts

    def _update(self, change, create=False):
        """Applies change(accounts) -> bool under an exclusive lock; writes only if it returns True.
        The file must exist unless create is set."""
        directory = os.path.dirname(os.path.abspath(self.path))
        lock_fd = os.open(self.path + ".lock", os.O_RDONLY | os.O_CREAT, 0o600)
        try:
            _keep_owner(lock_fd, os.stat(directory))
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            self.stamp = None
            self._reload(missing_ok=create)
            accounts = dict(self.accounts)
            if not change(accounts):
                return False
            try:
                like = os.stat(self.path)
            except FileNotFoundError:
                like = os.stat(directory)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".users-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
                    for jid, encoded in sorted(accounts.items()):
                        f.write(f"{jid}:{encoded}\n")
                    if os.path.exists(self.path):
                        os.fchmod(f.fileno(), like.st_mode & 0o777)
                    _keep_owner(f.fileno(), like)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
            self.stamp = None
            return True
        finally:
            os.close(lock_fd)

    def set_password(self, jid, password):
        def change(accounts):
            if jid not in accounts:
                return False
            accounts[jid] = hash_password(password)
            return True
        return self._update(change)

    def register(self, jid, password, create=False):
        def change(accounts):
            if jid in accounts:
                return False
            accounts[jid] = hash_password(password)
            return True
        return self._update(change, create)

    def set_or_add(self, jid, password):
        """Sets jid's password, adding the account (and creating the file) if needed.
        Returns True if the account was added."""
        added = []

        def change(accounts):
            added.append(jid not in accounts)
            accounts[jid] = hash_password(password)
            return True
        self._update(change, create=True)
        return added[0]

    def remove(self, jid):
        return self._update(lambda accounts: accounts.pop(jid, None) is not None)


def answer(users, request):
    """Answers one request (the fields as text, without framing): True, False, or None if not understood."""
    kind, _, rest = request.partition(":")
    if kind in ("auth", "setpass", "tryregister"):
        parts = rest.split(":", 2)  # the password is last and may contain colons
        if len(parts) != 3:
            return None
        user, server, password = parts
        jid = f"{user}@{server}"
        if kind == "auth":
            return users.check(jid, password)
        if kind == "setpass":
            return users.set_password(jid, password)
        return users.register(jid, password)
    if kind in ("isuser", "removeuser"):
        parts = rest.split(":")
        if len(parts) != 2:
            return None
        jid = f"{parts[0]}@{parts[1]}"
        return users.exists(jid) if kind == "isuser" else users.remove(jid)
    return None


def users_file_failed(error):
    """Reports a users file that cannot be read or written, and returns the exit status for it.

    The auth scripts exit rather than answer `0`: the component answers the request as a failure
    of the service (the server tells the client to try again later, not that its password is
    wrong) and restarts the script with backoff. Never prints the request: it holds a password.
    """
    sys.stderr.write(
        f"users file error: {error.filename or ''}: {error.strerror} (running as uid {os.geteuid()}; "
        "the file must be readable, and its directory writable for password changes)\n")
    sys.stderr.flush()
    return 1
