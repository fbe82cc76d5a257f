// `meterproof serve` (= npm start), `meterproof worker` and `meterproof migrate`: the only place
// that wires real dependencies (config, store, keys, prover, log, HTTP server).
import fs from 'node:fs';
import v8 from 'node:v8';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { serve as serveHttp } from '@hono/node-server';
import { answerClientErrors } from '../http/problem.ts';
import { B64TOKEN, b64tokenProblem, loadConfig, storeTimeouts, type Config } from '../config.ts';
import { signingKeyFromJwk } from '../core/keys.ts';
import { openDatabase, type Database } from '../db/index.ts';
import { StoreLockedError } from '../db/store-lock.ts';
import { createApp } from '../http/app.ts';
import { buildContainer } from '../service/container.ts';
import { startProofWorker } from '../service/proofs.ts';
import { startWebhookDeliverer } from '../service/webhooks.ts';
import type { createProveFn } from '../service/prove.ts';
import { zkParts } from '../service/zk.ts';
import { createLogService, loadOrCreateLogKey, type LogService } from '../log/service.ts';
import { terminateCurve } from '../verifier/groth16.ts';
import { createLogger, errorFields, type Logger } from '../service/logger.ts';
import { UsageError, out, parseCommand } from './io.ts';

/** Longest a shutdown waits for in-flight requests before closing their connections. */
const DRAIN_TIMEOUT_MS = 30_000;

/** Stop accepting connections and wait for in-flight requests (keep-alive connections are closed
 *  as soon as they are idle); after `timeoutMs` the remaining connections are closed. */
async function drainServer(server: import('node:http').Server, timeoutMs: number): Promise<void> {
  const closed = new Promise<void>((r) => server.close(() => r()));
  const idle = setInterval(() => server.closeIdleConnections(), 50);
  const hard = setTimeout(() => server.closeAllConnections(), timeoutMs);
  await closed;
  clearInterval(idle);
  clearTimeout(hard);
}

/** Resolves on the first SIGTERM or SIGINT. */
const signalled = () =>
  new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });

const logErrors = (logger: Logger, msg: string) => (e: unknown) => logger.error({ err: errorFields(e) }, msg);

function config(): Config {
  try {
    return loadConfig();
  } catch (e) {
    // one line: "invalid environment: A: why; B: why"
    throw new UsageError((e as Error).message.replace(/:\s*\n\s*/, ': ').replace(/\s*\n\s*/g, '; '));
  }
}

/** Exit code of a resource that could not be used at start: port in use, database unreachable. */
export const EXIT_UNAVAILABLE = 4;

/** Connection failures (rather than bugs): the reason to print, or null. */
function connectionFailure(e: unknown): string | null {
  const { code, name, message } = (e ?? {}) as { code?: unknown; name?: unknown; message?: unknown };
  if (typeof code !== 'string') return null;
  if (['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'CONNECT_TIMEOUT', 'ENOENT', 'EACCES'].includes(code)) return code;
  // PostgreSQL refused the session: 28xxx authorization, 3D000 no such database, 57P03 starting up
  if (name === 'PostgresError' && /^(28|3D|57P0)/.test(code)) return `${code} ${String(message)}`;
  return null;
}

/** The database URL without credentials or query (what is safe to print). */
function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return 'DATABASE_URL';
  }
}

async function open(cfg: Config): Promise<Database> {
  fs.mkdirSync(cfg.DATA_DIR, { recursive: true, mode: 0o700 });
  let database: Database | undefined;
  try {
    const timeouts = storeTimeouts(cfg);
    database = await openDatabase(cfg.DATABASE_URL ? { url: cfg.DATABASE_URL, timeouts } : { dataDir: path.join(cfg.DATA_DIR, 'pglite'), lockName: `DATA_DIR ${cfg.DATA_DIR}`, timeouts });
    await database.migrate();
    return database;
  } catch (e) {
    if (e instanceof StoreLockedError) throw new UsageError(e.message, 3);
    const failure = cfg.DATABASE_URL ? connectionFailure(e) : null;
    if (failure) {
      await database?.close().catch(() => {});
      throw new UsageError(`cannot use the database at ${where(cfg.DATABASE_URL!)} (DATABASE_URL): ${failure}`, EXIT_UNAVAILABLE);
    }
    throw e;
  }
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
  const token = fs.readFileSync(file, 'utf8').trim();
  if (!B64TOKEN.test(token)) throw new UsageError(`the admin token in ${file} ${b64tokenProblem}`);
  return { token, file };
}

