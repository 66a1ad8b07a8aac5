"""A users file for the example auth scripts: one account per line, `user@server:HASH`.

HASH is `pbkdf2_sha256$ITERATIONS$SALT$DIGEST` (salt and digest in unpadded base64), so the file
never holds a password. Writers take an exclusive lock and replace the file atomically, so
several script processes can share it. Readers reload it when it changes on disk.
"""
import base64
import fcntl
import hashlib
import hmac
import os
import secrets
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


class UsersFile:
    def __init__(self, path):
        self.path = path
        self.accounts = {}
        self.stamp = None

    def _reload(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
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

    def _update(self, change):
        """Applies change(accounts) -> bool under an exclusive lock; writes only if it returns True."""
        with open(self.path + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.stamp = None
            self._reload()
            accounts = dict(self.accounts)
            if not change(accounts):
                return False
            directory = os.path.dirname(os.path.abspath(self.path))
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".users-")
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
                for jid, encoded in sorted(accounts.items()):
                    f.write(f"{jid}:{encoded}\n")
            if os.path.exists(self.path):
                os.chmod(tmp, os.stat(self.path).st_mode & 0o777)
            os.replace(tmp, self.path)
            self.stamp = None
            return True

    def set_password(self, jid, password):
        def change(accounts):
            if jid not in accounts:
                return False
            accounts[jid] = hash_password(password)
            return True
        return self._update(change)

    def register(self, jid, password):
        def change(accounts):
            if jid in accounts:
                return False
            accounts[jid] = hash_password(password)
            return True
        return self._update(change)

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
