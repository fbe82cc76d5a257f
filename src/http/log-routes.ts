// The public log endpoints (/v1/log/*), served from the log port on any Hono app (the API app or
// a bare one).
import type { Hono, Env as HonoEnv, Context } from 'hono';
import { type LogApi, outOfRange } from '../log/api.ts';
import { ServiceError } from '../service/errors.ts';

export function logRoutes<E extends HonoEnv>(app: Hono<E>, log: LogApi): void {
  app.get('/v1/log/checkpoint', async (c) => {
    strictQuery(c, []);
    const cp = await log.latestCheckpoint();
    if (!cp) throw new ServiceError(503, 'LOG_NOT_READY', 'the log has not signed its first checkpoint yet');
    return c.body(cp.note, 200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  });
  app.get('/v1/log/verifier-key', (c) => {
    strictQuery(c, []);
    return c.body(`${log.verifierKey()}\n`, 200, { 'content-type': 'text/plain; charset=utf-8' });
  });
  app.get('/v1/log/proof/inclusion', async (c) => {
    const q = strictQuery(c, ['index', 'tree_size']);
    return c.json(await log.inclusionProof(q['index']!, q['tree_size']!));
  });
  app.get('/v1/log/proof/consistency', async (c) => {
    const q = strictQuery(c, ['from', 'to']);
    return c.json(await log.consistencyProof(q['from']!, q['to']!));
  });
  app.get('/v1/log/entries', async (c) => {
    const q = strictQuery(c, ['start', 'end']);
    return c.json({ entries: await log.entries(q['start']!, q['end']!) });
  });
}

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

/** Exactly the named parameters, each once, each a canonical non-negative decimal integer. */
function strictQuery(c: Context, names: readonly string[]): Record<string, number> {
  const all = c.req.queries();
  const out: Record<string, number> = {};
  const fields: { path: string; message: string }[] = [];
  for (const k of Object.keys(all)) if (!names.includes(k)) fields.push({ path: k, message: 'unknown query parameter' });
  for (const name of names) {
    const vals = all[name];
    if (!vals || vals.length === 0) fields.push({ path: name, message: 'required' });
    else if (vals.length > 1) fields.push({ path: name, message: 'given more than once' });
    else if (!DECIMAL.test(vals[0]!)) fields.push({ path: name, message: 'expected a non-negative decimal integer without leading zeros' });
    else {
      const n = Number(vals[0]);
      if (!Number.isSafeInteger(n)) throw outOfRange(`${name} is beyond any size this log can have`);
      out[name] = n;
    }
  }
  if (fields.length) throw new ServiceError(400, 'INVALID_QUERY', 'invalid query parameters', fields);
  return out;
}
