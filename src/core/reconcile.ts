// Reconciliation of invoice lines against attested charges (docs/disputes.md): each invoice line
// names an event id or an attestation id, a billed amount and a currency; each is matched to the
// attested charge, and every attested charge nobody billed is reported too. Pure: lines in (an
// async iterable, so any size streams), a lookup of attested charges injected, a report out.
// Money is exact integer micros (bigint): an amount is given in micros, or as a decimal of the
// currency's major unit with at most 6 fractional digits, parsed digit by digit (never a float).

import { JsonTextError, parseJsonStrict } from './json.ts';

/** An attested charge: what an invoice line is checked against. */
export interface AttestedCharge {
  /** The attestation id (the statement digest's 64 hex digits). */
  readonly attestation_id: string;
  /** The meter event's id (null where the bundle was redacted). */
  readonly event_id: string | null;
  readonly charge_micros: bigint;
  readonly currency: string;
}

export type RefKind = 'event_id' | 'attestation_id';

/** Where the attested charges come from: an evidence pack read in memory, or the store. */
export interface AttestedLookup {
  /** The attested charges of these references (key `${kind}:${ref}`); unknown ones are absent. */
  find(refs: readonly { readonly kind: RefKind; readonly ref: string }[]): Promise<ReadonlyMap<string, AttestedCharge>> | ReadonlyMap<string, AttestedCharge>;
  /** Every attested charge in scope, once each (for "attested but unbilled"). */
  all(): AsyncIterable<AttestedCharge> | Iterable<AttestedCharge>;
}

export const RECONCILE_CATEGORIES = ['matched', 'amount_mismatch', 'billed_without_attestation', 'attested_unbilled', 'duplicate', 'invalid'] as const;
export type ReconcileCategory = (typeof RECONCILE_CATEGORIES)[number];

/** One invoice line or attested charge that did not match (or, with `listMatched`, did). */
export interface ReconcileItem {
  readonly category: ReconcileCategory;
  /** 1-based line of the input (the CSV header is line 1); null for attested_unbilled. */
  readonly line: number | null;
  readonly ref: string | null;
  readonly ref_kind: RefKind | null;
  readonly attestation_id: string | null;
  readonly billed_micros: string | null;
  readonly attested_micros: string | null;
  readonly currency: string | null;
  readonly reason?: string;
}

export interface CategoryTotals {
  readonly count: number;
  /** Per currency, billed and attested micros of the category's lines (decimal strings). */
  readonly amounts: readonly { readonly currency: string; readonly billed_micros: string; readonly attested_micros: string }[];
}

export interface ReconcileReport {
  readonly type: 'meterproof/reconciliation/v1';
  readonly lines: number;
  readonly categories: Readonly<Record<ReconcileCategory, CategoryTotals>>;
  /** Per currency: everything billed, everything attested in scope, billed − attested. */
  readonly totals: readonly { readonly currency: string; readonly billed_micros: string; readonly attested_micros: string; readonly difference_micros: string }[];
  /** ⌊matched × 10000 / (invoice lines + attested_unbilled)⌋; 10000 when both are empty. */
  readonly match_rate_bps: number;
  /** The unmatched items, in input order then attested order, at most `maxListed`. */
  readonly items: readonly ReconcileItem[];
  /** Whether items were left out (the counts cover all). */
  readonly items_truncated: boolean;
}

export interface ReconcileOptions {
  readonly lookup: AttestedLookup;
  /** Input format: csv (header line, then one line each), ndjson (one JSON object a line) or json (one array). Default: from the first non-blank character. */
  readonly format?: 'csv' | 'ndjson' | 'json';
  /** Most items kept in the report (default 1000; Infinity keeps all). */
  readonly maxListed?: number;
  /** Called for every unmatched item, listed or not (the CLI writes them all to a file). */
  readonly onItem?: (item: ReconcileItem) => void;
  /** Lines looked up at once (default 1000). */
  readonly batch?: number;
}

/** An input that cannot be read at all (no header, no amount column…): the caller answers 400 / exit 2. */
export class ReconcileInputError extends Error {
  override readonly name = 'ReconcileInputError';
}

