// The dispute desk's commands: evidence export / verify, reconcile, report (docs/disputes.md).
// Packs are read line by line and written as they arrive: none is held whole.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import readline from 'node:readline';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MemoryLookup, ReconcileInputError, type ReconcileItem, type ReconcileReport, reconcile } from '../core/reconcile.ts';
import { renderAuditReport } from '../core/report.ts';
import { type AttestedLine, type EvidenceVerdict, type PinnedTrust, releaseZk, verifyEvidencePack, zkVerifier } from '../verifier/index.ts';
import { STDIN, UsageError, err, notStdin, out, parseCommand, readJsonFile } from './io.ts';

/** A file's lines (`-`: standard input), read as a stream; the digest of its bytes once read. */
function fileLines(file: string, what: string): { lines: AsyncIterable<string>; digest: () => string } {
  if (file !== STDIN && !fs.existsSync(file)) throw new UsageError(`cannot read ${what} ${file}: ENOENT`);
  const input = file === STDIN ? process.stdin : fs.createReadStream(file);
  const hash = createHash('sha256');
  input.on('data', (chunk: Buffer | string) => hash.update(chunk));
  input.on('error', () => undefined); // surfaced by readline's iteration
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  let digest: string | null = null;
  return {
    lines: (async function* () {
      try {
        for await (const l of rl) yield l;
      } catch (e) {
        throw new UsageError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
      digest = `sha256:${hash.digest('hex')}`;
    })(),
    digest: () => digest ?? '',
  };
}

/** The trust a pack is checked against: the pinned file of `--trust`, or (only when asked for with
 *  `--embedded-trust`) the keys the pack carries, which shows no more than that it is consistent
 *  with itself. Neither, or both: a usage error, so that no one relies on an unpinned pack by
 *  omission. */
function trustOf(a: ReturnType<typeof parseCommand>): string | undefined {
  const file = a.str('trust');
  const embedded = a.bool('embedded-trust');
  if (file !== undefined && embedded) throw new UsageError('give --trust <pinned.json> or --embedded-trust, not both');
  if (file === undefined && !embedded) {
    throw new UsageError("give --trust <pinned.json> (the service's GET /v1/trust, obtained out of band), or --embedded-trust to check the pack only against the keys it carries");
  }
  return file;
}

/** The verdict's last line: VALID only against pinned trust; against the pack's own keys, a pack
 *  that passes every check is only CONSISTENT WITH ITSELF. */
function verdictLine(v: EvidenceVerdict): string {
  if (!v.valid) return `INVALID (${v.code})`;
  return v.trust_source === 'pinned' ? 'VALID' : 'CONSISTENT WITH ITSELF';
}

function pinnedOf(file: string | undefined): PinnedTrust | undefined {
  if (file === undefined) return undefined;
  const t = readJsonFile(file, 'pinned trust');
  if (!t || typeof t !== 'object') throw new UsageError(`pinned trust ${file} is not a JSON object (GET /v1/trust, or {jwks, log: {verifier_key}})`);
  return t as PinnedTrust;
}

function profileOf(v: string | undefined): 'strict' | 'standard' {
  const p = v ?? 'strict';
  if (p !== 'strict' && p !== 'standard') throw new UsageError(`--profile must be strict or standard, not ${JSON.stringify(p)}`);
  return p;
}

/** Not a pack at all (its header unreadable): unusable input, exit 2. */
const unusable = (v: EvidenceVerdict) => v.scope === null && v.checks[0]?.status === 'fail';

function printVerdict(v: EvidenceVerdict): void {
  const mark = { pass: '✓', fail: '✗', skipped: '–' } as const;
  for (const c of v.checks) out(`${mark[c.status]} ${c.name.padEnd(13)} ${c.status}${c.code ? ` ${c.code}` : ''}${c.reason ? ` — ${c.reason}` : ''}`);
  for (const f of v.bundles.failures.slice(0, 20)) out(`  bundle ${f.index} ${f.statement_digest ?? ''}: ${f.check} ${f.code} — ${f.reason}`);
  for (const t of v.totals.by_currency) out(`total ${t.currency}: ${t.charge_micros} micros over ${t.events} events`);
  out(`${verdictLine(v)}: ${v.bundles.total} bundles, ${v.bundles.valid} valid; trust ${v.trust_source === 'pinned' ? 'pinned' : 'embedded in the pack, not pinned (pin the JWKS and log key with --trust to trust it)'}`);
}

async function verifyFile(file: string, opts: { trust?: string; profile?: string; onBundle?: (b: AttestedLine) => void }) {
  const pinned = pinnedOf(opts.trust);
  const src = fileLines(file, 'evidence pack');
  try {
    const verdict = await verifyEvidencePack(src.lines, { zk: zkVerifier, profile: profileOf(opts.profile), ...(pinned ? { pinned } : {}), ...(opts.onBundle ? { onBundle: opts.onBundle } : {}) });
    return { verdict, digest: src.digest() };
  } finally {
    await releaseZk();
  }
}

export async function cmdEvidence(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'verify') {
    const a = parseCommand('evidence verify', rest, 1);
    const { verdict } = await verifyFile(a.positionals[0]!, { trust: trustOf(a), profile: a.str('profile') });
    if (a.bool('json')) out(JSON.stringify(verdict, null, 2));
    else if (!unusable(verdict)) printVerdict(verdict);
    if (unusable(verdict)) {
      err(`not an evidence pack: ${verdict.checks[0]?.reason ?? 'unreadable'}`);
      return 2;
    }
    return verdict.valid ? 0 : 1;
  }
  if (sub === 'export') return exportPack(rest);
  throw new UsageError('usage: meterproof evidence export|verify … (meterproof evidence --help)');
}

