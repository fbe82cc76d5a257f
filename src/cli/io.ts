// CLI plumbing: usage errors become exit code 2 with a one-line reason.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { JsonTextError, parseJsonStrict } from '../core/json.ts';
import { COMMANDS, parseOptions } from './usage.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** A command's arguments, parsed strictly with the options of its table in usage.js. */
export interface ParsedArgs {
  readonly positionals: string[];
  str(name: string): string | undefined;
  strs(name: string): string[];
  bool(name: string): boolean;
}

/**
 * Parses `argv` for command `name` (a key of usage.js COMMANDS): unknown flags, a missing value,
 * a missing required flag or the wrong number of positional arguments are usage errors (exit 2).
 */
export function parseCommand(name: string, argv: string[], positionals: number | readonly [number, number] = 0): ParsedArgs {
  const [min, max] = typeof positionals === 'number' ? [positionals, positionals] : positionals;
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: parseOptions(name) });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (!code.startsWith('ERR_PARSE_ARGS')) throw e;
    const token = /'([^']+)'/.exec((e as Error).message)?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${token} (meterproof ${name} --help)`);
    throw new UsageError(`${(e as Error).message.split('. ')[0]!.replace(/\s+/g, ' ')} (meterproof ${name} --help)`);
  }
  const { values } = parsed;
  const n = parsed.positionals.length;
  if (n < min || n > max) throw new UsageError(`usage: ${COMMANDS[name]!.usage} (meterproof ${name} --help)`);
  for (const o of COMMANDS[name]!.options) {
    if (o.required && values[o.name] === undefined) throw new UsageError(`--${o.name} is required (meterproof ${name} --help)`);
  }
  return {
    positionals: parsed.positionals,
    str: (k) => values[k] as string | undefined,
    strs: (k) => (values[k] as string[] | undefined) ?? [],
    bool: (k) => values[k] === true,
  };
}

/** `-` as a file argument is standard input; it can be read once, so one `-` per invocation. */
export const STDIN = '-';
export function checkStdinArguments(argv: readonly string[]): void {
  const end = argv.indexOf('--');
  const n = (end < 0 ? argv : argv.slice(0, end)).filter((a) => a === STDIN || /^--[^=]+=-$/.test(a)).length;
  if (n > 1) throw new UsageError(`standard input (-) can be given only once; ${n} arguments are -`);
}

/** Refuses `-` for a file the command writes. */
export function notStdin(file: string | undefined, flag: string): string | undefined {
  if (file === STDIN) throw new UsageError(`${flag} names a file to write; - (standard input) is not one`);
  return file;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const named = (what: string, file: string) => (file === STDIN ? `${what} (standard input)` : `${what} ${file}`);

/** A file's text (`-`: standard input), refused (exit 2) when it cannot be read or is not UTF-8. */
export function readTextFile(file: string | undefined, what: string): string {
  if (!file) throw new UsageError(`missing ${what} file argument`);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file === STDIN ? 0 : file);
  } catch (e) {
    throw new UsageError(`cannot read ${named(what, file)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return utf8.decode(bytes);
  } catch {
    throw new UsageError(`${named(what, file)} is not valid UTF-8 (INVALID_UTF8)`);
  }
}

/** A JSON file, parsed strictly (duplicate keys refused: I-JSON, RFC 7493). */
export function readJsonFile(file: string | undefined, what: string): unknown {
  const text = readTextFile(file, what);
  try {
    return parseJsonStrict(text);
  } catch (e) {
    if (e instanceof JsonTextError && e.code === 'DUPLICATE_KEY') throw new UsageError(`${named(what, file!)} is not I-JSON (DUPLICATE_KEY): ${e.message}`);
    throw new UsageError(`${named(what, file!)} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Write a file that must not already exist, with the given mode (0600 for secrets). */
export function writeNewFile(file: string, data: string, mode: number): void {
  try {
    fs.writeFileSync(file, data, { flag: 'wx', mode });
  } catch (e) {
    throw new UsageError(`cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** Atomic replace: write a temporary file beside `file`, then rename it over. */
export function replaceFile(file: string, data: string, what: string): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(tmp, data, { mode: 0o644 });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new UsageError(`cannot write ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

export const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
export const err = (s: string) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`);
