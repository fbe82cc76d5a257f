// The meterproof command as a user meets it: help for every command without side effects, strict
// flags, `-` as standard input, a strict INVALID that names its skipped checks, a pinned
// checkpoint, and one-line errors for a busy port or an unreachable database.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateEd25519 } from '../src/core/ed25519.ts';
import { ed25519NoteSignerFromSeed, parseCheckpoint, signCheckpoint } from '../src/core/note.ts';
import { COMMANDS, GROUPS } from '../src/cli/usage.js';
import { type CliResult, runCli } from './support/cli.ts';
import { createTestDatabaseUrl, usingPostgres } from './support/db.ts';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { LOG_ORIGIN, type ProvedFiles, writeProvedFiles } from './support/proved-files.ts';
import { freePort } from './support/server.ts';
import { testService } from './support/service.ts';

type Result = CliResult;
/** The command without the test run's DATABASE_URL unless given: each test picks its store. */
const run = (args: string[], cwd: string, opts: { env?: Record<string, string | undefined>; stdin?: string } = {}) =>
  runCli(args, cwd, { ...opts, env: { DATABASE_URL: undefined, ...opts.env } });

const lines = (s: string) => s.trim().split('\n');
const check = (report: { checks: { name: string }[] }, name: string) => report.checks.find((c) => c.name === name);

/** Every command line a user can ask help for: commands and subcommands. */
const HELP_TARGETS: string[][] = Object.keys(COMMANDS).map((n) => n.split(' '));
for (const group of Object.keys(GROUPS)) HELP_TARGETS.push([group]);

