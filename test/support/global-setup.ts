// Once before the suite: make sure dist/ is the build of the present sources, so that every
// `meterproof` process a test spawns (CLI, servers, workers) runs the compiled code, as users do,
// without paying for a TypeScript loader in each child (about 0.7 s of CPU per process). After
// `npm ci` (CI) the `prepare` build is already fresh and nothing is done.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Newest modification time of a file under `dir` (ms). */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const f of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (f.isFile()) newest = Math.max(newest, fs.statSync(path.join(f.parentPath, f.name)).mtimeMs);
  }
  return newest;
}

export default function setup(): void {
  const root = process.cwd();
  const built = path.join(root, 'dist', 'cli', 'main.js');
  const stale = !fs.existsSync(built) || newestMtime(path.join(root, 'src')) > fs.statSync(built).mtimeMs;
  if (!stale) return;
  process.stderr.write('test setup: dist/ is older than src/: npm run build\n');
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`npm run build failed (exit ${r.status}): the spawned CLI and servers run dist/`);
}
