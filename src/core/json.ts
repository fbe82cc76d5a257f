// Strict JSON text: what every door (HTTP, CLI, verifier library) parses. I-JSON (RFC 7493 §2.3):
// object member names are unique, compared after unescaping, so {"a":1,"\u0061":2} is refused.
// JSON.parse keeps the last of duplicated names silently, so one text could mean two things.
// Pure: text in, value out or a coded error.

export type JsonTextErrorCode = 'INVALID_JSON' | 'DUPLICATE_KEY';

export class JsonTextError extends Error {
  override readonly name = 'JsonTextError';
  constructor(
    readonly code: JsonTextErrorCode,
    message: string,
    /** Where: the dotted path of the object holding the duplicate (`(root)` for the top). */
    readonly path?: string,
  ) {
    super(message);
  }
}

/**
 * Parse JSON text, refusing duplicate member names anywhere in the document. The common case
 * costs one JSON.parse plus a count: the member names in the text (found by jumping from quote
 * to quote with indexOf) against the keys of the parsed objects. Duplicates collapse in the parsed
 * value, so the counts differ exactly when the text has some; only then is the text walked again
 * to name the first one.
 */
export function parseJsonStrict(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // V8 reports running out of stack on a very deep text as a syntax error of its own
    throw new JsonTextError('INVALID_JSON', e instanceof RangeError ? `nested deeper than ${MAX_DEPTH} levels` : (e as Error).message);
  }
  if (value !== null && typeof value === 'object' && namesInText(text) !== keysInValue(value)) {
    const dup = firstDuplicate(text);
    throw new JsonTextError('DUPLICATE_KEY', `duplicate object key ${JSON.stringify(dup.key)} at ${dup.path} (RFC 7493: names must be unique)`, dup.path);
  }
  return value;
}

/** The end (index of the closing quote) of the string whose opening quote is at `start`. */
function stringEnd(text: string, start: number): number {
  let j = text.indexOf('"', start + 1);
  for (;;) {
    let k = j - 1;
    while (text.charCodeAt(k) === 92 /* \ */) k--;
    if ((j - k) % 2 === 1) return j; // an even number of backslashes before it: not escaped
    j = text.indexOf('"', j + 1);
  }
}

const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9;

/** Member names in valid JSON text: strings followed by `:`. (Outside strings a quote can only
 *  open a string.) The hot path of every request body: native indexOf jumps, no allocation. */
function namesInText(text: string): number {
  let n = 0;
  for (let i = text.indexOf('"'); i !== -1; ) {
    let j = text.indexOf('"', i + 1);
    // a quote after a backslash may be escaped: count the backslashes (an odd number escapes it)
    while (text.charCodeAt(j - 1) === 92) {
      let k = j - 1;
      while (text.charCodeAt(k) === 92) k--;
      if ((j - k) % 2 === 1) break;
      j = text.indexOf('"', j + 1);
    }
    let c = text.charCodeAt(++j);
    while (isSpace(c)) c = text.charCodeAt(++j);
    if (c === 58 /* : */) n++;
    i = text.indexOf('"', j);
  }
  return n;
}

/** The deepest nesting of objects and arrays a text may have. Far above any meterproof document
 *  (a bundle nests ~6 deep); far below what recursive consumers (structured clone to a worker,
 *  JSON.stringify, canonicalization) survive, so no text reaches them that they cannot handle. */
export const MAX_DEPTH = 128;

/** The member names of the parsed value, counted with an explicit stack (no recursion); throws
 *  INVALID_JSON past MAX_DEPTH. */
function keysInValue(root: object): number {
  let n = 0;
  const stack: unknown[] = [root];
  const depths: number[] = [1];
  while (stack.length) {
    const v = stack.pop();
    const d = depths.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > MAX_DEPTH) throw new JsonTextError('INVALID_JSON', `nested deeper than ${MAX_DEPTH} levels`);
    if (Array.isArray(v)) {
      for (const x of v) {
        if (x !== null && typeof x === 'object') {
          stack.push(x);
          depths.push(d + 1);
        }
      }
      continue;
    }
    for (const k in v) {
      n++;
      const x = (v as Record<string, unknown>)[k];
      if (x !== null && typeof x === 'object') {
        stack.push(x);
        depths.push(d + 1);
      }
    }
  }
  return n;
}

/** Walk valid JSON text that has a duplicate name and return the first one with its path. */
function firstDuplicate(text: string): { key: string; path: string } {
  // one frame per open object or array: the names seen (objects), the path, the array index
  const stack: { names: Set<string> | null; path: string; index: number; pending: string | null }[] = [];
  const child = () => {
    const top = stack.at(-1);
    if (!top) return '(root)';
    const seg = top.names ? (top.pending ?? '') : String(top.index);
    return top.path === '(root)' ? seg : `${top.path}.${seg}`;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 123 /* { */ || c === 91 /* [ */) {
      stack.push({ names: c === 123 ? new Set() : null, path: child(), index: 0, pending: null });
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      stack.pop();
    } else if (c === 44 /* , */) {
      const top = stack.at(-1);
      if (top && !top.names) top.index++;
    } else if (c === 34 /* " */) {
      const end = stringEnd(text, i);
      let j = end + 1;
      while (isSpace(text.charCodeAt(j))) j++;
      const top = stack.at(-1);
      if (top?.names && text.charCodeAt(j) === 58) {
        const key = JSON.parse(text.slice(i, end + 1)) as string; // unescaped: "\u0061" is "a"
        if (top.names.has(key)) return { key, path: top.path };
        top.names.add(key);
        top.pending = key;
      }
      i = end;
    }
  }
  throw new JsonTextError('DUPLICATE_KEY', 'duplicate object key'); // counts differed: not reached
}
