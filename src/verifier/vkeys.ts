// The verification key of each binding version, pinned in the verifier (docs/zk-binding.md §5):
// trust material may carry a key, but the proof is only ever checked under the key this verifier
// ships for the bundle's binding version. A key is named by its digest: SHA-256 over its RFC 8785
// canonical JSON, as committed in keys/. A new ceremony therefore changes the pin here, and
// test/verifier-hygiene.test.ts fails until it does.
import { digestOf } from '../core/canonical.ts';
import { VerificationError } from '../core/verify.ts';
import { type CheckedKey, verificationKeyProblem } from './groth16.ts';
import { v1, v2 } from './vkey-files.ts';

export interface Pin {
  /** `sha256:` + hex of SHA-256 over the RFC 8785 form of the key. */
  readonly digest: string;
  /** The key itself, as committed in keys/ (the verifier's own copy). */
  readonly key: object;
}

/** Binding version → its pinned verification key. One line per version. */
export const PINNED_VKEYS: Readonly<Record<string, Pin>> = deepFreeze({
  'bn128-poseidon8-v1': { digest: 'sha256:6243ee39675f5f31793428571233ae5b0b5cce7f96628e65cfbc0415a27bc9a5', key: v1 },
  'bn128-poseidon8-v2': { digest: 'sha256:c35e5d44509921e804229b845cc80a29c8a025c1dd7cfe0f0b8c9be111654702', key: v2 },
});

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** Each pinned key, checked the first time it is needed: digest, then points. */
const checked = new WeakMap<Pin, Promise<CheckedKey>>();

async function checkPinned(binding: string, pin: Pin): Promise<CheckedKey> {
  const key = deepFreeze(structuredClone(pin.key)) as Record<string, unknown>; // a copy no caller holds
  if (digestOf(key) !== pin.digest) throw new VerificationError('VKEY_INVALID', `the shipped key of ${binding} does not have its pinned digest`);
  const problem = await verificationKeyProblem(key);
  if (problem) throw new VerificationError('VKEY_INVALID', `the pinned key of ${binding}: ${problem}`);
  return key as CheckedKey;
}

function pinnedKey(binding: string, pin: Pin): Promise<CheckedKey> {
  let p = checked.get(pin);
  if (!p) {
    p = checkPinned(binding, pin);
    checked.set(pin, p);
    p.catch(() => checked.delete(pin)); // a failed check is not remembered
  }
  return p;
}

/**
 * The verification key to check a proof of `binding` with: always the pinned key of `binding`.
 * A key from the trust material must be that key (same digest) or the pinned key of another
 * binding version (trust material of a service that has moved on to a newer version); any other
 * key fails with VKEY_NOT_PINNED, and so does a binding version without a pin.
 */
export async function verificationKeyFor(binding: string, trustKey: unknown, pins: Readonly<Record<string, Pin>> = PINNED_VKEYS): Promise<CheckedKey> {
  const pin = Object.hasOwn(pins, binding) ? pins[binding] : undefined;
  if (!pin) throw new VerificationError('VKEY_NOT_PINNED', `this verifier has no pinned verification key for binding version ${JSON.stringify(binding)}`);
  if (trustKey !== undefined) {
    let digest: string;
    try {
      digest = digestOf(trustKey);
    } catch {
      digest = 'no canonical JSON form';
    }
    if (!Object.values(pins).some((p) => p.digest === digest)) {
      throw new VerificationError('VKEY_NOT_PINNED', `the trust material's verification key (${digest}) is not the pinned key of ${binding} (${pin.digest})`);
    }
  }
  return pinnedKey(binding, pin);
}
