// Verifying a settlement from its evidence (docs/protocol.md §5.6): the signed settlement
// statement, its log receipt, the plan and every attested statement it covers. Pure: trust
// material in, a report out; the log checks are injected (src/verifier/log.ts), as for bundles.
// Every check is named; the first difference between the recomputed and the signed statement is
// named by its path. Fail closed: any exception is a failure.
import { z } from 'zod';
import { canonicalBytes, digestBytes } from './canonical.ts';
import { Jwks, type PublicJwk, verifyBytes } from './keys.ts';
import { Plan, planDigest } from './plan.ts';
import { Adjustment } from './adjustment.ts';
import { Digest, Receipt, Statement } from './schemas.ts';
import { SETTLEMENT_TYPE, SettlementAccumulator, SettlementError, settlementLeaf } from './settlement.ts';
import { type LogVerifier, VerificationError, keyValidAt } from './verify.ts';

export const SETTLEMENT_EVIDENCE_TYPE = 'meterproof/settlement-evidence/v1';

const signedStatement = z.strictObject({ statement: Statement, key_id: z.string().min(1), signature: z.string().min(1) });
const signedAdjustment = z.strictObject({ adjustment: Adjustment, key_id: z.string().min(1), signature: z.string().min(1) });

/** Everything of the evidence but the attested statements (which may be streamed, one by one). */
export const SettlementEvidenceHead = z.strictObject({
  type: z.literal(SETTLEMENT_EVIDENCE_TYPE),
  settlement: z.strictObject({
    // checked field by field against the recomputation; these are the fields the recomputation needs
    statement: z.looseObject({
      type: z.literal(SETTLEMENT_TYPE),
      tenant_id: z.string(),
      billing_window_id: z.string(),
      issued_at: z.string(),
      key_id: z.string(),
      chains: z.array(z.looseObject({ id: Digest, count: z.string().regex(/^(0|[1-9][0-9]{0,19})$/) })).max(100_000),
      excluded: z.array(z.strictObject({ statement_digest: Digest, reason: z.string() })),
    }),
    statement_digest: Digest,
    key_id: z.string().min(1),
    signature: z.string().min(1),
  }),
  receipt: Receipt.nullable(),
  plan: Plan,
  /** The signed adjustments the settlement claims, by ascending digest. */
  adjustments: z.array(signedAdjustment).max(100_000),
});

export const SettlementEvidence = SettlementEvidenceHead.extend({
  /** The attested statements the settlement covers, its excluded ones too: the window's ordered
   *  by chain id then seq, then the late ones ordered by chain id then seq. */
  attestations: z.array(z.unknown()),
});
export type SettlementEvidence = z.infer<typeof SettlementEvidence>;

export const SETTLEMENT_CHECKS = ['schema', 'content_hash', 'signature', 'plan', 'adjustment_signatures', 'attestation_signatures', 'recomputation', 'inclusion', 'checkpoint'] as const;
export type SettlementCheck = (typeof SETTLEMENT_CHECKS)[number];

export interface SettlementCheckResult {
  readonly name: SettlementCheck;
  readonly status: 'pass' | 'fail' | 'skipped';
  readonly code?: string;
  readonly message?: string;
}

export interface SettlementReport {
  readonly valid: boolean;
  readonly checks: readonly SettlementCheckResult[];
  /** The JSON path of the first field where the signed statement differs from the recomputation. */
  readonly first_difference?: string;
}

export interface SettlementTrust {
  readonly jwks: unknown;
  /** The log's C2SP verifier key; without it the inclusion and checkpoint checks fail (required). */
  readonly logVerifierKey?: string;
}

class Failed extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

/** The first path where two JSON values differ (objects compared key by key in sorted order). */
export function firstDifference(a: unknown, b: unknown, path = '$'): string | null {
  if (a === b) return null;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const d = i < a.length && i < b.length ? firstDifference(a[i], b[i], `${path}[${i}]`) : `${path}[${i}]`;
      if (d) return d;
    }
    return null;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      const x = (a as Record<string, unknown>)[k];
      const y = (b as Record<string, unknown>)[k];
      const d = k in a && k in b ? firstDifference(x, y, `${path}.${k}`) : `${path}.${k}`;
      if (d) return d;
    }
    return null;
  }
  return path;
}

function signatureValid(jwks: ReadonlyMap<string, PublicJwk>, keyId: string, issuedAt: string, bytes: Uint8Array, signature: string): string | null {
  const jwk = jwks.get(keyId);
  if (!jwk) return 'KEY_UNKNOWN';
  if (!keyValidAt(jwk, issuedAt)) return 'KEY_NOT_VALID_AT_TIME';
  return verifyBytes(jwk, bytes, signature) ? null : 'SIGNATURE_INVALID';
}

type Log = Pick<LogVerifier, 'checkLeafInclusion' | 'checkCheckpoint'>;

/** One attested statement of the evidence, checked: its digest and statement, or why it fails. */
export type CheckedStatement = { readonly digest: string; readonly statement: Statement; readonly failure?: undefined } | { readonly failure: { readonly code: string; readonly message: string } };

