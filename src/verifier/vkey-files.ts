// The committed verification keys (keys/), as vkeys.ts pins them. keys/ sits two levels above
// this module both in src/verifier and in the built dist/verifier. Read through require: JSON
// import attributes (`with { type: 'json' }`) need Node ≥ 20.10. The browser build embeds them
// instead (vkey-files.browser.ts).
import { createRequire } from 'node:module';

const requireKey = createRequire(import.meta.url);
export const v1 = requireKey('../../keys/verification_key.json') as object;
export const v2 = requireKey('../../keys/bn128-poseidon8-v2/verification_key.json') as object;
