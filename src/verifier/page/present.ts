// What the verifier page shows, from a verification report and the bundle: one row per check
// (✓ pass, ✗ fail, – skipped, always with the word too), the check's code, a plain-language line
// on what the check establishes and, when it did not pass, what went wrong; then the charge and
// what the bundle does not show. Pure (no DOM), so test/verifier-page.test.ts can hold it to
// the report in Node; main.ts renders it.
import { CHECK_NAMES, type CheckName, type VerificationReport, type VerifyCode } from '../../core/schemas.ts';
import { EVIDENCE_PACK_TYPE, type EvidenceCheck, type EvidenceVerdict } from '../evidence.ts';

/** What each check establishes when it passes, in the words of someone checking an invoice. */
export const CHECK_MEANING: Readonly<Record<CheckName, string>> = {
  schema: 'The bundle and the trust material are well-formed, with nothing extra in them.',
  signature: "The operator's signing key signed this statement, and it has not been changed since.",
  key_validity: 'The signing key was valid when the statement was issued.',
  revocation: 'Neither the key nor this attestation has been revoked (per the signed revocation list).',
  digests: 'The meter event and tariff in the bundle are the ones the signed statement names.',
  fingerprint: 'The reconciliation fingerprint matches the event, tariff and charge.',
  charge: 'Recomputing the charge from the usage and the tariff gives the signed charge.',
  chain: "The statement's place in its chain of statements adds up (sequence and cumulative units).",
  proof_signature: 'The proof statement is signed by the operator and is about this statement.',
  commitments: 'The tariff (and event) commitments match the tariff the operator published.',
  proof: 'The zero-knowledge proof shows the charge follows from the committed usage and tariff.',
  inclusion: 'The statement is recorded in the transparency log.',
  checkpoint: "The log checkpoint in the receipt is signed by the log's key.",
  consistency: 'The log has only grown since the checkpoint you trust (nothing rewritten).',
  consumer_pop: "The consumer's proof of possession for this request is present and signed by them.",
  countersignatures: 'The consumer countersigned this statement.',
};

/** What a failure code means, in plain words. A closed list: one entry per code. */
export const CODE_MEANING: Readonly<Record<VerifyCode, string>> = {
  SCHEMA_INVALID: 'The file is not a well-formed bundle (or has fields a bundle may not have).',
  INVALID_JSON: 'The text is not valid JSON.',
  DUPLICATE_KEY: 'The JSON names the same field twice, so readers could disagree on its value.',
  SIGNATURE_INVALID: 'The signature does not match: the statement was changed or signed by another key.',
  KEY_UNKNOWN: 'The signing key is not among the keys in the trust material.',
  KEY_NOT_VALID_AT_TIME: 'The signing key was not valid at the time of signing.',
  REVOKED: 'The key or this attestation has been revoked.',
  REVOCATION_LIST_INVALID: 'The revocation list in the trust material is not authentic.',
  REVOCATIONS_EXPIRED: 'The revocation list is out of date; fetch fresh trust material.',
  REVOCATIONS_ROLLBACK: 'The revocation list is older than one seen before.',
  REVOCATIONS_NO_EXPIRY: 'The revocation list has no expiry, which the strict profile requires.',
  DIGEST_MISMATCH: 'The event or tariff in the bundle differs from what was signed.',
  FINGERPRINT_MISMATCH: 'The fingerprint does not match the event, tariff and charge.',
  CHARGE_MISMATCH: 'The charge does not follow from the usage and the tariff.',
  TARIFF_INVALID: 'The tariff cannot be used to compute a charge.',
  TARIFF_NOT_PUBLISHED: 'The trust material has no published commitment for this tariff version.',
  CHAIN_INVALID: "The statement's chain position does not add up.",
  PROOF_SIGNATURE_INVALID: 'The proof statement is not authentic or is about another statement.',
  COMMITMENT_MISMATCH: 'The commitments do not match the tariff or the published commitment.',
  PROOF_INVALID: 'The zero-knowledge proof does not hold for this statement.',
  PROOF_MALFORMED: 'The zero-knowledge proof is not a well-formed proof.',
  VKEY_NOT_PINNED: 'The verification key is not the one this verifier pins for the binding version.',
  VKEY_INVALID: 'The verification key is unusable.',
  INCLUSION_INVALID: 'The log inclusion proof does not lead to the checkpoint.',
  CHECKPOINT_INVALID: "The log checkpoint is not signed by the trusted log key.",
  CONSISTENCY_INVALID: 'The log checkpoint is not consistent with the trusted one.',
  TRUST_MATERIAL_MISSING: 'The trust material lacks something this check needs.',
  CONSUMER_POP_MISSING: "A consumer's proof of possession is required and missing.",
  CONSUMER_POP_MISMATCH: "The consumer's proof of possession does not match the statement.",
  CONSUMER_POP_SIGNATURE_INVALID: "The consumer's signature on the proof of possession does not verify.",
  CONSUMER_KEY_UNKNOWN: "The consumer's key is not in the trust material.",
  CONSUMER_KEY_NOT_VALID_AT_TIME: "The consumer's key was not valid at the time.",
  COUNTERSIGNATURE_MISSING: 'A countersignature is required and missing.',
  COUNTERSIGNATURE_INVALID: 'A countersignature does not verify or is about another statement.',
  INTERNAL_ERROR: 'The verifier could not complete this check.',
};

