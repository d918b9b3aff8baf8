import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/commands/index';
import { buildProgram } from '../../src/cli/main';
import type { CliContext } from '../../src/cli/types';

function captureContext(): { ctx: CliContext; out: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let text = '';
  stdout.on('data', (d: Buffer) => {
    text += d.toString();
  });
  stderr.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const ctx: CliContext = {
    env: {},
    home: '/nonexistent-home',
    cwd: '/',
    now: () => new Date('2026-05-11T03:00:00Z'),
    stdin: new PassThrough(),
    stdout,
    stderr,
    selfCommand: { file: process.execPath, args: ['/nonexistent/ccflux.cjs'] },
  };
  return { ctx, out: () => text };
}

describe('every command in COMMANDS', () => {
  it('has a unique name, a summary and an example', () => {
    const names = COMMANDS.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const spec of COMMANDS) {
      expect(spec.summary.length, spec.name).toBeGreaterThan(0);
      expect(spec.example.trim().length, spec.name).toBeGreaterThan(0);
    }
  });

  it.each(COMMANDS.map((c) => [c.name]))('%s --help prints usage and an example', async (name) => {
    const { ctx, out } = captureContext();
    const program = await buildProgram(ctx, COMMANDS, () => {});
    let helpShown = false;
    try {
      await program.parseAsync([name, '--help'], { from: 'user' });
    } catch (err) {
      helpShown = (err as { code?: string }).code === 'commander.helpDisplayed';
    }
    expect(helpShown).toBe(true);
    const text = out();
    expect(text).toContain(`Usage: ccflux ${name}`);
    expect(text).toMatch(/\nExample:\n {2}\S/);
  });

  it('lists every non-hidden command in the top-level help', async () => {
    const { ctx, out } = captureContext();
    const program = await buildProgram(ctx, COMMANDS, () => {});
    await program.parseAsync(['--help'], { from: 'user' }).catch(() => {});
    for (const spec of COMMANDS.filter((c) => !c.hidden)) expect(out()).toContain(spec.name);
  });

  it('registers the three hook commands as hooks', () => {
    for (const name of ['init', 'report-turn', 'session-end']) {
      expect(COMMANDS.find((c) => c.name === name)?.hook, name).toBe(true);
    }
  });
});
