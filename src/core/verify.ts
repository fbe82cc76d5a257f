// The verification algorithm (docs/protocol.md §3): one function, every check named, fail closed.
// Pure: trust material in, report out. Groth16 and the Poseidon commitments are injected
// (the open verifier in src/verifier wires snarkjs and circomlibjs), as are log checks.
import { canonicalString, digestOf } from './canonical.ts';
import { computeCharge, pricingFromTariff } from './charge.ts';
import { ChargeError } from './errors.ts';
import { JsonTextError, parseJsonStrict } from './json.ts';
import { type PublicJwk, verifyObject } from './keys.ts';
import {
  FullBundle,
  RedactedBundle,
  CHECK_NAMES,
  type CheckName,
  type CheckResult,
  type Groth16Proof,
  type MeterEvent,
  type Receipt,
  type BillingProofV1,
  type BillingProofV2,
  type Statement,
  type StatementV1,
  type StatementV2,
  type TariffSnapshot,
  BINDING_VERSION_V2,
  isV2,
  type SkippedCheck,
  type VerificationReport,
  type VerifyCode,
  type Bundle,
} from './schemas.ts';
import { checkRevocations, type TrustState } from './revocations.ts';
import { billingFingerprint, chainId } from './statement.ts';
import { TrustMaterial } from './trust.ts';
import { countersignatureMessage, keyValidAt as consumerKeyValidAt, popMessage } from './bilateral.ts';
import { cumulativeAfter, publicSignalsV2, saltedEventDigest, saltedFingerprint, saltedTariffDigest } from './binding-v2.ts';

export type Profile = 'strict' | 'standard';

/** Thrown inside a check to fail it with a stable code. */
export class VerificationError extends Error {
  override readonly name = 'VerificationError';
  constructor(
    readonly code: VerifyCode,
    message: string,
  ) {
    super(message);
  }
}

/** A check outcome other than pass: fail (thrown VerificationError) or skipped (returned). */
export interface Skip {
  readonly skipped: string;
}
const skip = (reason: string): Skip => ({ skipped: reason });
export const REDACTED = 'redacted';
/** The reason of a check a binding version does not have (v2 has no proof statement). Allowed. */
export const NOT_APPLICABLE = 'not applicable to binding bn128-poseidon8-v2';
/** The reason of a bilateral check on a bundle that has nothing of its kind (and need not). Allowed. */
export const NONE = 'none in this bundle';

export interface ZkVerifier {
  /** Groth16 check of `proof` for `publicSignals` under the verification key of binding version
   *  `binding` (the verifier's pinned key; `trustKey` is the trust material's, if any). Throws
   *  VerificationError: VKEY_NOT_PINNED, VKEY_INVALID, PROOF_MALFORMED or PROOF_INVALID. */
  verifyProof(binding: string, trustKey: Record<string, unknown> | undefined, publicSignals: string[], proof: Groth16Proof): Promise<void>;
  bindingCommitments(args: {
    event: MeterEvent;
    tariff: TariffSnapshot;
    cumulativeBefore: bigint;
    blinding: bigint;
    charge: bigint;
  }): Promise<{ bindingCommitment: bigint; tariffCommitment: bigint }>;
  /** The salted tariff commitment of bn128-poseidon8-v2. Throws ChargeError on an invalid tariff. */
  tariffCommitmentV2(tariff: TariffSnapshot, salt: bigint): Promise<bigint>;
}

export interface LogVerifier {
  /** Inclusion of the statement leaf in the receipt's checkpoint tree. Throws VerificationError. */
  checkInclusion(receipt: Receipt, statement: Statement): void;
  /** Inclusion of the given leaf bytes (e.g. a settlement leaf). Throws VerificationError. */
  checkLeafInclusion(receipt: Receipt, leafBytes: Uint8Array): void;
  /** The receipt checkpoint's signature under the log verifier key. Throws VerificationError. */
  checkCheckpoint(receipt: Receipt, verifierKey: string): void;
  /** Consistency of the receipt checkpoint with a trusted one. Throws VerificationError. */
  checkConsistency(receipt: Receipt, trustedCheckpoint: string, verifierKey: string, proof: readonly string[] | undefined): void;
}

