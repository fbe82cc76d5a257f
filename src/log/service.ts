// The transparency log over the store (DESIGN §6): a sequencer that integrates queued
// attestations in batches under a Postgres advisory lock, and the read side that serves
// checkpoints, receipts, inclusion/consistency proofs and entries.
//
// Storage. log_leaves maps index → leaf hash (and attestation id): level 0 of the tree; log_nodes
// holds the hash of every perfect subtree above it (level ≥ 1, index), written once when its last
// leaf arrives and never changed;
// log_checkpoints holds every signed checkpoint by tree size. A proof for any size up to the
// current one is assembled from O(log n) stored nodes (src/core/merkle.ts).
//
// Integration is one transaction: lock, read the latest checkpoint, take (delete) a batch of
// queued leaves, read and check the right edge, append the leaves, store leaves and nodes in one
// statement, then sign and store the new checkpoint. Either all of it commits or none of it does,
// so the log never signs a checkpoint that does not extend the previous one and a crash loses
// nothing.
import fs from 'node:fs';
import path from 'node:path';
import { and, asc, desc, eq, gte, inArray, lt, sql } from 'drizzle-orm';
import type { Hono, Env as HonoEnv, Context } from 'hono';
import { bytesEqual, fromHex, toB64, toHex } from '../core/bytes.ts';
import { logLeafBytes } from '../core/binding-v2.ts';
import type { Statement } from '../core/schemas.ts';
import { type SigningKey, generateSigningKey, signingKeyFromJwk } from '../core/keys.ts';
import {
  type NodeId,
  appendLeaves,
  buildProof,
  consistencyProofPlan,
  inclusionProofPlan,
  leafHash,
  nodeKey,
  planNodes,
  rootFromNodes,
  rootNodes,
} from '../core/merkle.ts';
import { type NoteSigner, ed25519NoteSigner, formatVerifierKey, isValidKeyName, signCheckpoint } from '../core/note.ts';
import type { Receipt } from '../core/schemas.ts';
import { type Db, type Tx, LOCK_SEQUENCER, isUniqueViolation, rowsOf, schema } from '../db/index.ts';
import type { LogApi } from '../http/app.ts';
import type { AttestationRow } from '../service/attest.ts';
import { ServiceError } from '../service/errors.ts';
import { LOG_CHANNEL, type Notifier } from '../db/notify.ts';
import type { Metrics } from '../service/metrics.ts';

/** How long the latest checkpoint is reused for receipts before it is read again. */
const CHECKPOINT_CACHE_MS = 100;
/** Most entries one `GET /v1/log/entries` returns. */
export const MAX_ENTRIES = 1000;
/** Default and largest number of queued attestations integrated per checkpoint. */
export const DEFAULT_BATCH = 1000;
/** Default shortest time between two integration rounds (SequencerOptions.minRoundMs). */
export const DEFAULT_MIN_ROUND_MS = 100;
const MAX_BATCH = 10_000;
/** The file a generated log key is kept in, under DATA_DIR. */
export const LOG_KEY_FILE = path.join('keys', 'log.key.json');

export interface LogServiceOptions {
  readonly db: Db;
  /** Checkpoint origin, also the signed-note key name (no spaces, no '+'), e.g. `meterproof.example.com/log`. */
  readonly origin: string;
  /** Ed25519 key that signs checkpoints. */
  readonly logKey: SigningKey;
  /** Announces each new checkpoint (its size) to waiting requests in every process of the store. */
  readonly notifier?: Notifier;
  readonly metrics?: Metrics;
}

/** A signed checkpoint as stored. */
export interface CheckpointRecord {
  readonly size: number;
  readonly rootHash: Uint8Array;
  /** The signed note (checkpoint text, blank line, signature line). */
  readonly note: string;
}

export interface InclusionProofResponse {
  readonly index: number;
  readonly tree_size: number;
  readonly leaf_hash: string;
  readonly hashes: string[];
}

export interface ConsistencyProofResponse {
  readonly from: number;
  readonly to: number;
  readonly hashes: string[];
}

export interface LogEntry {
  readonly index: number;
  readonly leaf_hash: string;
  /** The leaf data (RFC 8785 canonical JSON text): for a bn128-poseidon8-v2 statement only
   *  {statement_digest, type: meterproof/log-leaf/v2}, which reveals nothing commercial; for a v1
   *  statement the statement itself. */
  readonly leaf: string;
}

