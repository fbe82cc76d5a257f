// `npm run bench:settle [-- --events N]`: the CPU a settlement spends per attested event in its
// pure part — the statement signature re-verified (canonical bytes, digest, Ed25519) and the
// event added to the accumulator (chain checks, bigint tallies, Merkle leaf) — and the offline
// verifier over the same evidence (verifySettlement without the log checks). The statements are
// made first (three meters, mixed outcomes, graduated overage tiers), untimed. The store's part
// (reading the rows) is not measured here. Figures are process CPU time per event
// (process.cpuUsage), which the other processes on the machine disturb less than wall time.
import { GENESIS, attestEvent, normalizeMeterEvent, normalizeTariff } from '../src/core/attest.ts';
import { canonicalBytes, digestBytes } from '../src/core/canonical.ts';
import { generateSigningKey, publicJwk, verifyBytes } from '../src/core/keys.ts';
import { normalizePlan } from '../src/core/plan.ts';
import type { Statement } from '../src/core/schemas.ts';
import { SettlementAccumulator } from '../src/core/settlement.ts';
import { verifySettlement } from '../src/core/settlement-verify.ts';
import type { ChainLink } from '../src/core/statement.ts';
import { toB64Url } from '../src/core/bytes.ts';

const i = process.argv.indexOf('--events');
const N = i >= 0 ? Number(process.argv[i + 1]) : 50_000;
if (!Number.isSafeInteger(N) || N < 1) throw new Error('--events must be a positive integer');

const key = generateSigningKey('2026-01-01T00:00:00Z');
const jwk = publicJwk(key, '2026-01-01T00:00:00Z');
const tariff = normalizeTariff({ tariff_id: 't', tariff_version: '1', tariff_class: 'usage_linear', unit_price_micros: 5_000, currency: 'USD' });
const endpoints = ['/v1/a', '/v1/b', '/v1/c'];
const plan = normalizePlan({
  plan_id: 'p',
  plan_version: '1',
  currency: 'USD',
  fixed_fee_micros: 499_000_000,
  platform_fee_bps: 250,
  meters: endpoints.map((endpoint) => ({ endpoint, tariff: { tariff_id: 't', tariff_version: '1' }, included_units: 1_000, reserved_units: 5_000, reserved_unit_price_micros: 3_000, overage_tiers: [{ up_to: 50_000, unit_price_micros: 5_000 }, { up_to: null, unit_price_micros: 8_000 }] })),
});
const outcomes = ['success', 'success', 'success', 'partial', 'error', 'timeout'] as const;

const us = (c: NodeJS.CpuUsage) => c.user + c.system;

function main(): void {
  const links = new Map<string, ChainLink>(endpoints.map((e) => [e, GENESIS]));
  const made: { statement: Statement; key_id: string; signature: string; digest: string }[] = [];
  for (let n = 0; n < N; n++) {
    const endpoint = endpoints[n % endpoints.length]!;
    const event = normalizeMeterEvent({ event_id: `e${n}`, event_timestamp: '2026-05-29T12:00:00.000Z', tenant_id: 'acme', api_key_id: 'k', endpoint, usage_units: 1 + (n % 7), contract_version: 'c', billing_window_id: '2026-05', outcome: outcomes[n % outcomes.length] });
    const r = attestEvent({ event, tariff, key, chain: links.get(endpoint)!, issuedAt: '2026-05-29T12:00:00.000Z', eventSalt: BigInt(n + 1), tariffSalt: 7n });
    links.set(endpoint, r.next);
    made.push({ statement: r.statement, key_id: key.keyId, signature: r.bundle.attestation.signature, digest: r.statementDigest });
  }
  made.sort((a, b) => (a.statement.chain.id < b.statement.chain.id ? -1 : a.statement.chain.id > b.statement.chain.id ? 1 : Number(BigInt(a.statement.chain.seq) - BigInt(b.statement.chain.seq))));
  const heads = new Map<string, bigint>();
  for (const m of made) heads.set(m.statement.chain.id, (heads.get(m.statement.chain.id) ?? 0n) + 1n);

  const c0 = process.cpuUsage();
  const acc = new SettlementAccumulator('acme', '2026-05', plan);
  for (const m of made) {
    const bytes = canonicalBytes(m.statement);
    if (digestBytes(bytes) !== m.digest || !verifyBytes(jwk, bytes, m.signature)) throw new Error('signature');
    acc.add(m.digest, m.statement);
  }
  const statement = acc.finish({ heads, issuedAt: '2026-06-01T00:00:00.000Z', keyId: key.keyId });
  const settleUs = us(process.cpuUsage(c0));

  const bytes = canonicalBytes(statement);
  const evidence = {
    type: 'meterproof/settlement-evidence/v1',
    settlement: { statement, statement_digest: digestBytes(bytes), key_id: key.keyId, signature: toB64Url(key.sign(bytes)) },
    receipt: null,
    plan,
    attestations: made.map((m) => ({ statement: m.statement, key_id: m.key_id, signature: m.signature })),
  };
  const c1 = process.cpuUsage();
  const report = verifySettlement(evidence, { jwks: { keys: [jwk] } }, { checkLeafInclusion() {}, checkCheckpoint() {} });
  const verifyUs = us(process.cpuUsage(c1));
  const failed = report.checks.filter((c) => c.status === 'fail');
  if (failed.length !== 1 || failed[0]!.code !== 'RECEIPT_MISSING') throw new Error(`unexpected verdict: ${JSON.stringify(failed)}`);

  console.log(`events: ${N} (3 meters, mixed outcomes); total ${statement.total_micros} micros`);
  // x µs per event is x s per 1,000,000 events
  console.log(`settle (re-verify + aggregate): ${(settleUs / N).toFixed(1)} µs CPU/event (${(settleUs / N).toFixed(0)} s CPU per 1,000,000)`);
  console.log(`offline verify (every check but the log): ${(verifyUs / N).toFixed(1)} µs CPU/event (${(verifyUs / N).toFixed(0)} s CPU per 1,000,000)`);
  console.log(`rss: ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB (statements held in memory)`);
}

main();
