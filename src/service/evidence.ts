// Evidence packs, produced (docs/protocol.md §6; verified by src/verifier/evidence.ts): the header
// (scope, trust snapshot, a recent checkpoint), one line per bundle read page by page from the
// store in chain order, the settlement line for a settlement, and the manifest signed last. An
// async generator of lines: GET /v1/evidence streams it, nothing holds the whole pack.
import { digestOf } from '../core/canonical.ts';
import { signObject } from '../core/keys.ts';
import type { FullBundle } from '../core/schemas.ts';
import type { TrustMaterial } from '../core/trust.ts';
import {
  EVIDENCE_MANIFEST_TYPE,
  EVIDENCE_PACK_TYPE,
  type EvidenceHeader,
  type EvidenceManifest,
  type EvidenceScope,
  PIN_OUT_OF_BAND,
  STATEMENTS_DIGEST_EMPTY,
  nextStatementsDigest,
} from '../verifier/evidence.ts';
import type { LogApi } from '../log/api.ts';
import type { AttestService, AttestationRow } from './attest.ts';
import { type Principal, requireScope, requireTenant } from './auth.ts';
import type { ConsumerService } from './consumers.ts';
import { ServiceError } from './errors.ts';
import type { KeyRing } from './keyring.ts';
import type { PlanService } from './plans.ts';
import type { SettlementService } from './settlements.ts';

/** Rows read from the store per page. */
export const EVIDENCE_PAGE = 500;

export type EvidenceRequest =
  | { readonly attestation_id: string }
  | { readonly tenant_id: string; readonly window: string }
  | { readonly settlement_id: string };

export interface EvidenceDeps {
  readonly attest: AttestService;
  readonly settlements: SettlementService;
  readonly plans: PlanService;
  readonly consumers: ConsumerService;
  readonly keys: KeyRing;
  readonly log?: LogApi;
  readonly trust: () => Promise<TrustMaterial>;
  readonly clock?: () => Date;
}

interface Plan {
  readonly scope: EvidenceScope;
  /** The pages of rows in pack order. */
  pages(): AsyncGenerator<AttestationRow[]>;
  /** The settlement line's value, for a settlement. */
  settlement?: () => Promise<{ settlement: unknown; receipt: FullBundle['receipt'] | null; plan: unknown; adjustments: unknown[]; logIndex: number | null }>;
}

/**
 * Resolves the request and checks access (read scope and the tenant, as GET /v1/attestations)
 * before any line is produced: an error here is an HTTP problem, not a broken stream.
 */
export async function planEvidence(deps: EvidenceDeps, principal: Principal, req: EvidenceRequest): Promise<Plan> {
  requireScope(principal, 'read');
  if ('attestation_id' in req) {
    const row = await deps.attest.get(principal, req.attestation_id);
    return {
      scope: { kind: 'attestation', tenant_id: row.tenantId, attestation_id: row.id },
      async *pages() {
        yield [row];
      },
    };
  }
  if ('settlement_id' in req) {
    // A settlement pack holds every statement of the window (the verifier recomputes the totals
    // from all of them), so it cannot be cut down to one consumer's: a consumer-scoped key gets
    // the answer for a settlement it may not see.
    if (principal.consumer !== undefined) throw new ServiceError(404, 'NOT_FOUND', 'settlement not found');
    const record = await deps.settlements.get(principal, req.settlement_id);
    const st = record.statement;
    const chains = [...st.chains].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return {
      scope: { kind: 'settlement', tenant_id: st.tenant_id, billing_window_id: st.billing_window_id, settlement_id: record.id },
      async *pages() {
        for (const c of chains) yield* chainPages(deps, { tenantId: st.tenant_id, windowId: st.billing_window_id, chainId: c.id, maxSeq: BigInt(c.last_seq) });
        // then the late statements of other windows the settlement claims (few by nature), in
        // its `late` order (chain order), so that the pack recomputes the settlement
        const late = (st.late ?? []).map((l) => l.statement_digest.slice('sha256:'.length));
        for (let i = 0; i < late.length; i += EVIDENCE_PAGE) yield await deps.attest.byIds(st.tenant_id, late.slice(i, i + EVIDENCE_PAGE));
      },
      async settlement() {
        // the record as it is now (its receipt once the log has integrated it) and its plan
        const r = await deps.settlements.get(principal, record.id);
        const plan = await deps.plans.get(st.plan.plan_id, st.plan.plan_version);
        if (!plan) throw new Error(`plan ${st.plan.plan_id}@${st.plan.plan_version} of settlement ${r.id} is missing`);
        const receipt = (await deps.log?.receipt({ logIndex: r.logIndex })) ?? null;
        const adjustments = await deps.settlements.signedAdjustments(r.statement);
        return { settlement: { statement: r.statement, statement_digest: r.statementDigest, key_id: r.keyId, signature: r.signature }, receipt, plan: plan.plan, adjustments, logIndex: r.logIndex };
      },
    };
  }
  requireTenant(principal, req.tenant_id);
  const consumerId = principal.consumer;
  return {
    scope: { kind: 'window', tenant_id: req.tenant_id, billing_window_id: req.window, ...(consumerId !== undefined ? { consumer_id: consumerId } : {}) },
    pages: () => chainPages(deps, { tenantId: req.tenant_id, windowId: req.window, ...(consumerId !== undefined ? { consumerId } : {}) }),
  };
}

