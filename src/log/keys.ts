// The log's checkpoint signing key.
import fs from 'node:fs';
import path from 'node:path';
import { toHex } from '../core/bytes.ts';
import { type SigningKey, generateSigningKey, signingKeyFromJwk } from '../core/keys.ts';

/** The file a generated log key is kept in, under DATA_DIR. */
export const LOG_KEY_FILE = path.join('keys', 'log.key.json');

/**
 * The checkpoint signing key: a private JWK from the environment when given (e.g. LOG_KEY_JWK),
 * otherwise DATA_DIR/keys/log.key.json, created (mode 0600) on first start. Concurrent first
 * starts agree on one key: the file is published with link(2), which fails if it exists.
 */
export function loadOrCreateLogKey(dataDir: string, envJson?: string): SigningKey {
  if (envJson !== undefined && envJson.trim() !== '') {
    try {
      return signingKeyFromJwk(JSON.parse(envJson));
    } catch (e) {
      throw new Error(`the log key from the environment is not a private Ed25519 JWK: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  const file = path.join(dataDir, LOG_KEY_FILE);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const key = generateSigningKey();
    const tmp = `${file}.${process.pid}.${toHex(key.publicKey).slice(0, 8)}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(key.privateJwk, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    try {
      fs.linkSync(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  try {
    return signingKeyFromJwk(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch (e) {
    throw new Error(`log key file ${file} is unusable: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