export interface SequencerOptions {
  /** Idle poll interval when nothing pokes the loop (default 20 ms). */
  readonly intervalMs?: number;
  /** Leaves per checkpoint (default 1000). */
  readonly maxBatch?: number;
  /** Shortest time between the starts of two integration rounds, however often the loop is poked
   *  (default 100 ms): under load every round, with its transaction and its signed checkpoint,
   *  carries the leaves of many attestations. A full batch (a backlog) is followed at once. */
  readonly minRoundMs?: number;
  /** Called with every integration error; the loop backs off and retries (default: console.error). */
  readonly onError?: (e: unknown) => void;
}

export interface Sequencer {
  /** Run an integration step now instead of at the next tick (the attest path calls it). */
  poke(): void;
  /** Stop the loop; resolves when the step in progress (if any) has finished. */
  stop(): Promise<void>;
  /** True until stop() is called (the loop itself never ends on an error: it retries). */
  running(): boolean;
}

export interface LogService extends LogApi {
  readonly origin: string;
  /** Registers the public log endpoints (any Hono app; the API app or a bare one). */
  routes<E extends HonoEnv>(app: Hono<E>): void;
  /** Makes the first (size 0) checkpoint when the log has none. Idempotent. */
  init(): Promise<void>;
  /** One sequencer step. Returns the number of leaves integrated (0 if another process holds the lock). */
  integrate(maxBatch?: number): Promise<number>;
  startSequencer(opts?: SequencerOptions): Sequencer;
  /** The log section of the trust material. */
  trust(): Promise<{ verifier_key: string; latest_checkpoint?: string }>;
  /** C2SP signed-note verifier key `<name>+<8 hex key id>+<base64(0x01 || key)>`. */
  verifierKey(): string;
  /** Latest signed checkpoint, read from the store (null before the first one). */
  latestCheckpoint(): Promise<CheckpointRecord | null>;
  inclusionProof(index: number, treeSize: number): Promise<InclusionProofResponse>;
  consistencyProof(from: number, to: number): Promise<ConsistencyProofResponse>;
  entries(start: number, end: number): Promise<LogEntry[]>;
}

