// Reading a request's input: bodies refused beyond a limit (413), text that must be UTF-8 (400
// INVALID_UTF8), strict JSON (I-JSON: duplicate keys refused) without U+0000 or lone surrogates,
// line streams for large uploads, and query strings checked against a schema. One reader for
// every route.
import type { Context } from 'hono';
import type { IncomingMessage } from 'node:http';
import { JsonTextError, parseJsonStrict } from '../core/json.ts';
import { packLines } from '../verifier/evidence.ts';
import type { z } from 'zod';
import { ServiceError, zodIssues } from '../service/errors.ts';

// Bytes that are not UTF-8 are refused, not replaced with U+FFFD: two different ids would
// otherwise become one. ignoreBOM keeps a leading U+FEFF (JSON.parse then refuses it).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new ServiceError(400, 'INVALID_UTF8', 'the request body is not valid UTF-8');
  }
}

/** The request body's lines, decoded as UTF-8 while it arrives, refused beyond `limit` bytes. */
export async function* bodyLines(c: Context, limit: number): AsyncGenerator<string> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  const source: AsyncIterable<Uint8Array> = incoming && !incoming.readableDidRead ? (incoming as AsyncIterable<Buffer>) : ((c.req.raw.body ?? []) as AsyncIterable<Uint8Array>);
  async function* limited(): AsyncGenerator<Uint8Array> {
    let size = 0;
    for await (const chunk of source) {
      size += chunk.length;
      if (size > limit) throw tooLarge(limit);
      yield chunk;
    }
  }
  try {
    yield* packLines(limited());
  } catch (e) {
    // packLines decodes strictly: bytes that are not UTF-8 throw node's encoding error
    if ((e as { code?: unknown } | null)?.code === 'ERR_ENCODING_INVALID_ENCODED_DATA') throw new ServiceError(400, 'INVALID_UTF8', 'the request body is not valid UTF-8');
    throw e;
  }
}

const tooLarge = (limit: number) => new ServiceError(413, 'PAYLOAD_TOO_LARGE', `request body exceeds ${limit} bytes`);

/**
 * The request body as text, refused with 413 beyond `limit` bytes. On @hono/node-server the
 * body is read straight from the Node request (a declared Content-Length is checked before
 * reading, a chunked body while reading): going through `c.req` would first build a full web
 * `Request` (streams, abort signal, header conversion), which cost ~5% of a busy server's CPU.
 * Elsewhere (app.request in tests, other runtimes) `c.req.text()` is read and then measured.
 */
async function readText(c: Context, limit: number): Promise<string> {
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming && !incoming.readableDidRead) {
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of incoming as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limit) throw tooLarge(limit);
        chunks.push(chunk);
      }
    } catch (e) {
      if (e instanceof ServiceError) throw e;
      // the client went away mid-body ("aborted"): its fault, answered (to no one) as such
      // rather than logged as an unhandled server error
      throw new ServiceError(400, 'BODY_INCOMPLETE', 'the request body ended before it was complete');
    }
    return decodeUtf8(Buffer.concat(chunks, size));
  }
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.length > limit) throw tooLarge(limit);
  return decodeUtf8(bytes);
}

export async function readJson(c: Context, limit: number): Promise<unknown> {
  const ct = c.req.header('content-type') ?? '';
  if (!/^application\/(.+\+)?json\b/i.test(ct)) throw new ServiceError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send Content-Type: application/json');
  const text = await readText(c, limit);
  let value: unknown;
  try {
    value = parseJsonStrict(text);
  } catch (e) {
    if (!(e instanceof JsonTextError)) throw e;
    if (e.code === 'DUPLICATE_KEY') throw new ServiceError(400, 'DUPLICATE_KEY', `request body is not I-JSON: ${e.message}`, [{ path: e.path ?? '(root)', message: e.message }]);
    throw new ServiceError(400, 'INVALID_JSON', `request body is not valid JSON: ${e.message}`);
  }
  // Refused here, for every route, rather than deeper down (in JSON text both can only appear
  // escaped, so most bodies skip the walk):
  // - U+0000: PostgreSQL text and jsonb cannot hold it, so the store would fail;
  // - a lone surrogate (U+D800–U+DFFF unpaired): it has no RFC 8785 canonical form, so nothing
  //   holding one can be digested or signed, and PostgreSQL would store it altered.
  if (/\\u(0000|d[89a-f])/i.test(text)) {
    const found = badCharacter(value);
    if (found) {
      const path = found.path.length > 200 ? `${found.path.slice(0, 200)}…` : found.path; // a deep body's path is long
      throw new ServiceError(400, 'UNSUPPORTED_CHARACTER', `strings may not contain ${found.what}`, [{ path, message: `${found.what} is not allowed` }]);
    }
  }
  return value;
}

const badIn = (s: string) => (s.includes('\u0000') ? 'U+0000' : s.isWellFormed() ? null : 'a lone surrogate');

/** The path of the first string or key holding U+0000 or a lone surrogate, and which, or null.
 *  Iterative: a body nested thousands of levels deep (JSON.parse takes it) must not overflow the
 *  stack here. */
function badCharacter(root: unknown): { path: string; what: string } | null {
  const stack: [unknown, string][] = [[root, '']];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const what = badIn(v);
      if (what) return { path, what };
      continue;
    }
    if (!v || typeof v !== 'object') continue;
    const entries = Object.entries(v);
    // pushed in reverse, so the first offending value in document order is the one reported
    for (let i = entries.length - 1; i >= 0; i--) {
      const [k, x] = entries[i]!;
      const p = path ? `${path}.${k}` : k;
      const what = badIn(k);
      if (what) return { path: p, what };
      stack.push([x, p]);
    }
  }
  return null;
}

/** The query string checked against `schema` (400 INVALID_QUERY naming each parameter). */
export function query<T extends z.ZodType>(c: Context, schema: T): z.infer<T> {
  const r = schema.safeParse(c.req.query());
  if (!r.success) throw new ServiceError(400, 'INVALID_QUERY', 'invalid query parameters', zodIssues(r.error, ''));
  return r.data;
}
