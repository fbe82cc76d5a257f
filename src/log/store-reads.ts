// The log's store and the reads every part of the log shares: the latest checkpoint (briefly
// cached) and the hashes of stored nodes.
//
// Storage. log_leaves maps index → leaf hash (and attestation id): level 0 of the tree; log_nodes
// holds the hash of every perfect subtree above it (level ≥ 1, index), written once when its last
// leaf arrives and never changed;
// log_checkpoints holds every signed checkpoint by tree size. A proof for any size up to the
// current one is assembled from O(log n) stored nodes (src/core/merkle.ts).
import { desc, sql } from 'drizzle-orm';
import { fromHex } from '../core/bytes.ts';
import { type NodeId, nodeKey } from '../core/merkle.ts';
import { type Db, type Tx, rowsOf, schema } from '../db/index.ts';
import type { CheckpointRecord } from './api.ts';

/** How long the latest checkpoint is reused for receipts before it is read again. */
const CHECKPOINT_CACHE_MS = 100;

/** The log's tables. */
export const logTables = { cp: schema.logCheckpoints, leaves: schema.logLeaves, nodes: schema.logNodes, queue: schema.logQueue, att: schema.attestations };
const t = logTables;

export interface StoreReads {
  /** The latest checkpoint, read now (in `q`, a transaction, when given). */
  readLatest(q?: Db | Tx): Promise<CheckpointRecord | null>;
  /** The latest checkpoint, read from the store (concurrent callers share one read). */
  latestCheckpoint(): Promise<CheckpointRecord | null>;
  /** The cached checkpoint when fresh and covering `atLeast` leaves, else a fresh read. */
  currentCheckpoint(atLeast?: number): Promise<CheckpointRecord | null>;
  currentSize(atLeast?: number): Promise<number>;
  /** Caches a checkpoint just committed (the sequencer's). */
  remember(cp: CheckpointRecord): void;
  /** One query for a set of perfect-subtree hashes: level 0 (leaf hashes) from log_leaves, the
   *  levels above from log_nodes. */
  readNodes(q: Db | Tx, ids: readonly NodeId[]): Promise<Map<string, Uint8Array>>;
}

export function createStoreReads(db: Db): StoreReads {
  // ── latest checkpoint (briefly cached for receipts) ──────────────────────────────────────
  let cache: { cp: CheckpointRecord | null; at: number } | null = null;
  let inflight: Promise<CheckpointRecord | null> | null = null;

  async function readLatest(q: Db | Tx = db): Promise<CheckpointRecord | null> {
    const [row] = await q.select().from(t.cp).orderBy(desc(t.cp.treeSize)).limit(1);
    return row ? { size: row.treeSize, rootHash: row.rootHash, note: row.note } : null;
  }

  async function latestCheckpoint(): Promise<CheckpointRecord | null> {
    inflight ??= readLatest().finally(() => {
      inflight = null;
    });
    const cp = await inflight;
    cache = { cp, at: Date.now() };
    return cp;
  }

  async function currentCheckpoint(atLeast = 0): Promise<CheckpointRecord | null> {
    const c = cache;
    if (c && Date.now() - c.at <= CHECKPOINT_CACHE_MS && (c.cp?.size ?? 0) >= atLeast) return c.cp;
    const cp = await latestCheckpoint();
    if ((cp?.size ?? 0) >= atLeast) return cp;
    // The shared read may have started before the checkpoint the caller knows of committed.
    const fresh = await readLatest();
    cache = { cp: fresh, at: Date.now() };
    return fresh;
  }

  async function currentSize(atLeast = 0): Promise<number> {
    return (await currentCheckpoint(atLeast))?.size ?? 0;
  }

  // ── node reads ───────────────────────────────────────────────────────────────────────────
  async function readNodes(q: Db | Tx, ids: readonly NodeId[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    if (ids.length === 0) return out;
    const leaves = JSON.stringify(ids.filter((id) => id.level === 0).map((id) => id.index.toString()));
    const nodes = JSON.stringify(ids.filter((id) => id.level > 0).map((id) => [id.level, id.index.toString()]));
    const rows = rowsOf<{ level: number; idx: string | number; hash: string }>(
      await q.execute(sql`select 0 as level, idx, encode(leaf_hash, 'hex') as hash from ${t.leaves}
          where idx = any(array(select (jsonb_array_elements_text(${leaves}::jsonb))::bigint))
        union all
        select n.level, n.idx, encode(n.hash, 'hex') from ${t.nodes} n
          join jsonb_array_elements(${nodes}::jsonb) as r on n.level = (r->>0)::int and n.idx = (r->>1)::bigint`),
    );
    for (const r of rows) out.set(nodeKey({ level: Number(r.level), index: BigInt(r.idx) }), fromHexStrict(r.hash));
    return out;
  }

  return {
    readLatest,
    latestCheckpoint,
    currentCheckpoint,
    currentSize,
    remember(cp) {
      cache = { cp, at: Date.now() };
    },
    readNodes,
  };
}

/** A stored hash, read as hex: exactly 32 bytes or the store is corrupt. */
export function fromHexStrict(h: string, what = 'a hash the log store returned'): Uint8Array {
  const b = fromHex(h);
  if (!b || b.length !== 32) throw new Error(`${what} is not 32 bytes`);
  return b;
}