function envKey(json: string | undefined, name: string) {
  if (!json) return undefined;
  try {
    return signingKeyFromJwk(JSON.parse(json));
  } catch (e) {
    throw new UsageError(`${name} is not a private Ed25519 JWK: ${(e as Error).message}`);
  }
}

/**
 * Bounds the server's heap. Where collections are cheap (a live heap of ~45 MiB at 1,000
 * events/s) V8 lets the old generation grow to ~4× the live heap before collecting it; at
 * HEAP_GROWTH_PERCENT=100 (2×) the resident memory of a minute at 1,000 req/s peaked at 197 MiB
 * instead of 283–290, and a batch run at 261 instead of 335–419, at the same CPU per event within
 * the noise (docs/benchmarks.md). V8 reads the factor at every major collection, so setting it
 * now takes effect; a --heap-growing-percent given to node (NODE_OPTIONS) wins.
 */
function boundHeapGrowth(percent: number): void {
  const given = [...process.execArgv, ...(process.env['NODE_OPTIONS']?.split(/\s+/) ?? [])].some((a) => /^--heap[-_]growing[-_]percent\b/.test(a));
  if (percent > 0 && !given) v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}

export async function cmdServe(argv: string[]): Promise<number> {
  parseCommand('serve', argv);
  const cfg = config();
  boundHeapGrowth(cfg.HEAP_GROWTH_PERCENT);
  const logger = createLogger({ level: cfg.LOG_LEVEL });
  const database = await open(cfg);
  const admin = adminToken(cfg);
  const zk = await zkParts();
  const logKey = loadOrCreateLogKey(cfg.DATA_DIR, cfg.METERPROOF_LOG_KEY);
  const container = await buildContainer({
    database,
    dataDir: cfg.DATA_DIR,
    adminToken: admin.token,
    zk,
    onStoreFailure: (message, e) => logErrors(logger, message)(e),
    signingKey: envKey(cfg.METERPROOF_SIGNING_KEY, 'METERPROOF_SIGNING_KEY'),
    keyRotationGraceMs: cfg.KEY_ROTATION_GRACE_MS,
    revocationListLifetimeMs: cfg.REVOCATION_LIST_LIFETIME_MS,
    popToleranceMs: cfg.POP_TOLERANCE_MS,
    proofQueueLimit: cfg.PROOF_QUEUE_LIMIT,
    ...(cfg.METERPROOF_SAMPLING_SECRET ? { samplingSecret: cfg.METERPROOF_SAMPLING_SECRET } : {}),
    log: ({ notifier, metrics }) => createLogService({ db: database.db, origin: cfg.METERPROOF_LOG_ORIGIN, logKey, notifier, metrics }),
    verifyThreads: cfg.VERIFY_THREADS,
  });
  const log = container.deps.log as LogService;
  await log.init();
  const sequencer = log.startSequencer({ minRoundMs: cfg.LOG_CHECKPOINT_INTERVAL_MS, onError: logErrors(logger, 'log sequencer round failed') });
  const deliverer = cfg.WEBHOOK_DELIVERY === 'on' ? startWebhookDeliverer(database.db, { onError: logErrors(logger, 'webhook delivery round failed') }) : null;
  // The prover (its threads load the proving key and build the curve, ~2 s) starts once the
  // server listens: proofs are asynchronous, so nothing waits for it; jobs queue meanwhile.
  let prove: Awaited<ReturnType<typeof createProveFn>> | null = null;
  let worker: ReturnType<typeof startProofWorker> | null = null;
  let draining = false;
  const startProver = async () => {
    if (cfg.PROVER_WORKERS === 0) return;
    const { createProveFn } = await import('../service/prove.ts');
    prove = await createProveFn(container.keys, { workers: cfg.PROVER_WORKERS });
    if (draining) return;
    worker = startProofWorker(database.db, container.proofs, prove.prove, { concurrency: cfg.PROVER_WORKERS, onError: logErrors(logger, 'proof job failed'), metrics: container.metrics });
  };
  let proverStarted: Promise<void> = Promise.resolve();
  // deferred proof jobs are queued again once the queue is below half its limit
  const sweeper = container.policies.startSweeper({ onQueued: () => worker?.poke(), onError: logErrors(logger, 'proof sweeper round failed') });
  await container.waiters.listening();
  const app = createApp({
    ...container.deps,
    bodyLimitBytes: cfg.BODY_LIMIT_BYTES,
    logger,
    state: { sequencerRunning: () => sequencer.running(), draining: () => draining },
    onAttested: () => {
      sequencer.poke();
      worker?.poke();
    },
  });
  const server = serveHttp({ fetch: app.fetch, port: cfg.PORT, hostname: cfg.HOST }, (info) => {
    proverStarted = startProver().catch(logErrors(logger, 'the prover did not start'));
    logger.info(
      {
        port: info.port,
        store: database.kind === 'pglite' ? `pglite (${path.join(cfg.DATA_DIR, 'pglite')})` : 'postgres',
        admin_token: admin.file ? `in ${admin.file}` : 'from METERPROOF_ADMIN_TOKEN',
        log_origin: cfg.METERPROOF_LOG_ORIGIN,
        prover_workers: cfg.PROVER_WORKERS,
      },
      `meterproof listening on http://${cfg.HOST}:${info.port}`,
    );
  }) as import('node:http').Server;
  answerClientErrors(server);
  const listenFailure = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    server.once('listening', () => resolve(null));
    server.once('error', resolve);
  });
  if (listenFailure) {
    draining = true;
    await container.waiters.close();
    await sequencer.stop();
    await database.close();
    const reason = listenFailure.code === 'EADDRINUSE' ? 'is in use (set PORT or HOST)' : `cannot be listened on: ${listenFailure.code ?? listenFailure.message}`;
    throw new UsageError(`${cfg.HOST}:${cfg.PORT} ${reason}`, EXIT_UNAVAILABLE);
  }
  const signal = await signalled();
  // Graceful shutdown: /ready answers 503 from now on; waiting ?proof=sync / ?log=sync requests
  // answer with what they have; no new connection is accepted and in-flight requests finish
  // (their group commit included: nothing acknowledged is cut off); then the background loops
  // stop and the store is closed.
  draining = true;
  logger.info({ signal }, 'shutting down: draining in-flight requests');
  await container.waiters.close();
  await drainServer(server, DRAIN_TIMEOUT_MS);
  await container.attest.writer.idle();
  await proverStarted;
  await sweeper.stop();
  await (worker as ReturnType<typeof startProofWorker> | null)?.stop();
  await (prove as Awaited<ReturnType<typeof createProveFn>> | null)?.close();
  await sequencer.stop();
  await deliverer?.stop();
  await database.close();
  await container.verifier.close();
  // snarkjs's shared bn128 curve, if anything in this process built it, keeps worker threads of
  // its own, which would keep the process alive after everything else has stopped
  await terminateCurve();
  logger.info('stopped');
  logger.flush();
  return 0;
}

