// The log's write side: integrating queued attestations into the tree and signing checkpoints
// (docs/transparency-log.md §3).
//
// Integration is one transaction: lock, read the latest checkpoint, take (delete) a batch of
// queued leaves, read and check the right edge, append the leaves, store leaves and nodes in one
// statement, then sign and store the new checkpoint. Either all of it commits or none of it does,
// so the log never signs a checkpoint that does not extend the previous one and a crash loses
// nothing.
import { inArray, sql } from 'drizzle-orm';
import { bytesEqual, toHex } from '../core/bytes.ts';
import { logLeafBytes } from '../core/binding-v2.ts';
import type { Statement } from '../core/schemas.ts';
import { appendLeaves, leafHash, nodeKey, rootFromNodes, rootNodes } from '../core/merkle.ts';
import { type NoteSigner, signCheckpoint } from '../core/note.ts';
import { type Db, type Tx, LOCK_SEQUENCER, isUniqueViolation, rowsOf } from '../db/index.ts';
import { LOG_CHANNEL, type Notifier } from '../db/notify.ts';
import type { Metrics } from '../service/metrics.ts';
import { type StoreReads, fromHexStrict, logTables as t } from './store-reads.ts';

/** Default and largest number of queued attestations integrated per checkpoint. */
export const DEFAULT_BATCH = 1000;
const MAX_BATCH = 10_000;

export interface IntegratorOptions {
  readonly db: Db;
  readonly origin: string;
  readonly signer: NoteSigner;
  readonly reads: StoreReads;
  readonly notifier?: Notifier;
  readonly metrics?: Metrics;
}

export interface Integrator {
  /** Makes the first (size 0) checkpoint when the log has none. Idempotent. */
  init(): Promise<void>;
  /** One sequencer step. Returns the number of leaves integrated (0 if another process holds the lock). */
  integrate(maxBatch?: number): Promise<number>;
}

