import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

export default defineConfig({
  define: { __CCFLUX_VERSION__: JSON.stringify(version) },
  test: {
    include: ['test/**/*.test.ts', 'receiver/test/**/*.test.ts'],
    // Builds the bundles the integration tests spawn, when they are older than the sources.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests spawn real processes and servers; two cores here.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
