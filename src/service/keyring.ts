// Statement-signing keys: private halves in DATA_DIR/keys (mode 0600) or the environment, public
// halves and validity windows in the database (shared by every API process). Rotation starts a
// new key and closes the old one's window after a short grace period; old keys stay published.
import fs from 'node:fs';
import path from 'node:path';
import { and, desc, eq, isNull, lte, ne, sql } from 'drizzle-orm';
import { type SigningKey, type PublicJwk, generateSigningKey, publicJwk, signingKeyFromJwk } from '../core/keys.ts';
import type { Jwks } from '../core/keys.ts';
import { type Db, type Tx, LOCK_KEYS, schema } from '../db/index.ts';

/** How long a process signs with the key it last read before reading again. A rotation by
 *  another process reaches this one within that time, so KEY_ROTATION_GRACE_MS may not be
 *  shorter (src/config.ts refuses it). */
export const KEY_REFRESH_MS = 1000;

interface Cached {
  readonly key: SigningKey;
  readonly validFrom: Date;
  readonly until: Date | null;
  /** Date.now() when the read that found this key was sent. */
  readonly checkedAt: number;
}

/** Until when signing with `c` is known to stay inside its key's window. A rotation that this
 *  read did not see committed after `checkedAt` and closes the old key no earlier than its
 *  commit + grace, with grace >= KEY_REFRESH_MS (see rotate()). */
const safeUntil = (c: Cached) => Math.min(c.until?.getTime() ?? Infinity, c.checkedAt + KEY_REFRESH_MS);

const keyUnavailable = (message: string) => Object.assign(new Error(message), { code: 'KEY_UNAVAILABLE' });

