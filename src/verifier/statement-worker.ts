// A statement-check worker (statement-pool.ts): checks chunks of attested statements given as
// JSON text (strict I-JSON parse, schema, canonical bytes, digest, Ed25519 signature under the
// trust material's keys) with checkSignedStatement, and answers the results in order.
import { parentPort } from 'node:worker_threads';
import { JsonTextError, parseJsonStrict } from '../core/json.ts';
import { Jwks, type PublicJwk } from '../core/keys.ts';
import { type CheckedStatement, checkSignedStatement } from '../core/settlement-verify.ts';
import type { FromStatementWorker, ToStatementWorker } from './statement-pool.ts';

const port = parentPort;
if (!port) throw new Error('src/verifier/statement-worker.ts must run in a worker thread');
let jwks = new Map<string, PublicJwk>();

port.on('message', (m: ToStatementWorker) => {
  if (m.type === 'close') return void port.close();
  if (m.type === 'keys') {
    jwks = new Map(Jwks.parse(m.jwks).keys.map((k) => [k.kid, k]));
    return;
  }
  const results: CheckedStatement[] = m.texts.map((text, i) => {
    let item: unknown;
    try {
      item = parseJsonStrict(text);
    } catch (e) {
      return { failure: { code: e instanceof JsonTextError ? e.code : 'INVALID_JSON', message: `attestations[${m.first + i}]: ${e instanceof Error ? e.message : String(e)}` } };
    }
    return checkSignedStatement(jwks, item, m.first + i);
  });
  port.postMessage({ type: 'result', id: m.id, results } satisfies FromStatementWorker);
});
port.postMessage({ type: 'ready' } satisfies FromStatementWorker);
