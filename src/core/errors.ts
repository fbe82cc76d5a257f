// Coded errors of the core. Callers (HTTP, CLI, verifier) switch on `code`, never on messages.

/** Errors raised while validating or pricing input before anything is signed. */
export const CHARGE_ERROR_CODES = [
  'UNITS_OUT_OF_RANGE',
  'CUMULATIVE_OUT_OF_RANGE',
  'PRICE_OUT_OF_RANGE',
  'QUANTUM_OUT_OF_RANGE',
  'MIN_OUT_OF_RANGE',
  'MAX_OUT_OF_RANGE',
  'MIN_EXCEEDS_MAX',
  'TIERS_NOT_INCREASING',
  'TIERS_INVALID',
  'TARIFF_CLASS_MISMATCH',
  'ROUNDING_MODE_INVALID',
  'OUTCOME_INVALID',
] as const;
export type ChargeErrorCode = (typeof CHARGE_ERROR_CODES)[number];

/** The base of the core's coded errors: a code from the error's closed list, a message for
 *  people, and optionally the input field it is about. */
export class CodedError<C extends string = string> extends Error {
  constructor(
    readonly code: C,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export class ChargeError extends CodedError<ChargeErrorCode> {
  override readonly name = 'ChargeError';
}

/** Input that cannot be represented canonically (RFC 8785) or is otherwise malformed. */
export class CanonicalizationError extends Error {
  override readonly name = 'CanonicalizationError';
  readonly code = 'NOT_CANONICALIZABLE';
}
