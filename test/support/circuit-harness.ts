// A compiled circuit for negative tests (test/circuit-negative, test/circuit-v2-negative): the
// witness calculator, the .r1cs constraints and the .sym wires, with the checks those tests share:
// which constraints a (crafted) witness violates, which signals a constraint involves, and the
// failed assertion of a refused input.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { WitnessCalculatorBuilder, type WitnessCalculator } from 'circom_runtime';
import { BN128_P } from '../../src/core/field.ts';
import { readR1cs, type Lc, type R1cs } from './r1cs.ts';
import type { Input } from './charge-model.ts';

const P = BN128_P;
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);

/** circom2 (the npm WASI build of circom), run from the repository root like the ceremony does. */
export async function circom(source: string, outDir: string, flags: string[]): Promise<void> {
  const cli = path.join(ROOT, 'node_modules', 'circom2', 'cli.js');
  await run(process.execPath, [cli, source, ...flags, '--wasm', '--sym', '-l', 'node_modules/circomlib/circuits', '-o', outDir], {
    cwd: ROOT,
    maxBuffer: 64 << 20,
  });
}

/** signal name → witness index, from a .sym file (signals O2 eliminated have index -1: skipped). */
export function readSym(file: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const [, varIdx, , name] = line.split(',');
    if (name && Number(varIdx) >= 0) m.set(name, Number(varIdx));
  }
  return m;
}

/** Runs f with console.error/log silenced (the witness calculator prints every failed assertion). */
export async function quiet<T>(f: () => Promise<T>): Promise<T> {
  const [error, log] = [console.error, console.log];
  console.error = () => {};
  console.log = () => {};
  try {
    return await f();
  } finally {
    console.error = error;
    console.log = log;
  }
}

/** The 1-based line of `source` holding `snippet`. */
export const lineIn = (source: string[], snippet: string): number => {
  const i = source.findIndex((l) => l.includes(snippet));
  if (i < 0) throw new Error(`no source line with ${snippet}`);
  return i + 1;
};

export class CompiledCircuit {
  /** Witnesses checked to satisfy every constraint (unsatisfied() with no base, returning []). */
  readonly satisfying = new WeakSet<readonly bigint[]>();
  /** every signal name of the circuit, including those O2 eliminated (no wire) */
  readonly labels: Set<string>;
  readonly names: Map<number, string>;
  readonly constraintsOf: number[][];
  private seenErrors = '';

  private constructor(
    readonly r1csFile: string,
    /** The circuit's witness calculator (throws on a failed assertion). */
    readonly wc: WitnessCalculator,
    readonly r1cs: R1cs,
    readonly wires: Map<string, number>,
    symFile: string,
  ) {
    this.labels = new Set(fs.readFileSync(symFile, 'utf8').split('\n').map((l) => l.split(',')[3] ?? '').filter(Boolean));
    this.names = new Map([...wires].map(([n, w]) => [w, n]));
    this.constraintsOf = Array.from({ length: r1cs.nWires }, () => []);
    r1cs.constraints.forEach((c, i) => {
      for (const w of new Set(c.flat().map(([wire]) => wire))) this.constraintsOf[w]!.push(i);
    });
  }

  /** Compiles `source` (--O2) into outDir and loads it. */
  static async compile(source: string, outDir: string): Promise<CompiledCircuit> {
    await circom(source, outDir, ['--r1cs', '--O2']);
    return CompiledCircuit.load(source, outDir);
  }

  /** Loads a circuit already compiled into outDir. */
  static async load(source: string, outDir: string): Promise<CompiledCircuit> {
    const base = path.basename(source, '.circom');
    const r1csFile = path.join(outDir, `${base}.r1cs`);
    const wc = await WitnessCalculatorBuilder(new Uint8Array(fs.readFileSync(path.join(outDir, `${base}_js`, `${base}.wasm`))));
    const sym = path.join(outDir, `${base}.sym`);
    return new CompiledCircuit(r1csFile, wc, readR1cs(fs.readFileSync(r1csFile)), readSym(sym), sym);
  }

