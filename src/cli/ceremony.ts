// `meterproof ceremony`: the phase-2 trusted setup as a multi-party flow (docs/ceremony.md).
// Exit codes: 0 done / verified; 1 the step was refused or verification failed (one line naming
// the first mismatch); 2 usage or unreadable input. Flags: usage.js.
import fs from 'node:fs';
import path from 'node:path';
import { ZodError } from 'zod';
import { signingKeyFromJwk } from '../core/keys.ts';
import { applyBeacon, CeremonyError, contribute, initCeremony, verifyCeremonyFiles } from '../ceremony/index.ts';
import { isFailure } from '../core/ceremony.ts';
import { terminateCurve } from '../verifier/groth16.ts';
import { UsageError, err, out, parseCommand, readJsonFile } from './io.ts';

const need = (v: string | undefined, flag: string): string => {
  if (!v) throw new UsageError(`${flag} is required (meterproof ceremony --help)`);
  return v;
};

const readable = (file: string, what: string): string => {
  if (!fs.existsSync(file)) throw new UsageError(`cannot read ${what} ${file}: ENOENT`);
  return file;
};

export async function cmdCeremony(argv: string[]): Promise<number> {
  const [sub = '', ...rest] = argv;
  const step = Object.hasOwn(steps, sub) ? steps[sub] : undefined;
  if (!step) throw new UsageError(`${sub ? `unknown subcommand "${sub}"` : 'a subcommand is needed'}: init, contribute, beacon or verify (meterproof ceremony --help)`);
  try {
    return await step(rest);
  } catch (e) {
    if (e instanceof CeremonyError) {
      err(`meterproof ceremony ${sub}: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    await terminateCurve();
  }
}

const steps: Record<string, (argv: string[]) => Promise<number>> = {
  async init(argv) {
    const a = parseCommand('ceremony init', argv);
    const r = await initCeremony({
      r1cs: readable(need(a.str('circuit'), '--circuit'), 'r1cs'),
      ptau: readable(need(a.str('ptau'), '--ptau'), 'ptau'),
      outDir: need(a.str('out'), '--out'),
      beaconSource: need(a.str('beacon-source'), '--beacon-source'),
      label: a.str('label') ?? null,
    });
    out(`initial zkey ${r.zkey} (sha256 ${r.header.init.zkey_sha256}), circuit hash ${r.header.circuit.circuit_hash}`);
    out(`transcript ${r.transcript}: publish both; contributors run \`meterproof ceremony contribute\``);
    return 0;
  },

  async contribute(argv) {
    const a = parseCommand('ceremony contribute', argv, 2);
    const [inZkey = '', outZkey = ''] = a.positionals;
    const transcript = readable(a.str('transcript') ?? path.join(path.dirname(inZkey), 'transcript.json'), 'transcript');
    const keyFile = a.str('key');
    let key;
    if (keyFile) {
      try {
        key = signingKeyFromJwk(readJsonFile(keyFile, 'key'));
      } catch (e) {
        if (e instanceof UsageError) throw e;
        throw new UsageError(`${keyFile} is not a private key file: ${e instanceof ZodError ? (e.issues[0]?.message ?? 'invalid') : (e as Error).message}`);
      }
    }
    let extraEntropy: Uint8Array | undefined;
    const ef = a.str('entropy-file');
    if (ef !== undefined) {
      try {
        extraEntropy = new Uint8Array(fs.readFileSync(ef === '-' ? 0 : ef));
      } catch (e) {
        throw new UsageError(`cannot read entropy file ${ef}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
    }
    const entry = await contribute({
      inZkey: readable(inZkey, 'zkey'),
      outZkey,
      transcript,
      name: need(a.str('name'), '--name'),
      ...(extraEntropy ? { extraEntropy } : {}),
      ...(key ? { key } : {}),
    });
    out(`contribution ${entry.index} by ${entry.name}${entry.signature ? ` (signed by ${entry.signer?.kid})` : ''}`);
    out(`contribution hash ${entry.contribution_hash}`);
    out(`${outZkey} sha256 ${entry.output_zkey_sha256}; ${transcript} updated: send both on`);
    return 0;
  },

  async beacon(argv) {
    const a = parseCommand('ceremony beacon', argv, 2);
    const [inZkey = '', outZkey = ''] = a.positionals;
    const iterations = need(a.str('iterations'), '--iterations');
    if (!/^\d{1,2}$/.test(iterations)) throw new UsageError('--iterations must be an integer exponent from 10 to 63');
    const entry = await applyBeacon({
      inZkey: readable(inZkey, 'zkey'),
      outZkey,
      transcript: readable(a.str('transcript') ?? path.join(path.dirname(inZkey), 'transcript.json'), 'transcript'),
      value: need(a.str('beacon-hash'), '--beacon-hash'),
      iterationsExp: Number(iterations),
      ...(a.str('name') ? { name: a.str('name') } : {}),
    });
    out(`beacon applied: ${entry.source} = ${entry.value}, 2^${entry.iterations_exp} iterations`);
    out(`final zkey ${outZkey} sha256 ${entry.output_zkey_sha256}`);
    return 0;
  },

  async verify(argv) {
    const a = parseCommand('ceremony verify', argv);
    const vkey = a.str('vkey');
    const beaconHash = a.str('beacon-hash');
    if (vkey) readJsonFile(vkey, 'verification key'); // unreadable is a usage error, not a mismatch
    const r = await verifyCeremonyFiles({
      transcript: readable(need(a.str('transcript'), '--transcript'), 'transcript'),
      r1cs: readable(need(a.str('circuit'), '--circuit'), 'r1cs'),
      ptau: readable(need(a.str('ptau'), '--ptau'), 'ptau'),
      zkey: readable(need(a.str('zkey'), '--zkey'), 'zkey'),
      ...(vkey ? { vkey } : {}),
      ...(beaconHash !== undefined ? { expectedBeacon: beaconHash } : {}),
      inProgress: a.bool('in-progress'),
    });
    if (isFailure(r)) {
      err(`meterproof ceremony verify: ${r.code}: ${r.reason}`);
      return 1;
    }
    out(`OK: ${r.contributions} contribution(s) (${r.signed} signed)${r.beacon ? ' and the beacon' : ', no beacon yet'} verify against the circuit and the ptau${vkey ? '; the verification key is the zkey’s' : ''}`);
    return 0;
  },
};
