// `meterproof log monitor` against a real listening server: state on first use, consistent growth,
// and the alarms (split view, forked history, rollback, key change, bad signature), plus the
// unusable-input exits. The server's backend can be switched between logs under test.
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { asc } from 'drizzle-orm';
import { Hono } from 'hono';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { cmdLog } from '../src/cli/log.ts';
import { signingKeyFromSeed } from '../src/core/keys.ts';
import { ed25519NoteSigner, formatVerifierKey, openCheckpoint, parseVerifierKey, signCheckpoint } from '../src/core/note.ts';
import { type Db, schema } from '../src/db/index.ts';
import { logRoutes } from '../src/http/log-routes.ts';
import { problemResponse, toProblem } from '../src/http/problem.ts';
import { type LogService, createLogService } from '../src/log/service.ts';
import { testStore, type TestStore } from './support/db.ts';
import { queueAttestations } from './support/log-rows.ts';

const ORIGIN = 'log.meterproof.test/monitor';
const LOG_KEY = signingKeyFromSeed(new Uint8Array(32).fill(61));
const OTHER_KEY = signingKeyFromSeed(new Uint8Array(32).fill(62));
let seq = 0;

async function append(log: LogService, db: Db, n: number, tag: string): Promise<void> {
  await queueAttestations(db, Array.from({ length: n }, () => {
    const k = seq++;
    return [`evt_mon_${tag}_${k}`, k] as const;
  }));
  expect(await log.integrate()).toBe(n);
}

function appFor(log: LogService): Hono {
  const app = new Hono();
  app.onError((e, c) => problemResponse(c, toProblem(e)));
  logRoutes(app, log);
  return app;
}

/** A log front that serves a fixed checkpoint (and key) but real proofs from `log`. */
function fixedFront(log: LogService, checkpoint: string, vkey = log.verifierKey()): Hono {
  const app = new Hono();
  app.get('/v1/log/checkpoint', (c) => c.body(checkpoint, 200, { 'content-type': 'text/plain; charset=utf-8' }));
  app.get('/v1/log/verifier-key', (c) => c.body(`${vkey}\n`, 200, { 'content-type': 'text/plain; charset=utf-8' }));
  app.route('/', appFor(log));
  return app;
}

