// The public API of the `meterproof` package, listed by hand: the open verifier (also at
// `meterproof/verifier`), the types of what it reads and reports, the schemas to check them with,
// and the canonical digest that names statements. Nothing here starts a server, opens a database
// or touches the network; the service is the `meterproof` command (src/cli).

// Verification: bundle + trust material in, report out (one algorithm, src/core/verify.ts).
export { verify, verifyJson, redact, type VerifyArgs } from './verifier/index.ts';
export type { Profile } from './core/verify.ts';
export { parseJsonStrict, JsonTextError, type JsonTextErrorCode } from './core/json.ts';

// The revocation-list state a verifier keeps between runs (docs/protocol.md).
export { advanceTrustState, TrustState, TRUST_STATE_TYPE } from './core/revocations.ts';

// Bundles, reports and trust material: zod schemas and their types.
export {
  Attestation,
  Bundle,
  FullBundle,
  RedactedBundle,
  Receipt,
  Statement,
  MeterEvent,
  TariffSnapshot,
  VerificationReport,
  CheckResult,
  CHECK_NAMES,
  VERIFY_CODES,
  BINDING_VERSIONS,
  type BindingVersion,
  type CheckName,
  type VerifyCode,
} from './core/schemas.ts';
export { TrustMaterial, SignedRevocationList, PublishedTariff } from './core/trust.ts';

// The verification keys this verifier pins per binding version (SHA-256 of their RFC 8785 form).
export { PINNED_VKEYS, type Pin } from './verifier/vkeys.ts';

// RFC 8785 canonical JSON and the `sha256:` digests computed over it.
export { canonicalString, digestOf } from './core/canonical.ts';

// Receiving webhooks (Standard Webhooks v1): the signature, timestamp and header checks.
export { verifyWebhook, WebhookVerificationError, type WebhookErrorCode } from './core/webhooks.ts';

// disputes (docs/disputes.md): evidence packs, reconciliation, the auditor's report
export { verifyEvidencePack, packLines, EVIDENCE_PACK_TYPE, type EvidenceVerdict, type EvidenceOptions, type PinnedTrust, type AttestedLine } from './verifier/index.ts';
export { reconcile, MemoryLookup, ReconcileInputError, parseMicros, type AttestedCharge, type AttestedLookup, type ReconcileReport, type ReconcileItem, type ReconcileOptions } from './core/reconcile.ts';
export { renderAuditReport, type ReportInput } from './core/report.ts';