export interface VerifyOptions {
  readonly profile?: Profile;
  /** Consistency proof (base64 hashes) between the trusted checkpoint and the receipt's. */
  readonly consistencyProof?: readonly string[];
  readonly zk?: ZkVerifier;
  readonly log?: LogVerifier;
  /** The verifier's clock for the revocation list's expiry (default: now). */
  readonly now?: Date;
  /** State kept from earlier runs (`advanceTrustState`): an older revocation list is refused. */
  readonly trustState?: TrustState;
  /** Require a consumer PoP whatever the trust material's consumer_pop_required says. */
  readonly requireConsumerPop?: boolean;
  /** Require at least one consumer countersignature. */
  readonly requireCountersignature?: boolean;
}

/** Checks that may be skipped without failing a bundle, per profile. A skip for `redacted`
 *  is always allowed: it is the recomputation the holder chose to withhold. */
const OPTIONAL: Record<Profile, ReadonlySet<CheckName>> = {
  strict: new Set(['consistency']),
  standard: new Set(['revocation', 'proof_signature', 'commitments', 'proof', 'inclusion', 'checkpoint', 'consistency']),
};

/** The skipped checks the profile does not allow to be skipped, with their reasons. A trusted
 *  checkpoint in the trust material makes `consistency` required under either profile. */
function requiredSkips(checks: readonly CheckResult[], profile: Profile, trust: unknown): SkippedCheck[] {
  const trustedCheckpoint = !!(trust as { log?: { trusted_checkpoint?: unknown } } | null)?.log?.trusted_checkpoint;
  const allowed = (c: CheckResult) =>
    c.reason === REDACTED || c.reason === NOT_APPLICABLE || c.reason === NONE || (OPTIONAL[profile].has(c.name) && !(c.name === 'consistency' && trustedCheckpoint));
  return checks.filter((c) => c.status === 'skipped' && !allowed(c)).map((c) => ({ name: c.name, reason: c.reason ?? 'skipped' }));
}

function findKey(trust: TrustMaterial, kid: string): PublicJwk {
  const jwk = trust.jwks.keys.find((k) => k.kid === kid);
  if (!jwk) throw new VerificationError('KEY_UNKNOWN', `key ${kid} is not in the trusted JWKS`);
  return jwk;
}

const eq = (what: string, a: unknown, b: unknown) => {
  if (a !== b) throw new VerificationError('DIGEST_MISMATCH', `${what} does not match the signed statement`);
};

type CheckFn = () => Promise<void | Skip> | void | Skip;

/**
 * Verify a bundle given as JSON text (as received, as read from a file). The text is parsed
 * strictly (src/core/json.ts): a duplicated object key anywhere (I-JSON, RFC 7493) fails the
 * schema check with DUPLICATE_KEY, text that is not JSON with INVALID_JSON; the report is then
 * invalid whatever the rest says. Trust material may be given as text too (parsed the same way).
 */
export async function verifyBundleText(text: string, trust: unknown, opts: VerifyOptions = {}): Promise<VerificationReport> {
  let bundle: unknown;
  let where = 'bundle';
  try {
    bundle = parseJsonStrict(text);
    where = 'trust material';
    if (typeof trust === 'string') trust = parseJsonStrict(trust);
  } catch (e) {
    if (!(e instanceof JsonTextError)) throw e;
    const profile: Profile = opts.profile ?? 'strict';
    const checks = CHECK_NAMES.map((name): CheckResult => (name === 'schema' ? { name, status: 'fail', code: e.code, reason: `${where}: ${e.message}` } : { name, status: 'skipped', reason: 'schema invalid' }));
    return { valid: false, profile, redacted: false, statement_digest: null, checks, skipped_but_required: requiredSkips(checks, profile, null) };
  }
  return verifyBundle(bundle, trust, opts);
}

/**
 * Verify a bundle (full or redacted) against trust material. Never throws; any exception inside
 * a check fails that check with INTERNAL_ERROR. `valid` is true only when no check failed and no
 * check required by the profile was skipped.
 */
