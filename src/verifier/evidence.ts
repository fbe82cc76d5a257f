// Evidence packs (docs/protocol.md §6): one self-contained, line-oriented file for an attestation,
// a billing window or a settlement — the bundles, a snapshot of the trust material, a recent log
// checkpoint with a consistency proof from each receipt's checkpoint to it, the settlement where
// there is one, and a manifest signed by the service that closes the pack. Pure: lines in, a
// verdict out. No file, network or thread here (the same module runs in a browser bundle): the
// Groth16 checks are injected (`options.zk`), the rest reuses the bundle, log and settlement
// verifiers. Fail closed: any exception fails a check; a failure never reports valid.
import { z } from 'zod';
import { digestOf } from '../core/canonical.ts';
import { sha256Hex } from '../core/bytes.ts';
import { JsonTextError, parseJsonStrict } from '../core/json.ts';
import { Jwks, type PublicJwk, verifyObject } from '../core/keys.ts';
import { Plan } from '../core/plan.ts';
import { Digest, type FullBundle, Receipt, utcTimestamp, ident, type Bundle, type CheckResult, type Statement } from '../core/schemas.ts';
import { SETTLEMENT_EVIDENCE_TYPE, verifySettlement, type SettlementReport } from '../core/settlement-verify.ts';
import { TrustMaterial } from '../core/trust.ts';
import { type Profile, type ZkVerifier, VerificationError, keyValidAt, verifyBundle } from '../core/verify.ts';
import { logVerifier } from './log.ts';

export const EVIDENCE_PACK_TYPE = 'meterproof/evidence-pack/v1';
export const EVIDENCE_MANIFEST_TYPE = 'meterproof/evidence-manifest/v1';
/** What a verifier must obtain out of band (not from the pack) to trust a pack's verdict. */
export const PIN_OUT_OF_BAND = ['log.verifier_key', 'jwks'] as const;
/** Most bundle failures listed in a verdict (the counts cover all). */
export const MAX_LISTED_FAILURES = 100;
/** The value `statements_digest` starts from (no statement yet). */
export const STATEMENTS_DIGEST_EMPTY = `sha256:${'0'.repeat(64)}`;

/** The rolling digest over the statement digests, in pack order: d' = sha256(d ‖ "\n" ‖ statement_digest). */
export function nextStatementsDigest(previous: string, statementDigest: string): string {
  return `sha256:${sha256Hex(`${previous}\n${statementDigest}`)}`;
}

const u64 = z.string().regex(/^(0|[1-9][0-9]{0,19})$/);
const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);

export const EvidenceScope = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('attestation'), tenant_id: ident, attestation_id: z.string().regex(/^[0-9a-f]{64}$/) }),
  z.strictObject({ kind: z.literal('window'), tenant_id: ident, billing_window_id: ident, consumer_id: ident.optional() }),
  z.strictObject({ kind: z.literal('settlement'), tenant_id: ident, billing_window_id: ident, settlement_id: z.string().min(1).max(256) }),
]);
export type EvidenceScope = z.infer<typeof EvidenceScope>;

export const EvidenceHeader = z.strictObject({
  type: z.literal(EVIDENCE_PACK_TYPE),
  scope: EvidenceScope,
  created_at: utcTimestamp,
  /** Always PIN_OUT_OF_BAND: the embedded copies of these prove nothing by themselves. */
  pin_out_of_band: z.array(z.string()).max(16),
  /** GET /v1/trust at created_at, without log.trusted_checkpoint. */
  trust: TrustMaterial,
  /** The signed log checkpoint every receipt of the pack is proved consistent with. */
  checkpoint: z.string().min(1),
});
export type EvidenceHeader = z.infer<typeof EvidenceHeader>;

export const EvidenceBundleLine = z.strictObject({
  bundle: z.unknown(),
  /** RFC 9162 consistency proof between the bundle receipt's tree size and the pack checkpoint's. */
  consistency_proof: z.array(b64).max(128),
});

