// Builds the real app over a test store: real keys, real Poseidon commitments, real database.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApp } from '../../src/http/app.ts';
import { buildContainer, type Container, type ContainerOptions } from '../../src/service/container.ts';
import { zkParts } from '../../src/service/zk.ts';
import { createLogService, type LogService } from '../../src/log/service.ts';
import { generateSigningKey, type SigningKey } from '../../src/core/keys.ts';
import { testStore, type TestStore } from './db.ts';

export const ADMIN = 'test-admin-token-0123456789abcdef';

export interface TestService {
  readonly app: ReturnType<typeof createApp>;
  readonly container: Container;
  readonly store: TestStore;
  readonly dataDir: string;
  readonly log: LogService;
  call(method: string, url: string, opts?: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/** `logKey`: the key that signs the log's checkpoints (default: a fresh one). */
export async function testService(over: Partial<ContainerOptions> & { logKey?: SigningKey; verifierPagePath?: string } = {}): Promise<TestService> {
  const store = await testStore();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-svc-'));
  const { logKey = generateSigningKey(), verifierPagePath, ...options } = over;
  const container = await buildContainer({
    database: store.database,
    dataDir,
    adminToken: ADMIN,
    zk: await zkParts(),
    log: ({ notifier, metrics }) => createLogService({ db: store.database.db, origin: 'test.meterproof/log', logKey, notifier, metrics }),
    ...options,
  });
  const log = container.deps.log as LogService;
  await log.init();
  const sequencer = log.startSequencer({ intervalMs: 5 });
  const app = createApp({ ...container.deps, onAttested: () => sequencer.poke(), ...(verifierPagePath ? { verifierPagePath } : {}) });
  return {
    app,
    container,
    store,
    dataDir,
    log,
    async call(method, url, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      const token = opts.token === undefined ? ADMIN : opts.token;
      if (token) headers['authorization'] = `Bearer ${token}`;
      let body: string | undefined = opts.raw;
      if (opts.body !== undefined) body = JSON.stringify(opts.body);
      if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
      const res = await app.request(url, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* plain text */
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async close() {
      await container.waiters.close();
      await container.verifier.close();
      await sequencer.stop();
      await store.cleanup();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
