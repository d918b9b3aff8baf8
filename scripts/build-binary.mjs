#!/usr/bin/env node
// Builds the single-file ccflux binary for the host platform with Node's Single Executable
// Application support (docs/release.md explains why SEA and not pkg, with measurements):
//
//   plugin/dist/ccflux.cjs (from `npm run build`)
//     → SEA blob (`node --experimental-sea-config`, useCodeCache, no experimental warning)
//     → copy of the running `node`, stripped on Linux (-12 MB, same start-up)
//     → postject the blob behind the SEA fuse → (macOS) ad-hoc codesign
//     → plugin/bin/ccflux-<os>-<arch>[.exe] + its line in plugin/bin/SHA256SUMS
//
// The blob embeds V8 code cache for the node that runs this script, so the base binary is always
// process.execPath: build on each target platform (the release workflow's matrix does).
//
// Usage: node scripts/build-binary.mjs [--bundle FILE] [--out-dir DIR] [--no-strip] [--no-sums] [--quiet]
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleCode } from './bundle-layout.mjs';

const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const SEA_RESOURCE = 'NODE_SEA_BLOB';
const MACHO_SEGMENT = 'NODE_SEA';
const SMOKE_TIMEOUT_MILLIS = 30_000;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function parseArgs(argv) {
  const options = {
    bundle: join(root, 'plugin/dist/ccflux.cjs'),
    outDir: join(root, 'plugin/bin'),
    strip: true,
    sums: true,
    quiet: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--bundle') options.bundle = resolve(argv[++i] ?? '');
    else if (arg === '--out-dir') options.outDir = resolve(argv[++i] ?? '');
    else if (arg === '--no-strip') options.strip = false;
    else if (arg === '--no-sums') options.sums = false;
    else if (arg === '--quiet') options.quiet = true;
    else throw new Error(`unknown option ${arg}`);
  }
  return options;
}

/**
 * `ccflux --version` (or `-V`) alone is answered before any of the bundle runs: setting up its
 * modules is most of what the binary does beyond Node's own start (docs/bench.md). The SEA main
 * script is a CommonJS function body, so a top-level `return` ends it. Prints what commander
 * prints.
 */
export function versionFastPath(version) {
  const args = "process.argv.length === 3 && (process.argv[2] === '--version' || process.argv[2] === '-V')";
  return `if (${args}) { process.stdout.write(${JSON.stringify(`${version}\n`)}); return; }\n`;
}

/** Node's names, which plugin/scripts/ccflux-hook.sh and .ps1 look for. */
export function binaryName(platform = process.platform, arch = process.arch) {
  return `ccflux-${platform}-${arch}${platform === 'win32' ? '.exe' : ''}`;
}

function hasTool(name) {
  const probe = process.platform === 'win32' ? spawnSync('where', [name]) : spawnSync('sh', ['-c', `command -v ${name}`]);
  return probe.status === 0;
}

function run(file, args, what) {
  const result = spawnSync(file, args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${what} failed (exit ${result.status}): ${(result.stderr || result.stdout || String(result.error ?? '')).trim()}`);
  }
  return result;
}

/** Rewrites `<dir>/SHA256SUMS` (sha256sum format) with `name`'s line replaced, lines sorted by name. */
export async function updateSums(dir, name, sha256) {
  const file = join(dir, 'SHA256SUMS');
  let lines = [];
  try {
    lines = (await readFile(file, 'utf8')).split('\n').filter((line) => line.trim() !== '');
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
  }
  const byName = new Map();
  for (const line of lines) {
    const match = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (match) byName.set(match[2], match[1]);
  }
  byName.set(name, sha256);
  const text = [...byName.keys()].sort().map((key) => `${byName.get(key)}  ${key}\n`).join('');
  await writeFile(file, text);
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const say = (msg) => {
    if (!options.quiet) console.log(msg);
  };
  const version = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')).version;

  let code;
  try {
    code = bundleCode(options.bundle);
  } catch {
    throw new Error(`${options.bundle} is missing: run \`npm run build\` first`);
  }

  const work = await mkdtemp(join(tmpdir(), 'ccflux-sea-'));
  const name = binaryName();
  const target = join(options.outDir, name);
  // Keeps the name's ending: Windows runs the smoke test only on a file ending in .exe.
  const partial = join(options.outDir, `.partial-${process.pid}-${name}`);
  try {
    // The SEA main script is compiled as a CommonJS function body: a `#!` line is a syntax error there.
    const main = join(work, 'main.cjs');
    // The compile-cache loader in front of the code is for plain Node: a SEA has its own cache.
    await writeFile(main, versionFastPath(version) + code);
    const blob = join(work, 'sea.blob');
    const config = join(work, 'sea-config.json');
    await writeFile(
      config,
      JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
    );
    run(process.execPath, ['--experimental-sea-config', config], 'node --experimental-sea-config');

    await mkdir(options.outDir, { recursive: true });
    await copyFile(process.execPath, partial);
    await chmod(partial, 0o755);
    if (process.platform === 'linux' && options.strip) {
      if (hasTool('strip')) run('strip', [partial], 'strip');
      else say('strip not found: the binary keeps its symbols (about 12 MB larger, same speed)');
    }
    if (process.platform === 'darwin') run('codesign', ['--remove-signature', partial], 'codesign --remove-signature');

    const { inject } = require('postject');
    await inject(partial, SEA_RESOURCE, await readFile(blob), {
      sentinelFuse: SEA_FUSE,
      ...(process.platform === 'darwin' ? { machoSegmentName: MACHO_SEGMENT } : {}),
    });
    // macOS refuses to run a binary whose signature no longer matches; ad-hoc is enough locally.
    if (process.platform === 'darwin') run('codesign', ['--sign', '-', partial], 'codesign --sign -');

    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const smoke = spawnSync(partial, ['--version'], { encoding: 'utf8', env, timeout: SMOKE_TIMEOUT_MILLIS });
    if (smoke.status !== 0 || smoke.stdout.trim() !== version) {
      throw new Error(`the built binary does not run: \`${name} --version\` gave exit ${smoke.status}, ${JSON.stringify(smoke.stdout + smoke.stderr)}`);
    }

    await rename(partial, target);
    const sha256 = createHash('sha256').update(await readFile(target)).digest('hex');
    if (options.sums) await updateSums(options.outDir, name, sha256);
    const bytes = (await stat(target)).size;
    say(`built ${target} (${(bytes / 1e6).toFixed(1)} MB, node ${process.version}, sha256 ${sha256})`);
  } finally {
    await rm(partial, { force: true });
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(`build-binary: ${err.message}`);
    process.exitCode = 1;
  });
}
