// The transparency log over a real store (PGlite, or Postgres when DATABASE_URL is set): batched
// integration, receipts that verify through the open verifier, consistency between every pair of
// checkpoints, concurrent sequencers, crash atomicity and broken proofs generated from our own log.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { and, asc, count, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { fromB64, toB64 } from '../src/core/bytes.ts';
import { logLeafBytes } from '../src/core/binding-v2.ts';
import { type SigningKey, signingKeyFromSeed } from '../src/core/keys.ts';
import { leafHash, rootFromLeafHashes, rootNodes, verifyConsistency, verifyInclusion } from '../src/core/merkle.ts';
import { ed25519NoteSigner, formatCheckpoint, formatVerifierKey, openCheckpoint, parseVerifierKey, signCheckpoint, signNote } from '../src/core/note.ts';
import type { FullBundle, Receipt, Statement } from '../src/core/schemas.ts';
import { VerificationError, verifyBundle } from '../src/core/verify.ts';
import { type Database, type Db, MIGRATIONS, hasSqlState, isUniqueViolation, openDatabase, rowsOf, schema } from '../src/db/index.ts';
import { type LogService, createLogService, loadOrCreateLogKey } from '../src/log/service.ts';
import { logVerifier } from '../src/verifier/log.ts';
import { testStore, usingPostgres, type TestStore } from './support/db.ts';
import { keyA, trustFor } from './support/fixtures.ts';
import { attestationRows, queueAttestations } from './support/log-rows.ts';

const ORIGIN = 'log.meterproof.test/v1';
const LOG_KEY = signingKeyFromSeed(new Uint8Array(32).fill(42));
const OTHER_KEY = signingKeyFromSeed(new Uint8Array(32).fill(43));
const VKEY = formatVerifierKey(ORIGIN, LOG_KEY.publicKey);
let seq = 0;

/** Attestation rows with real signed bundles, plus their log_queue rows, in one transaction
 *  (`legacy`: queue rows without a precomputed leaf hash). */
function enqueue(db: Db, n: number, legacy = false): Promise<string[]> {
  return queueAttestations(
    db,
    Array.from({ length: n }, () => {
      const k = seq++;
      return [`evt_log_${k}`, 1000 + k] as const;
    }),
    { legacy },
  );
}


async function checkpoints(db: Db) {
  return db.select().from(schema.logCheckpoints).orderBy(asc(schema.logCheckpoints.treeSize));
}

async function leafHashes(db: Db): Promise<Uint8Array[]> {
  const rows = await db.select().from(schema.logLeaves).orderBy(asc(schema.logLeaves.idx));
  rows.forEach((r, i) => expect(r.idx).toBe(i));
  return rows.map((r) => r.leafHash);
}

async function snapshot(db: Db) {
  const n = async (table: typeof schema.logLeaves | typeof schema.logNodes | typeof schema.logQueue | typeof schema.logCheckpoints) =>
    (await db.select({ n: count() }).from(table))[0]!.n;
  const unlogged = (await attestationRows(db)).filter((r) => r.logIndex === null).length;
  return { leaves: await n(schema.logLeaves), nodes: await n(schema.logNodes), queue: await n(schema.logQueue), checkpoints: await n(schema.logCheckpoints), unlogged };
}

/** The code of the VerificationError a check throws, 'OK' if it passes; any other exception is a bug. */
function codeOf(fn: () => void): string {
  try {
    fn();
    return 'OK';
  } catch (e) {
    if (e instanceof VerificationError) return e.code;
    return `NOT A VerificationError: ${String(e)}`;
  }
}

const flip = (b64: string, bit: number): string => {
  const b = fromB64(b64)!;
  b[bit >> 3]! ^= 1 << (bit & 7);
  return toB64(b);
};

const statementOf = (row: { bundle: unknown }): Statement => (row.bundle as FullBundle).attestation.statement;

/** Every stored checkpoint: signed by the log key, root = MTH of the first `size` stored leaves. */
async function expectCheckpointsMatchLeaves(db: Db): Promise<void> {
  const leaves = await leafHashes(db);
  const cps = await checkpoints(db);
  for (const cp of cps) {
    const opened = openCheckpoint(cp.note, [parseVerifierKey(VKEY)], { origin: ORIGIN }).checkpoint;
    expect(opened.size).toBe(BigInt(cp.treeSize));
    expect(toB64(opened.rootHash)).toBe(toB64(cp.rootHash));
    expect(toB64(cp.rootHash), `root of size ${cp.treeSize}`).toBe(toB64(rootFromLeafHashes(leaves.slice(0, cp.treeSize))));
  }
}