describe('meterproof --help', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-help-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the general help lists every command and the exit codes; no command is a usage error', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const r = await run(args, dir);
      expect(r.status, args.join(' ')).toBe(0);
      for (const name of Object.keys(COMMANDS)) expect(r.stdout).toContain(`  ${name} `);
      expect(r.stdout).toMatch(/exit codes:\n {2}0 .*\n {2}1 .*\n {2}2 .*\n {2}3 .*\n {2}4 /);
    }
    const none = await run([], dir);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('usage: meterproof <command>');
  });

  it('every command and subcommand prints its usage with every flag and its values, exit 0, and does nothing', async () => {
    const port = await freePort();
    for (const words of HELP_TARGETS) {
      for (const flag of ['--help', '-h']) {
        // serve/worker/migrate would open DATA_DIR, bind PORT or migrate: help does none of it
        const r = await run([...words, flag], dir, { env: { PORT: String(port), PROVER_WORKERS: '0' } });
        expect(r.status, `${words.join(' ')} ${flag}: ${r.stderr}`).toBe(0);
        expect(r.stderr).toBe('');
        const names = Object.hasOwn(COMMANDS, words.join(' ')) ? [words.join(' ')] : (GROUPS as Record<string, string[]>)[words[0]!]!.map((s) => `${words[0]} ${s}`);
        for (const name of names) {
          expect(r.stdout).toContain(`usage: ${COMMANDS[name]!.usage}`);
          for (const o of COMMANDS[name]!.options) {
            expect(r.stdout, `${name} --${o.name}`).toContain(`--${o.name}${o.type === 'string' ? ` ${o.arg}` : ''}`);
            if (o.default !== undefined) expect(r.stdout.replace(/\s+/g, ' ')).toContain(`(default: ${o.default})`);
          }
        }
      }
    }
    // help for a flag of a command, anywhere among its arguments, and `help <command>`
    const verify = COMMANDS['verify']!.usage;
    for (const args of [['verify', 'bundle.json', '--trust', 't.json', '--help'], ['help', 'verify'], ['help', 'ceremony', 'beacon']]) {
      const r = await run(args, dir);
      expect(r.status, args.join(' ')).toBe(0);
      expect(r.stdout).toContain(args[1] === 'ceremony' ? COMMANDS['ceremony beacon']!.usage : verify);
    }
    expect(fs.readdirSync(dir)).toEqual([]); // no data directory, no key, no store
    // the port is still free: nothing listened on it
    await new Promise<void>((resolve, reject) => {
      const srv = net.createServer().once('error', reject);
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
    });
  }, 400_000);

  it.runIf(usingPostgres())('migrate --help creates no database objects (PostgreSQL)', async () => {
    const db = (await createTestDatabaseUrl())!;
    try {
      const r = await run(['migrate', '--help'], dir, { env: { DATABASE_URL: db.url } });
      expect(r.status).toBe(0);
      const sql = postgres(db.url, { max: 1, onnotice: () => {} });
      const rows = await sql`select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')`;
      await sql.end();
      expect(rows[0]!['n']).toBe(0);
      // and migrate itself does create them: the check above can fail
      expect((await run(['migrate'], dir, { env: { DATABASE_URL: db.url } })).status).toBe(0);
      const after = postgres(db.url, { max: 1, onnotice: () => {} });
      const rows2 = await after`select count(*)::int as n from pg_tables where schemaname = 'public'`;
      await after.end();
      expect(rows2[0]!['n']).toBeGreaterThan(0);
    } finally {
      await db.drop();
      fs.rmSync(path.join(dir, 'data'), { recursive: true, force: true });
    }
  }, 300_000);

  it('an unknown flag, a missing value or a missing required flag: one line, exit 2, nothing run', async () => {
    for (const [args, want] of [
      [['verify', 'b.json', '--trust', 't.json', '--bogus'], 'meterproof verify: unknown option --bogus (meterproof verify --help)'],
      [['serve', '--bogus'], 'meterproof serve: unknown option --bogus (meterproof serve --help)'],
      [['worker', '--port', '1'], 'meterproof worker: unknown option --port (meterproof worker --help)'],
      [['migrate', '--bogus'], 'meterproof migrate: unknown option --bogus (meterproof migrate --help)'],
      [['redact', 'b.json', '--bogus'], 'meterproof redact: unknown option --bogus (meterproof redact --help)'],
      [['keys', 'generate', '--bogus'], 'meterproof keys: unknown option --bogus (meterproof keys generate --help)'],
      [['trust', '--bogus'], 'meterproof trust: unknown option --bogus (meterproof trust --help)'],
      [['attest', '--offline', '--bogus'], 'meterproof attest: unknown option --bogus (meterproof attest --help)'],
      [['log', 'monitor', '--bogus'], 'meterproof log: unknown option --bogus (meterproof log monitor --help)'],
      [['ceremony', 'init', '--bogus'], 'meterproof ceremony: unknown option --bogus (meterproof ceremony init --help)'],
      [['verify', 'b.json', '--trust'], /^meterproof verify: Option '--trust <value>' argument missing \(meterproof verify --help\)$/],
      [['verify', 'b.json'], 'meterproof verify: --trust is required (meterproof verify --help)'],
      [['verify', 'b.json', '--trust', 't.json', '--profile', 'lax'], 'meterproof verify: --profile must be strict or standard, not "lax"'],
      [['log', 'monitor', '--log', 'http://x'], 'meterproof log: --state is required (meterproof log monitor --help)'],
      [['bogus'], 'meterproof: unknown command "bogus" (try meterproof --help)'],
    ] as const) {
      const r = await run([...args], dir);
      expect(r.status, args.join(' ')).toBe(2);
      expect(lines(r.stderr), args.join(' ')).toHaveLength(1);
      if (typeof want === 'string') expect(r.stderr.trim()).toBe(want);
      else expect(r.stderr.trim()).toMatch(want);
      expect(r.stdout).toBe('');
    }
    expect(fs.readdirSync(dir)).toEqual([]);
  }, 400_000);
});

