/**
 * The built CLI's hook commands called directly (as wrappers written for the Rust version do,
 * and as Claude Code would with an exec-form hook): whatever the input, exit 0, print nothing,
 * return at once, and leave no spool file behind.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  CLI_BUNDLE,
  cleanupTempDirs,
  fixtureDir,
  hookEnv,
  makeDataDir,
  makeTempDir,
  readJsonLines,
  run,
  sessionSums,
  runCli,
  writeOneTurnTranscript,
} from '../helpers/env';
import { type RunningReceiver as Receiver, startReceiver } from '../helpers/receiver';
import { expectedModels, installPlugin, replayTimeline, waitForQuiet } from '../helpers/timeline';

const SESSION = '3f2a0000-1111-2222-3333-444455556666';

let receiver: Receiver | undefined;

afterEach(async () => {
  await receiver?.stop();
  receiver = undefined;
});

afterAll(async () => {
  await cleanupTempDirs();
});

/** A data dir with a one-turn transcript, hooks pointed at nothing (reports stay queued), private TMPDIR. */
async function oneTurn() {
  const { dataDir, home } = await makeDataDir({ email: 'a@example.org' });
  const spoolDir = await makeTempDir('ccflux-spool-');
  const transcript = await writeOneTurnTranscript(dataDir, SESSION);
  const env = hookEnv({ dataDir, home, extra: { TMPDIR: spoolDir } });
  const input = JSON.stringify({ session_id: SESSION, transcript_path: transcript, hook_event_name: 'Stop' });
  const queued = async () => readJsonLines(join(dataDir, 'ccflux', 'pending_reports.jsonl'));
  return { dataDir, home, spoolDir, transcript, env, input, queued };
}

