import { closeSync, readdirSync, readFileSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/**
 * Closes every descriptor we inherited from whoever started us (a test runner's pipe, a
 * supervisor's socket) and do not use. Node opens its own descriptors close-on-exec, but an
 * inherited one without that flag would pass on to every script we spawn. Linux only: where
 * there is no /proc, nothing is done.
 */
export function closeInheritedDescriptors(): number {
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return 0;
  }
  let closed = 0;
  for (const name of names) {
    const fd = Number(name);
    if (!(fd > 2)) continue;
    let flags: number;
    try {
      const match = /^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (!match) continue;
      flags = parseInt(match[1]!, 8);
    } catch {
      continue; // the directory listing's own descriptor, or one closed meanwhile
    }
    if ((flags & O_CLOEXEC) !== 0) continue;
    try {
      closeSync(fd);
      closed++;
    } catch {
      // not ours to close after all
    }
  }
  return closed;
}
