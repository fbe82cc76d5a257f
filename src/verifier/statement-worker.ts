// A statement-check worker (statement-pool.ts): checks chunks of attested statements given as
// JSON text (strict I-JSON parse, schema, canonical bytes, digest, Ed25519 signature under the
// trust material's keys) with checkSignedStatement, and answers the results in order.
import { parentPort } from 'node:worker_threads';
import { Jwks, type PublicJwk } from '../core/keys.ts';
import { type FromStatementWorker, type ToStatementWorker, checkTexts } from './statement-pool.ts';

const port = parentPort;
if (!port) throw new Error('src/verifier/statement-worker.ts must run in a worker thread');
let jwks = new Map<string, PublicJwk>();

port.on('message', (m: ToStatementWorker) => {
  if (m.type === 'close') return void port.close();
  if (m.type === 'keys') {
    jwks = new Map(Jwks.parse(m.jwks).keys.map((k) => [k.kid, k]));
    return;
  }
  const results = checkTexts(jwks, m.texts, m.first, m.pick);
  port.postMessage({ type: 'result', id: m.id, results } satisfies FromStatementWorker);
});
port.postMessage({ type: 'ready' } satisfies FromStatementWorker);
