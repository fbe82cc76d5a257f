// Phase-2 ceremony steps over files (docs/ceremony.md): init, contribute, beacon, and the facts
// `verify` recomputes with snarkjs. The transcript rules live in src/core/ceremony.ts.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as snarkjs from 'snarkjs';
import { toB64Url } from '../core/bytes.ts';
import {
  type Beacon,
  type CeremonyFacts,
  type CeremonyFailure,
  type CeremonyOk,
  checkTranscript,
  type Contribution,
  type Header,
  isFailure,
  lastOutput,
  NAME_PATTERN,
  nextPrev,
  parseTranscript,
  signedBytes,
  signerFor,
  TRANSCRIPT_FORMAT,
  type Transcript,
  type ZkeyContribution,
} from '../core/ceremony.ts';
import type { SigningKey } from '../core/keys.ts';

/** A step that cannot run: bad input, wrong file, a transcript that does not continue. */
export class CeremonyError extends Error {
  override readonly name = 'CeremonyError';
}

const silent: snarkjs.Logger = { debug() {}, info() {}, warn() {}, error() {} };
const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
export const sha256File = (file: string): string => sha256(fs.readFileSync(file));
const mem = (file: string) => ({ type: 'mem' as const, data: new Uint8Array(fs.readFileSync(file)) });
const now = () => new Date().toISOString();

function readTranscript(file: string): Transcript {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CeremonyError(`cannot read transcript ${file}: ${(e as Error).message}`);
  }
  const t = parseTranscript(json);
  if (isFailure(t)) throw new CeremonyError(t.reason);
  return t;
}

/** Writes next to the target and renames: a crash never leaves half a transcript. */
function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

function mustNotExist(file: string): void {
  if (fs.existsSync(file)) throw new CeremonyError(`${file} already exists (never overwritten)`);
}

/** The initial zkey (`snarkjs zkey new`), in memory: deterministic for an r1cs and a ptau. */
async function newZkey(r1cs: string, ptau: string): Promise<{ data: Uint8Array; circuitHash: string }> {
  const out: { type: 'mem'; data?: Uint8Array } = { type: 'mem' };
  const hash = await snarkjs.zKey.newZKey(mem(r1cs), mem(ptau), out, silent);
  if (!out.data) throw new CeremonyError('snarkjs zkey new produced no zkey');
  return { data: out.data, circuitHash: Buffer.from(hash).toString('hex') };
}

export interface InitOptions {
  readonly r1cs: string;
  readonly ptau: string;
  readonly outDir: string;
  readonly beaconSource: string;
  readonly label?: string | null;
}

/** `ceremony init`: <outDir>/<circuit>_0000.zkey and <outDir>/transcript.json. */
export async function initCeremony(o: InitOptions): Promise<{ zkey: string; transcript: string; header: Header }> {
  const info = await snarkjs.r1cs.info(mem(o.r1cs), silent);
  const base = path.basename(o.r1cs).replace(/\.r1cs$/, '');
  const zkey = path.join(o.outDir, `${base}_0000.zkey`);
  const transcript = path.join(o.outDir, 'transcript.json');
  fs.mkdirSync(o.outDir, { recursive: true });
  mustNotExist(zkey);
  mustNotExist(transcript);
  const init = await newZkey(o.r1cs, o.ptau);
  fs.writeFileSync(zkey, init.data, { flag: 'wx' });
  const header: Header = {
    format: TRANSCRIPT_FORMAT,
    label: o.label ?? null,
    circuit: {
      r1cs_sha256: sha256File(o.r1cs),
      circuit_hash: init.circuitHash,
      constraints: info.nConstraints,
      public_inputs: info.nPubInputs,
      outputs: info.nOutputs,
    },
    ptau: { sha256: sha256File(o.ptau) },
    init: { zkey_sha256: sha256(init.data), time: now() },
    beacon_source: o.beaconSource,
  };
  writeJsonAtomic(transcript, { ...header, contributions: [], beacon: null } satisfies Transcript);
  return { zkey, transcript, header };
}