export const EvidenceSettlementLine = z.strictObject({
  settlement: z.strictObject({
    settlement: z.strictObject({ statement: z.record(z.string(), z.unknown()), statement_digest: Digest, key_id: z.string().min(1), signature: z.string().min(1) }),
    receipt: Receipt.nullable(),
    plan: Plan,
    /** The signed adjustments the settlement claims (absent: none). */
    adjustments: z.array(z.unknown()).max(100_000).optional(),
  }),
  consistency_proof: z.array(b64).max(128),
});

export const EvidenceManifest = z.strictObject({
  type: z.literal(EVIDENCE_MANIFEST_TYPE),
  /** digestOf(header line's value). */
  header_digest: Digest,
  /** Bundle lines in the pack. */
  count: u64,
  /** The rolling digest of the bundles' statement digests (nextStatementsDigest), in pack order. */
  statements_digest: Digest,
  /** Window and settlement packs: every chain of the scope and its number of statements. */
  chains: z.array(z.strictObject({ id: Digest, count: u64 })).max(1_000_000),
  /** The settlement's statement digest (settlement packs). */
  settlement_digest: Digest.nullable(),
  created_at: utcTimestamp,
});
export type EvidenceManifest = z.infer<typeof EvidenceManifest>;

export const EvidenceTrailer = z.strictObject({
  manifest: EvidenceManifest,
  key_id: z.string().min(1),
  signature: z.string().min(1),
});
export type EvidenceTrailer = z.infer<typeof EvidenceTrailer>;

export const EVIDENCE_CHECKS = ['format', 'pinned_trust', 'manifest', 'bundles', 'scope', 'chains', 'settlement'] as const;
export type EvidenceCheck = (typeof EVIDENCE_CHECKS)[number];

/** The closed list of codes a pack-level check fails with (bundle checks add the bundle verifier's codes, settlement checks the settlement verifier's). */
export const EVIDENCE_CODES = [
  'PACK_MALFORMED',
  'PACK_TRUNCATED',
  'PINNED_TRUST_INVALID',
  'PINNED_LOG_KEY_MISMATCH',
  'PINNED_JWKS_MISMATCH',
  'MANIFEST_SIGNATURE_INVALID',
  'PACK_INCOMPLETE',
  'SCOPE_MISMATCH',
  'CHAIN_GAP',
  'SETTLEMENT_MISSING',
  'CONSISTENCY_INVALID',
  'CHECK_SKIPPED',
  'INTERNAL_ERROR',
] as const;

export interface EvidenceCheckResult {
  readonly name: EvidenceCheck;
  readonly status: 'pass' | 'fail' | 'skipped';
  readonly code?: string;
  readonly reason?: string;
}

export interface BundleFailure {
  readonly index: number;
  readonly statement_digest: string | null;
  readonly check: string;
  readonly code: string;
  readonly reason: string;
}

export interface Amount {
  readonly key: string;
  readonly currency: string;
  readonly events: number;
  readonly charge_micros: string;
}

/** One attested line of the pack, as handed to `onBundle` (reconciliation builds its lookup from these). */
export interface AttestedLine {
  readonly index: number;
  /** The attestation id: the statement digest's hex. */
  readonly attestation_id: string;
  /** meter_event.event_id (full bundles only). */
  readonly event_id: string | null;
  readonly charge_micros: bigint;
  readonly currency: string;
  readonly valid: boolean;
}

export interface EvidenceVerdict {
  readonly valid: boolean;
  readonly type: typeof EVIDENCE_PACK_TYPE;
  /** The code of the first failed check (in check order), or null when valid. */
  readonly code: string | null;
  readonly scope: EvidenceScope | null;
  readonly created_at: string | null;
  /** pinned: the JWKS and log key given to the verifier were used; embedded: the pack's own (internal consistency only). */
  readonly trust_source: 'pinned' | 'embedded';
  readonly pin_out_of_band: readonly string[];
  readonly profile: Profile;
  readonly checks: readonly EvidenceCheckResult[];
  readonly bundles: { readonly total: number; readonly valid: number; readonly invalid: number; readonly failures: readonly BundleFailure[] };
  readonly totals: {
    readonly by_currency: readonly Amount[];
    readonly by_tariff: readonly Amount[];
    readonly by_endpoint: readonly Amount[];
    readonly by_outcome: readonly Amount[];
  };
  readonly settlement: SettlementReport | null;
  /** The settlement statement's totals, where there is one (as signed; checked by `settlement`). */
  readonly settlement_totals: { readonly currency: string; readonly total_micros: string; readonly platform_fee_micros: string; readonly net_micros: string } | null;
}

