import type { ZodError } from 'zod';
import type { ChargeError } from '../core/errors.ts';
import type { ProblemCode } from './problem-codes.ts';
// Service errors carry a stable code and an HTTP status; the HTTP layer turns them into
// problem+json (RFC 9457). Codes come from the closed list in problem-codes.ts (and docs/api.md).
export interface FieldIssue {
  readonly path: string;
  readonly message: string;
}

export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 408 | 409 | 413 | 415 | 422 | 429 | 431 | 503,
    readonly code: ProblemCode,
    message: string,
    readonly fields?: readonly FieldIssue[],
  ) {
    super(message);
  }
}

export function zodIssues(e: ZodError, prefix: string): FieldIssue[] {
  return e.issues.slice(0, 20).map((i) => ({ path: [prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(root)', message: i.message }));
}

export function chargeProblem(e: ChargeError, prefix: string): ServiceError {
  return new ServiceError(422, e.code, e.message, e.field ? [{ path: `${prefix}.${e.field}`, message: e.message }] : undefined);
}

/** A refusal for input that failed its schema: `code` as given, or NOT_NFC when an identifier was
 *  not in Unicode NFC (the one reason a client must fix by normalizing, so it has its own code). */
export function invalidInput(e: ZodError, code: ProblemCode, message: string, prefix: string): ServiceError {
  const nfc = e.issues.filter((i) => (i as { params?: { code?: string } }).params?.code === 'NOT_NFC');
  if (nfc.length) return new ServiceError(400, 'NOT_NFC', 'identifiers must be in Unicode normalization form C (NFC)', zodIssues({ issues: nfc } as ZodError, prefix));
  return new ServiceError(400, code, message, zodIssues(e, prefix));
}
/** The database is unreachable, stopped, overloaded or too slow: retry later (Retry-After). */
export const storeUnavailable = () => new ServiceError(503, 'STORE_UNAVAILABLE', 'the store is unavailable; retry later');
