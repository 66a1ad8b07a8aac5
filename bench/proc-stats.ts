// What the kernel knows about a process: CPU time and resident memory, from /proc.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** Clock ticks per second for /proc/PID/stat times (USER_HZ: 100 on every Linux build that matters). */
const TICKS_PER_SECOND = 100;

/** user + system CPU time of the process itself (not its children), in milliseconds. */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) may hold spaces and parentheses: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / TICKS_PER_SECOND;
}

export interface MemoryStatus {
  /** Resident set size now, in bytes (VmRSS). */
  rss: number;
  /** Peak resident set size, in bytes (VmHWM). */
  peakRss: number;
}

export function memoryStatus(pid: number): MemoryStatus {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rss: kbField(status, 'VmRSS') * 1024, peakRss: kbField(status, 'VmHWM') * 1024 };
}

/**
 * Resets the peak RSS (VmHWM) to the current RSS (`5` to /proc/PID/clear_refs, Linux ≥ 4.0), so
 * the next reading is the peak of what follows. False when the kernel refused.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

function kbField(status: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) : Number.NaN;
}

/** A CPU-time reading to subtract from a later one. */
export interface CpuMark {
  cpuMs: number;
  at: number;
}

export function cpuMark(pid: number): CpuMark {
  return { cpuMs: cpuTimeMs(pid), at: performance.now() };
}

/** CPU used between two marks, as a fraction of one core. */
export function cpuShare(from: CpuMark, to: CpuMark): number {
  const wall = to.at - from.at;
  return wall > 0 ? (to.cpuMs - from.cpuMs) / wall : Number.NaN;
}

/** The pid of the process whose command line contains `text` (e.g. a server's temp dir). */
export function findPid(text: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(text)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/**
 * CPU time of all the process's threads in milliseconds, at nanosecond resolution (each
 * thread's /proc schedstat): fine enough to tell apart a tenth of a millisecond per login over
 * a hundred logins, which /proc/PID/stat's 10 ms ticks are not.
 */
export function threadsCpuMs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e6;
}
