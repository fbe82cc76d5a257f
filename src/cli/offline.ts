// Offline commands: verify, redact, keys, trust, attest --offline. None needs a server.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ZodError } from 'zod';
import { attestEvent, normalizeMeterEvent, normalizeTariff } from '../core/attest.ts';
import { randomSalt, tariffCommitmentV2 } from '../core/binding-v2.ts';
import { BN128_P } from '../core/field.ts';
import { ChargeError } from '../core/errors.ts';
import { generateSigningKey, publicJwk, signingKeyFromJwk } from '../core/keys.ts';
import { BINDING_VERSION_V2, Digest, FullBundle, type CheckResult } from '../core/schemas.ts';
import { type PublishedTariff, SignedRevocationList, TrustMaterial } from '../core/trust.ts';
import { tariffCommitment } from '../core/commitment.ts';
import { canonicalString } from '../core/canonical.ts';
import { advanceTrustState, redact, TrustState, verifyJson } from '../verifier/index.ts';
import { UsageError, err, out, readJsonFile, readTextFile, replaceFile, writeNewFile } from './io.ts';

const describeZod = (e: ZodError) => {
  const i = e.issues[0];
  return i ? `${i.path.join('.') || '(root)'}: ${i.message}` : 'invalid';
};

function glyph(c: CheckResult): string {
  if (c.status === 'pass') return '✓';
  if (c.status === 'fail') return '✗';
  return '–';
}

export async function cmdVerify(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      trust: { type: 'string' },
      json: { type: 'boolean', default: false },
      profile: { type: 'string', default: 'strict' },
      'consistency-proof': { type: 'string' },
      'trust-state': { type: 'string' },
      revocations: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError(VERIFY_USAGE);
  if (values.profile !== 'strict' && values.profile !== 'standard') throw new UsageError(`unknown profile ${values.profile}`);
  const bundleText = readTextFile(positionals[0], 'bundle');
  const trustRaw = readJsonFile(values.trust, 'trust');
  const trust = TrustMaterial.safeParse(trustRaw);
  if (!trust.success) throw new UsageError(`trust file ${values.trust} is not trust material: ${describeZod(trust.error)}`);
  if (values.revocations) {
    // a list fetched fresh from /.well-known/billing-revocations.json replaces the trust file's
    const rl = SignedRevocationList.safeParse(readJsonFile(values.revocations, 'revocation list'));
    if (!rl.success) throw new UsageError(`${values.revocations} is not a signed revocation list: ${describeZod(rl.error)}`);
    trust.data.revocations = rl.data;
  }
  const stateFile = values['trust-state'];
  const previous = stateFile ? readTrustState(stateFile) : undefined;
  let consistencyProof: string[] | undefined;
  if (values['consistency-proof']) {
    const p = readJsonFile(values['consistency-proof'], 'consistency proof');
    const hashes = (p as { hashes?: unknown })?.hashes ?? p;
    if (!Array.isArray(hashes) || !hashes.every((h) => typeof h === 'string')) throw new UsageError('consistency proof must be a JSON array of base64 hashes');
    consistencyProof = hashes;
  }
  const now = new Date();
  const report = await verifyJson(bundleText, trust.data, { profile: values.profile, consistencyProof, now, ...(previous ? { trustState: previous } : {}) });
  if (stateFile) {
    // the state moves to the list just accepted (whatever the bundle's verdict), never back
    const next = advanceTrustState(trust.data, previous, now);
    if (next && canonicalString(next) !== (previous && canonicalString(previous))) {
      replaceFile(stateFile, `${JSON.stringify(next, null, 2)}\n`, 'trust state');
      err(`trust state ${stateFile}: revocation list sequence ${next.revocations?.sequence ?? '-'} recorded`);
    }
  }
  const schema = report.checks.find((c) => c.name === 'schema');
  if (values.json) out(JSON.stringify(report, null, 2));
  else {
    for (const c of report.checks) out(`${glyph(c)} ${c.name.padEnd(16)} ${c.status}${c.code ? ` ${c.code}` : ''}${c.reason ? ` — ${c.reason}` : ''}`);
    out(report.valid ? `VALID (${report.profile}${report.redacted ? ', redacted' : ''})` : `INVALID (${report.profile})`);
  }
  if (schema?.status === 'fail') {
    if (!values.json) err(`unusable bundle: ${schema.reason ?? 'schema invalid'}`);
    return 2;
  }
  return report.valid ? 0 : 1;
}

const VERIFY_USAGE =
  'usage: meterproof verify <bundle.json> --trust <trust.json> [--revocations <list.json>] [--trust-state <state.json>] [--json] [--profile strict|standard]';

/** The trust state file: absent on first use; anything else that is not a trust state is refused. */
function readTrustState(file: string): TrustState | undefined {
  if (!fs.existsSync(file)) return undefined;
  const s = TrustState.safeParse(readJsonFile(file, 'trust state'));
  if (!s.success) throw new UsageError(`trust state ${file} is unusable: ${describeZod(s.error)}`);
  return s.data;
}

export async function cmdRedact(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string', short: 'o' } } });
  if (positionals.length !== 1) throw new UsageError('usage: meterproof redact <bundle.json> [-o redacted.json]');
  let red;
  try {
    red = redact(readJsonFile(positionals[0], 'bundle'));
  } catch (e) {
    if (e instanceof ZodError) throw new UsageError(`not a full bundle: ${describeZod(e)}`);
    throw e;
  }
  const text = `${JSON.stringify(red, null, 2)}\n`;
  err(REDACTED_DISCLOSURE);
  if (values.out) writeNewFile(values.out, text, 0o644);
  else out(text);
  return 0;
}