async function* chainPages(deps: EvidenceDeps, q: { tenantId: string; windowId: string; consumerId?: string; chainId?: string; maxSeq?: bigint }): AsyncGenerator<AttestationRow[]> {
  let after: { chainId: string; seq: bigint } | undefined;
  for (;;) {
    const rows = await deps.attest.chainPage({ ...q, ...(after ? { after } : {}), limit: EVIDENCE_PAGE });
    if (rows.length) yield rows;
    if (rows.length < EVIDENCE_PAGE) return;
    const last = rows.at(-1)!;
    after = { chainId: last.chainId, seq: last.seq };
  }
}

/** The pack's lines (each without its newline), produced as they are read. */
export async function* evidenceLines(deps: EvidenceDeps, plan: Plan): AsyncGenerator<string> {
  const log = deps.log;
  if (!log) throw new ServiceError(503, 'LOG_NOT_READY', 'this service runs without a transparency log: no evidence pack can be made');
  const now = deps.clock?.() ?? new Date();
  const checkpoint = await log.latestCheckpoint();
  if (!checkpoint) throw new ServiceError(503, 'LOG_NOT_READY', 'the log has not signed its first checkpoint yet');
  const trust = await deps.trust();
  const { trusted_checkpoint: _ignored, ...logTrust } = trust.log ?? { verifier_key: log.verifierKey() };
  const header: EvidenceHeader = {
    type: EVIDENCE_PACK_TYPE,
    scope: plan.scope,
    created_at: now.toISOString(),
    pin_out_of_band: [...PIN_OUT_OF_BAND],
    trust: { ...trust, log: logTrust },
    checkpoint: checkpoint.note,
  };
  const headerText = JSON.stringify(header);
  yield headerText;

  // consistency proofs between the pack checkpoint and each receipt's (few sizes: the log integrates in batches)
  const proofs = new Map<number, string[]>();
  const consistency = async (size: number): Promise<string[]> => {
    let p = proofs.get(size);
    if (!p) {
      const [from, to] = size <= checkpoint.size ? [size, checkpoint.size] : [checkpoint.size, size];
      p = from === to || from === 0 ? [] : (await log.consistencyProof(from, to)).hashes;
      proofs.set(size, p);
    }
    return p;
  };

  let count = 0;
  let statements = STATEMENTS_DIGEST_EMPTY;
  const chains = new Map<string, number>();
  for await (const rows of plan.pages()) {
    const countersigned = await deps.consumers.countersignaturesOf(rows);
    for (const row of rows) {
      const receipt = await log.receipt(row);
      const cs = countersigned.get(row.id);
      const bundle = { ...(row.bundle as FullBundle), ...(receipt ? { receipt } : {}), ...(cs ? { countersignatures: cs } : {}) };
      const proof = receipt ? await consistency(Number(receipt.tree_size)) : [];
      yield JSON.stringify({ bundle, consistency_proof: proof });
      count++;
      statements = nextStatementsDigest(statements, row.statementDigest);
      // the manifest's chains are the scope window's (a settlement pack's late statements are not)
      if (plan.scope.kind === 'attestation' || row.billingWindowId === plan.scope.billing_window_id) chains.set(row.chainId, (chains.get(row.chainId) ?? 0) + 1);
    }
  }

  let settlementDigest: string | null = null;
  if (plan.settlement) {
    const s = await plan.settlement();
    const proof = s.receipt ? await consistency(Number(s.receipt.tree_size)) : [];
    settlementDigest = (s.settlement as { statement_digest: string }).statement_digest;
    yield JSON.stringify({ settlement: { settlement: s.settlement, receipt: s.receipt, plan: s.plan, ...(s.adjustments.length ? { adjustments: s.adjustments } : {}) }, consistency_proof: proof });
  }

  const manifest: EvidenceManifest = {
    type: EVIDENCE_MANIFEST_TYPE,
    header_digest: digestOf(JSON.parse(headerText)),
    count: String(count),
    statements_digest: statements,
    chains: plan.scope.kind === 'attestation' ? [] : [...chains.entries()].map(([id, n]) => ({ id, count: String(n) })),
    settlement_digest: settlementDigest,
    created_at: header.created_at,
  };
  const key = await deps.keys.current(now);
  yield JSON.stringify({ manifest, key_id: key.keyId, signature: signObject(key, manifest) });
}
