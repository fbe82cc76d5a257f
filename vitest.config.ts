import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // bin/meterproof.js, spawned by the CLI and server tests, runs the TypeScript sources (not a
    // dist/ build that may be older, or rebuilt meanwhile by test/package.test.ts's `npm pack`)
    env: { METERPROOF_FROM_SOURCE: '1' },
  },
});
