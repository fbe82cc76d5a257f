// Making a bundle from an event, a tariff and a key. Pure: the caller supplies the chain link
// (running total and previous statement) and the clock. Used by the service, the CLI's
// `attest --offline`, the tests and the docs' tour.
import { computeCharge, pricingFromTariff, unitsAdvanced } from './charge.ts';
import type { SigningKey } from './keys.ts';
import { toB64Url } from './bytes.ts';
import { CloudEventInput, MeterEvent, MeterEventInput, TariffSnapshot, TariffSnapshotInput } from './schemas.ts';
import { type ChainLink, buildStatement } from './statement.ts';
import { canonicalBytes, digestBytes } from './canonical.ts';
import type { FullBundle, Statement } from './schemas.ts';

/** Accepts a meter event in its plain or CloudEvents 1.0 form; returns the canonical event.
 *  Throws the zod error of the form it most likely meant. */
export function normalizeMeterEvent(input: unknown): MeterEvent {
  if (input && typeof input === 'object' && 'specversion' in input) {
    const ce = CloudEventInput.parse(input);
    return MeterEvent.parse({
      event_id: ce.id,
      event_timestamp: ce.time,
      tenant_id: ce.data.tenant_id,
      api_key_id: ce.data.api_key_id,
      endpoint: ce.data.endpoint ?? ce.subject ?? ce.source,
      usage_units: ce.data.usage_units,
      contract_version: ce.data.contract_version,
      billing_window_id: ce.data.billing_window_id,
      outcome: ce.data.outcome ?? 'success',
      ...(ce.data.dimensions ? { dimensions: ce.data.dimensions } : {}),
    });
  }
  return MeterEvent.parse(MeterEventInput.parse(input));
}

/** Canonical tariff snapshot with every default explicit; arithmetic limits checked too. */
export function normalizeTariff(input: unknown): TariffSnapshot {
  const t = TariffSnapshot.parse(TariffSnapshotInput.parse(input));
  pricingFromTariff(t); // throws ChargeError (named) on out-of-range values
  return t;
}

export interface AttestResult {
  readonly bundle: FullBundle;
  readonly statement: Statement;
  readonly statementDigest: string;
  /** The RFC 8785 canonical bytes of the statement (what is signed and, as a leaf, logged). */
  readonly statementBytes: Uint8Array;
  /** The chain state after this event, for the next statement of the same chain. */
  readonly next: ChainLink;
}

export function attestEvent(args: {
  event: MeterEvent;
  tariff: TariffSnapshot;
  key: SigningKey;
  chain: ChainLink;
  issuedAt: string;
  /** Precomputed digests of the event and tariff and the chain id, when the caller has them. */
  eventDigest?: string;
  tariffDigest?: string;
  chainId?: string;
}): AttestResult {
  const { event, tariff, key, chain } = args;
  const units = BigInt(event.usage_units);
  const { charge } = computeCharge({ units, outcome: event.outcome, cumulativeBefore: chain.cumulativeBefore }, pricingFromTariff(tariff));
  const statement = buildStatement({
    event,
    tariff,
    chargeMicros: charge,
    chain,
    issuedAt: args.issuedAt,
    keyId: key.keyId,
    ...(args.eventDigest ? { eventDigest: args.eventDigest } : {}),
    ...(args.tariffDigest ? { tariffDigest: args.tariffDigest } : {}),
    ...(args.chainId ? { chainId: args.chainId } : {}),
  });
  // One canonicalization serves both the digest and the signature.
  const bytes = canonicalBytes(statement);
  const statementDigest = digestBytes(bytes);
  const bundle: FullBundle = {
    meter_event: event,
    tariff_snapshot: tariff,
    billing: {
      expected_charge_micros: statement.charge_micros,
      billing_verify_fingerprint: statement.billing_verify_fingerprint,
      cumulative_units_before: statement.chain.cumulative_units_before,
    },
    attestation: { statement, key_id: key.keyId, signature: toB64Url(key.sign(bytes)), proof_status: 'pending' },
  };
  return {
    bundle,
    statement,
    statementDigest,
    statementBytes: bytes,
    next: { seq: chain.seq + 1n, prev: statementDigest, cumulativeBefore: chain.cumulativeBefore + unitsAdvanced(event.outcome, units) },
  };
}

export const GENESIS: ChainLink = { seq: 0n, prev: null, cumulativeBefore: 0n };