/** Consistency proofs served by the log verify between every pair of checkpoint sizes. */
async function expectPairwiseConsistent(log: LogService, db: Db): Promise<number> {
  const cps = (await checkpoints(db)).filter((c) => c.treeSize > 0);
  let pairs = 0;
  for (const a of cps) {
    for (const b of cps) {
      if (a.treeSize > b.treeSize) continue;
      const p = await log.consistencyProof(a.treeSize, b.treeSize);
      expect(() => verifyConsistency(BigInt(a.treeSize), BigInt(b.treeSize), a.rootHash, b.rootHash, p.hashes.map((h) => fromB64(h)!))).not.toThrow();
      pairs++;
    }
  }
  return pairs;
}

describe('transparency log service', () => {
  let store: TestStore;
  let db: Db;
  let log: LogService;

  beforeAll(async () => {
    store = await testStore();
    db = store.database.db;
    log = createLogService({ db, origin: ORIGIN, logKey: LOG_KEY });
  });
  afterAll(async () => {
    await store.cleanup();
  });

  it('refuses an origin that is not a valid note key name', () => {
    expect(() => createLogService({ db, origin: 'has space', logKey: LOG_KEY })).toThrow(/key name/);
    expect(() => createLogService({ db, origin: 'a+b', logKey: LOG_KEY })).toThrow(/key name/);
  });

  it('signs the empty checkpoint once on init; nothing to integrate signs nothing', async () => {
    expect(await log.latestCheckpoint()).toBeNull();
    await log.init();
    await log.init();
    // with a checkpoint signed, an empty queue costs one look, not a round's transaction (an idle
    // sequencer polls it every interval)
    const rounds = vi.spyOn(db, 'transaction');
    expect(await log.integrate()).toBe(0);
    expect(rounds).not.toHaveBeenCalled();
    rounds.mockRestore();
    const cps = await checkpoints(db);
    expect(cps.map((c) => c.treeSize)).toEqual([0]);
    const opened = openCheckpoint(cps[0]!.note, [parseVerifierKey(log.verifierKey())], { origin: ORIGIN });
    expect(opened.checkpoint.size).toBe(0n);
    expect(toB64(opened.checkpoint.rootHash)).toBe(toB64(rootFromLeafHashes([])));
    expect(log.verifierKey()).toBe(VKEY);
    expect(await log.size()).toBe(0);
    expect(await log.trust()).toEqual({ verifier_key: VKEY, latest_checkpoint: cps[0]!.note });
  });

  it('integrates in batches; every receipt verifies (logVerifier and verifyBundle); all checkpoints pairwise consistent', async () => {
    // queue rows with the leaf hash the attest path precomputes, and rows without one (hashed
    // from the stored statement), interleaved
    await enqueue(db, 15);
    await enqueue(db, 10, true);
    await enqueue(db, 15);
    const [queued] = await attestationRows(db);
    expect(await log.receipt(queued!)).toBeUndefined(); // not integrated yet
    const sizes: number[] = [];
    for (const batch of [1, 1, 2, 5, 8, 13]) {
      expect(await log.integrate(batch)).toBe(batch);
      sizes.push((await log.latestCheckpoint())!.size);
    }
    expect(sizes).toEqual([1, 2, 4, 9, 17, 30]);
    await enqueue(db, 3);
    expect(await log.integrate()).toBe(13); // the rest of the first 40 and the 3 new ones
    expect(await log.integrate()).toBe(0);
    expect(await log.size()).toBe(43);
    expect((await snapshot(db)).queue).toBe(0);
    await expectCheckpointsMatchLeaves(db);

    const rows = await attestationRows(db);
    expect(rows.map((r) => r.logIndex)).toEqual(rows.map((_, i) => i)); // queue order = log order
    const trust = { ...trustFor(keyA), log: { verifier_key: VKEY } };
    const first = (await checkpoints(db)).find((c) => c.treeSize === 4)!;
    for (const row of rows) {
      const receipt = (await log.receipt(row))!;
      const statement = statementOf(row);
      expect(receipt).toMatchObject({ log_origin: ORIGIN, log_index: String(row.logIndex), tree_size: '43' });
      expect(receipt.leaf_hash).toBe(toB64(leafHash(logLeafBytes(statement))));
      expect(codeOf(() => logVerifier.checkInclusion(receipt, statement))).toBe('OK');
      expect(codeOf(() => logVerifier.checkCheckpoint(receipt, VKEY))).toBe('OK');
      const proof = (await log.consistencyProof(4, 43)).hashes;
      const bundle = { ...(row.bundle as FullBundle), receipt };
      const report = await verifyBundle(bundle, { ...trust, log: { verifier_key: VKEY, trusted_checkpoint: first.note } }, { profile: 'standard', log: logVerifier, consistencyProof: proof });
      const status = Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
      expect(status, JSON.stringify(report.checks.filter((c) => c.status === 'fail'))).toMatchObject({ inclusion: 'pass', checkpoint: 'pass', consistency: 'pass' });
      expect(report.valid).toBe(true);
    }
    // a receipt carried to an auditor without a trusted checkpoint still verifies
    const report = await verifyBundle({ ...(rows[7]!.bundle as FullBundle), receipt: await log.receipt(rows[7]!) }, trust, { profile: 'standard', log: logVerifier });
    expect(report.checks.find((c) => c.name === 'inclusion')?.status).toBe('pass');
    expect(report.checks.find((c) => c.name === 'consistency')?.status).toBe('skipped');
    // a tampered statement no longer matches its leaf
    const tampered = structuredClone(rows[7]!.bundle as FullBundle);
    tampered.attestation.statement.charge_micros = '1';
    const receipt7 = (await log.receipt(rows[7]!))!;
    expect(codeOf(() => logVerifier.checkInclusion(receipt7, tampered.attestation.statement))).toBe('INCLUSION_INVALID');

    expect(await expectPairwiseConsistent(log, db)).toBe((7 * 8) / 2);
  });

  it('a crash midway through integration leaves no partial state, and the queue comes back', async () => {
    let boom = false;
    const flaky: SigningKey = {
      ...LOG_KEY,
      sign: (m) => {
        if (boom) throw new Error('simulated crash while signing the checkpoint');
        return LOG_KEY.sign(m);
      },
    };
    const crashy = createLogService({ db, origin: ORIGIN, logKey: flaky });
    await enqueue(db, 6);
    const before = await snapshot(db);
    expect(before.queue).toBe(6);
    boom = true; // fails after leaves, nodes, log_index and queue deletion were written
    await expect(crashy.integrate()).rejects.toThrow(/simulated crash/);
    expect(await snapshot(db)).toEqual(before);

    // a store-level failure: a leaf, then a node, already at a place the batch writes to (they
    // must never be overwritten)
    boom = false;
    const next = (await log.latestCheckpoint())!.size;
    await db.insert(schema.logLeaves).values({ idx: next + 3, attestationId: 'squatter', leafHash: new Uint8Array(32) });
    await expect(crashy.integrate()).rejects.toSatisfy(isUniqueViolation);
    expect(await snapshot(db)).toEqual({ ...before, leaves: before.leaves + 1 });
    await db.delete(schema.logLeaves).where(eq(schema.logLeaves.idx, next + 3));
    const node = { level: 1, idx: Math.floor((next + 5) / 2) - 1 }; // two leaves of the batch
    await db.insert(schema.logNodes).values({ ...node, hash: new Uint8Array(32) });
    await expect(crashy.integrate()).rejects.toSatisfy(isUniqueViolation);
    expect(await snapshot(db)).toEqual({ ...before, nodes: before.nodes + 1 });
    await db.delete(schema.logNodes).where(and(eq(schema.logNodes.level, node.level), eq(schema.logNodes.idx, node.idx)));

    expect(await crashy.integrate()).toBe(6);
    const after = await snapshot(db);
    expect(after).toMatchObject({ leaves: before.leaves + 6, queue: 0, checkpoints: before.checkpoints + 1, unlogged: 0 });
    await expectCheckpointsMatchLeaves(db);
    for (const row of (await attestationRows(db)).slice(-6)) {
      const receipt = (await log.receipt(row))!; // another instance's checkpoint: read past the cache
      expect(receipt.tree_size).toBe(String(next + 6));
      expect(codeOf(() => logVerifier.checkInclusion(receipt, statementOf(row)))).toBe('OK');
    }
  });

  it('refuses to extend a store whose right edge does not match the signed root', async () => {
    const sizeNow = async () => BigInt((await log.latestCheckpoint())!.size);
    if ((await sizeNow()) % 2n === 0n) {
      await enqueue(db, 1);
      expect(await log.integrate()).toBe(1);
    }
    // at an odd size the smallest right-edge subtree is a leaf (log_leaves); then the largest, a
    // node above the leaves (log_nodes)
    for (const pick of ['smallest', 'largest'] as const) {
      const edgeIds = rootNodes(await sizeNow());
      const id = pick === 'smallest' ? edgeIds.at(-1)! : edgeIds[0]!;
      expect(id.level === 0).toBe(pick === 'smallest');
      const leaf = id.level === 0;
      const where = leaf ? eq(schema.logLeaves.idx, Number(id.index)) : and(eq(schema.logNodes.level, id.level), eq(schema.logNodes.idx, Number(id.index)));
      const read = async () => (leaf ? (await db.select().from(schema.logLeaves).where(where))[0]?.leafHash : (await db.select().from(schema.logNodes).where(where))[0]?.hash);
      const write = async (h: Uint8Array) => {
        if (leaf) await db.update(schema.logLeaves).set({ leafHash: h }).where(where);
        else await db.update(schema.logNodes).set({ hash: h }).where(where);
      };
      const edge = await read();
      expect(edge).toBeDefined();
      await write(new Uint8Array(32).fill(1));
      await enqueue(db, 1);
      const before = await snapshot(db);
      await expect(log.integrate()).rejects.toThrow(/inconsistent/);
      expect(await snapshot(db)).toEqual(before);
      await write(edge!);
      expect(await log.integrate()).toBe(1);
    }
  });

  it.skipIf(!usingPostgres())('skips the round while another process holds the sequencer lock (Postgres)', async () => {
    const other = await openDatabase({ url: store.url!, maxConnections: 1 });
    try {
      await enqueue(db, 2);
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holder = other.db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(7265002)`);
        locked();
        await held;
      });
      await isLocked;
      expect(await log.integrate()).toBe(0);
      expect((await snapshot(db)).queue).toBe(2);
      release();
      await holder;
      expect(await log.integrate()).toBe(2);
    } finally {
      await other.close();
    }
  });

  it('log_nodes refuses level 0 (leaf hashes live in log_leaves; a pre-0004 process fails loudly)', async () => {
    await expect(db.insert(schema.logNodes).values({ level: 0, idx: 1_000_000, hash: new Uint8Array(32) })).rejects.toSatisfy((e: unknown) => hasSqlState(e, '23514'));
  });

  it('a second queue row for an attestation is skipped and removed: logged once, the sequencer goes on', async () => {
    const ids = await enqueue(db, 3);
    await db.execute(sql`insert into log_queue (attestation_id, leaf_hash) select attestation_id, leaf_hash from log_queue where attestation_id = ${ids[1]!}`);
    const before = await snapshot(db);
    expect(before.queue).toBe(4);
    expect(await log.integrate()).toBe(3);
    const after = await snapshot(db);
    expect(after).toMatchObject({ leaves: before.leaves + 3, queue: 0, unlogged: 0 });
    const logged = rowsOf<{ n: number | string }>(await db.execute(sql`select count(*) as n from log_leaves where attestation_id = ${ids[1]!}`));
    expect(Number(logged[0]!.n)).toBe(1);
    await expectCheckpointsMatchLeaves(db);
  });

  it('a queue row for an attestation already in the log is dropped (the careful round): the others are logged once', async () => {
    const [done] = await enqueue(db, 1);
    expect(await log.integrate()).toBe(1);
    const fresh = await enqueue(db, 2);
    // a leftover between the two fresh rows: the usual round hits the unique index, the careful
    // round skips it
    await db.execute(sql`insert into log_queue (attestation_id, leaf_hash) select attestation_id, leaf_hash from log_leaves where attestation_id = ${done!}`);
    await enqueue(db, 1);
    const before = await snapshot(db);
    expect(before.queue).toBe(4);
    expect(await log.integrate()).toBe(3);
    const after = await snapshot(db);
    expect(after).toMatchObject({ leaves: before.leaves + 3, queue: 0, unlogged: 0, checkpoints: before.checkpoints + 1 });
    const counts = rowsOf<{ id: string; n: number | string }>(
      await db.execute(sql`select attestation_id as id, count(*) as n from log_leaves where attestation_id in (${done!}, ${fresh[0]!}, ${fresh[1]!}) group by 1`),
    );
    expect(counts.map((c) => Number(c.n))).toEqual([1, 1, 1]);
    await expectCheckpointsMatchLeaves(db);
  });

  it('two services over the same database integrate concurrently: no gap, no duplicate, all checkpoints consistent', async () => {
    // On Postgres the second service has its own connection pool (real lock contention); PGlite serializes.
    const second: Database | null = store.url ? await openDatabase({ url: store.url }) : null;
    try {
      const logA = createLogService({ db, origin: ORIGIN, logKey: LOG_KEY });
      const logB = createLogService({ db: second?.db ?? db, origin: ORIGIN, logKey: LOG_KEY });
      const startSize = (await logA.latestCheckpoint())?.size ?? 0;
      await enqueue(db, 60);
      let producing = true;
      const produce = (async () => {
        for (let i = 0; i < 12; i++) {
          await enqueue(second?.db ?? db, 1 + (i % 5));
          await new Promise((r) => setTimeout(r, 2));
        }
        producing = false;
      })();
      const counts = { A: 0, B: 0 };
      const run = async (svc: LogService, name: 'A' | 'B') => {
        for (;;) {
          const n = await svc.integrate(7);
          counts[name] += n;
          if (n === 0) {
            if (!producing && (await snapshot(db)).queue === 0) return;
            await new Promise((r) => setTimeout(r, 1));
          }
        }
      };
      await Promise.all([run(logA, 'A'), run(logB, 'B'), produce]);
      const total = 60 + [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1].reduce((s, k) => s + 1 + k, 0);
      expect(counts.A + counts.B).toBe(total);
      expect((await logA.latestCheckpoint())!.size).toBe(startSize + total);

      // contiguous indexes 0..n-1, each attestation exactly once, log_index = its leaf
      const leaves = await db.select().from(schema.logLeaves).orderBy(asc(schema.logLeaves.idx));
      expect(leaves.map((l) => l.idx)).toEqual(leaves.map((_, i) => i));
      const rows = await attestationRows(db);
      expect(rows.every((r) => r.logIndex !== null)).toBe(true);
      expect(new Set(rows.map((r) => r.logIndex)).size).toBe(rows.length);
      const byId = new Map(leaves.map((l) => [l.attestationId, l]));
      for (const r of rows) {
        const leaf = byId.get(r.id)!;
        expect(leaf.idx).toBe(r.logIndex);
        expect(toB64(leaf.leafHash)).toBe(toB64(leafHash(logLeafBytes(statementOf(r)))));
      }
      const sizes = (await checkpoints(db)).map((c) => c.treeSize);
      expect(sizes.slice(1).every((s, i) => s > sizes[i]!)).toBe(true);
      await expectCheckpointsMatchLeaves(db);
      await expectPairwiseConsistent(logA, db);

      // each service answers receipts for leaves the other integrated
      for (const row of rows.filter((_, i) => i % 9 === 0)) {
        for (const svc of [logA, logB]) {
          const receipt = (await svc.receipt(row))!;
          expect(codeOf(() => logVerifier.checkInclusion(receipt, statementOf(row)))).toBe('OK');
          expect(codeOf(() => logVerifier.checkCheckpoint(receipt, VKEY))).toBe('OK');
        }
      }
    } finally {
      await second?.close();
    }
  });

  it('the sequencer loop integrates when poked and stops cleanly', async () => {
    const errors: unknown[] = [];
    const seqr = log.startSequencer({ intervalMs: 60_000, onError: (e) => errors.push(e) });
    try {
      const size = (await log.latestCheckpoint())!.size;
      await new Promise((r) => setTimeout(r, 50)); // the first round has run; the loop waits (pacing, then idle for a minute)
      await enqueue(db, 5);
      seqr.poke();
      const deadline = Date.now() + 10_000;
      while ((await log.latestCheckpoint())!.size < size + 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect((await log.latestCheckpoint())!.size).toBe(size + 5);
    } finally {
      await seqr.stop();
    }
    expect(errors).toEqual([]);
    // stopped: nothing integrates any more
    await enqueue(db, 1);
    await new Promise((r) => setTimeout(r, 50));
    expect((await snapshot(db)).queue).toBe(1);
    expect(await log.integrate()).toBe(1);
  });

  it('pokes that keep coming start a round at most every minRoundMs: each checkpoint carries many leaves', async () => {
    const before = (await checkpoints(db)).length;
    const size = (await log.latestCheckpoint())!.size;
    const errors: unknown[] = [];
    const minRoundMs = 150;
    const start = Date.now();
    const seqr = log.startSequencer({ intervalMs: 60_000, minRoundMs, onError: (e) => errors.push(e) });
    let queued = 0;
    try {
      // an attest path under load: new entries and a poke every few milliseconds, 40 times
      for (let i = 0; i < 40; i++) {
        await enqueue(db, 2);
        queued += 2;
        seqr.poke();
        await new Promise((r) => setTimeout(r, 5));
      }
      const deadline = Date.now() + 10_000;
      while ((await log.latestCheckpoint())!.size < size + queued && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    } finally {
      await seqr.stop();
    }
    const elapsed = Date.now() - start;
    expect(errors).toEqual([]);
    expect((await log.latestCheckpoint())!.size).toBe(size + queued);
    const rounds = (await checkpoints(db)).length - before;
    expect(rounds).toBeLessThanOrEqual(Math.floor(elapsed / minRoundMs) + 1); // 40 pokes, few checkpoints
    expect(rounds).toBeLessThan(40);
    await expectCheckpointsMatchLeaves(db);
  });

  it('stop() ends a pacing wait at once', async () => {
    const seqr = log.startSequencer({ intervalMs: 60_000, minRoundMs: 60_000 });
    await new Promise((r) => setTimeout(r, 100)); // the first round has run; now a minute of pacing
    seqr.poke(); // pokes do not end a pacing wait…
    const t0 = performance.now();
    await seqr.stop(); // …but stop does
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  describe('broken proofs generated from our own log fail with the right code', () => {
    let rows: Awaited<ReturnType<typeof attestationRows>>;
    const signer = ed25519NoteSigner(ORIGIN, LOG_KEY.publicKey, LOG_KEY.sign);

    beforeAll(async () => {
      rows = await attestationRows(db);
    });

    const pick = () => [0, 1, 5, 16, 31, 32, 42].map((i) => rows[i]!);

    it('inclusion: bit flips, dropped/extra elements, index ± 1, size × 2, wrong leaf, malformed fields', async () => {
      let cases = 0;
      for (const row of pick()) {
        const r = (await log.receipt(row))!;
        const st = statementOf(row);
        const bad = (desc: string, receipt: Receipt, statement: Statement = st) => {
          cases++;
          expect(codeOf(() => logVerifier.checkInclusion(receipt, statement)), `${desc} (index ${r.log_index})`).toBe('INCLUSION_INVALID');
        };
        expect(codeOf(() => logVerifier.checkInclusion(r, st))).toBe('OK');
        expect(r.inclusion_proof.length).toBeGreaterThan(0);
        r.inclusion_proof.forEach((h, k) => {
          for (const bit of [0, 7, 128, 255]) bad(`flip bit ${bit} of proof[${k}]`, { ...r, inclusion_proof: r.inclusion_proof.with(k, flip(h, bit)) });
        });
        for (const bit of [0, 100, 255]) bad(`flip bit ${bit} of leaf_hash`, { ...r, leaf_hash: flip(r.leaf_hash, bit) });
        bad('drop last element', { ...r, inclusion_proof: r.inclusion_proof.slice(0, -1) });
        bad('drop first element', { ...r, inclusion_proof: r.inclusion_proof.slice(1) });
        bad('extra element', { ...r, inclusion_proof: [...r.inclusion_proof, r.inclusion_proof[0]!] });
        bad('extra zero element', { ...r, inclusion_proof: [toB64(new Uint8Array(32)), ...r.inclusion_proof] });
        bad('index + 1', { ...r, log_index: String(BigInt(r.log_index) + 1n) });
        if (r.log_index !== '0') bad('index - 1', { ...r, log_index: String(BigInt(r.log_index) - 1n) });
        bad('index = size', { ...r, log_index: r.tree_size });
        bad('size × 2', { ...r, tree_size: String(BigInt(r.tree_size) * 2n) });
        bad('size + 1', { ...r, tree_size: String(BigInt(r.tree_size) + 1n) });
        bad('another statement', r, statementOf(rows[(Number(r.log_index) + 1) % rows.length]!));
        bad('trailing garbage in a proof hash', { ...r, inclusion_proof: r.inclusion_proof.with(0, `${r.inclusion_proof[0]}AAAA`) });
        bad('31-byte proof hash', { ...r, inclusion_proof: r.inclusion_proof.with(0, toB64(fromB64(r.inclusion_proof[0]!)!.subarray(1))) });
        bad('unpadded base64', { ...r, leaf_hash: r.leaf_hash.replace(/=+$/, '') });
        bad('non-canonical log_index', { ...r, log_index: `0${r.log_index}` });
        bad('log_index beyond uint64', { ...r, log_index: '18446744073709551616' });
        bad('checkpoint root swapped (unsigned)', { ...r, checkpoint: r.checkpoint.replace(/^(.*\n.*\n)(.*)\n/, (_, head: string, root: string) => `${head}${flip(root, 3)}\n`) });
        bad('checkpoint that is not a note', { ...r, checkpoint: 'hello' });
        for (const junk of [null, 42, {}, [1], 'x'] as unknown[]) {
          bad(`inclusion_proof ${JSON.stringify(junk)}`, { ...r, inclusion_proof: junk as string[] });
          bad(`log_index ${JSON.stringify(junk)}`, { ...r, log_index: junk as string });
          bad(`checkpoint ${JSON.stringify(junk)}`, { ...r, checkpoint: junk as string });
        }
        bad('no receipt fields at all', {} as Receipt);
      }
      expect(cases).toBeGreaterThan(300);
      // a statement JCS cannot encode is still a coded failure
      const r = (await log.receipt(rows[0]!))!;
      expect(codeOf(() => logVerifier.checkInclusion(r, { ...statementOf(rows[0]!), charge_micros: 1n } as unknown as Statement))).toBe('INCLUSION_INVALID');
    });

    it('checkpoint: another key, another origin, altered body, wrong or malformed verifier key', async () => {
      const r = (await log.receipt(rows[3]!))!;
      const cp = openCheckpoint(r.checkpoint, [parseVerifierKey(VKEY)]).checkpoint;
      const bad = (desc: string, receipt: Receipt, vkey = VKEY) =>
        expect(codeOf(() => logVerifier.checkCheckpoint(receipt, vkey)), desc).toBe('CHECKPOINT_INVALID');
      expect(codeOf(() => logVerifier.checkCheckpoint(r, VKEY))).toBe('OK');
      const otherSigner = ed25519NoteSigner(ORIGIN, OTHER_KEY.publicKey, OTHER_KEY.sign);
      bad('signed by another key under the same name', { ...r, checkpoint: signCheckpoint(cp, otherSigner) });
      bad('verified with another key', r, formatVerifierKey(ORIGIN, OTHER_KEY.publicKey));
      bad('another origin in the body, signed by our key', { ...r, checkpoint: signCheckpoint({ ...cp, origin: 'other.example/log' }, signer) });
      bad('another origin in the body and the receipt', { ...r, log_origin: 'other.example/log', checkpoint: signCheckpoint({ ...cp, origin: 'other.example/log' }, signer) });
      bad('receipt claims another origin', { ...r, log_origin: 'other.example/log' });
      bad('root changed after signing', { ...r, checkpoint: r.checkpoint.replace(toB64(cp.rootHash), flip(toB64(cp.rootHash), 9)) });
      bad('size changed after signing', { ...r, checkpoint: r.checkpoint.replace(`\n${cp.size}\n`, `\n${cp.size + 1n}\n`) });
      bad('signature bit flipped', { ...r, checkpoint: r.checkpoint.replace(/ (\S+)\n$/, (_, sig: string) => ` ${flip(sig, 100)}\n`) });
      bad('no signature', { ...r, checkpoint: formatCheckpoint(cp) });
      bad('malformed verifier key', r, 'not a key');
      bad('verifier key with a wrong key id', r, VKEY.replace(/\+[0-9a-f]{8}\+/, '+00000000+'));
      bad('checkpoint not a string', { ...r, checkpoint: 7 as unknown as string });
      // a second valid signature by an unknown witness is ignored, per signed-note
      const withWitness = signNote(formatCheckpoint(cp), [signer, ed25519NoteSigner('witness.example', OTHER_KEY.publicKey, OTHER_KEY.sign)]);
      expect(codeOf(() => logVerifier.checkCheckpoint({ ...r, checkpoint: withWitness }, VKEY))).toBe('OK');
    });

    it('consistency: older/equal/newer trusted checkpoints pass; broken proofs, split views and foreign checkpoints fail', async () => {
      const cps = await checkpoints(db);
      const cpAt = (size: number) => cps.find((c) => c.treeSize === size)!.note;
      const r = (await log.receipt(rows[2]!))!;
      const n = Number(r.tree_size);
      const ok = (desc: string, trusted: string, proof: readonly string[] | undefined) =>
        expect(codeOf(() => logVerifier.checkConsistency(r, trusted, VKEY, proof)), desc).toBe('OK');
      const bad = (desc: string, trusted: string, proof: readonly string[] | undefined, receipt: Receipt = r, vkey = VKEY) =>
        expect(codeOf(() => logVerifier.checkConsistency(receipt, trusted, vkey, proof)), desc).toBe('CONSISTENCY_INVALID');

      const older = cps.filter((c) => c.treeSize > 0 && c.treeSize < n).map((c) => c.treeSize);
      expect(older.length).toBeGreaterThan(5);
      for (const m of older) {
        const proof = (await log.consistencyProof(m, n)).hashes;
        ok(`trusted ${m} → receipt ${n}`, cpAt(m), proof);
        proof.forEach((h, k) => bad(`flip proof[${k}] ${m}→${n}`, cpAt(m), proof.with(k, flip(h, 5))));
        if (proof.length) bad(`drop last ${m}→${n}`, cpAt(m), proof.slice(0, -1));
        bad(`extra element ${m}→${n}`, cpAt(m), [...proof, toB64(new Uint8Array(32))]);
        bad(`no proof ${m}→${n}`, cpAt(m), undefined);
      }
      ok('trusted = receipt checkpoint, no proof', r.checkpoint, undefined);
      ok('trusted = receipt checkpoint, empty proof', r.checkpoint, []);
      bad('equal sizes with a non-empty proof', r.checkpoint, [toB64(new Uint8Array(32))]);
      ok('trusted empty tree', cpAt(0), undefined);
      bad('trusted empty tree with a proof', cpAt(0), [toB64(new Uint8Array(32))]);

      // trusted newer than the receipt: proof from the receipt's size to the trusted one
      const oldReceipt: Receipt = { ...r, tree_size: '17', checkpoint: cpAt(17) };
      const fwd = (await log.consistencyProof(17, n)).hashes;
      expect(codeOf(() => logVerifier.checkConsistency(oldReceipt, r.checkpoint, VKEY, fwd))).toBe('OK');
      bad('trusted newer, proof for other sizes', r.checkpoint, (await log.consistencyProof(9, n)).hashes, oldReceipt);
      bad('trusted newer, no proof', r.checkpoint, undefined, oldReceipt);

      // split view: a checkpoint of the same size with another root, signed by the log key itself
      const cp = openCheckpoint(r.checkpoint, [parseVerifierKey(VKEY)]).checkpoint;
      const forked = signCheckpoint({ ...cp, rootHash: fromB64(flip(toB64(cp.rootHash), 0))! }, signer);
      bad('split view at the same size', forked, undefined);
      const forkedOld = signCheckpoint({ origin: ORIGIN, size: 17n, rootHash: new Uint8Array(32).fill(5) }, signer);
      bad('forked older checkpoint', forkedOld, (await log.consistencyProof(17, n)).hashes);
      // trust anchors that are not this log's
      const root17 = cps.find((c) => c.treeSize === 17)!.rootHash;
      const otherSigner = ed25519NoteSigner(ORIGIN, OTHER_KEY.publicKey, OTHER_KEY.sign);
      bad('trusted checkpoint signed by another key', signCheckpoint({ origin: ORIGIN, size: 17n, rootHash: root17 }, otherSigner), fwd);
      bad('trusted checkpoint of another origin', signCheckpoint({ origin: 'other.example/log', size: 17n, rootHash: root17 }, signer), fwd);
      bad('both verified with another key', cpAt(17), fwd, r, formatVerifierKey(ORIGIN, OTHER_KEY.publicKey));
      bad('receipt checkpoint not signed', cpAt(17), fwd, { ...r, checkpoint: formatCheckpoint(cp) });
      bad('malformed trusted checkpoint', 'garbage', fwd);
      bad('malformed verifier key', cpAt(17), fwd, r, 'garbage');
      bad('proof is not an array', cpAt(17), 'abc' as unknown as string[]);
      bad('proof of non-strings', cpAt(17), [1, 2] as unknown as string[]);
    });
  });

  describe('log key', () => {
    // made when the suite runs (not when it is collected), so a filtered run leaves nothing behind
    let dir = '';
    beforeAll(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-logkey-'));
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('is created once in DATA_DIR/keys/log.key.json (0600) and reloaded; an environment JWK wins', () => {
      const k1 = loadOrCreateLogKey(dir);
      const file = path.join(dir, 'keys', 'log.key.json');
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const k2 = loadOrCreateLogKey(dir);
      expect(k2.keyId).toBe(k1.keyId);
      expect(fs.readdirSync(path.join(dir, 'keys'))).toEqual(['log.key.json']);
      const env = loadOrCreateLogKey(dir, JSON.stringify(OTHER_KEY.privateJwk));
      expect(env.keyId).toBe(OTHER_KEY.keyId);
      expect(() => loadOrCreateLogKey(dir, '{"kty":"OKP"}')).toThrow(/environment/);
      expect(() => loadOrCreateLogKey(dir, 'not json')).toThrow(/environment/);
      fs.writeFileSync(file, '{}');
      expect(() => loadOrCreateLogKey(dir)).toThrow(/unusable/);
    });
  });
});

describe('upgrading a log written before migration 0004 (leaf hashes also as level-0 rows of log_nodes)', () => {
  it('0004 removes the level-0 rows; every inclusion and consistency proof still verifies, before and after more leaves', async () => {
    const store = await testStore();
    try {
      const db = store.database.db;
      const log = createLogService({ db, origin: ORIGIN, logKey: LOG_KEY });
      await log.init();
      await enqueue(db, 23);
      expect(await log.integrate(10)).toBe(10);
      expect(await log.integrate(13)).toBe(13);

      // the database as the code before 0004 left it: level-0 copies, the queue's unique index,
      // and migrations 0004–0006 not yet applied
      const journal = JSON.parse(fs.readFileSync(path.join(MIGRATIONS, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string; when: number }[] };
      const since = journal.entries.find((e) => e.tag.startsWith('0004_'))!.when;
      await db.execute(sql`alter table log_nodes drop constraint log_nodes_above_leaves`);
      await db.execute(sql`insert into log_nodes (level, idx, hash) select 0, idx, leaf_hash from log_leaves`);
      await db.execute(sql`alter table log_queue add constraint log_queue_attestation_id_unique unique (attestation_id)`);
      await db.execute(sql`delete from drizzle.__drizzle_migrations where created_at >= ${since}`);
      const levelZero = async () => Number(rowsOf<{ n: string | number }>(await db.execute(sql`select count(*) as n from log_nodes where level = 0`))[0]!.n);
      expect(await levelZero()).toBe(23);

      await store.database.migrate();
      expect(await levelZero()).toBe(0);
      await expect(db.insert(schema.logNodes).values({ level: 0, idx: 0, hash: new Uint8Array(32) })).rejects.toSatisfy((e: unknown) => hasSqlState(e, '23514'));

      const everyProof = async () => {
        const leaves = await leafHashes(db);
        const cps = (await checkpoints(db)).filter((c) => c.treeSize > 0);
        let n = 0;
        for (const cp of cps) {
          for (let i = 0; i < cp.treeSize; i++) {
            const p = await log.inclusionProof(i, cp.treeSize);
            expect(p.leaf_hash).toBe(toB64(leaves[i]!));
            verifyInclusion(BigInt(i), BigInt(cp.treeSize), leaves[i]!, cp.rootHash, p.hashes.map((h) => fromB64(h)!));
            n++;
          }
        }
        return n + (await expectPairwiseConsistent(log, db));
      };
      expect(await everyProof()).toBe(10 + 23 + 3); // inclusion at sizes 10 and 23, consistency 10–10, 10–23, 23–23
      const nodeRows = async () => Number((await db.select({ n: count() }).from(schema.logNodes))[0]!.n);
      expect(await nodeRows()).toBe(23 - 4); // n − popcount(n) nodes above the leaves

      await enqueue(db, 10);
      expect(await log.integrate()).toBe(10);
      await expectCheckpointsMatchLeaves(db);
      expect(await everyProof()).toBe(10 + 23 + 33 + 6);
      expect(await nodeRows()).toBe(33 - 2);
    } finally {
      await store.cleanup();
    }
  });
});
