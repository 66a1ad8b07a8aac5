#!/usr/bin/env python3
"""Auth script, ejabberd extauth protocol: 2-byte big-endian length + `auth:user:server:password`,
answered `00 02 00 01` (yes) or `00 02 00 00` (no).

Usage: users_file_ejabberd.py USERS_FILE   (see users_file.py for the format)
Works with extauth-component (EXTERNAL_AUTH_PROTOCOL=ejabberd) and with ejabberd's own
`auth_method: [external]` / `extauth_program`.
"""
import struct
import sys

from users_file import UsersFile, answer, users_file_failed


def read_exactly(stream, count):
    data = b""
    while len(data) < count:
        chunk = stream.read(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: users_file_ejabberd.py USERS_FILE\n")
        return 2
    users = UsersFile(sys.argv[1])
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = read_exactly(stdin, 2)
        if header is None:
            return 0
        (length,) = struct.unpack(">H", header)
        body = read_exactly(stdin, length)
        if body is None:
            return 0
        try:
            result = answer(users, body.decode("utf-8", "surrogateescape"))
        except OSError as error:
            return users_file_failed(error)
        stdout.write(struct.pack(">HH", 2, 1 if result else 0))
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