/** A saved GET /v1/trust (its `jwks` and `log.verifier_key` are read), `{jwks?, log?: {verifier_key}}`, or a bare JWKS `{keys}`. */
/** Trust obtained out of band (GET /v1/trust, or just its two members): both are required. */
export interface PinnedTrust {
  /** A JWKS ({keys: [...]}). */
  readonly jwks?: unknown;
  readonly log?: { readonly verifier_key?: unknown };
}

export interface EvidenceOptions {
  /** Groth16 and commitment checks (src/verifier/zk.ts in Node). Without it the proof checks are
   *  skipped, which the strict profile does not allow. */
  readonly zk?: ZkVerifier;
  readonly profile?: Profile;
  /** Trust only this material: the pack's snapshot must match it (PINNED_LOG_KEY_MISMATCH, PINNED_JWKS_MISMATCH). */
  readonly pinned?: PinnedTrust;
  /** The verifier's clock for the revocation list's expiry (default: the pack's created_at). */
  readonly now?: Date;
  /** Called for each bundle line after it is verified. */
  readonly onBundle?: (line: AttestedLine) => void;
}

/** A pack: its whole text, or its lines (without their line feeds: a file read with readline,
 *  `text.split('\n')`, or `packLines(chunks)` for a stream of chunks). */
export type PackInput = string | Iterable<string> | AsyncIterable<string>;

class Fail extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function* linesOf(input: PackInput): AsyncGenerator<string> {
  if (typeof input === 'string') {
    let start = 0;
    for (;;) {
      const nl = input.indexOf('\n', start);
      if (nl < 0) break;
      yield input.slice(start, nl);
      start = nl + 1;
    }
    if (start < input.length) yield input.slice(start);
    return;
  }
  // already lines (readline, split('\n'), packLines)
  for await (const line of input as AsyncIterable<string>) yield line;
}

/**
 * The lines of a pack arriving in chunks that need not end at line boundaries: the text chunks
 * of a response body or a file stream, or their bytes (decoded as UTF-8, strictly: bytes that are
 * not UTF-8 throw). For `verifyEvidencePack(packLines(response.body), …)` in a browser.
 */
export async function* packLines(chunks: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let rest = '';
  for await (const chunk of chunks as AsyncIterable<string | Uint8Array>) {
    rest += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    let nl: number;
    while ((nl = rest.indexOf('\n', start)) >= 0) {
      yield rest.slice(start, nl);
      start = nl + 1;
    }
    rest = rest.slice(start);
  }
  rest += decoder.decode();
  if (rest.length) yield rest;
}

const issue = (e: z.ZodError) => e.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');

function addAmount(map: Map<string, { currency: string; events: number; micros: bigint }>, key: string, currency: string, micros: bigint) {
  const k = `${key}\u0000${currency}`;
  const a = map.get(k) ?? { currency, events: 0, micros: 0n };
  a.events++;
  a.micros += micros;
  map.set(k, a);
}
const amounts = (map: Map<string, { currency: string; events: number; micros: bigint }>): Amount[] =>
  [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => ({ key: k.split('\u0000')[0]!, currency: v.currency, events: v.events, charge_micros: v.micros.toString() }));

/** The trust the checks use: the pinned JWKS and log key in place of the pack's, after checking the
 *  pack's agree. Both must be pinned: with one alone the other would come from the pack, and a
 *  pack signed by keys of its maker's choosing would pass as pinned. */
