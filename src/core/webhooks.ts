// Standard Webhooks (https://www.standardwebhooks.com, v1): signing and verifying a webhook
// message. The signed content is `${webhook-id}.${webhook-timestamp}.${body}`; the signature is
// HMAC-SHA256 under the endpoint's secret (`whsec_` + base64), sent as `v1,<base64>` in the
// `webhook-signature` header (space-separated when several secrets sign during a rotation).
// Pure: the clock is a parameter. Receivers use verifyWebhook; the service uses signWebhook.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const WEBHOOK_SECRET_PREFIX = 'whsec_';
/** How far a receiver accepts a timestamp from its own clock (Standard Webhooks' default). */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

export type WebhookErrorCode = 'WEBHOOK_HEADERS_MISSING' | 'WEBHOOK_TIMESTAMP_INVALID' | 'WEBHOOK_TIMESTAMP_STALE' | 'WEBHOOK_SIGNATURE_INVALID' | 'WEBHOOK_SECRET_INVALID';

export class WebhookVerificationError extends Error {
  constructor(
    readonly code: WebhookErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

/** A fresh endpoint secret: 24 random bytes. */
export function newWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + randomBytes(24).toString('base64');
}

function secretKey(secret: string): Buffer {
  const b64 = secret.startsWith(WEBHOOK_SECRET_PREFIX) ? secret.slice(WEBHOOK_SECRET_PREFIX.length) : secret;
  const key = Buffer.from(b64, 'base64');
  if (key.length < 16 || key.toString('base64') !== b64) throw new WebhookVerificationError('WEBHOOK_SECRET_INVALID', 'the secret is not whsec_ followed by base64 of at least 16 bytes');
  return key;
}

/** The `webhook-signature` value of a message: `v1,<base64 HMAC-SHA256>`. */
export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secretKey(secret)).update(`${id}.${timestampSeconds}.${body}`).digest('base64');
  return `v1,${mac}`;
}

/** The headers of one delivery attempt. */
export function webhookHeaders(secret: string, id: string, timestampSeconds: number, body: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': signWebhook(secret, id, timestampSeconds, body),
  };
}

/**
 * Verifies a received webhook: the headers are present, the timestamp within `toleranceSeconds`
 * of `now`, and one of the `v1` signatures matches (constant-time). Returns the parsed body.
 * Replays inside the tolerance window carry the same `webhook-id`: a receiver keeps the ids it
 * has processed for that long and skips repeats.
 */
export function verifyWebhook(
  secret: string,
  headers: Record<string, string | undefined> | Headers,
  body: string,
  opts: { now?: Date; toleranceSeconds?: number } = {},
): { id: string; timestamp: number; payload: unknown } {
  const get = (k: string) => (headers instanceof Headers ? (headers.get(k) ?? undefined) : headers[k]);
  const id = get('webhook-id');
  const ts = get('webhook-timestamp');
  const sig = get('webhook-signature');
  if (!id || !ts || !sig) throw new WebhookVerificationError('WEBHOOK_HEADERS_MISSING', 'webhook-id, webhook-timestamp and webhook-signature are required');
  if (!/^\d{1,12}$/.test(ts)) throw new WebhookVerificationError('WEBHOOK_TIMESTAMP_INVALID', 'webhook-timestamp is not a number of seconds');
  const timestamp = Number(ts);
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - timestamp) > (opts.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS)) {
    throw new WebhookVerificationError('WEBHOOK_TIMESTAMP_STALE', 'webhook-timestamp is too far from the current time');
  }
  const expected = Buffer.from(signWebhook(secret, id, timestamp, body).slice(3), 'base64');
  const ok = sig.split(' ').some((part) => {
    const [version, value] = part.split(',', 2);
    if (version !== 'v1' || !value) return false;
    const got = Buffer.from(value, 'base64');
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
  if (!ok) throw new WebhookVerificationError('WEBHOOK_SIGNATURE_INVALID', 'no webhook-signature matches the secret');
  return { id, timestamp, payload: JSON.parse(body) as unknown };
}
