// Building the signed statement and the reconciliation fingerprint from canonical objects.
import { digestOf } from './canonical.ts';
import type { MeterEvent, StatementV1, StatementV2, TariffSnapshot } from './schemas.ts';
import { BINDING_VERSION_V2, STATEMENT_TYPE, STATEMENT_TYPE_V2 } from './schemas.ts';

export const RECONCILIATION_TYPE = 'meterproof/reconciliation/v1';
export const CHAIN_TYPE = 'meterproof/chain/v1';

/** The reconciliation record: what a billing system compares line by line (docs/protocol.md §2.4). */
export function reconciliationRecord(event: MeterEvent, tariff: TariffSnapshot, chargeMicros: string) {
  return {
    type: RECONCILIATION_TYPE,
    tenant_id: event.tenant_id,
    event_id: event.event_id,
    billing_window_id: event.billing_window_id,
    usage_units: event.usage_units,
    tariff_id: tariff.tariff_id,
    tariff_version: tariff.tariff_version,
    charge_micros: chargeMicros,
    currency: tariff.currency,
  };
}

export function billingFingerprint(event: MeterEvent, tariff: TariffSnapshot, chargeMicros: string): string {
  return digestOf(reconciliationRecord(event, tariff, chargeMicros));
}

/** Names the chain of one tenant, meter and window without revealing the meter name. */
export function chainId(tenantId: string, endpoint: string, windowId: string): string {
  return digestOf({ type: CHAIN_TYPE, tenant_id: tenantId, endpoint, billing_window_id: windowId });
}

export interface ChainLink {
  readonly seq: bigint;
  readonly prev: string | null;
  readonly cumulativeBefore: bigint;
}

interface StatementArgs {
  event: MeterEvent;
  tariff: TariffSnapshot;
  chargeMicros: bigint;
  chain: ChainLink;
  issuedAt: string;
  keyId: string;
  chainId?: string;
}

/** What both statement versions say the same way, given their digests and fingerprint. */
function common(args: StatementArgs, d: { eventDigest: string; tariffDigest: string; fingerprint: string }) {
  const { event, tariff, chain } = args;
  return {
    tenant_id: event.tenant_id,
    billing_window_id: event.billing_window_id,
    event_digest: d.eventDigest,
    tariff_digest: d.tariffDigest,
    tariff_id: tariff.tariff_id,
    tariff_version: tariff.tariff_version,
    billing_verify_fingerprint: d.fingerprint,
    charge_micros: args.chargeMicros.toString(),
    currency: tariff.currency,
    chain: {
      id: args.chainId ?? chainId(event.tenant_id, event.endpoint, event.billing_window_id),
      seq: chain.seq.toString(),
      prev: chain.prev,
      cumulative_units_before: chain.cumulativeBefore.toString(),
    },
    issued_at: args.issuedAt,
    key_id: args.keyId,
  };
}

export function buildStatement(
  args: StatementArgs & {
    /** Precomputed digests (callers that already hold them skip a canonicalization). */
    eventDigest?: string;
    tariffDigest?: string;
  },
): StatementV1 {
  const { event, tariff } = args;
  const fingerprint = billingFingerprint(event, tariff, args.chargeMicros.toString());
  return { type: STATEMENT_TYPE, ...common(args, { eventDigest: args.eventDigest ?? digestOf(event), tariffDigest: args.tariffDigest ?? digestOf(tariff), fingerprint }) };
}

/** The statement of binding bn128-poseidon8-v2. The digests and the fingerprint are salted;
 *  usage, outcome and the running total after this event are public inputs of the proof. */
export function buildStatementV2(args: StatementArgs & { cumulativeAfter: bigint; eventDigest: string; tariffDigest: string; fingerprint: string }): StatementV2 {
  const c = common(args, args);
  return {
    type: STATEMENT_TYPE_V2,
    binding: BINDING_VERSION_V2,
    ...c,
    usage_units: args.event.usage_units,
    outcome: args.event.outcome,
    chain: { ...c.chain, cumulative_units_after: args.cumulativeAfter.toString() },
  };
}