async function exportPack(argv: string[]): Promise<number> {
  const a = parseCommand('evidence export', argv);
  const base = a.str('url')!.replace(/\/+$/, '');
  const token = a.str('token') ?? process.env['METERPROOF_TOKEN'];
  if (!token) throw new UsageError('give --token or set METERPROOF_TOKEN (an API key with the read scope)');
  const q = new URLSearchParams();
  const att = a.str('attestation');
  const settlement = a.str('settlement');
  const tenant = a.str('tenant');
  const window = a.str('window');
  if ([att !== undefined, settlement !== undefined, tenant !== undefined || window !== undefined].filter(Boolean).length !== 1 || (tenant === undefined) !== (window === undefined)) {
    throw new UsageError('give exactly one of --attestation <id>, --settlement <id>, or --tenant <id> with --window <id>');
  }
  if (att !== undefined) q.set('attestation_id', att);
  else if (settlement !== undefined) q.set('settlement_id', settlement);
  else {
    q.set('tenant_id', tenant!);
    q.set('window', window!);
  }
  const file = notStdin(a.str('out'), '--out');
  let res: Response;
  try {
    res = await fetch(`${base}/v1/evidence?${q}`, { headers: { authorization: `Bearer ${token}` }, redirect: 'error' });
  } catch (e) {
    throw new UsageError(`cannot reach ${base}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`);
  }
  if (!res.ok || !res.body) {
    const body = await res.text().catch(() => '');
    let detail = body.slice(0, 300);
    try {
      const p = JSON.parse(body) as { code?: string; detail?: string };
      detail = `${p.code ?? ''}: ${p.detail ?? ''}`;
    } catch {
      /* not a problem document */
    }
    throw new UsageError(`GET /v1/evidence answered ${res.status} ${detail}`);
  }
  // written as it arrives: a large window's pack is never in memory
  const sink = file ? fs.createWriteStream(file, { flags: 'wx' }) : process.stdout;
  await pipeline(res.body as unknown as NodeJS.ReadableStream, sink as Writable);
  if (file) err(`evidence pack written to ${file}; check it with: meterproof evidence verify ${file} --trust pinned.json`);
  return 0;
}

function printReconciliation(r: ReconcileReport): void {
  for (const [k, c] of Object.entries(r.categories)) out(`${k.padEnd(27)} ${String(c.count).padStart(9)}${c.amounts.length ? `  ${c.amounts.map((x) => `billed ${x.billed_micros} / attested ${x.attested_micros} ${x.currency}`).join('; ')}` : ''}`);
  for (const t of r.totals) out(`total ${t.currency}: billed ${t.billed_micros}, attested ${t.attested_micros}, difference ${t.difference_micros} micros`);
  out(`match rate ${r.match_rate_bps} bps over ${r.lines} invoice lines`);
}

