// The attest path's field-by-field canonical texts (src/core/attest-texts.ts) against the generic
// RFC 8785 walk the verifier uses, on random values that exercise JSON escaping (quotes,
// backslashes, control characters, non-ASCII, astral characters) and both statement shapes.
import { describe, expect, it } from 'vitest';
import { uniform } from './support/random-cases.ts';
import { bundleV2Text, logLeafV2Text, plainEventText, saltedEventDigestOfText, saltedFingerprintOfText, statementV2Text } from '../src/core/attest-texts.ts';
import { logLeafV2, saltedEventDigest, saltedFingerprint } from '../src/core/binding-v2.ts';
import { canonicalString } from '../src/core/canonical.ts';
import { GENESIS, normalizeMeterEvent, normalizeTariff } from '../src/core/attest.ts';
import { randomSalt } from '../src/core/binding-v2.ts';
import { verifyBundle } from '../src/core/verify.ts';
import { keyA, pilotEvent, pilotTariff, testAttest, trustFor } from './support/fixtures.ts';
import type { ConsumerPop, MeterEvent, StatementV2, TariffSnapshot } from '../src/core/schemas.ts';

const ALPHABET = ['a', 'Z', '0', '"', '\\', '/', '\n', '\t', '\u0000', '\u001f', '\u007f', 'é', '€', '\u2028', '😀', ' ', '-', '_'];

function text(r: () => number, max = 12): string {
  let s = '';
  const n = Math.floor(r() * max) + 1;
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * ALPHABET.length)];
  return s;
}

const digits = (r: () => number) => String(Math.floor(r() * 1e12));

function event(r: () => number): MeterEvent {
  return {
    event_id: text(r),
    event_timestamp: '2026-05-01T00:00:00Z',
    tenant_id: text(r),
    api_key_id: text(r),
    endpoint: text(r),
    usage_units: digits(r),
    contract_version: text(r),
    billing_window_id: text(r),
    outcome: r() < 0.5 ? 'success' : 'partial',
    ...(r() < 0.5 ? { dimensions: { [text(r)]: text(r), region: text(r) } } : {}),
  } as MeterEvent;
}

function tariff(r: () => number): TariffSnapshot {
  return { tariff_id: text(r), tariff_version: text(r), currency: 'EUR' } as TariffSnapshot;
}

function statement(r: () => number, pop: boolean): StatementV2 {
  return {
    type: 'meterproof/statement/v2',
    binding: 'bn128-poseidon8-v2',
    tenant_id: text(r),
    billing_window_id: text(r),
    event_digest: `sha256:${text(r)}`,
    tariff_digest: `sha256:${text(r)}`,
    tariff_id: text(r),
    tariff_version: text(r),
    billing_verify_fingerprint: text(r),
    charge_micros: digits(r),
    currency: text(r, 3),
    chain: { id: text(r), seq: digits(r), prev: r() < 0.3 ? null : text(r), cumulative_units_before: digits(r), cumulative_units_after: digits(r) },
    issued_at: text(r),
    key_id: text(r),
    usage_units: digits(r),
    outcome: 'success',
    ...(pop ? { consumer_pop_digest: `sha256:${text(r)}` } : {}),
  } as StatementV2;
}

