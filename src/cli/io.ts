// CLI plumbing: usage errors become exit code 2 with a one-line reason.
import fs from 'node:fs';
import path from 'node:path';
import { JsonTextError, parseJsonStrict } from '../core/json.ts';

export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A file's text, refused (exit 2) when it cannot be read or is not UTF-8. */
export function readTextFile(file: string | undefined, what: string): string {
  if (!file) throw new UsageError(`missing ${what} file argument`);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return utf8.decode(bytes);
  } catch {
    throw new UsageError(`${what} ${file} is not valid UTF-8 (INVALID_UTF8)`);
  }
}

/** A JSON file, parsed strictly (duplicate keys refused: I-JSON, RFC 7493). */
export function readJsonFile(file: string | undefined, what: string): unknown {
  const text = readTextFile(file, what);
  try {
    return parseJsonStrict(text);
  } catch (e) {
    if (e instanceof JsonTextError && e.code === 'DUPLICATE_KEY') throw new UsageError(`${what} ${file} is not I-JSON (DUPLICATE_KEY): ${e.message}`);
    throw new UsageError(`${what} ${file} is not valid JSON: ${(e as Error).message}`);
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
