#!/usr/bin/env python3
"""Auth script, generic (line) protocol: `auth:user:server:password` -> `1` or `0`.

Usage: users_file_generic.py USERS_FILE   (see users_file.py for the format)
Works with extauth-component (EXTERNAL_AUTH_PROTOCOL=generic) and Prosody's
mod_auth_external. Reads bytes, so any UTF-8 password (colons included) is handled exactly.
"""
import sys

from users_file import UsersFile, answer, users_file_failed


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: users_file_generic.py USERS_FILE\n")
        return 2
    users = UsersFile(sys.argv[1])
    for raw in sys.stdin.buffer:
        request = raw.rstrip(b"\n").decode("utf-8", "surrogateescape")
        try:
            result = answer(users, request)
        except OSError as error:
            return users_file_failed(error)
        sys.stdout.write("1\n" if result else "0\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
