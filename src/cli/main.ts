// `meterproof` command line. Usage and exit codes: usage.js (`meterproof --help`), README "The
// meterproof command".
import { CanonicalizationError } from '../core/errors.ts';
import { UsageError, checkStdinArguments, err } from './io.ts';
import { helpRequest } from './usage.js';

type Command = (argv: string[]) => Promise<number>;

// Each command loads only its own modules: `verify` does not pay for the server's.
const commands: Record<string, () => Promise<Command>> = {
  verify: async () => (await import('./offline.ts')).cmdVerify,
  redact: async () => (await import('./offline.ts')).cmdRedact,
  settlement: async () => (await import('./offline.ts')).cmdSettlement,
  evidence: async () => (await import('./disputes.ts')).cmdEvidence,
  reconcile: async () => (await import('./disputes.ts')).cmdReconcile,
  report: async () => (await import('./disputes.ts')).cmdReport,
  keys: async () => (await import('./offline.ts')).cmdKeys,
  trust: async () => (await import('./offline.ts')).cmdTrust,
  attest: async () => (await import('./offline.ts')).cmdAttestOffline,
  serve: async () => (await import('./serve.ts')).cmdServe,
  worker: async () => (await import('./serve.ts')).cmdWorker,
  migrate: async () => (await import('./serve.ts')).cmdMigrate,
  log: async () => (await import('./log.ts')).cmdLog,
  ceremony: async () => (await import('./ceremony.ts')).cmdCeremony,
};

export async function main(argv: string[]): Promise<number> {
  const help = helpRequest(argv);
  if (help) {
    process[help.stream].write(help.text);
    return help.code;
  }
  const [name = '', ...rest] = argv;
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!load) {
    err(`meterproof: unknown command "${name}" (try meterproof --help)`);
    return 2;
  }
  try {
    checkStdinArguments(rest);
    return await (await load())(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      err(`meterproof ${name}: ${e.message}`);
      return e.exitCode;
    }
    if (e instanceof CanonicalizationError) {
      // input that has no RFC 8785 form (e.g. a lone surrogate): the input's fault, said as such
      err(`meterproof ${name}: input cannot be canonicalized (RFC 8785): ${e.message}`);
      return 2;
    }
    err(`meterproof ${name}: internal error: ${e instanceof Error ? e.message : String(e)}`.replace(/\s*\n\s*/g, ' '));
    return 2;
  }
}