export function createLogService(opts: LogServiceOptions): LogService {
  const { db, origin, logKey, notifier, metrics } = opts;
  if (!isValidKeyName(origin)) throw new Error(`log origin ${JSON.stringify(origin)} is not a valid signed-note key name (no spaces, no '+')`);
  const signer: NoteSigner = ed25519NoteSigner(origin, logKey.publicKey, logKey.sign);
  const vkey = formatVerifierKey(origin, logKey.publicKey);
  const t = { cp: schema.logCheckpoints, leaves: schema.logLeaves, nodes: schema.logNodes, queue: schema.logQueue, att: schema.attestations };

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

  /** The cached checkpoint when fresh and covering `atLeast` leaves, else a fresh read. */
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
  /** One query for a set of perfect-subtree hashes: level 0 (leaf hashes) from log_leaves, the
   *  levels above from log_nodes. */
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

  // ── sequencer ────────────────────────────────────────────────────────────────────────────
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
    try {
      return await integrateRound(maxBatch, false);
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      // A leaf (or node) is already there: a leftover queue row, or a store another writer
      // touched. The careful round skips leftovers; anything else fails again, loudly.
      return integrateRound(maxBatch, true);
    }
  }

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
    cache = { cp: signed.cp, at: Date.now() };
    metrics?.logLeaves.inc(signed.count);
    // committed: tell waiting requests (never fails the round; waiters have a safety timeout)
    await notifier?.notify(LOG_CHANNEL, String(signed.cp.size)).catch(() => undefined);
    return signed.count;
  }

  /**
   * Leaf hashes of the queued attestations, in queue order. The attest statement stores each
   * leaf hash with its queue row (DESIGN §6: the hash of the statement's RFC 8785 canonical
   * bytes, which it has just signed); rows queued without one are hashed here from the stored
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

  function startSequencer(so: SequencerOptions = {}): Sequencer {
    const intervalMs = so.intervalMs ?? 20;
    const minRoundMs = so.minRoundMs ?? DEFAULT_MIN_ROUND_MS;
    const batch = so.maxBatch ?? DEFAULT_BATCH;
    const onError = so.onError ?? ((e: unknown) => console.error('log sequencer:', e));
    let stopped = false;
    let poked = false;
    /** Ends the current wait early (stop always; a poke only while the loop is idle). */
    let wake: (() => void) | null = null;
    let idle = false;
    let failures = 0;

    const sleep = (ms: number, pokeable: boolean) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wake = null;
          idle = false;
          resolve();
        }
        wake = done;
        idle = pokeable;
      });

    const loop = (async () => {
      while (!stopped) {
        poked = false;
        const started = performance.now(); // monotonic: a wall-clock step cannot stall the loop
        let n = 0;
        try {
          n = await integrate(batch);
          failures = 0;
        } catch (e) {
          failures++;
          metrics?.logRoundErrors.inc();
          onError(e);
        }
        if (stopped) break;
        if (failures) {
          await sleep(Math.min(5000, intervalMs * 2 ** failures), false);
          continue;
        }
        if (n === batch && batch > 0) continue; // a backlog: more is queued
        // pace the rounds: the next one starts minRoundMs after this one started at the earliest;
        // with nothing poked the loop then idles until a poke or the poll interval (counted from
        // the round's end when it found nothing, so a slow store is never polled back to back)
        const gap = started + minRoundMs - performance.now();
        if (gap > 0) await sleep(gap, false);
        const rest = n === 0 ? intervalMs : started + intervalMs - performance.now();
        if (!poked && !stopped && rest > 0) await sleep(rest, true);
      }
    })();

    return {
      poke() {
        poked = true;
        if (idle) wake?.();
      },
      async stop() {
        stopped = true;
        wake?.();
        await loop;
      },
      running: () => !stopped,
    };
  }

  // ── read side ────────────────────────────────────────────────────────────────────────────
  async function receipt(row: AttestationRow): Promise<Receipt | undefined> {
    if (row.logIndex === null || row.logIndex === undefined) return undefined;
    const index = row.logIndex;
    const cp = await currentCheckpoint(index + 1);
    if (!cp || index >= cp.size) return undefined; // not reachable: the index commits with its checkpoint
    const plan = inclusionProofPlan(BigInt(index), BigInt(cp.size));
    const leafId: NodeId = { level: 0, index: BigInt(index) };
    const nodes = await readNodes(db, [leafId, ...planNodes(plan)]);
    const leaf = nodes.get(nodeKey(leafId));
    if (!leaf) throw new Error(`log store is missing leaf ${index}`);
    return {
      log_origin: origin,
      log_index: String(index),
      leaf_hash: toB64(leaf),
      tree_size: String(cp.size),
      inclusion_proof: buildProof(plan, (id) => nodes.get(nodeKey(id))).map(toB64),
      checkpoint: cp.note,
    };
  }

  async function inclusionProof(index: number, treeSize: number): Promise<InclusionProofResponse> {
    const current = await currentSize(treeSize);
    if (treeSize < 1 || treeSize > current) throw outOfRange(`tree_size must be in [1, ${current}]`);
    if (index < 0 || index >= treeSize) throw outOfRange(`index must be below tree_size ${treeSize}`);
    const plan = inclusionProofPlan(BigInt(index), BigInt(treeSize));
    const leafId: NodeId = { level: 0, index: BigInt(index) };
    const nodes = await readNodes(db, [leafId, ...planNodes(plan)]);
    const leaf = nodes.get(nodeKey(leafId));
    if (!leaf) throw new Error(`log store is missing leaf ${index}`);
    const hashes = buildProof(plan, (id) => nodes.get(nodeKey(id))).map(toB64);
    return { index, tree_size: treeSize, leaf_hash: toB64(leaf), hashes };
  }

  async function consistencyProof(from: number, to: number): Promise<ConsistencyProofResponse> {
    const current = await currentSize(to);
    if (to > current) throw outOfRange(`to must be at most the current size ${current}`);
    if (from < 1) throw outOfRange('from must be at least 1: a proof from the empty tree proves nothing');
    if (from > to) throw outOfRange('from must not exceed to');
    const plan = consistencyProofPlan(BigInt(from), BigInt(to));
    const nodes = await readNodes(db, planNodes(plan));
    return { from, to, hashes: buildProof(plan, (id) => nodes.get(nodeKey(id))).map(toB64) };
  }

  async function entries(start: number, end: number): Promise<LogEntry[]> {
    const current = await currentSize(end);
    if (end > current) throw outOfRange(`end must be at most the current size ${current}`);
    if (start >= end) throw outOfRange('start must be below end');
    if (end - start > MAX_ENTRIES) throw outOfRange(`at most ${MAX_ENTRIES} entries per request`);
    const rows = await db
      .select({ idx: t.leaves.idx, leafHash: t.leaves.leafHash, statement: sql<unknown>`${t.att.bundle} -> 'attestation' -> 'statement'` })
      .from(t.leaves)
      .innerJoin(t.att, eq(t.att.id, t.leaves.attestationId))
      .where(and(gte(t.leaves.idx, start), lt(t.leaves.idx, end)))
      .orderBy(asc(t.leaves.idx));
    if (rows.length !== end - start) throw new Error(`log store returned ${rows.length} entries for [${start}, ${end})`);
    return rows.map((r) => {
      const statement = typeof r.statement === 'string' ? (JSON.parse(r.statement) as unknown) : r.statement;
      return { index: r.idx, leaf_hash: toB64(r.leafHash), leaf: Buffer.from(logLeafBytes(statement as Statement)).toString('utf8') };
    });
  }

  function routes<E extends HonoEnv>(app: Hono<E>): void {
    app.get('/v1/log/checkpoint', async (c) => {
      strictQuery(c, []);
      const cp = await latestCheckpoint();
      if (!cp) throw new ServiceError(503, 'LOG_NOT_READY', 'the log has not signed its first checkpoint yet');
      return c.body(cp.note, 200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    });
    app.get('/v1/log/verifier-key', (c) => {
      strictQuery(c, []);
      return c.body(`${vkey}\n`, 200, { 'content-type': 'text/plain; charset=utf-8' });
    });
    app.get('/v1/log/proof/inclusion', async (c) => {
      const q = strictQuery(c, ['index', 'tree_size']);
      return c.json(await inclusionProof(q['index']!, q['tree_size']!));
    });
    app.get('/v1/log/proof/consistency', async (c) => {
      const q = strictQuery(c, ['from', 'to']);
      return c.json(await consistencyProof(q['from']!, q['to']!));
    });
    app.get('/v1/log/entries', async (c) => {
      const q = strictQuery(c, ['start', 'end']);
      return c.json({ entries: await entries(q['start']!, q['end']!) });
    });
  }

  return {
    origin,
    init,
    integrate,
    startSequencer,
    receipt,
    routes,
    size: () => currentSize(),
    verifierKey: () => vkey,
    latestCheckpoint,
    async trust() {
      const cp = await currentCheckpoint();
      return { verifier_key: vkey, ...(cp ? { latest_checkpoint: cp.note } : {}) };
    },
    inclusionProof,
    consistencyProof,
    entries,
  };
}

