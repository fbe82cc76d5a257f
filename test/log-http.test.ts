// The log's HTTP endpoints on a minimal Hono app: content types, proofs that verify with nothing
// but the specs (RFC 9162, C2SP signed-note/tlog-checkpoint), and strict query validation (4xx only).
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromB64, toB64, utf8 } from '../src/core/bytes.ts';
import { digestOf } from '../src/core/canonical.ts';
import { logLeafBytes } from '../src/core/binding-v2.ts';
import { signingKeyFromSeed } from '../src/core/keys.ts';
import { leafHash, verifyConsistency, verifyInclusion } from '../src/core/merkle.ts';
import { openCheckpoint, parseVerifierKey } from '../src/core/note.ts';
import type { FullBundle } from '../src/core/schemas.ts';
import type { Db } from '../src/db/index.ts';
import { logRoutes } from '../src/http/log-routes.ts';
import { problemResponse, toProblem } from '../src/http/problem.ts';
import { type LogService, createLogService } from '../src/log/service.ts';
import { testStore, type TestStore } from './support/db.ts';
import { attestationRows, queueAttestations } from './support/log-rows.ts';

const ORIGIN = 'log.meterproof.test/http';
const LOG_KEY = signingKeyFromSeed(new Uint8Array(32).fill(51));
let seq = 0;

async function enqueue(db: Db, n: number): Promise<void> {
  await queueAttestations(db, Array.from({ length: n }, () => {
    const k = seq++;
    return [`evt_http_${k}`, k] as const;
  }));
}

