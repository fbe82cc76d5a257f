// Environment, parsed once at start-up with a clear message for anything wrong.
import { z } from 'zod';
import { LOG_LEVELS } from './service/logger.ts';
import { B64TOKEN } from './service/auth.ts';
import { KEY_REFRESH_MS } from './service/keyring.ts';
import { DEFAULT_PROOF_QUEUE_LIMIT, MIN_SAMPLING_SECRET } from './service/proof-policy.ts';

export { B64TOKEN };
export const b64tokenProblem = 'may hold only A-Z a-z 0-9 - . _ ~ + / (then trailing =), as RFC 6750 b64token allows in Authorization: Bearer';
import { DEFAULT_TIMEOUTS, type StoreTimeouts } from './db/index.ts';

const Env = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8088),
  HOST: z.string().default('127.0.0.1'),
  DATA_DIR: z.string().default('./data'),
  DATABASE_URL: z.string().url().optional(),
  METERPROOF_ADMIN_TOKEN: z.string().min(24, 'METERPROOF_ADMIN_TOKEN must be at least 24 characters').regex(B64TOKEN, `METERPROOF_ADMIN_TOKEN ${b64tokenProblem}`).optional(),
  /** A private JWK (JSON) to sign statements with instead of a key file in DATA_DIR. */
  METERPROOF_SIGNING_KEY: z.string().optional(),
  /** A private JWK (JSON) for checkpoint signatures instead of DATA_DIR/keys/log.key.json. */
  METERPROOF_LOG_KEY: z.string().optional(),
  METERPROOF_LOG_ORIGIN: z.string().regex(/^[^\s+]+$/, 'a log origin has no spaces or "+"').default('meterproof.local/log'),
  /** Shortest time between two log integration rounds (so between two signed checkpoints). */
  LOG_CHECKPOINT_INTERVAL_MS: z.coerce.number().int().min(0).max(60_000).default(100),
  /** In-process prover workers (0 = none; run `meterproof worker` elsewhere). */
  PROVER_WORKERS: z.coerce.number().int().min(0).max(64).default(1),
  /** Worker threads of POST /v1/verify/batch (default: the available cores). */
  VERIFY_THREADS: z.coerce.number().int().min(0).max(64).optional(),
  /** Proof jobs queued or running at which new eager jobs are deferred (docs/operations.md). */
  PROOF_QUEUE_LIMIT: z.coerce.number().int().min(1).max(100_000_000).default(DEFAULT_PROOF_QUEUE_LIMIT),
  /** The secret that picks which events a `sampled` tenant proves at attest time; default: one
   *  generated into DATA_DIR/keys/sampling.key. */
  METERPROOF_SAMPLING_SECRET: z.string().min(MIN_SAMPLING_SECRET, `METERPROOF_SAMPLING_SECRET must be at least ${MIN_SAMPLING_SECRET} characters`).optional(),
  BODY_LIMIT_BYTES: z.coerce.number().int().min(1024).default(2 * 1024 * 1024),
  /** Overlap during which a rotated-out key stays valid, so processes with a cached key stay
   *  correct. At least the key refresh interval: a process that read the old key just before a
   *  rotation keeps signing with it for up to that long, and must stay inside its window. */
  KEY_ROTATION_GRACE_MS: z.coerce
    .number()
    .int()
    .min(KEY_REFRESH_MS, `KEY_ROTATION_GRACE_MS must be at least ${KEY_REFRESH_MS} (the key refresh interval): processes sign with a key they read up to that long ago`)
    .default(5000),
  /** Whether this process delivers webhooks (any number of processes may; each message goes once). */
  WEBHOOK_DELIVERY: z.enum(['on', 'off']).default('on'),
  /** The old generation may grow to (1 + this/100) × what survived the last major collection
   *  before the next one (V8's --heap-growing-percent; 0: V8's own factor, up to 4×). */
  HEAP_GROWTH_PERCENT: z.coerce.number().int().min(0).max(1000).default(100),
  /** Structured log level (JSON lines on stdout). */
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  /** `expires_at − issued_at` of the served revocation list; it is signed again at half of it. */
  REVOCATION_LIST_LIFETIME_MS: z.coerce.number().int().min(60_000).max(30 * 24 * 3600 * 1000).default(24 * 3600 * 1000),
  /** Bilateral metering: the bound on |now − timestamp| of a consumer PoP. */
  POP_TOLERANCE_MS: z.coerce.number().int().min(1000).max(3600_000).default(300_000),
  /** Store bounds (docs/operations.md, "Database faults"): connecting to PostgreSQL, its
   *  statement_timeout and idle_in_transaction_session_timeout. A statement's client-side
   *  deadline is connect + statement + 1 s (also PGlite's bound). */
  DB_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(DEFAULT_TIMEOUTS.connectMs),
  DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(DEFAULT_TIMEOUTS.statementMs),
  DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(DEFAULT_TIMEOUTS.idleInTransactionMs),
});
export type Config = z.infer<typeof Env>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const r = Env.safeParse(env);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid environment:\n${lines.join('\n')}`);
  }
  return r.data;
}

export const storeTimeouts = (cfg: Config): StoreTimeouts => ({
  connectMs: cfg.DB_CONNECT_TIMEOUT_MS,
  statementMs: cfg.DB_STATEMENT_TIMEOUT_MS,
  idleInTransactionMs: cfg.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
});
