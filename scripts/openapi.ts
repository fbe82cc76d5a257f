// Prints the OpenAPI 3.1 document GET /openapi.json serves, without starting a server:
// `npm run -s openapi > openapi.json` (then e.g. `npx openapi-typescript openapi.json -o api.d.ts`).
import { buildOpenApiDocument } from '../src/http/openapi.ts';

process.stdout.write(`${JSON.stringify(buildOpenApiDocument(process.env['npm_package_version']), null, 2)}\n`);
