// Input that cannot be one thing: bytes that are not UTF-8, duplicated JSON keys, identifiers not
// in NFC, a revoked API key, admin tokens a Bearer header cannot carry, a too-short rotation grace.
import net, { type AddressInfo } from 'node:net';
import { serve as serveHttp } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { JsonTextError, MAX_DEPTH, parseJsonStrict } from '../src/core/json.ts';
import { createVerifyPool } from '../src/verifier/pool.ts';
import { KEY_REFRESH_MS } from '../src/service/keyring.ts';
import { verifyJson } from '../src/verifier/index.ts';
import { pilotEvent, pilotTariff } from './support/fixtures.ts';
import { ADMIN, testService, type TestService } from './support/service.ts';

let s: TestService;
let attestKey: string;
const enc = new TextEncoder();

beforeAll(async () => {
  s = await testService();
  expect((await s.call('POST', '/v1/admin/tenants', { body: { id: 'tenant_acme' } })).status).toBe(201);
  attestKey = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['attest', 'read'] } })).body.secret;
});
afterAll(async () => s?.close());

/** An attest body whose event_id is the given raw bytes (inside the JSON string). */
function bodyWithIdBytes(id: Uint8Array): Uint8Array {
  const text = JSON.stringify({ meter_event: { ...pilotEvent, event_id: '@@ID@@' }, tariff_snapshot: pilotTariff });
  const [a, b] = text.split('@@ID@@') as [string, string];
  return Buffer.concat([enc.encode(a), id, enc.encode(b)]);
}

async function post(url: string, body: Uint8Array | string, token: string | null = attestKey) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers['authorization'] = `Bearer ${token}`;
  const res = await s.app.request(url, { method: 'POST', headers, body });
  return { status: res.status, body: (await res.json()) as any };
}

