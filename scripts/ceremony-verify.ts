// `npm run ceremony:verify [-- --binding <version>] [--ptau]`: re-checks each binding's keys
// against the circuit source in circuits/ (every binding whose circuit exists, by default).
//  1. recompiles the binding's circuit (--O2 --inspect, no warnings);
//  2. the compiled wasm is byte-identical to the committed billing.wasm; the circuit sources and
//     every artifact match their hashes in the transcript;
//  3. the ceremony: for a transcript of `meterproof ceremony` (bn128-poseidon8-v2 on), exactly
//     `meterproof ceremony verify` with the recompiled r1cs, the committed ptau and the
//     verification key; for the v1 transcript of the earlier one-machine script, snarkjs
//     `zkey verify` of the zkey against the r1cs and ptau, its contribution list (names,
//     hashes, beacon value and iterations) equal to the transcript's, and the verification key
//     equal to the zkey's.
// `--ptau` also re-verifies the powers of tau file itself (slow). Exit code 1 on any failure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import * as snarkjs from 'snarkjs';
import { readZkeyChain, verifyCeremonyFiles } from '../src/ceremony/index.ts';
import { isFailure, TRANSCRIPT_FORMAT } from '../src/core/ceremony.ts';
import { BINDINGS, type BindingSetup, compileCircuit, KEYS_ROOT, quietLogger, sha256File, sourceHashes } from './ceremony.ts';

export interface CeremonyCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail?: string;
}

/** The transcript written by the one-machine script that made the v1 keys. */
interface LegacyTranscript {
  circuit: { sources: Record<string, string>; r1cs_sha256: string; constraints: number };
  phase1: { power: number; prepared: string };
  phase2: { contributions: { name: string; hash: string }[]; beacon: { name: string; value: string; iterations_exp: number; hash: string } };
  artifacts: Record<string, string>;
}

/** The transcript of `npm run ceremony`: the ceremony transcript plus its build record. */
interface BuildRecord {
  format: string;
  build: { sources: Record<string, string>; ptau_file: string; artifacts: Record<string, string> };
}

export interface VerifyOptions {
  /** Default bn128-poseidon8-v1. */
  readonly binding?: string;
  /** Instead of the binding's entry in BINDINGS (tests). */
  readonly setup?: BindingSetup;
  /** Where the shared ptau files live (default keys/). */
  readonly keysRoot?: string;
  /** Default: the binding's keys directory. */
  readonly keysDir?: string;
  /** Also re-verify the powers of tau (slow). */
  readonly verifyPtau?: boolean;
  /** Skip the zkey-against-r1cs-and-ptau verification (only for tests of the other checks). */
  readonly skipZkeyVerify?: boolean;
  readonly log?: (line: string) => void;
}

