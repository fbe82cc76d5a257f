// `npm run ceremony`: a one-machine Groth16 trusted setup for circuits/billing.circom
// (bn128-poseidon8-v1). DEVELOPMENT ONLY — whoever runs it could keep the toxic waste; the
// multi-party flow is in docs/ceremony.md. Re-check the output with `npm run ceremony:verify`.
//
// Phase 1 (powers of tau, bn128, the smallest power that fits): new accumulator, 2 contributions
// with fresh random entropy, a random beacon, prepare phase 2. Phase 2 (circuit specific):
// groth16 setup, 2 contributions, a beacon; export the verification key.
// Writes keys/: billing.wasm, billing.zkey, verification_key.json, pot<N>.ptau, transcript.json.
// No entropy is stored anywhere: each contribution's entropy lives in one local variable.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import * as snarkjs from 'snarkjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CIRCUIT = path.join(ROOT, 'circuits', 'billing.circom');
export const KEYS_DIR = path.join(ROOT, 'keys');
export const BINDING = 'bn128-poseidon8-v1';

const run = promisify(execFile);

export const sha256File = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export const quietLogger: snarkjs.Logger = { debug() {}, info() {}, warn: (m) => console.warn(m), error: (m) => console.error(m) };
const infoLogger: snarkjs.Logger = { ...quietLogger, info: (m) => console.log(`  ${m}`) };

function packageVersion(name: string): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** The circuit sources that determine the r1cs (billing.circom and circuits/lib), hashed in order. */
export function circuitSourceFiles(): string[] {
  const lib = path.join(ROOT, 'circuits', 'lib');
  const libFiles = fs.existsSync(lib) ? fs.readdirSync(lib).filter((f) => f.endsWith('.circom')).sort().map((f) => path.join(lib, f)) : [];
  return [CIRCUIT, ...libFiles];
}

export interface Compiled {
  readonly dir: string;
  readonly r1cs: string;
  readonly wasm: string;
  readonly sym: string;
  readonly circomVersion: string;
  readonly log: string;
}

/** Compiles circuits/billing.circom with --O2 --inspect into `outDir`. Throws on any warning. */
export async function compileCircuit(outDir: string): Promise<Compiled> {
  const cli = path.join(ROOT, 'node_modules', 'circom2', 'cli.js');
  const args = [cli, CIRCUIT, '--r1cs', '--wasm', '--sym', '--O2', '--inspect', '-l', path.join(ROOT, 'node_modules', 'circomlib', 'circuits'), '-o', outDir];
  const { stdout, stderr } = await run(process.execPath, args, { cwd: ROOT, maxBuffer: 64 << 20 });
  const log = `${stdout}\n${stderr}`;
  if (/warning/i.test(log)) throw new Error(`circom printed warnings:\n${log}`);
  const version = await run(process.execPath, [cli, '--version'], { cwd: ROOT });
  const circomVersion = /circom compiler (\S+)/.exec(version.stdout)?.[1] ?? 'unknown';
  return {
    dir: outDir,
    r1cs: path.join(outDir, 'billing.r1cs'),
    wasm: path.join(outDir, 'billing_js', 'billing.wasm'),
    sym: path.join(outDir, 'billing.sym'),
    circomVersion,
    log,
  };
}

export function toolVersions(circom: string): Record<string, string> {
  return {
    circom,
    circom2: packageVersion('circom2'),
    circomlib: packageVersion('circomlib'),
    snarkjs: packageVersion('snarkjs'),
    node: process.version,
  };
}

/** Smallest power of two domain that holds the constraints plus one per public input (snarkjs). */
export function powerFor(info: { nConstraints: number; nPubInputs: number; nOutputs: number }): number {
  const needed = info.nConstraints + info.nPubInputs + info.nOutputs + 1;
  let power = 1;
  while (2 ** power < needed) power++;
  return Math.max(power, 8);
}

/** Fresh contribution entropy: 64 random bytes, hex. Never written anywhere. */
const entropy = (): string => randomBytes(64).toString('hex');

interface Contribution {
  name: string;
  hash: string;
}

interface Beacon {
  name: string;
  /** The beacon value (hex). Development ceremonies draw it locally; see docs/ceremony.md. */
  value: string;
  iterations_exp: number;
  hash: string;
}

