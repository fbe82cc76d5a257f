// `meterproof` command line. Exit codes: 0 ok/valid, 1 invalid, 2 unusable input or usage, 3 the
// embedded store is in use by another process.
import { CanonicalizationError } from '../core/errors.ts';
import { UsageError, err } from './io.ts';
import { cmdAttestOffline, cmdKeys, cmdRedact, cmdTrust, cmdVerify } from './offline.ts';

const HELP = `meterproof — zero-knowledge billing attestation

  meterproof serve                       serve the API (PORT, DATA_DIR, DATABASE_URL)
  meterproof worker                      a prover process on the shared PostgreSQL
  meterproof migrate                     apply database migrations
  meterproof log monitor --log <url> --state <file>
  meterproof verify <bundle> [<bundle> …] --trust <trust.json> [--revocations <list.json>]
                    [--trust-state <state.json>] [--json] [--profile strict|standard]
                    [--threads N]  many bundles: proofs checked in batches (N worker
                                   threads; default: the cores from 1,000 bundles on)
  meterproof redact <bundle> [-o out]    withhold private fields for an auditor
  meterproof keys generate [--out file]  new Ed25519 signing key (file mode 0600)
  meterproof trust --key <key.json> [--vkey keys/verification_key.json]
                    [--tariff-of <full bundle>]  add that bundle's tariff commitment
  meterproof attest --offline --event e.json --tariff t.json --key k.json [--tariff-salt <decimal>]
                                         a bn128-poseidon8-v2 bundle (no proof); the tariff
                                         version's salt is drawn at random unless given
  meterproof ceremony init|contribute|beacon|verify …
                                         Groth16 phase 2 among several parties (ceremony --help)
`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  verify: async () => cmdVerify,
  redact: async () => cmdRedact,
  keys: async () => cmdKeys,
  trust: async () => cmdTrust,
  attest: async () => cmdAttestOffline,
  serve: async () => (await import('./serve.ts')).cmdServe,
  worker: async () => (await import('./serve.ts')).cmdWorker,
  migrate: async () => (await import('./serve.ts')).cmdMigrate,
  log: async () => (await import('./log.ts')).cmdLog,
  ceremony: async () => (await import('./ceremony.ts')).cmdCeremony,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(HELP);
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    err(`meterproof: unknown command "${name}" (try meterproof --help)`);
    return 2;
  }
  try {
    return await (await load())(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`meterproof ${name}: ${e.message}`);
      return e.exitCode;
    }
    if (e instanceof TypeError && (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      err(`meterproof ${name}: ${e.message.replace(/\s*\n\s*/g, ' ')}`); // one line
      return 2;
    }
    if (e instanceof CanonicalizationError) {
      // input that has no RFC 8785 form (e.g. a lone surrogate): the input's fault, said as such
      err(`meterproof ${name}: input cannot be canonicalized (RFC 8785): ${e.message}`);
      return 2;
    }
    err(`meterproof ${name}: internal error: ${e instanceof Error ? e.message : String(e)}`);
    return 2;
  }
}
