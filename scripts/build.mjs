#!/usr/bin/env node
// Builds the two runnable artefacts:
//  - plugin/dist/ccflux.cjs: the CLI as one CommonJS file, so `plugin/` runs when copied alone
//    (no node_modules beside it), with a compile-cache loader in front (see LOADER below).
//    undici stays behind a lazy require() inside the bundle.
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

/**
 * Node 20 has no `module.enableCompileCache` (22+), so the CLI bundle carries its own: a short
 * loader in front of the code compiles the code with `vm.Script` and V8's cached data from
 * `<bundle>.<node version>-<arch>.cache` beside it (keyed on the bundle's size, mtime and inode), and writes that cache at exit when it was
 * missing or rejected (another Node, a new bundle). Compiling ~700 KB and the functions a hook
 * run calls costs more than reading a cache (docs/bench.md). The code itself follows a marker
 * after a top-level `return`, so without the loader (an error, CCFLUX_NO_COMPILE_CACHE=1) the
 * same file runs it directly. The cache sits with the code it caches: whoever can write one can
 * write the other. scripts/build-binary.mjs strips the loader (a SEA has its own code cache).
 */
export const BODY_MARKER = '\n//ccflux:body\n';
const LOADER = `'use strict';
const __ccfluxMain = (() => {
  try {
    if (process.env.CCFLUX_NO_COMPILE_CACHE === '1') return null;
    const fs = require('node:fs');
    const vm = require('node:vm');
    const text = fs.readFileSync(__filename, 'utf8');
    const at = text.indexOf('\\n//ccflux' + ':body\\n');
    if (at === -1) return null;
    const code = '(function (exports, require, module, __filename, __dirname) {' + text.slice(at) + '\\n})';
    // V8 checks a cache against the source's length only: the key names this very file.
    const st = fs.statSync(__filename);
    const key = [process.version, process.arch, st.size, Math.floor(st.mtimeMs), st.ino].join('-');
    // Hook workers (the hot path) want a cache made by a worker run, which compiled their functions.
    const worker = process.argv.includes('--foreground');
    const header = key + (worker ? ' w' : ' -') + '\\n';
    const cachePath = __filename + '.' + process.version + '-' + process.arch + '.cache';
    let cachedData;
    let stale = true;
    try {
      const file = fs.readFileSync(cachePath);
      const nl = file.indexOf(10);
      const found = file.subarray(0, nl + 1).toString('latin1');
      if (found.slice(0, key.length + 1) === key + ' ') {
        cachedData = file.subarray(nl + 1);
        stale = worker && found !== header;
      }
    } catch {}
    const script = new vm.Script(code, { filename: __filename, cachedData });
    if (stale || script.cachedDataRejected) {
      // At exit the cache also holds the functions this run compiled lazily.
      process.once('exit', () => {
        try {
          const temp = cachePath + '.' + process.pid;
          fs.writeFileSync(temp, Buffer.concat([Buffer.from(header, 'latin1'), script.createCachedData()]), { mode: 0o600 });
          fs.renameSync(temp, cachePath);
        } catch {}
      });
    }
    return script.runInThisContext();
  } catch {
    return null;
  }
})();
if (__ccfluxMain !== null) {
  __ccfluxMain.call(exports, exports, require, module, __filename, __dirname);
  return;
}`;

async function buildCli() {
  const result = await build({ ...common, entryPoints: [join(root, 'src/cli/main.ts')], minify: true, write: false });
  const code = result.outputFiles[0].text;
  if (code.includes(BODY_MARKER)) throw new Error('the bundle contains the body marker');
  const out = join(root, 'plugin/dist/ccflux.cjs');
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, `#!/usr/bin/env node\n${LOADER}${BODY_MARKER}${code}`);
  chmodSync(tmp, 0o755);
  renameSync(tmp, out);
}

await Promise.all([
  buildCli(),
  buildAtomic({
    ...common,
    entryPoints: [join(root, 'receiver/src/main.ts')],
    outfile: join(root, 'receiver/dist/ccflux-receiver.cjs'),
    external: ['better-sqlite3'],
    banner: { js: '#!/usr/bin/env node' },
  }),
]);
