// `meterproof log monitor`: watch a transparency log from the outside. Each run fetches the
// latest checkpoint, checks its signature under the pinned log key, checks that it extends the
// checkpoint seen last time (consistency proof, RFC 9162 §2.1.4) and stores it as the new state.
// Exit 0: consistent; 1: the log misbehaved (key change, bad signature, rollback, split view,
// bad proof); 2: unusable input or the log could not be reached.
import fs from 'node:fs';
import { fromB64, toB64 } from '../core/bytes.ts';
import { MerkleError, verifyConsistency } from '../core/merkle.ts';
import { type Checkpoint, NoteError, openCheckpoint, parseVerifierKey } from '../core/note.ts';
import { UsageError, err, notStdin, out, parseCommand, replaceFile } from './io.ts';

const STATE_VERSION = 1;
const MAX_RESPONSE = 1 << 20;

interface MonitorState {
  readonly version: number;
  readonly log: string;
  readonly verifier_key: string;
  /** The last checkpoint seen and verified (signed note). */
  readonly checkpoint: string;
  readonly tree_size: string;
  readonly root_hash: string;
  readonly updated_at: string;
}

/** The log did something a correct log never does. */
class Alarm extends Error {
  override readonly name = 'Alarm';
}

export async function cmdLog(argv: string[]): Promise<number> {
  try {
    const [sub, ...rest] = argv;
    if (sub !== 'monitor') throw new UsageError('usage: meterproof log monitor --log <base url> --state <file> [options] (meterproof log --help)');
    return await monitor(rest);
  } catch (e) {
    if (e instanceof Alarm) {
      err(`ALARM: ${e.message}`);
      return 1;
    }
    if (e instanceof UsageError) {
      err(`meterproof log: ${e.message}`);
      return e.exitCode;
    }
    err(`meterproof log: ${e instanceof Error ? e.message : String(e)}`);
    return 2;
  }
}

async function monitor(argv: string[]): Promise<number> {
  const a = parseCommand('log monitor', argv);
  const base = parseBase(a.str('log')!);
  const timeoutMs = Number(a.str('timeout-ms') ?? '15000');
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError('--timeout-ms must be a positive integer');
  const stateFile = notStdin(a.str('state'), '--state')!;
  const state = readState(stateFile);
  if (state && state.log !== base.href) out(`note: state was recorded for ${state.log}, now monitoring ${base.href}`);

  // The key to trust: the pinned one, else --verifier-key, else the one the log serves (first use).
  const given = a.str('verifier-key')?.trim();
  if (given !== undefined) checkKey(given, '--verifier-key');
  if (state && given !== undefined && given !== state.verifier_key) {
    throw new UsageError(`--verifier-key differs from the key pinned in ${stateFile} (${state.verifier_key})`);
  }
  const served = (await fetchText(new URL('v1/log/verifier-key', base), timeoutMs)).trim();
  const pinned = state?.verifier_key ?? given ?? served;
  const verifier = checkKey(pinned, 'verifier key');
  if (served !== pinned) throw new Alarm(`the log now serves verifier key ${served}, but ${pinned} is pinned`);

  const note = await fetchText(new URL('v1/log/checkpoint', base), timeoutMs);
  const origin = verifier.name;
  let cp: Checkpoint;
  try {
    cp = openCheckpoint(note, [verifier], state ? { origin: originOf(state) } : {}).checkpoint;
  } catch (e) {
    if (e instanceof NoteError) throw new Alarm(`the latest checkpoint does not verify under ${pinned}: ${e.code}: ${e.message}`);
    throw e;
  }
  const root = toB64(cp.rootHash);
  out(`log ${base.href} (origin ${cp.origin}, key ${pinned})`);
  out(`latest checkpoint: size ${cp.size}, root ${root}`);

  if (!state) {
    writeState(stateFile, { base, key: pinned, note, cp });
    out(`first run: pinned key ${origin}; stored checkpoint size ${cp.size} in ${stateFile}`);
    return 0;
  }

  const oldSize = BigInt(state.tree_size);
  const oldRoot = fromB64(state.root_hash)!;
  const was = `stored size ${oldSize} root ${state.root_hash}`;
  const now = `new size ${cp.size} root ${root}`;
  if (cp.size < oldSize) throw new Alarm(`rollback: ${was}; ${now} is smaller`);
  if (cp.size === oldSize) {
    if (state.root_hash !== root) throw new Alarm(`split view: ${was}; ${now} has the same size and a different root`);
    out(`unchanged since the last run (size ${cp.size})`);
    writeState(stateFile, { base, key: pinned, note, cp });
    return 0;
  }
  let proofLen = 0;
  if (oldSize > 0n) {
    const url = new URL(`v1/log/proof/consistency?from=${oldSize}&to=${cp.size}`, base);
    const body = await fetchJson(url, timeoutMs);
    const hashes = proofHashes(body, oldSize, cp.size);
    proofLen = hashes.length;
    try {
      verifyConsistency(oldSize, cp.size, oldRoot, cp.rootHash, hashes); // RFC 9162 §2.1.4.2
    } catch (e) {
      if (e instanceof MerkleError) throw new Alarm(`inconsistent: ${was}; ${now}; the consistency proof fails: ${e.code}: ${e.message}`);
      throw e;
    }
  }
  writeState(stateFile, { base, key: pinned, note, cp });
  out(`consistent: size ${oldSize} → ${cp.size} (proof of ${proofLen} hashes); state updated`);
  return 0;
}

