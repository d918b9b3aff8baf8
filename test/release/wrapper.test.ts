/**
 * plugin/scripts/ccflux-hook.sh under dash and bash, as Claude Code runs it: hook JSON on stdin,
 * exit 0, nothing printed — also when neither the platform binary nor node is there (a logged
 * no-op), and while the missing binary is fetched in the background and used from the next run.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { copyPlugin, hostBinaryName, makeCa, pathWithoutNode, startHttpsServer, type TestCa, type TestServer, waitFor } from './helpers';

const HOOK_JSON = JSON.stringify({
  session_id: '0b7c2a4e-1111-4222-8333-944445555666',
  transcript_path: '/nonexistent/projects/p/0b7c2a4e-1111-4222-8333-944445555666.jsonl',
  hook_event_name: 'Stop',
});

interface HookRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runHook(shell: string, script: string, args: string[], env: NodeJS.ProcessEnv, stdin: string): Promise<HookRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(shell, [script, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

let work: string;
let root: string;
let dataDir: string;
let spoolDir: string;
let env: NodeJS.ProcessEnv;

const errorsLog = () => join(dataDir, 'ccflux', 'errors.log');
const readLog = () => (existsSync(errorsLog()) ? readFileSync(errorsLog(), 'utf8') : '');

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'ccflux-wrapper-'));
  root = copyPlugin(join(work, 'plugin'));
  dataDir = join(work, 'data');
  mkdirSync(join(dataDir, 'ccflux'), { recursive: true });
  spoolDir = join(work, 'tmp');
  mkdirSync(spoolDir);
  env = {
    PATH: pathWithoutNode(join(work, 'path')),
    HOME: join(work, 'home'),
    CLAUDE_CONFIG_DIR: dataDir,
    CLAUDE_PLUGIN_ROOT: root,
    TMPDIR: spoolDir,
    // Never reach the real release host from a test.
    CCFLUX_RELEASE_BASE_URL: 'https://127.0.0.1:9/unreachable',
  };
});

afterEach(async () => {
  // Let any background fetch finish writing before the folder goes.
  await waitFor(() => !existsSync(join(root, 'bin', '.fetch.lock')), 5000);
  rmSync(work, { recursive: true, force: true });
});

describe.each(['dash', 'bash'])('ccflux-hook.sh under %s', (shell) => {
  it('is a quiet, logged no-op without the binary and without node', async () => {
    // A release's SHA256SUMS without this platform: the background download has nothing to verify against.
    writeFileSync(join(root, 'bin', 'SHA256SUMS'), `${'0'.repeat(64)}  ccflux-plan9-x64\n`);
    const result = await runHook(shell, join(root, 'scripts/ccflux-hook.sh'), ['report-turn'], env, HOOK_JSON);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(readLog()).toMatch(/ccflux-hook\.sh: no ccflux binary for \S+ and no node in PATH; nothing reported/);
    // The hook JSON was spooled to a private file and that file is gone again.
    expect(readdirSync(spoolDir)).toEqual([]);
    expect(await waitFor(() => readLog().includes(`no checksum for ${hostBinaryName()}`))).toBe(true);
    expect(existsSync(join(root, 'bin', hostBinaryName()))).toBe(false);
  });

  it('starts no download from a development folder (no bin/SHA256SUMS)', async () => {
    const result = await runHook(shell, join(root, 'scripts/ccflux-hook.sh'), ['init'], env, HOOK_JSON);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(readLog().split('\n').filter(Boolean)).toHaveLength(1);
    expect(readdirSync(join(root, 'bin'))).toEqual([]);
  });

  it('ignores unknown commands silently', async () => {
    const result = await runHook(shell, join(root, 'scripts/ccflux-hook.sh'), ['bogus'], env, HOOK_JSON);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(readLog()).toBe('');
  });

  it('still starts node with the bundle, detached, hook JSON in a file and not in argv', async () => {
    const record = join(work, 'node-args.txt');
    env.PATH = pathWithoutNode(join(work, 'path-with-node'), {
      node: `#!/bin/sh\nprintf '%s\\n' "$@" > "${record}.part"; cat "$4" > "${record}.input"; mv "${record}.part" "${record}"\n`,
    });
    writeFileSync(join(root, 'dist', 'ccflux.cjs'), '// stand-in\n');
    writeFileSync(join(root, 'dist', 'ccflux.body.cjs'), '// stand-in code\n');
    const result = await runHook(shell, join(root, 'scripts/ccflux-hook.sh'), ['session-end'], env, HOOK_JSON);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await waitFor(() => existsSync(record))).toBe(true);
    const args = readFileSync(record, 'utf8').trim().split('\n');
    expect(args.slice(0, 3)).toEqual([join(root, 'dist', 'ccflux.cjs'), 'session-end', '--input-file']);
    expect(args[4]).toBe('--foreground');
    expect(args.join(' ')).not.toContain('session_id');
    expect(readFileSync(`${record}.input`, 'utf8')).toBe(HOOK_JSON);
  });

  it('with the bundle\'s loader but not its code, starts nothing and says why in errors.log', async () => {
    const record = join(work, 'node-args.txt');
    env.PATH = pathWithoutNode(join(work, 'path-with-node'), { node: `#!/bin/sh\nprintf '%s\\n' "$@" > "${record}"\n` });
    writeFileSync(join(root, 'dist', 'ccflux.cjs'), '// stand-in\n');
    const result = await runHook(shell, join(root, 'scripts/ccflux-hook.sh'), ['report-turn'], env, HOOK_JSON);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(readLog()).toContain(`${join(root, 'dist', 'ccflux.body.cjs')} is missing: the plugin is incomplete; nothing reported (reinstall the plugin)`);
    // A node started would have written its arguments by now.
    expect(await waitFor(() => existsSync(record), 500)).toBe(false);
  });
});

describe('an existing binary is re-verified against SHA256SUMS (issue 16)', () => {
  function installBinary(contents: Buffer, sumsFor: Buffer): { record: string; name: string } {
    const name = hostBinaryName();
    const path = join(root, 'bin', name);
    writeFileSync(path, contents, { mode: 0o755 });
    writeFileSync(join(root, 'bin', 'SHA256SUMS'), `${createHash('sha256').update(sumsFor).digest('hex')}  ${name}\n`);
    return { record: join(work, 'binary-args.txt'), name };
  }
  const fakeBinary = (record: string) => Buffer.from(`#!/bin/sh\nprintf '%s\\n' "$@" > "${record}.part"; mv "${record}.part" "${record}"\n`);

  it('runs a binary that matches, and not one swapped after verification (logged, spool removed)', async () => {
    const record = join(work, 'binary-args.txt');
    const good = fakeBinary(record);
    installBinary(good, good);
    const ok = await runHook('sh', join(root, 'scripts/ccflux-hook.sh'), ['report-turn'], env, HOOK_JSON);
    expect(ok).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await waitFor(() => existsSync(record))).toBe(true);
    expect(readFileSync(record, 'utf8').split('\n')[0]).toBe('report-turn');
    rmSync(record);
    // The stand-in binary leaves its spool file (ccflux deletes it): clear it for the check below.
    for (const f of readdirSync(spoolDir)) rmSync(join(spoolDir, f));

    // Same SHA256SUMS, different bytes in the binary's place.
    const evil = Buffer.from(`#!/bin/sh\ntouch "${record}.evil"\n`);
    writeFileSync(join(root, 'bin', hostBinaryName()), evil, { mode: 0o755 });
    const refused = await runHook('sh', join(root, 'scripts/ccflux-hook.sh'), ['report-turn'], env, HOOK_JSON);
    expect(refused).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await waitFor(() => readLog().includes('does not match'))).toBe(true);
    expect(existsSync(`${record}.evil`)).toBe(false);
    expect(await waitFor(() => readdirSync(spoolDir).length === 0)).toBe(true);
  });
});

describe('missing binary fetched in the background (https, verified)', () => {
  let ca: TestCa;
  let caDir: string;
  let server: TestServer;

  beforeAll(async () => {
    caDir = mkdtempSync(join(tmpdir(), 'ccflux-wrapper-ca-'));
    ca = await makeCa(caDir);
    server = await startHttpsServer(ca);
  });
  afterAll(async () => {
    await server?.close();
    // The CA's and the server's private keys.
    rmSync(caDir, { recursive: true, force: true });
  });

  it('downloads, verifies and then uses the platform binary', async () => {
    const record = join(work, 'binary-args.txt');
    const fake = Buffer.from(`#!/bin/sh\nprintf '%s\\n' "$@" > "${record}.part"; mv "${record}.part" "${record}"\n`);
    const name = hostBinaryName();
    server.routes.set(`/dl/${name}`, { body: fake });
    writeFileSync(join(root, 'bin', 'SHA256SUMS'), `${createHash('sha256').update(fake).digest('hex')}  ${name}\n`);
    env.CCFLUX_RELEASE_BASE_URL = `${server.url}/dl`;
    env.CCFLUX_CA_CERT = ca.caPem;

    const first = await runHook('sh', join(root, 'scripts/ccflux-hook.sh'), ['init'], env, HOOK_JSON);
    expect(first).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await waitFor(() => existsSync(join(root, 'bin', name)))).toBe(true);
    // The script installs the binary, then logs it: the line can come a moment after the file.
    const activity = () => {
      try {
        return readFileSync(join(work, 'data', 'ccflux', 'activity.log'), 'utf8');
      } catch {
        return '';
      }
    };
    expect(await waitFor(() => /fetch-binary\.sh: downloaded .* verified/.test(activity()))).toBe(true);

    const second = await runHook('sh', join(root, 'scripts/ccflux-hook.sh'), ['report-turn'], env, HOOK_JSON);
    expect(second).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await waitFor(() => existsSync(record))).toBe(true);
    expect(readFileSync(record, 'utf8').split('\n').slice(0, 2)).toEqual(['report-turn', '--input-file']);
  });
});
