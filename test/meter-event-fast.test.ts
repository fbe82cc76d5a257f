// normalizeMeterEvent's fast path (plainMeterEvent, no zod) against the two schemas it stands in
// for, on random events near every edge the schemas check: lengths, control characters, U+FEFF,
// NFC, timestamps, u64 forms, outcomes, unknown, missing and inherited keys. Whenever the fast path
// answers, the schemas must accept the same input and give the same event, field order included.
import { describe, expect, it } from 'vitest';
import { uniform } from './support/random-cases.ts';
import { normalizeMeterEvent, plainMeterEvent } from '../src/core/attest.ts';
import { parseJsonStrict } from '../src/core/json.ts';
import { MeterEvent, MeterEventInput } from '../src/core/schemas.ts';
import { pilotEvent } from './support/fixtures.ts';

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

const IDS = ['a', 'tenant_acme', 'x'.repeat(256), 'x'.repeat(257), '', 'é', 'e\u0301', 'a\u0000b', 'a\u007fb', '\ufeffa', 'a\u0085', '😀', 'a\ud800', ' ', 'ü-ß', '\u2028'];
const TIMES = ['2026-05-29T12:00:00Z', '2026-05-29T12:00:00.123456789Z', '2026-02-29T00:00:00Z', '2028-02-29T00:00:00Z', '2026-05-29T24:00:00Z', '2026-05-29 12:00:00Z', '2026-05-29T12:00:00+00:00', '2026-13-01T00:00:00Z', 12];
const UNITS: unknown[] = [0, 1, 42, -1, 1.5, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, -0, NaN, Infinity, '0', '01', '18446744073709551615', '18446744073709551616', '1e3', ' 1', null, true];
const OUTCOME: unknown[] = [undefined, 'success', 'error', 'timeout', 'partial', 'SUCCESS', null, 1];

function randomEvent(r: () => number): Record<string, unknown> {
  const e: Record<string, unknown> = { ...pilotEvent };
  for (const k of ['event_id', 'tenant_id', 'api_key_id', 'endpoint', 'contract_version', 'billing_window_id']) if (r() < 0.15) e[k] = r() < 0.1 ? 7 : pick(r, IDS);
  if (r() < 0.2) e['event_timestamp'] = pick(r, TIMES);
  if (r() < 0.3) e['usage_units'] = pick(r, UNITS);
  if (r() < 0.3) {
    const o = pick(r, OUTCOME);
    if (o === undefined) delete e['outcome'];
    else e['outcome'] = o;
  }
  if (r() < 0.05) delete e[pick(r, Object.keys(e))];
  if (r() < 0.05) e['extra'] = 'x';
  if (r() < 0.05) e['dimensions'] = { region: 'eu' };
  // the input's key order must not matter
  return r() < 0.5 ? e : Object.fromEntries(Object.entries(e).sort(() => r() - 0.5));
}

const viaSchemas = (x: unknown) => {
  try {
    return { ok: JSON.stringify(MeterEvent.parse(MeterEventInput.parse(x))) };
  } catch (e) {
    return { error: String(e) };
  }
};

describe('plainMeterEvent (the fast path of normalizeMeterEvent)', () => {
  it('answers only what the schemas accept, with the same event', () => {
    const r = uniform(42);
    let fast = 0;
    let valid = 0;
    for (let i = 0; i < 5000; i++) {
      const input = randomEvent(r);
      const expected = viaSchemas(input);
      const got = plainMeterEvent(input);
      if (expected.ok !== undefined) valid++;
      if (got) {
        fast++;
        expect(JSON.stringify(got), JSON.stringify(input)).toBe(expected.ok);
      }
      // the public function is the schemas' answer, error or event, either way
      let pub: { ok?: string; error?: string };
      try {
        pub = { ok: JSON.stringify(normalizeMeterEvent(input)) };
      } catch (e) {
        pub = { error: String(e) };
      }
      expect(pub).toEqual(expected);
    }
    // the fast path did the work for most valid events (those without dimensions)
    expect(valid).toBeGreaterThan(1000);
    expect(fast).toBeGreaterThan(valid * 0.8);
  });

  it('takes events as the request reader parses them, and leaves odd objects to the schemas', () => {
    const parsed = parseJsonStrict(JSON.stringify({ meter_event: pilotEvent })) as { meter_event: unknown };
    expect(plainMeterEvent(parsed.meter_event)).not.toBeNull();
    expect(plainMeterEvent(Object.assign(Object.create({ inherited: 1 }), pilotEvent))).toBeNull();
    expect(plainMeterEvent(Object.assign(Object.create(null), pilotEvent))).toBeNull();
    expect(plainMeterEvent(JSON.parse(`{"__proto__": 1, ${JSON.stringify(pilotEvent).slice(1)}`))).toBeNull();
    expect(plainMeterEvent([pilotEvent])).toBeNull();
    expect(plainMeterEvent({ ...pilotEvent, outcome: undefined })).toBeNull();
  });

  it('returns what it checked, even from a getter that answers differently each time', () => {
    let calls = 0;
    const tricky = { ...pilotEvent };
    Object.defineProperty(tricky, 'event_id', { enumerable: true, get: () => (calls++ === 0 ? 'ok-id' : 'e\u0301\u0000evil') });
    const got = plainMeterEvent(tricky);
    expect(got?.event_id ?? 'ok-id').toBe('ok-id');
    calls = 0;
    const normalized = normalizeMeterEvent(tricky);
    expect(() => MeterEvent.parse(normalized)).not.toThrow();
  });
});
