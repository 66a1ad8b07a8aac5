#!/usr/bin/env python3
"""Adds an account to a users file, or changes its password.

Usage: users_file_add.py USERS_FILE user@server
The password is read from the terminal (or, when stdin is not a terminal, from its first line).
USERS_FILE_ITERATIONS sets the PBKDF2 cost (default 200000).

Creates USERS_FILE if it does not exist. Run it as the service user (sudo -u extauth ...) or as
root: as root, a new file gets the owner and group of its directory and an existing one keeps its
own, so the auth scripts can still read it.
"""
import getpass
import os
import pwd
import sys

from users_file import UsersFile


def main():
    if len(sys.argv) != 3 or "@" not in sys.argv[2] or ":" in sys.argv[2]:
        sys.stderr.write("usage: users_file_add.py USERS_FILE user@server\n")
        return 2
    path, jid = sys.argv[1], sys.argv[2]
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {jid}: ")
        if getpass.getpass("again: ") != password:
            sys.stderr.write("passwords differ\n")
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        sys.stderr.write("empty password refused\n")
        return 1
    try:
        added = UsersFile(path).set_or_add(jid, password)
        st = os.stat(path)
    except OSError as error:
        sys.stderr.write(f"cannot update {error.filename or path}: {error.strerror}\n")
        return 1
    owner = pwd.getpwuid(st.st_uid).pw_name if _has_uid(st.st_uid) else st.st_uid
    print(f"{'added' if added else 'password changed for'} {jid} in {path} (owner {owner}, mode {st.st_mode & 0o777:04o})")
    return 0


def _has_uid(uid):
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


if __name__ == "__main__":
    sys.exit(main())