/** The transcript must continue from `inZkey`: it is the last zkey recorded, and no beacon yet. */
function continuing(transcriptFile: string, inZkey: string, outZkey: string): { t: Transcript; inputSha: string } {
  const t = readTranscript(transcriptFile);
  if (t.beacon) throw new CeremonyError('the transcript already ends with the beacon: the ceremony is closed');
  const inputSha = sha256File(inZkey);
  if (inputSha !== lastOutput(t)) {
    throw new CeremonyError(`${inZkey} (sha256 ${inputSha.slice(0, 16)}…) is not the latest zkey of the transcript (${lastOutput(t).slice(0, 16)}…)`);
  }
  mustNotExist(outZkey);
  return { t, inputSha };
}

export interface ContributeOptions {
  readonly inZkey: string;
  readonly outZkey: string;
  readonly transcript: string;
  readonly name: string;
  /** Extra entropy typed or collected by the contributor; mixed in, never stored. */
  readonly extraEntropy?: Uint8Array;
  /** The contributor's own key: signs their entry. */
  readonly key?: SigningKey;
}

/** `ceremony contribute`: one phase-2 contribution with fresh entropy, appended to the transcript. */
export async function contribute(o: ContributeOptions): Promise<Contribution> {
  if (!NAME_PATTERN.test(o.name)) throw new CeremonyError('--name must be 1-64 printable ASCII characters');
  const { t, inputSha } = continuing(o.transcript, o.inZkey, o.outZkey);
  // 64 bytes from the OS CSPRNG, plus a digest of the contributor's own input; snarkjs mixes in
  // 64 more random bytes of its own. The string lives only in this call.
  const extra = o.extraEntropy ? createHash('sha512').update(o.extraEntropy).digest('hex') : '';
  const hash = await snarkjs.zKey.contribute(mem(o.inZkey), o.outZkey, o.name, randomBytes(64).toString('hex') + extra, silent);
  const unsigned: Contribution = {
    kind: 'contribution',
    index: t.contributions.length + 1,
    name: o.name,
    contribution_hash: Buffer.from(hash).toString('hex'),
    input_zkey_sha256: inputSha,
    output_zkey_sha256: sha256File(o.outZkey),
    time: now(),
    prev: nextPrev(t),
    ...(o.key ? { signer: signerFor(o.key.publicKey) } : {}),
  };
  const entry: Contribution = o.key ? { ...unsigned, signature: toB64Url(o.key.sign(signedBytes(unsigned))) } : unsigned;
  writeJsonAtomic(o.transcript, { ...t, contributions: [...t.contributions, entry] });
  return entry;
}

export interface BeaconOptions {
  readonly inZkey: string;
  readonly outZkey: string;
  readonly transcript: string;
  /** The public value named by the transcript's beacon_source, hex. */
  readonly value: string;
  readonly iterationsExp: number;
  readonly name?: string;
}

/** `ceremony beacon`: the final contribution, derived from the announced public value. */
export async function applyBeacon(o: BeaconOptions): Promise<Beacon> {
  const value = o.value.toLowerCase();
  if (!/^([0-9a-f]{2}){1,255}$/.test(value)) throw new CeremonyError('--beacon-hash must be 1-255 bytes of hex');
  if (!Number.isInteger(o.iterationsExp) || o.iterationsExp < 10 || o.iterationsExp > 63) throw new CeremonyError('--iterations must be an integer exponent from 10 to 63 (2^n hash iterations)');
  const name = o.name ?? 'beacon';
  if (!NAME_PATTERN.test(name)) throw new CeremonyError('--name must be 1-64 printable ASCII characters');
  const { t, inputSha } = continuing(o.transcript, o.inZkey, o.outZkey);
  const hash = await snarkjs.zKey.beacon(mem(o.inZkey), o.outZkey, name, value, o.iterationsExp, silent);
  if (!hash) throw new CeremonyError('snarkjs zkey beacon failed');
  const entry: Beacon = {
    kind: 'beacon',
    index: t.contributions.length + 1,
    name,
    contribution_hash: Buffer.from(hash).toString('hex'),
    input_zkey_sha256: inputSha,
    output_zkey_sha256: sha256File(o.outZkey),
    time: now(),
    prev: nextPrev(t),
    value,
    iterations_exp: o.iterationsExp,
    source: t.beacon_source,
  };
  writeJsonAtomic(o.transcript, { ...t, beacon: entry });
  return entry;
}

/**
 * Re-verifies `zkey` with snarkjs (`zkey verify`: every contribution's proof, the beacon's key
 * re-derived from its value, all sections against the initial zkey of this r1cs and ptau) and
 * reads the contribution list snarkjs recomputes (it reports it only through its logger).
 */