describe('bodies that are not UTF-8', () => {
  it('are refused with 400 INVALID_UTF8 (app.request): caf\\xe9 and caf\\xe8 never become one id', async () => {
    for (const bytes of [[0x63, 0x61, 0x66, 0xe9], [0x63, 0x61, 0x66, 0xe8], [0xc0, 0xaf], [0xed, 0xa0, 0x80]]) {
      const r = await post('/v1/attest', bodyWithIdBytes(new Uint8Array(bytes)));
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('INVALID_UTF8');
    }
    // the same id in UTF-8 is fine, and admin and verify routes refuse bad bytes too
    expect((await post('/v1/attest', bodyWithIdBytes(enc.encode('café')))).status).toBe(201);
    expect((await post('/v1/verify', new Uint8Array([0x7b, 0xff, 0x7d]), null)).body.code).toBe('INVALID_UTF8');
    expect((await post('/v1/admin/tenants', new Uint8Array([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d]), ADMIN)).body.code).toBe('INVALID_UTF8');
    // invoice lines are read as a stream: a bad byte in a later line, and one cut off at the end
    const line = enc.encode('{"event_id":"e1","amount_micros":"1"}\n');
    for (const tail of [[0x7b, 0xff, 0x7d, 0x0a], [0x7b, 0xe2, 0x82]]) {
      const r = await post('/v1/reconcile?tenant_id=tenant_acme&window=2026-05', Buffer.concat([line, new Uint8Array(tail)]));
      expect([r.status, r.body.code]).toEqual([400, 'INVALID_UTF8']);
    }
  });

  it('are refused with 400 INVALID_UTF8 over a real socket (the Node body reader)', async () => {
    const server = serveHttp({ fetch: s.app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((r) => server.once('listening', () => r()));
    const port = (server.address() as AddressInfo).port;
    try {
      for (const [id, want] of [
        [[0x63, 0x61, 0x66, 0xe9], 400],
        [[0x63, 0x61, 0x66, 0xe8], 400],
        [[0x63, 0x61, 0x66, 0xc3, 0xa8], 201],
      ] as const) {
        const body = Buffer.from(bodyWithIdBytes(new Uint8Array(id)));
        const head = `POST /v1/attest HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${attestKey}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`;
        const answer = await new Promise<string>((resolve, reject) => {
          // written, not half-closed: the server answers, then closes (connection: close)
          const sock = net.connect(port, '127.0.0.1', () => sock.write(Buffer.concat([Buffer.from(head), body])));
          let got = '';
          sock.on('data', (d) => (got += d.toString()));
          sock.on('close', () => resolve(got));
          sock.on('error', reject);
        });
        expect(answer.split('\r\n')[0]).toBe(`HTTP/1.1 ${want} ${want === 400 ? 'Bad Request' : 'Created'}`);
        if (want === 400) expect(answer).toContain('"code":"INVALID_UTF8"');
      }
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('duplicate JSON keys (I-JSON, RFC 7493)', () => {
  it('the strict parser finds them anywhere, after unescaping, and nothing else', () => {
    const dup = (t: string) => {
      try {
        parseJsonStrict(t);
        return null;
      } catch (e) {
        expect(e).toBeInstanceOf(JsonTextError);
        return { code: (e as JsonTextError).code, path: (e as JsonTextError).path };
      }
    };
    expect(dup('{"a":1,"a":2}')).toEqual({ code: 'DUPLICATE_KEY', path: '(root)' });
    expect(dup('{"a":1,"\\u0061":2}')).toEqual({ code: 'DUPLICATE_KEY', path: '(root)' });
    expect(dup('{"x":[1,{"b":{"c":0,"c" :1}}]}')).toEqual({ code: 'DUPLICATE_KEY', path: 'x.1.b' });
    expect(dup('[{"a":1},{"a":1}]')).toBeNull(); // same name in two objects
    expect(dup('{"a":"\\"a\\":","b":{"a":1}}')).toBeNull(); // a name-like string value
    expect(dup('{"a\\\\":1,"a":2}')).toBeNull(); // "a\" and "a" differ
    expect(dup('{"__proto__":1,"__proto__":2}')).toEqual({ code: 'DUPLICATE_KEY', path: '(root)' });
    expect(dup('{"a":1,}')?.code).toBe('INVALID_JSON');
    expect(parseJsonStrict('{"a":{"b":[1,2,{"c":"d"}]},"e":null}')).toEqual({ a: { b: [1, 2, { c: 'd' }] }, e: null });
  });

  it('are refused with 400 DUPLICATE_KEY on attest, batch, verify and admin routes', async () => {
    const one = JSON.stringify({ meter_event: { ...pilotEvent, event_id: 'dup-1' }, tariff_snapshot: pilotTariff });
    const twice = one.replace('"event_id":"dup-1"', '"event_id":"dup-1","event_id":"dup-2"');
    const r = await post('/v1/attest', twice);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('DUPLICATE_KEY');
    expect(r.body.errors[0].path).toBe('meter_event');
    expect((await post('/v1/attest', one.replace('"event_id"', '"\\u0065vent_id":"x","event_id"'))).body.code).toBe('DUPLICATE_KEY');
    expect((await post('/v1/attest/batch', `{"events":[${twice}]}`)).body.code).toBe('DUPLICATE_KEY');
    expect((await post('/v1/verify', '{"attestation":1,"attestation":2}', null)).body.code).toBe('DUPLICATE_KEY');
    expect((await post('/v1/admin/tenants', '{"id":"t1","id":"t2"}', ADMIN)).body.code).toBe('DUPLICATE_KEY');
    // nothing was stored under either id
    for (const id of ['dup-1', 'dup-2']) expect((await post('/v1/attest', one.replace('dup-1', id))).status).toBe(201);
  });

  it('fail a bundle in the verifier library (never valid), where the parsed bundle verifies', async () => {
    const created = await post('/v1/attest', JSON.stringify({ meter_event: { ...pilotEvent, event_id: 'dup-verify' }, tariff_snapshot: pilotTariff }));
    const trust = (await s.call('GET', '/v1/trust', { token: null })).body;
    const text = JSON.stringify(created.body);
    expect((await verifyJson(text, trust, { profile: 'standard' })).valid).toBe(true);
    // the charge given twice: JSON.parse would keep the last (the signed one) and say valid
    const charge = created.body.attestation.statement.charge_micros;
    const twice = text.replace(`"charge_micros":"${charge}"`, `"charge_micros":"1","charge_micros":"${charge}"`);
    expect(twice).not.toBe(text);
    const rep = await verifyJson(twice, trust, { profile: 'standard' });
    expect(rep.valid).toBe(false);
    expect(rep.checks.find((c) => c.name === 'schema')).toMatchObject({ status: 'fail', code: 'DUPLICATE_KEY' });
    const bad = await verifyJson(text, JSON.stringify(trust).replace('"jwks":', '"jwks":{},"jwks":'), { profile: 'standard' });
    expect(bad.checks[0]).toMatchObject({ status: 'fail', code: 'DUPLICATE_KEY' });
    expect((await verifyJson('{"a":', trust)).checks[0]).toMatchObject({ status: 'fail', code: 'INVALID_JSON' });
  });
});

describe('deeply nested JSON', () => {
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
  it('the strict parser refuses nesting past MAX_DEPTH, and takes it up to there', () => {
    expect(() => parseJsonStrict(deep(MAX_DEPTH))).not.toThrow();
    for (const text of [deep(MAX_DEPTH + 1), `{"a":${deep(200_000)}}`]) {
      expect(() => parseJsonStrict(text)).toThrow(JsonTextError);
      expect(() => parseJsonStrict(text)).toThrow(`nested deeper than ${MAX_DEPTH} levels`);
    }
  });

  it('is refused with 400 INVALID_JSON at every door, and verify/batch keeps working after', async () => {
    for (const [url, body, token] of [
      ['/v1/verify/batch', deep(5000), null],
      ['/v1/verify/batch', deep(5000), null],
      ['/v1/verify', `{"attestation":${deep(5000)}}`, null],
      ['/v1/attest/batch', `{"events":${deep(50_000)}}`, attestKey],
    ] as const) {
      const r = await post(url, body, token);
      expect(`${url} ${r.status} ${r.body.code}`).toBe(`${url} 400 INVALID_JSON`);
    }
    // an invoice: its own code
    expect((await post('/v1/reconcile?tenant_id=tenant_acme&window=2026-05', deep(50_000))).body.code).toBe('INVALID_INVOICE');
    const created = await post('/v1/attest', JSON.stringify({ meter_event: { ...pilotEvent, event_id: 'deep-after' }, tariff_snapshot: pilotTariff }));
    const batch = await post('/v1/verify/batch?profile=standard', JSON.stringify([created.body]), null);
    expect(batch.status).toBe(200);
    expect(batch.body.summary).toMatchObject({ total: 1, valid: 1 });
  });

  it('a job the verifier pool cannot hand to a worker fails alone; the worker slot stays free', async () => {
    const pool = createVerifyPool({ threads: 1 });
    try {
      const uncloneable = [{ bundle: { f: () => 1 } }] as unknown as Parameters<typeof pool.verifyMany>[0];
      await expect(pool.verifyMany(uncloneable, {})).rejects.toThrow();
      await expect(pool.verifyMany(uncloneable, {})).rejects.toThrow();
      const reports = await pool.verifyMany([{ bundle: {} }] as unknown as Parameters<typeof pool.verifyMany>[0], {});
      expect(reports).toHaveLength(1);
      expect(reports[0]!.valid).toBe(false);
    } finally {
      await pool.close();
    }
  }, 30_000);
});

describe('identifiers not in NFC', () => {
  it('are refused with 400 NOT_NFC; the NFC form of the same id is attested once', async () => {
    const nfc = 'evt_caf\u00e9';
    const nfd = 'evt_cafe\u0301';
    expect(nfc.normalize('NFC')).toBe(nfd.normalize('NFC'));
    const body = (over: Record<string, unknown>) => JSON.stringify({ meter_event: { ...pilotEvent, event_id: 'nfc-x', ...over }, tariff_snapshot: pilotTariff });
    const r = await post('/v1/attest', body({ event_id: nfd }));
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('NOT_NFC');
    expect(r.body.errors).toEqual([{ path: 'meter_event.event_id', message: 'must be in Unicode normalization form C (NFC)' }]);
    expect((await post('/v1/attest', body({ event_id: nfc }))).status).toBe(201);
    expect((await post('/v1/attest', body({ event_id: nfc }))).status).toBe(200); // a replay
    for (const field of ['tenant_id', 'api_key_id', 'endpoint', 'contract_version', 'billing_window_id']) {
      const x = await post('/v1/attest', body({ [field]: `x\u0041\u030a` }));
      expect([x.status, x.body.code, x.body.errors[0].path]).toEqual([400, 'NOT_NFC', `meter_event.${field}`]);
    }
    const t = await post('/v1/attest', JSON.stringify({ meter_event: { ...pilotEvent, event_id: 'nfc-t' }, tariff_snapshot: { ...pilotTariff, tariff_id: 'tariff_\u0041\u030a' } }));
    expect([t.status, t.body.code]).toEqual([400, 'NOT_NFC']);
    expect((await post('/v1/admin/tenants', JSON.stringify({ id: 'tenant_\u0041\u030a' }), ADMIN)).body.code).toBe('NOT_NFC');
    expect((await post('/v1/admin/api-keys', JSON.stringify({ scopes: ['read'], tenants: ['tenant_\u0041\u030a'] }), ADMIN)).body.code).toBe('NOT_NFC');
    const ce = { specversion: '1.0', id: 'ce-1', source: '/x\u0041\u030a', type: 'usage', time: pilotEvent.event_timestamp, data: { tenant_id: 'tenant_acme', api_key_id: 'k', usage_units: 1, contract_version: 'c', billing_window_id: 'w' } };
    expect((await post('/v1/attest', JSON.stringify({ meter_event: ce, tariff_snapshot: pilotTariff }))).body.code).toBe('NOT_NFC');
  });
});

describe('a revoked API key', () => {
  it('is refused on the very next request (no cache keeps it)', async () => {
    const k = (await s.call('POST', '/v1/admin/api-keys', { body: { scopes: ['read'] } })).body;
    const get = () => s.call('GET', '/v1/attestations?tenant_id=tenant_acme&limit=1', { token: k.secret });
    // concurrent requests in one turn share one look-up, and all pass
    expect((await Promise.all([get(), get(), get()])).map((r) => r.status)).toEqual([200, 200, 200]);
    expect((await s.call('DELETE', `/v1/admin/api-keys/${k.id}`)).status).toBe(200);
    const after = await get();
    expect(after.status).toBe(401);
    expect(after.body.code).toBe('UNAUTHENTICATED');
  });
});

describe('start-up configuration', () => {
  const base = { DATA_DIR: '/tmp/x' };
  it('refuses an admin token that Authorization: Bearer cannot carry (RFC 6750 b64token)', () => {
    for (const bad of ['admin token with spaces 0123456789', 'admin-token-0123456789abcdef!', 'admin-token-0123456789abcdé', 'admin-token-0123456789ab=cd', 'admin,token,0123456789abcdef']) {
      expect(() => loadConfig({ ...base, METERPROOF_ADMIN_TOKEN: bad }), bad).toThrow(/METERPROOF_ADMIN_TOKEN may hold only A-Z a-z 0-9 - \. _ ~ \+ \//);
    }
    for (const good of ['mpa_0123456789abcdefABCDEF-._~+/', 'abcdefghijklmnopqrstuvwxyz0123==']) {
      expect(loadConfig({ ...base, METERPROOF_ADMIN_TOKEN: good }).METERPROOF_ADMIN_TOKEN).toBe(good);
    }
  });

  it('refuses KEY_ROTATION_GRACE_MS below the key refresh interval', () => {
    expect(() => loadConfig({ ...base, KEY_ROTATION_GRACE_MS: String(KEY_REFRESH_MS - 1) })).toThrow(/KEY_ROTATION_GRACE_MS must be at least 1000 \(the key refresh interval\)/);
    expect(() => loadConfig({ ...base, KEY_ROTATION_GRACE_MS: '0' })).toThrow(/KEY_ROTATION_GRACE_MS/);
    expect(loadConfig({ ...base, KEY_ROTATION_GRACE_MS: String(KEY_REFRESH_MS) }).KEY_ROTATION_GRACE_MS).toBe(KEY_REFRESH_MS);
  });

  it('an admin token accepted at start can log in', async () => {
    const token = 'mpa_0123456789abcdefABCDEF-._~+/==';
    const t = await testService({ adminToken: loadConfig({ ...base, METERPROOF_ADMIN_TOKEN: token }).METERPROOF_ADMIN_TOKEN! });
    try {
      expect((await t.call('GET', '/v1/admin/tenants', { token })).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});
