// `meterproof serve` (= npm start), `meterproof worker` and `meterproof migrate`: the only place
// that wires real dependencies (config, store, keys, prover, log, HTTP server).
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { serve as serveHttp } from '@hono/node-server';
import { answerClientErrors } from '../http/problem.ts';
import { loadConfig, type Config } from '../config.ts';
import { signingKeyFromJwk } from '../core/keys.ts';
import { openDatabase, type Database } from '../db/index.ts';
import { createApp } from '../http/app.ts';
import { buildContainer } from '../service/container.ts';
import { startProofWorker } from '../service/proofs.ts';
import { createProveFn } from '../service/prove.ts';
import { zkParts } from '../service/zk.ts';
import { createLogService, loadOrCreateLogKey, type LogService } from '../log/service.ts';
import { terminateCurve } from '../verifier/groth16.ts';
import { UsageError, err, out } from './io.ts';

function config(): Config {
  try {
    return loadConfig();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

async function open(cfg: Config): Promise<Database> {
  fs.mkdirSync(cfg.DATA_DIR, { recursive: true, mode: 0o700 });
  const database = await openDatabase(cfg.DATABASE_URL ? { url: cfg.DATABASE_URL } : { dataDir: path.join(cfg.DATA_DIR, 'pglite') });
  await database.migrate();
  return database;
}

/** The admin token: from the environment, or generated once into DATA_DIR (mode 0600). */
function adminToken(cfg: Config): { token: string; file: string | null } {
  if (cfg.METERPROOF_ADMIN_TOKEN) return { token: cfg.METERPROOF_ADMIN_TOKEN, file: null };
  const file = path.join(cfg.DATA_DIR, 'admin-token');
  if (!fs.existsSync(file)) {
    try {
      fs.writeFileSync(file, `mpa_${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  return { token: fs.readFileSync(file, 'utf8').trim(), file };
}

function envKey(json: string | undefined, name: string) {
  if (!json) return undefined;
  try {
    return signingKeyFromJwk(JSON.parse(json));
  } catch (e) {
    throw new UsageError(`${name} is not a private Ed25519 JWK: ${(e as Error).message}`);
  }
}

export async function cmdServe(_argv: string[]): Promise<number> {
  const cfg = config();
  const database = await open(cfg);
  const admin = adminToken(cfg);
  const zk = await zkParts();
  const logKey = loadOrCreateLogKey(cfg.DATA_DIR, cfg.METERPROOF_LOG_KEY);
  const container = await buildContainer({
    database,
    dataDir: cfg.DATA_DIR,
    adminToken: admin.token,
    zk,
    signingKey: envKey(cfg.METERPROOF_SIGNING_KEY, 'METERPROOF_SIGNING_KEY'),
    keyRotationGraceMs: cfg.KEY_ROTATION_GRACE_MS,
    log: () => createLogService({ db: database.db, origin: cfg.METERPROOF_LOG_ORIGIN, logKey }),
  });
  const log = container.deps.log as LogService;
  await log.init();
  const sequencer = log.startSequencer({ minRoundMs: cfg.LOG_CHECKPOINT_INTERVAL_MS, onError: (e) => err(`log sequencer: ${String(e)}`) });
  const prove = cfg.PROVER_WORKERS > 0 ? await createProveFn(container.keys, { workers: cfg.PROVER_WORKERS }) : null;
  const worker = prove ? startProofWorker(database.db, container.proofs, prove.prove, { concurrency: cfg.PROVER_WORKERS, onError: (e) => err(`proof job failed: ${String(e)}`) }) : null;
  const app = createApp({
    ...container.deps,
    bodyLimitBytes: cfg.BODY_LIMIT_BYTES,
    onAttested: () => {
      sequencer.poke();
      worker?.poke();
    },
  });
  const server = serveHttp({ fetch: app.fetch, port: cfg.PORT, hostname: cfg.HOST }, (info) => {
    out(`meterproof listening on http://${cfg.HOST}:${info.port}`);
    out(`  store: ${database.kind}${database.kind === 'pglite' ? ` (${path.join(cfg.DATA_DIR, 'pglite')})` : ''}`);
    out(`  admin token: ${admin.file ? `in ${admin.file}` : 'from METERPROOF_ADMIN_TOKEN'}`);
    out(`  signing key: ${container.keys ? 'ready' : '-'}; log origin: ${cfg.METERPROOF_LOG_ORIGIN}; prover workers: ${cfg.PROVER_WORKERS}`);
  });
  answerClientErrors(server);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  out('shutting down…');
  await new Promise<void>((r) => server.close(() => r()));
  await worker?.stop();
  await prove?.close();
  await sequencer.stop();
  await database.close();
  // POST /v1/verify checks Groth16 proofs on this thread; the bn128 curve it builds keeps worker
  // threads of its own, which would keep the process alive after everything else has stopped
  await terminateCurve();
  return 0;
}

/** `meterproof worker`: a prover process pulling jobs from the shared PostgreSQL. */
export async function cmdWorker(_argv: string[]): Promise<number> {
  const cfg = config();
  if (!cfg.DATABASE_URL) throw new UsageError('meterproof worker needs DATABASE_URL (PostgreSQL); the embedded store serves one process');
  const database = await open(cfg);
  const container = await buildContainer({ database, dataDir: cfg.DATA_DIR, adminToken: adminToken(cfg).token, zk: await zkParts(), signingKey: envKey(cfg.METERPROOF_SIGNING_KEY, 'METERPROOF_SIGNING_KEY') });
  const workers = Math.max(1, cfg.PROVER_WORKERS);
  const prove = await createProveFn(container.keys, { workers });
  const worker = startProofWorker(database.db, container.proofs, prove.prove, { concurrency: workers, onError: (e) => err(`proof job failed: ${String(e)}`) });
  out(`meterproof worker ${worker.id} pulling proof jobs (${workers} prover threads)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await worker.stop();
  await prove.close();
  await database.close();
  return 0;
}

export async function cmdMigrate(_argv: string[]): Promise<number> {
  const cfg = config();
  const database = await open(cfg);
  out(`migrations applied (${database.kind})`);
  await database.close();
  return 0;
}
