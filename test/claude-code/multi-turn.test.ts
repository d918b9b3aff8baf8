/**
 * Real Claude Code 2.1.328, headless: a multi-turn session with tool calls, continued with
 * `--resume` and copied with `--fork-session`. The receiver must hold exactly what the fake API
 * billed, per model and counter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Profile } from './support/claude';
import { type World, openWorld, unavailable } from './support/world';

const SESSION = '0c0ffee0-0000-4000-8000-000000000001';

describe.skipIf(unavailable !== null)('real Claude Code: multi-turn, --resume, --fork-session', () => {
  let world: World;
  let user: Profile;

  beforeAll(async () => {
    world = await openWorld();
    user = await world.user('dev@example.org');
  }, 120_000);

  afterAll(async () => {
    await world?.close();
  });

  it('a turn with two tool calls, then a resumed turn: stored equals billed', async () => {
    world.api.script('mt-1', [
      { content: [{ type: 'text', text: 'Listing.' }, { type: 'tool_use', name: 'Bash', input: { command: 'echo one', description: 'Print one' } }] },
      { content: [{ type: 'tool_use', name: 'Bash', input: { command: 'echo two', description: 'Print two' } }] },
      { content: [{ type: 'text', text: 'Both printed.' }] },
    ]);
    world.api.script('mt-2', [
      { content: [{ type: 'tool_use', name: 'Bash', input: { command: 'echo three', description: 'Print three' } }] },
      { content: [{ type: 'text', text: 'Printed three.' }] },
    ]);
    const first = await user.prompt('[[mt-1]] print one and two', ['--session-id', SESSION, '--allowedTools', 'Bash']);
    expect(first.session_id).toBe(SESSION);
    const second = await user.prompt('[[mt-2]] print three', ['--resume', SESSION, '--allowedTools', 'Bash']);
    expect(second.session_id).toBe(SESSION);
    const { billed, stored } = await world.settle([user], [SESSION]);
    expect(stored).toEqual(billed);
  });
});
