// One writer per embedded store. PGlite keeps no lock of its own, so two processes on one
// DATA_DIR would both open it and fork the log and the chains. A process takes this lock before
// opening the store and holds it until it exits.
//
// The lock is a file beside the store, made with link(2) from a fully written temporary file
// (atomic: it either exists with its whole content or not at all). It records the holder's pid,
// the holder's start time as the kernel counts it (Linux: /proc/<pid>/stat field 22, with the
// boot id), its host name and the time it was taken. A lock is stale, and is taken over, when it
// was made on this host and its pid is not running, or is running but started at another time
// (a recycled pid), or is this very process's pid (a previous incarnation, as in a container
// restarted with pid 1). A lock from another host, or one that cannot be read, is never taken
// over: the operator is told which file to remove.
//
// Taking over a stale lock renames it to a name of our own first, so that of several processes
// that found the same stale lock exactly one removes it; one that moved a fresh lock instead (the
// stale one having been replaced meanwhile) puts it back at once.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export interface LockInfo {
  readonly pid: number;
  readonly host: string;
  /** The pid's start time in clock ticks since boot (Linux), null elsewhere. */
  readonly start: string | null;
  readonly boot: string | null;
  readonly taken_at: string;
}

/** The store is in use (or its lock cannot be judged). `message` is one line for the operator. */
export class StoreLockedError extends Error {
  override readonly name = 'StoreLockedError';
  constructor(
    message: string,
    readonly lockFile: string,
    readonly holder: LockInfo | null,
  ) {
    super(message);
  }
}

export interface StoreLock {
  readonly file: string;
  readonly info: LockInfo;
  /** Remove the lock if it is still ours. Idempotent; also runs on process exit. */
  release(): void;
}

const readOrNull = (file: string): string | null => {
  try {
    return fs.readFileSync(file, 'utf8').trim() || null;
  } catch {
    return null;
  }
};

const BOOT_ID = '/proc/sys/kernel/random/boot_id';

/** Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), or null. */
export function processStart(pid: number): string | null {
  const stat = readOrNull(`/proc/${pid}/stat`);
  if (!stat) return null;
  // the command name (field 2) is in parentheses and may hold spaces or parentheses itself
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19] ?? null; // fields[0] is field 3
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, belongs to someone else
  }
}

function parse(text: string | null): LockInfo | null {
  if (!text) return null;
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (!Number.isSafeInteger(v.pid) || (v.pid as number) <= 0 || typeof v.host !== 'string' || typeof v.taken_at !== 'string') return null;
    return { pid: v.pid!, host: v.host, start: typeof v.start === 'string' ? v.start : null, boot: typeof v.boot === 'string' ? v.boot : null, taken_at: v.taken_at };
  } catch {
    return null;
  }
}

/** Whether the holder recorded in `info` is gone, judged from this host. */
export function isStale(info: LockInfo, self: { pid: number; host: string; boot: string | null } = { pid: process.pid, host: os.hostname(), boot: readOrNull(BOOT_ID) }): boolean {
  if (info.host !== self.host) return false; // cannot see another host's processes
  if (info.pid === self.pid) return true; // not taken by us yet: an earlier process with our pid
  if (info.boot && self.boot && info.boot !== self.boot) return true; // taken before a reboot
  if (!running(info.pid)) return true;
  const start = processStart(info.pid);
  return !!(info.start && start && start !== info.start); // the pid now belongs to another process
}

/** Lock files this process holds: a second open of the same store in this process is refused too
 *  (the own-pid rule of isStale would otherwise take the lock over). */
const heldHere = new Set<string>();

const describe = (dir: string, info: LockInfo) =>
  `${dir} is in use: its embedded store is locked by pid ${info.pid} on ${info.host} (since ${info.taken_at}); ` +
  'one process per DATA_DIR: stop that process, give this one another DATA_DIR, or use PostgreSQL (DATABASE_URL) for several processes';

/**
 * Take the lock of the store at `storeDir` (the file `<storeDir>.lock`), or throw
 * StoreLockedError naming the holder. `dir` is what the message calls the directory.
 */
export function acquireStoreLock(storeDir: string, dir = path.dirname(storeDir)): StoreLock {
  const file = `${storeDir}.lock`;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const info: LockInfo = { pid: process.pid, host: os.hostname(), start: processStart(process.pid), boot: readOrNull(BOOT_ID), taken_at: new Date().toISOString() };
  const text = `${JSON.stringify(info)}\n`;
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}`;
  fs.writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        fs.linkSync(tmp, file);
        return held(file, text, info);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const seen = readOrNull(file);
      if (seen === null) continue; // released meanwhile
      const holder = parse(seen);
      if (holder && heldHere.has(file)) throw new StoreLockedError(describe(dir, holder), file, holder);
      if (!holder) throw new StoreLockedError(`${dir}: the lock file ${file} cannot be read as a lock; if no process uses ${dir}, remove it`, file, null);
      if (!isStale(holder)) throw new StoreLockedError(describe(dir, holder), file, holder);
      takeOver(file, seen);
    }
    throw new StoreLockedError(`${dir}: could not take the lock ${file} (other processes keep taking it)`, file, null);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Remove the stale lock whose text is `stale`, unless another process has replaced it. */
function takeOver(file: string, stale: string): void {
  const moved = `${file}.stale.${process.pid}.${randomBytes(6).toString('hex')}`;
  try {
    fs.renameSync(file, moved);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // another process removed it
    throw e;
  }
  if (readOrNull(moved) !== stale.trim()) {
    // a fresh lock, made after we read the stale one: give it back to its owner
    try {
      fs.linkSync(moved, file);
    } catch {
      /* a third process has made a lock meanwhile: its lock stands */
    }
  }
  fs.rmSync(moved, { force: true });
}

function held(file: string, text: string, info: LockInfo): StoreLock {
  let released = false;
  heldHere.add(file);
  const release = () => {
    if (released) return;
    released = true;
    heldHere.delete(file);
    process.off('exit', release);
    if (readOrNull(file) === text.trim()) fs.rmSync(file, { force: true });
  };
  process.on('exit', release);
  return { file, info, release };
}