export async function verifyBundle(input: unknown, trustInput: unknown, opts: VerifyOptions = {}): Promise<VerificationReport> {
  const profile: Profile = opts.profile ?? 'strict';
  const results = new Map<CheckName, CheckResult>();
  const record = (name: CheckName, r: Omit<CheckResult, 'name'>) => results.set(name, { name, ...r });
  const skipAll = (reason: string) => {
    for (const n of CHECK_NAMES) if (!results.has(n)) record(n, { status: 'skipped', reason });
  };
  const finish = (redacted: boolean, statementDigest: string | null): VerificationReport => {
    skipAll('not reached');
    const checks = CHECK_NAMES.map((n) => results.get(n)!);
    const skippedButRequired = requiredSkips(checks, profile, trustInput);
    const valid = checks.every((c) => c.status !== 'fail') && skippedButRequired.length === 0;
    return { valid, profile, redacted, statement_digest: statementDigest, checks, skipped_but_required: skippedButRequired };
  };

  async function run(name: CheckName, fn: CheckFn): Promise<boolean> {
    try {
      const r = await fn();
      if (r && 'skipped' in r) record(name, { status: 'skipped', reason: r.skipped });
      else record(name, { status: 'pass' });
      return !r;
    } catch (e) {
      if (e instanceof VerificationError) record(name, { status: 'fail', code: e.code, reason: e.message });
      else record(name, { status: 'fail', code: 'INTERNAL_ERROR', reason: e instanceof Error ? e.message : String(e) });
      return false;
    }
  }

  try {
    // schema: the bundle and the trust material must parse; unknown fields are rejected.
    const parsedTrust = TrustMaterial.safeParse(trustInput);
    const isRedacted = !!input && typeof input === 'object' && 'redacted' in input;
    const parsed = (isRedacted ? RedactedBundle : FullBundle).safeParse(input);
    if (!parsed.success || !parsedTrust.success) {
      const issue = !parsed.success ? parsed.error.issues[0] : parsedTrust.error!.issues[0];
      const where = !parsed.success ? 'bundle' : 'trust material';
      record('schema', {
        status: 'fail',
        code: parsed.success ? 'TRUST_MATERIAL_MISSING' : 'SCHEMA_INVALID',
        reason: `${where}: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`,
      });
      skipAll('schema invalid');
      return finish(false, null);
    }
    // What the checks below read is the parsed bundle; it must be the bundle as received, byte
    // for byte in canonical form. A field the parser drops (zod drops an own "__proto__" key of a
    // record, for one) would otherwise ride along unsigned in a bundle that verifies.
    let exact: boolean;
    try {
      // both as JSON would carry them (an in-memory bundle may hold undefined members, which JSON
      // leaves out); an own "__proto__" key survives this round trip
      const asJson = (v: unknown) => canonicalString(JSON.parse(JSON.stringify(v)));
      exact = asJson(parsed.data) === asJson(input);
    } catch {
      exact = false; // no canonical form at all (a lone surrogate, an undefined member…)
    }
    if (!exact) {
      record('schema', { status: 'fail', code: 'SCHEMA_INVALID', reason: 'bundle: not exactly what its schema keeps (a field a parser drops, such as a "__proto__" key, or a value with no canonical JSON form)' });
      skipAll('schema invalid');
      return finish(false, null);
    }
    record('schema', { status: 'pass' });
    const bundle = parsed.data;
    const trust = parsedTrust.data;
    const full: FullBundle | null = 'redacted' in bundle ? null : bundle;
    const { statement, key_id: keyId, signature } = bundle.attestation;
    const statementDigest = digestOf(statement);

    await run('signature', () => {
      if (statement.key_id !== keyId) throw new VerificationError('SIGNATURE_INVALID', 'attestation.key_id differs from statement.key_id');
      if (!verifyObject(findKey(trust, keyId), statement, signature)) {
        throw new VerificationError('SIGNATURE_INVALID', 'Ed25519 signature over the canonical statement does not verify');
      }
    });

    await run('key_validity', () => {
      const jwk = findKey(trust, keyId);
      const t = Date.parse(statement.issued_at);
      if (t < Date.parse(jwk.valid_from) || (jwk.valid_until && t >= Date.parse(jwk.valid_until))) {
        throw new VerificationError('KEY_NOT_VALID_AT_TIME', `statement issued at ${statement.issued_at}, outside the key's validity window`);
      }
    });

    await run('revocation', () => {
      const bp = bundle.attestation.billing_proof;
      const signed = [{ what: 'statement', key_id: keyId, issued_at: statement.issued_at }];
      // the proof statement counts by its own signing time, not the statement's
      if (bp && 'statement' in bp) signed.push({ what: 'proof statement', key_id: bp.key_id, issued_at: bp.statement.issued_at });
      const r = checkRevocations(trust, signed, statementDigest, { now: opts.now ?? new Date(), previous: opts.trustState, strict: profile === 'strict' });
      if (r && 'code' in r) throw new VerificationError(r.code, r.message);
      return r;
    });

    await run('digests', () => {
      if (!full) return skip(REDACTED);
      const ev = full.meter_event;
      const tf = full.tariff_snapshot;
      if (isV2(statement)) {
        const salts = full.salts!; // the schema requires them with a v2 statement
        eq('meter_event salted digest', saltedEventDigest(ev, BigInt(salts.event)), statement.event_digest);
        eq('tariff_snapshot salted digest', saltedTariffDigest(tf, BigInt(salts.tariff)), statement.tariff_digest);
        eq('usage_units', ev.usage_units, statement.usage_units);
        eq('outcome', ev.outcome, statement.outcome);
      } else {
        eq('meter_event digest', digestOf(ev), statement.event_digest);
        eq('tariff_snapshot digest', digestOf(tf), statement.tariff_digest);
      }
      eq('tenant_id', ev.tenant_id, statement.tenant_id);
      eq('billing_window_id', ev.billing_window_id, statement.billing_window_id);
      eq('tariff_id', tf.tariff_id, statement.tariff_id);
      eq('tariff_version', tf.tariff_version, statement.tariff_version);
      eq('currency', tf.currency, statement.currency);
      eq('chain id', chainId(ev.tenant_id, ev.endpoint, ev.billing_window_id), statement.chain.id);
      eq('billing.expected_charge_micros', full.billing.expected_charge_micros, statement.charge_micros);
      eq('billing.billing_verify_fingerprint', full.billing.billing_verify_fingerprint, statement.billing_verify_fingerprint);
      eq('billing.cumulative_units_before', full.billing.cumulative_units_before, statement.chain.cumulative_units_before);
    });

    await run('fingerprint', () => {
      if (!full) return skip(REDACTED);
      const fp = isV2(statement)
        ? saltedFingerprint(full.meter_event, full.tariff_snapshot, statement.charge_micros, BigInt(full.salts!.event))
        : billingFingerprint(full.meter_event, full.tariff_snapshot, statement.charge_micros);
      if (fp !== statement.billing_verify_fingerprint) {
        throw new VerificationError('FINGERPRINT_MISMATCH', 'the reconciliation fingerprint does not match the event, tariff and charge');
      }
    });

    await run('charge', () => {
      if (!full) return skip(REDACTED);
      let result;
      try {
        result = computeCharge(
          {
            units: BigInt(full.meter_event.usage_units),
            outcome: full.meter_event.outcome,
            cumulativeBefore: BigInt(statement.chain.cumulative_units_before),
          },
          pricingFromTariff(full.tariff_snapshot),
        );
      } catch (e) {
        if (e instanceof ChargeError) throw new VerificationError('TARIFF_INVALID', `${e.code}: ${e.message}`);
        throw e;
      }
      if (result.charge.toString() !== statement.charge_micros) {
        throw new VerificationError('CHARGE_MISMATCH', `recomputed charge ${result.charge} micros differs from the signed ${statement.charge_micros}`);
      }
    });

    await run('chain', () => {
      const c = statement.chain;
      const first = c.seq === '0';
      if (first !== (c.prev === null)) throw new VerificationError('CHAIN_INVALID', 'seq 0 and only seq 0 has no previous statement');
      if (first && c.cumulative_units_before !== '0') throw new VerificationError('CHAIN_INVALID', 'the first statement of a chain starts at 0 units');
      if (isV2(statement)) {
        const after = cumulativeAfter(BigInt(c.cumulative_units_before), statement.outcome, BigInt(statement.usage_units));
        if (after.toString() !== statement.chain.cumulative_units_after) {
          throw new VerificationError('CHAIN_INVALID', `cumulative_units_after must be ${after} (before plus the billable units of this event)`);
        }
      }
    });

    const bp = bundle.attestation.billing_proof;
    if (isV2(statement)) {
      await checkProofV2(run, { statement, proofStatus: bundle.attestation.proof_status, trust, full, bp: bp as BillingProofV2 | undefined, zk: opts.zk });
    } else {
      await checkProofV1(run, { statement, statementDigest, proofStatus: bundle.attestation.proof_status, trust, full, bp: bp as BillingProofV1 | undefined, zk: opts.zk });
    }

    const receipt = bundle.receipt;
    const logKey = trust.log?.verifier_key;
    await run('inclusion', () => {
      if (!receipt) return skip('no receipt');
      if (!opts.log) return skip('no log verifier configured');
      opts.log.checkInclusion(receipt, statement);
    });
    await run('checkpoint', () => {
      if (!receipt) return skip('no receipt');
      if (!logKey) throw new VerificationError('TRUST_MATERIAL_MISSING', 'no log verifier key in the trust material');
      if (!opts.log) return skip('no log verifier configured');
      opts.log.checkCheckpoint(receipt, logKey);
    });
    await run('consistency', () => {
      const trusted = trust.log?.trusted_checkpoint;
      if (!trusted) return skip('no trusted checkpoint given');
      if (!receipt) throw new VerificationError('CONSISTENCY_INVALID', 'a trusted checkpoint was given but the bundle has no receipt');
      if (!logKey) throw new VerificationError('TRUST_MATERIAL_MISSING', 'no log verifier key in the trust material');
      if (!opts.log) return skip('no log verifier configured');
      opts.log.checkConsistency(receipt, trusted, logKey, opts.consistencyProof);
    });
    await checkBilateral(run, { statement, statementDigest, trust, full, bundle, opts });
    return finish(full === null, statementDigest);
  } catch (e) {
    // Fail closed: an exception outside a check still yields an invalid report.
    const at = CHECK_NAMES.find((n) => !results.has(n)) ?? 'schema';
    record(at, { status: 'fail', code: 'INTERNAL_ERROR', reason: e instanceof Error ? e.message : String(e) });
    return { ...finish(false, null), valid: false };
  }
}

