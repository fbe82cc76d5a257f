// Transparency-log checks (inclusion, checkpoint signature, consistency) over core Merkle maths.
// Filled in by the transparency log; until then those checks report `skipped`.
import type { LogVerifier } from '../core/verify.ts';

export const logVerifier: LogVerifier | undefined = undefined;