const MICROS = /^(0|[1-9][0-9]{0,19})$/;
const DECIMAL = /^(0|[1-9][0-9]{0,13})(?:\.([0-9]{1,6}))?$/;
const U64_MAX = (1n << 64n) - 1n;
const CURRENCY = /^[A-Z]{3}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** Exact micros from `billed_micros` (an integer) or `amount` (a decimal of the major unit, ≤ 6 fractional digits). */
export function parseMicros(micros: unknown, amount: unknown): bigint {
  if (micros !== undefined && micros !== null && micros !== '') {
    const s = typeof micros === 'number' && Number.isSafeInteger(micros) ? String(micros) : micros;
    if (typeof s !== 'string' || !MICROS.test(s) || BigInt(s) > U64_MAX) throw new Error('billed_micros is not a non-negative integer (uint64)');
    return BigInt(s);
  }
  if (typeof amount !== 'string' || !DECIMAL.test(amount)) {
    throw new Error(typeof amount === 'number' ? 'amount must be a decimal string (a JSON number may have lost digits)' : 'amount is not a decimal with at most 6 fractional digits');
  }
  const m = DECIMAL.exec(amount)!;
  return BigInt(m[1]!) * 1_000_000n + BigInt((m[2] ?? '').padEnd(6, '0'));
}

/** One CSV record (RFC 4180 quoting, no line break inside a field). */
export function splitCsv(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new Error('an unterminated quoted field');
        field += line.slice(i, q);
        if (line[q + 1] === '"') {
          field += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      if (i < line.length && line[i] !== ',') throw new Error('text after a quoted field');
    } else {
      const c = line.indexOf(',', i);
      field = line.slice(i, c < 0 ? line.length : c);
      i = c < 0 ? line.length : c;
    }
    out.push(field);
    if (i >= line.length) return out;
    i++; // the comma
  }
}

interface Parsed {
  readonly line: number;
  readonly kind: RefKind;
  readonly ref: string;
  readonly micros: bigint;
  readonly currency: string;
}

/** An invoice line's fields (CSV columns or JSON members) → a parsed line, or the reason it is invalid. */
function parseFields(line: number, f: Record<string, unknown>): Parsed | string {
  const att = f['attestation_id'];
  const ev = f['event_id'];
  let kind: RefKind;
  let ref: string;
  if (att !== undefined && att !== null && att !== '') {
    if (typeof att !== 'string') return 'attestation_id is not a string';
    ref = att.startsWith('sha256:') ? att.slice(7) : att;
    if (!HEX64.test(ref)) return 'attestation_id is not 64 lowercase hex digits (or sha256:<hex>)';
    kind = 'attestation_id';
  } else if (typeof ev === 'string' && ev !== '') {
    ref = ev;
    kind = 'event_id';
  } else return 'neither event_id nor attestation_id';
  const currency = f['currency'];
  if (typeof currency !== 'string' || !CURRENCY.test(currency)) return 'currency is not three capital letters (ISO 4217)';
  try {
    return { line, kind, ref, micros: parseMicros(f['billed_micros'], f['amount']), currency };
  } catch (e) {
    return (e as Error).message;
  }
}

async function* linesOf(input: AsyncIterable<string> | Iterable<string>): AsyncGenerator<string> {
  for await (const l of input as AsyncIterable<string>) yield l.endsWith('\r') ? l.slice(0, -1) : l;
}

