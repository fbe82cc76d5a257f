// A fresh store per test file: its own PostgreSQL database when DATABASE_URL is set (as in CI),
// otherwise an in-memory PGlite.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { openDatabase, type Database } from '../../src/db/index.ts';

export interface TestStore {
  readonly database: Database;
  readonly url: string | undefined;
  cleanup(): Promise<void>;
}

export const usingPostgres = () => !!process.env['DATABASE_URL'];

export async function createTestDatabaseUrl(): Promise<{ url: string; drop(): Promise<void> } | null> {
  const base = process.env['DATABASE_URL'];
  if (!base) return null;
  const name = `mp_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(base, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const a = postgres(base, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

export async function testStore(): Promise<TestStore> {
  const pg = await createTestDatabaseUrl();
  const database = await openDatabase(pg ? { url: pg.url } : {});
  await database.migrate();
  return {
    database,
    url: pg?.url,
    async cleanup() {
      await database.close();
      await pg?.drop();
    },
  };
}
