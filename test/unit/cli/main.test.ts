/**
 * main() runs a hook worker's plain argv (`report-turn --input-file <spool> --foreground`, as
 * ccflux-hook.sh and a hand-off start it) without loading commander, and sends everything else
 * (help, other spellings, user commands) through commander. Both parse to the same options.
 */
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { cleanupTempDirs, hookEnv, makeDataDir, readJsonLines, writeOneTurnTranscript } from '../../helpers/env';

const commander = vi.hoisted(() => ({ loads: 0 }));
vi.mock('commander', async (importOriginal) => {
  commander.loads++;
  return importOriginal();
});

const { COMMANDS } = await import('../../../src/cli/commands/index');
const { parseHookArgs } = await import('../../../src/cli/hook-command');
const { main } = await import('../../../src/cli/main');
type CliContext = import('../../../src/cli/types').CliContext;

const SESSION = '3f2a0000-1111-2222-3333-444455556666';

afterAll(async () => {
  await cleanupTempDirs();
});

function context(env: NodeJS.ProcessEnv, home: string): { ctx: CliContext; printed: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let text = '';
  for (const stream of [stdout, stderr]) stream.on('data', (d: Buffer) => (text += d.toString()));
  const ctx: CliContext = {
    env,
    home,
    cwd: '/',
    now: () => new Date(),
    stdin: new PassThrough(),
    stdout,
    stderr,
    selfCommand: { file: process.execPath, args: ['/nonexistent/ccflux.cjs'] },
  };
  return { ctx, printed: () => text };
}

async function oneTurn() {
  const { dataDir, home } = await makeDataDir({ email: 'a@example.org' });
  const transcript = await writeOneTurnTranscript(dataDir, SESSION);
  const input = JSON.stringify({ session_id: SESSION, transcript_path: transcript, hook_event_name: 'SessionEnd' });
  return { dataDir, home, input, env: hookEnv({ dataDir, home }) };
}

describe('main', () => {
  // First in the file: the mock counts commander's loads for the whole file.
  it("runs a hook worker's argv without loading commander, and does the work", async () => {
    // The worker's watchdog would end the test process after 90 s; here it must not.
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    try {
      const t = await oneTurn();
      const { ctx, printed } = context(t.env, t.home);
      const code = await main(['session-end', '--input', t.input, '--foreground'], ctx);
      expect(code).toBe(0);
      expect(printed()).toBe('');
      expect(await readJsonLines(join(t.dataDir, 'ccflux', 'pending_reports.jsonl'))).toHaveLength(1);
      expect(commander.loads).toBe(0);
    } finally {
      exit.mockRestore();
    }
  });

  it('a hook asked for --help, or spelled otherwise, goes through commander (and a hook stays silent)', async () => {
    const t = await oneTurn();
    const help = context(t.env, t.home);
    expect(await main(['report-turn', '--help'], help.ctx)).toBe(0);
    expect(help.printed()).toContain('Usage: ccflux report-turn');
    expect(commander.loads).toBe(1);

    const odd = context(t.env, t.home);
    expect(await main(['report-turn', '--input=not json', '--bogus'], odd.ctx)).toBe(0);
    expect(odd.printed()).toBe('');
  });
});

describe('parseHookArgs', () => {
  /** What commander gives the hook command for `args` (null: commander refuses them). */
  async function commanderOptions(args: string[]): Promise<Record<string, unknown> | null> {
    const { Command } = await import('commander');
    const spec = COMMANDS.find((c) => c.name === 'report-turn');
    const cmd = new Command('report-turn').exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
    spec?.configure?.(cmd);
    cmd.action(() => {});
    try {
      cmd.parse(args, { from: 'user' });
    } catch {
      return null;
    }
    return cmd.opts();
  }

  it.each([
    [['--input-file', '/tmp/ccflux-hook.abc', '--foreground']],
    [['--foreground', '--input', '{"session_id":"x"}']],
    [['--input', '{}']],
    [['--input-file', '/tmp/x', '--input', '{}', '--foreground']],
    [[]],
  ])('%j: the options commander would give', async (args) => {
    const direct = parseHookArgs(args);
    expect(direct).not.toBeNull();
    expect(direct).toEqual(await commanderOptions(args));
  });

  it.each([
    [['--help']],
    [['-h']],
    [['--input=x']],
    [['--input']],
    [['--input', '--foreground']],
    [['--foreground', '--foreground']],
    [['--foreground', 'extra']],
    [['--unknown']],
  ])('%j: left to commander', (args) => {
    expect(parseHookArgs(args)).toBeNull();
  });

  it('every hook command takes its worker argv directly', () => {
    for (const spec of COMMANDS.filter((c) => c.hook)) {
      expect(spec.parseDirect?.(['--input-file', '/tmp/s', '--foreground']), spec.name).toEqual({ inputFile: '/tmp/s', foreground: true });
    }
    for (const spec of COMMANDS.filter((c) => !c.hook)) expect(spec.parseDirect, spec.name).toBeUndefined();
  });
});
