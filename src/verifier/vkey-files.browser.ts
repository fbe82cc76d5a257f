// vkey-files.ts for browsers: the same committed keys, embedded in the page by the bundler
// (scripts/build-verifier.mjs). vkeys.ts checks their pinned digests before first use either way.
import v1Json from '../../keys/verification_key.json' with { type: 'json' };
import v2Json from '../../keys/bn128-poseidon8-v2/verification_key.json' with { type: 'json' };

export const v1: object = v1Json;
export const v2: object = v2Json;
