// Entry module of a verifier worker thread when running from TypeScript sources. Node 20 does not
// apply `--import tsx` (execArgv) to a worker's entry module, so the tsx loader is registered
// here, inside the worker, before the TypeScript worker is imported.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
