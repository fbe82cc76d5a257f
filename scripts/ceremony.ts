// `npm run ceremony -- --binding <version>`: the maintainers' development setup for one binding
// version, through the same steps a multi-party ceremony uses (`meterproof ceremony init`,
// `contribute` twice, `beacon`, `verify`, each as its own process). DEVELOPMENT ONLY: every
// party is this machine, so whoever runs it could keep the toxic waste (docs/ceremony.md).
//
//   --ptau <file>          phase 1 to use (default: the smallest committed keys/pot<N>.ptau that
//                          fits; if none fits, a local development phase 1 is made and committed)
//   --beacon-source <text> --beacon-hash <hex>   the announced public beacon and its value
//                          (default: a value drawn here, labelled as not public)
//   --iterations <n>       beacon iterations exponent (default 10)
//   --publish <final.zkey> [--transcript <t.json>]   instead of running a development phase 2,
//                          verify and commit the result of a multi-party ceremony
//
// Writes <keys dir of the binding>/: billing.wasm, billing.zkey, verification_key.json and
// transcript.json (the ceremony transcript plus a `build` record: sources, artifacts, tools).
// Re-check with `npm run ceremony:verify`.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import * as snarkjs from 'snarkjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const KEYS_ROOT = path.join(ROOT, 'keys');

export interface BindingSetup {
  /** The circuit's main file. */
  readonly circuit: string;
  /** Where its keys live. */
  readonly keysDir: string;
  /** Keys made by the earlier single-machine script (its transcript has the older layout);
   *  never regenerated: bundles proved with them must keep verifying. */
  readonly frozen: boolean;
}

/** Binding version → circuit and keys. */
export const BINDINGS: Record<string, BindingSetup> = {
  'bn128-poseidon8-v1': { circuit: path.join(ROOT, 'circuits', 'billing.circom'), keysDir: KEYS_ROOT, frozen: true },
  'bn128-poseidon8-v2': { circuit: path.join(ROOT, 'circuits', 'billing_v2.circom'), keysDir: path.join(KEYS_ROOT, 'bn128-poseidon8-v2'), frozen: false },
};

/** v1, kept for the modules that import these names. */
export const CIRCUIT = BINDINGS['bn128-poseidon8-v1']!.circuit;
export const KEYS_DIR = KEYS_ROOT;
export const BINDING = 'bn128-poseidon8-v1';

const run = promisify(execFile);

export const sha256File = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export const quietLogger: snarkjs.Logger = { debug() {}, info() {}, warn: (m) => console.warn(m), error: (m) => console.error(m) };

function packageVersion(name: string): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** The repository's circuit files the main file includes (transitively), main file first;
 *  circomlib's files are pinned by its version instead. */
export function circuitSourceFiles(circuit: string = CIRCUIT): string[] {
  const seen: string[] = [];
  const visit = (file: string) => {
    if (seen.includes(file)) return;
    seen.push(file);
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/^\s*include\s+"([^"]+)"\s*;/gm)) {
      const dep = path.resolve(path.dirname(file), m[1]!);
      if (fs.existsSync(dep)) visit(dep);
    }
  };
  visit(circuit);
  return seen;
}

/** sha256 of each source file, keyed by its path in the repository. */
export const sourceHashes = (circuit: string): Record<string, string> =>
  Object.fromEntries(circuitSourceFiles(circuit).map((f) => [path.relative(ROOT, f), sha256File(f)]));

export interface Compiled {
  readonly dir: string;
  readonly r1cs: string;
  readonly wasm: string;
  readonly sym: string;
  readonly circomVersion: string;
  readonly log: string;
}

