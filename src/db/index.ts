// Opening the store: embedded PGlite (default) or PostgreSQL through postgres.js when a URL is
// given. Both are drizzle PgDatabase instances over the same schema and migrations.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import * as schema from './schema.ts';
import { type Notifier, localNotifier, postgresNotifier } from './notify.ts';
import { acquireStoreLock } from './store-lock.ts';

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
}

export async function openDatabase(opts: OpenOptions): Promise<Database> {
  if (opts.url) {
    // libpq-style `?host=/var/run/postgresql` selects a Unix socket directory (cheaper than TCP).
    const url = new URL(opts.url);
    const socketDir = url.searchParams.get('host');
    url.searchParams.delete('host');
    const client = postgres(url.toString(), { max: opts.maxConnections ?? 10, onnotice: () => {}, prepare: true, ...(socketDir ? { host: socketDir } : {}) });
    const db = drizzlePostgres(preparedByDefault(client), { schema }) as unknown as Db;
    return {
      db,
      kind: 'postgres',
      notifier: postgresNotifier(db, client),
      async migrate() {
        // One migrator at a time across processes: hold a session advisory lock on a reserved connection.
        const conn = await client.reserve();
        try {
          await conn`select pg_advisory_lock(${LOCK_MIGRATE})`;
          await migratePostgres(drizzlePostgres(client, { schema }), { migrationsFolder: MIGRATIONS });
        } finally {
          await conn`select pg_advisory_unlock(${LOCK_MIGRATE})`.catch(() => {});
          conn.release();
        }
      },
      close: () => client.end({ timeout: 5 }),
    };
  }
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
  const db = drizzlePglite(pg, { schema }) as unknown as Db;
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

/**
 * drizzle sends every query through postgres.js `unsafe(..., { prepare: false })` unless it is a
 * named drizzle prepared query, and postgres.js then describes each parameterized statement
 * before binding it: two round trips and two socket writes per query. Preparing fixed-shape
 * statements (few parameters, so the set of distinct texts stays small) makes each later
 * execution one round trip. Statements with long parameter lists (IN lists, multi-row VALUES)
 * vary in shape and stay unnamed. Applies inside transactions too.
 */
type Unsafe = (query: string, params?: unknown[], options?: Record<string, unknown>) => unknown;
type Begin = (...args: unknown[]) => unknown;
function preparedByDefault<T extends object>(client: T): T {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'unsafe') {
        const unsafe = (target as { unsafe: Unsafe }).unsafe;
        return (query: string, params?: unknown[], options?: Record<string, unknown>) =>
          unsafe.call(target, query, params, { ...options, prepare: !!params?.length && params.length <= PREPARE_MAX_PARAMS });
      }
      if (prop === 'begin') {
        const begin = (target as { begin: Begin }).begin;
        return (...args: unknown[]) => {
          const fn = args.at(-1) as (tx: object) => unknown;
          return begin.call(target, ...args.slice(0, -1), (tx: object) => fn(preparedByDefault(tx)));
        };
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
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