export function createIntegrator(opts: IntegratorOptions): Integrator {
  const { db, origin, signer, reads, notifier, metrics } = opts;
  const { readLatest, readNodes } = reads;

  /**
   * One integration round. The usual round takes the queue rows and checks nothing per row
   * against log_leaves: the unique index on log_leaves.attestation_id refuses a leaf for an
   * attestation already in the log, and only then (a unique violation aborts the round) is the
   * round run again in `careful` mode, which looks every queued attestation up in log_leaves and
   * skips those already there. (The attest statement writes a queue row with its attestation and
   * the round deletes it with its leaf, so a leftover does not arise in normal operation; the
   * careful look-up cost PostgreSQL ~6 µs per leaf, a fifth of a round.)
   */
  async function integrate(maxBatch: number = DEFAULT_BATCH): Promise<number> {
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 0 || maxBatch > MAX_BATCH) {
      throw new RangeError(`maxBatch must be an integer in [0, ${MAX_BATCH}]`);
    }
    // Nothing queued and a checkpoint signed: one statement instead of a round's transaction (a
    // lock, the checkpoint, the queue), which an idle sequencer's poll would otherwise pay every
    // interval (~45 ms of CPU a second on an idle 2-vCPU server). A row that commits right after
    // this look is taken by the next round, as it would be after an empty round.
    if (maxBatch > 0) {
      checkpointed ||= (await readLatest()) !== null; // a process that never holds the lock learns it too
      if (checkpointed && !(await anyQueued())) return 0;
    }
    try {
      return await integrateRound(maxBatch, false);
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      // A leaf (or node) is already there: a leftover queue row, or a store another writer
      // touched. The careful round skips leftovers; anything else fails again, loudly.
      return integrateRound(maxBatch, true);
    }
  }

  /** True once a checkpoint is known to be signed (read from the store, or signed here). */
  let checkpointed = false;
  const anyQueued = async () => rowsOf<{ queued: boolean }>(await db.execute(sql`select exists (select 1 from ${t.queue} order by id limit 1) as queued`))[0]?.queued !== false;

  async function integrateRound(maxBatch: number, careful: boolean): Promise<number> {
    const signed = await db.transaction(async (tx) => {
      // A single logical writer: whoever holds the lock integrates; everyone else skips this round.
      const lock = rowsOf<{ locked: boolean }>(await tx.execute(sql`select pg_try_advisory_xact_lock(${LOCK_SEQUENCER}::bigint) as locked`));
      if (lock[0]?.locked !== true) return null;

      const latest = await readLatest(tx);
      // Take (delete) the oldest queue rows, exactly those read: a row with a lower id may commit
      // later; it stays queued for the next round. The delete is undone if the round fails.
      const queued =
        maxBatch === 0
          ? []
          : rowsOf<{ attestation_id: string; leaf_hash: string | null }>(
              await tx.execute(sql`with d as (
                  delete from ${t.queue} where id = any(array(select id from ${t.queue} order by id limit ${maxBatch}))
                  returning id, attestation_id, leaf_hash
                ) select attestation_id, encode(leaf_hash, 'hex') as leaf_hash from d order by id`),
            );
      if (latest && queued.length === 0) return null;

      const size = BigInt(latest?.size ?? 0);
      const edgeIds = rootNodes(size);
      const stored = await readNodes(tx, edgeIds);
      const edge = edgeIds.map((id) => {
        const h = stored.get(nodeKey(id));
        if (!h) throw new Error(`log store is missing right-edge node ${nodeKey(id)} of size ${size}`);
        return h;
      });
      // Refuse to extend a tree whose stored right edge does not fold to the signed root.
      if (latest && !bytesEqual(rootFromNodes(edge), latest.rootHash)) {
        throw new Error(`log store is inconsistent: the right edge of size ${size} does not match its checkpoint root`);
      }

      const leaves = await loadLeaves(tx, queued, careful);
      const appended = appendLeaves(size, edge, leaves.map((l) => l.hash));
      const first = Number(size);
      const end = Number(appended.size);
      if (latest && end === first) return null; // only stale queue rows were removed

      // Leaves and the perfect subtrees above them (level 0 is the leaves) in one statement; the
      // rows travel as one jsonb parameter each (hashes in hex). Only once they are stored is the
      // checkpoint signed: a round that fails (a leftover, a squatting row) signs nothing.
      const leafRows = JSON.stringify(leaves.map((l, i) => [first + i, l.attestationId, l.hex]));
      const nodeRows = JSON.stringify(appended.nodes.filter((n) => n.level > 0).map((n) => [n.level, n.index.toString(), toHex(n.hash)]));
      await tx.execute(sql`with l as (
          insert into ${t.leaves} (idx, attestation_id, leaf_hash)
          select (r->>0)::bigint, r->>1, decode(r->>2, 'hex') from jsonb_array_elements(${leafRows}::jsonb) as r
        )
        insert into ${t.nodes} (level, idx, hash)
        select (r->>0)::int, (r->>1)::bigint, decode(r->>2, 'hex') from jsonb_array_elements(${nodeRows}::jsonb) as r`);
      const note = signCheckpoint({ origin, size: appended.size, rootHash: appended.root }, signer);
      await tx.insert(t.cp).values({ treeSize: end, rootHash: appended.root, note });
      return { cp: { size: end, rootHash: appended.root, note }, count: end - first };
    });
    if (!signed) return 0;
    checkpointed = true;
    reads.remember(signed.cp);
    metrics?.logLeaves.inc(signed.count);
    // committed: tell waiting requests (never fails the round; waiters have a safety timeout)
    await notifier?.notify(LOG_CHANNEL, String(signed.cp.size)).catch(() => undefined);
    return signed.count;
  }

  /**
   * Leaf hashes of the queued attestations, in queue order. The attest statement stores each
   * leaf hash with its queue row (docs/transparency-log.md §1: the hash of the leaf data of the
   * statement it has just signed); rows queued without one are hashed here from the stored
   * statement. A repeat of an attestation within the batch is skipped (nothing in the schema
   * refuses a second queue row for an attestation; it is deleted with the batch, so the log still
   * holds each attestation once and the sequencer never stalls on it). In `careful` mode rows
   * whose attestation is already in the log are skipped too (see integrate).
   */
  async function loadLeaves(
    tx: Tx,
    queued: readonly { attestation_id: string; leaf_hash: string | null }[],
    careful: boolean,
  ): Promise<{ attestationId: string; hash: Uint8Array; hex: string }[]> {
    if (queued.length === 0) return [];
    const logged = new Set<string>();
    if (careful) {
      const ids = JSON.stringify(queued.map((q) => q.attestation_id));
      const rows = await tx.select({ id: t.leaves.attestationId }).from(t.leaves).where(sql`${t.leaves.attestationId} = any(array(select jsonb_array_elements_text(${ids}::jsonb)))`);
      for (const r of rows) logged.add(r.id);
    }
    const missing = queued.filter((q) => q.leaf_hash === null && !logged.has(q.attestation_id)).map((q) => q.attestation_id);
    const statements = new Map<string, unknown>();
    if (missing.length) {
      const rows = await tx
        .select({ id: t.att.id, statement: sql<unknown>`${t.att.bundle} -> 'attestation' -> 'statement'` })
        .from(t.att)
        .where(inArray(t.att.id, missing));
      for (const r of rows) statements.set(r.id, typeof r.statement === 'string' ? (JSON.parse(r.statement) as unknown) : r.statement);
    }
    const out: { attestationId: string; hash: Uint8Array; hex: string }[] = [];
    for (const q of queued) {
      const id = q.attestation_id;
      if (logged.has(id)) continue;
      logged.add(id);
      if (q.leaf_hash !== null) {
        out.push({ attestationId: id, hash: fromHexStrict(q.leaf_hash, `queued leaf hash of ${id}`), hex: q.leaf_hash });
        continue;
      }
      const statement = statements.get(id);
      if (statement === undefined) continue; // no such attestation: a leftover queue row
      if (!statement || typeof statement !== 'object' || Array.isArray(statement)) {
        throw new Error(`attestation ${id} has no statement to log`);
      }
      const hash = leafHash(logLeafBytes(statement as Statement));
      out.push({ attestationId: id, hash, hex: toHex(hash) });
    }
    return out;
  }

  async function init(): Promise<void> {
    if (await readLatest()) return;
    await integrate(0); // signs size 0 unless another process holds the lock (it then does)
  }

  return { init, integrate };
}