/** The invoice lines as parsed records (or invalid lines), whatever the format. */
async function* records(input: AsyncIterable<string> | Iterable<string>, format: ReconcileOptions['format']): AsyncGenerator<Parsed | { line: number; invalid: string; raw: string }> {
  let n = 0;
  let fmt = format;
  let columns: string[] | null = null;
  let jsonText: string[] | null = null;
  for await (const raw of linesOf(input)) {
    n++;
    if (raw.trim() === '') continue;
    if (!fmt) fmt = raw.trimStart().startsWith('[') ? 'json' : raw.trimStart().startsWith('{') ? 'ndjson' : 'csv';
    if (fmt === 'json') {
      (jsonText ??= []).push(raw);
      continue;
    }
    if (fmt === 'ndjson') {
      let v: unknown;
      try {
        v = parseJsonStrict(raw);
      } catch (e) {
        // a duplicate member name makes the line mean two things: invalid, never matched
        yield { line: n, invalid: e instanceof JsonTextError && e.code === 'DUPLICATE_KEY' ? e.message : 'not a JSON object', raw };
        continue;
      }
      const p = v && typeof v === 'object' && !Array.isArray(v) ? parseFields(n, v as Record<string, unknown>) : 'not a JSON object';
      yield typeof p === 'string' ? { line: n, invalid: p, raw } : p;
      continue;
    }
    let cells: string[];
    try {
      cells = splitCsv(raw);
    } catch (e) {
      if (!columns) throw new ReconcileInputError(`the CSV header: ${(e as Error).message}`);
      yield { line: n, invalid: (e as Error).message, raw };
      continue;
    }
    if (!columns) {
      columns = cells.map((c) => c.trim().toLowerCase());
      if (!columns.includes('event_id') && !columns.includes('attestation_id')) throw new ReconcileInputError('the CSV header names neither event_id nor attestation_id');
      if (!columns.includes('billed_micros') && !columns.includes('amount')) throw new ReconcileInputError('the CSV header names neither billed_micros nor amount');
      if (!columns.includes('currency')) throw new ReconcileInputError('the CSV header names no currency column');
      continue;
    }
    const f: Record<string, string> = {};
    columns.forEach((c, i) => (f[c] = (cells[i] ?? '').trim()));
    const p = parseFields(n, f);
    yield typeof p === 'string' ? { line: n, invalid: p, raw } : p;
  }
  if (jsonText) {
    let arr: unknown;
    try {
      arr = parseJsonStrict(jsonText.join('\n'));
    } catch (e) {
      throw new ReconcileInputError(e instanceof JsonTextError && e.code === 'DUPLICATE_KEY' ? `the JSON input has a ${e.message}` : `the JSON input is not JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(arr)) throw new ReconcileInputError('the JSON input is not an array of invoice lines');
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i] as unknown;
      const p = v && typeof v === 'object' && !Array.isArray(v) ? parseFields(i + 1, v as Record<string, unknown>) : 'not a JSON object';
      yield typeof p === 'string' ? { line: i + 1, invalid: p, raw: JSON.stringify(v) ?? '' } : p;
    }
  }
}

class Sums {
  count = 0;
  readonly by = new Map<string, { billed: bigint; attested: bigint }>();
  add(currency: string, billed: bigint, attested: bigint) {
    this.count++;
    if (!currency) return; // an invalid line: counted, no amount
    const a = this.by.get(currency) ?? { billed: 0n, attested: 0n };
    a.billed += billed;
    a.attested += attested;
    this.by.set(currency, a);
  }
  view(): CategoryTotals {
    return { count: this.count, amounts: [...this.by.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([currency, a]) => ({ currency, billed_micros: a.billed.toString(), attested_micros: a.attested.toString() })) };
  }
}

/**
 * Reconcile invoice lines against attested charges. Each line is one of: matched (same amount and
 * currency), amount_mismatch (another amount or currency), billed_without_attestation (no such
 * event or attestation in scope), duplicate (a reference billed by an earlier line already), or
 * invalid (unreadable); then every attested charge no line named is attested_unbilled.
 */
export async function reconcile(input: AsyncIterable<string> | Iterable<string>, opts: ReconcileOptions): Promise<ReconcileReport> {
  const maxListed = opts.maxListed ?? 1000;
  const batchSize = opts.batch ?? 1000;
  const sums = Object.fromEntries(RECONCILE_CATEGORIES.map((c) => [c, new Sums()])) as Record<ReconcileCategory, Sums>;
  const billedTotal = new Map<string, bigint>();
  const attestedTotal = new Map<string, bigint>();
  const billedIds = new Set<string>(); // attestation ids some line matched
  const items: ReconcileItem[] = [];
  let truncated = false;
  let lines = 0;
  const emit = (item: ReconcileItem) => {
    opts.onItem?.(item);
    if (items.length < maxListed) items.push(item);
    else truncated = true;
  };
  const add = (m: Map<string, bigint>, c: string, v: bigint) => m.set(c, (m.get(c) ?? 0n) + v);

  let batch: Parsed[] = [];
  const flush = async () => {
    if (!batch.length) return;
    const found = await opts.lookup.find(batch.map((p) => ({ kind: p.kind, ref: p.ref })));
    for (const p of batch) {
      const a = found.get(`${p.kind}:${p.ref}`);
      const base = { line: p.line, ref: p.ref, ref_kind: p.kind, billed_micros: p.micros.toString(), currency: p.currency };
      if (!a) {
        sums.billed_without_attestation.add(p.currency, p.micros, 0n);
        emit({ category: 'billed_without_attestation', ...base, attestation_id: null, attested_micros: null });
      } else if (billedIds.has(a.attestation_id)) {
        sums.duplicate.add(p.currency, p.micros, 0n);
        emit({ category: 'duplicate', ...base, attestation_id: a.attestation_id, attested_micros: a.charge_micros.toString(), reason: 'billed by an earlier line already' });
      } else {
        billedIds.add(a.attestation_id);
        if (a.charge_micros === p.micros && a.currency === p.currency) sums.matched.add(p.currency, p.micros, a.charge_micros);
        else {
          sums.amount_mismatch.add(p.currency, p.micros, a.charge_micros);
          const reason = a.currency !== p.currency ? `billed in ${p.currency}, attested in ${a.currency}` : `billed ${p.micros - a.charge_micros > 0n ? '+' : ''}${p.micros - a.charge_micros} micros against the attested charge`;
          emit({ category: 'amount_mismatch', ...base, attestation_id: a.attestation_id, attested_micros: a.charge_micros.toString(), currency: p.currency, reason });
        }
      }
    }
    batch = [];
  };

  for await (const r of records(input, opts.format)) {
    lines++;
    if ('invalid' in r) {
      sums.invalid.add('', 0n, 0n);
      emit({ category: 'invalid', line: r.line, ref: null, ref_kind: null, attestation_id: null, billed_micros: null, attested_micros: null, currency: null, reason: r.invalid });
      continue;
    }
    add(billedTotal, r.currency, r.micros);
    batch.push(r);
    if (batch.length >= batchSize) await flush();
  }
  await flush();

  for await (const a of opts.lookup.all() as AsyncIterable<AttestedCharge>) {
    add(attestedTotal, a.currency, a.charge_micros);
    if (billedIds.has(a.attestation_id)) continue;
    sums.attested_unbilled.add(a.currency, 0n, a.charge_micros);
    emit({ category: 'attested_unbilled', line: null, ref: a.event_id ?? a.attestation_id, ref_kind: a.event_id !== null ? 'event_id' : 'attestation_id', attestation_id: a.attestation_id, billed_micros: null, attested_micros: a.charge_micros.toString(), currency: a.currency });
  }

  const currencies = [...new Set([...billedTotal.keys(), ...attestedTotal.keys()])].sort();
  const denominator = lines + sums.attested_unbilled.count;
  return {
    type: 'meterproof/reconciliation/v1',
    lines,
    categories: Object.fromEntries(RECONCILE_CATEGORIES.map((c) => [c, sums[c].view()])) as Record<ReconcileCategory, CategoryTotals>,
    totals: currencies.map((currency) => {
      const billed = billedTotal.get(currency) ?? 0n;
      const attested = attestedTotal.get(currency) ?? 0n;
      return { currency, billed_micros: billed.toString(), attested_micros: attested.toString(), difference_micros: (billed - attested).toString() };
    }),
    match_rate_bps: denominator === 0 ? 10_000 : Number((BigInt(sums.matched.count) * 10_000n) / BigInt(denominator)),
    items,
    items_truncated: truncated,
  };
}

/** An in-memory lookup (an evidence pack's bundles, collected with verifyEvidencePack's onBundle). */
export class MemoryLookup implements AttestedLookup {
  private readonly byEvent = new Map<string, AttestedCharge>();
  private readonly byId = new Map<string, AttestedCharge>();
  add(a: AttestedCharge): void {
    this.byId.set(a.attestation_id, a);
    if (a.event_id !== null) this.byEvent.set(a.event_id, a);
  }
  get size(): number {
    return this.byId.size;
  }
  find(refs: readonly { kind: RefKind; ref: string }[]): ReadonlyMap<string, AttestedCharge> {
    const out = new Map<string, AttestedCharge>();
    for (const r of refs) {
      const a = r.kind === 'event_id' ? this.byEvent.get(r.ref) : this.byId.get(r.ref);
      if (a) out.set(`${r.kind}:${r.ref}`, a);
    }
    return out;
  }
  all(): Iterable<AttestedCharge> {
    return this.byId.values();
  }
}
