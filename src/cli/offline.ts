// Offline commands: verify, redact, keys, trust, attest --offline. None needs a server.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ZodError } from 'zod';
import { attestEvent, normalizeMeterEvent, normalizeTariff } from '../core/attest.ts';
import { randomSalt, tariffCommitmentV2 } from '../core/binding-v2.ts';
import { BN128_P } from '../core/field.ts';
import { ChargeError } from '../core/errors.ts';
import { generateSigningKey, publicJwk, signingKeyFromJwk } from '../core/keys.ts';
import { BINDING_VERSION_V2, Digest, FullBundle, type CheckResult, type VerificationReport } from '../core/schemas.ts';
import { type PublishedTariff, SignedRevocationList, TrustMaterial } from '../core/trust.ts';
import { tariffCommitment } from '../core/commitment.ts';
import { canonicalString } from '../core/canonical.ts';
import { parseCheckpoint } from '../core/note.ts';
import { poseidonBigint } from '../core/poseidon.ts';
import { advanceTrustState, createVerifyPool, JsonTextError, redact, releaseZk, type SettlementEvidenceVerifier, settlementEvidenceVerifier, TrustState, verifyJson } from '../verifier/index.ts';
import { readEvidence } from './evidence-stream.ts';
import type { CheckedStatement } from '../core/settlement-verify.ts';
import { createStatementPool } from '../verifier/statement-pool.ts';
import { UsageError, err, notStdin, out, parseCommand, readJsonFile, readTextFile, replaceFile, writeNewFile } from './io.ts';

const describeZod = (e: ZodError) => {
  const i = e.issues[0];
  return i ? `${i.path.join('.') || '(root)'}: ${i.message}` : 'invalid';
};

function glyph(c: CheckResult, required: boolean): string {
  if (c.status === 'pass') return '✓';
  if (c.status === 'fail' || required) return '✗';
  return '–';
}