describe('attest texts', () => {
  it('give the generic canonical texts and digests on random values', () => {
    const r = uniform(20261206);
    for (let i = 0; i < 2000; i++) {
      const e = event(r);
      const t = tariff(r);
      const salt = randomSalt();
      const charge = digits(r);
      expect(saltedEventDigestOfText(canonicalString(e), salt.toString())).toBe(saltedEventDigest(e, salt));
      expect(saltedFingerprintOfText(e, t, charge, salt.toString())).toBe(saltedFingerprint(e, t, charge, salt));
      const s = statement(r, i % 2 === 0);
      expect(statementV2Text(s)).toBe(canonicalString(s));
      // an event without dimensions has its text written out; one with them is left to the walk
      const plain = plainEventText(e);
      if ('dimensions' in e) expect(plain).toBeNull();
      else expect(plain).toBe(canonicalString(e));
    }
  });

  it('give the log leaf of a statement digest, and leave anything else to the generic walk', () => {
    const r = uniform(5);
    for (let i = 0; i < 200; i++) {
      const digest = `sha256:${Array.from({ length: 64 }, () => '0123456789abcdef'[Math.floor(r() * 16)]).join('')}`;
      expect(logLeafV2Text(digest)).toEqual(logLeafV2(digest));
    }
    for (const odd of ['sha256:"', `sha256:${'A'.repeat(64)}`, `sha256:${'0'.repeat(63)}`, `${'0'.repeat(64)}`]) expect(logLeafV2Text(odd)).toBeNull();
  });

  it('write a bundle whose JSON is the bundle object, and leave other values to JSON.stringify', () => {
    const r = uniform(20261207);
    for (let i = 0; i < 500; i++) {
      const e = event(r);
      const t = { ...tariff(r), tiers: [{ up_to: digits(r), unit_price_micros: digits(r) }, { up_to: null, unit_price_micros: digits(r) }] } as unknown as TariffSnapshot;
      const s = statement(r, i % 3 === 0);
      const billing = { expected_charge_micros: digits(r), billing_verify_fingerprint: text(r), cumulative_units_before: digits(r) };
      const salts = { event: digits(r), tariff: digits(r) };
      const consumerPop = i % 3 === 0 ? ({ consumer_id: text(r), nonce: text(r), signature: text(r) } as unknown as ConsumerPop) : undefined;
      const bundle = { meter_event: e, tariff_snapshot: t, billing, salts, attestation: { statement: s, key_id: text(r), signature: text(r), proof_status: 'pending' }, ...(consumerPop ? { consumer_pop: consumerPop } : {}) };
      const made = bundleV2Text({ eventText: canonicalString(e), tariffText: JSON.stringify(t), billing, salts, statementText: statementV2Text(s)!, keyId: bundle.attestation.key_id, signature: bundle.attestation.signature, ...(consumerPop ? { consumerPop } : {}) });
      expect(JSON.parse(made!)).toStrictEqual(JSON.parse(JSON.stringify(bundle)));
      expect(canonicalString(JSON.parse(made!))).toBe(canonicalString(bundle));
    }
    const billing = { expected_charge_micros: 5, billing_verify_fingerprint: 'f', cumulative_units_before: '0' } as unknown as { expected_charge_micros: string; billing_verify_fingerprint: string; cumulative_units_before: string };
    expect(bundleV2Text({ eventText: '{}', tariffText: '{}', billing, salts: { event: '1', tariff: '2' }, statementText: '{}', keyId: 'k', signature: 's' })).toBeNull();
  });

  it('refuse lone surrogates as the generic walk does', () => {
    const r = uniform(7);
    const e = { ...event(r), event_id: 'x\ud800' };
    expect(() => saltedFingerprintOfText(e, tariff(r), '1', '1')).toThrow(/lone surrogate/);
    const s = { ...statement(r, false), tenant_id: '\udc00' };
    expect(() => statementV2Text(s)).toThrow(/lone surrogate/);
  });

  it('leave a statement of another shape to the generic walk', () => {
    const r = uniform(11);
    const s = { ...statement(r, false), extra: 'x' } as unknown as StatementV2;
    expect(statementV2Text(s)).toBeNull();
    const c = { ...statement(r, false) };
    c.chain = { ...c.chain, more: '1' } as unknown as StatementV2['chain'];
    expect(statementV2Text(c)).toBeNull();
    // a value of another type: the generic walk decides (and refuses what it refuses)
    const noPrev = { ...statement(r, false) };
    noPrev.chain = { ...noPrev.chain, prev: undefined } as unknown as StatementV2['chain'];
    expect(statementV2Text(noPrev)).toBeNull();
    expect(statementV2Text({ ...statement(r, false), charge_micros: 5 } as unknown as StatementV2)).toBeNull();
    expect(saltedFingerprintOfText({ ...event(r), usage_units: 5 } as unknown as MeterEvent, tariff(r), '1', '1')).toBeNull();
    expect(plainEventText({ ...event(r), usage_units: 5, dimensions: undefined } as unknown as MeterEvent)).toBeNull();
    const plain = { ...event(r) } as Record<string, unknown>;
    delete plain['dimensions'];
    expect(plainEventText({ ...plain, extra: 'x' } as unknown as MeterEvent)).toBeNull();
    expect(plainEventText({ ...plain, usage_units: 5 } as unknown as MeterEvent)).toBeNull();
  });

  it('keep nothing per tariff object: the same object, changed, is priced and written as it now is', async () => {
    const event = normalizeMeterEvent(pilotEvent);
    const t = normalizeTariff(pilotTariff);
    const first = testAttest({ event, tariff: t, key: keyA, chain: GENESIS, issuedAt: '2026-05-29T12:00:01.000Z' });
    expect(first.statement.charge_micros).toBe('221040');
    (t as unknown as Record<string, string>)['unit_price_micros'] = '999';
    const r = testAttest({ event, tariff: t, key: keyA, chain: GENESIS, issuedAt: '2026-05-29T12:00:01.000Z' });
    expect(r.statement.charge_micros).toBe(String(1842 * 999));
    expect(JSON.parse(r.bundleText)).toStrictEqual(JSON.parse(JSON.stringify(r.bundle)));
    expect((await verifyBundle(JSON.parse(r.bundleText), trustFor(keyA), { profile: 'standard' })).checks.filter((c) => c.status === 'fail')).toEqual([]);
  });

  it('make bundles the verifier accepts, with and without the event text given', async () => {
    const event = normalizeMeterEvent({ ...pilotEvent, event_id: 'évt "quoted" \\ 😀' });
    for (const eventText of [canonicalString(event), undefined]) {
      const r = testAttest({ event, tariff: normalizeTariff(pilotTariff), key: keyA, chain: GENESIS, issuedAt: '2026-05-29T12:00:01.000Z', ...(eventText ? { eventText } : {}) });
      expect(new TextDecoder().decode(r.statementBytes)).toBe(canonicalString(r.statement));
      expect(JSON.parse(r.bundleText)).toStrictEqual(JSON.parse(JSON.stringify(r.bundle)));
      expect(r.leafBytes).toEqual(logLeafV2(r.statementDigest));
      const v = await verifyBundle(r.bundle, trustFor(keyA), { profile: 'standard' });
      expect(v.checks.filter((c) => c.status === 'fail')).toEqual([]);
      expect(v.valid).toBe(true);
    }
  });
});
