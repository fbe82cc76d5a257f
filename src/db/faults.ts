// Store faults: which errors mean "the database is unavailable" (answered 503 STORE_UNAVAILABLE,
// retryable), a one-line description of a store error that is safe to log, and the client-side
// deadline every statement runs under.

/** Codes (SQLSTATE or driver) of an unavailable store: the request may succeed when retried. */
const UNAVAILABLE = new Set([
  // postgres.js and Node socket errors
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  // ours: the statement did not answer within the deadline
  'STORE_DEADLINE',
  // SQLSTATEs
  '57P01', // admin_shutdown (pg_terminate_backend, a fast shutdown)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, in recovery)
  '57014', // query_canceled (statement_timeout)
  '25P03', // idle_in_transaction_session_timeout
  '53300', // too_many_connections
  '3D000', // invalid_catalog_name (the database is not there)
]);

/** SQLSTATE classes (the first two characters) that are unavailability as a whole. */
const UNAVAILABLE_CLASSES = new Set(['08', '53']); // connection exception, insufficient resources

/** Names of SQLSTATE classes (PostgreSQL appendix A): what a log line says instead of the message. */
const CLASSES: Record<string, string> = {
  '08': 'connection exception',
  '0A': 'feature not supported',
  '22': 'data exception',
  '23': 'integrity constraint violation',
  '25': 'invalid transaction state',
  '28': 'invalid authorization specification',
  '3D': 'invalid catalog name',
  '40': 'transaction rollback',
  '42': 'syntax error or access rule violation',
  '53': 'insufficient resources',
  '54': 'program limit exceeded',
  '55': 'object not in prerequisite state',
  '57': 'operator intervention',
  '58': 'system error',
  P0: 'PL/pgSQL error',
  XX: 'internal error',
};

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The errors `e` wraps (drizzle wraps the driver's error as `cause`), outermost first. */
function chain(e: unknown): unknown[] {
  const out: unknown[] = [];
  for (let cur: unknown = e; cur && typeof cur === 'object' && out.length < 5; cur = (cur as { cause?: unknown }).cause) out.push(cur);
  return out;
}

/** The first SQLSTATE or driver error code in `e`'s chain. */
export function storeErrorCode(e: unknown): string | undefined {
  for (const x of chain(e)) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === 'string' && (SQLSTATE.test(code) || UNAVAILABLE.has(code))) return code;
  }
  return undefined;
}

/** True when `e` says the store is unreachable, stopped, overloaded or too slow (retryable). */
export function isStoreUnavailable(e: unknown): boolean {
  for (const x of chain(e)) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === 'string' && (UNAVAILABLE.has(code) || (SQLSTATE.test(code) && UNAVAILABLE_CLASSES.has(code.slice(0, 2))))) return true;
    // PGlite once closed (the process is shutting down)
    if (x instanceof Error && x.message === 'PGlite is closed') return true;
  }
  return false;
}

/** True when `e` came from the store: it may carry statement text and parameters. */
export function isStoreError(e: unknown): boolean {
  return chain(e).some((x) => storeErrorCode(x) !== undefined || 'query' in (x as object) || 'params' in (x as object) || (x as Error).name === 'DrizzleQueryError');
}

/**
 * A store error in a few words, safe for a log line: its SQLSTATE (or driver code) and the
 * SQLSTATE's class, never the message (drizzle's repeats the statement and its parameters — a
 * key hash, whole bundles; PostgreSQL's can quote values).
 */
export function describeStoreError(e: unknown): string {
  const code = storeErrorCode(e);
  if (!code) return 'store error (no SQLSTATE)';
  if (!SQLSTATE.test(code)) return `store error ${code} (connection)`;
  if (code === '57014') return 'store error 57014 (statement timeout or cancel)';
  return `store error ${code} (${CLASSES[code.slice(0, 2)] ?? 'other'})`;
}

/** The error a statement is rejected with when it has not answered within its deadline. */
export class StoreDeadline extends Error {
  readonly code = 'STORE_DEADLINE';
  constructor(ms: number) {
    super(`the store did not answer within ${ms} ms`);
  }
}

/** `p`, or a StoreDeadline rejection after `ms` (the work itself goes on; its outcome is dropped). */
export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  if (!(ms > 0)) return p;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreDeadline(ms)), ms);
    timer.unref();
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

/**
 * A transaction that must begin within `ms`: `open(body)` starts it through the driver (which may
 * first wait for a connection, or for PGlite's one transaction at a time). If it has not begun
 * by then, the caller gets StoreDeadline, and should it begin later, `body` is not run (the
 * transaction throws at once and is rolled back). Once begun, its statements have their own bounds.
 */
export function transactionWithin<Tx, R>(ms: number, open: (body: (tx: Tx) => Promise<R>) => Promise<R>, body: (tx: Tx) => Promise<R>): Promise<R> {
  let late = false;
  let started = false;
  const run = open((tx) => {
    started = true;
    if (late) throw new StoreDeadline(ms);
    return body(tx);
  });
  let timer: NodeJS.Timeout | undefined;
  const acquire = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      if (started) return;
      late = true;
      reject(new StoreDeadline(ms));
    }, ms);
    timer.unref();
  });
  return Promise.race([run, acquire]).finally(() => clearTimeout(timer));
}
