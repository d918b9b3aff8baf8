/**
 * scripts/check-release.sh: each bad case fails naming file and line; the real tree passes
 * silently. Bad cases run on a temporary git repository holding a copy of what the gate reads, so
 * the real work tree is never touched.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repoRoot = join(__dirname, '..', '..');

interface GateResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function gate(cwd: string): Promise<GateResult> {
  try {
    const { stdout, stderr } = await run('bash', ['scripts/check-release.sh'], { cwd });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function git(cwd: string, ...args: string[]): Promise<void> {
  await run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', '-c', 'commit.gpgsign=false', ...args], { cwd });
}

let work: string;

beforeEach(async () => {
  work = mkdtempSync(join(tmpdir(), 'ccflux-check-release-'));
  for (const rel of ['scripts/check-release.sh', 'package.json', '.claude-plugin/marketplace.json']) {
    mkdirSync(dirname(join(work, rel)), { recursive: true });
    cpSync(join(repoRoot, rel), join(work, rel));
  }
  for (const dir of ['plugin/.claude-plugin', 'plugin/hooks', 'plugin/scripts']) {
    cpSync(join(repoRoot, dir), join(work, dir), { recursive: true });
  }
  mkdirSync(join(work, 'plugin/dist'), { recursive: true });
  mkdirSync(join(work, 'plugin/bin'), { recursive: true });
  await git(work, 'init', '-q');
  await git(work, 'add', '-A');
  await git(work, 'commit', '-q', '-m', 'copy');
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

function append(rel: string, text: string): number {
  const file = join(work, rel);
  const before = readFileSync(file, 'utf8');
  writeFileSync(file, before.endsWith('\n') ? before + text : `${before}\n${text}`);
  return readFileSync(file, 'utf8').split('\n').indexOf(text.split('\n')[0] as string) + 1;
}

function setJsonVersion(rel: string, edit: (json: Record<string, unknown>) => void): void {
  const file = join(work, rel);
  const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(json);
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
}

describe('check-release.sh', () => {
  it('passes silently on the real tree', async () => {
    const result = await gate(repoRoot);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('passes silently on the unmodified copy', async () => {
    expect(await gate(work)).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('fails naming file and line when a wrapper script sets CCFLUX_ALLOW_HTTP', async () => {
    const line = append('plugin/scripts/ccflux-hook.sh', 'export CCFLUX_ALLOW_HTTP=1');
    const result = await gate(work);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`plugin/scripts/ccflux-hook.sh:${line}:`);
    expect(result.stdout).toBe('');
  });

  it('fails for hooks.json, for any other script, and for an untracked file that would ship', async () => {
    const hooks = join(work, 'plugin/hooks/hooks.json');
    writeFileSync(hooks, readFileSync(hooks, 'utf8').replace('"description"', '"env": { "CCFLUX_ALLOW_HTTP": "1" },\n  "description"'));
    writeFileSync(join(work, 'plugin/scripts/helper.ps1'), '# dev\n$env:CCFLUX_ALLOW_HTTP = "1"\n');
    writeFileSync(join(work, 'plugin/dist/notes.txt'), 'CCFLUX_ALLOW_HTTP=1\n');
    const result = await gate(work);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('plugin/hooks/hooks.json:2:');
    expect(result.stderr).toContain('plugin/scripts/helper.ps1:2:');
    expect(result.stderr).toContain('plugin/dist/notes.txt:1:');
  });

  it('fails for the plugin manifest and the marketplace manifest', async () => {
    setJsonVersion('plugin/.claude-plugin/plugin.json', (j) => {
      j.description = 'set CCFLUX_ALLOW_HTTP=1';
    });
    setJsonVersion('.claude-plugin/marketplace.json', (j) => {
      j.description = 'CCFLUX_ALLOW_HTTP';
    });
    const result = await gate(work);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/plugin\/\.claude-plugin\/plugin\.json:\d+:/);
    expect(result.stderr).toMatch(/^check-release: \.claude-plugin\/marketplace\.json:\d+:/m);
  });

  it('lets the compiled CLI read the variable (bundle and platform binaries are exempt)', async () => {
    writeFileSync(join(work, 'plugin/dist/ccflux.cjs'), 'const allow=process.env.CCFLUX_ALLOW_HTTP==="1";\n');
    writeFileSync(join(work, 'plugin/bin/ccflux-linux-x64'), Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0]), Buffer.from('CCFLUX_ALLOW_HTTP')]));
    expect(await gate(work)).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('does not exempt other files beside the binaries or inside dist/ folders', async () => {
    writeFileSync(join(work, 'plugin/bin/ccflux-linux-x64.sh'), 'CCFLUX_ALLOW_HTTP=1 exec ./ccflux-linux-x64 "$@"\n');
    mkdirSync(join(work, 'plugin/dist/extra'));
    writeFileSync(join(work, 'plugin/dist/extra/x.cjs'), 'process.env.CCFLUX_ALLOW_HTTP="1"\n');
    const result = await gate(work);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('plugin/bin/ccflux-linux-x64.sh:1:');
    expect(result.stderr).toContain('plugin/dist/extra/x.cjs:1:');
  });

  it.each(['config.json', 'token_cache.json', 'signing_key'])('fails when %s is tracked by git', async (name) => {
    mkdirSync(join(work, 'state/ccflux'), { recursive: true });
    writeFileSync(join(work, 'state/ccflux', name), '{}\n');
    expect(await gate(work)).toEqual({ code: 0, stdout: '', stderr: '' }); // untracked: fine
    await git(work, 'add', '-f', `state/ccflux/${name}`);
    const result = await gate(work);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`state/ccflux/${name}:1:`);
  });

  it('fails when plugin.json has another version than package.json', async () => {
    setJsonVersion('plugin/.claude-plugin/plugin.json', (j) => {
      j.version = '9.9.9';
    });
    const result = await gate(work);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('plugin/.claude-plugin/plugin.json:3: version 9.9.9');
  });

  it('fails when the marketplace carries another version', async () => {
    setJsonVersion('.claude-plugin/marketplace.json', (j) => {
      (j.plugins as Array<Record<string, unknown>>)[0]!.version = '0.0.9';
    });
    const result = await gate(work);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/\.claude-plugin\/marketplace\.json:\d+: version 0\.0\.9/);
  });

  it('fails when a shipped JSON file does not parse', async () => {
    writeFileSync(join(work, 'plugin/hooks/hooks.json'), '{\n  "hooks": {\n    oops\n}\n');
    const result = await gate(work);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/plugin\/hooks\/hooks\.json:\d+: invalid JSON/);
  });

  it('fails closed outside a git work tree', async () => {
    rmSync(join(work, '.git'), { recursive: true, force: true });
    const result = await gate(work);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('not a git work tree');
  });
});
