#!/usr/bin/env node
// Entry point for the `meterproof` command. Help is answered from plain JavaScript before anything
// else loads; otherwise registers the TypeScript loader, then runs the CLI.
import { helpRequest } from '../src/cli/usage.js';

const argv = process.argv.slice(2);
const help = helpRequest(argv);
if (help) {
  process[help.stream].write(help.text);
  process.exitCode = help.code;
} else {
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import('../src/cli/main.ts');
  const code = await main(argv);
  // A server that failed to start may hold handles (pools, timers) that would keep it alive: exit.
  // Other commands exit on their own, so their output (possibly piped) is flushed first.
  if (code !== 0 && ['serve', 'worker', 'migrate'].includes(argv[0])) process.exit(code);
  process.exitCode = code;
}
