// Requests waiting for a proof or a log receipt (`?proof=sync`, `?log=sync`) wait here, without
// polling the store. One subscription per process to each channel (on PostgreSQL: one LISTEN
// connection), fanned out in memory:
// - a proof announcement names its attestation: only that attestation's waiters wake;
// - a log announcement (a new checkpoint) makes ONE query for all log waiters of the process
//   ("which of these are in the log now?"), and only those found wake.
// A woken waiter re-reads its row once. Waits also end after a long safety timeout (a lost
// announcement, e.g. while the LISTEN connection was being replaced, costs a delay, not an answer).
import { sql } from 'drizzle-orm';
import { type Db, rowsOf } from '../db/index.ts';
import { LOG_CHANNEL, PROOF_CHANNEL, type Notifier } from '../db/notify.ts';

export type WakeReason = 'wake' | 'timeout' | 'closed';

export interface Wait {
  readonly woken: Promise<WakeReason>;
  cancel(): void;
}

interface Entry {
  readonly id: string;
  done(reason: WakeReason): void;
}

export class SyncWaiters {
  private readonly proof = new Map<string, Set<Entry>>();
  private readonly log = new Map<string, Set<Entry>>();
  private subscribed: Promise<void> | null = null;
  private unsubscribe: (() => Promise<void>)[] = [];
  private checking = false;
  private checkAgain = false;
  private closed = false;
  private count = 0;

  constructor(
    private readonly db: Db,
    private readonly notifier: Notifier,
    private readonly onCount?: (n: number) => void,
  ) {}

  /** Subscribe (once per process); resolves when announcements are being received. */
  listening(): Promise<void> {
    this.subscribed ??= (async () => {
      let first = true;
      // after a replaced LISTEN connection, announcements may have been missed: everyone re-reads
      const reListen = () => {
        if (first) first = false;
        else this.wakeAll('wake');
      };
      this.unsubscribe.push(await this.notifier.subscribe(PROOF_CHANNEL, (id) => this.wakeSet(this.proof, id, 'wake'), reListen));
      this.unsubscribe.push(await this.notifier.subscribe(LOG_CHANNEL, () => void this.checkLog()));
    })();
    return this.subscribed;
  }

  /** Waiting requests in this process. */
  get size(): number {
    return this.count;
  }

  /** Register a wait for attestation `id`: until its proof job finishes (`proof`) and/or it is
   *  in the log (`log`), `timeoutMs` passes, or close(). Register before re-reading the row, so
   *  that nothing announced in between is missed. */
  wait(id: string, what: { proof: boolean; log: boolean }, timeoutMs: number): Wait {
    if (this.closed) return { woken: Promise.resolve('closed'), cancel: () => {} };
    let done!: (r: WakeReason) => void;
    const woken = new Promise<WakeReason>((resolve) => {
      let settled = false;
      const timer = setTimeout(() => done('timeout'), timeoutMs);
      done = (r) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (what.proof) this.remove(this.proof, entry);
        if (what.log) this.remove(this.log, entry);
        this.setCount(this.count - 1);
        resolve(r);
      };
    });
    const entry: Entry = { id, done: (r) => done(r) };
    if (what.proof) this.add(this.proof, entry);
    if (what.log) this.add(this.log, entry);
    this.setCount(this.count + 1);
    return { woken, cancel: () => done('wake') };
  }

  /** Ends every wait (shutdown): the waiters answer with what they have. */
  async close(): Promise<void> {
    this.closed = true;
    this.wakeAll('closed');
    for (const u of this.unsubscribe.splice(0)) await u().catch(() => undefined);
  }

  private setCount(n: number): void {
    this.count = n;
    this.onCount?.(n);
  }

  private add(map: Map<string, Set<Entry>>, e: Entry): void {
    let s = map.get(e.id);
    if (!s) map.set(e.id, (s = new Set()));
    s.add(e);
  }

  private remove(map: Map<string, Set<Entry>>, e: Entry): void {
    const s = map.get(e.id);
    if (s?.delete(e) && s.size === 0) map.delete(e.id);
  }

  private wakeSet(map: Map<string, Set<Entry>>, id: string, r: WakeReason): void {
    const s = map.get(id);
    if (s) for (const e of [...s]) e.done(r);
  }

  private wakeAll(r: WakeReason): void {
    for (const map of [this.proof, this.log]) for (const s of [...map.values()]) for (const e of [...s]) e.done(r);
  }

  /** One query for every log waiter of this process; announcements arriving meanwhile coalesce
   *  into one more round. */
  private async checkLog(): Promise<void> {
    if (this.checking) {
      this.checkAgain = true;
      return;
    }
    this.checking = true;
    try {
      do {
        this.checkAgain = false;
        if (this.log.size === 0) break;
        const ids = JSON.stringify([...this.log.keys()]);
        let found: string[];
        try {
          found = rowsOf<{ id: string }>(
            await this.db.execute(sql`select attestation_id as id from log_leaves where attestation_id = any(array(select jsonb_array_elements_text(${ids}::jsonb)))`),
          ).map((r) => r.id);
        } catch {
          break; // the store is unreachable: the safety timeout re-reads later
        }
        for (const id of found) this.wakeSet(this.log, id, 'wake');
      } while (this.checkAgain);
    } finally {
      this.checking = false;
    }
  }
}
