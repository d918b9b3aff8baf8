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
import { BODY_FILE } from './bundle-layout.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
const quiet = process.argv.includes('--quiet');

// Outputs are written to a temp name and renamed, so a process starting the bundle while a build
// runs (tests, a live hook) sees the old file or the new one, never half of one.
async function buildAtomic(options) {
  const result = await build({ ...options, write: false });
  for (const file of result.outputFiles) {
    mkdirSync(dirname(file.path), { recursive: true });
    writeAtomic(file.path, file.contents, 0o755);
  }
}

function writeAtomic(path, contents, mode) {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  chmodSync(tmp, mode);
  renameSync(tmp, path);
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
 * loader compiles the code with `vm.Script` and V8's cached data from
 * `<bundle>.<node version>-<arch>.cache` beside it (keyed on the code file's size, mtime and
 * inode: V8 itself only checks the source's length), and writes that cache at exit when it was
 * missing or rejected, or was made by a command other than a turn's worker (whose functions it
 * then lacks). The code is a file of its own beside the loader (BODY_FILE, scripts/bundle-layout.mjs),
 * so that Node reads and compiles only the loader (with the code inside the loader's file, in a
 * comment, every turn read 770 KB twice and scanned it once more: ~5 ms a turn). The code is
 * pure ASCII: read as latin1, without UTF-8 decoding. The cache sits with the code it caches:
 * whoever can write one can write the other. CCFLUX_NO_COMPILE_CACHE=1 compiles without it.
 * scripts/build-binary.mjs takes the code alone (a SEA has its own cache).
 */
const LOADER = `'use strict';
(() => {
  const fs = require('node:fs');
  const vm = require('node:vm');
  const bodyFile = require('node:path').join(__dirname, '${BODY_FILE}');
  let body;
  try {
    body = fs.readFileSync(bodyFile, 'latin1');
  } catch (err) {
    process.stderr.write('ccflux: cannot read ' + bodyFile + ' (' + err.code + '): the plugin is incomplete; reinstall it\\n');
    process.exit(1);
  }
  const code = '(function (exports, require, module, __filename, __dirname) {' + body + '\\n})';
  // The code must not use import() (no loader for it in a vm.Script on Node 20): the build fails if it does.
  const options = { filename: bodyFile };
  let script;
  try {
    if (process.env.CCFLUX_NO_COMPILE_CACHE === '1') throw new Error('off');
    const st = fs.statSync(bodyFile);
    const key = [process.version, process.arch, st.size, Math.floor(st.mtimeMs), st.ino].join('-');
    // The turn's worker (the hot path, every turn) wants a cache made by a turn's worker, which
    // compiled its functions. A session's first worker (init) compiles fewer: kept, its cache cost
    // every later turn ~5% more instructions.
    const hot = process.argv.includes('--foreground') && process.argv.includes('report-turn');
    const header = key + (hot ? ' w' : ' -') + '\\n';
    const cachePath = __filename + '.' + process.version + '-' + process.arch + '.cache';
    let cachedData;
    let stale = true;
    try {
      const file = fs.readFileSync(cachePath);
      const found = file.subarray(0, file.indexOf(10) + 1).toString('latin1');
      if (found.slice(0, key.length + 1) === key + ' ') {
        cachedData = file.subarray(found.length);
        stale = hot && found !== header;
      }
    } catch {}
    script = new vm.Script(code, { ...options, cachedData });
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
  } catch {
    script = new vm.Script(code, options);
  }
  script.runInThisContext().call(exports, exports, require, module, __filename, __dirname);
})();`;

async function buildCli() {
  // ASCII (non-ASCII characters escaped): the loader reads the code as latin1.
  const result = await build({ ...common, entryPoints: [join(root, 'src/cli/main.ts')], minify: true, charset: 'ascii', write: false });
  const code = result.outputFiles[0].text;
  if (/[^\x00-\x7f]/.test(code)) throw new Error('the bundle holds a non-ASCII character: the loader reads it as latin1');
  if (/[^\w$.]import\(/.test(code)) throw new Error('the bundle uses import(): load builtins with process.getBuiltinModule (see the loader)');
  const out = join(root, 'plugin/dist/ccflux.cjs');
  mkdirSync(dirname(out), { recursive: true });
  // The code first: a process starting while the build runs reads the old loader or the new one,
  // and either runs whichever whole code file is there.
  writeAtomic(join(dirname(out), BODY_FILE), code, 0o644);
  writeAtomic(out, `#!/usr/bin/env node\n${LOADER}`, 0o755);
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