/** Reconcile invoice lines offline against a pack (verified first) or through the API. */
async function reconcileWith(invoice: string, a: ReturnType<typeof parseCommand>, onItem?: (i: ReconcileItem) => void): Promise<{ report: ReconcileReport; verdict: EvidenceVerdict | null; packDigest: string | null }> {
  const packFile = a.str('pack');
  const url = a.str('url');
  if ((packFile === undefined) === (url === undefined)) throw new UsageError('give --pack <pack.ndjson> (offline) or --url <base> with --tenant and --window (the API)');
  const format = a.str('format');
  if (format !== undefined && format !== 'csv' && format !== 'ndjson' && format !== 'json') throw new UsageError('--format must be csv, ndjson or json');
  if (packFile !== undefined) {
    if (packFile === STDIN && invoice === STDIN) throw new UsageError('standard input can be given only once');
    const trust = trustOf(a);
    const lookup = new MemoryLookup();
    const { verdict, digest } = await verifyFile(packFile, {
      ...(trust === undefined ? {} : { trust }),
      profile: a.str('profile'),
      onBundle: (b) => {
        if (b.valid) lookup.add({ attestation_id: b.attestation_id, event_id: b.event_id, charge_micros: b.charge_micros, currency: b.currency });
      },
    });
    if (unusable(verdict)) throw new UsageError(`${packFile} is not an evidence pack: ${verdict.checks[0]?.reason ?? 'unreadable'}`);
    const src = fileLines(invoice, 'invoice');
    const report = await reconcile(src.lines, { lookup, maxListed: Infinity, ...(onItem ? { onItem } : {}), ...(format ? { format } : {}) });
    return { report, verdict, packDigest: digest };
  }
  const tenant = a.str('tenant');
  const window = a.str('window');
  if (!tenant || !window) throw new UsageError('with --url give --tenant and --window');
  const token = a.str('token') ?? process.env['METERPROOF_TOKEN'];
  if (!token) throw new UsageError('give --token or set METERPROOF_TOKEN (an API key with the read scope)');
  if (invoice !== STDIN && !fs.existsSync(invoice)) throw new UsageError(`cannot read invoice ${invoice}: ENOENT`);
  const type = format === 'ndjson' ? 'application/x-ndjson' : format === 'json' || invoice.endsWith('.json') ? 'application/json' : invoice.endsWith('.ndjson') ? 'application/x-ndjson' : 'text/csv';
  const body = fs.createReadStream(invoice === STDIN ? '/dev/stdin' : invoice);
  let res: Response;
  try {
    res = await fetch(`${url!.replace(/\/+$/, '')}/v1/reconcile?${new URLSearchParams({ tenant_id: tenant, window })}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': type },
      body: body as unknown as ReadableStream,
      duplex: 'half',
      redirect: 'error',
    } as RequestInit);
  } catch (e) {
    throw new UsageError(`cannot reach ${url}: ${(e as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) throw new UsageError(`POST /v1/reconcile answered ${res.status} ${text.slice(0, 300)}`);
  const report = JSON.parse(text) as ReconcileReport;
  for (const i of report.items) onItem?.(i);
  if (report.items_truncated) err(`the API lists the first ${report.items.length} discrepancies; reconcile against an evidence pack (--pack) for all`);
  return { report, verdict: null, packDigest: null };
}

export async function cmdReconcile(argv: string[]): Promise<number> {
  const a = parseCommand('reconcile', argv, 1);
  const outFile = notStdin(a.str('out'), '--out');
  let sink: fs.WriteStream | null = null;
  if (outFile) {
    try {
      sink = fs.createWriteStream(outFile, { flags: 'w' });
    } catch (e) {
      throw new UsageError(`cannot write ${outFile}: ${(e as Error).message}`);
    }
  }
  let result;
  try {
    result = await reconcileWith(a.positionals[0]!, a, sink ? (i) => void sink!.write(`${JSON.stringify(i)}\n`) : undefined);
  } catch (e) {
    if (e instanceof ReconcileInputError) throw new UsageError(`invoice ${a.positionals[0]}: ${e.message}`);
    throw e;
  } finally {
    if (sink) await new Promise<void>((res) => sink!.end(res));
  }
  const { report, verdict } = result;
  if (a.bool('json')) out(JSON.stringify(outFile ? { ...report, items: [], items_in: outFile } : report, null, 2));
  else {
    printReconciliation(report);
    if (outFile) err(`every discrepancy (one JSON object a line) written to ${outFile}`);
  }
  if (verdict?.trust_source === 'embedded') err('the pack was checked only against the keys it carries (--embedded-trust): pin them with --trust to rely on it');
  if (verdict && !verdict.valid) {
    err(`the evidence pack is INVALID (${verdict.code}): only its valid bundles were reconciled`);
    return 1;
  }
  const clean = report.categories.matched.count === report.lines && report.categories.attested_unbilled.count === 0;
  return clean ? 0 : 1;
}

export async function cmdReport(argv: string[]): Promise<number> {
  const a = parseCommand('report', argv, 1);
  const pack = a.positionals[0]!;
  const invoice = a.str('invoice');
  const trust = trustOf(a);
  let verdict: EvidenceVerdict;
  let digest: string;
  let reconciliation: ReconcileReport | null = null;
  if (invoice !== undefined) {
    const lookup = new MemoryLookup();
    ({ verdict, digest } = await verifyFile(pack, {
      ...(trust === undefined ? {} : { trust }),
      profile: a.str('profile'),
      onBundle: (b) => void (b.valid && lookup.add({ attestation_id: b.attestation_id, event_id: b.event_id, charge_micros: b.charge_micros, currency: b.currency })),
    }));
    try {
      reconciliation = await reconcile(fileLines(invoice, 'invoice').lines, { lookup, maxListed: 1000 });
    } catch (e) {
      if (e instanceof ReconcileInputError) throw new UsageError(`invoice ${invoice}: ${e.message}`);
      throw e;
    }
  } else ({ verdict, digest } = await verifyFile(pack, { ...(trust === undefined ? {} : { trust }), profile: a.str('profile') }));
  if (unusable(verdict)) throw new UsageError(`${pack} is not an evidence pack: ${verdict.checks[0]?.reason ?? 'unreadable'}`);
  const html = renderAuditReport({
    verdict,
    reconciliation,
    packFile: pack === STDIN ? 'pack.ndjson' : pack,
    packDigest: digest || null,
    trustFile: trust ?? null,
    invoiceFile: invoice ?? null,
    generator: 'meterproof report',
  });
  const file = notStdin(a.str('out'), '--out');
  if (file) {
    fs.writeFileSync(file, html);
    err(`report written to ${file} (${verdictLine(verdict)}); open it in a browser, print it for a PDF`);
  } else process.stdout.write(html);
  return verdict.valid ? 0 : 1;
}
