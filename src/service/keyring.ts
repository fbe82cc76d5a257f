// Statement-signing keys: private halves in DATA_DIR/keys (mode 0600) or the environment, public
// halves and validity windows in the database (shared by every API process). Rotation starts a
// new key and closes the old one's window after a short grace period; old keys stay published.
import fs from 'node:fs';
import path from 'node:path';
import { desc, eq, isNull, sql } from 'drizzle-orm';
import { type SigningKey, type PublicJwk, generateSigningKey, publicJwk, signingKeyFromJwk } from '../core/keys.ts';
import type { Jwks } from '../core/keys.ts';
import { type Db, type Tx, LOCK_KEYS, schema } from '../db/index.ts';

const REFRESH_MS = 1000;

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
  private cached: { key: SigningKey; until: Date | null; at: number } | null = null;
  private refreshing: Promise<SigningKey> | null = null;

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
    await this.current(now, true);
  }

  private async currentRow(now: Date, db: Db | Tx = this.db) {
    const rows = await db
      .select()
      .from(schema.signingKeys)
      .orderBy(desc(schema.signingKeys.validFrom))
      .limit(4);
    return rows.find((r) => r.validFrom <= now && (!r.validUntil || r.validUntil > now)) ?? null;
  }

  private async activate(key: SigningKey, now: Date, outer?: Tx): Promise<void> {
    const run = async (tx: Tx) => {
      const until = new Date(now.getTime() + this.graceMs);
      await tx.update(schema.signingKeys).set({ validUntil: until }).where(isNull(schema.signingKeys.validUntil));
      await tx.insert(schema.signingKeys).values({ kid: key.keyId, x: key.privateJwk.x, validFrom: now, validUntil: null });
    };
    if (outer) await run(outer);
    else await this.db.transaction(run);
    this.cached = null;
  }

  private privateKey(kid: string): SigningKey {
    let key = this.keys.get(kid);
    if (!key) {
      key = readPrivateKey(path.join(this.keyDir, `${kid}.key.json`)) ?? undefined;
      if (!key) throw Object.assign(new Error(`private key ${kid} is not available to this process`), { code: 'KEY_UNAVAILABLE' });
      this.keys.set(kid, key);
    }
    return key;
  }

  /** The key to sign with now. Cached for a second; a rotation's grace period covers the cache. */
  async current(now = new Date(), force = false): Promise<SigningKey> {
    const c = this.cached;
    if (!force && c && Date.now() - c.at < REFRESH_MS && (!c.until || c.until > now)) return c.key;
    // one refresh at a time: concurrent requests that find the cache stale share its query
    if (!force && this.refreshing) return this.refreshing;
    const refresh = (async () => {
      const row = await this.currentRow(now);
      if (!row) throw Object.assign(new Error('no signing key is valid now'), { code: 'KEY_UNAVAILABLE' });
      const key = this.privateKey(row.kid);
      this.cached = { key, until: row.validUntil, at: Date.now() };
      return key;
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
    await this.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${LOCK_KEYS})`);
      await this.activate(key, new Date(Math.max(now.getTime(), Date.now())), tx);
    });
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
