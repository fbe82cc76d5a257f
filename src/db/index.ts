// Opening the store: embedded PGlite (default) or PostgreSQL through postgres.js when a URL is
// given. Both are drizzle PgDatabase instances over the same schema and migrations.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { PGlite, Transaction } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import * as schema from './schema.ts';
import { type Notifier, localNotifier, postgresNotifier } from './notify.ts';
import { acquireStoreLock } from './store-lock.ts';
import { StoreDeadline, transactionWithin, withDeadline } from './faults.ts';

export { schema };
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export const MIGRATIONS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
/** Advisory lock keys (arbitrary constants, documented in docs/operations.md). */
export const LOCK_MIGRATE = 7_265_001;
export const LOCK_SEQUENCER = 7_265_002;
export const LOCK_KEYS = 7_265_003;

export interface Database {
  readonly db: Db;
  readonly kind: 'pglite' | 'postgres';
  /** Wake-ups across the processes of this store (LISTEN/NOTIFY, or in-process on PGlite). */
  readonly notifier: Notifier;
  migrate(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** postgres:// URL; when absent the embedded PGlite store is used. */
  readonly url?: string;
  /** PGlite data directory; absent = in memory. Opened by one process at a time: the lock
   *  `<dataDir>.lock` is taken first (StoreLockedError when another process holds it). */
  readonly dataDir?: string;
  /** What a StoreLockedError message calls the directory (default: the parent of dataDir). */
  readonly lockName?: string;
  readonly maxConnections?: number;
  readonly timeouts?: Partial<StoreTimeouts>;
}

/** Bounds on the store (docs/operations.md, "Database faults"). */
export interface StoreTimeouts {
  /** Establishing a PostgreSQL connection (TCP, TLS, authentication). */
  readonly connectMs: number;
  /** PostgreSQL `statement_timeout`: the server cancels a statement running longer (57014). */
  readonly statementMs: number;
  /** PostgreSQL `idle_in_transaction_session_timeout`: a session idle inside a transaction this
   *  long (its client stalled or gone) is ended, releasing its locks. */
  readonly idleInTransactionMs: number;
}

export const DEFAULT_TIMEOUTS: StoreTimeouts = { connectMs: 3000, statementMs: 5000, idleInTransactionMs: 10_000 };

/** The client-side deadline of one statement, waiting for a connection included: what a request
 *  waits for the store at most per statement, whatever the network does (a dropped packet is not
 *  a closed connection). PGlite, in-process, has no server-side statement timeout: this is its bound. */
export const statementDeadlineMs = (t: StoreTimeouts) => t.connectMs + t.statementMs + 1000;

export async function openDatabase(opts: OpenOptions): Promise<Database> {
  const timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  const deadlineMs = statementDeadlineMs(timeouts);
  if (opts.url) {
    assertPostgresPatched();
    // libpq-style `?host=/var/run/postgresql` selects a Unix socket directory (cheaper than TCP).
    const url = new URL(opts.url);
    const socketDir = url.searchParams.get('host');
    url.searchParams.delete('host');
    const connect = (max: number, statementMs: number) =>
      postgres(url.toString(), {
        max,
        onnotice: () => {},
        prepare: true,
        connect_timeout: timeouts.connectMs / 1000,
        // reconnect attempts after a failure: 50 ms doubling up to 1 s (postgres.js would back off
        // up to 20 s, so service would resume up to 20 s after the database is back)
        backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
        connection: { statement_timeout: statementMs, idle_in_transaction_session_timeout: timeouts.idleInTransactionMs },
        ...(socketDir ? { host: socketDir } : {}),
      });
    const client = connect(opts.maxConnections ?? 10, timeouts.statementMs);
    const db = drizzlePostgres(bounded(client, deadlineMs), { schema }) as unknown as Db;
    return {
      db,
      kind: 'postgres',
      notifier: postgresNotifier(db, client),
      async migrate() {
        // Migrations run without a statement timeout (a table rewrite takes what it takes), on a
        // client of their own: one connection holds the advisory lock, one migrates.
        const mig = connect(2, 0);
        try {
          // One migrator at a time across processes: hold a session advisory lock on a reserved connection.
          const conn = await mig.reserve();
          try {
            await conn`select pg_advisory_lock(${LOCK_MIGRATE})`;
            await migratePostgres(drizzlePostgres(mig, { schema }), { migrationsFolder: MIGRATIONS });
          } finally {
            await conn`select pg_advisory_unlock(${LOCK_MIGRATE})`.catch(() => {});
            conn.release();
          }
        } finally {
          await mig.end({ timeout: 5 });
        }
      },
      close: () => client.end({ timeout: 5 }),
    };
  }
  // imported here: a server on PostgreSQL does not spend start-up time loading PGlite
  const [{ PGlite }, { drizzle: drizzlePglite }, { migrate: migratePglite }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('drizzle-orm/pglite'),
    import('drizzle-orm/pglite/migrator'),
  ]);
  const lock = opts.dataDir ? acquireStoreLock(path.resolve(opts.dataDir), opts.lockName) : null;
  let pg: PGlite;
  try {
    if (opts.dataDir) fs.mkdirSync(opts.dataDir, { recursive: true });
    pg = new PGlite(opts.dataDir);
    await pg.waitReady;
  } catch (e) {
    lock?.release();
    throw e;
  }
  const db = drizzlePglite(boundedPglite(pg, deadlineMs), { schema }) as unknown as Db;
  return {
    db,
    kind: 'pglite',
    notifier: localNotifier(),
    migrate: () => migratePglite(drizzlePglite(pg, { schema }), { migrationsFolder: MIGRATIONS }),
    close: async () => {
      try {
        await pg.close();
      } finally {
        lock?.release();
      }
    },
  };
}

