// Unsigned 64-bit integers carried as canonical decimal strings ("0", "1842"; no sign, no
// leading zeros, < 2^64). Input may also use a JSON number when it is a safe integer.
import { z } from 'zod';

export const U64_MAX = 2n ** 64n - 1n;
const DECIMAL = /^(0|[1-9][0-9]{0,19})$/;

export function isU64String(s: unknown): s is string {
  return typeof s === 'string' && DECIMAL.test(s) && BigInt(s) <= U64_MAX;
}

/** Strict: canonical decimal string < 2^64 (the form inside bundles and statements). */
export const u64String = z
  .string()
  .refine(isU64String, { message: 'expected an unsigned 64-bit integer as a canonical decimal string' });

/** Lenient input form: a safe non-negative JSON integer or a canonical decimal string → string. */
export const u64Input = z
  .union([z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), z.string()])
  .transform((v, ctx) => {
    const s = typeof v === 'number' ? String(v) : v;
    if (!isU64String(s)) {
      ctx.addIssue({ code: 'custom', message: 'expected an unsigned 64-bit integer (0 ≤ n < 2^64) as a decimal string or safe JSON integer' });
      return z.NEVER;
    }
    return s;
  });

export const toBig = (s: string): bigint => BigInt(s);