describe('meterproof verify: stdin, strict reports, pinned checkpoints', () => {
  let dir: string;
  let f: ProvedFiles;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-verify-'));
    f = await writeProvedFiles(dir);
    fs.writeFileSync(path.join(dir, 'event.json'), JSON.stringify(pilotEvent));
    fs.writeFileSync(path.join(dir, 'tariff.json'), JSON.stringify(pilotTariff));
  }, 400_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads the bundle (or another file) from standard input given as -; two - are refused', async () => {
    const bundle = fs.readFileSync(f.bundle, 'utf8');
    const r = await run(['verify', '-', '--trust', 'trust.json'], dir, { stdin: bundle });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(lines(r.stdout).at(-1)).toBe('VALID (strict)');
    const t = await run(['verify', 'bundle.json', '--trust', '-'], dir, { stdin: fs.readFileSync(f.trust, 'utf8') });
    expect(t.status, t.stderr).toBe(0);
    const empty = await run(['verify', '-', '--trust', 'trust.json'], dir, { stdin: '' });
    expect(empty.status).toBe(2);
    expect(empty.stdout).not.toMatch(/^VALID/m);
    for (const args of [
      ['verify', '-', '--trust', '-'],
      ['verify', '-', '--trust=-'],
    ]) {
      const two = await run(args, dir, { stdin: bundle });
      expect(two.status, args.join(' ')).toBe(2);
      expect(two.stderr.trim()).toBe('meterproof verify: standard input (-) can be given only once; 2 arguments are -');
      expect(two.stdout).toBe('');
    }
    const write = await run(['verify', 'bundle.json', '--trust', 'trust.json', '--trust-state', '-'], dir);
    expect(write.status).toBe(2);
    expect(write.stderr.trim()).toBe('meterproof verify: --trust-state names a file to write; - (standard input) is not one');
  }, 300_000);

  it('a strict INVALID names every required check that was skipped, and why (CLI and POST /v1/verify)', async () => {
    // an offline bundle: signed, but no proof and no log receipt
    expect((await run(['keys', 'generate', '--out', 'k.json'], dir)).status).toBe(0);
    const a = await run(['attest', '--offline', '--event', 'event.json', '--tariff', 'tariff.json', '--key', 'k.json'], dir);
    expect(a.status, a.stderr).toBe(0);
    fs.writeFileSync(path.join(dir, 'offline.json'), a.stdout);
    const t = await run(['trust', '--key', 'k.json'], dir);
    fs.writeFileSync(path.join(dir, 'trust-offline.json'), t.stdout);
    const want = [
      { name: 'proof', reason: 'no billing_proof (proof status: pending)' },
      { name: 'inclusion', reason: 'no receipt' },
      { name: 'checkpoint', reason: 'no receipt' },
    ];
    const json = await run(['verify', 'offline.json', '--trust', 'trust-offline.json', '--json'], dir);
    expect(json.status).toBe(1);
    const report = JSON.parse(json.stdout);
    expect(report.valid).toBe(false);
    expect(report.checks.filter((c: { status: string }) => c.status === 'fail')).toEqual([]); // nothing failed: only skips make it invalid
    const names = report.skipped_but_required.map((s: { name: string }) => s.name);
    expect(names).toEqual(expect.arrayContaining(['proof', 'inclusion', 'checkpoint']));
    for (const s of report.skipped_but_required) expect(check(report, s.name)).toMatchObject({ status: 'skipped', reason: s.reason });
    for (const w of want) expect(report.skipped_but_required).toContainEqual(w);
    const text = await run(['verify', 'offline.json', '--trust', 'trust-offline.json'], dir);
    expect(text.status).toBe(1);
    const verdict = lines(text.stdout).at(-1)!;
    expect(verdict).toMatch(/^INVALID \(strict\): required but skipped: /);
    for (const s of report.skipped_but_required) expect(verdict).toContain(`${s.name} (${s.reason})`);
    expect(text.stdout).toMatch(/^✗ proof +skipped — no billing_proof \(proof status: pending\) \(required by strict\)$/m);
    // standard accepts the same bundle: nothing is listed
    const std = JSON.parse((await run(['verify', 'offline.json', '--trust', 'trust-offline.json', '--profile', 'standard', '--json'], dir)).stdout);
    expect(std).toMatchObject({ valid: true, skipped_but_required: [] });

    const s = await testService();
    try {
      const r = await s.call('POST', '/v1/verify', { token: null, body: JSON.parse(a.stdout) });
      expect(r.status).toBe(200);
      expect(r.body.valid).toBe(false);
      for (const w of want) expect(r.body.skipped_but_required).toContainEqual(w);
    } finally {
      await s.close();
    }
  }, 300_000);

  describe('--trusted-checkpoint', () => {
    const verify = (...extra: string[]) => run(['verify', 'bundle.json', '--trust', 'trust.json', '--json', ...extra], dir);
    const consistency = (r: Result) => check(JSON.parse(r.stdout), 'consistency');
    const at = () => parseCheckpoint(`${fs.readFileSync(f.checkpointAt, 'utf8').split('\n\n')[0]}\n`);

    it('accepts the bundle when its checkpoint is the pinned one (same size, same root, no proof)', async () => {
      expect(BigInt(at().size)).toBe(f.treeSize);
      const r = await verify('--trusted-checkpoint', 'checkpoint-at.txt');
      expect(r.status, r.stdout).toBe(0);
      expect(consistency(r)).toMatchObject({ status: 'pass' });
    }, 400_000);

    it('accepts a later pinned checkpoint with the consistency proof between them, and refuses it without', async () => {
      const ok = await verify('--trusted-checkpoint', 'checkpoint-later.txt', '--consistency-proof', 'consistency.json');
      expect(ok.status, ok.stdout).toBe(0);
      expect(consistency(ok)).toMatchObject({ status: 'pass' });
      const missing = await verify('--trusted-checkpoint', 'checkpoint-later.txt');
      expect(missing.status).toBe(1);
      expect(consistency(missing)).toMatchObject({ status: 'fail', code: 'CONSISTENCY_INVALID', reason: `a consistency proof from size ${f.treeSize} to ${f.treeSize + 2n} is required` });
      // a proof with one bit flipped
      const proof = JSON.parse(fs.readFileSync(f.consistency, 'utf8'));
      const h = Buffer.from(proof.hashes[0], 'base64');
      h[0]! ^= 1;
      proof.hashes[0] = h.toString('base64');
      fs.writeFileSync(path.join(dir, 'bad-proof.json'), JSON.stringify(proof));
      const bad = await verify('--trusted-checkpoint', 'checkpoint-later.txt', '--consistency-proof', 'bad-proof.json');
      expect(bad.status).toBe(1);
      expect(consistency(bad)).toMatchObject({ status: 'fail', code: 'CONSISTENCY_INVALID' });
    }, 300_000);

    it('refuses a pinned checkpoint of the same size with another root (split view), and one signed by another key', async () => {
      const cp = at();
      const root = Uint8Array.from(cp.rootHash);
      root[31]! ^= 1;
      fs.writeFileSync(path.join(dir, 'split.txt'), signCheckpoint({ origin: LOG_ORIGIN, size: cp.size, rootHash: root }, ed25519NoteSignerFromSeed(LOG_ORIGIN, f.logSeed)));
      const split = await verify('--trusted-checkpoint', 'split.txt');
      expect(split.status).toBe(1);
      expect(consistency(split)).toMatchObject({ status: 'fail', code: 'CONSISTENCY_INVALID', reason: `two checkpoints of size ${cp.size} with different roots (split view)` });
      // the very checkpoint of the bundle, signed by a key that is not the log's
      fs.writeFileSync(path.join(dir, 'other-key.txt'), signCheckpoint(cp, ed25519NoteSignerFromSeed(LOG_ORIGIN, generateEd25519().seed)));
      const other = await verify('--trusted-checkpoint', 'other-key.txt');
      expect(other.status).toBe(1);
      expect(consistency(other)).toMatchObject({ status: 'fail', code: 'CONSISTENCY_INVALID' });
      expect(consistency(other)!).toHaveProperty('reason', expect.stringMatching(/^trusted checkpoint: /));
      // a bundle without a receipt cannot be consistent with a pinned checkpoint
      const receiptless = JSON.parse(fs.readFileSync(f.bundle, 'utf8'));
      delete receiptless.receipt;
      fs.writeFileSync(path.join(dir, 'no-receipt.json'), JSON.stringify(receiptless));
      const noReceipt = await run(['verify', 'no-receipt.json', '--trust', 'trust.json', '--profile', 'standard', '--json', '--trusted-checkpoint', 'checkpoint-at.txt'], dir);
      expect(noReceipt.status).toBe(1);
      expect(consistency(noReceipt)).toMatchObject({ status: 'fail', code: 'CONSISTENCY_INVALID', reason: 'a trusted checkpoint was given but the bundle has no receipt' });
    }, 300_000);

    it('unusable pins are usage errors: not a checkpoint note, a proof without a pin, no log key in the trust material', async () => {
      const trust = JSON.parse(fs.readFileSync(f.trust, 'utf8'));
      delete trust.log;
      fs.writeFileSync(path.join(dir, 'trust-nolog.json'), JSON.stringify(trust));
      for (const [args, want] of [
        [['--trusted-checkpoint', 'event.json'], 'meterproof verify: --trusted-checkpoint is not a signed checkpoint note (origin, size, root hash, blank line, signature lines: GET /v1/log/checkpoint)'],
        [['--consistency-proof', 'consistency.json'], 'meterproof verify: --consistency-proof needs a trusted checkpoint (--trusted-checkpoint, or log.trusted_checkpoint in the trust file)'],
      ] as const) {
        const r = await verify(...args);
        expect(r.status, args.join(' ')).toBe(2);
        expect(r.stderr.trim()).toBe(want);
      }
      const nolog = await run(['verify', 'bundle.json', '--trust', 'trust-nolog.json', '--trusted-checkpoint', 'checkpoint-at.txt'], dir);
      expect(nolog.status).toBe(2);
      expect(nolog.stderr.trim()).toBe('meterproof verify: --trusted-checkpoint: the trust material has no log verifier key (log.verifier_key) to check it with');
    }, 400_000);
  });
});