type Runner = (name: CheckName, fn: CheckFn) => Promise<boolean>;

/** Whether `issuedAt` lies in the key's validity window [valid_from, valid_until). */
export function keyValidAt(jwk: PublicJwk, issuedAt: string): boolean {
  const t = Date.parse(issuedAt);
  return !(t < Date.parse(jwk.valid_from) || (jwk.valid_until && t >= Date.parse(jwk.valid_until)));
}

/** bn128-poseidon8-v1: a signed proof statement carries the public signals; the commitments are
 *  recomputed from a full bundle or compared with the published tariff commitment. */
async function checkProofV1(
  run: Runner,
  a: { statement: StatementV1; statementDigest: string; proofStatus: string; trust: TrustMaterial; full: FullBundle | null; bp: BillingProofV1 | undefined; zk: ZkVerifier | undefined },
): Promise<void> {
  const { statement, trust, full, bp, zk } = a;
  const proofOk = await run('proof_signature', () => {
    if (!bp) return skip(`no billing_proof (proof status: ${a.proofStatus})`);
    const ps = bp.statement;
    if (ps.key_id !== bp.key_id) throw new VerificationError('PROOF_SIGNATURE_INVALID', 'billing_proof.key_id differs from its statement');
    if (ps.statement_digest !== a.statementDigest) {
      throw new VerificationError('PROOF_SIGNATURE_INVALID', 'billing_proof is for another statement');
    }
    if (ps.charge_micros !== statement.charge_micros) throw new VerificationError('PROOF_SIGNATURE_INVALID', 'billing_proof charge differs');
    const jwk = findKey(trust, bp.key_id);
    if (!verifyObject(jwk, ps, bp.signature)) throw new VerificationError('PROOF_SIGNATURE_INVALID', 'billing_proof signature does not verify');
    if (!keyValidAt(jwk, ps.issued_at)) throw new VerificationError('KEY_NOT_VALID_AT_TIME', 'billing_proof signed outside its key validity window');
  });

  await run('commitments', async () => {
    if (!bp) return skip('no billing_proof');
    const published = trust.tariffs?.find((t) => t.binding === undefined && t.tariff_id === statement.tariff_id && t.tariff_version === statement.tariff_version);
    if (published && published.tariff_commitment !== bp.statement.tariff_commitment) {
      throw new VerificationError('COMMITMENT_MISMATCH', 'tariff commitment differs from the published one for this tariff version');
    }
    if (!full) return published ? undefined : skip(REDACTED);
    if (!zk) return skip('no ZK verifier configured');
    if (bp.blinding === undefined) throw new VerificationError('COMMITMENT_MISMATCH', 'a full bundle must carry the blinding of its commitment');
    const c = await zk.bindingCommitments({
      event: full.meter_event,
      tariff: full.tariff_snapshot,
      cumulativeBefore: BigInt(statement.chain.cumulative_units_before),
      blinding: BigInt(bp.blinding),
      charge: BigInt(statement.charge_micros),
    });
    if (c.tariffCommitment.toString() !== bp.statement.tariff_commitment) {
      throw new VerificationError('COMMITMENT_MISMATCH', 'tariff commitment does not match the tariff snapshot');
    }
    if (c.bindingCommitment.toString() !== bp.statement.binding_commitment) {
      throw new VerificationError('COMMITMENT_MISMATCH', 'binding commitment does not match the event, tariff and charge');
    }
  });

  await run('proof', async () => {
    if (!bp) return skip('no billing_proof');
    if (!proofOk) throw new VerificationError('PROOF_INVALID', 'the proof statement is not authentic');
    if (!zk) return skip('no ZK verifier configured');
    const ps = bp.statement;
    await zk.verifyProof(ps.binding, trust.verification_key, [ps.binding_commitment, ps.charge_micros, ps.tariff_commitment], bp.proof);
  });
}