export async function cmdVerify(argv: string[]): Promise<number> {
  const a = parseCommand('verify', argv, [1, Number.MAX_SAFE_INTEGER]);
  const profile = a.str('profile') ?? 'strict';
  if (profile !== 'strict' && profile !== 'standard') throw new UsageError(`--profile must be strict or standard, not ${JSON.stringify(profile)}`);
  const trustFile = a.str('trust');
  const stateFile = notStdin(a.str('trust-state'), '--trust-state');
  const files = a.positionals;
  const many = files.length > 1;
  const threadsArg = a.str('threads');
  let threads: number | undefined;
  if (threadsArg !== undefined) {
    if (!/^(0|[1-9][0-9]?)$/.test(threadsArg)) throw new UsageError('--threads must be an integer from 0 to 99');
    threads = Number(threadsArg);
  }
  // every file is read before anything is verified: a missing one stops the run (exit 2)
  const texts = files.map((file) => readTextFile(file, 'bundle'));
  const trust = TrustMaterial.safeParse(readJsonFile(trustFile, 'trust'));
  if (!trust.success) throw new UsageError(`trust file ${trustFile} is not trust material: ${describeZod(trust.error)}`);
  const revocations = a.str('revocations');
  if (revocations) {
    // a list fetched fresh from /.well-known/billing-revocations.json replaces the trust file's
    const rl = SignedRevocationList.safeParse(readJsonFile(revocations, 'revocation list'));
    if (!rl.success) throw new UsageError(`${revocations} is not a signed revocation list: ${describeZod(rl.error)}`);
    trust.data.revocations = rl.data;
  }
  const pinned = a.str('trusted-checkpoint');
  if (pinned !== undefined) pinCheckpoint(trust.data, readTextFile(pinned, 'trusted checkpoint'));
  const consistencyProof = readConsistencyProof(a.str('consistency-proof'), trust.data);
  if (many && consistencyProof) throw new UsageError("--consistency-proof applies to one bundle (its receipt's checkpoint); give one bundle with it");
  const previous = stateFile ? readTrustState(stateFile) : undefined;
  const now = new Date();
  const args = { profile, now, requireConsumerPop: a.bool('require-pop'), requireCountersignature: a.bool('require-countersignature'), ...(previous ? { trustState: previous } : {}) } as const;
  let reports: VerificationReport[];
  if (many) {
    // many bundles: the bulk path (every check per bundle, Groth16 pairing checks batched), on
    // worker threads when there are enough bundles to pay for starting them
    const pool = createVerifyPool({ threads: threads ?? (texts.length >= CLI_THREADS_FROM ? os.availableParallelism() : 0) });
    try {
      reports = await pool.verifyMany(texts.map((text) => ({ text })), trust.data, args);
    } finally {
      await pool.close();
    }
  } else {
    reports = [await verifyJson(texts[0]!, trust.data, { ...args, consistencyProof })];
  }
  await releaseZk();
  if (stateFile) {
    // the state moves to the list just accepted (whatever the bundle's verdict), never back
    const next = advanceTrustState(trust.data, previous, now);
    if (next && canonicalString(next) !== (previous && canonicalString(previous))) {
      replaceFile(stateFile, `${JSON.stringify(next, null, 2)}\n`, 'trust state');
      err(`trust state ${stateFile}: revocation list sequence ${next.revocations?.sequence ?? '-'} recorded`);
    }
  }
  const unusable = (r: VerificationReport) => r.checks.find((c) => c.name === 'schema' && c.status === 'fail');
  const json = a.bool('json');
  if (!many) {
    const report = reports[0]!;
    const schema = unusable(report);
    if (json) out(JSON.stringify(report, null, 2));
    // not a bundle at all: one line on stderr, no report of checks that could not run
    else if (!schema) printReport(report);
    if (schema) {
      if (!json) err(`unusable bundle: ${schema.reason ?? 'schema invalid'}`);
      return 2;
    }
    return report.valid ? 0 : 1;
  }
  if (json) out(JSON.stringify(reports.map((r, index) => ({ index, file: files[index], ...r })), null, 2));
  else {
    reports.forEach((r, i) => {
      const fails = r.checks.filter((c) => c.status === 'fail').map((c) => `${c.name} ${c.code}${c.reason ? ` — ${c.reason}` : ''}`);
      const skipped = r.skipped_but_required.map((x) => `${x.name} required but skipped (${x.reason})`);
      out(`${files[i]}: ${r.valid ? `VALID (${r.profile}${r.redacted ? ', redacted' : ''})` : `INVALID (${r.profile}): ${[...fails, ...skipped].join('; ')}`}`);
    });
    out(`${reports.filter((r) => r.valid).length} of ${reports.length} bundles VALID`);
  }
  // the worst outcome decides: 2 if a file is not a usable bundle, 1 if one is invalid, else 0
  if (reports.some(unusable)) {
    if (!json) err(`unusable bundle(s): ${files.filter((_, i) => unusable(reports[i]!)).join(', ')}`);
    return 2;
  }
  return reports.every((r) => r.valid) ? 0 : 1;
}

/** Bundles from which `meterproof verify` starts worker threads by default: starting one (loading
 *  the verifier and building its curve in the thread) costs seconds of CPU, what verifying
 *  several hundred bundles on the calling thread costs. */
const CLI_THREADS_FROM = 1000;

/** One line per check, then the verdict; an INVALID one says what failed and what required check
 *  was skipped, and why. */
function printReport(report: VerificationReport): void {
  const required = new Set(report.skipped_but_required.map((s) => s.name));
  for (const c of report.checks) {
    const mark = required.has(c.name) ? ` (required by ${report.profile})` : '';
    out(`${glyph(c, required.has(c.name))} ${c.name.padEnd(16)} ${c.status}${c.code ? ` ${c.code}` : ''}${c.reason ? ` — ${c.reason}` : ''}${mark}`);
  }
  if (report.valid) {
    out(`VALID (${report.profile}${report.redacted ? ', redacted' : ''})`);
    return;
  }
  const failed = report.checks.filter((c) => c.status === 'fail').map((c) => `${c.name} (${c.code})`);
  const skipped = report.skipped_but_required.map((s) => `${s.name} (${s.reason})`);
  out(`INVALID (${report.profile}): ${[failed.length ? `failed: ${failed.join(', ')}` : '', skipped.length ? `required but skipped: ${skipped.join(', ')}` : ''].filter(Boolean).join('; ')}`);
}