/** Compiles a circuit (default v1) with --O2 --inspect into `outDir`. Throws on any warning. */
export async function compileCircuit(outDir: string, circuit: string = CIRCUIT): Promise<Compiled> {
  const cli = path.join(ROOT, 'node_modules', 'circom2', 'cli.js');
  fs.mkdirSync(outDir, { recursive: true });
  const args = [cli, circuit, '--r1cs', '--wasm', '--sym', '--O2', '--inspect', '-l', path.join(ROOT, 'node_modules', 'circomlib', 'circuits'), '-o', outDir];
  const { stdout, stderr } = await run(process.execPath, args, { cwd: ROOT, maxBuffer: 64 << 20 });
  const log = `${stdout}\n${stderr}`;
  if (/warning/i.test(log)) throw new Error(`circom printed warnings:\n${log}`);
  const version = await run(process.execPath, [cli, '--version'], { cwd: ROOT });
  const circomVersion = /circom compiler (\S+)/.exec(version.stdout)?.[1] ?? 'unknown';
  const base = path.basename(circuit, '.circom');
  return {
    dir: outDir,
    r1cs: path.join(outDir, `${base}.r1cs`),
    wasm: path.join(outDir, `${base}_js`, `${base}.wasm`),
    sym: path.join(outDir, `${base}.sym`),
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

/** The smallest committed keys/pot<N>.ptau with N >= power, if any. */
function committedPtau(keysRoot: string, power: number): string | undefined {
  const found = fs
    .readdirSync(keysRoot)
    .map((f) => /^pot(\d+)\.ptau$/.exec(f))
    .filter((m): m is RegExpExecArray => !!m && Number(m[1]) >= power)
    .sort((a, b) => Number(a[1]) - Number(b[1]));
  return found[0] ? path.join(keysRoot, found[0][0]) : undefined;
}

/** A one-machine development phase 1: two contributions and a local beacon, then prepared. */
async function devPhase1(power: number, tmp: string, step: (s: string) => void): Promise<{ file: string; record: unknown }> {
  const curve = await snarkjs.curves.getCurveFromName('bn128');
  const ptau = (i: number) => path.join(tmp, `pot${power}_${i}.ptau`);
  await snarkjs.powersOfTau.newAccumulator(curve, power, ptau(0), quietLogger);
  const contributions: { name: string; hash: string }[] = [];
  for (let i = 1; i <= 2; i++) {
    const name = `meterproof dev phase1 contributor ${i}`;
    step(`phase 1: ${name}`);
    contributions.push({ name, hash: hex(await snarkjs.powersOfTau.contribute(ptau(i - 1), ptau(i), name, randomBytes(64).toString('hex'), quietLogger)) });
  }
  const beacon = { name: 'meterproof dev phase1 beacon', value: randomBytes(32).toString('hex'), iterations_exp: 10, hash: '' };
  const b = await snarkjs.powersOfTau.beacon(ptau(2), ptau(3), beacon.name, beacon.value, beacon.iterations_exp, quietLogger);
  if (!b) throw new Error('phase 1 beacon failed');
  beacon.hash = hex(b);
  step('phase 1: prepare phase 2 (slow)');
  const file = path.join(tmp, `pot${power}.ptau`);
  await snarkjs.powersOfTau.preparePhase2(ptau(3), file, quietLogger);
  if (!(await snarkjs.powersOfTau.verify(file, quietLogger))) throw new Error('the prepared powers of tau do not verify');
  return { file, record: { curve: 'bn128', power, contributions, beacon, note: 'development phase 1 made on one machine by scripts/ceremony.ts' } };
}

const USAGE = `usage: npm run ceremony -- --binding <${Object.keys(BINDINGS).join('|')}> [--ptau <file>] [--beacon-source <text> --beacon-hash <hex>] [--iterations <n>]
       npm run ceremony -- --binding <version> --publish <final.zkey> [--transcript <t.json>] [--ptau <file>]`;

export interface CeremonyOptions {
  readonly binding: string;
  readonly setup: BindingSetup;
  /** Where the shared ptau files live (default keys/). */
  readonly keysRoot?: string;
  readonly ptau?: string;
  readonly beaconSource?: string;
  readonly beaconHash?: string;
  readonly iterations?: string;
  /** A finished multi-party ceremony's final zkey: verify and write it instead of a dev phase 2. */
  readonly publish?: string;
  readonly transcript?: string;
  readonly log?: (line: string) => void;
}

async function ceremony(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      binding: { type: 'string' },
      ptau: { type: 'string' },
      'beacon-source': { type: 'string' },
      'beacon-hash': { type: 'string' },
      iterations: { type: 'string', default: '10' },
      publish: { type: 'string' },
      transcript: { type: 'string' },
    },
  });
  const binding = values.binding ?? '';
  const setup = BINDINGS[binding];
  if (!setup) throw new Error(USAGE);
  if (setup.frozen) throw new Error(`${binding}'s keys are frozen: proofs made with them must keep verifying`);
  await runCeremony({
    binding,
    setup,
    ...(values.ptau ? { ptau: values.ptau } : {}),
    ...(values['beacon-source'] !== undefined ? { beaconSource: values['beacon-source'] } : {}),
    ...(values['beacon-hash'] !== undefined ? { beaconHash: values['beacon-hash'] } : {}),
    iterations: values.iterations,
    ...(values.publish ? { publish: values.publish } : {}),
    ...(values.transcript ? { transcript: values.transcript } : {}),
  });
}

