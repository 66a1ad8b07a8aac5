#!/usr/bin/env python3
"""Auth script, tagged protocol: `ID:auth:user:server:password` -> `ID:1`, `ID:0` or `ID:E`.

Usage: users_file_tagged.py USERS_FILE   (see users_file.py for the format)
Works with extauth-component (EXTERNAL_AUTH_PROTOCOL=tagged). Requests are served by a few
threads (USERS_FILE_THREADS, default 4), so one process checks several passwords at once:
the hash is the slow part and hashlib releases the GIL while it works. A users file that
cannot be read is answered `ID:E` (an outage, never a refusal). Reads bytes, so any UTF-8
password (colons included) is handled exactly.
"""
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from users_file import UsersFile, answer

THREADS = int(os.environ.get("USERS_FILE_THREADS", "4"))


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: users_file_tagged.py USERS_FILE\n")
        return 2
    path = sys.argv[1]
    local = threading.local()  # one UsersFile (and its cache) per thread: nothing shared
    write_lock = threading.Lock()

    def reply(request_id, result):
        with write_lock:
            sys.stdout.buffer.write(f"{request_id}:{result}\n".encode("ascii"))
            sys.stdout.buffer.flush()

    def serve(request_id, request):
        if not hasattr(local, "users"):
            local.users = UsersFile(path)
        try:
            result = answer(local.users, request)
        except OSError as error:
            # Never print the request: it holds a password.
            sys.stderr.write(f"users file error: {error.strerror}\n")
            reply(request_id, "E")
            return
        except Exception as error:  # a bug here must not leave the request unanswered
            sys.stderr.write(f"internal error: {type(error).__name__}\n")
            reply(request_id, "E")
            return
        reply(request_id, "1" if result else "0")

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for raw in sys.stdin.buffer:
            request_id, sep, request = raw.rstrip(b"\n").decode("utf-8", "surrogateescape").partition(":")
            if not sep or not request_id:
                sys.stderr.write("ignored a request without an id\n")
                continue
            pool.submit(serve, request_id, request)
    return 0


if __name__ == "__main__":
    sys.exit(main())
