// `npm run build` (and `prepare`): dist/ from src/, and the browser verifier page
// (dist/meterproof-verifier.html, scripts/build-verifier.mjs). Cleans dist/ (no stale module survives a
// rename), compiles with tsc (JS + .d.ts, relative `.ts` imports rewritten to `.js`), then copies
// every file of src/ that is not TypeScript to the same place in dist/: the SQL migrations and
// their journal (dist/db/index.js reads them next to itself) and any plain JS module.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
fs.rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
const src = path.join(root, 'src');
/** Entry modules that only serve the sources (they register tsx): not part of the build. */
const SOURCE_ONLY = new Set([path.join('prover', 'worker-boot.mjs'), path.join('verifier', 'worker-boot.mjs'), path.join('verifier', 'statement-worker-boot.mjs'), path.join('verifier', 'page', 'page.html')]);
for (const f of fs.readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!f.isFile() || f.name.endsWith('.ts')) continue;
  const from = path.join(f.parentPath ?? f.path, f.name);
  if (SOURCE_ONLY.has(path.relative(src, from))) continue;
  const to = path.join(dist, path.relative(src, from));
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
}
// the browser verifier page (GET /verify serves it): one self-contained HTML file
const { buildVerifierPage } = await import('./build-verifier.mjs');
await buildVerifierPage();
