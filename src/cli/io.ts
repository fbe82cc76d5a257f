// CLI plumbing: usage errors become exit code 2 with a one-line reason.
import fs from 'node:fs';

export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

export function readJsonFile(file: string | undefined, what: string): unknown {
  if (!file) throw new UsageError(`missing ${what} file argument`);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
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

export const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
export const err = (s: string) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`);