describe('one-line start-up errors', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-start-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('serve on a port in use: one line, exit 4, no stack trace', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => resolve()));
    const port = (busy.address() as net.AddressInfo).port;
    const db = await createTestDatabaseUrl(); // PostgreSQL runs: a database of its own
    try {
      const r = await run(['serve'], dir, {
        env: { PORT: String(port), PROVER_WORKERS: '0', METERPROOF_ADMIN_TOKEN: 'cli-help-test-admin-token-0123456789', DATABASE_URL: db?.url, LOG_LEVEL: 'silent' },
      });
      expect(r.status, r.stderr).toBe(4);
      expect(r.stderr.trim()).toBe(`meterproof serve: 127.0.0.1:${port} is in use (set PORT or HOST)`);
      expect(r.stdout).not.toMatch(/at .*\.ts:\d+/);
    } finally {
      busy.close();
      await db?.drop();
    }
  }, 300_000);

  it('an unreachable or refusing DATABASE_URL: one line naming host and database (no password), exit 4', async () => {
    const closed = await freePort(); // nothing listens there
    for (const cmd of [['migrate'], ['serve']]) {
      const r = await run(cmd, dir, { env: { DATABASE_URL: `postgres://postgres:secret@127.0.0.1:${closed}/meterproof`, PROVER_WORKERS: '0', METERPROOF_ADMIN_TOKEN: 'cli-help-test-admin-token-0123456789' } });
      expect(r.status, cmd.join(' ')).toBe(4);
      expect(r.stderr.trim()).toBe(`meterproof ${cmd[0]}: cannot use the database at postgres://127.0.0.1:${closed}/meterproof (DATABASE_URL): ECONNREFUSED`);
      expect(r.stderr).not.toContain('secret');
      expect(r.stderr).not.toContain('internal error');
    }
    const bad = await run(['migrate'], dir, { env: { DATABASE_URL: 'not a url' } });
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toBe('meterproof migrate: invalid environment: DATABASE_URL: Invalid URL');
  }, 300_000);
});