/** bn128-poseidon8-v2: every public signal comes from the signed statement and the tariff
 *  version's commitment; no proof statement. A redacted bundle needs the published commitment. */
async function checkProofV2(
  run: Runner,
  a: { statement: StatementV2; proofStatus: string; trust: TrustMaterial; full: FullBundle | null; bp: BillingProofV2 | undefined; zk: ZkVerifier | undefined },
): Promise<void> {
  const { statement, trust, full, bp, zk } = a;
  await run('proof_signature', () => skip(NOT_APPLICABLE));

  let commitment: bigint | undefined;
  await run('commitments', async () => {
    const published = trust.tariffs?.find(
      (t) => t.binding === BINDING_VERSION_V2 && t.tariff_id === statement.tariff_id && t.tariff_version === statement.tariff_version,
    );
    if (!full) {
      // Without the tariff, only its published commitment says which tariff the proof used.
      if (!published) {
        throw new VerificationError('TARIFF_NOT_PUBLISHED', `tariff ${statement.tariff_id} version ${statement.tariff_version} has no published bn128-poseidon8-v2 commitment in the trust material`);
      }
      commitment = BigInt(published.tariff_commitment);
      return;
    }
    if (!zk) return skip('no ZK verifier configured');
    let computed: bigint;
    try {
      computed = await zk.tariffCommitmentV2(full.tariff_snapshot, BigInt(full.salts!.tariff));
    } catch (e) {
      if (e instanceof ChargeError) throw new VerificationError('TARIFF_INVALID', `${e.code}: ${e.message}`);
      throw e;
    }
    if (published && published.tariff_commitment !== computed.toString()) {
      throw new VerificationError('COMMITMENT_MISMATCH', 'the tariff snapshot and salt do not give the published commitment of this tariff version');
    }
    commitment = computed;
  });

  await run('proof', async () => {
    if (!bp) return skip(`no billing_proof (proof status: ${a.proofStatus})`);
    if (!zk) return skip('no ZK verifier configured');
    if (commitment === undefined) throw new VerificationError('PROOF_INVALID', 'no tariff commitment to check the proof against (see the commitments check)');
    const signals = publicSignalsV2(statement, commitment).map(String);
    await zk.verifyProof(bp.binding, trust.verification_keys?.[bp.binding], signals, bp.proof);
  });
}