/** Statements with at most this many parameters are prepared (named) once per connection. */
const PREPARE_MAX_PARAMS = 32;

/** A postgres.js query: a promise whose settle functions the driver calls. */
interface PgQuery {
  resolve(x: unknown): void;
  reject(e: unknown): void;
}

/** Rejects `q` with StoreDeadline unless the driver settles it within `ms`. The settle functions
 *  are wrapped rather than the promise chained: chaining would start the query before drizzle
 *  has chosen its result format (`.values()`). The statement itself goes on (the server's
 *  statement_timeout ends it); only the caller stops waiting. */
function armDeadline(q: PgQuery, ms: number): void {
  const { resolve, reject } = q;
  const timer = setTimeout(() => q.reject(new StoreDeadline(ms)), ms);
  timer.unref();
  q.resolve = (x) => (clearTimeout(timer), resolve(x));
  q.reject = (e) => (clearTimeout(timer), reject(e));
}

/**
 * The postgres.js client as drizzle gets it: every statement under the deadline, and prepared.
 *
 * drizzle sends every query through postgres.js `unsafe(..., { prepare: false })` unless it is a
 * named drizzle prepared query, and postgres.js then describes each parameterized statement
 * before binding it: two round trips and two socket writes per query. Preparing fixed-shape
 * statements (few parameters, so the set of distinct texts stays small) makes each later
 * execution one round trip. Statements with long parameter lists (IN lists, multi-row VALUES)
 * vary in shape and stay unnamed. Applies inside transactions too.
 *
 * A transaction must get its connection within the deadline; once it has, each of its
 * statements runs under the deadline (and idle_in_transaction_session_timeout ends it on the
 * server if its client stalls). A transaction that gets its connection after its caller gave up
 * does nothing (it throws at once and is rolled back).
 */
