// meterproof/consumer: the consumer's side of bilateral metering, for plain Node and the browser.
// Signs PoPs (nonce, timestamp, request payload hash) to send with an event, checks a bundle it
// receives (with the one verifier, passed in, plus "is this the PoP I sent"), and countersigns it.
// No Node built-ins here or below: Ed25519 is @noble/curves, SHA-256 @noble/hashes, randomness
// WebCrypto's getRandomValues, canonical JSON src/core/jcs.ts (RFC 8785).
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { countersignatureMessage, popMessage } from '../core/bilateral.ts';
import { canonicalString } from '../core/jcs.ts';
import { CONSUMER_POP_TYPE, COUNTERSIGNATURE_TYPE, type ConsumerPopInput, type VerificationReport } from '../core/schemas.ts';

export type { ConsumerPop, ConsumerPopInput, Countersignature } from '../core/schemas.ts';
export { popMessage, countersignatureMessage } from '../core/bilateral.ts';

const encoder = new TextEncoder();
const utf8 = (s: string) => encoder.encode(s);
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** Unpadded base64url (RFC 4648 §5). */
export function toB64Url(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromB64Url(s: string): Uint8Array {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** `sha256:<hex>` of bytes, or of a string's UTF-8. */
export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${hex(sha256(typeof data === 'string' ? utf8(data) : data))}`;
}

/** `sha256:<hex>` of the RFC 8785 canonical JSON of a value (e.g. a statement: its digest). */
export const digestOfJson = (value: unknown): string => sha256Digest(canonicalString(value));

/** A PoP nonce: 16 random bytes, base64url (22 characters). */
export function randomNonce(): string {
  return toB64Url(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}

/** The public JWK of a 32-byte Ed25519 secret key, with kid = its RFC 7638 thumbprint. */
export function publicJwkOf(secretKey: Uint8Array): { kty: 'OKP'; crv: 'Ed25519'; x: string; kid: string } {
  const x = toB64Url(ed25519.getPublicKey(secretKey));
  // RFC 7638 §3.2: the required members {crv, kty, x} in lexicographic order, no whitespace
  const kid = toB64Url(sha256(utf8(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`)));
  return { kty: 'OKP', crv: 'Ed25519', x, kid };
}

/** A new consumer key: keep `secretKey` on the consumer's side; register `publicJwk`. */
export function generateConsumerKey(): { secretKey: Uint8Array; publicJwk: ReturnType<typeof publicJwkOf> } {
  const secretKey = globalThis.crypto.getRandomValues(new Uint8Array(32));
  return { secretKey, publicJwk: publicJwkOf(secretKey) };
}

export interface ConsumerOptions {
  readonly tenantId: string;
  readonly consumerId: string;
  /** The 32-byte Ed25519 secret key (RFC 8032 seed). */
  readonly secretKey: Uint8Array;
}

export interface PopRequest {
  readonly eventId: string;
  /** The pinned tariff version's salted digest (GET /v1/tariffs/{id}/{version} → v2.tariff_digest). */
  readonly tariffDigest: string;
  /** The request payload (hashed here) or its `sha256:<hex>` hash. */
  readonly requestPayload?: Uint8Array | string;
  readonly requestPayloadHash?: string;
  /** Default: now. */
  readonly timestamp?: Date | string;
  /** Default: randomNonce(). */
  readonly nonce?: string;
}

/** A bundle as the consumer receives it (only what these helpers read). */
export interface ReceivedBundle {
  readonly attestation: { readonly statement: { readonly tenant_id: string } & Record<string, unknown> };
  readonly consumer_pop?: { readonly nonce: string; readonly signature: string; readonly consumer_id: string };
}

/** The verifier to check a bundle with: `verify` of meterproof/verifier (Node), or any function
 *  that runs the same algorithm. */
export type BundleVerifier = (bundle: unknown, trust: unknown) => Promise<VerificationReport>;

export class Consumer {
  readonly keyId: string;
  readonly publicJwk: ReturnType<typeof publicJwkOf>;

