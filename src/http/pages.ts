// The two pages the service serves besides its API: the browser verifier at /verify (the file
// `npm run build:verifier` builds, with the service's trust material embedded at serve time) and
// the interactive API documentation at /docs (Swagger UI from the swagger-ui-dist package, pointed
// at /openapi.json; its assets are served from the package, so the page needs no other host).
import fs from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The built page: dist/ sits two levels above this module both in src/http and in dist/http. */
export const VERIFIER_PAGE = fileURLToPath(new URL('../../dist/meterproof-verifier.html', import.meta.url));
/** The slot of the built page that holds embedded trust material (scripts/build-verifier.mjs). */
export const TRUST_SLOT = '<script type="application/json" id="embedded-trust"></script>';

/** The verifier page with `trust` embedded (as data: a JSON script element, `<` escaped so the
 *  text cannot close it), or null when the page has not been built. */
export async function verifierPage(trust: unknown, source: string, file = VERIFIER_PAGE): Promise<string | null> {
  let html: string;
  try {
    html = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const data = JSON.stringify({ trust, source }).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  return html.replace(TRUST_SLOT, () => `<script type="application/json" id="embedded-trust">${data}</script>`);
}

const swaggerDir = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** The documentation page: Swagger UI's stylesheet and bundle, and init.js. */
export const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>meterproof API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

/** Swagger UI on this service's document; no validator badge (it would call a third party). */
const INIT = "window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, validatorUrl: null });\n";

export const DOCS_ASSETS = ['swagger-ui.css', 'swagger-ui-bundle.js', 'init.js'] as const;
export type DocsAsset = (typeof DOCS_ASSETS)[number];

const assetCache = new Map<DocsAsset, string>();

/** An asset of the documentation page with its content type. */
export async function docsAsset(name: DocsAsset): Promise<{ body: string; type: string }> {
  const type = name.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
  if (name === 'init.js') return { body: INIT, type };
  let body = assetCache.get(name);
  if (body === undefined) {
    body = await fs.readFile(path.join(swaggerDir, name), 'utf8');
    assetCache.set(name, body);
  }
  return { body, type };
}