type Unsafe = (query: string, params?: unknown[], options?: Record<string, unknown>) => PgQuery;
type Begin = (...args: unknown[]) => Promise<unknown>;
function bounded<T extends object>(client: T, deadlineMs: number): T {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'unsafe') {
        const unsafe = (target as { unsafe: Unsafe }).unsafe;
        return (query: string, params?: unknown[], options?: Record<string, unknown>) => {
          const q = unsafe.call(target, query, params, { ...options, prepare: !!params?.length && params.length <= PREPARE_MAX_PARAMS });
          armDeadline(q, deadlineMs);
          return q;
        };
      }
      if (prop === 'begin') {
        const begin = (target as { begin: Begin }).begin;
        return (...args: unknown[]) => {
          const fn = args.at(-1) as (tx: object) => Promise<unknown>;
          return transactionWithin(deadlineMs, (body) => begin.call(target, ...args.slice(0, -1), body), (tx: object) => fn(bounded(tx, deadlineMs)));
        };
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}

/** PGlite as drizzle gets it: every statement under the deadline, and a transaction must start
 *  within it (PGlite runs one transaction at a time). PGlite runs in this process and cannot
 *  cancel a statement: one past its deadline finishes in the background, the caller gets
 *  StoreDeadline; a transaction that starts after its caller gave up does nothing. */
function boundedPglite<T extends Pick<PGlite, 'query'>>(pg: T, deadlineMs: number): T {
  return new Proxy(pg, {
    get(target, prop, receiver) {
      if (prop === 'query') {
        return (...args: Parameters<PGlite['query']>) => withDeadline(target.query(...args), deadlineMs);
      }
      if (prop === 'transaction') {
        return <R>(fn: (tx: Transaction) => Promise<R>) =>
          transactionWithin(deadlineMs, (body: (tx: Transaction) => Promise<R>) => (target as unknown as PGlite).transaction(body), (tx) => fn(boundedPglite(tx, deadlineMs)));
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
}

/** postgres.js 3.4 crashes the process when a connection closes under load unless patched
 *  (scripts/patch-postgres.mjs, run by `npm install`): refuse to run without the patch. */
function assertPostgresPatched(): void {
  const root = path.resolve(path.dirname(createRequire(import.meta.url).resolve('postgres')), '..', '..');
  const file = [path.join(root, 'src', 'connection.js'), path.join(root, 'cjs', 'src', 'connection.js')].find((f) => !fs.readFileSync(f, 'utf8').includes('meterproof patch (5)'));
  if (file) {
    throw new Error(`postgres.js at ${file} is not patched against connection-loss crashes: run \`node scripts/patch-postgres.mjs\` (npm install runs it)`);
  }
}

/** True when `e` (or an error it wraps, as drizzle does) carries SQLSTATE `code`, from either driver. */
export function hasSqlState(e: unknown, code: string): boolean {
  for (let cur: unknown = e, i = 0; cur && i < 5; i++) {
    if ((cur as { code?: string }).code === code) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return false;
}

/** True when `e` is a unique-constraint violation (SQLSTATE 23505) from either driver. */
export const isUniqueViolation = (e: unknown): boolean => hasSqlState(e, '23505');

/** The rows of a raw `db.execute` result, whichever driver answered (postgres.js returns the rows
 *  array itself, PGlite an object with `rows`). */
export function rowsOf<T = Record<string, unknown>>(result: unknown): T[] {
  return (Array.isArray(result) ? result : ((result as { rows?: T[] } | null)?.rows ?? [])) as T[];
}

export async function ping(db: Db): Promise<void> {
  await db.execute(sql`select 1`);
}

/** Migrations in this version's journal that the store has not applied (0 = up to date).
 *  drizzle records each applied migration in drizzle.__drizzle_migrations. */
let journalSize: number | undefined;
export async function pendingMigrations(db: Db): Promise<number> {
  journalSize ??= (JSON.parse(fs.readFileSync(path.join(MIGRATIONS, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }).entries.length;
  const [row] = rowsOf<{ n: string | number }>(await db.execute(sql`select count(*) as n from drizzle.__drizzle_migrations`));
  return Math.max(0, journalSize - Number(row?.n ?? 0));
}
