// Hand-built bn128-poseidon8-v2 statements for circuit tests (independent of the service that
// issues them): the event and tariff under fresh random salts, the charge and running totals from
// the charge engine, and the witness input circuitInputsV2 makes for them.
import { cumulativeAfter, circuitInputsV2, saltedEventDigest, saltedFingerprint, saltedTariffDigest, tariffCommitmentV2 } from '../../src/core/binding-v2.ts';
import { computeCharge, pricingFromTariff, type ChargeBreakdown, type Outcome } from '../../src/core/charge.ts';
import { randomBlinding } from '../../src/core/commitment.ts';
import { BINDING_VERSION_V2, STATEMENT_TYPE_V2, type StatementV2, type MeterEvent, type TariffSnapshot } from '../../src/core/schemas.ts';
import { eventOf } from './tariffs.ts';

export interface V2Case {
  readonly name: string;
  readonly event: MeterEvent;
  readonly tariff: TariffSnapshot;
  readonly eventSalt: bigint;
  /** 254 random bits below p (randomBlinding), secret to the service. */
  readonly tariffSalt: bigint;
  readonly statement: StatementV2;
  readonly ref: ChargeBreakdown;
  readonly after: bigint;
  readonly tariffCommitment: bigint;
  readonly input: Record<string, string | string[]>;
}

/** A StatementV2 for the event and tariff at running total `before`. Not parsed: the circuit tests
 *  also cover running totals past 2^64, which the schema (u64 strings) refuses. */
export function statementV2Of(args: { event: MeterEvent; tariff: TariffSnapshot; before: bigint; eventSalt: bigint; tariffSalt: bigint; charge: bigint; seq?: bigint }): StatementV2 {
  const { event, tariff, before } = args;
  const units = BigInt(event.usage_units);
  return {
    type: STATEMENT_TYPE_V2,
    binding: BINDING_VERSION_V2,
    tenant_id: event.tenant_id,
    billing_window_id: event.billing_window_id,
    event_digest: saltedEventDigest(event, args.eventSalt),
    tariff_digest: saltedTariffDigest(tariff, args.tariffSalt),
    tariff_id: tariff.tariff_id,
    tariff_version: tariff.tariff_version,
    billing_verify_fingerprint: saltedFingerprint(event, tariff, args.charge.toString(), args.eventSalt),
    usage_units: units.toString(),
    outcome: event.outcome,
    charge_micros: args.charge.toString(),
    currency: tariff.currency,
    chain: {
      id: `sha256:${'c'.repeat(64)}`,
      seq: (args.seq ?? 7n).toString(),
      prev: `sha256:${'a'.repeat(64)}`,
      cumulative_units_before: before.toString(),
      cumulative_units_after: cumulativeAfter(before, event.outcome, units).toString(),
    },
    issued_at: '2026-05-29T12:00:01.000Z',
    key_id: 'test-key-1',
  };
}

/** The honest v2 case: statement, reference charge, the tariff's commitment and the witness input. */
export async function v2Case(name: string, tariff: TariffSnapshot, units: bigint, before: bigint, outcome: Outcome = 'success'): Promise<V2Case> {
  const event = eventOf(units, outcome, 'evt_v2');
  const ref = computeCharge({ units, outcome, cumulativeBefore: before }, pricingFromTariff(tariff));
  const [eventSalt, tariffSalt] = [randomBlinding(), randomBlinding()];
  const statement = statementV2Of({ event, tariff, before, eventSalt, tariffSalt, charge: ref.charge });
  const input = await circuitInputsV2({ statement, tariff, tariffSalt });
  return {
    name,
    event,
    tariff,
    eventSalt,
    tariffSalt,
    statement,
    ref,
    after: cumulativeAfter(before, outcome, units),
    tariffCommitment: await tariffCommitmentV2(tariff, tariffSalt),
    input,
  };
}
