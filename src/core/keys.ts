// Ed25519 keys as JWKs: key_id = RFC 7638 thumbprint, JWKS entries with validity windows, and
// the signer that produces statement signatures (Ed25519 over RFC 8785 canonical bytes).
import { z } from 'zod';
import { fromB64Url, sha256, toB64Url, utf8 } from './bytes.ts';
import { canonicalBytes } from './canonical.ts';
import { ed25519Signer, ed25519Verify, generateEd25519, publicKeyFromSeed } from './ed25519.ts';
import { utcTimestamp } from './schemas.ts';

const b64url32 = z.string().refine((s) => fromB64Url(s)?.length === 32, { message: 'expected 32 bytes in base64url' });

/** A public signing key as published in the JWKS. `valid_from`/`valid_until` bound the
 *  statement `issued_at` times it may sign (until null = still current). */
export const PublicJwk = z.strictObject({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: b64url32,
  kid: z.string().min(1),
  use: z.literal('sig').optional(),
  alg: z.literal('EdDSA').optional(),
  valid_from: utcTimestamp,
  valid_until: utcTimestamp.nullable().optional(),
});
export type PublicJwk = z.infer<typeof PublicJwk>;

export const Jwks = z.strictObject({ keys: z.array(PublicJwk).max(1000) });
export type Jwks = z.infer<typeof Jwks>;

/** Private key file (data directory only, mode 0600; never in git). */
export const PrivateJwk = z.strictObject({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: b64url32,
  d: b64url32,
  kid: z.string().min(1),
  created_at: utcTimestamp.optional(),
});
export type PrivateJwk = z.infer<typeof PrivateJwk>;

/** RFC 7638 §3.2: thumbprint over the required members {crv, kty, x} in lexicographic order. */
export function jwkThumbprint(publicKey: Uint8Array): string {
  const json = `{"crv":"Ed25519","kty":"OKP","x":"${toB64Url(publicKey)}"}`;
  return toB64Url(sha256(utf8(json)));
}

export interface SigningKey {
  readonly keyId: string;
  readonly publicKey: Uint8Array;
  readonly sign: (msg: Uint8Array) => Uint8Array;
  /** The private JWK, for writing to the data directory. */
  readonly privateJwk: PrivateJwk;
}

export function signingKeyFromSeed(seed: Uint8Array, createdAt?: string): SigningKey {
  const publicKey = publicKeyFromSeed(seed);
  const keyId = jwkThumbprint(publicKey);
  return {
    keyId,
    publicKey,
    sign: ed25519Signer(seed),
    privateJwk: {
      kty: 'OKP',
      crv: 'Ed25519',
      x: toB64Url(publicKey),
      d: toB64Url(seed),
      kid: keyId,
      ...(createdAt ? { created_at: createdAt } : {}),
    },
  };
}

export function generateSigningKey(createdAt = new Date().toISOString()): SigningKey {
  return signingKeyFromSeed(generateEd25519().seed, createdAt);
}

/** Load a private JWK; the kid and x must match the seed (a corrupted file is an error). */
export function signingKeyFromJwk(input: unknown): SigningKey {
  const jwk = PrivateJwk.parse(input);
  const key = signingKeyFromSeed(fromB64Url(jwk.d)!, jwk.created_at);
  if (key.privateJwk.x !== jwk.x || key.keyId !== jwk.kid) throw new Error('private key file is inconsistent: x/kid do not match d');
  return key;
}

export function publicJwk(key: { publicKey: Uint8Array; keyId: string }, validFrom: string, validUntil: string | null = null): PublicJwk {
  return { kty: 'OKP', crv: 'Ed25519', x: toB64Url(key.publicKey), kid: key.keyId, use: 'sig', alg: 'EdDSA', valid_from: validFrom, valid_until: validUntil };
}

/** Sign the RFC 8785 canonical bytes of an object; returns base64url. */
export function signObject(key: SigningKey, obj: unknown): string {
  return toB64Url(key.sign(canonicalBytes(obj)));
}

/** The signature path of the bundle verifier: JWK (x must hash to kid), base64url signature,
 *  strict Ed25519 over `msg`. Never throws. */
export function verifyBytes(jwk: PublicJwk, msg: Uint8Array, signature: string): boolean {
  try {
    const pub = fromB64Url(jwk.x);
    const sig = fromB64Url(signature);
    if (!pub || !sig) return false;
    if (jwkThumbprint(pub) !== jwk.kid) return false;
    return ed25519Verify(pub, msg, sig);
  } catch {
    return false;
  }
}

/** Verify a base64url signature over the canonical bytes of `obj`. Never throws. */
export function verifyObject(jwk: PublicJwk, obj: unknown, signature: string): boolean {
  try {
    return verifyBytes(jwk, canonicalBytes(obj), signature);
  } catch {
    return false;
  }
}