describe('hook commands called directly', () => {
  it('report-turn with stdin hands off to a detached worker and returns at once', async () => {
    const t = await oneTurn();
    const result = await runCli(['report-turn'], { env: t.env, input: t.input });
    expect(result).toMatchObject({ code: 0, stdout: '', stderr: '' });
    await waitForQuiet(t.dataDir, { queueEmpty: false });
    expect(await t.queued()).toHaveLength(1);
    expect(await readdir(t.spoolDir)).toEqual([]);
  });

  it('accepts --input for wrappers written for the Rust version', async () => {
    const t = await oneTurn();
    const result = await runCli(['report-turn', '--input', t.input], { env: t.env, input: '' });
    expect(result).toMatchObject({ code: 0, stdout: '', stderr: '' });
    await waitForQuiet(t.dataDir, { queueEmpty: false });
    expect(await t.queued()).toHaveLength(1);
  });

  it('--foreground does the work before returning', async () => {
    const t = await oneTurn();
    const result = await runCli(['report-turn', '--foreground', '--input', t.input], { env: t.env, input: '' });
    expect(result).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(await t.queued()).toHaveLength(1);
  });

  it('--input-file deletes a spool file once read, but never a file that is not one', async () => {
    const t = await oneTurn();
    const spool = join(t.spoolDir, 'ccflux-hook.AbCdEf12');
    await writeFile(spool, t.input, { mode: 0o600 });
    expect((await runCli(['report-turn', '--foreground', '--input-file', spool], { env: t.env })).code).toBe(0);
    await expect(stat(spool)).rejects.toThrow();
    expect(await t.queued()).toHaveLength(1);

    const precious = join(t.spoolDir, 'hook-input.json');
    await writeFile(precious, t.input);
    expect((await runCli(['session-end', '--foreground', '--input-file', precious], { env: t.env })).code).toBe(0);
    expect(await readFile(precious, 'utf8')).toBe(t.input);
  });

  it.each([
    ['empty stdin', ['report-turn'], ''],
    ['not JSON', ['report-turn'], 'not json at all'],
    ['an empty object', ['session-end'], '{}'],
    ['a path-like session id', ['init'], '{"session_id":"../../etc/passwd","transcript_path":"/etc/passwd"}'],
    ['an unknown option', ['report-turn', '--frobnicate'], '{}'],
    ['a missing option value', ['report-turn', '--input'], ''],
    ['a missing spool file', ['report-turn', '--foreground', '--input-file', '/nonexistent/ccflux-hook.x'], ''],
    ['binary junk', ['report-turn'], '\u0000\u00ff{{{'],
  ])('%s: exit 0, prints nothing', async (_name, args, input) => {
    const t = await oneTurn();
    const result = await runCli(args, { env: t.env, input });
    expect(result).toMatchObject({ code: 0, stdout: '', stderr: '' });
    await waitForQuiet(t.dataDir, { queueEmpty: false });
    expect(await t.queued()).toEqual([]);
    expect(await readdir(t.spoolDir)).toEqual([]);
  });

  it("the worker's argv loads neither commander nor builtins a turn does not use", async () => {
    const t = await oneTurn();
    // A preload that writes down the builtins loaded after it (Node's own start-up is not ours).
    const probeDir = await makeTempDir('ccflux-probe-');
    const probe = join(probeDir, 'probe.cjs');
    await writeFile(
      probe,
      `const before = new Set(process.moduleLoadList);
process.on('exit', () => require('node:fs').writeFileSync(process.env.PROBE_OUT, process.moduleLoadList.filter((m) => !before.has(m)).join('\\n')));`,
    );
    const out = join(probeDir, 'modules.txt');
    const loaded = async (args: string[]) => {
      const result = await run(process.execPath, ['-r', probe, CLI_BUNDLE, ...args], { env: { ...t.env, PROBE_OUT: out } });
      expect(result).toMatchObject({ code: 0, stderr: '' });
      return (await readFile(out, 'utf8')).split('\n');
    };
    // Exactly what plugin/scripts/ccflux-hook.sh starts, stdio on /dev/null as there.
    const spool = join(t.spoolDir, 'ccflux-hook.Probe123');
    await writeFile(spool, t.input, { mode: 0o600 });
    const child = spawn(process.execPath, ['-r', probe, CLI_BUNDLE, 'report-turn', '--input-file', spool, '--foreground'], {
      env: { ...t.env, PROBE_OUT: out },
      stdio: 'ignore',
    });
    expect((await once(child, 'exit'))[0]).toBe(0);
    const worker = (await readFile(out, 'utf8')).split('\n');
    expect(await t.queued()).toHaveLength(1);
    // commander's module requires node:child_process at its top: its absence is commander's too.
    // fs/promises (with readline) serves only the ledger's large batches; rimraf only odd lock dirs;
    // the last two are what process.stdout and process.stdin on /dev/null are made with.
    const unused = ['child_process', 'perf_hooks', 'sea', 'fs/promises', 'internal/fs/rimraf', 'internal/fs/sync_write_stream', 'internal/fs/streams'];
    for (const name of unused) expect(worker, name).not.toContain(`NativeModule ${name}`);
    // The probe sees them where they are used: --help goes through commander.
    expect(await loaded(['report-turn', '--help'])).toContain('NativeModule child_process');
  });

  it('a stdin that is never closed does not hang the hook', async () => {
    const t = await oneTurn();
    const result = await runCli(['report-turn'], { env: t.env, input: null, timeoutMillis: 10_000 });
    expect(result).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(result.wallMillis).toBeLessThan(5_000);
  });

  // File calls are synchronous (src/client/local/fs.ts): a FIFO that would block an open or a
  // read must be refused, not waited for (nothing else in the process could run meanwhile).
  it.skipIf(process.platform === 'win32')('a FIFO as the spool file or as the transcript: exit 0 at once, nothing read', async () => {
    const t = await oneTurn();
    const fifo = join(t.spoolDir, 'ccflux-hook.fifo');
    execFileSync('mkfifo', [fifo]);
    const spooled = await runCli(['report-turn', '--foreground', '--input-file', fifo], { env: t.env, timeoutMillis: 20_000 });
    expect(spooled).toMatchObject({ code: 0, signal: null, stdout: '', stderr: '' });
    expect(spooled.wallMillis).toBeLessThan(10_000);

    const pipeTranscript = join(t.dataDir, 'projects', '-home-u-repo', 'fifo00000-0000-4000-8000-000000000000.jsonl');
    execFileSync('mkfifo', [pipeTranscript]);
    const input = JSON.stringify({ session_id: 'fifo00000-0000-4000-8000-000000000000', transcript_path: pipeTranscript, hook_event_name: 'Stop' });
    const stopped = await runCli(['report-turn', '--foreground', '--input', input], { env: t.env, timeoutMillis: 20_000 });
    expect(stopped).toMatchObject({ code: 0, signal: null, stdout: '', stderr: '' });
    expect(stopped.wallMillis).toBeLessThan(10_000);
    expect(await t.queued()).toEqual([]);
  });

  // The thread pool (16 threads for a hook, src/cli/main.ts) starts on the first call that needs
  // it; a turn's file calls are made directly (src/client/local/fs.ts), so a turn, its delivery
  // included, never starts it. /proc/self/task counts the process's threads at exit: 7 here
  // without the pool (main, V8's platform workers, the inspector's), 23 with it.
  it.skipIf(process.platform !== 'linux')('a turn with delivery starts no thread pool', async () => {
    const rx = await startReceiver();
    receiver = rx;
    const token = await rx.addUser('a@example.org');
    const t = await oneTurn();
    const env = hookEnv({ dataDir: t.dataDir, home: t.home, endpoint: rx.url, token });
    const threadsFile = join(t.spoolDir, 'threads');
    const preload = join(t.spoolDir, 'threads.cjs');
    await writeFile(
      preload,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(threadsFile)}, String(require('node:fs').readdirSync('/proc/self/task').length)));\n`,
    );
    const result = await run(process.execPath, ['--require', preload, CLI_BUNDLE, 'report-turn', '--foreground', '--input', t.input], { env, input: '' });
    expect(result).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(rx.sums()['claude-sonnet-4-6']).toMatchObject({ input_tokens: 10, output_tokens: 5 });
    expect(await t.queued()).toEqual([]);
    const threads = Number(await readFile(threadsFile, 'utf8'));
    expect(threads).toBeGreaterThan(0);
    expect(threads).toBeLessThan(16);
  });

  it('a whole session through exec-form hooks (no wrapper script) reaches the receiver exactly', async () => {
    const rx = await startReceiver();
    receiver = rx;
    const token = await rx.addUser('alice@example.org');
    const { dataDir, home } = await makeDataDir({ email: 'alice@example.org' });
    const pluginRoot = await installPlugin(dataDir);
    // hooks.json as a Rust-era plugin would write it: the CLI itself, hook JSON on stdin.
    const hooksPath = join(pluginRoot, 'hooks', 'hooks.json');
    const hooks = (await readFile(hooksPath, 'utf8')).replace(
      /\\"\$\{CLAUDE_PLUGIN_ROOT\}\/scripts\/ccflux-hook\.sh\\"/g,
      `\\"${process.execPath}\\" \\"\${CLAUDE_PLUGIN_ROOT}/dist/ccflux.cjs\\"`,
    );
    expect(hooks).not.toContain('ccflux-hook.sh');
    await writeFile(hooksPath, hooks);
    const env = hookEnv({ dataDir, home, pluginRoot, endpoint: rx.url, token });
    const dir = fixtureDir('subagents');

    const { meta } = await replayTimeline(dir, { dataDir, env, pluginRoot });
    await waitForQuiet(dataDir);
    expect(sessionSums(rx, meta.sessions)).toEqual(expectedModels(dir));
  });
});
