#!/usr/bin/env python3
"""Auth script, tagged protocol, in Python with asyncio: many requests at once in one process.

    request:  ID:KIND:USER:SERVER[:PASSWORD]\\n   (KIND: auth isuser setpass tryregister removeuser)
    answer:   ID:1\\n (yes), ID:0\\n (no) or ID:E\\n (my backend failed), in any order

Each request is handled in a task of its own, so a slow backend call holds up nothing else; the
component may send the next requests before this one is answered. The backend here is a
stand-in: a dictionary behind a simulated network call that takes TAGGED_EXAMPLE_DELAY_MS
(default 20) and fails for users whose name starts with `outage`, or at random with probability
TAGGED_EXAMPLE_FAILURE_RATE (default 0). Replace `Backend` with your database or HTTP client.

Run it with EXTERNAL_AUTH_PROTOCOL=tagged. Accounts: alice/wonderland, bob/builder.
"""
import asyncio
import os
import random
import sys

DELAY = float(os.environ.get("TAGGED_EXAMPLE_DELAY_MS", "20")) / 1000
FAILURE_RATE = float(os.environ.get("TAGGED_EXAMPLE_FAILURE_RATE", "0"))


class BackendError(Exception):
    pass


class Backend:
    """Stands in for a database or an HTTP service: every call takes a while and may fail."""

    def __init__(self):
        self.passwords = {"alice": "wonderland", "bob": "builder"}

    async def call(self, user):
        await asyncio.sleep(DELAY)
        if user.startswith("outage") or random.random() < FAILURE_RATE:
            raise BackendError("backend unreachable")

    async def handle(self, kind, user, server, password):
        await self.call(user)
        known = user in self.passwords
        if kind == "auth":
            return known and self.passwords[user] == password
        if kind == "isuser":
            return known
        if kind == "setpass":
            if known:
                self.passwords[user] = password
            return known
        if kind == "tryregister":
            if not known:
                self.passwords[user] = password
            return not known
        if kind == "removeuser":
            return self.passwords.pop(user, None) is not None
        return False


def parse(line):
    """(id, kind, user, server, password or None), or None when the line has no usable id."""
    parts = line.split(":", 4)  # the password is last and may contain colons
    if len(parts) < 4 or not parts[0]:
        return None
    request_id, kind, user, server = parts[:4]
    return request_id, kind, user, server, parts[4] if len(parts) == 5 else None


def reply(request_id, answer):
    # One write per answer, flushed at once: the component is waiting for it.
    sys.stdout.buffer.write(f"{request_id}:{answer}\n".encode("ascii"))
    sys.stdout.buffer.flush()


async def serve(backend, request_id, kind, user, server, password):
    try:
        reply(request_id, "1" if await backend.handle(kind, user, server, password) else "0")
    except BackendError as error:
        # Never log the request itself: it holds a password.
        sys.stderr.write(f"backend failed: {error}\n")
        reply(request_id, "E")


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    backend = Backend()
    tasks = set()
    while raw := await reader.readline():
        # Bytes in, decoded exactly: any UTF-8 password, colons included.
        request = parse(raw.rstrip(b"\n").decode("utf-8", "surrogateescape"))
        if request is None:
            sys.stderr.write("ignored a request without an id\n")
            continue
        task = asyncio.create_task(serve(backend, *request))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    # End of input: the component is closing us; finish what is in flight.
    if tasks:
        await asyncio.wait(tasks)


if __name__ == "__main__":
    asyncio.run(main())