export async function verifyCeremony(opts: VerifyOptions = {}): Promise<CeremonyCheck[]> {
  const binding = opts.binding ?? 'bn128-poseidon8-v1';
  const setup = opts.setup ?? BINDINGS[binding];
  if (!setup) throw new Error(`unknown binding ${binding}`);
  const keysDir = opts.keysDir ?? setup.keysDir;
  const log = opts.log ?? (() => {});
  const checks: CeremonyCheck[] = [];
  const check = (name: string, ok: boolean, detail?: string) => {
    checks.push(detail === undefined ? { name, ok } : { name, ok, detail });
    log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
  };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meterproof-ceremony-verify-'));
  const key = (f: string) => path.join(keysDir, f);
  const mem = (file: string) => ({ type: 'mem' as const, data: new Uint8Array(fs.readFileSync(file)) });
  let ptau: string | undefined;
  try {
    const transcript = JSON.parse(fs.readFileSync(key('transcript.json'), 'utf8')) as LegacyTranscript | BuildRecord;
    const compiled = await compileCircuit(tmp, setup.circuit);
    check('circuit compiles without warnings', true);
    check('wasm matches billing.wasm', fs.readFileSync(compiled.wasm).equals(fs.readFileSync(key('billing.wasm'))));
    const matchArtifacts = (artifacts: Record<string, string>) => {
      for (const [file, hash] of Object.entries(artifacts)) check(`${file} matches its transcript hash`, fs.existsSync(key(file)) && sha256File(key(file)) === hash);
    };

    if ('format' in transcript && transcript.format === TRANSCRIPT_FORMAT) {
      check('circuit sources match the transcript', isDeepStrictEqual(sourceHashes(setup.circuit), transcript.build.sources));
      matchArtifacts(transcript.build.artifacts);
      ptau = path.join(opts.keysRoot ?? KEYS_ROOT, transcript.build.ptau_file);
      if (!opts.skipZkeyVerify) {
        const r = await verifyCeremonyFiles({ transcript: key('transcript.json'), r1cs: compiled.r1cs, ptau, zkey: key('billing.zkey'), vkey: key('verification_key.json') });
        check('meterproof ceremony verify: transcript, zkey chain, circuit, ptau and verification key', !isFailure(r), isFailure(r) ? `${r.code}: ${r.reason}` : undefined);
      }
    } else {
      const legacy = transcript as LegacyTranscript;
      ptau = key(legacy.phase1.prepared);
      check('circuit sources match the transcript', isDeepStrictEqual(sourceHashes(setup.circuit), legacy.circuit.sources));
      check('r1cs matches the transcript', sha256File(compiled.r1cs) === legacy.circuit.r1cs_sha256);
      const info = await snarkjs.r1cs.info(mem(compiled.r1cs));
      check('constraint count matches the transcript', info.nConstraints === legacy.circuit.constraints, `${info.nConstraints} constraints`);
      matchArtifacts(legacy.artifacts);
      if (!opts.skipZkeyVerify) {
        const chain = await readZkeyChain(compiled.r1cs, ptau, key('billing.zkey'));
        check('zkey verifies against the r1cs and the committed ptau', chain.chainValid, chain.chainError);
        const recorded = [
          ...legacy.phase2.contributions.map((c) => ({ name: c.name, hash: c.hash })),
          { name: legacy.phase2.beacon.name, hash: legacy.phase2.beacon.hash, beacon: { value: legacy.phase2.beacon.value, iterationsExp: legacy.phase2.beacon.iterations_exp } },
        ];
        check('the zkey’s contributions and beacon are the transcript’s', isDeepStrictEqual(chain.zkeyContributions, recorded));
      }
    }
    const exported = await snarkjs.zKey.exportVerificationKey(mem(key('billing.zkey')), quietLogger);
    const committed: unknown = JSON.parse(fs.readFileSync(key('verification_key.json'), 'utf8'));
    check('verification_key.json equals the key exported from the zkey', isDeepStrictEqual(exported, committed));
    if (opts.verifyPtau) check('powers of tau verify', await snarkjs.powersOfTau.verify(mem(ptau), quietLogger));
  } catch (e) {
    check('ceremony verification ran', false, e instanceof Error ? e.message : String(e));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    const g = globalThis as { curve_bn128?: { terminate(): Promise<void> } | null };
    await g.curve_bn128?.terminate();
  }
  return checks;
}

/** Bindings whose circuit is in the repository: their keys must verify. */
export const presentBindings = (): string[] => Object.keys(BINDINGS).filter((b) => fs.existsSync(BINDINGS[b]!.circuit));

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { binding: { type: 'string' }, ptau: { type: 'boolean', default: false } } });
  let failed = 0;
  for (const binding of values.binding ? [values.binding] : presentBindings()) {
    console.log(`${binding}:`);
    const checks = await verifyCeremony({ binding, verifyPtau: values.ptau, log: (l) => console.log(`  ${l}`) });
    failed += checks.filter((c) => !c.ok).length;
  }
  console.log(failed === 0 ? 'ceremony artifacts verified' : `${failed} check(s) failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}