function parseBase(s: string): URL {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new UsageError(`--log ${s} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--log must be an http(s) URL, not ${u.protocol}`);
  u.search = '';
  u.hash = '';
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u;
}

function checkKey(key: string, what: string) {
  try {
    return parseVerifierKey(key);
  } catch (e) {
    throw new UsageError(`${what} is not a signed-note Ed25519 verifier key: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function originOf(state: MonitorState): string {
  const lines = state.checkpoint.split('\n');
  return lines[0] ?? '';
}

async function fetchText(url: URL, timeoutMs: number): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new UsageError(`cannot reach ${url.href}: ${cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e))}`);
  }
  const text = await res.text().catch(() => '');
  if (!res.ok) throw new UsageError(`GET ${url.href}: HTTP ${res.status}${text ? ` ${text.slice(0, 200).replace(/\s+/g, ' ')}` : ''}`);
  if (text.length > MAX_RESPONSE) throw new UsageError(`GET ${url.href}: response too large`);
  return text;
}

async function fetchJson(url: URL, timeoutMs: number): Promise<unknown> {
  const text = await fetchText(url, timeoutMs);
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`GET ${url.href}: response is not JSON`);
  }
}

function proofHashes(body: unknown, from: bigint, to: bigint): Uint8Array[] {
  const b = body as { from?: unknown; to?: unknown; hashes?: unknown } | null;
  if (!b || typeof b !== 'object' || !Array.isArray(b.hashes)) throw new UsageError('the consistency proof response has no hashes array');
  if (String(b.from) !== String(from) || String(b.to) !== String(to)) {
    throw new Alarm(`asked for a consistency proof from ${from} to ${to}, got one from ${String(b.from)} to ${String(b.to)}`);
  }
  return b.hashes.map((h, i) => {
    const bytes = typeof h === 'string' ? fromB64(h) : null;
    if (!bytes || toB64(bytes) !== h) throw new Alarm(`consistency proof hash ${i} is not standard base64`);
    return bytes;
  });
}

function readState(file: string): MonitorState | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UsageError(`cannot read state ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let s: Partial<MonitorState>;
  try {
    s = JSON.parse(text) as Partial<MonitorState>;
  } catch {
    throw new UsageError(`state ${file} is not valid JSON`);
  }
  const bad = (why: string) => new UsageError(`state ${file} is unusable: ${why}`);
  if (!s || typeof s !== 'object' || s.version !== STATE_VERSION) throw bad(`expected version ${STATE_VERSION}`);
  if (typeof s.log !== 'string' || typeof s.verifier_key !== 'string' || typeof s.checkpoint !== 'string') throw bad('missing fields');
  const verifier = checkKey(s.verifier_key, `state ${file} verifier_key`);
  // The stored checkpoint is re-verified, so a tampered state file cannot move the baseline.
  let cp: Checkpoint;
  try {
    cp = openCheckpoint(s.checkpoint, [verifier]).checkpoint;
  } catch (e) {
    throw bad(`stored checkpoint does not verify: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (s.tree_size !== cp.size.toString() || s.root_hash !== toB64(cp.rootHash)) throw bad('tree_size/root_hash differ from the stored checkpoint');
  return s as MonitorState;
}

/** Replaces the state file atomically. */
function writeState(file: string, a: { base: URL; key: string; note: string; cp: Checkpoint }): void {
  const state: MonitorState = {
    version: STATE_VERSION,
    log: a.base.href,
    verifier_key: a.key,
    checkpoint: a.note,
    tree_size: a.cp.size.toString(),
    root_hash: toB64(a.cp.rootHash),
    updated_at: new Date().toISOString(),
  };
  replaceFile(file, `${JSON.stringify(state, null, 2)}\n`, 'state');
}
