/**
 * Verified binary downloads, on both paths: `ccflux fetch-binary` (src/client/commands/binary-fetch.ts) and
 * plugin/scripts/fetch-binary.sh (curl). A local https server with a CA made at test time serves a
 * correct and a tampered binary; only the correct one is ever installed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main';
import type { CliContext } from '../../src/cli/types';
import { binaryName, fetchBinary, parseSha256Sums, RELEASE_REPO, redirectTarget, releaseUrl } from '../../src/client/commands/binary-fetch';
import { ERROR_CODES } from '../../src/client/local/errors';
import { copyPlugin, makeCa, pathWithoutNode, repoRoot, startHttpsServer, type TestCa, type TestServer } from './helpers';

const NAME = 'ccflux-linux-x64';
const GOOD = Buffer.from('#!/bin/sh\necho "the real ccflux"\n');
const EVIL = Buffer.from('#!/bin/sh\necho "not ccflux"\n');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let ca: TestCa;
let server: TestServer;
let work: string;
let root: string;
let dataDir: string;
let caDir: string;

beforeAll(async () => {
  caDir = mkdtempSync(join(tmpdir(), 'ccflux-fetch-ca-'));
  ca = await makeCa(caDir);
  server = await startHttpsServer(ca);
});
afterAll(async () => {
  await server.close();
  // The CA's private key lives here: never leave it behind.
  rmSync(caDir, { recursive: true, force: true });
});

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'ccflux-fetch-'));
  root = copyPlugin(join(work, 'plugin'));
  writeFileSync(join(root, 'bin', 'SHA256SUMS'), `${sha(GOOD)}  ${NAME}\n${'0'.repeat(64)}  ccflux-darwin-arm64\n`);
  dataDir = join(work, 'data');
  mkdirSync(join(dataDir, 'ccflux'), { recursive: true });
  server.routes.clear();
  server.requests.length = 0;
});
afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

const binDir = () => join(root, 'bin');
const leftovers = () => readdirSync(binDir()).filter((n) => n.includes('.download'));
const readLog = (name: string) => {
  const file = join(dataDir, 'ccflux', name);
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
};

describe('pure parts', () => {
  it('names binaries the way the wrappers look for them', () => {
    expect(binaryName('linux', 'x64')).toBe('ccflux-linux-x64');
    expect(binaryName('win32', 'x64')).toBe('ccflux-win32-x64.exe');
    expect(() => binaryName('freebsd', 'x64')).toThrow(expect.objectContaining({ code: ERROR_CODES.USAGE }));
  });

  it('reads sha256sum output in both modes and ignores junk', () => {
    const sums = parseSha256Sums(`${'A'.repeat(64)}  ccflux-linux-x64\n${'b'.repeat(64)} *ccflux-win32-x64.exe\nnot a line\n`);
    expect(sums.get('ccflux-linux-x64')).toBe('a'.repeat(64));
    expect(sums.get('ccflux-win32-x64.exe')).toBe('b'.repeat(64));
    expect(sums.size).toBe(2);
  });

  it('builds https URLs only and refuses redirects off https', () => {
    expect(releaseUrl({}, '1.2.3', NAME)).toBe(`https://github.com/${RELEASE_REPO}/releases/download/v1.2.3/${NAME}`);
    expect(releaseUrl({ CCFLUX_RELEASE_BASE_URL: 'https://mirror.example/ccflux/' }, '1.2.3', NAME)).toBe(`https://mirror.example/ccflux/${NAME}`);
    expect(() => releaseUrl({ CCFLUX_RELEASE_BASE_URL: 'http://mirror.example' }, '1', NAME)).toThrow(
      expect.objectContaining({ code: ERROR_CODES.INSECURE_ENDPOINT }),
    );
    expect(redirectTarget('https://a.example/x', '/y')).toBe('https://a.example/y');
    expect(() => redirectTarget('https://a.example/x', 'http://b.example/y')).toThrow(expect.objectContaining({ code: ERROR_CODES.INSECURE_ENDPOINT }));
  });

  it('uses one release repository in the CLI and in both wrappers', () => {
    const sh = readFileSync(join(repoRoot, 'plugin/scripts/fetch-binary.sh'), 'utf8');
    const ps1 = readFileSync(join(repoRoot, 'plugin/scripts/ccflux-hook.ps1'), 'utf8');
    expect(sh).toContain(`release_repo=${RELEASE_REPO}\n`);
    expect(ps1).toContain(`$ReleaseRepo = '${RELEASE_REPO}'`);
  });
});

describe('ccflux fetch-binary (node)', () => {
  const options = (env: NodeJS.ProcessEnv = {}) => ({
    pluginRoot: root,
    version: '0.1.0',
    platform: 'linux',
    arch: 'x64',
    env: { CCFLUX_RELEASE_BASE_URL: `${server.url}/dl`, CCFLUX_CA_CERT: ca.caPem, ...env },
  });

  it('accepts the correct binary: verified, executable, renamed into place', async () => {
    server.routes.set(`/dl/${NAME}`, { body: GOOD });
    const result = await fetchBinary(options());
    expect(result).toMatchObject({ status: 'downloaded', name: NAME, sha256: sha(GOOD), bytes: GOOD.length });
    expect(readFileSync(join(binDir(), NAME))).toEqual(GOOD);
    expect(statSync(join(binDir(), NAME)).mode & 0o777).toBe(0o755);
    expect(leftovers()).toEqual([]);
    // Present and matching: no second download (and executable again if an unzip dropped the mode).
    chmodSync(join(binDir(), NAME), 0o644);
    expect((await fetchBinary(options())).status).toBe('present');
    expect(statSync(join(binDir(), NAME)).mode & 0o777).toBe(0o755);
    expect(server.requests).toEqual([`/dl/${NAME}`]);
  });

  it('refuses a tampered binary and leaves nothing behind', async () => {
    server.routes.set(`/dl/${NAME}`, { body: EVIL });
    await expect(fetchBinary(options())).rejects.toMatchObject({ code: ERROR_CODES.CHECKSUM });
    expect(existsSync(join(binDir(), NAME))).toBe(false);
    expect(leftovers()).toEqual([]);
  });

  it('replaces a present binary that does not match', async () => {
    writeFileSync(join(binDir(), NAME), EVIL);
    server.routes.set(`/dl/${NAME}`, { body: GOOD });
    expect((await fetchBinary(options())).status).toBe('downloaded');
    expect(readFileSync(join(binDir(), NAME))).toEqual(GOOD);
  });

  it('follows https redirects, refuses one to http', async () => {
    server.routes.set(`/dl/${NAME}`, { status: 302, headers: { location: `/objects/${NAME}` } });
    server.routes.set(`/objects/${NAME}`, { body: GOOD });
    expect((await fetchBinary(options())).status).toBe('downloaded');

    rmSync(join(binDir(), NAME));
    server.routes.set(`/dl/${NAME}`, { status: 302, headers: { location: `http://127.0.0.1:9/${NAME}` } });
    await expect(fetchBinary(options())).rejects.toMatchObject({ code: ERROR_CODES.INSECURE_ENDPOINT });
    expect(existsSync(join(binDir(), NAME))).toBe(false);
  });

  it('does not trust a certificate from an unknown CA', async () => {
    server.routes.set(`/dl/${NAME}`, { body: GOOD });
    await expect(fetchBinary(options({ CCFLUX_CA_CERT: '' }))).rejects.toMatchObject({ code: ERROR_CODES.NETWORK });
    expect(existsSync(join(binDir(), NAME))).toBe(false);
  });

  it('never downloads without an expected checksum, or over http', async () => {
    await expect(fetchBinary({ ...options(), arch: 'arm64' })).rejects.toMatchObject({ code: ERROR_CODES.CHECKSUM });
    await expect(fetchBinary(options({ CCFLUX_RELEASE_BASE_URL: server.url.replace('https:', 'http:') }))).rejects.toMatchObject({
      code: ERROR_CODES.INSECURE_ENDPOINT,
    });
    expect(server.requests).toEqual([]);
  });

  it('reports a missing release asset as a network error', async () => {
    await expect(fetchBinary(options())).rejects.toMatchObject({ code: ERROR_CODES.NETWORK });
  });

  it('as a CLI command: JSON result, and a refused download logged to errors.log', async () => {
    const runCli = async (args: string[]) => {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = '';
      stdout.on('data', (d) => {
        out += d;
      });
      stderr.resume();
      const ctx: CliContext = {
        env: { CCFLUX_RELEASE_BASE_URL: `${server.url}/dl`, CCFLUX_CA_CERT: ca.caPem, CLAUDE_CONFIG_DIR: dataDir },
        home: join(work, 'home'),
        cwd: work,
        now: () => new Date('2026-05-11T03:00:00Z'),
        stdin: new PassThrough(),
        stdout,
        stderr,
        selfCommand: { file: process.execPath, args: [join(root, 'dist', 'ccflux.cjs')] },
      };
      const code = await main(args, ctx);
      return { code, json: JSON.parse(out) as Record<string, unknown> };
    };
    server.routes.set(`/dl/${NAME}`, { body: EVIL });
    const refused = await runCli(['fetch-binary', '--platform', 'linux', '--arch', 'x64', '--json']);
    expect(refused.code).not.toBe(0);
    expect(refused.json).toMatchObject({ ok: false, error: { code: ERROR_CODES.CHECKSUM } });
    expect(readLog('errors.log')).toMatch(/fetch-binary: CCFLUX_ERR_CHECKSUM: checksum mismatch for ccflux-linux-x64/);

    server.routes.set(`/dl/${NAME}`, { body: GOOD });
    const accepted = await runCli(['fetch-binary', '--plugin-root', root, '--platform', 'linux', '--arch', 'x64', '--json']);
    expect(accepted).toMatchObject({ code: 0, json: { ok: true, status: 'downloaded', sha256: sha(GOOD) } });
  });
});

describe('fetch-binary.sh (curl)', () => {
  function runScript(env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn('sh', [join(root, 'scripts/fetch-binary.sh'), root, NAME], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        out += d;
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
  }
  const shellEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    PATH: pathWithoutNode(join(work, 'path')),
    HOME: join(work, 'home'),
    CLAUDE_CONFIG_DIR: dataDir,
    CCFLUX_RELEASE_BASE_URL: `${server.url}/dl`,
    CCFLUX_CA_CERT: ca.caPem,
    ...extra,
  });

  it('accepts the correct binary: verified, executable, renamed into place', async () => {
    server.routes.set(`/dl/${NAME}`, { status: 302, headers: { location: `/objects/${NAME}` } });
    server.routes.set(`/objects/${NAME}`, { body: GOOD });
    expect(await runScript(shellEnv())).toEqual({ code: 0, out: '' });
    expect(readFileSync(join(binDir(), NAME))).toEqual(GOOD);
    expect(statSync(join(binDir(), NAME)).mode & 0o111).not.toBe(0);
    expect(readdirSync(binDir()).sort()).toEqual(['SHA256SUMS', NAME]);
    expect(readLog('activity.log')).toMatch(new RegExp(`fetch-binary\\.sh: downloaded ${NAME} 0\\.1\\.0 .*sha256 ${sha(GOOD)} verified`));
  });

  it('refuses a tampered binary, logs why, and waits before trying again', async () => {
    server.routes.set(`/dl/${NAME}`, { body: EVIL });
    expect(await runScript(shellEnv())).toEqual({ code: 0, out: '' });
    expect(existsSync(join(binDir(), NAME))).toBe(false);
    expect(readdirSync(binDir()).filter((n) => n.includes('.download') || n === '.fetch.lock')).toEqual([]);
    expect(readLog('errors.log')).toMatch(new RegExp(`checksum mismatch for ${NAME} .*expected ${sha(GOOD)}, got ${sha(EVIL)}; file discarded`));

    await runScript(shellEnv());
    expect(server.requests).toEqual([`/dl/${NAME}`]);
  });

  it('makes a present, matching binary executable without downloading it', async () => {
    writeFileSync(join(binDir(), NAME), GOOD, { mode: 0o644 });
    expect(await runScript(shellEnv())).toEqual({ code: 0, out: '' });
    expect(statSync(join(binDir(), NAME)).mode & 0o777).toBe(0o755);
    expect(server.requests).toEqual([]);
  });

  it('refuses plain http and an untrusted certificate', async () => {
    server.routes.set(`/dl/${NAME}`, { body: GOOD });
    await runScript(shellEnv({ CCFLUX_RELEASE_BASE_URL: server.url.replace('https:', 'http:') }));
    expect(readLog('errors.log')).toContain('refusing to download ccflux-linux-x64 over a non-https URL');
    // Created by the script, still 0600 like every ccflux log (doctor's permission check).
    expect(statSync(join(dataDir, 'ccflux', 'errors.log')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'ccflux', 'activity.log')).mode & 0o777).toBe(0o600);
    expect(server.requests).toEqual([]);

    rmSync(join(binDir(), '.fetch-failed'));
    await runScript(shellEnv({ CCFLUX_CA_CERT: '' }));
    expect(readLog('errors.log')).toMatch(/download of https:\/\/127\.0\.0\.1:\d+\/dl\/ccflux-linux-x64 failed/);
    expect(existsSync(join(binDir(), NAME))).toBe(false);
  });

  const bundle = join(repoRoot, 'plugin', 'dist', 'ccflux.cjs');
  it.skipIf(!existsSync(bundle))('without curl, hands over to `ccflux fetch-binary` through node (npm test builds the bundle)', async () => {
    copyFileSync(bundle, join(root, 'dist', 'ccflux.cjs'));
    copyFileSync(join(dirname(bundle), 'ccflux.body.cjs'), join(root, 'dist', 'ccflux.body.cjs'));
    server.routes.set(`/dl/${NAME}`, { body: EVIL });
    const env = shellEnv({ PATH: pathWithoutNode(join(work, 'path-node'), {}, { omit: ['curl'], links: { node: process.execPath } }) });
    expect(await runScript(env)).toEqual({ code: 0, out: '' });
    expect(existsSync(join(binDir(), NAME))).toBe(false);
    expect(readLog('errors.log')).toMatch(/fetch-binary: CCFLUX_ERR_CHECKSUM: checksum mismatch for ccflux-linux-x64/);

    rmSync(join(binDir(), '.fetch-failed'));
    server.routes.set(`/dl/${NAME}`, { body: GOOD });
    expect(await runScript(env)).toEqual({ code: 0, out: '' });
    expect(readFileSync(join(binDir(), NAME))).toEqual(GOOD);
  });

  it('refuses a redirect to http', async () => {
    server.routes.set(`/dl/${NAME}`, { status: 302, headers: { location: `http://127.0.0.1:9/${NAME}` } });
    await runScript(shellEnv());
    expect(existsSync(join(binDir(), NAME))).toBe(false);
    expect(readLog('errors.log')).toContain(`download of ${server.url}/dl/${NAME} failed`);
  });
});