// ── log key ──────────────────────────────────────────────────────────────────────────────

/**
 * The checkpoint signing key: a private JWK from the environment when given (e.g. LOG_KEY_JWK),
 * otherwise DATA_DIR/keys/log.key.json, created (mode 0600) on first start. Concurrent first
 * starts agree on one key: the file is published with link(2), which fails if it exists.
 */
export function loadOrCreateLogKey(dataDir: string, envJson?: string): SigningKey {
  if (envJson !== undefined && envJson.trim() !== '') {
    try {
      return signingKeyFromJwk(JSON.parse(envJson));
    } catch (e) {
      throw new Error(`the log key from the environment is not a private Ed25519 JWK: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  const file = path.join(dataDir, LOG_KEY_FILE);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const key = generateSigningKey();
    const tmp = `${file}.${process.pid}.${toHex(key.publicKey).slice(0, 8)}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(key.privateJwk, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    try {
      fs.linkSync(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  try {
    return signingKeyFromJwk(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch (e) {
    throw new Error(`log key file ${file} is unusable: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

// ── helpers ──────────────────────────────────────────────────────────────────────────────

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

/** Exactly the named parameters, each once, each a canonical non-negative decimal integer. */
function strictQuery(c: Context, names: readonly string[]): Record<string, number> {
  const all = c.req.queries();
  const out: Record<string, number> = {};
  const fields: { path: string; message: string }[] = [];
  for (const k of Object.keys(all)) if (!names.includes(k)) fields.push({ path: k, message: 'unknown query parameter' });
  for (const name of names) {
    const vals = all[name];
    if (!vals || vals.length === 0) fields.push({ path: name, message: 'required' });
    else if (vals.length > 1) fields.push({ path: name, message: 'given more than once' });
    else if (!DECIMAL.test(vals[0]!)) fields.push({ path: name, message: 'expected a non-negative decimal integer without leading zeros' });
    else {
      const n = Number(vals[0]);
      if (!Number.isSafeInteger(n)) throw outOfRange(`${name} is beyond any size this log can have`);
      out[name] = n;
    }
  }
  if (fields.length) throw new ServiceError(400, 'INVALID_QUERY', 'invalid query parameters', fields);
  return out;
}

function outOfRange(message: string): ServiceError {
  return new ServiceError(400, 'OUT_OF_RANGE', message);
}

/** A stored hash, read as hex: exactly 32 bytes or the store is corrupt. */
function fromHexStrict(h: string, what = 'a hash the log store returned'): Uint8Array {
  const b = fromHex(h);
  if (!b || b.length !== 32) throw new Error(`${what} is not 32 bytes`);
  return b;
}
