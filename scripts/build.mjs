#!/usr/bin/env node
// Builds the two runnable artefacts:
//  - plugin/dist/ccflux.cjs: the CLI as one CommonJS file, so `plugin/` runs when copied alone
//    (no node_modules beside it). undici stays behind a lazy require() inside the bundle.
//  - receiver/dist/ccflux-receiver.cjs: the receiver; better-sqlite3 (native) stays external.
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
const quiet = process.argv.includes('--quiet');

// Outputs are written to a temp name and renamed, so a process starting the bundle while a build
// runs (tests, a live hook) sees the old file or the new one, never half of one.
async function buildAtomic(options) {
  const result = await build({ ...options, write: false });
  for (const file of result.outputFiles) {
    mkdirSync(dirname(file.path), { recursive: true });
    const tmp = `${file.path}.${process.pid}.tmp`;
    writeFileSync(tmp, file.contents);
    chmodSync(tmp, 0o755);
    renameSync(tmp, file.path);
  }
}

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: false,
  legalComments: 'none',
  logLevel: quiet ? 'warning' : 'info',
  define: { __CCFLUX_VERSION__: JSON.stringify(version) },
};

await Promise.all([
  buildAtomic({
    ...common,
    entryPoints: [join(root, 'src/cli/main.ts')],
    outfile: join(root, 'plugin/dist/ccflux.cjs'),
    minify: true,
    banner: { js: '#!/usr/bin/env node' },
  }),
  buildAtomic({
    ...common,
    entryPoints: [join(root, 'receiver/src/main.ts')],
    outfile: join(root, 'receiver/dist/ccflux-receiver.cjs'),
    external: ['better-sqlite3'],
    banner: { js: '#!/usr/bin/env node' },
  }),
]);