export function writePrivateKey(dir: string, name: string, key: SigningKey): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${JSON.stringify(key.privateJwk, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return file;
}

export function readPrivateKey(file: string): SigningKey | null {
  if (!fs.existsSync(file)) return null;
  return signingKeyFromJwk(JSON.parse(fs.readFileSync(file, 'utf8')));
}

export class KeyRing {
  private readonly keys = new Map<string, SigningKey>();
  private cached: Cached | null = null;
  private refreshing: Promise<Cached> | null = null;

  constructor(
    private readonly db: Db,
    private readonly keyDir: string,
    private readonly envKey?: SigningKey,
    private readonly graceMs = 5000,
  ) {
    if (envKey) this.keys.set(envKey.keyId, envKey);
  }

  /** Make sure a current key exists (creating one on first start). Several processes starting
   *  at once agree on one key: the check-and-create runs under an advisory lock. */
  async init(clock: () => Date = () => new Date()): Promise<void> {
    let now = clock();
    await this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${LOCK_KEYS})`);
      now = clock(); // read the time under the lock: a key another process just made is valid by now
      const current = await this.currentRow(now, tx);
      if (this.envKey) {
        if (current?.kid !== this.envKey.keyId) {
          const existing = await tx.select().from(schema.signingKeys).where(eq(schema.signingKeys.kid, this.envKey.keyId));
          if (!existing.length) await this.activate(this.envKey, now, tx);
        }
      } else if (!current) {
        const key = generateSigningKey(now.toISOString());
        writePrivateKey(this.keyDir, `${key.keyId}.key.json`, key);
        this.keys.set(key.keyId, key);
        await this.activate(key, now, tx);
      }
    });
    const current = await this.entry(true);
    // a rotation that stopped between its two steps (a crash) left an older key open: close it
    await this.closeOlder(current.key.keyId, current.validFrom);
  }

  private async currentRow(now: Date, db: Db | Tx = this.db) {
    const rows = await db
      .select()
      .from(schema.signingKeys)
      .orderBy(desc(schema.signingKeys.validFrom))
      .limit(4);
    return rows.find((r) => r.validFrom <= now && (!r.validUntil || r.validUntil > now)) ?? null;
  }

  /** Step one of a rotation: the new key, valid from `now`. The older key stays open until
   *  closeOlder() (step two, after this commit) gives it its end. */
  private async activate(key: SigningKey, now: Date, tx: Tx): Promise<void> {
    await tx.insert(schema.signingKeys).values({ kid: key.keyId, x: key.privateJwk.x, validFrom: now, validUntil: null });
    this.cached = null;
  }

  /**
   * Step two of a rotation, once the new key is committed: close the keys older than it at now +
   * grace. The end is taken after the commit, so a process whose last read came before the new
   * key (and which signs with the old one for up to KEY_REFRESH_MS after that read) stays inside
   * the old key's window as long as grace >= KEY_REFRESH_MS. (Closing in the same transaction
   * would measure the grace from before the commit, by the time a lock wait or a slow commit
   * takes less.) Until step two, both keys are open and readers take the newer.
   */
  private async closeOlder(kid: string, validFrom: Date): Promise<void> {
    const k = schema.signingKeys;
    await this.db
      .update(k)
      .set({ validUntil: new Date(Date.now() + this.graceMs) })
      .where(and(isNull(k.validUntil), ne(k.kid, kid), lte(k.validFrom, validFrom)));
    this.cached = null;
  }

  private privateKey(kid: string): SigningKey {
    let key = this.keys.get(kid);
    if (!key) {
      key = readPrivateKey(path.join(this.keyDir, `${kid}.key.json`)) ?? undefined;
      if (!key) throw keyUnavailable(`private key ${kid} is not available to this process`);
      this.keys.set(kid, key);
    }
    return key;
  }

  /** The key to sign with now (read again after KEY_REFRESH_MS). To sign, use signer(). */
  async current(now = new Date(), force = false): Promise<SigningKey> {
    return (await this.entry(force, now)).key;
  }

  /**
   * The key to sign with and the issue time to put in what is signed, checked together: the time
   * lies inside the key's window as far as this process can know (safeUntil). Otherwise the key
   * is read again; if the fresh key still does not cover the time, KEY_UNAVAILABLE (503) rather
   * than a signature that would fail KEY_NOT_VALID_AT_TIME forever.
   */
  async signer(clock: () => Date = () => new Date()): Promise<{ key: SigningKey; issuedAt: Date }> {
    for (const force of [false, true]) {
      const c = await this.entry(force, clock());
      const issuedAt = clock();
      const t = issuedAt.getTime();
      if (t >= c.validFrom.getTime() && t < safeUntil(c)) return { key: c.key, issuedAt };
    }
    throw keyUnavailable('no signing key is known to be valid at the issue time; retry');
  }

  private async entry(force = false, now = new Date()): Promise<Cached> {
    const c = this.cached;
    if (!force && c && Date.now() < safeUntil(c) && c.validFrom <= now) return c;
    // one refresh at a time: concurrent requests that find the cache stale share its query
    if (!force && this.refreshing) return this.refreshing;
    const refresh = (async () => {
      const checkedAt = Date.now();
      const row = await this.currentRow(new Date(Math.max(now.getTime(), checkedAt)));
      if (!row) throw keyUnavailable('no signing key is valid now');
      const entry: Cached = { key: this.privateKey(row.kid), validFrom: row.validFrom, until: row.validUntil, checkedAt };
      this.cached = entry;
      return entry;
    })();
    if (force) return refresh;
    this.refreshing = refresh;
    try {
      return await refresh;
    } finally {
      this.refreshing = null;
    }
  }

  /** Start signing with a new key; the old one stays published with its closed window. */
  async rotate(now = new Date()): Promise<SigningKey> {
    const key = generateSigningKey(now.toISOString());
    writePrivateKey(this.keyDir, `${key.keyId}.key.json`, key);
    this.keys.set(key.keyId, key);
    const validFrom = new Date(Math.max(now.getTime(), Date.now()));
    await this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${LOCK_KEYS})`);
      await this.activate(key, validFrom, tx);
    });
    await this.closeOlder(key.keyId, validFrom);
    return key;
  }

  /** Any key by id (for signing proof statements with the key of their statement's era). */
  get(kid: string): SigningKey {
    return this.privateKey(kid);
  }

  async jwks(): Promise<Jwks> {
    const rows = await this.db.select().from(schema.signingKeys).orderBy(schema.signingKeys.validFrom);
    const keys: PublicJwk[] = rows.map((r) => ({
      ...publicJwk({ keyId: r.kid, publicKey: Buffer.from(r.x, 'base64url') }, r.validFrom.toISOString(), r.validUntil?.toISOString() ?? null),
    }));
    return { keys };
  }

  async isKnown(kid: string): Promise<boolean> {
    const r = await this.db.select({ kid: schema.signingKeys.kid }).from(schema.signingKeys).where(eq(schema.signingKeys.kid, kid));
    return r.length > 0;
  }
}
