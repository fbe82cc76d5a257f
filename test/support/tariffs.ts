// Compact tariff builder for circuit tests: a linear price or (up_to, price) tiers, with the
// numeric fields as bigints; every call gets a fresh tariff_version.
import { normalizeTariff } from '../../src/core/attest.ts';
import type { RoundingMode } from '../../src/core/charge.ts';
import type { TariffSnapshot } from '../../src/core/schemas.ts';
import { U64_MAX } from '../../src/core/u64.ts';

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