/** The consumer key `kid` of (tenant, consumer) in the trust material, valid at `at`. */
function consumerKey(trust: TrustMaterial, tenantId: string, consumerId: string, kid: string, at: string, what: string): PublicJwk {
  const c = trust.consumers?.find((x) => x.tenant_id === tenantId && x.consumer_id === consumerId);
  const jwk = c?.keys.find((k) => k.kid === kid);
  if (!jwk) throw new VerificationError('CONSUMER_KEY_UNKNOWN', `key ${kid} of consumer ${consumerId} (tenant ${tenantId}) is not in the trust material`);
  if (!consumerKeyValidAt(jwk, Date.parse(at))) {
    throw new VerificationError('CONSUMER_KEY_NOT_VALID_AT_TIME', `${what} at ${at}, outside the validity window of consumer key ${kid} (rotated or revoked)`);
  }
  return jwk;
}

/** Bilateral metering: the consumer's PoP (committed to by the statement) and countersignatures.
 *  Each is "none in this bundle" when absent and not required. */
async function checkBilateral(
  run: Runner,
  a: { statement: Statement; statementDigest: string; trust: TrustMaterial; full: FullBundle | null; bundle: Bundle; opts: VerifyOptions },
): Promise<void> {
  const { statement, statementDigest, trust, full, bundle, opts } = a;
  const pop = bundle.consumer_pop;
  await run('consumer_pop', () => {
    const committed = isV2(statement) ? statement.consumer_pop_digest : undefined;
    if (!pop) {
      if (committed) throw new VerificationError('CONSUMER_POP_MISSING', 'the statement commits to a consumer PoP the bundle does not carry');
      const issued = Date.parse(statement.issued_at);
      const required = trust.consumer_pop_required?.some((p) => p.tenant_id === statement.tenant_id && issued >= Date.parse(p.since) && (p.until === undefined || issued < Date.parse(p.until)));
      if (opts.requireConsumerPop || required) {
        throw new VerificationError('CONSUMER_POP_MISSING', `a consumer PoP is required for tenant ${statement.tenant_id} and the bundle has none`);
      }
      return skip(NONE);
    }
    if (!committed) throw new VerificationError('CONSUMER_POP_MISMATCH', 'the bundle carries a consumer PoP its signed statement does not commit to');
    if (digestOf(pop) !== committed) throw new VerificationError('CONSUMER_POP_MISMATCH', 'consumer_pop does not match the statement\'s consumer_pop_digest');
    if (pop.tenant_id !== statement.tenant_id) throw new VerificationError('CONSUMER_POP_MISMATCH', 'consumer_pop names another tenant than the statement');
    if (pop.tariff_digest !== statement.tariff_digest) throw new VerificationError('CONSUMER_POP_MISMATCH', 'consumer_pop names another tariff than the statement pins');
    if (full && pop.event_id !== full.meter_event.event_id) throw new VerificationError('CONSUMER_POP_MISMATCH', 'consumer_pop names another event than the meter event');
    // the operator signed the statement (issued_at) while the key was valid: that is when it counts
    const jwk = consumerKey(trust, pop.tenant_id, pop.consumer_id, pop.key_id, statement.issued_at, 'attested');
    if (!verifyObject(jwk, popMessage(pop), pop.signature)) {
      throw new VerificationError('CONSUMER_POP_SIGNATURE_INVALID', 'the consumer\'s Ed25519 signature over the canonical PoP does not verify');
    }
  });

  await run('countersignatures', () => {
    const list = bundle.countersignatures;
    if (!list) {
      if (opts.requireCountersignature) throw new VerificationError('COUNTERSIGNATURE_MISSING', 'a consumer countersignature is required and the bundle has none');
      return skip(NONE);
    }
    const seen = new Set<string>();
    for (const c of list) {
      const at = `countersignature of ${c.consumer_id}`;
      if (c.statement_digest !== statementDigest) throw new VerificationError('COUNTERSIGNATURE_INVALID', `${at} is over another statement`);
      if (c.tenant_id !== statement.tenant_id) throw new VerificationError('COUNTERSIGNATURE_INVALID', `${at} names another tenant than the statement`);
      if (pop && c.consumer_id !== pop.consumer_id) throw new VerificationError('COUNTERSIGNATURE_INVALID', `${at}: only the consumer of the PoP (${pop.consumer_id}) countersigns`);
      const k = `${c.consumer_id}\u0000${c.key_id}`;
      if (seen.has(k)) throw new VerificationError('COUNTERSIGNATURE_INVALID', `${at} appears twice`);
      seen.add(k);
      const jwk = consumerKey(trust, c.tenant_id, c.consumer_id, c.key_id, c.signed_at, 'countersigned');
      if (!verifyObject(jwk, countersignatureMessage(c), c.signature)) {
        throw new VerificationError('COUNTERSIGNATURE_INVALID', `${at}: the Ed25519 signature over the canonical countersignature does not verify`);
      }
    }
  });
}