/** `--trusted-checkpoint`: a signed checkpoint note of the trust material's log, pinned by the
 *  user; it replaces log.trusted_checkpoint. Its signature is the consistency check's to judge. */
function pinCheckpoint(trust: TrustMaterial, note: string): void {
  if (!trust.log?.verifier_key) throw new UsageError('--trusted-checkpoint: the trust material has no log verifier key (log.verifier_key) to check it with');
  // signed-note: the text ends at the last blank line, signature lines ("— name sig") follow
  const split = note.lastIndexOf('\n\n');
  let ok = split > 0 && note.slice(split + 2).startsWith('\u2014 ');
  try {
    if (ok) parseCheckpoint(note.slice(0, split + 1));
  } catch {
    ok = false;
  }
  if (!ok) throw new UsageError('--trusted-checkpoint is not a signed checkpoint note (origin, size, root hash, blank line, signature lines: GET /v1/log/checkpoint)');
  trust.log = { ...trust.log, trusted_checkpoint: note };
}

/** `--consistency-proof`: GET /v1/log/proof/consistency's answer ({hashes}) or a bare array of
 *  base64 hashes. It only means something against a trusted checkpoint. */
function readConsistencyProof(file: string | undefined, trust: TrustMaterial): string[] | undefined {
  if (file === undefined) return undefined;
  if (!trust.log?.trusted_checkpoint) throw new UsageError('--consistency-proof needs a trusted checkpoint (--trusted-checkpoint, or log.trusted_checkpoint in the trust file)');
  const p = readJsonFile(file, 'consistency proof');
  const hashes = (p as { hashes?: unknown })?.hashes ?? p;
  if (!Array.isArray(hashes) || !hashes.every((h) => typeof h === 'string')) throw new UsageError('--consistency-proof must be a JSON array of base64 hashes, or an object with one as "hashes"');
  return hashes;
}

/** The trust state file: absent on first use; anything else that is not a trust state is refused. */
function readTrustState(file: string): TrustState | undefined {
  if (!fs.existsSync(file)) return undefined;
  const s = TrustState.safeParse(readJsonFile(file, 'trust state'));
  if (!s.success) throw new UsageError(`trust state ${file} is unusable: ${describeZod(s.error)}`);
  return s.data;
}

export async function cmdRedact(argv: string[]): Promise<number> {
  const a = parseCommand('redact', argv, 1);
  const outFile = notStdin(a.str('out'), '--out');
  let red;
  try {
    red = redact(readJsonFile(a.positionals[0], 'bundle'));
  } catch (e) {
    if (e instanceof ZodError) throw new UsageError(`not a full bundle: ${describeZod(e)}`);
    throw e;
  }
  const text = `${JSON.stringify(red, null, 2)}\n`;
  err(REDACTED_DISCLOSURE);
  if (outFile) writeNewFile(outFile, text, 0o644);
  else out(text);
  return 0;
}

/** A byte stream as strictly decoded UTF-8 text chunks. */
async function* utf8Chunks(input: AsyncIterable<Buffer | string>): AsyncIterable<string> {
  const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  for await (const b of input) yield typeof b === 'string' ? b : dec.decode(b, { stream: true });
  const rest = dec.decode();
  if (rest) yield rest;
}

/** `meterproof settlement verify <evidence> --trust <trust.json>`: recompute a settlement from its
 *  evidence (GET /v1/settlements/{id}/evidence) and check it (docs/protocol.md §5). */
