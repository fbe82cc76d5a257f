// Reading a settlement's evidence (one JSON object, often of a million statements) as a stream:
// the members of the top-level object are parsed one by one (strict I-JSON each, no duplicate
// member names), except `attestations`, whose elements are handed over one at a time as they
// are read. The evidence is never whole in memory when `attestations` comes last, as the service
// writes it; when other members follow it, its elements are kept until they are read.
import { JsonTextError, parseJsonStrict } from '../core/json.ts';

export interface EvidenceSink {
  /** Called once, with every member but `attestations`, before the first statement is given. */
  head(head: Record<string, unknown>): void;
  /** The JSON text of the next element of `attestations` (not parsed here: the sink may parse
   *  it on another thread). */
  statement(text: string): void;
  /** Awaited after each chunk read (backpressure). */
  drain?(): Promise<void>;
}

const WS = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const HEAD_KEYS = ['type', 'settlement', 'receipt', 'plan', 'adjustments'];

/** Feeds `sink` from text chunks. Throws JsonTextError for text that is not one JSON object
 *  with an `attestations` array (or whose members are not I-JSON). */
export async function readEvidence(chunks: AsyncIterable<string>, sink: EvidenceSink): Promise<void> {
  const head: Record<string, unknown> = {};
  let held: string[] | null = null; // elements read before the head was complete
  let started = false;
  let ended = false;
  let depth = 0;
  let inString = false;
  let escape = false;
  // the current segment (a top-level member `"key": value`, or an element of the attestations
  // array): `text` holds its part from earlier chunks, `from` its start in this chunk
  let text = '';
  let from: number;
  let inArray = false;
  let sawArray = false;
  let afterArray = false; // the segment that ends the attestations member: `]` then nothing
  let sawHead = false;
  let elements = 0;

  const giveHead = () => {
    if (!sawHead) {
      sawHead = true;
      sink.head(head);
    }
  };
  const member = (raw: string) => {
    if (afterArray) {
      afterArray = false;
      if (raw.trim()) throw new JsonTextError('INVALID_JSON', 'text after the attestations array');
      return;
    }
    const obj = parseJsonStrict(`{${raw}}`) as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length !== 1) throw new JsonTextError('INVALID_JSON', 'an empty or malformed member');
    const k = keys[0]!;
    if (k === 'attestations') throw new JsonTextError('INVALID_JSON', 'attestations is not an array');
    if (Object.hasOwn(head, k)) throw new JsonTextError('DUPLICATE_KEY', `duplicate member name ${JSON.stringify(k)}`, '(root)');
    // the head went to the verifier (and its schema check) when the array began: a member after
    // it would go unchecked, and evidence has no members beyond the head's and the array
    if (sawHead) throw new JsonTextError('INVALID_JSON', `member ${JSON.stringify(k)} after the attestations array is not part of the evidence`);
    head[k] = obj[k];
  };
  const element = (raw: string, last: boolean) => {
    if (last && elements === 0 && !raw.trim()) return;
    elements++;
    if (held) held.push(raw);
    else sink.statement(raw);
  };

  for await (const chunk of chunks) {
    from = 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (inString) {
        if (escape) escape = false;
        else if (c === 0x5c) escape = true;
        else if (c === 0x22) inString = false;
        continue;
      }
      if (!started || ended) {
        if (WS(c)) continue;
        if (ended || c !== 0x7b) throw new JsonTextError('INVALID_JSON', ended ? 'text after the evidence object' : 'the evidence is not a JSON object');
        started = true;
        depth = 1;
        from = i + 1;
        continue;
      }
      if (c === 0x22) {
        inString = true;
      } else if (c === 0x7b || c === 0x5b) {
        if (depth === 1 && c === 0x5b && /^\s*"attestations"\s*:\s*$/.test(text + chunk.slice(from, i))) {
          if (sawArray) throw new JsonTextError('DUPLICATE_KEY', 'duplicate member name "attestations"', '(root)');
          sawArray = inArray = true;
          if (HEAD_KEYS.every((k) => Object.hasOwn(head, k))) giveHead();
          else held = [];
          text = '';
          from = i + 1;
        }
        depth++;
      } else if (c === 0x7d || c === 0x5d) {
        depth--;
        if (depth < 0) throw new JsonTextError('INVALID_JSON', 'unbalanced brackets');
        if (inArray && depth === 1) {
          element(text + chunk.slice(from, i), true);
          inArray = false;
          afterArray = true;
          text = '';
          from = i + 1;
        } else if (depth === 0) {
          const raw = text + chunk.slice(from, i);
          if (raw.trim() || afterArray) member(raw);
          ended = true;
          text = '';
        }
      } else if (c === 0x2c) {
        if (inArray && depth === 2) {
          element(text + chunk.slice(from, i), false);
          text = '';
          from = i + 1;
        } else if (depth === 1) {
          member(text + chunk.slice(from, i));
          text = '';
          from = i + 1;
        }
      }
    }
    if (started && !ended) {
      text += chunk.slice(from);
      if (text.length > 64 * 2 ** 20) throw new JsonTextError('INVALID_JSON', 'a member or statement of the evidence is over 64 MiB');
    }
    await sink.drain?.();
  }
  if (!ended) throw new JsonTextError('INVALID_JSON', 'the evidence ends early');
  if (!sawArray) throw new JsonTextError('INVALID_JSON', 'the evidence has no attestations array');
  giveHead();
  for (const v of held ?? []) sink.statement(v);
}
