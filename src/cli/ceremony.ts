// `meterproof ceremony`: the phase-2 trusted setup as a multi-party flow (docs/ceremony.md).
// Exit codes: 0 done / verified; 1 the step was refused or verification failed (one line naming
// the first mismatch); 2 usage or unreadable input.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ZodError } from 'zod';
import { signingKeyFromJwk } from '../core/keys.ts';
import { applyBeacon, CeremonyError, contribute, initCeremony, verifyCeremonyFiles } from '../ceremony/index.ts';
import { isFailure } from '../core/ceremony.ts';
import { terminateCurve } from '../verifier/groth16.ts';
import { UsageError, err, out, readJsonFile } from './io.ts';

export const CEREMONY_HELP = `meterproof ceremony — Groth16 phase 2, one contributor per machine (docs/ceremony.md)

  meterproof ceremony init --circuit <r1cs> --ptau <ptau> --out <dir> --beacon-source <text> [--label <text>]
      coordinator: the initial zkey <dir>/<circuit>_0000.zkey (snarkjs zkey new) and
      <dir>/transcript.json. --beacon-source names, before anyone contributes, the public value
      the beacon will be (e.g. "drand quicknet round 12345678 randomness").

  meterproof ceremony contribute <in.zkey> <out.zkey> --name <who> [--transcript <t.json>]
                                 [--entropy-file <file|->] [--key <key.json>]
      contributor, on their own machine: one contribution to the latest zkey of the transcript
      (default: transcript.json beside <in.zkey>), which gets your attestation appended (name,
      contribution hash, sha256 of both zkeys, time; signed with --key, a private key from
      \`meterproof keys generate\`). Entropy: 64 bytes from the OS, plus --entropy-file's bytes
      (- reads stdin); it is never written anywhere.

  meterproof ceremony beacon <in.zkey> <out.zkey> --beacon-hash <hex> --iterations <n>
                             [--transcript <t.json>] [--name <text>]
      coordinator, after the last contribution: the final zkey from the announced public value
      (hex) hashed 2^n times (10 <= n <= 63).

  meterproof ceremony verify --transcript <t.json> --circuit <r1cs> --ptau <ptau> --zkey <zkey>
                             [--vkey <verification_key.json>] [--beacon-hash <hex>] [--in-progress]
      anyone: snarkjs re-verifies the zkey chain from this r1cs and ptau; every transcript entry
      must match it in order (hash, name, zkey digests, signatures), the beacon must use the
      announced source, value and iterations, and the verification key must be the zkey's.
      --beacon-hash: the public value you looked up yourself. --in-progress: a chain without
      beacon yet (check what you received before contributing).
`;

const need = (v: string | undefined, flag: string): string => {
  if (!v) throw new UsageError(`${flag} is required (meterproof ceremony --help)`);
  return v;
};

const readable = (file: string, what: string): string => {
  if (!fs.existsSync(file)) throw new UsageError(`cannot read ${what} ${file}: ENOENT`);
  return file;
};