  constructor(private readonly o: ConsumerOptions) {
    if (o.secretKey.length !== 32) throw new Error('an Ed25519 secret key is 32 bytes');
    this.publicJwk = publicJwkOf(o.secretKey);
    this.keyId = this.publicJwk.kid;
  }

  private sign(message: unknown): string {
    return toB64Url(ed25519.sign(utf8(canonicalString(message)), this.o.secretKey));
  }

  /** The `consumer_pop` to send with the event (POST /v1/attest). */
  signPop(r: PopRequest): ConsumerPopInput {
    const hash = r.requestPayloadHash ?? (r.requestPayload !== undefined ? sha256Digest(r.requestPayload) : undefined);
    if (!hash) throw new Error('give requestPayload or requestPayloadHash');
    const ts = r.timestamp === undefined ? new Date().toISOString() : typeof r.timestamp === 'string' ? r.timestamp : r.timestamp.toISOString();
    const fields = {
      tenant_id: this.o.tenantId,
      consumer_id: this.o.consumerId,
      key_id: this.keyId,
      event_id: r.eventId,
      tariff_digest: r.tariffDigest,
      request_payload_hash: hash,
      timestamp: ts,
      nonce: r.nonce ?? randomNonce(),
    };
    const signature = this.sign(popMessage(fields));
    return { consumer_id: fields.consumer_id, key_id: fields.key_id, timestamp: fields.timestamp, nonce: fields.nonce, request_payload_hash: hash, tariff_digest: fields.tariff_digest, signature };
  }

  /**
   * Check a received bundle before countersigning: the verifier's report (every check, the
   * consumer's PoP and the operator's signature among them), and, when `sent` is given, that the
   * bundle carries that very PoP (not another one of this consumer's). `problems` is empty when
   * the bundle may be countersigned.
   */
  async check(bundle: ReceivedBundle, trust: unknown, verifier: BundleVerifier, sent?: ConsumerPopInput): Promise<{ ok: boolean; report: VerificationReport; problems: string[] }> {
    const report = await verifier(bundle, trust);
    const problems = report.checks.filter((c) => c.status === 'fail').map((c) => `${c.name}: ${c.code ?? 'failed'}${c.reason ? ` (${c.reason})` : ''}`);
    if (!report.valid && !problems.length) problems.push('the verifier does not accept the bundle');
    if (bundle.attestation.statement.tenant_id !== this.o.tenantId) problems.push(`the statement is of tenant ${bundle.attestation.statement.tenant_id}`);
    if (sent) {
      const pop = bundle.consumer_pop;
      if (!pop || pop.consumer_id !== this.o.consumerId || pop.nonce !== sent.nonce || pop.signature !== sent.signature) problems.push('the bundle does not carry the PoP this consumer sent');
    }
    return { ok: problems.length === 0, report, problems };
  }

  /** The countersignature of a bundle's statement: the body of POST
   *  /v1/attestations/{id}/countersignatures ({consumer_id, key_id, signed_at, signature}). */
  countersign(bundle: ReceivedBundle, signedAt: Date | string = new Date()): { consumer_id: string; key_id: string; signed_at: string; signature: string } {
    const signed_at = typeof signedAt === 'string' ? signedAt : signedAt.toISOString();
    const statement = bundle.attestation.statement;
    const fields = { tenant_id: statement.tenant_id, consumer_id: this.o.consumerId, key_id: this.keyId, statement_digest: digestOfJson(statement), signed_at };
    return { consumer_id: fields.consumer_id, key_id: fields.key_id, signed_at, signature: this.sign(countersignatureMessage(fields)) };
  }
}

/** Verify an Ed25519 signature (base64url) over a PoP or countersignature message with a
 *  consumer's public key x (base64url): for tools that hold no verifier. Strict per noble's
 *  defaults (canonical S, ZIP-215 off). */
export function verifyConsumerSignature(x: string, message: unknown, signature: string): boolean {
  try {
    return ed25519.verify(fromB64Url(signature), utf8(canonicalString(message)), fromB64Url(x), { zip215: false });
  } catch {
    return false;
  }
}

export { CONSUMER_POP_TYPE, COUNTERSIGNATURE_TYPE };