describe('meterproof log monitor', () => {
  let storeA: TestStore;
  let storeB: TestStore;
  let logA: LogService;
  let logB: LogService;
  let server: ServerType;
  let base: string;
  let backend: Hono;
  let dir: string;
  let stateFile: string;
  let stdout: string[];
  let stderr: string[];

  const run = async (...extra: string[]) => {
    stdout = [];
    stderr = [];
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (stdout.push(String(s)), true));
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (stderr.push(String(s)), true));
    try {
      return await cmdLog(['monitor', '--log', base, '--state', stateFile, ...extra]);
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
  };
  const state = () => JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { tree_size: string; root_hash: string; verifier_key: string; checkpoint: string };

  beforeAll(async () => {
    [storeA, storeB] = await Promise.all([testStore(), testStore()]);
    logA = createLogService({ db: storeA.database.db, origin: ORIGIN, logKey: LOG_KEY });
    logB = createLogService({ db: storeB.database.db, origin: ORIGIN, logKey: LOG_KEY }); // same identity, other leaves
    await Promise.all([logA.init(), logB.init()]);
    backend = appFor(logA);
    await new Promise<void>((resolve) => {
      server = serve({ fetch: (req) => backend.fetch(req), port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
        base = `http://127.0.0.1:${info.port}`;
        resolve();
      });
    });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-monitor-'));
    stateFile = path.join(dir, 'state', 'monitor.json');
  });
  afterEach(() => {
    backend = appFor(logA);
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all([storeA.cleanup(), storeB.cleanup()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('first run pins the key and stores the checkpoint; later runs check consistency', async () => {
    await append(logA, storeA.database.db, 5, 'a');
    expect(await run(), stderr.join('')).toBe(0);
    expect(stdout.join('')).toMatch(/first run/);
    expect(state()).toMatchObject({ tree_size: '5', verifier_key: logA.verifierKey() });
    expect(fs.readdirSync(path.dirname(stateFile))).toEqual(['monitor.json']); // no temp file left behind

    expect(await run()).toBe(0);
    expect(stdout.join('')).toMatch(/unchanged/);

    await append(logA, storeA.database.db, 4, 'a');
    await append(logA, storeA.database.db, 7, 'a');
    expect(await run(), stderr.join('')).toBe(0);
    expect(stdout.join('')).toMatch(/consistent: size 5 → 16/);
    expect(state().tree_size).toBe('16');
    const cp = openCheckpoint(state().checkpoint, [parseVerifierKey(logA.verifierKey())]).checkpoint;
    expect(cp.size).toBe(16n);
  });

  it('a split view (same size, another root) is an alarm, and the state is kept', async () => {
    await append(logB, storeB.database.db, 16, 'b'); // log B: same key and origin, different leaves
    const before = fs.readFileSync(stateFile, 'utf8');
    backend = appFor(logB);
    expect(await run()).toBe(1);
    const msg = stderr.join('');
    expect(msg).toMatch(/split view/);
    expect(msg).toContain(`stored size 16 root ${JSON.parse(before).root_hash}`);
    expect(msg).toMatch(/new size 16 root /);
    expect(fs.readFileSync(stateFile, 'utf8')).toBe(before);
  });

  it('a forked history (bigger, but not an extension) is an alarm', async () => {
    await append(logB, storeB.database.db, 5, 'b');
    const before = fs.readFileSync(stateFile, 'utf8');
    backend = appFor(logB);
    expect(await run()).toBe(1);
    expect(stderr.join('')).toMatch(/inconsistent: stored size 16 .*; new size 21 .*consistency proof fails/);
    expect(fs.readFileSync(stateFile, 'utf8')).toBe(before);
    // and log A, which did not fork, still passes
    backend = appFor(logA);
    expect(await run()).toBe(0);
  });

  it('a rollback to an older checkpoint is an alarm', async () => {
    const [old] = await storeA.database.db.select().from(schema.logCheckpoints).orderBy(asc(schema.logCheckpoints.treeSize)).limit(2).offset(1);
    expect(old!.treeSize).toBe(5);
    backend = fixedFront(logA, old!.note);
    expect(await run()).toBe(1);
    expect(stderr.join('')).toMatch(/rollback: stored size 16 .*new size 5/);
    expect(state().tree_size).toBe('16');
  });

  it('a lying proof endpoint is an alarm', async () => {
    await append(logA, storeA.database.db, 3, 'a');
    const app = new Hono();
    app.get('/v1/log/proof/consistency', (c) => c.json({ from: 16, to: 19, hashes: [Buffer.alloc(32).toString('base64'), Buffer.alloc(32).toString('base64')] }));
    app.route('/', appFor(logA));
    backend = app;
    expect(await run()).toBe(1);
    expect(stderr.join('')).toMatch(/consistency proof fails/);
    backend = appFor(logA);
    expect(await run()).toBe(0);
    expect(state().tree_size).toBe('19');
  });

  it('a changed log key or a checkpoint not signed by the pinned key is an alarm', async () => {
    const otherVkey = formatVerifierKey(ORIGIN, OTHER_KEY.publicKey);
    const cp = openCheckpoint(state().checkpoint, [parseVerifierKey(logA.verifierKey())]).checkpoint;
    const forged = signCheckpoint(cp, ed25519NoteSigner(ORIGIN, OTHER_KEY.publicKey, OTHER_KEY.sign));
    backend = fixedFront(logA, forged, otherVkey);
    expect(await run()).toBe(1);
    expect(stderr.join('')).toMatch(/now serves verifier key/);
    backend = fixedFront(logA, forged);
    expect(await run()).toBe(1);
    expect(stderr.join('')).toMatch(/does not verify/);
    // another origin, signed by the pinned key
    backend = fixedFront(logA, signCheckpoint({ ...cp, origin: 'other.example/log' }, ed25519NoteSigner(ORIGIN, LOG_KEY.publicKey, LOG_KEY.sign)));
    expect(await run()).toBe(1);
    expect(state().tree_size).toBe('19');
  });

  it('--verifier-key pins on first use; a log serving another key is an alarm', async () => {
    const fresh = path.join(dir, 'fresh.json');
    const saved = stateFile;
    stateFile = fresh;
    try {
      expect(await run('--verifier-key', formatVerifierKey(ORIGIN, OTHER_KEY.publicKey))).toBe(1);
      expect(fs.existsSync(fresh)).toBe(false);
      expect(await run('--verifier-key', logA.verifierKey())).toBe(0);
      expect(state().verifier_key).toBe(logA.verifierKey());
      // a different key on the command line than the pinned one is a usage error
      expect(await run('--verifier-key', formatVerifierKey(ORIGIN, OTHER_KEY.publicKey))).toBe(2);
    } finally {
      stateFile = saved;
    }
  });

  it('unusable input or an unreachable log: exit 2 with a one-line reason', async () => {
    const cases: { args: string[]; state?: string; want: RegExp }[] = [
      { args: [], want: /usage/ },
      { args: ['monitor'], want: /--log is required/ },
      { args: ['watch', '--log', base, '--state', stateFile], want: /usage/ },
      { args: ['monitor', '--log', 'not a url', '--state', stateFile], want: /not a URL/ },
      { args: ['monitor', '--log', 'ftp://x/', '--state', stateFile], want: /http/ },
      { args: ['monitor', '--log', 'http://127.0.0.1:1/', '--state', stateFile], want: /cannot reach/ },
      { args: ['monitor', '--log', `${base}/nowhere/`, '--state', stateFile], want: /HTTP 404/ },
      { args: ['monitor', '--log', base, '--state', stateFile, '--verifier-key', 'garbage'], want: /verifier key/ },
      { args: ['monitor', '--log', base, '--state', stateFile, '--bogus'], want: /bogus/ },
      { args: ['monitor', '--log', base, '--state', path.join(dir, 'corrupt.json')], state: '{not json', want: /not valid JSON/ },
      { args: ['monitor', '--log', base, '--state', path.join(dir, 'corrupt.json')], state: '{"version":1}', want: /unusable/ },
    ];
    for (const c of cases) {
      if (c.state !== undefined) fs.writeFileSync(path.join(dir, 'corrupt.json'), c.state);
      const errs: string[] = [];
      const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (errs.push(String(s)), true));
      const o = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
      let code: number;
      try {
        code = await cmdLog(c.args);
      } finally {
        e.mockRestore();
        o.mockRestore();
      }
      expect(code, c.args.join(' ')).toBe(2);
      expect(errs.join(''), c.args.join(' ')).toMatch(c.want);
      expect(errs.join('').trim().split('\n'), c.args.join(' ')).toHaveLength(1);
    }
    // a tampered state file (size edited without the signature) is refused rather than trusted
    const s = state();
    fs.writeFileSync(path.join(dir, 'corrupt.json'), JSON.stringify({ ...s, version: 1, log: base, tree_size: '3' }));
    stateFile = path.join(dir, 'corrupt.json');
    try {
      expect(await run()).toBe(2);
      expect(stderr.join('')).toMatch(/differ from the stored checkpoint/);
    } finally {
      stateFile = path.join(dir, 'state', 'monitor.json');
    }
  });
});