/** The development ceremony, or the publication of a multi-party one, for one binding. */
export async function runCeremony(o: CeremonyOptions): Promise<void> {
  const { binding, setup } = o;
  const keysRoot = o.keysRoot ?? KEYS_ROOT;
  if (!fs.existsSync(setup.circuit)) throw new Error(`${path.relative(ROOT, setup.circuit)} does not exist`);
  if ((o.beaconSource === undefined) !== (o.beaconHash === undefined)) throw new Error('give --beacon-source and --beacon-hash together');

  const started = Date.now();
  const step = (s: string) => (o.log ?? console.log)(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${s}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meterproof-ceremony-'));
  const cli = (...args: string[]) => run(process.execPath, [path.join(ROOT, 'bin', 'meterproof.js'), 'ceremony', ...args], { cwd: tmp, maxBuffer: 16 << 20 }).then((r) => r.stdout.trim());
  try {
    step(`compiling ${path.relative(ROOT, setup.circuit)}`);
    const compiled = await compileCircuit(path.join(tmp, 'build'), setup.circuit);
    const info = await snarkjs.r1cs.info(compiled.r1cs);
    const power = powerFor(info);
    step(`${info.nConstraints} constraints, ${info.nPubInputs} public inputs, ${info.nOutputs} outputs: powers of tau 2^${power} or more`);

    let ptau: string | undefined;
    let phase1: unknown = undefined;
    let final: string;
    let transcript: string;
    let beaconValue: string | undefined;
    if (o.publish) {
      // ---- a finished multi-party ceremony: its ptau is the committed one with the transcript's hash
      final = path.resolve(o.publish);
      transcript = path.resolve(o.transcript ?? path.join(path.dirname(final), 'transcript.json'));
      const want = (JSON.parse(fs.readFileSync(transcript, 'utf8')) as { ptau?: { sha256?: string } }).ptau?.sha256;
      ptau = o.ptau ? path.resolve(o.ptau) : fs.readdirSync(keysRoot).filter((f) => f.endsWith('.ptau')).map((f) => path.join(keysRoot, f)).find((f) => sha256File(f) === want);
      if (!ptau) throw new Error('no committed keys/*.ptau has the transcript\'s ptau hash: give --ptau');
    } else {
      // ---- phase 1: reuse a given or committed ptau, else make a development one
      ptau = o.ptau ? path.resolve(o.ptau) : committedPtau(keysRoot, power);
      if (!ptau) {
        const made = await devPhase1(power, tmp, step);
        ptau = made.file;
        phase1 = made.record;
      }
    }
    if (path.dirname(ptau) !== keysRoot) {
      fs.mkdirSync(keysRoot, { recursive: true });
      const target = path.join(keysRoot, path.basename(ptau));
      if (fs.existsSync(target) && sha256File(target) !== sha256File(ptau)) throw new Error(`${target} exists with other content`);
      fs.copyFileSync(ptau, target);
      ptau = target;
    }
    step(`phase 1: ${path.relative(ROOT, ptau)}`);

    if (!o.publish) {
      // ---- phase 2: the steps of a multi-party ceremony, each its own process
      const source = o.beaconSource ?? 'development ceremony: a value drawn at random by scripts/ceremony.ts after the contributions (not a public beacon)';
      beaconValue = o.beaconHash ?? randomBytes(32).toString('hex');
      const base = path.basename(compiled.r1cs, '.r1cs');
      const z = (n: string) => path.join(tmp, 'phase2', `${base}_${n}.zkey`);
      transcript = path.join(tmp, 'phase2', 'transcript.json');
      final = z('final');
      step('phase 2: ceremony init');
      await cli('init', '--circuit', compiled.r1cs, '--ptau', ptau, '--out', path.join(tmp, 'phase2'), '--beacon-source', source, '--label', binding);
      for (let i = 1; i <= 2; i++) {
        step(`phase 2: ceremony contribute (meterproof dev contributor ${i})`);
        await cli('contribute', z(`000${i - 1}`), z(`000${i}`), '--name', `meterproof dev contributor ${i}`);
      }
      step('phase 2: ceremony beacon');
      await cli('beacon', z('0002'), final, '--beacon-hash', beaconValue, '--iterations', o.iterations ?? '10');
    }
    const vkey = await snarkjs.zKey.exportVerificationKey(final!, quietLogger);
    fs.writeFileSync(path.join(tmp, 'verification_key.json'), `${JSON.stringify(vkey, null, 2)}\n`);
    step('phase 2: ceremony verify');
    const check = ['verify', '--transcript', transcript!, '--circuit', compiled.r1cs, '--ptau', ptau, '--zkey', final!, '--vkey', path.join(tmp, 'verification_key.json')];
    step(await cli(...check, ...(beaconValue ? ['--beacon-hash', beaconValue] : [])));

    // ---- write the binding's keys
    const dir = setup.keysDir;
    fs.mkdirSync(dir, { recursive: true });
    const out = {
      wasm: path.join(dir, 'billing.wasm'),
      zkey: path.join(dir, 'billing.zkey'),
      vkey: path.join(dir, 'verification_key.json'),
      transcript: path.join(dir, 'transcript.json'),
    };
    fs.copyFileSync(compiled.wasm, out.wasm);
    fs.copyFileSync(final!, out.zkey);
    fs.copyFileSync(path.join(tmp, 'verification_key.json'), out.vkey);
    const t = JSON.parse(fs.readFileSync(transcript!, 'utf8')) as Record<string, unknown>;
    const build = {
      note: o.publish
        ? 'Multi-party ceremony (docs/ceremony.md), published with npm run ceremony -- --publish.'
        : 'Development ceremony: every contributor and the beacon ran on one machine (npm run ceremony); not trustworthy for production (docs/ceremony.md).',
      binding,
      circuit: path.relative(ROOT, setup.circuit),
      sources: sourceHashes(setup.circuit),
      /** The ptau, relative to keys/. */
      ptau_file: path.relative(keysRoot, ptau),
      ...(phase1 ? { phase1 } : {}),
      artifacts: Object.fromEntries([out.wasm, out.zkey, out.vkey].map((f) => [path.basename(f), sha256File(f)])),
      tools: toolVersions(compiled.circomVersion),
    };
    fs.writeFileSync(out.transcript, `${JSON.stringify({ ...t, build }, null, 2)}\n`);
    step(`done: ${Object.values(out).map((f) => path.relative(ROOT, f)).join(', ')}`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    const g = globalThis as { curve_bn128?: { terminate(): Promise<void> } | null };
    await g.curve_bn128?.terminate();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  ceremony(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
