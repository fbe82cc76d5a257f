// npm run bench:pop — CPU per event of checking a consumer PoP, without the database: what the
// attest path does in process (src/service/pop.ts: parse the PoP, rebuild the canonical message,
// strict Ed25519 verification through node:crypto) and what the verifier's consumer_pop check
// does (digest of the PoP, the same signature check). The nonce insert is one SQL statement on
// top (measured by bench:attest). Figures are process.cpuUsage (user + system) per PoP.
//
//   npm run bench:pop [-- --count 20000]
import { parseArgs } from 'node:util';
import { Consumer, generateConsumerKey } from '../src/consumer/index.ts';
import { popMessage } from '../src/core/bilateral.ts';
import { digestOf } from '../src/core/canonical.ts';
import { verifyObject, type PublicJwk } from '../src/core/keys.ts';
import { CONSUMER_POP_TYPE, type ConsumerPop, ConsumerPopInput } from '../src/core/schemas.ts';
import { ED25519_SIGNER } from '../src/core/ed25519.ts';

const { values } = parseArgs({ options: { count: { type: 'string', default: '20000' } } });
const COUNT = Number(values.count);

const key = generateConsumerKey();
const consumer = new Consumer({ tenantId: 'tenant_acme', consumerId: 'alice', secretKey: key.secretKey });
const jwk: PublicJwk = { ...key.publicJwk, valid_from: '2020-01-01T00:00:00Z', valid_until: null };
const tariffDigest = `sha256:${'ab'.repeat(32)}`;
const pops = Array.from({ length: COUNT }, (_, i) => consumer.signPop({ eventId: `evt_${i}`, tariffDigest, requestPayload: `{"n":${i}}` }));

function cpuUs(f: () => void): number {
  const start = process.cpuUsage();
  f();
  const d = process.cpuUsage(start);
  return d.user + d.system;
}

/** The attest path's in-process work per PoP. */
function admit(raw: unknown, i: number): ConsumerPop {
  const parsed = ConsumerPopInput.safeParse(raw);
  if (!parsed.success) throw new Error('invalid');
  const pop: ConsumerPop = { type: CONSUMER_POP_TYPE, tenant_id: 'tenant_acme', event_id: `evt_${i}`, ...parsed.data };
  if (!verifyObject(jwk, popMessage(pop), pop.signature)) throw new Error('signature');
  if (Math.abs(Date.now() - Date.parse(pop.timestamp)) > 300_000) throw new Error('stale');
  if (pop.tariff_digest !== tariffDigest) throw new Error('tariff');
  return pop;
}

// warm-up (JIT, the key object cache), then measured runs
const full: ConsumerPop[] = pops.slice(0, 2000).map((p, i) => admit(p, i));
for (const p of full) verifyObject(jwk, popMessage(p), p.signature);
const fullPops: ConsumerPop[] = [];
const attestUs = cpuUs(() => {
  for (let i = 0; i < COUNT; i++) fullPops.push(admit(pops[i], i));
});
const verifierUs = cpuUs(() => {
  for (const p of fullPops) {
    digestOf(p);
    if (!verifyObject(jwk, popMessage(p), p.signature)) throw new Error('signature');
  }
});
const signUs = cpuUs(() => {
  for (let i = 0; i < 2000; i++) consumer.signPop({ eventId: `evt_s${i}`, tariffDigest, requestPayload: 'x' });
});

const f = (us: number, n: number) => (us / n).toFixed(1);
console.log(`node ${process.version}, ${COUNT} PoPs, statement signer ${ED25519_SIGNER}, PoP verification node:crypto`);
console.log(`attest path (parse, canonical message, Ed25519 verify, checks): ${f(attestUs, COUNT)} µs CPU per PoP (target ≤ 150)`);
console.log(`verifier consumer_pop check (digest, canonical message, Ed25519 verify): ${f(verifierUs, COUNT)} µs CPU per PoP`);
console.log(`consumer side, meterproof/consumer signPop (@noble/curves): ${f(signUs, 2000)} µs CPU per PoP`);
