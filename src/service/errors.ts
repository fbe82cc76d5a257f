import type { ZodError } from 'zod';
import type { ChargeError } from '../core/errors.ts';
// Service errors carry a stable code and an HTTP status; the HTTP layer turns them into
// problem+json (RFC 9457). Codes are listed in docs/api.md.
export interface FieldIssue {
  readonly path: string;
  readonly message: string;
}

export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 408 | 409 | 413 | 415 | 422 | 429 | 431 | 503,
    readonly code: string,
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
