import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

export default defineConfig({
  define: { __CCFLUX_VERSION__: JSON.stringify(version) },
  test: {
    // Builds the bundles the integration tests spawn, when they are older than the sources, and
    // starts one PostgreSQL server for the run (skipped where it is not installed).
    globalSetup: ['test/global-setup.ts', 'test/pg-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests spawn real processes and servers; two cores here.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts', 'receiver/test/**/*.test.ts'] } },
      // The receiver's suite again, every in-process receiver and store on PostgreSQL
      // (receiver/test/support.ts reads CCFLUX_TEST_BACKEND).
      {
        extends: true,
        test: {
          name: 'receiver-pg',
          include: ['receiver/test/**/*.test.ts'],
          // SQLite-only: the CLI's file handling, the Rust SQLite import, the browser run, pure config.
          exclude: [
            'receiver/test/admin/browser.test.ts',
            'receiver/test/cli.test.ts',
            'receiver/test/config.test.ts',
            'receiver/test/rust-db.test.ts',
            'receiver/test/migrations.test.ts',
            'receiver/test/commands/**',
            'receiver/test/prices/**',
            'receiver/test/security/nginx-allow-list.test.ts',
            'receiver/test/admin/filters.test.ts',
          ],
          env: { CCFLUX_TEST_BACKEND: 'postgres' },
        },
      },
    ],
  },
});