export type Mark = '✓' | '✗' | '–';
const MARKS = { pass: '✓', fail: '✗', skipped: '–' } as const;
const WORDS = { pass: 'passed', fail: 'failed', skipped: 'skipped' } as const;

export interface Row {
  readonly name: CheckName | EvidenceCheck;
  readonly status: 'pass' | 'fail' | 'skipped';
  readonly mark: Mark;
  /** The status as a word, for the page (never the mark or a colour alone). */
  readonly word: string;
  readonly code: string;
  /** What the check establishes. */
  readonly meaning: string;
  /** Why it failed or was skipped (the code's meaning and the verifier's reason); empty on pass. */
  readonly why: string;
  /** A skipped check the profile requires (so the report is invalid). */
  readonly required: boolean;
}

export function rows(report: VerificationReport): Row[] {
  const required = new Set(report.skipped_but_required.map((s) => s.name));
  return report.checks.map((c) => {
    const why = c.status === 'pass' ? '' : [c.code ? CODE_MEANING[c.code] : '', c.reason ?? ''].filter(Boolean).join(' — ');
    return {
      name: c.name,
      status: c.status,
      mark: MARKS[c.status],
      word: required.has(c.name) ? 'skipped, but required' : WORDS[c.status],
      code: c.code ?? '',
      meaning: CHECK_MEANING[c.name],
      why,
      required: required.has(c.name),
    };
  });
}

/** The first failed check (or required skip): what the page names as the reason for INVALID. */
export function firstProblem(report: VerificationReport): { name: CheckName; code: string } | null {
  const failed = report.checks.find((c) => c.status === 'fail');
  if (failed) return { name: failed.name, code: failed.code ?? '' };
  const skipped = report.skipped_but_required[0];
  return skipped ? { name: skipped.name, code: '' } : null;
}

export interface Summary {
  /** e.g. "12.345678 EUR (12345678 micros)"; null when the bundle has no readable statement. */
  readonly charge: string | null;
  readonly facts: ReadonlyArray<readonly [string, string]>;
  /** What the bundle does not show the reader. */
  readonly hidden: readonly string[];
}

const obj = (v: unknown): Record<string, unknown> | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** Micros as a decimal amount: "12345678" → "12.345678". */
export function microsToAmount(micros: string): string {
  const digits = micros.replace(/^0+(?=\d)/, '').padStart(7, '0');
  return `${digits.slice(0, -6)}.${digits.slice(-6)}`;
}

