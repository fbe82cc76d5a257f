// `npm run ceremony:verify`: re-checks keys/ against the circuit source in circuits/.
//  1. recompiles circuits/billing.circom (--O2 --inspect, no warnings);
//  2. the compiled wasm is byte-identical to keys/billing.wasm, the r1cs to the transcript's hash;
//  3. snarkjs zkey verify: keys/billing.zkey is a phase-2 setup of this r1cs over the committed
//     keys/pot<N>.ptau, with every contribution and the beacon valid;
//  4. keys/verification_key.json equals the key exported from keys/billing.zkey;
//  5. the transcript's artifact hashes, constraint count and source hashes match.
// `--ptau` also re-verifies the powers of tau file itself (slow). Exit code 1 on any failure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { pathToFileURL } from 'node:url';
import * as snarkjs from 'snarkjs';
import { circuitSourceFiles, compileCircuit, KEYS_DIR, quietLogger, ROOT, sha256File } from './ceremony.ts';

export interface CeremonyCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail?: string;
}

interface Transcript {
  circuit: { sources: Record<string, string>; r1cs_sha256: string; constraints: number };
  phase1: { power: number; prepared: string };
  artifacts: Record<string, string>;
}

export interface VerifyOptions {
  readonly keysDir?: string;
  /** Also re-verify the powers of tau (slow). */
  readonly verifyPtau?: boolean;
  /** Skip the zkey-against-r1cs-and-ptau verification (only for tests of the other checks). */
  readonly skipZkeyVerify?: boolean;
  readonly log?: (line: string) => void;
}

export async function verifyCeremony(opts: VerifyOptions = {}): Promise<CeremonyCheck[]> {
  const keysDir = opts.keysDir ?? KEYS_DIR;
  const log = opts.log ?? (() => {});
  const checks: CeremonyCheck[] = [];
  const check = (name: string, ok: boolean, detail?: string) => {
    checks.push(detail === undefined ? { name, ok } : { name, ok, detail });
    log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
  };
  const transcript = JSON.parse(fs.readFileSync(path.join(keysDir, 'transcript.json'), 'utf8')) as Transcript;
  const ptau = path.join(keysDir, transcript.phase1.prepared);
  const zkey = path.join(keysDir, 'billing.zkey');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meterproof-ceremony-verify-'));
  const curve = await snarkjs.curves.getCurveFromName('bn128');
  try {
    const compiled = await compileCircuit(tmp);
    check('circuit compiles without warnings', true);
    // snarkjs is given in-memory files: it leaves some file handles open otherwise
    const mem = (file: string) => ({ type: 'mem' as const, data: new Uint8Array(fs.readFileSync(file)) });
    const sources = Object.fromEntries(circuitSourceFiles().map((f) => [path.relative(ROOT, f), sha256File(f)]));
    check('circuit sources match the transcript', isDeepStrictEqual(sources, transcript.circuit.sources));
    check('wasm matches keys/billing.wasm', fs.readFileSync(compiled.wasm).equals(fs.readFileSync(path.join(keysDir, 'billing.wasm'))));
    check('r1cs matches the transcript', sha256File(compiled.r1cs) === transcript.circuit.r1cs_sha256);
    const info = await snarkjs.r1cs.info(mem(compiled.r1cs));
    check('constraint count matches the transcript', info.nConstraints === transcript.circuit.constraints, `${info.nConstraints} constraints`);
    for (const [file, hash] of Object.entries(transcript.artifacts)) {
      const p = path.join(keysDir, file);
      check(`${file} matches its transcript hash`, fs.existsSync(p) && sha256File(p) === hash);
    }
    if (!opts.skipZkeyVerify) {
      const ok = await snarkjs.zKey.verifyFromR1cs(mem(compiled.r1cs), mem(ptau), mem(zkey), quietLogger);
      check('zkey verifies against the r1cs and the committed ptau', ok);
    }
    const exported = await snarkjs.zKey.exportVerificationKey(mem(zkey), quietLogger);
    const committed: unknown = JSON.parse(fs.readFileSync(path.join(keysDir, 'verification_key.json'), 'utf8'));
    check('verification_key.json equals the key exported from the zkey', isDeepStrictEqual(exported, committed));
    if (opts.verifyPtau) check('powers of tau verify', await snarkjs.powersOfTau.verify(mem(ptau), quietLogger));
  } catch (e) {
    check('ceremony verification ran', false, e instanceof Error ? e.message : String(e));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    await curve.terminate();
  }
  return checks;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const checks = await verifyCeremony({ verifyPtau: process.argv.includes('--ptau'), log: (l) => console.log(l) });
  const failed = checks.filter((c) => !c.ok);
  console.log(failed.length === 0 ? 'ceremony artifacts verified' : `${failed.length} check(s) failed`);
  process.exitCode = failed.length === 0 ? 0 : 1;
}
