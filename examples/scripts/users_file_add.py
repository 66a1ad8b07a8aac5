#!/usr/bin/env python3
"""Adds an account to a users file, or changes its password.

Usage: users_file_add.py USERS_FILE user@server
The password is read from the terminal (or, when stdin is not a terminal, from its first line).
USERS_FILE_ITERATIONS sets the PBKDF2 cost (default 200000).
"""
import getpass
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
    users = UsersFile(path)
    if users.set_password(jid, password):
        print(f"password changed for {jid}")
    else:
        users.register(jid, password)
        print(f"added {jid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