export async function cmdKeys(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'generate') throw new UsageError('usage: meterproof keys generate [--out <file>]');
  const { values } = parseArgs({ args: rest, options: { out: { type: 'string' } } });
  const key = generateSigningKey();
  const file = values.out ?? path.join(process.env['DATA_DIR'] ?? 'data', 'keys', `${key.keyId}.key.json`);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeNewFile(file, `${JSON.stringify(key.privateJwk, null, 2)}\n`, 0o600);
  err(`private key written to ${file} (mode 0600; keep it out of git)`);
  out(JSON.stringify(publicJwk(key, key.privateJwk.created_at!), null, 2));
  return 0;
}

function loadKey(file: string | undefined) {
  try {
    return signingKeyFromJwk(readJsonFile(file, 'key'));
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${file} is not a private key file: ${e instanceof ZodError ? describeZod(e) : (e as Error).message}`);
  }
}

/** What a redacted bundle still shows (docs/zk-binding.md), printed by `meterproof redact`. */
export const REDACTED_DISCLOSURE =
  'meterproof redact: the redacted bundle still shows the signed statement: tenant, billing window, tariff id and version, currency, usage units, outcome, charge, chain id, position (seq, previous statement) and running totals, issue time and key id, and the salted digests and fingerprint; it withholds the meter event (event id, time, API key, endpoint, contract, dimensions), the tariff terms and the salts';

/** Trust material for offline verification of bundles signed by local keys. `--tariff-of` adds the
 *  commitment of a full bundle's tariff version (what a redacted bundle of it is checked against). */
export async function cmdTrust(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { key: { type: 'string', multiple: true }, vkey: { type: 'string' }, 'valid-from': { type: 'string' }, 'tariff-of': { type: 'string', multiple: true } },
  });
  if (!values.key?.length) throw new UsageError('usage: meterproof trust --key <key.json> [--key …] [--vkey keys/verification_key.json] [--tariff-of <full bundle.json> …]');
  const keys = values.key.map((f) => loadKey(f));
  const tariffs = new Map<string, PublishedTariff>();
  for (const file of values['tariff-of'] ?? []) {
    const parsed = FullBundle.safeParse(readJsonFile(file, 'bundle'));
    if (!parsed.success) throw new UsageError(`${file} is not a full bundle: ${describeZod(parsed.error)}`);
    const b = parsed.data;
    const t = b.tariff_snapshot;
    const entry: PublishedTariff = b.salts
      ? { tariff_id: t.tariff_id, tariff_version: t.tariff_version, binding: BINDING_VERSION_V2, tariff_commitment: (await tariffCommitmentV2(t, BigInt(b.salts.tariff))).toString() }
      : { tariff_id: t.tariff_id, tariff_version: t.tariff_version, tariff_commitment: (await tariffCommitment(t)).toString() };
    const k = `${entry.binding ?? ''}\u0000${t.tariff_id}\u0000${t.tariff_version}`;
    const seen = tariffs.get(k);
    if (seen && seen.tariff_commitment !== entry.tariff_commitment) throw new UsageError(`${file}: tariff ${t.tariff_id} version ${t.tariff_version} differs (content or salt) from another --tariff-of bundle`);
    tariffs.set(k, entry);
  }
  const trust = {
    jwks: { keys: keys.map((k) => publicJwk(k, values['valid-from'] ?? k.privateJwk.created_at ?? '1970-01-01T00:00:00Z')) },
    ...(values.vkey ? { verification_key: readJsonFile(values.vkey, 'verification key') } : {}),
    ...(tariffs.size ? { tariffs: [...tariffs.values()] } : {}),
  };
  out(JSON.stringify(TrustMaterial.parse(trust), null, 2));
  return 0;
}

export async function cmdAttestOffline(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      offline: { type: 'boolean', default: false },
      event: { type: 'string' },
      tariff: { type: 'string' },
      key: { type: 'string' },
      'cumulative-before': { type: 'string', default: '0' },
      seq: { type: 'string', default: '0' },
      prev: { type: 'string' },
      'issued-at': { type: 'string' },
      'tariff-salt': { type: 'string' },
    },
  });
  if (!values.offline) throw new UsageError('only `meterproof attest --offline` is available from the CLI; use POST /v1/attest on a server');
  const key = loadKey(values.key);
  const dec = (s: string, what: string) => {
    if (!/^(0|[1-9][0-9]*)$/.test(s)) throw new UsageError(`${what} must be a non-negative integer`);
    return BigInt(s);
  };
  if (values.prev !== undefined && !Digest.safeParse(values.prev).success) throw new UsageError('--prev must be sha256:<64 hex>');
  // The tariff version's salt (keep it: every bundle of this version must use the same one, and
  // its commitment is what a verifier of redacted bundles looks up); a fresh one if not given.
  const tariffSalt = values['tariff-salt'] === undefined ? randomSalt() : dec(values['tariff-salt'], '--tariff-salt');
  if (tariffSalt >= BN128_P) throw new UsageError('--tariff-salt must be a field element (below the bn128 scalar field modulus)');
  try {
    const result = attestEvent({
      event: normalizeMeterEvent(readJsonFile(values.event, 'event')),
      tariff: normalizeTariff(readJsonFile(values.tariff, 'tariff')),
      key,
      chain: { seq: dec(values.seq, '--seq'), prev: values.prev ?? null, cumulativeBefore: dec(values['cumulative-before'], '--cumulative-before') },
      issuedAt: values['issued-at'] ?? new Date().toISOString(),
      eventSalt: randomSalt(),
      tariffSalt,
    });
    out(JSON.stringify(result.bundle, null, 2));
    return 0;
  } catch (e) {
    if (e instanceof ZodError) throw new UsageError(`invalid input: ${describeZod(e)}`);
    if (e instanceof ChargeError) throw new UsageError(`${e.code}: ${e.message}`);
    throw e;
  }
}
