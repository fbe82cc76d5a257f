#!/usr/bin/env node
// Entry point for the `meterproof` command: runs the compiled CLI in dist/ (`npm run build`, which
// `npm install` and `npm ci` run in a clone as `prepare`), or the TypeScript sources through tsx.
import fs from 'node:fs';
import { URL } from 'node:url';

/** Newest modification time under `dir` (ms), 0 if it does not exist. */
function newestMtime(dir) {
  let newest = 0;
  for (const f of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (f.isFile()) newest = Math.max(newest, fs.statSync(`${f.parentPath ?? f.path}/${f.name}`).mtimeMs);
  }
  return newest;
}

/**
 * The CLI's main module. The build, unless METERPROOF_FROM_SOURCE=1 (the test suite sets it, so it
 * tests the sources as they are), there is no build, or this is a clone whose src/ changed after
 * the build (then the sources run, with a notice). A package installed from npm has no src/.
 */
async function loadMain() {
  const built = new URL('../dist/cli/main.js', import.meta.url);
  const src = new URL('../src/', import.meta.url);
  let reason = '';
  if (process.env.METERPROOF_FROM_SOURCE === '1') reason = 'source';
  else if (!fs.existsSync(built)) reason = 'no build in dist/';
  else if (fs.existsSync(src) && newestMtime(src) > fs.statSync(built).mtimeMs) reason = 'src/ changed after the build in dist/';
  if (!reason) return import(built.href);
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

const { main } = await loadMain();
const argv = process.argv.slice(2);
const code = await main(argv);
// A server that failed to start may hold handles (pools, timers) that would keep it alive: exit.
// Other commands exit on their own, so their output (possibly piped) is flushed first.
if (code !== 0 && ['serve', 'worker', 'migrate'].includes(argv[0])) process.exit(code);
process.exitCode = code;
