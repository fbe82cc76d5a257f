// Wake-ups between processes: PostgreSQL LISTEN/NOTIFY on a server, an in-process emitter on the
// embedded store (which serves one process). Used to tell waiting requests (`?proof=sync`,
// `?log=sync`) that a proof job finished or the log integrated rows, instead of polling.
import { EventEmitter } from 'node:events';
import { sql } from 'drizzle-orm';
import type postgres from 'postgres';
import type { Db } from './index.ts';

/** A proof job finished (proved, or failed for good): the payload is the attestation id. */
export const PROOF_CHANNEL = 'meterproof_proof';
/** The log signed a checkpoint integrating new rows: the payload is the new tree size. */
export const LOG_CHANNEL = 'meterproof_log';
export type Channel = typeof PROOF_CHANNEL | typeof LOG_CHANNEL;

export interface Notifier {
  /** Announce `payload` on `channel` to every process of this store (call after the change committed). */
  notify(channel: Channel, payload: string): Promise<void>;
  /**
   * Call `fn` for every announcement on `channel`. `onListen` is called each time the
   * subscription is (re-)established: after a lost LISTEN connection is replaced, announcements
   * made meanwhile are lost, and the subscriber should re-check what it waits for.
   * Resolves once announcements are being received; returns the unsubscribe function.
   */
  subscribe(channel: Channel, fn: (payload: string) => void, onListen?: () => void): Promise<() => Promise<void>>;
}

/** PostgreSQL: NOTIFY through the pool, LISTEN on the one dedicated connection postgres.js keeps
 *  for all of a client's subscriptions. */
export function postgresNotifier(db: Db, client: postgres.Sql): Notifier {
  return {
    async notify(channel, payload) {
      await db.execute(sql`select pg_notify(${channel}, ${payload})`);
    },
    async subscribe(channel, fn, onListen) {
      const { unlisten } = await client.listen(channel, fn, onListen);
      return unlisten;
    },
  };
}

/** The embedded store: one process, so an in-process emitter is the whole story. */
export function localNotifier(): Notifier {
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  return {
    async notify(channel, payload) {
      bus.emit(channel, payload);
    },
    async subscribe(channel, fn, onListen) {
      bus.on(channel, fn);
      onListen?.();
      return async () => void bus.off(channel, fn);
    },
  };
}