function applyPinned(embedded: TrustMaterial, pinned: PinnedTrust): TrustMaterial {
  if (!pinned || typeof pinned !== 'object') throw new Fail('PINNED_TRUST_INVALID', 'the pinned trust is not a JSON object');
  if (pinned.jwks === undefined || pinned.log?.verifier_key === undefined) {
    throw new Fail('PINNED_TRUST_INVALID', `the pinned trust names no ${pinned.jwks === undefined ? 'JWKS (jwks)' : 'log verifier key (log.verifier_key)'}: pin both, as GET /v1/trust gives them`);
  }
  const jwks = Jwks.safeParse(pinned.jwks);
  const key = pinned.log.verifier_key;
  if (!jwks.success) throw new Fail('PINNED_TRUST_INVALID', `the pinned JWKS is not a JWKS: ${issue(jwks.error)}`);
  if (typeof key !== 'string' || !key) throw new Fail('PINNED_TRUST_INVALID', 'the pinned log verifier key is not a string');
  if (embedded.log?.verifier_key !== key) throw new Fail('PINNED_LOG_KEY_MISMATCH', `the pack's log verifier key ${JSON.stringify(embedded.log?.verifier_key ?? null)} is not the pinned one`);
  const pins = new Map(jwks.data.keys.map((k) => [k.kid, k]));
  for (const k of embedded.jwks.keys) {
    const p = pins.get(k.kid);
    if (!p) throw new Fail('PINNED_JWKS_MISMATCH', `the pack's key ${k.kid} is not in the pinned JWKS`);
    if (p.x !== k.x) throw new Fail('PINNED_JWKS_MISMATCH', `the pack's key ${k.kid} differs from the pinned one`);
  }
  return { ...embedded, jwks: jwks.data, log: { verifier_key: key } };
}

/**
 * Verify an evidence pack. Line 1 is the header, then one line per bundle, then (settlement packs)
 * the settlement line, and last the signed manifest. Each bundle is verified with the bundle
 * verifier against the pack's trust (or the pinned trust) with the pack checkpoint as trusted
 * checkpoint, and dropped once counted: a pack of any size is verified in constant memory (a
 * settlement pack keeps each statement, which the settlement recomputation needs).
 */