/**
 * The check of one evidence item ({statement, key_id, signature}) on its own: its schema and its
 * signature under a key of `jwks` valid at its issue time. Pure and independent of every other
 * item, so items can be checked on several threads (src/verifier/statement-pool.ts) and handed
 * to SettlementEvidenceVerifier.pushChecked in order.
 */
export function checkSignedStatement(jwks: ReadonlyMap<string, PublicJwk>, item: unknown, index: number): CheckedStatement {
  const r = signedStatement.safeParse(item);
  if (!r.success) return { failure: { code: 'SCHEMA_INVALID', message: `attestations[${index}]: ${r.error.issues.slice(0, 2).map((x) => `${x.path.join('.') || '(root)'}: ${x.message}`).join('; ')}` } };
  const a = r.data;
  const bytes = canonicalBytes(a.statement);
  const digest = digestBytes(bytes);
  const code = a.statement.key_id !== a.key_id ? 'SIGNATURE_INVALID' : signatureValid(jwks, a.key_id, a.statement.issued_at, bytes, a.signature);
  if (code) return { failure: { code: 'ATTESTATION_SIGNATURE_INVALID', message: `attestations[${index}] (${digest}): ${code}` } };
  return { digest, statement: a.statement };
}

/**
 * Verifies a settlement's evidence in one pass and bounded memory: the head (everything but the
 * attested statements) when constructed, each attested statement as it is pushed (its signature,
 * then its place in the recomputation), the verdict at `finish`. Checks before the statements:
 * schema, content_hash, signature, plan, adjustment_signatures; the statements:
 * attestation_signatures and recomputation; after them: inclusion, checkpoint. The first failure
 * ends the verification (later checks are skipped); a failure is never "valid".
 */
export class SettlementEvidenceVerifier {
  private readonly checks: SettlementCheckResult[] = [];
  private firstDiff: string | undefined;
  private ok = true;
  private head!: z.infer<typeof SettlementEvidenceHead>;
  private jwks!: Map<string, PublicJwk>;
  private acc!: SettlementAccumulator;
  private excluded!: Map<string, string>;
  private pushed = 0;
  private last: { late: boolean; id: string; seq: bigint } | null = null;
  private streamFailure: { name: SettlementCheck; code: string; message: string; path?: string } | null = null;