/** The charge and the facts the signed statement states, and what the bundle withholds. Reads
 *  the bundle as given (the report says whether it is authentic). */
export function summary(bundle: unknown): Summary {
  const b = obj(bundle);
  const statement = obj(obj(b?.['attestation'])?.['statement']);
  if (!b || !statement) return { charge: null, facts: [], hidden: [] };
  const micros = str(statement['charge_micros']);
  const currency = str(statement['currency']) ?? '';
  const charge = micros && /^\d+$/.test(micros) ? `${microsToAmount(micros)} ${currency} (${micros} micros)`.trim() : null;
  const facts: [string, string][] = [];
  const add = (label: string, v: unknown) => {
    if (typeof v === 'string') facts.push([label, v]);
  };
  add('Tenant', statement['tenant_id']);
  add('Billing window', statement['billing_window_id']);
  add('Tariff', statement['tariff_id'] && statement['tariff_version'] ? `${String(statement['tariff_id'])} version ${String(statement['tariff_version'])}` : undefined);
  add('Usage units', statement['usage_units']);
  add('Outcome', statement['outcome']);
  add('Issued at', statement['issued_at']);
  add('Binding version', statement['binding'] ?? 'bn128-poseidon8-v1');
  const hidden: string[] = [];
  if ('redacted' in b) {
    hidden.push(
      'the meter event (what was used, when, by which endpoint)',
      'the tariff snapshot (prices, tiers, rounding)',
      'the billing detail (expected charge, cumulative units)',
      statement['type'] === 'meterproof/statement/v2' ? 'the salts of the event and tariff digests' : 'the blinding of the commitment',
    );
  }
  return { charge, facts, hidden };
}

export { CHECK_NAMES };

/** Whether `text` is an evidence pack (docs/protocol.md §6): its first line is the pack header. */
export function isEvidencePack(text: string): boolean {
  const first = text.slice(0, text.indexOf('\n') === -1 ? undefined : text.indexOf('\n'));
  try {
    const v = JSON.parse(first) as { type?: unknown } | null;
    return !!v && typeof v === 'object' && v.type === EVIDENCE_PACK_TYPE;
  } catch {
    return false;
  }
}

/** What each check of an evidence pack establishes (docs/protocol.md §6). */
export const PACK_CHECK_MEANING: Readonly<Record<EvidenceCheck, string>> = {
  format: 'The pack is well-formed: a header, bundle lines, a settlement line where due, and a manifest that closes it.',
  pinned_trust: "The pack's trust snapshot is the trust material you pinned (signing keys and log key).",
  manifest: 'The service signed the manifest over the header and every statement in the pack: nothing added, dropped or reordered.',
  bundles: 'Every bundle in the pack verifies (every bundle check, the proof included) and is consistent with the pack checkpoint.',
  scope: 'Every bundle belongs to the scope the pack names (an attestation, a billing window or a settlement).',
  chains: 'Each chain of statements is in the pack complete and in order, with no gap.',
  settlement: 'The settlement verifies and its totals follow from the statements in the pack.',
};

/** The rows of a pack verdict, in the form of a bundle's. */
export function packRows(verdict: EvidenceVerdict): Row[] {
  return verdict.checks.map((c) => ({
    name: c.name,
    status: c.status,
    mark: MARKS[c.status],
    word: WORDS[c.status],
    code: c.code ?? '',
    meaning: PACK_CHECK_MEANING[c.name],
    why: c.status === 'pass' ? '' : (c.reason ?? ''),
    required: false,
  }));
}

/** The pack's totals per currency: "12.345678 EUR over 3 events (12345678 micros)". */
export function packTotals(verdict: EvidenceVerdict): string[] {
  return verdict.totals.by_currency.map((a) => `${microsToAmount(a.charge_micros)} ${a.currency} over ${a.events} event${a.events === 1 ? '' : 's'} (${a.charge_micros} micros)`);
}