export async function cmdCeremony(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
    out(CEREMONY_HELP);
    return sub ? 0 : 2;
  }
  const step = steps[sub];
  if (!step) throw new UsageError(`unknown subcommand "${sub}" (meterproof ceremony --help)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    out(CEREMONY_HELP);
    return 0;
  }
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
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { circuit: { type: 'string' }, ptau: { type: 'string' }, out: { type: 'string' }, 'beacon-source': { type: 'string' }, label: { type: 'string' } },
    });
    if (positionals.length) throw new UsageError('init takes no positional arguments');
    const r = await initCeremony({
      r1cs: readable(need(values.circuit, '--circuit'), 'r1cs'),
      ptau: readable(need(values.ptau, '--ptau'), 'ptau'),
      outDir: need(values.out, '--out'),
      beaconSource: need(values['beacon-source'], '--beacon-source'),
      label: values.label ?? null,
    });
    out(`initial zkey ${r.zkey} (sha256 ${r.header.init.zkey_sha256}), circuit hash ${r.header.circuit.circuit_hash}`);
    out(`transcript ${r.transcript}: publish both; contributors run \`meterproof ceremony contribute\``);
    return 0;
  },

  async contribute(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { name: { type: 'string' }, transcript: { type: 'string' }, 'entropy-file': { type: 'string' }, key: { type: 'string' } },
    });
    const [inZkey, outZkey] = positionals;
    if (positionals.length !== 2 || !inZkey || !outZkey) throw new UsageError('usage: meterproof ceremony contribute <in.zkey> <out.zkey> --name <who> [--transcript t.json] [--entropy-file f] [--key key.json]');
    const transcript = readable(values.transcript ?? path.join(path.dirname(inZkey), 'transcript.json'), 'transcript');
    let key;
    if (values.key) {
      try {
        key = signingKeyFromJwk(readJsonFile(values.key, 'key'));
      } catch (e) {
        if (e instanceof UsageError) throw e;
        throw new UsageError(`${values.key} is not a private key file: ${e instanceof ZodError ? (e.issues[0]?.message ?? 'invalid') : (e as Error).message}`);
      }
    }
    let extraEntropy: Uint8Array | undefined;
    const ef = values['entropy-file'];
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
      name: need(values.name, '--name'),
      ...(extraEntropy ? { extraEntropy } : {}),
      ...(key ? { key } : {}),
    });
    out(`contribution ${entry.index} by ${entry.name}${entry.signature ? ` (signed by ${entry.signer?.kid})` : ''}`);
    out(`contribution hash ${entry.contribution_hash}`);
    out(`${outZkey} sha256 ${entry.output_zkey_sha256}; ${transcript} updated: send both on`);
    return 0;
  },

  async beacon(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { 'beacon-hash': { type: 'string' }, iterations: { type: 'string' }, transcript: { type: 'string' }, name: { type: 'string' } },
    });
    const [inZkey, outZkey] = positionals;
    if (positionals.length !== 2 || !inZkey || !outZkey) throw new UsageError('usage: meterproof ceremony beacon <in.zkey> <out.zkey> --beacon-hash <hex> --iterations <n>');
    const iterations = need(values.iterations, '--iterations');
    if (!/^\d{1,2}$/.test(iterations)) throw new UsageError('--iterations must be an integer exponent from 10 to 63');
    const entry = await applyBeacon({
      inZkey: readable(inZkey, 'zkey'),
      outZkey,
      transcript: readable(values.transcript ?? path.join(path.dirname(inZkey), 'transcript.json'), 'transcript'),
      value: need(values['beacon-hash'], '--beacon-hash'),
      iterationsExp: Number(iterations),
      ...(values.name ? { name: values.name } : {}),
    });
    out(`beacon applied: ${entry.source} = ${entry.value}, 2^${entry.iterations_exp} iterations`);
    out(`final zkey ${outZkey} sha256 ${entry.output_zkey_sha256}`);
    return 0;
  },

  async verify(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        transcript: { type: 'string' },
        circuit: { type: 'string' },
        ptau: { type: 'string' },
        zkey: { type: 'string' },
        vkey: { type: 'string' },
        'beacon-hash': { type: 'string' },
        'in-progress': { type: 'boolean', default: false },
      },
    });
    if (positionals.length) throw new UsageError('verify takes no positional arguments');
    const vkey = values.vkey;
    if (vkey) readJsonFile(vkey, 'verification key'); // unreadable is a usage error, not a mismatch
    const r = await verifyCeremonyFiles({
      transcript: readable(need(values.transcript, '--transcript'), 'transcript'),
      r1cs: readable(need(values.circuit, '--circuit'), 'r1cs'),
      ptau: readable(need(values.ptau, '--ptau'), 'ptau'),
      zkey: readable(need(values.zkey, '--zkey'), 'zkey'),
      ...(vkey ? { vkey } : {}),
      ...(values['beacon-hash'] !== undefined ? { expectedBeacon: values['beacon-hash'] } : {}),
      inProgress: values['in-progress'],
    });
    if (isFailure(r)) {
      err(`meterproof ceremony verify: ${r.code}: ${r.reason}`);
      return 1;
    }
    out(`OK: ${r.contributions} contribution(s) (${r.signed} signed)${r.beacon ? ' and the beacon' : ', no beacon yet'} verify against the circuit and the ptau${vkey ? '; the verification key is the zkey’s' : ''}`);
    return 0;
  },
};
