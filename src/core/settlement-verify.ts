// Verifying a settlement from its evidence (docs/protocol.md §5.6): the signed settlement
// statement, its log receipt, the plan and every attested statement it covers. Pure: trust
// material in, a report out; the log checks are injected (src/verifier/log.ts), as for bundles.
// Every check is named; the first difference between the recomputed and the signed statement is
// named by its path. Fail closed: any exception is a failure.
import { z } from 'zod';
import { canonicalBytes, digestBytes } from './canonical.ts';
import { Jwks, type PublicJwk, verifyBytes } from './keys.ts';
import { Plan, planDigest } from './plan.ts';
import { Digest, Receipt, Statement } from './schemas.ts';
import { SETTLEMENT_TYPE, SettlementAccumulator, SettlementError, settlementLeaf } from './settlement.ts';
import { type LogVerifier, VerificationError, keyValidAt } from './verify.ts';

export const SETTLEMENT_EVIDENCE_TYPE = 'meterproof/settlement-evidence/v1';

const signedStatement = z.strictObject({ statement: Statement, key_id: z.string().min(1), signature: z.string().min(1) });

export const SettlementEvidence = z.strictObject({
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
  /** The attested statements the settlement covers, its excluded ones too, ordered by chain id then seq. */
  attestations: z.array(signedStatement),
});
export type SettlementEvidence = z.infer<typeof SettlementEvidence>;

export const SETTLEMENT_CHECKS = ['schema', 'content_hash', 'signature', 'plan', 'attestation_signatures', 'recomputation', 'inclusion', 'checkpoint'] as const;
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

/** Verify a settlement's evidence against trust material (the JWKS and the log verifier key). */
export function verifySettlement(input: unknown, trust: SettlementTrust, log: Pick<LogVerifier, 'checkLeafInclusion' | 'checkCheckpoint'>): SettlementReport {
  const checks: SettlementCheckResult[] = [];
  let firstDiff: string | undefined;
  let ok = true;
  const run = (name: SettlementCheck, fn: () => void | 'skipped') => {
    if (!ok) return void checks.push({ name, status: 'skipped', message: 'an earlier check failed' });
    try {
      const r = fn();
      checks.push(r === 'skipped' ? { name, status: 'skipped' } : { name, status: 'pass' });
    } catch (e) {
      ok = false;
      const code = e instanceof Failed || e instanceof VerificationError || e instanceof SettlementError ? e.code : 'INTERNAL';
      if (e instanceof Failed && e.path) firstDiff = e.path;
      checks.push({ name, status: 'fail', code, message: e instanceof Error ? e.message : String(e) });
    }
  };

  let ev!: SettlementEvidence;
  let jwks!: Map<string, PublicJwk>;
  run('schema', () => {
    const r = SettlementEvidence.safeParse(input);
    if (!r.success) throw new Failed('SCHEMA_INVALID', r.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
    ev = r.data;
    const j = Jwks.safeParse(trust.jwks);
    if (!j.success) throw new Failed('TRUST_INVALID', 'the trust material has no usable JWKS');
    jwks = new Map(j.data.keys.map((k) => [k.kid, k]));
  });
  const st = () => ev.settlement.statement;
  run('content_hash', () => {
    const d = digestBytes(canonicalBytes(st()));
    if (d !== ev.settlement.statement_digest) throw new Failed('CONTENT_HASH_MISMATCH', `the statement hashes to ${d}, not ${ev.settlement.statement_digest}`);
  });
  run('signature', () => {
    if (st().key_id !== ev.settlement.key_id) throw new Failed('SIGNATURE_INVALID', 'key_id differs from the statement key_id');
    const code = signatureValid(jwks, ev.settlement.key_id, st().issued_at, canonicalBytes(st()), ev.settlement.signature);
    if (code) throw new Failed(code, `the settlement signature does not verify (${code})`);
  });
  run('plan', () => {
    const p = (st() as { plan?: { plan_digest?: unknown } }).plan;
    if (p?.plan_digest !== planDigest(ev.plan)) throw new Failed('PLAN_DIGEST_MISMATCH', 'the plan does not hash to the statement plan_digest', '$.plan.plan_digest');
  });
  run('attestation_signatures', () => {
    ev.attestations.forEach((a, i) => {
      const bytes = canonicalBytes(a.statement);
      const code = a.statement.key_id !== a.key_id ? 'SIGNATURE_INVALID' : signatureValid(jwks, a.key_id, a.statement.issued_at, bytes, a.signature);
      if (code) throw new Failed('ATTESTATION_SIGNATURE_INVALID', `attestations[${i}] (${digestBytes(bytes)}): ${code}`);
    });
  });
  run('recomputation', () => {
    const s = st();
    const excluded = new Map(s.excluded.map((x) => [x.statement_digest, x.reason]));
    const acc = new SettlementAccumulator(s.tenant_id, s.billing_window_id, ev.plan);
    const sorted = ev.attestations.map((a) => ({ a, d: digestBytes(canonicalBytes(a.statement)) }));
    for (let i = 1; i < sorted.length; i++) {
      const p = sorted[i - 1]!.a.statement.chain;
      const c = sorted[i]!.a.statement.chain;
      if (c.id < p.id || (c.id === p.id && BigInt(c.seq) <= BigInt(p.seq))) throw new Failed('EVIDENCE_ORDER', `attestations[${i}] is out of chain order`);
    }
    for (const { a, d } of sorted) acc.add(d, a.statement, excluded.get(d));
    const heads = new Map(s.chains.map((c) => [c.id, BigInt(c.count)]));
    const again = acc.finish({ heads, issuedAt: s.issued_at, keyId: s.key_id });
    const diff = firstDifference(again, s);
    if (diff) throw new Failed(diff.startsWith('$.attestations.merkle_root') ? 'MERKLE_ROOT_MISMATCH' : 'TOTALS_MISMATCH', `the signed statement differs from the recomputation at ${diff}`, diff);
  });
  run('inclusion', () => {
    if (!ev.receipt) throw new Failed('RECEIPT_MISSING', 'the evidence has no log receipt for the settlement');
    log.checkLeafInclusion(ev.receipt, settlementLeaf(ev.settlement.statement_digest));
  });
  run('checkpoint', () => {
    if (!trust.logVerifierKey) throw new Failed('LOG_KEY_MISSING', 'the trust material has no log verifier key');
    log.checkCheckpoint(ev.receipt!, trust.logVerifierKey);
  });
  return { valid: ok && checks.every((c) => c.status === 'pass'), checks, ...(firstDiff ? { first_difference: firstDiff } : {}) };
}