export async function verifyEvidencePack(input: PackInput, options: EvidenceOptions = {}): Promise<EvidenceVerdict> {
  const profile: Profile = options.profile ?? 'strict';
  const results = new Map<EvidenceCheck, EvidenceCheckResult>();
  const fail = (name: EvidenceCheck, code: string, reason: string) => {
    if (!results.has(name) || results.get(name)!.status !== 'fail') results.set(name, { name, status: 'fail', code, reason });
  };
  const failures: BundleFailure[] = [];
  let total = 0;
  let validCount = 0;
  const byCurrency = new Map<string, { currency: string; events: number; micros: bigint }>();
  const byTariff = new Map<string, { currency: string; events: number; micros: bigint }>();
  const byEndpoint = new Map<string, { currency: string; events: number; micros: bigint }>();
  const byOutcome = new Map<string, { currency: string; events: number; micros: bigint }>();
  let header: EvidenceHeader | null = null;
  let headerDigest = '';
  let trust: TrustMaterial | null = null;
  let trustSource: 'pinned' | 'embedded' = options.pinned ? 'pinned' : 'embedded';
  let statementsDigest = STATEMENTS_DIGEST_EMPTY;
  let trailer: EvidenceTrailer | null = null;
  let settlementLine: z.infer<typeof EvidenceSettlementLine> | null = null;
  let settlementReport: SettlementReport | null = null;
  const statements: { statement: Statement; key_id: string; signature: string }[] = [];
  // chains as met in the pack: id → {count, last digest}
  const chains = new Map<string, { count: bigint; seq: bigint; last: string }>();
  let lastChain: string | null = null;
  let lastLate: { id: string; seq: bigint } | null = null;
  let pendingBad: string | null = null; // a line that was not JSON: truncation if it is the last
  let afterTrailer = false;
  let emptyAt: number | null = null;
  let pinFailed = false;
  let lineNo = 0;

  const verifyLine = async (index: number, line: z.infer<typeof EvidenceBundleLine>) => {
    const h = header!;
    const t = trust!;
    const report = await verifyBundle(line.bundle, { ...t, log: { ...t.log!, trusted_checkpoint: h.checkpoint } }, {
      profile,
      consistencyProof: line.consistency_proof,
      now: options.now ?? new Date(h.created_at),
      log: logVerifier,
      ...(options.zk ? { zk: options.zk } : {}),
    });
    total++;
    const failed: CheckResult | undefined = report.checks.find((c) => c.status === 'fail');
    if (report.valid) validCount++;
    else if (failures.length < MAX_LISTED_FAILURES) {
      const sk = report.skipped_but_required[0];
      failures.push({
        index,
        statement_digest: report.statement_digest,
        check: failed?.name ?? sk?.name ?? 'schema',
        code: failed?.code ?? 'CHECK_SKIPPED',
        reason: failed?.reason ?? (sk ? `${sk.name} was skipped (${sk.reason}) and the ${profile} profile requires it` : 'invalid'),
      });
    }
    if (!report.valid && !results.has('bundles')) {
      const f = failures.at(-1)!;
      fail('bundles', f.code, `bundle ${index}: ${f.check}: ${f.reason}`);
    }
    if (report.statement_digest === null) return; // not even a bundle: nothing to count
    const b = line.bundle as Bundle;
    const st = b.attestation.statement;
    const micros = BigInt(st.charge_micros);
    statementsDigest = nextStatementsDigest(statementsDigest, report.statement_digest);
    addAmount(byCurrency, st.currency, st.currency, micros);
    addAmount(byTariff, `${st.tariff_id}@${st.tariff_version}`, st.currency, micros);
    const full = 'redacted' in b ? null : (b as FullBundle);
    addAmount(byEndpoint, full ? full.meter_event.endpoint : '(redacted)', st.currency, micros);
    addAmount(byOutcome, 'outcome' in st ? st.outcome : full ? full.meter_event.outcome : '(redacted)', st.currency, micros);
    // scope: every bundle is of the pack's tenant (and window, and the one attestation)
    const scope = h.scope;
    const id = report.statement_digest.slice('sha256:'.length);
    if (st.tenant_id !== scope.tenant_id) fail('scope', 'SCOPE_MISMATCH', `bundle ${index} is of tenant ${st.tenant_id}, not ${scope.tenant_id}`);
    if (scope.kind === 'attestation' && id !== scope.attestation_id) fail('scope', 'SCOPE_MISMATCH', `bundle ${index} is attestation ${id}, not ${scope.attestation_id}`);
    if (scope.kind === 'window' && st.billing_window_id !== scope.billing_window_id) fail('scope', 'SCOPE_MISMATCH', `bundle ${index} is of window ${st.billing_window_id}, not ${scope.billing_window_id}`);
    // chains: ordered by chain id, each from seq 0 without a gap, each statement linked to the one
    // before — except in a consumer's window pack, which holds only that consumer's statements
    // (ordered, each chain's seq increasing, but with the other consumers' statements left out).
    // A settlement pack's bundles of other windows are the late statements the settlement claims
    // (§5.5): after the window's, ordered by chain id then seq; the settlement check links them
    // and matches them to its `late` list, and they are not in the window's chains.
    const c = st.chain;
    const seen = chains.get(c.id);
    const partial = scope.kind === 'window' && scope.consumer_id !== undefined;
    const late = scope.kind === 'settlement' && st.billing_window_id !== scope.billing_window_id;
    if (late) {
      const seq = BigInt(c.seq);
      if (lastLate && (c.id < lastLate.id || (c.id === lastLate.id && seq <= lastLate.seq))) fail('chains', 'CHAIN_GAP', `bundle ${index}: late statement ${c.id} seq ${c.seq} is out of order (late statements are ordered by chain id, then seq)`);
      lastLate = { id: c.id, seq };
    } else if (lastLate) {
      fail('chains', 'CHAIN_GAP', `bundle ${index}: a statement of the settlement's window after a late one (the window's statements come first)`);
    } else if (seen && partial) {
      if (lastChain !== c.id || BigInt(c.seq) <= seen.seq) fail('chains', 'CHAIN_GAP', `bundle ${index}: chain ${c.id} seq ${c.seq} is out of order`);
      seen.count++;
      seen.seq = BigInt(c.seq);
    } else if (seen) {
      if (lastChain !== c.id) fail('chains', 'CHAIN_GAP', `bundle ${index}: chain ${c.id} is split in the pack (bundles are ordered by chain id, then seq)`);
      else if (BigInt(c.seq) !== seen.count) fail('chains', 'CHAIN_GAP', `bundle ${index}: chain ${c.id} seq ${c.seq} follows seq ${seen.count - 1n} (a statement is missing or repeated)`);
      else if (c.prev !== seen.last) fail('chains', 'CHAIN_GAP', `bundle ${index}: chain ${c.id} seq ${c.seq} does not link to the statement before it`);
      seen.count++;
      seen.seq = BigInt(c.seq);
      seen.last = report.statement_digest;
    } else {
      if (lastChain !== null && c.id < lastChain) fail('chains', 'CHAIN_GAP', `bundle ${index}: chain ${c.id} is out of order (bundles are ordered by chain id, then seq)`);
      if (scope.kind !== 'attestation' && !partial && c.seq !== '0') fail('chains', 'CHAIN_GAP', `bundle ${index}: chain ${c.id} starts at seq ${c.seq}, not 0`);
      chains.set(c.id, { count: partial ? 1n : BigInt(c.seq) + 1n, seq: BigInt(c.seq), last: report.statement_digest });
    }
    if (!late) lastChain = c.id;
    if (scope.kind === 'settlement') statements.push({ statement: st, key_id: b.attestation.key_id, signature: b.attestation.signature });
    options.onBundle?.({
      index,
      attestation_id: id,
      event_id: full ? full.meter_event.event_id : null,
      charge_micros: micros,
      currency: st.currency,
      valid: report.valid,
    });
  };

  try {
    for await (const raw of linesOf(input)) {
      lineNo++;
      if (raw === '' || raw === '\r') {
        // empty lines are allowed only at the very end (a final newline, or more)
        emptyAt = emptyAt ?? lineNo;
        continue;
      }
      if (pendingBad !== null || afterTrailer || emptyAt !== null) {
        fail('format', 'PACK_MALFORMED', pendingBad ?? (emptyAt !== null ? `line ${emptyAt} is empty` : `line ${lineNo} follows the manifest`));
        break;
      }
      let value: unknown;
      try {
        value = parseJsonStrict(raw);
      } catch (e) {
        if (!(e instanceof JsonTextError)) throw e;
        pendingBad = `line ${lineNo} is not JSON (${e.message})`;
        continue;
      }
      if (header === null) {
        const h = EvidenceHeader.safeParse(value);
        if (!h.success) {
          const type = (value as { type?: unknown } | null)?.type;
          fail('format', 'PACK_MALFORMED', type === EVIDENCE_PACK_TYPE ? `header: ${issue(h.error)}` : `line 1 is not a ${EVIDENCE_PACK_TYPE} header`);
          break;
        }
        header = h.data;
        headerDigest = digestOf(value);
        if (!header.trust.log?.verifier_key) {
          fail('format', 'PACK_MALFORMED', 'the header trust material has no log verifier key');
          break;
        }
        trust = header.trust;
        if (options.pinned) {
          try {
            trust = applyPinned(header.trust, options.pinned);
            results.set('pinned_trust', { name: 'pinned_trust', status: 'pass' });
          } catch (e) {
            if (!(e instanceof Fail)) throw e;
            fail('pinned_trust', e.code, e.message);
            pinFailed = true;
            break; // nothing the pack says can be trusted against this pin
          }
        } else {
          trustSource = 'embedded';
          results.set('pinned_trust', { name: 'pinned_trust', status: 'skipped', reason: 'no pinned trust given: the embedded JWKS and log key were used (the pack is consistent with itself; pin them to trust it)' });
        }
        continue;
      }
      const obj = value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
      if ('bundle' in obj) {
        const l = EvidenceBundleLine.safeParse(value);
        if (!l.success || settlementLine) {
          fail('format', 'PACK_MALFORMED', l.success ? `line ${lineNo}: a bundle after the settlement line` : `line ${lineNo}: ${issue(l.error)}`);
          break;
        }
        await verifyLine(total, l.data);
      } else if ('settlement' in obj) {
        const l = EvidenceSettlementLine.safeParse(value);
        if (!l.success || settlementLine) {
          fail('format', 'PACK_MALFORMED', l.success ? `line ${lineNo}: a second settlement line` : `line ${lineNo}: ${issue(l.error)}`);
          break;
        }
        settlementLine = l.data;
      } else if ('manifest' in obj) {
        const l = EvidenceTrailer.safeParse(value);
        if (!l.success) {
          fail('format', 'PACK_MALFORMED', `line ${lineNo}: manifest: ${issue(l.error)}`);
          break;
        }
        trailer = l.data;
        afterTrailer = true;
      } else {
        fail('format', 'PACK_MALFORMED', `line ${lineNo} is neither a bundle, a settlement nor a manifest line`);
        break;
      }
    }
    if (pinFailed) {
      results.set('format', { name: 'format', status: 'skipped', reason: 'not read past the header: the pinned trust does not match the pack' });
    } else if (!results.has('format')) {
      if (header === null) fail('format', pendingBad ? 'PACK_MALFORMED' : 'PACK_TRUNCATED', pendingBad ?? 'the pack is empty');
      else if (!trailer) fail('format', 'PACK_TRUNCATED', pendingBad ? `${pendingBad}, and the pack ends without its manifest` : 'the pack ends without its manifest (a truncated file)');
      else if (pendingBad !== null) fail('format', 'PACK_MALFORMED', pendingBad);
      else results.set('format', { name: 'format', status: 'pass' });
    }

    if (results.get('format')?.status === 'pass' && results.get('pinned_trust')?.status !== 'fail') {
      const h = header!;
      const m = trailer!.manifest;
      // manifest: signed by a service key valid at created_at, over this header and these bundles
      const jwk: PublicJwk | undefined = trust!.jwks.keys.find((k) => k.kid === trailer!.key_id);
      if (!jwk) fail('manifest', 'MANIFEST_SIGNATURE_INVALID', `the manifest key ${trailer!.key_id} is not in the ${trustSource} JWKS`);
      else if (!keyValidAt(jwk, m.created_at)) fail('manifest', 'MANIFEST_SIGNATURE_INVALID', `the manifest was signed at ${m.created_at}, outside the validity window of key ${jwk.kid}`);
      else if (!verifyObject(jwk, m, trailer!.signature)) fail('manifest', 'MANIFEST_SIGNATURE_INVALID', 'the Ed25519 signature over the canonical manifest does not verify');
      else if (m.header_digest !== headerDigest || m.created_at !== h.created_at) fail('manifest', 'PACK_INCOMPLETE', 'the manifest is for another header');
      else if (m.count !== String(total)) fail('manifest', 'PACK_INCOMPLETE', `the manifest counts ${m.count} bundles, the pack holds ${total}`);
      else if (m.statements_digest !== statementsDigest) fail('manifest', 'PACK_INCOMPLETE', 'the bundles are not the ones the manifest was signed over (statements_digest differs)');
      else results.set('manifest', { name: 'manifest', status: 'pass' });

      // chains: the manifest's chain counts are the ones in the pack
      if (h.scope.kind === 'attestation') {
        if (total !== 1) fail('scope', 'SCOPE_MISMATCH', `an attestation pack holds one bundle, this one ${total}`);
        if (!results.has('chains')) results.set('chains', { name: 'chains', status: 'skipped', reason: 'one attestation' });
      } else if (!results.has('chains')) {
        const claimed = new Map(m.chains.map((c) => [c.id, BigInt(c.count)]));
        const gap = [...chains.entries()].find(([id, c]) => claimed.get(id) !== c.count) ?? [...claimed.keys()].filter((id) => !chains.has(id)).map((id) => [id, null] as const)[0];
        if (gap) fail('chains', 'CHAIN_GAP', `chain ${gap[0]}: the manifest counts ${claimed.get(gap[0]) ?? 0} statements, the pack holds ${gap[1]?.count ?? 0}`);
        else results.set('chains', { name: 'chains', status: 'pass' });
      }
      if (!results.has('scope')) results.set('scope', { name: 'scope', status: 'pass' });
      if (!results.has('bundles')) results.set('bundles', total ? { name: 'bundles', status: 'pass' } : { name: 'bundles', status: 'skipped', reason: 'no bundle in scope' });

      // settlement: the settlement verifier over the signed statement, the plan and the pack's statements
      if (h.scope.kind !== 'settlement') {
        if (settlementLine) fail('format', 'PACK_MALFORMED', 'a settlement line in a pack that is not a settlement pack');
        else results.set('settlement', { name: 'settlement', status: 'skipped', reason: `a ${h.scope.kind} pack` });
      } else if (!settlementLine) {
        fail('settlement', 'SETTLEMENT_MISSING', 'a settlement pack without its settlement line');
      } else {
        const s = settlementLine.settlement;
        const st = s.settlement.statement as { tenant_id?: unknown; billing_window_id?: unknown };
        if (st.tenant_id !== h.scope.tenant_id || st.billing_window_id !== h.scope.billing_window_id) fail('scope', 'SCOPE_MISMATCH', 'the settlement is of another tenant or window than the pack');
        if (m.settlement_digest !== s.settlement.statement_digest) fail('manifest', 'PACK_INCOMPLETE', 'the settlement is not the one the manifest was signed over');
        settlementReport = verifySettlement({ type: SETTLEMENT_EVIDENCE_TYPE, settlement: s.settlement, receipt: s.receipt, plan: s.plan, adjustments: s.adjustments ?? [], attestations: statements }, { jwks: trust!.jwks, logVerifierKey: trust!.log!.verifier_key }, logVerifier);
        // the first failed check names the cause; a check skipped after it only follows from it
        const f = settlementReport.checks.find((c) => c.status === 'fail') ?? settlementReport.checks.find((c) => c.status !== 'pass');
        if (f) fail('settlement', f.code ?? 'CHECK_SKIPPED', `${f.name}: ${f.message ?? f.status}`);
        else {
          try {
            logVerifier.checkConsistency(s.receipt!, h.checkpoint, trust!.log!.verifier_key, settlementLine.consistency_proof);
            results.set('settlement', { name: 'settlement', status: 'pass' });
          } catch (e) {
            fail('settlement', e instanceof VerificationError ? e.code : 'INTERNAL_ERROR', `settlement receipt: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
      }
    }
  } catch (e) {
    fail(EVIDENCE_CHECKS.find((n) => !results.has(n)) ?? 'format', 'INTERNAL_ERROR', e instanceof Error ? e.message : String(e));
  }

  const checks = EVIDENCE_CHECKS.map((name): EvidenceCheckResult => results.get(name) ?? { name, status: 'skipped', reason: 'not reached' });
  const firstFail = checks.find((c) => c.status === 'fail');
  // valid: no check failed, and each check ran except pinned_trust (optional) and the ones the scope has none of
  const notRun = checks.find((c) => c.status === 'skipped' && c.reason === 'not reached');
  const valid = !firstFail && !notRun && total === validCount;
  const ss = settlementLine?.settlement.settlement.statement as { currency?: string; total_micros?: string; platform_fee_micros?: string; net_micros?: string } | undefined;
  return {
    valid,
    type: EVIDENCE_PACK_TYPE,
    code: valid ? null : (firstFail?.code ?? 'INTERNAL_ERROR'),
    scope: header?.scope ?? null,
    created_at: header?.created_at ?? null,
    trust_source: trustSource,
    pin_out_of_band: [...PIN_OUT_OF_BAND],
    profile,
    checks,
    bundles: { total, valid: validCount, invalid: total - validCount, failures },
    totals: { by_currency: amounts(byCurrency), by_tariff: amounts(byTariff), by_endpoint: amounts(byEndpoint), by_outcome: amounts(byOutcome) },
    settlement: settlementReport,
    settlement_totals:
      ss && [ss.total_micros, ss.platform_fee_micros, ss.net_micros].every((x) => typeof x === 'string' && /^(0|[1-9][0-9]{0,19})$/.test(x)) && typeof ss.currency === 'string'
        ? { currency: ss.currency, total_micros: ss.total_micros!, platform_fee_micros: ss.platform_fee_micros!, net_micros: ss.net_micros! }
        : null,
  };
}