describe('log HTTP endpoints', () => {
  let store: TestStore;
  let db: Db;
  let log: LogService;
  let app: Hono;
  const get = async (url: string) => {
    const res = await app.request(url);
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* text */
    }
    return { status: res.status, type: res.headers.get('content-type'), text, body: body as Record<string, unknown> };
  };

  beforeAll(async () => {
    store = await testStore();
    db = store.database.db;
    log = createLogService({ db, origin: ORIGIN, logKey: LOG_KEY });
    app = new Hono();
    app.onError((e, c) => problemResponse(c, toProblem(e)));
    logRoutes(app, log);
  });
  afterAll(async () => {
    await store.cleanup();
  });

  it('before the first checkpoint: 503 problem, not a crash', async () => {
    const r = await get('/v1/log/checkpoint');
    expect(r.status).toBe(503);
    expect(r.type).toBe('application/problem+json');
    expect(r.body['code']).toBe('LOG_NOT_READY');
    expect((await get('/v1/log/proof/inclusion?index=0&tree_size=1')).body['code']).toBe('OUT_OF_RANGE');
  });

  it('serves the verifier key and the signed checkpoint as text', async () => {
    await log.init();
    const vk = await get('/v1/log/verifier-key');
    expect(vk.status).toBe(200);
    expect(vk.type).toBe('text/plain; charset=utf-8');
    expect(vk.text.trim()).toBe(log.verifierKey());
    expect(vk.text.trim()).toMatch(/^log\.meterproof\.test\/http\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*$/);
    const cp = await get('/v1/log/checkpoint');
    expect(cp.status).toBe(200);
    expect(cp.type).toBe('text/plain; charset=utf-8');
    const opened = openCheckpoint(cp.text, [parseVerifierKey(vk.text.trim())], { origin: ORIGIN }).checkpoint;
    expect(opened.size).toBe(0n);
    expect(cp.text).toMatch(/^log\.meterproof\.test\/http\n0\n[A-Za-z0-9+/]{43}=\n\n— log\.meterproof\.test\/http [A-Za-z0-9+/]+=*\n$/);
  });

  it('inclusion proofs for every index at every checkpoint size, consistency proofs for every pair, entries', async () => {
    const vkey = parseVerifierKey((await get('/v1/log/verifier-key')).text.trim());
    const sizes: number[] = [];
    const roots = new Map<number, Uint8Array>();
    for (const n of [3, 7, 1, 10]) {
      await enqueue(db, n);
      expect(await log.integrate()).toBe(n);
      const cp = await get('/v1/log/checkpoint');
      const { size, rootHash } = openCheckpoint(cp.text, [vkey], { origin: ORIGIN }).checkpoint;
      sizes.push(Number(size));
      roots.set(Number(size), rootHash);
    }
    expect(sizes).toEqual([3, 10, 11, 21]);

    const rows = await attestationRows(db);
    const leafOf = (i: number) => leafHash(logLeafBytes((rows[i]!.bundle as FullBundle).attestation.statement));
    for (const n of sizes) {
      for (let i = 0; i < n; i++) {
        const r = await get(`/v1/log/proof/inclusion?index=${i}&tree_size=${n}`);
        expect(r.status).toBe(200);
        expect(r.type).toMatch(/^application\/json/);
        expect(r.body).toMatchObject({ index: i, tree_size: n, leaf_hash: toB64(leafOf(i)) });
        const hashes = (r.body['hashes'] as string[]).map((h) => fromB64(h)!);
        expect(() => verifyInclusion(BigInt(i), BigInt(n), leafOf(i), roots.get(n)!, hashes)).not.toThrow();
      }
    }
    // the receipt carries the same proof as the endpoint at the latest size
    const receipt = (await log.receipt(rows[4]!))!;
    const proof = await get('/v1/log/proof/inclusion?index=4&tree_size=21');
    expect(receipt.inclusion_proof).toEqual(proof.body['hashes']);
    expect(receipt.checkpoint).toBe((await get('/v1/log/checkpoint')).text);

    let pairs = 0;
    for (const a of sizes) {
      for (const b of sizes.filter((s) => s >= a)) {
        const r = await get(`/v1/log/proof/consistency?from=${a}&to=${b}`);
        expect(r.status).toBe(200);
        expect(r.body['from']).toBe(a);
        expect(r.body['to']).toBe(b);
        const hashes = (r.body['hashes'] as string[]).map((h) => fromB64(h)!);
        if (a === b) expect(hashes).toEqual([]);
        expect(() => verifyConsistency(BigInt(a), BigInt(b), roots.get(a)!, roots.get(b)!, hashes)).not.toThrow();
        pairs++;
      }
    }
    expect(pairs).toBe(10);
    // any size up to the current one works, not only signed ones (nodes never change)
    expect((await get('/v1/log/proof/consistency?from=5&to=17')).status).toBe(200);
    expect((await get('/v1/log/proof/inclusion?index=16&tree_size=17')).status).toBe(200);

    const all = await get('/v1/log/entries?start=0&end=21');
    expect(all.status).toBe(200);
    const entries = all.body['entries'] as { index: number; leaf_hash: string; leaf: string }[];
    expect(entries.map((e) => e.index)).toEqual([...Array(21).keys()]);
    for (const e of entries) {
      expect(e.leaf_hash).toBe(toB64(leafHash(utf8(e.leaf))));
      expect(e.leaf_hash).toBe(toB64(leafOf(e.index)));
      // a v2 leaf is the statement's digest, typed: nothing commercial (tenant, charge, tariff,
      // currency, usage) in the public log
      const statement = (rows[e.index]!.bundle as FullBundle).attestation.statement;
      expect(JSON.parse(e.leaf)).toEqual({ statement_digest: digestOf(statement), type: 'meterproof/log-leaf/v2' });
      for (const secret of [statement.tenant_id, statement.tariff_id, statement.charge_micros, statement.currency]) expect(e.leaf).not.toContain(secret);
    }
    const one = await get('/v1/log/entries?start=20&end=21');
    expect(one.body).toEqual({ entries: [entries[20]] });
  });

  it('rejects bad query parameters with 400 problem+json (never 5xx)', async () => {
    expect(await log.size()).toBe(21);
    const cases: [string, 'INVALID_QUERY' | 'OUT_OF_RANGE'][] = [
      ['/v1/log/proof/inclusion', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?index=1', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?tree_size=3', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?index=a&tree_size=3', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?index=-1&tree_size=3', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?index=1.5&tree_size=3', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?index=1e2&tree_size=300', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?index=0x1&tree_size=3', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?index=01&tree_size=3', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?index=+1&tree_size=3', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?index=%201&tree_size=3', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?index=&tree_size=3', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?index=1&index=2&tree_size=3', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?index=1&tree_size=3&extra=1', 'INVALID_QUERY'],
      ['/v1/log/proof/inclusion?index=3&tree_size=3', 'OUT_OF_RANGE'],
      ['/v1/log/proof/inclusion?index=5&tree_size=3', 'OUT_OF_RANGE'],
      ['/v1/log/proof/inclusion?index=0&tree_size=0', 'OUT_OF_RANGE'],
      ['/v1/log/proof/inclusion?index=0&tree_size=22', 'OUT_OF_RANGE'],
      ['/v1/log/proof/inclusion?index=0&tree_size=18446744073709551615', 'OUT_OF_RANGE'],
      ['/v1/log/proof/inclusion?index=99999999999999999999999&tree_size=3', 'OUT_OF_RANGE'],
      ['/v1/log/proof/consistency?from=0&to=3', 'OUT_OF_RANGE'],
      ['/v1/log/proof/consistency?from=4&to=3', 'OUT_OF_RANGE'],
      ['/v1/log/proof/consistency?from=3&to=22', 'OUT_OF_RANGE'],
      ['/v1/log/proof/consistency?from=3', 'INVALID_QUERY'],
      ['/v1/log/proof/consistency?from=x&to=3', 'INVALID_QUERY'],
      ['/v1/log/proof/consistency?first=1&second=3', 'INVALID_QUERY'],
      ['/v1/log/entries?start=0', 'INVALID_QUERY'],
      ['/v1/log/entries?start=-5&end=3', 'INVALID_QUERY'],
      ['/v1/log/entries?start=3&end=3', 'OUT_OF_RANGE'],
      ['/v1/log/entries?start=4&end=3', 'OUT_OF_RANGE'],
      ['/v1/log/entries?start=0&end=22', 'OUT_OF_RANGE'],
      ['/v1/log/checkpoint?x=1', 'INVALID_QUERY'],
      ['/v1/log/verifier-key?x=1', 'INVALID_QUERY'],
    ];
    for (const [url, code] of cases) {
      const r = await get(url);
      expect(r.status, url).toBe(400);
      expect(r.type, url).toBe('application/problem+json');
      expect(r.body['code'], url).toBe(code);
      expect(r.body['status'], url).toBe(400);
    }
  });

  it('caps entries at 1000 per request', async () => {
    await enqueue(db, 990);
    expect(await log.integrate()).toBe(990);
    const size = (await log.latestCheckpoint())!.size;
    expect(size).toBe(1011);
    const max = await get('/v1/log/entries?start=5&end=1005');
    expect(max.status).toBe(200);
    expect((max.body['entries'] as unknown[]).length).toBe(1000);
    const over = await get('/v1/log/entries?start=5&end=1006');
    expect(over.status).toBe(400);
    expect(over.body['code']).toBe('OUT_OF_RANGE');
  });
});
