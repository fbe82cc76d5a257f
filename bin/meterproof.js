#!/usr/bin/env node
// Entry point for the `meterproof` command: registers the TypeScript loader, then runs the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
const argv = process.argv.slice(2);
const code = await main(argv);
// A server that failed to start may hold handles (pools, timers) that would keep it alive: exit.
// Other commands exit on their own, so their output (possibly piped) is flushed first.
if (code !== 0 && ['serve', 'worker', 'migrate'].includes(argv[0])) process.exit(code);
process.exitCode = code;