/** `meterproof worker`: a prover process pulling jobs from the shared PostgreSQL. */
export async function cmdWorker(argv: string[]): Promise<number> {
  parseCommand('worker', argv);
  const cfg = config();
  if (!cfg.DATABASE_URL) throw new UsageError('meterproof worker needs DATABASE_URL (PostgreSQL); the embedded store serves one process');
  const database = await open(cfg);
  const container = await buildContainer({
    database,
    dataDir: cfg.DATA_DIR,
    adminToken: adminToken(cfg).token,
    zk: await zkParts(),
    signingKey: envKey(cfg.METERPROOF_SIGNING_KEY, 'METERPROOF_SIGNING_KEY'),
    ...(cfg.METERPROOF_SAMPLING_SECRET ? { samplingSecret: cfg.METERPROOF_SAMPLING_SECRET } : {}),
  });
  const workers = Math.max(1, cfg.PROVER_WORKERS);
  const { createProveFn } = await import('../service/prove.ts');
  const prove = await createProveFn(container.keys, { workers });
  const logger = createLogger({ level: cfg.LOG_LEVEL });
  const worker = startProofWorker(database.db, container.proofs, prove.prove, { concurrency: workers, onError: logErrors(logger, 'proof job failed') });
  logger.info({ worker: worker.id, prover_threads: workers }, `meterproof worker ${worker.id} pulling proof jobs`);
  await signalled();
  await worker.stop();
  await prove.close();
  await database.close();
  logger.flush();
  return 0;
}

export async function cmdMigrate(argv: string[]): Promise<number> {
  parseCommand('migrate', argv);
  const cfg = config();
  const database = await open(cfg);
  out(`migrations applied (${database.kind})`);
  await database.close();
  return 0;
}
