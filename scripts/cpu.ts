// CPU time of processes on this machine, read from /proc (Linux only; elsewhere the figures are
// NaN): what the benchmarks use to say where the time per event goes — the server, PostgreSQL,
// the load generator — rather than only how many events per second came out.
import fs from 'node:fs';

const TICK_MS = 1000 / 100; // USER_HZ

function stat(pid: string, file = `/proc/${pid}/stat`): string[] | null {
  try {
    const s = fs.readFileSync(file, 'utf8');
    return [s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')), ...s.slice(s.lastIndexOf(')') + 2).split(' ')];
  } catch {
    return null; // exited meanwhile, or no /proc
  }
}

/** User + system CPU time (ms) of one process, all its threads. */
export function processCpuMs(pid: number): number {
  const f = stat(String(pid));
  return f ? (Number(f[12]) + Number(f[13])) * TICK_MS : NaN;
}

/** User + system CPU time (ms) of a process's main thread only: for Node, the event loop, which
 *  one process cannot spread over more cores (V8's helper threads for GC and compilation are the
 *  rest of processCpuMs). */
export function mainThreadCpuMs(pid: number): number {
  const f = stat(String(pid), `/proc/${pid}/task/${pid}/stat`);
  return f ? (Number(f[12]) + Number(f[13])) * TICK_MS : NaN;
}

/** User + system CPU time (ms) of every PostgreSQL process on this machine (backends and the
 *  background writers alike). */
export function postgresCpuMs(): number {
  let dirs: string[];
  try {
    dirs = fs.readdirSync('/proc');
  } catch {
    return NaN;
  }
  let total = 0;
  for (const d of dirs) {
    if (!/^\d+$/.test(d)) continue;
    const f = stat(d);
    if (f?.[0] === 'postgres') total += (Number(f[12]) + Number(f[13])) * TICK_MS;
  }
  return total;
}

/** Busy CPU time (ms) of the whole machine, every process and the kernel (the first line of
 *  /proc/stat: everything but idle and iowait): with the per-process figures, it shows how much
 *  of the machine's time they account for and how much is left. */
export function machineBusyMs(): number {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest and guest_nice are inside user and nice)
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
    return (user + nice + system + irq + softirq + steal) * TICK_MS;
  } catch {
    return NaN;
  }
}

/** Resident set size (KiB) of one process now (VmRSS), NaN where there is no /proc. */
export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}
