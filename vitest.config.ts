import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // bin/meterproof.js, spawned by the CLI and server tests, runs dist/: the setup rebuilds it
    // first when src/ is newer, and nothing rebuilds it during the run (the package test packs
    // the build without running `prepare` again)
    globalSetup: ['test/support/global-setup.ts'],
  },
});
