// Store faults in-process: which errors are "unavailable", what a log line says about a store
// error, and the statement deadline (PGlite: the client-side deadline; PostgreSQL: statement_timeout).
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, rowsOf, type Database } from '../src/db/index.ts';
import { StoreDeadline, describeStoreError, isStoreUnavailable, withDeadline } from '../src/db/faults.ts';
import { errorFields } from '../src/service/logger.ts';
import { toProblem } from '../src/http/problem.ts';
import { createTestDatabaseUrl, usingPostgres } from './support/db.ts';

const coded = (code: string, message = 'boom') => Object.assign(new Error(message), { code });

describe('store error classification', () => {
  it('connection loss, shutdown, timeouts and too many connections are unavailability; other SQLSTATEs are not', () => {
    for (const c of ['CONNECTION_CLOSED', 'CONNECT_TIMEOUT', 'ECONNREFUSED', 'ECONNRESET', 'STORE_DEADLINE', '57P01', '57P03', '57014', '25P03', '53300', '08006', '08001']) {
      expect(isStoreUnavailable(coded(c)), c).toBe(true);
      // drizzle wraps the driver's error
      expect(isStoreUnavailable(new Error('Failed query: select 1', { cause: coded(c) })), `${c} wrapped`).toBe(true);
    }
    for (const c of ['23505', '22P02', '42601', '40P01', 'P0001', 'KEY_UNAVAILABLE']) expect(isStoreUnavailable(coded(c)), c).toBe(false);
    expect(isStoreUnavailable(new Error('no code'))).toBe(false);
  });

  it('an unavailable store is answered 503 STORE_UNAVAILABLE; any other store error stays 500', () => {
    expect(toProblem(new Error('Failed query', { cause: coded('57P01') }))).toMatchObject({ status: 503, code: 'STORE_UNAVAILABLE' });
    expect(toProblem(new StoreDeadline(10))).toMatchObject({ status: 503, code: 'STORE_UNAVAILABLE' });
    expect(toProblem(coded('42601'))).toMatchObject({ status: 500, code: 'INTERNAL' });
  });

  it('a store error is described by its SQLSTATE and class, never its message (statement, parameters)', () => {
    const secret = 'a'.repeat(64);
    const e = new Error(`Failed query: select * from api_keys where secret_hash = $1\nparams: ${secret}`, { cause: coded('57P01', `terminating ${secret}`) });
    expect(describeStoreError(e)).toBe('store error 57P01 (operator intervention)');
    // what the JSON log holds for it
    expect(errorFields(e)).toEqual({ type: 'StoreError', code: '57P01', message: 'store error 57P01 (operator intervention)' });
    expect(JSON.stringify(errorFields(Object.assign(new Error(`x ${secret}`), { query: 'select', params: [secret] })))).not.toContain(secret);
    expect(describeStoreError(coded('CONNECTION_CLOSED'))).toBe('store error CONNECTION_CLOSED (connection)');
    expect(errorFields(new Error('plain bug')).message).toBe('plain bug');
  });

  it('withDeadline rejects with StoreDeadline after the bound and leaves a faster answer alone', async () => {
    await expect(withDeadline(new Promise(() => {}), 20)).rejects.toBeInstanceOf(StoreDeadline);
    await expect(withDeadline(Promise.resolve(7), 1000)).resolves.toBe(7);
  });
});

describe(`statements past their bound (${usingPostgres() ? 'PostgreSQL: statement_timeout, idle_in_transaction_session_timeout, client deadline' : 'PGlite: client-side deadline'})`, () => {
  let database: Database;
  let drop: (() => Promise<void>) | undefined;
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => null,
      (x: unknown) => x,
    );
  beforeAll(async () => {
    const pg = await createTestDatabaseUrl();
    drop = pg?.drop;
    // deadline: 200 + 300 + 1000 = 1.5 s
    database = await openDatabase({ ...(pg ? { url: pg.url } : {}), timeouts: { connectMs: 200, statementMs: 300, idleInTransactionMs: 600 } });
  });
  afterAll(async () => {
    await database.close();
    await drop?.();
  });

  it.skipIf(!usingPostgres())('a slow statement is cancelled by statement_timeout: 503 STORE_UNAVAILABLE, and the store answers the next one', async () => {
    const e = await failure(database.db.execute(sql`select pg_sleep(3)`));
    expect(toProblem(e)).toMatchObject({ status: 503, code: 'STORE_UNAVAILABLE' });
    expect(describeStoreError(e)).toBe('store error 57014 (statement timeout or cancel)');
    await expect(database.db.execute(sql`select 1 as one`)).resolves.toBeTruthy();
  });

  it('a statement waiting behind a stalled transaction gets 503 STORE_UNAVAILABLE within its bound', async () => {
    await database.db.execute(sql`create table if not exists mp_fault_t (id int primary key, v int)`);
    await database.db.execute(sql`insert into mp_fault_t values (1, 0) on conflict do nothing`);
    // a transaction that holds the row (PostgreSQL) or the embedded store (PGlite runs one
    // transaction at a time) while its client stalls for 3 s
    const stalled = failure(
      database.db.transaction(async (tx) => {
        await tx.execute(sql`update mp_fault_t set v = v + 1 where id = 1`);
        await new Promise((r) => setTimeout(r, 3000));
      }),
    );
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    const e = await failure(database.db.execute(sql`update mp_fault_t set v = v + 10 where id = 1`));
    const waited = Date.now() - started;
    expect(toProblem(e)).toMatchObject({ status: 503, code: 'STORE_UNAVAILABLE' });
    expect(waited).toBeLessThan(2900); // answered before the stalled transaction ended
    const s = await stalled;
    if (usingPostgres()) {
      // its session sat idle in the transaction longer than idle_in_transaction_session_timeout:
      // the server ended it (nothing it did is kept), and that is unavailability too
      expect(isStoreUnavailable(s)).toBe(true);
      const [row] = rowsOf<{ v: number }>(await database.db.execute(sql`select v from mp_fault_t where id = 1`));
      expect(row!.v).toBe(0);
    } else expect(s).toBeNull();
  }, 20_000);
});