export async function readZkeyChain(r1cs: string, ptau: string, zkey: string): Promise<Omit<CeremonyFacts, 'vkey' | 'expectedBeacon' | 'inProgress'>> {
  const init = await newZkey(r1cs, ptau);
  const lines: string[] = [];
  const errors: string[] = [];
  const logger: snarkjs.Logger = { debug() {}, info: (m) => lines.push(m), warn: (m) => errors.push(m), error: (m) => errors.push(m) };
  // snarkjs prints some rejections with console.log: keep them for the reason, off stdout
  const log = console.log;
  console.log = (...a: unknown[]) => errors.push(a.map(String).join(' '));
  let valid: boolean;
  try {
    valid = await snarkjs.zKey.verifyFromInit({ type: 'mem', data: init.data }, mem(ptau), mem(zkey), logger);
  } catch (e) {
    valid = false;
    errors.push((e as Error).message);
  } finally {
    console.log = log;
  }
  const contributions = valid ? parseContributions(lines) : [];
  const facts = {
    r1csSha256: sha256File(r1cs),
    ptauSha256: sha256File(ptau),
    initZkeySha256: sha256(init.data),
    circuitHash: init.circuitHash,
    finalZkeySha256: sha256File(zkey),
    chainValid: valid && contributions !== null,
    zkeyContributions: contributions ?? [],
  };
  const chainError = contributions === null ? 'cannot read the contribution list from snarkjs' : errors.map((e) => e.trim()).filter(Boolean)[0];
  return chainError ? { ...facts, chainError } : facts;
}

/** snarkjs 0.7 `zkey verify` output: "contribution #i <name>:" + 4 lines of hash, newest first,
 *  each beacon followed by "Beacon generator: <hex>" and "Beacon iterations Exp: <n>". */
function parseContributions(lines: readonly string[]): ZkeyContribution[] | null {
  const found = new Map<number, { name: string; hash: string; beacon?: { value: string; iterationsExp: number } }>();
  let current: { name: string; hash: string; beacon?: { value: string; iterationsExp: number } } | undefined;
  for (const line of lines) {
    const c = /^contribution #(\d+) (.*):\n((?:\s*[0-9a-f]{8}){16})\s*$/s.exec(line);
    if (c) {
      current = { name: c[2]!, hash: c[3]!.replace(/\s+/g, '') };
      found.set(Number(c[1]), current);
      continue;
    }
    const g = /^Beacon generator: ([0-9a-f]*)$/.exec(line);
    if (g && current) current.beacon = { value: g[1]!, iterationsExp: -1 };
    const n = /^Beacon iterations Exp: (\d+)$/.exec(line);
    if (n && current?.beacon) current.beacon.iterationsExp = Number(n[1]);
  }
  const out: ZkeyContribution[] = [];
  for (let i = 1; i <= found.size; i++) {
    const c = found.get(i);
    if (!c || c.beacon?.iterationsExp === -1) return null;
    out.push(c);
  }
  return out;
}

export interface VerifyOptions {
  readonly transcript: string;
  readonly r1cs: string;
  readonly ptau: string;
  readonly zkey: string;
  readonly vkey?: string;
  readonly expectedBeacon?: string;
  readonly inProgress?: boolean;
}

/** `ceremony verify`: the transcript checked against everything recomputed from the files. */
export async function verifyCeremonyFiles(o: VerifyOptions): Promise<CeremonyOk | CeremonyFailure> {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(o.transcript, 'utf8'));
  } catch (e) {
    return { code: 'TRANSCRIPT_MALFORMED', reason: `cannot read transcript ${o.transcript}: ${(e as Error).message}` };
  }
  const t = parseTranscript(json);
  if (isFailure(t)) return t;
  const facts = await readZkeyChain(o.r1cs, o.ptau, o.zkey);
  let vkey: CeremonyFacts['vkey'];
  if (o.vkey && facts.chainValid) {
    vkey = { committed: JSON.parse(fs.readFileSync(o.vkey, 'utf8')), exported: await snarkjs.zKey.exportVerificationKey(mem(o.zkey), silent) };
  }
  return checkTranscript(t, {
    ...facts,
    ...(vkey ? { vkey } : {}),
    ...(o.expectedBeacon !== undefined ? { expectedBeacon: o.expectedBeacon } : {}),
    ...(o.inProgress ? { inProgress: true } : {}),
  });
}
