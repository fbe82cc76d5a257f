// `npm run build:verifier` (and the end of `npm run build`): the browser verifier page as one
// self-contained HTML file, dist/meterproof-verifier.html. It bundles the open verifier itself
// (src/verifier/index.ts through src/verifier/page/main.ts, Groth16 by snarkjs included), not a
// second one: the few node-only modules have a browser sibling with the same exports, and every
// import of `X.ts` that has an `X.browser.ts` beside it gets the sibling (platform.ts: hashing,
// randomness, encodings; ed25519.ts; vkey-files.ts: the pinned keys embedded; pool.ts: no worker
// threads). circomlibjs (the wasm Poseidon the prover uses) is left out: the verifier computes
// Poseidon in bigint arithmetic. The page's Content Security Policy admits only its own inline
// script (by hash) and refuses every connection, so nothing leaves the browser.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const VERIFIER_PAGE = path.join(root, 'dist', 'meterproof-verifier.html');
/** Where a serving page puts its trust material (src/http/verifier-page.ts fills it in). */
export const TRUST_SLOT = '<script type="application/json" id="embedded-trust"></script>';

const browserSiblings = {
  name: 'browser-siblings',
  setup(build) {
    build.onResolve({ filter: /\.ts$/ }, (a) => {
      if (a.kind === 'entry-point') return undefined;
      const p = path.resolve(a.resolveDir, a.path);
      const sibling = p.replace(/\.ts$/, '.browser.ts');
      if (p.endsWith('.browser.ts') || a.importer === sibling || !fs.existsSync(sibling)) return undefined;
      return { path: sibling };
    });
    build.onResolve({ filter: /^circomlibjs$/ }, () => ({ path: 'circomlibjs', namespace: 'absent' }));
    build.onLoad({ filter: /.*/, namespace: 'absent' }, () => ({
      contents: 'export function buildPoseidon() { throw new Error("circomlibjs is not part of the browser verifier"); }',
      loader: 'js',
    }));
    build.onResolve({ filter: /^node:/ }, (a) => ({ errors: [{ text: `${a.path} reached the browser bundle (from ${path.relative(root, a.importer)}): give the module a .browser.ts sibling` }] }));
  },
};

/** Build the page; returns its path. `outfile` for tests that want their own copy. */
export async function buildVerifierPage(outfile = VERIFIER_PAGE) {
  const r = await esbuild.build({
    entryPoints: [path.join(root, 'src/verifier/page/main.ts')],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    plugins: [browserSiblings],
    logLevel: 'error',
  });
  const js = r.outputFiles[0].text;
  if (/<\/script/i.test(js) || js.includes(TRUST_SLOT)) throw new Error('the bundle contains </script or the trust slot');
  const hash = createHash('sha256').update(js).digest('base64');
  const template = fs.readFileSync(path.join(root, 'src/verifier/page/page.html'), 'utf8');
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const html = template
    .replace('%SCRIPT_HASH%', `'sha256-${hash}'`)
    .replace('%VERSION%', pkg.version)
    .replace('<!--%SCRIPT%-->', () => `<script type="module">${js}</script>`);
  if (html.split(TRUST_SLOT).length !== 2) throw new Error('the template must hold the trust slot once');
  fs.mkdirSync(path.dirname(outfile), { recursive: true });
  const tmp = `${outfile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, html);
  fs.renameSync(tmp, outfile); // atomic: a reader never sees half a page
  return outfile;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildVerifierPage(process.argv[2] ? path.resolve(process.argv[2]) : VERIFIER_PAGE);
  console.log(`${path.relative(process.cwd(), out)} (${Math.round(fs.statSync(out).size / 1024)} KiB)`);
}