export async function cmdSettlement(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'verify') throw new UsageError('usage: meterproof settlement verify <evidence.json|-> --trust <trust.json> [--json] (meterproof settlement --help)');
  const a = parseCommand('settlement verify', rest, 1);
  const trustFile = a.str('trust');
  const trust = TrustMaterial.safeParse(readJsonFile(trustFile, 'trust'));
  if (!trust.success) throw new UsageError(`trust file ${trustFile} is not trust material: ${describeZod(trust.error)}`);
  // streamed: a window's evidence can hold a million statements
  const file = a.positionals[0];
  if (!file) throw new UsageError('missing evidence file argument');
  let verifier: SettlementEvidenceVerifier | null = null;
  // the statements are checked (parse, schema, signature) on worker threads, in chunks; the
  // results are fed back in order to the verifier, which recomputes the settlement
  const pool = createStatementPool(trust.data.jwks, os.availableParallelism());
  const inflight: Promise<CheckedStatement[]>[] = [];
  let batch: string[] = [];
  let first = 0;
  const flush = () => {
    if (batch.length && verifier?.keys) inflight.push(pool.check(batch, first));
    first += batch.length;
    batch = [];
  };
  const take = async (max: number) => {
    while (inflight.length > max) for (const c of await inflight.shift()!) verifier!.pushChecked(c);
  };
  try {
    const input = file === '-' ? process.stdin : fs.createReadStream(file, { highWaterMark: 1 << 20 });
    await readEvidence(utf8Chunks(input), {
      head: (h) => void (verifier = settlementEvidenceVerifier(h, trust.data)),
      statement: (t) => {
        batch.push(t);
        if (batch.length >= 512) flush();
      },
      drain: () => take(4 * Math.max(pool.threads, 1)),
    });
    flush();
    await take(0);
  } catch (e) {
    if (e instanceof JsonTextError) throw new UsageError(`evidence ${file} is not I-JSON: ${e.message}`);
    if (e instanceof TypeError && /utf-8|encoded data/i.test(e.message)) throw new UsageError(`evidence ${file} is not valid UTF-8 (INVALID_UTF8)`);
    if ((e as NodeJS.ErrnoException).code && !(e instanceof UsageError)) throw new UsageError(`cannot read evidence ${file}: ${(e as NodeJS.ErrnoException).code}`);
    throw e;
  } finally {
    await pool.close();
  }
  const report = (verifier as SettlementEvidenceVerifier | null)!.finish();
  if (a.bool('json')) out(JSON.stringify(report, null, 2));
  else {
    for (const c of report.checks) out(`${c.status === 'pass' ? '✓' : c.status === 'fail' ? '✗' : '–'} ${c.name.padEnd(24)} ${c.status}${c.code ? ` ${c.code}` : ''}${c.message ? ` — ${c.message}` : ''}`);
    out(report.valid ? 'VALID' : `INVALID${report.first_difference ? ` (first difference: ${report.first_difference})` : ''}`);
  }
  if (report.checks[0]?.status === 'fail') return 2;
  return report.valid ? 0 : 1;
}

export async function cmdKeys(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'generate') throw new UsageError('usage: meterproof keys generate [--out <file>] (meterproof keys --help)');
  const a = parseCommand('keys generate', rest);
  const key = generateSigningKey();
  const file = notStdin(a.str('out'), '--out') ?? path.join(process.env['DATA_DIR'] ?? 'data', 'keys', `${key.keyId}.key.json`);
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
  'meterproof redact: the redacted bundle still shows the signed statement: tenant, billing window, tariff id and version, currency, usage units, outcome, charge, chain id, position (seq, previous statement) and running totals, issue time and key id, and the salted digests and fingerprint; it withholds the meter event (event id, time, API key, endpoint, contract, dimensions), the tariff terms and the salts. A consumer PoP and countersignatures stay (what the consumer signed): they show the consumer id, the event id and the request payload hash';

/** Trust material for offline verification of bundles signed by local keys. `--tariff-of` adds the
 *  commitment of a full bundle's tariff version (what a redacted bundle of it is checked against). */
const poseidon = async (inputs: readonly bigint[]) => poseidonBigint(inputs);