  wire(name: string): number {
    const w = this.wires.get(name);
    if (w === undefined) throw new Error(`no witness wire for ${name}`);
    return w;
  }

  /** Indices of the constraints (A·w)(B·w) = C·w that the witness violates. With `base` (a witness
   *  already shown to satisfy every constraint), only the constraints that involve a wire where w
   *  differs from base are evaluated: the others are satisfied as they are in base. */
  unsatisfied(w: readonly bigint[], base?: readonly bigint[]): number[] {
    const { r1cs } = this;
    if (w.length !== r1cs.nWires) throw new Error(`witness has ${w.length} wires, the r1cs ${r1cs.nWires}`);
    let which: Iterable<number> = r1cs.constraints.keys();
    if (base) {
      if (!this.satisfying.has(base)) throw new Error('the base witness was not checked to satisfy the r1cs');
      const s = new Set<number>();
      w.forEach((v, i) => {
        if (v !== base[i]) for (const c of this.constraintsOf[i]!) s.add(c);
      });
      which = [...s].sort((a, b) => a - b);
    }
    const ev = (l: Lc) => l.reduce((acc, [wi, coef]) => (acc + coef * w[wi]!) % P, 0n);
    const bad: number[] = [];
    for (const i of which) {
      const [a, b, c] = r1cs.constraints[i]!;
      if ((ev(a) * ev(b) - ev(c)) % P !== 0n) bad.push(i);
    }
    if (!base && bad.length === 0) this.satisfying.add(w);
    return bad;
  }

  /** Witness wires of the signals whose names start with one of the prefixes. */
  wiresOf(...prefixes: string[]): Set<number> {
    return new Set([...this.wires].filter(([n]) => prefixes.some((p) => n.startsWith(p))).map(([, i]) => i));
  }

  touches(i: number, ws: Set<number>): boolean {
    return this.r1cs.constraints[i]!.some((lc) => lc.some(([w]) => ws.has(w)));
  }

  describeConstraint(i: number): string {
    return `constraint ${i}: ${[...new Set(this.r1cs.constraints[i]!.flat().map(([w]) => this.names.get(w) ?? `wire ${w}`))].join(' ')}`;
  }

  /** The crafted witness w violates at least one constraint, and every violated constraint belongs
   *  to one of the named checks (so the patch is consistent everywhere else). */
  expectCaughtBy(what: string, w: readonly bigint[], honest: readonly bigint[], ...checks: string[]): number[] {
    const bad = this.unsatisfied(w, honest);
    expect(bad.length, `${what}: the R1CS must reject`).toBeGreaterThan(0);
    const ws = this.wiresOf(...checks);
    expect(ws.size, checks.join(', ')).toBeGreaterThan(0);
    for (const i of bad) expect(this.touches(i, ws), `${what}: ${this.describeConstraint(i)} is outside ${checks.join(', ')}`).toBe(true);
    return bad;
  }

  /** Witness generation fails; returns the failed assertion's trace, innermost first, as
   *  "Template:line" (the calculator accumulates error text across runs: only the new part). */
  async expectNoWitness(input: Input, what: string): Promise<string[]> {
    let message = '';
    await quiet(async () => {
      try {
        await this.wc.calculateWitness(input, true);
      } catch (e) {
        message = e instanceof Error ? e.message : String(e);
      }
    });
    expect(message, `${what}: expected no witness`).toMatch(/Assert Failed/);
    const errors = message.slice(message.indexOf('Assert Failed.') + 'Assert Failed.'.length);
    const fresh = errors.startsWith(this.seenErrors) ? errors.slice(this.seenErrors.length) : errors;
    this.seenErrors = errors;
    return [...fresh.matchAll(/Error in template (\w+?)_\d+ line: (\d+)/g)].map((m) => `${m[1]}:${m[2]}`);
  }
}
