#!/usr/bin/env node
// Auth script, tagged protocol, in Node: many requests at once in one process.
//
//   request:  ID:KIND:USER:SERVER[:PASSWORD]\n   (KIND: auth isuser setpass tryregister removeuser)
//   answer:   ID:1\n (yes), ID:0\n (no) or ID:E\n (my backend failed), in any order
//
// Each request is handled on its own, so a slow backend call holds up nothing else; the component
// may send the next requests before this one is answered. The backend here is a stand-in: a Map
// behind a simulated network call that takes TAGGED_EXAMPLE_DELAY_MS (default 20) and fails for
// users whose name starts with `outage`, or at random with probability TAGGED_EXAMPLE_FAILURE_RATE
// (default 0). Replace `backend` with your database or HTTP client.
//
// Run it with EXTERNAL_AUTH_PROTOCOL=tagged. Accounts: alice/wonderland, bob/builder.
import { setTimeout as sleep } from 'node:timers/promises';

const DELAY_MS = Number(process.env.TAGGED_EXAMPLE_DELAY_MS ?? 20);
const FAILURE_RATE = Number(process.env.TAGGED_EXAMPLE_FAILURE_RATE ?? 0);

class BackendError extends Error {}

const backend = {
  passwords: new Map([
    ['alice', 'wonderland'],
    ['bob', 'builder'],
  ]),

  // Stands in for a database or an HTTP service: every call takes a while and may fail.
  async call(user) {
    await sleep(DELAY_MS);
    if (user.startsWith('outage') || Math.random() < FAILURE_RATE) throw new BackendError('backend unreachable');
  },

  async handle(kind, user, server, password) {
    await this.call(user);
    const known = this.passwords.has(user);
    switch (kind) {
      case 'auth':
        return known && this.passwords.get(user) === password;
      case 'isuser':
        return known;
      case 'setpass':
        if (known) this.passwords.set(user, password);
        return known;
      case 'tryregister':
        if (!known) this.passwords.set(user, password);
        return !known;
      case 'removeuser':
        return this.passwords.delete(user);
      default:
        return false;
    }
  },
};

// Stdout is a pipe: each write goes out at once, one answer per write.
const reply = (id, answer) => process.stdout.write(`${id}:${answer}\n`);

async function serve(line) {
  const parts = line.split(':');
  const [id, kind, user, server] = parts;
  if (parts.length < 4 || id === '') {
    process.stderr.write('ignored a request without an id\n');
    return;
  }
  const password = parts.length > 4 ? parts.slice(4).join(':') : undefined; // passwords may hold colons
  try {
    reply(id, (await backend.handle(kind, user, server, password)) ? '1' : '0');
  } catch (error) {
    // Never log the request itself: it holds a password.
    process.stderr.write(`backend failed: ${error.message}\n`);
    reply(id, 'E');
  }
}

// Bytes in, split at each newline byte, then decoded: any UTF-8 password is read exactly.
let pending = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  let newline;
  while ((newline = pending.indexOf(0x0a)) !== -1) {
    void serve(pending.subarray(0, newline).toString('utf8'));
    pending = pending.subarray(newline + 1);
  }
});
// At end of input Node exits by itself once the answers in flight have been written.
