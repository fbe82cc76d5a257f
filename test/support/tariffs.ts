// Compact builders for circuit tests: tariffs (a linear price or (up_to, price) tiers, with the
// numeric fields as bigints; every call gets a fresh tariff_version) and meter events (the pilot
// event with other units and outcome; every call gets a fresh event_id).
import { normalizeMeterEvent, normalizeTariff } from '../../src/core/attest.ts';
import type { Outcome, RoundingMode } from '../../src/core/charge.ts';
import type { MeterEvent, TariffSnapshot } from '../../src/core/schemas.ts';
import { U64_MAX } from '../../src/core/u64.ts';
import { pilotEvent } from './fixtures.ts';

export interface TariffSpec {
  price?: bigint;
  tiers?: [bigint | null, bigint][];
  quantum?: bigint;
  min?: bigint;
  max?: bigint;
  mode?: RoundingMode;
}

let seq = 0;
export function tariffOf(s: TariffSpec, tariffId = 'tariff_test'): TariffSnapshot {
  const common = {
    tariff_id: tariffId,
    tariff_version: `v${seq++}`,
    currency: 'USD',
    unit_quantum: String(s.quantum ?? 1n),
    min_charge_micros: String(s.min ?? 0n),
    max_charge_micros: String(s.max ?? U64_MAX),
    rounding_mode: s.mode ?? 'floor',
  };
  return normalizeTariff(
    s.tiers
      ? { ...common, tariff_class: 'usage_graduated', tiers: s.tiers.map(([upTo, price]) => ({ up_to: upTo === null ? null : String(upTo), unit_price_micros: String(price) })) }
      : { ...common, tariff_class: 'usage_linear', unit_price_micros: String(s.price ?? 1n) },
  );
}

let eventSeq = 0;
export function eventOf(units: bigint, outcome: Outcome = 'success', idPrefix = 'evt'): MeterEvent {
  return normalizeMeterEvent({ ...pilotEvent, event_id: `${idPrefix}_${eventSeq++}`, usage_units: String(units), outcome });
}