  constructor(
    head: unknown,
    private readonly trust: SettlementTrust,
    private readonly log: Log,
  ) {
    this.run('schema', () => {
      const r = SettlementEvidenceHead.safeParse(head);
      if (!r.success) throw new Failed('SCHEMA_INVALID', r.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
      this.head = r.data;
      const j = Jwks.safeParse(trust.jwks);
      if (!j.success) throw new Failed('TRUST_INVALID', 'the trust material has no usable JWKS');
      this.jwks = new Map(j.data.keys.map((k) => [k.kid, k]));
    });
    const st = () => this.head.settlement.statement;
    this.run('content_hash', () => {
      const d = digestBytes(canonicalBytes(st()));
      if (d !== this.head.settlement.statement_digest) throw new Failed('CONTENT_HASH_MISMATCH', `the statement hashes to ${d}, not ${this.head.settlement.statement_digest}`);
    });
    this.run('signature', () => {
      if (st().key_id !== this.head.settlement.key_id) throw new Failed('SIGNATURE_INVALID', 'key_id differs from the statement key_id');
      const code = signatureValid(this.jwks, this.head.settlement.key_id, st().issued_at, canonicalBytes(st()), this.head.settlement.signature);
      if (code) throw new Failed(code, `the settlement signature does not verify (${code})`);
    });
    this.run('plan', () => {
      const p = (st() as { plan?: { plan_digest?: unknown } }).plan;
      if (p?.plan_digest !== planDigest(this.head.plan)) throw new Failed('PLAN_DIGEST_MISMATCH', 'the plan does not hash to the statement plan_digest', '$.plan.plan_digest');
    });
    this.run('adjustment_signatures', () => {
      this.head.adjustments.forEach((a, i) => {
        const bytes = canonicalBytes(a.adjustment);
        const code = a.adjustment.key_id !== a.key_id ? 'SIGNATURE_INVALID' : signatureValid(this.jwks, a.key_id, a.adjustment.issued_at, bytes, a.signature);
        if (code) throw new Failed('ADJUSTMENT_SIGNATURE_INVALID', `adjustments[${i}] (${digestBytes(bytes)}): ${code}`, `$.adjustments.items[${i}]`);
      });
    });
    if (this.ok) {
      const s = st();
      this.excluded = new Map(s.excluded.map((x) => [x.statement_digest, x.reason]));
      this.acc = new SettlementAccumulator(s.tenant_id, s.billing_window_id, this.head.plan);
    }
  }

  private run(name: SettlementCheck, fn: () => void): void {
    if (!this.ok) return void this.checks.push({ name, status: 'skipped', message: 'an earlier check failed' });
    try {
      fn();
      this.checks.push({ name, status: 'pass' });
    } catch (e) {
      this.ok = false;
      const f = failure(e);
      if (f.path) this.firstDiff = f.path;
      this.checks.push({ name, status: 'fail', code: f.code, message: f.message });
    }
  }

  /** The JWKS of the trust material (null when the head failed): what checkSignedStatement takes. */
  get keys(): ReadonlyMap<string, PublicJwk> | null {
    return this.ok ? this.jwks : null;
  }

  /** The next attested statement ({statement, key_id, signature}) in evidence order. */
  push(item: unknown): void {
    if (!this.ok || this.streamFailure) return;
    this.pushChecked(checkSignedStatement(this.jwks, item, this.pushed));
  }

  /** The next statement, checked already by checkSignedStatement (with this verifier's keys). */
  pushChecked(c: CheckedStatement): void {
    if (!this.ok || this.streamFailure) return;
    const i = this.pushed++;
    if (c.failure) return void (this.streamFailure = { name: 'attestation_signatures', ...c.failure });
    try {
      const late = c.statement.billing_window_id !== this.head.settlement.statement.billing_window_id;
      const at = { late, id: c.statement.chain.id, seq: BigInt(c.statement.chain.seq) };
      const p = this.last;
      if (p && ((p.late && !late) || (p.late === late && (at.id < p.id || (at.id === p.id && at.seq <= p.seq))))) {
        throw new Failed('EVIDENCE_ORDER', `attestations[${i}] is out of order (the window's statements by chain id then seq, then the late ones)`);
      }
      this.last = at;
      if (late) this.acc.addLate(c.digest, c.statement, this.excluded.get(c.digest));
      else this.acc.add(c.digest, c.statement, this.excluded.get(c.digest));
    } catch (e) {
      this.streamFailure = { name: 'recomputation', ...failure(e) };
    }
  }

  finish(): SettlementReport {
    const streamed: SettlementCheck[] = ['attestation_signatures', 'recomputation'];
    if (this.ok && this.streamFailure) {
      const f = this.streamFailure;
      for (const name of streamed) {
        this.checks.push(name === f.name ? { name, status: 'fail', code: f.code, message: f.message } : { name, status: 'skipped', message: name === 'recomputation' ? 'an earlier check failed' : 'not every statement was checked' });
      }
      if (f.path) this.firstDiff = f.path;
      this.ok = false;
    } else {
      this.run('attestation_signatures', () => undefined);
      this.run('recomputation', () => {
        const s = this.head.settlement.statement;
        const digests = this.head.adjustments.map((a) => digestBytes(canonicalBytes(a.adjustment)));
        digests.forEach((d, i) => {
          if (i > 0 && d <= digests[i - 1]!) throw new Failed('EVIDENCE_ORDER', `adjustments[${i}] is out of digest order (or repeated)`);
          this.acc.adjust(d, this.head.adjustments[i]!.adjustment);
        });
        const heads = new Map(s.chains.map((c) => [c.id, BigInt(c.count)]));
        const again = this.acc.finish({ heads, issuedAt: s.issued_at, keyId: s.key_id });
        const diff = firstDifference(again, s);
        if (diff) throw new Failed(diff.startsWith('$.attestations.merkle_root') ? 'MERKLE_ROOT_MISMATCH' : 'TOTALS_MISMATCH', `the signed statement differs from the recomputation at ${diff}`, diff);
      });
    }
    this.run('inclusion', () => {
      if (!this.head.receipt) throw new Failed('RECEIPT_MISSING', 'the evidence has no log receipt for the settlement');
      this.log.checkLeafInclusion(this.head.receipt, settlementLeaf(this.head.settlement.statement_digest));
    });
    this.run('checkpoint', () => {
      if (!this.trust.logVerifierKey) throw new Failed('LOG_KEY_MISSING', 'the trust material has no log verifier key');
      this.log.checkCheckpoint(this.head.receipt!, this.trust.logVerifierKey);
    });
    return { valid: this.ok && this.checks.every((c) => c.status === 'pass'), checks: this.checks, ...(this.firstDiff ? { first_difference: this.firstDiff } : {}) };
  }
}

function failure(e: unknown): { code: string; message: string; path?: string } {
  const code = e instanceof Failed || e instanceof VerificationError || e instanceof SettlementError ? e.code : e instanceof RangeError ? 'EVIDENCE_ORDER' : 'INTERNAL';
  return { code, message: e instanceof Error ? e.message : String(e), ...(e instanceof Failed && e.path ? { path: e.path } : {}) };
}

/** Verify a settlement's evidence (one document in memory) against trust material (the JWKS and
 *  the log verifier key). The same as SettlementEvidenceVerifier over its parts. */
export function verifySettlement(input: unknown, trust: SettlementTrust, log: Log): SettlementReport {
  const { attestations, ...head } = (input && typeof input === 'object' && !Array.isArray(input) ? input : { attestations: undefined }) as { attestations?: unknown };
  if (!Array.isArray(attestations)) {
    return new SettlementEvidenceVerifier({ ...head, attestations: 'missing' }, trust, log).finish();
  }
  const v = new SettlementEvidenceVerifier(head, trust, log);
  for (const a of attestations) v.push(a);
  return v.finish();
}
