#!/usr/bin/env node
// Entry point for the `meterproof` command: runs the compiled CLI in dist/ (`npm run build`, which
// `npm install` and `npm ci` run in a clone as `prepare`), or the TypeScript sources through tsx.
// Help is answered from plain JavaScript (cli/usage.js) before anything else loads.
import fs from 'node:fs';
import { URL } from 'node:url';

/** Newest modification time under `dir` (ms). */
function newestMtime(dir) {
  let newest = 0;
  for (const f of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (f.isFile()) newest = Math.max(newest, fs.statSync(`${f.parentPath ?? f.path}/${f.name}`).mtimeMs);
  }
  return newest;
}

/**
 * Why the sources run instead of the build, or '' to run the build: METERPROOF_FROM_SOURCE=1 (the
 * test suite sets it, so it tests the sources as they are), no build, or a clone whose src/
 * changed after the build (then with a notice). A package installed from npm has no src/.
 */
function sourceReason() {
  const built = new URL('../dist/cli/main.js', import.meta.url);
  const src = new URL('../src/', import.meta.url);
  if (process.env.METERPROOF_FROM_SOURCE === '1') return 'source';
  if (!fs.existsSync(built)) return 'no build in dist/';
  if (fs.existsSync(src) && newestMtime(src) > fs.statSync(built).mtimeMs) return 'src/ changed after the build in dist/';
  return '';
}

/** The CLI's main module: the build, or the sources with tsx registered first. */
async function loadMain(reason) {
  if (!reason) return import('../dist/cli/main.js');
  let tsx;
  try {
    tsx = await import('tsx/esm/api');
  } catch {
    process.stderr.write(`meterproof: ${reason}, and tsx (a development dependency) is not installed to run the sources: run \`npm run build\`\n`);
    process.exit(1);
  }
  if (reason !== 'source') process.stderr.write(`meterproof: ${reason}: running the sources (\`npm run build\` to refresh)\n`);
  tsx.register();
  return import('../src/cli/main.ts');
}

// A reader that stops early (`meterproof … | head`) closes the pipe: stop quietly, as Unix tools
// do, instead of an unhandled EPIPE with a stack trace.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

const reason = sourceReason();
const argv = process.argv.slice(2);
const { helpRequest } = await import(reason ? '../src/cli/usage.js' : '../dist/cli/usage.js');
const help = helpRequest(argv);
if (help) {
  process[help.stream].write(help.text);
  process.exitCode = help.code;
} else {
  const { main } = await loadMain(reason);
  const code = await main(argv);
  // A server that failed to start may hold handles (pools, timers) that would keep it alive: exit.
  // Other commands exit on their own, so their output (possibly piped) is flushed first.
  if (code !== 0 && ['serve', 'worker', 'migrate'].includes(argv[0])) process.exit(code);
  process.exitCode = code;
}
