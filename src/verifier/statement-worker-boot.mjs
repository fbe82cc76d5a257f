// Entry module of a statement-check worker thread when running from TypeScript sources (see
// worker-boot.mjs): registers tsx inside the worker, then imports the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./statement-worker.ts');