export async function cmdTrust(argv: string[]): Promise<number> {
  const a = parseCommand('trust', argv);
  const keys = a.strs('key').map((f) => loadKey(f));
  const validFrom = a.str('valid-from');
  if (validFrom !== undefined && Number.isNaN(Date.parse(validFrom))) throw new UsageError(`--valid-from must be an RFC 3339 time, not ${JSON.stringify(validFrom)}`);
  const vkey = a.str('vkey');
  const tariffs = new Map<string, PublishedTariff>();
  for (const file of a.strs('tariff-of')) {
    const parsed = FullBundle.safeParse(readJsonFile(file, 'bundle'));
    if (!parsed.success) throw new UsageError(`${file} is not a full bundle: ${describeZod(parsed.error)}`);
    const b = parsed.data;
    const t = b.tariff_snapshot;
    const entry: PublishedTariff = b.salts
      ? { tariff_id: t.tariff_id, tariff_version: t.tariff_version, binding: BINDING_VERSION_V2, tariff_commitment: (await tariffCommitmentV2(t, BigInt(b.salts.tariff), poseidon)).toString() }
      : { tariff_id: t.tariff_id, tariff_version: t.tariff_version, tariff_commitment: (await tariffCommitment(t, poseidon)).toString() };
    const k = `${entry.binding ?? ''}\u0000${t.tariff_id}\u0000${t.tariff_version}`;
    const seen = tariffs.get(k);
    if (seen && seen.tariff_commitment !== entry.tariff_commitment) throw new UsageError(`${file}: tariff ${t.tariff_id} version ${t.tariff_version} differs (content or salt) from another --tariff-of bundle`);
    tariffs.set(k, entry);
  }
  const trust = {
    jwks: { keys: keys.map((k) => publicJwk(k, validFrom ?? k.privateJwk.created_at ?? '1970-01-01T00:00:00Z')) },
    ...(vkey ? { verification_key: readJsonFile(vkey, 'verification key') } : {}),
    ...(tariffs.size ? { tariffs: [...tariffs.values()] } : {}),
  };
  out(JSON.stringify(TrustMaterial.parse(trust), null, 2));
  return 0;
}

export async function cmdAttestOffline(argv: string[]): Promise<number> {
  if (!argv.includes('--offline')) throw new UsageError('only `meterproof attest --offline` is available from the CLI; use POST /v1/attest on a server');
  const a = parseCommand('attest', argv);
  const key = loadKey(a.str('key'));
  const dec = (s: string, what: string) => {
    if (!/^(0|[1-9][0-9]*)$/.test(s)) throw new UsageError(`${what} must be a non-negative integer`);
    return BigInt(s);
  };
  const prev = a.str('prev');
  if (prev !== undefined && !Digest.safeParse(prev).success) throw new UsageError('--prev must be sha256:<64 hex>');
  const seq = dec(a.str('seq') ?? '0', '--seq');
  const cumulativeBefore = dec(a.str('cumulative-before') ?? '0', '--cumulative-before');
  // the chain rules the verifier's chain check applies (docs/protocol.md §3)
  if ((seq === 0n) !== (prev === undefined)) throw new UsageError('--prev is required when --seq > 0 and refused at --seq 0 (the first statement of a chain has no previous one)');
  if (seq === 0n && cumulativeBefore !== 0n) throw new UsageError('--cumulative-before must be 0 at --seq 0');
  const issuedAt = a.str('issued-at') ?? new Date().toISOString();
  // The tariff version's salt (keep it: every bundle of this version must use the same one, and
  // its commitment is what a verifier of redacted bundles looks up); a fresh one if not given.
  const saltArg = a.str('tariff-salt');
  const tariffSalt = saltArg === undefined ? randomSalt() : dec(saltArg, '--tariff-salt');
  if (tariffSalt >= BN128_P) throw new UsageError('--tariff-salt must be a field element (below the bn128 scalar field modulus)');
  try {
    const result = attestEvent({
      event: normalizeMeterEvent(readJsonFile(a.str('event'), 'event')),
      tariff: normalizeTariff(readJsonFile(a.str('tariff'), 'tariff')),
      key,
      chain: { seq, prev: prev ?? null, cumulativeBefore },
      issuedAt,
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