async function ceremony(): Promise<void> {
  const started = Date.now();
  const step = (s: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${s}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meterproof-ceremony-'));
  const curve = await snarkjs.curves.getCurveFromName('bn128');
  try {
    step('compiling circuits/billing.circom');
    const compiled = await compileCircuit(tmp);
    const info = await snarkjs.r1cs.info(compiled.r1cs);
    const power = powerFor(info);
    step(`${info.nConstraints} constraints, ${info.nPubInputs} public inputs: powers of tau 2^${power}`);

    // ---- phase 1
    const ptau = (i: number) => path.join(tmp, `pot${power}_${i}.ptau`);
    await snarkjs.powersOfTau.newAccumulator(curve, power, ptau(0), quietLogger);
    const phase1: Contribution[] = [];
    for (let i = 1; i <= 2; i++) {
      const name = `meterproof dev phase1 contributor ${i}`;
      step(`phase 1: ${name}`);
      const h = await snarkjs.powersOfTau.contribute(ptau(i - 1), ptau(i), name, entropy(), quietLogger);
      phase1.push({ name, hash: hex(h) });
    }
    const beacon1: Beacon = { name: 'meterproof dev phase1 beacon', value: randomBytes(32).toString('hex'), iterations_exp: 10, hash: '' };
    step('phase 1: beacon');
    const b1 = await snarkjs.powersOfTau.beacon(ptau(2), ptau(3), beacon1.name, beacon1.value, beacon1.iterations_exp, quietLogger);
    if (!b1) throw new Error('phase 1 beacon failed');
    beacon1.hash = hex(b1);
    step('phase 1: prepare phase 2 (slow)');
    const finalPtau = path.join(tmp, `pot${power}.ptau`);
    await snarkjs.powersOfTau.preparePhase2(ptau(3), finalPtau, quietLogger);
    step('phase 1: verify');
    if (!(await snarkjs.powersOfTau.verify(finalPtau, quietLogger))) throw new Error('the prepared powers of tau do not verify');

    // ---- phase 2
    const zkey = (i: number) => path.join(tmp, `billing_${i}.zkey`);
    step('phase 2: groth16 setup');
    const circuitHash = hex(await snarkjs.zKey.newZKey(compiled.r1cs, finalPtau, zkey(0), quietLogger));
    const phase2: Contribution[] = [];
    for (let i = 1; i <= 2; i++) {
      const name = `meterproof dev phase2 contributor ${i}`;
      step(`phase 2: ${name}`);
      const h = await snarkjs.zKey.contribute(zkey(i - 1), zkey(i), name, entropy(), quietLogger);
      phase2.push({ name, hash: hex(h) });
    }
    const beacon2: Beacon = { name: 'meterproof dev phase2 beacon', value: randomBytes(32).toString('hex'), iterations_exp: 10, hash: '' };
    step('phase 2: beacon');
    const b2 = await snarkjs.zKey.beacon(zkey(2), zkey(3), beacon2.name, beacon2.value, beacon2.iterations_exp, quietLogger);
    if (!b2) throw new Error('phase 2 beacon failed');
    beacon2.hash = hex(b2);
    step('phase 2: verify against the r1cs and the powers of tau');
    if (!(await snarkjs.zKey.verifyFromR1cs(compiled.r1cs, finalPtau, zkey(3), infoLogger))) throw new Error('the final zkey does not verify');
    const vkey = await snarkjs.zKey.exportVerificationKey(zkey(3), quietLogger);

    // ---- write keys/
    fs.mkdirSync(KEYS_DIR, { recursive: true });
    for (const f of fs.readdirSync(KEYS_DIR)) if (/^pot\d+\.ptau$/.test(f)) fs.rmSync(path.join(KEYS_DIR, f));
    const out = {
      wasm: path.join(KEYS_DIR, 'billing.wasm'),
      zkey: path.join(KEYS_DIR, 'billing.zkey'),
      vkey: path.join(KEYS_DIR, 'verification_key.json'),
      ptau: path.join(KEYS_DIR, `pot${power}.ptau`),
      transcript: path.join(KEYS_DIR, 'transcript.json'),
    };
    fs.copyFileSync(compiled.wasm, out.wasm);
    fs.copyFileSync(zkey(3), out.zkey);
    fs.copyFileSync(finalPtau, out.ptau);
    fs.writeFileSync(out.vkey, `${JSON.stringify(vkey, null, 2)}\n`);
    const transcript = {
      binding: BINDING,
      note: 'Single-machine development ceremony: not trustworthy for production (see docs/ceremony.md).',
      created_at: new Date().toISOString(),
      circuit: {
        sources: Object.fromEntries(circuitSourceFiles().map((f) => [path.relative(ROOT, f), sha256File(f)])),
        r1cs_sha256: sha256File(compiled.r1cs),
        constraints: info.nConstraints,
        public_inputs: info.nPubInputs,
        private_inputs: info.nPrvInputs,
        wires: info.nVars,
        circuit_hash: circuitHash,
        public_signals: ['binding_commitment', 'charge', 'tariff_commitment'],
      },
      phase1: { curve: 'bn128', power, contributions: phase1, beacon: beacon1, prepared: path.basename(out.ptau) },
      phase2: { contributions: phase2, beacon: beacon2 },
      artifacts: Object.fromEntries(
        [out.wasm, out.zkey, out.vkey, out.ptau].map((f) => [path.basename(f), sha256File(f)]),
      ),
      tools: toolVersions(compiled.circomVersion),
    };
    fs.writeFileSync(out.transcript, `${JSON.stringify(transcript, null, 2)}\n`);
    step(`done: ${Object.values(out).map((f) => path.relative(ROOT, f)).join(', ')}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    await curve.terminate();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  ceremony().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
