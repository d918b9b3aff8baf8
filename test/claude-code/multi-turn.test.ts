/**
 * Real Claude Code 2.1.328, headless (`claude -p`), plugin installed as a user does: a multi-turn
 * session with tool calls, `--resume`, `--fork-session`, foreground and background subagents on
 * two models, and a receiver that is down for a turn. After each, the receiver must hold exactly
 * what the fake API billed, per model and counter.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJsonLines, sleep } from '../helpers/env';
import type { Profile } from './support/claude';
import type { Step } from './support/fake-api';
import { type World, openWorld, unavailable } from './support/world';

const bash = (command: string): Step => ({
  content: [{ type: 'tool_use', name: 'Bash', input: { command, description: `Run ${command.split(' ')[0]}` } }],
});
const say = (text: string): Step => ({ content: [{ type: 'text', text }] });

/** Waits (bounded) until no endpoint in the device's `delivery_backoff.json` is still paused. */
async function waitOutBackoff(user: Profile): Promise<void> {
  const text = await readFile(join(user.configDir, 'ccflux', 'delivery_backoff.json'), 'utf8').catch(() => '{}');
  const table = JSON.parse(text) as Record<string, { notBefore?: string }>;
  const until = Math.max(0, ...Object.values(table).map((e) => Date.parse(e.notBefore ?? '') || 0));
  const waitMillis = Math.min(until - Date.now() + 500, 60_000);
  if (waitMillis > 0) await sleep(waitMillis);
}

describe.skipIf(unavailable !== null)('real Claude Code, headless: stored equals billed', { timeout: 120_000 }, () => {
  let world: World;
  let user: Profile;

  beforeAll(async () => {
    world = await openWorld();
    user = await world.user('dev@example.org');
  }, 120_000);

  afterAll(async () => {
    await world?.close();
  });

  it('multi-turn with tool calls, then --resume appends to the same session', async () => {
    const session = '0c0ffee0-0000-4000-8000-000000000001';
    world.api.script('mt-1', [
      { content: [{ type: 'text', text: 'Listing.' }, ...bash('echo one').content] },
      bash('echo two'),
      say('Both printed.'),
    ]);
    world.api.script('mt-2', [bash('echo three'), say('Printed three.')]);
    const first = await user.prompt('[[mt-1]] print one and two', ['--session-id', session, '--allowedTools', 'Bash']);
    expect(first.session_id).toBe(session);
    const second = await user.prompt('[[mt-2]] print three', ['--resume', session, '--allowedTools', 'Bash']);
    expect(second.session_id).toBe(session);
    expect(world.api.requests.filter((r) => r.sessionId === session)).toHaveLength(5);
    const { billed, stored } = await world.settle([user], [session]);
    expect(stored).toEqual(billed);
  });

  it('--fork-session: the copy of the history is not counted again, the fork own call is', async () => {
    const parent = '0c0ffee0-0000-4000-8000-000000000002';
    world.api.script('fk-1', [bash('echo parent'), say('Parent done.')]);
    world.api.script('fk-2', [say('Fork done.')]);
    await user.prompt('[[fk-1]] parent turn', ['--session-id', parent, '--allowedTools', 'Bash']);
    const fork = await user.prompt('[[fk-2]] fork turn', ['--resume', parent, '--fork-session']);
    const forkId = String(fork.session_id);
    expect(forkId).not.toBe(parent);
    expect(world.api.sessions()).toContain(forkId);
    const { billed, stored } = await world.settle([user], [parent, forkId]);
    expect(stored).toEqual(billed);
  });

  it('a foreground subagent on haiku and a background subagent, two models', async () => {
    const session = '0c0ffee0-0000-4000-8000-000000000003';
    world.api.script('sa', [
      {
        content: [
          {
            type: 'tool_use',
            name: 'Agent',
            input: { description: 'Foreground helper', prompt: '[[sa-fg]] count files', subagent_type: 'general-purpose', model: 'haiku', run_in_background: false },
          },
        ],
      },
      {
        content: [
          { type: 'tool_use', name: 'Agent', input: { description: 'Background helper', prompt: '[[sa-bg]] list files', subagent_type: 'general-purpose' } },
        ],
      },
      say('Spawned both.'),
    ]);
    world.api.script('sa-fg', [bash('echo fg'), say('Foreground finished.')]);
    world.api.script('sa-bg', [bash('sleep 1; echo bg'), say('Background finished.')]);
    await user.prompt('[[sa]] use two helpers', ['--session-id', session, '--allowedTools', 'Bash,Agent']);
    const served = world.api.requests.filter((r) => r.sessionId === session);
    expect(new Set(served.map((r) => r.model))).toEqual(new Set(['claude-opus-5-5', 'claude-haiku-5-5']));
    expect(served.filter((r) => r.marker === 'sa-bg')).toHaveLength(2);
    const { billed, stored } = await world.settle([user], [session]);
    expect(Object.keys(billed)).toHaveLength(2);
    expect(stored).toEqual(billed);
  });

  it('receiver down for a turn, then back: the queued turn is delivered with the next one', async () => {
    const session = '0c0ffee0-0000-4000-8000-000000000004';
    world.api.script('rd-1', [bash('echo while-down'), say('Turn while the receiver is down.')]);
    world.api.script('rd-2', [say('Turn after it is back.')]);
    await world.receiver.kill();
    try {
      await user.prompt('[[rd-1]] first', ['--session-id', session, '--allowedTools', 'Bash']);
      await world.quiet([user], { queueEmpty: false });
      expect(world.stored([session])).toEqual({});
      expect(await readJsonLines(join(user.configDir, 'ccflux', 'pending_reports.jsonl'))).not.toHaveLength(0);
    } finally {
      await world.receiver.restart();
    }
    // A device backs off from an endpoint that failed; the first hook after that sends everything.
    await waitOutBackoff(user);
    await user.prompt('[[rd-2]] second', ['--resume', session]);
    const { billed, stored } = await world.settle([user], [session]);
    expect(stored).toEqual(billed);
  });
});
