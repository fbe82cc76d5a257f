// The open verifier: the core algorithm with Groth16 (snarkjs) and the log checks wired in.
// No server, no database, no network: bundle + trust material in, report out.
import { verifyBundle, verifyBundleText, type Profile, type VerifyOptions } from '../core/verify.ts';
import { FullBundle, RedactedBundle, type VerificationReport } from '../core/schemas.ts';
import type { TrustState } from '../core/revocations.ts';
import { zkVerifier } from './zk.ts';
export { releaseZk } from './zk.ts';
import { logVerifier } from './log.ts';
import { SettlementEvidenceVerifier, type SettlementReport, verifySettlement } from '../core/settlement-verify.ts';
import type { TrustMaterial } from '../core/trust.ts';

export { verifyBundle, verifyBundleText } from '../core/verify.ts';
export { parseJsonStrict, JsonTextError } from '../core/json.ts';
export { verifyBatch, type BatchItem, type BatchOptions } from './batch.ts';
export { createVerifyPool, VerifyPoolClosedError, type VerifyPool, type VerifyPoolOptions } from './pool.ts';
export type { VerificationReport, CheckResult, Bundle } from '../core/schemas.ts';
export type { TrustMaterial } from '../core/trust.ts';

export { advanceTrustState, TrustState, TRUST_STATE_TYPE } from '../core/revocations.ts';

export interface VerifyArgs {
  readonly profile?: Profile;
  readonly consistencyProof?: readonly string[];
  /** The verifier's clock for the revocation list's expiry (default: now). */
  readonly now?: Date;
  /** The state kept from earlier runs (`advanceTrustState`): an older revocation list is refused. */
  readonly trustState?: TrustState;
  /** Require a consumer PoP / a countersignature (bilateral metering). */
  readonly requireConsumerPop?: boolean;
  readonly requireCountersignature?: boolean;
}

/** Verify with every check this build supports. Same function behind the API, CLI and library. */
export function verify(bundle: unknown, trust: unknown, args: VerifyArgs = {}): Promise<VerificationReport> {
  const opts: VerifyOptions = { ...args, zk: zkVerifier, log: logVerifier };
  return verifyBundle(bundle, trust, opts);
}

/** verify() of a bundle given as JSON text: parsed strictly, so a duplicated key (RFC 7493) or
 *  text that is not JSON fails the schema check (DUPLICATE_KEY / INVALID_JSON), never VALID.
 *  Use this for bundles as received or read from files. */
export function verifyJson(bundleText: string, trust: unknown, args: VerifyArgs = {}): Promise<VerificationReport> {
  return verifyBundleText(bundleText, trust, { ...args, zk: zkVerifier, log: logVerifier });
}

/** Verify a settlement's evidence (GET /v1/settlements/{id}/evidence) with trust material as
 *  `GET /v1/trust` serves it: the JWKS and the log verifier key. The same function behind the CLI. */
export function verifySettlementEvidence(evidence: unknown, trust: TrustMaterial): SettlementReport {
  return verifySettlement(evidence, { jwks: trust.jwks, ...(trust.log ? { logVerifierKey: trust.log.verifier_key } : {}) }, logVerifier);
}
/** The same, streamed: construct with the evidence head (every member but `attestations`), push
 *  each attested statement as it is read, then `finish()` for the report. Bounded memory. */
export function settlementEvidenceVerifier(head: unknown, trust: TrustMaterial): SettlementEvidenceVerifier {
  return new SettlementEvidenceVerifier(head, { jwks: trust.jwks, ...(trust.log ? { logVerifierKey: trust.log.verifier_key } : {}) }, logVerifier);
}
export type { SettlementReport } from '../core/settlement-verify.ts';
export { SettlementEvidenceVerifier } from '../core/settlement-verify.ts';

/** Evidence packs (docs/protocol.md §6): pure and I/O-free; pass `zk: zkVerifier` (Node) or a
 *  browser-built ZkVerifier for the Groth16 checks. */
export {
  verifyEvidencePack,
  packLines,
  EVIDENCE_PACK_TYPE,
  EVIDENCE_CHECKS,
  EVIDENCE_CODES,
  PIN_OUT_OF_BAND,
  type EvidenceVerdict,
  type EvidenceOptions,
  type EvidenceCheckResult,
  type PinnedTrust,
  type PackInput,
  type AttestedLine,
} from './evidence.ts';
export { zkVerifier } from './zk.ts';
export { logVerifier } from './log.ts';

/** The redacted form a customer can hand to an auditor: statement, signatures, proof and
 *  receipt stay; meter event, tariff, billing detail, salts (v2) and the commitment blinding (v1) are withheld. */
export function redact(bundle: unknown): RedactedBundle {
  const b = FullBundle.parse(bundle); // throws a ZodError on anything but a well-formed full bundle
  const attestation = structuredClone(b.attestation);
  const bp = attestation.billing_proof;
  if (bp && 'blinding' in bp) delete bp.blinding;
  // the consumer's PoP and countersignatures stay: they are what the consumer signed, and the
  // statement commits to the PoP (it shows the consumer, event id and request payload hash)
  return RedactedBundle.parse({
    redacted: true,
    attestation,
    ...(b.receipt ? { receipt: b.receipt } : {}),
    ...(b.consumer_pop ? { consumer_pop: b.consumer_pop } : {}),
    ...(b.countersignatures ? { countersignatures: b.countersignatures } : {}),
  });
}
