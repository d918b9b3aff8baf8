/**
 * Real Claude Code 2.1.328: billed calls that write no assistant line, seen only in the session's
 * `cost-state` — a compaction (`/compact`), and the WebSearch tool's inner request (the one that
 * carries the `web_search` server tool and its per-request charge) — plus both cache TTLs. The
 * receiver must hold what the fake API billed, per model and counter, including the schema-v2
 * detail (5m/1h cache writes, web search requests) where the receiver has those columns.
 *
 * (Auto mode's classifier cannot be reproduced offline: 2.1.328 asks the server to run it and,
 * behind a custom ANTHROPIC_BASE_URL, refuses the action without any classifier call.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Profile } from './support/claude';
import type { Step } from './support/fake-api';
import { type World, openWorld, unavailable } from './support/world';


const say = (text: string): Step => ({ content: [{ type: 'text', text }] });
const bash = (command: string): Step => ({
  content: [{ type: 'tool_use', name: 'Bash', input: { command, description: `Run ${command.split(' ')[0]}` } }],
});

describe.skipIf(unavailable !== null)('real Claude Code: usage only cost-state holds', { timeout: 120_000 }, () => {
  let world: World;
  let user: Profile;

  beforeAll(async () => {
    world = await openWorld();
    user = await world.user('bg@example.org');
  }, 120_000);

  afterAll(async () => {
    await world?.close();
  });

  it('a compaction between two turns is counted once', async () => {
    const session = '0c0ffee0-0000-4000-8000-000000000021';
    world.api.script('cp-1', [bash('echo before'), say('Before the compaction.')]);
    world.api.script('cp-2', [say('After the compaction.')]);
    await user.prompt('[[cp-1]] first', ['--session-id', session, '--allowedTools', 'Bash']);
    await user.prompt('/compact', ['--resume', session]);
    await user.prompt('[[cp-2]] second', ['--resume', session]);
    const compactions = world.api.requests.filter((r) => r.sessionId === session && r.kind === 'compaction');
    expect(compactions.length).toBeGreaterThan(0);
    const { billed, stored } = await world.settle([user], [session]);
    expect(stored).toEqual(billed);
  });

  it('a fork of a session with a compaction and a web search counts neither twice', async () => {
    const parent = '0c0ffee0-0000-4000-8000-000000000023';
    world.api.script('fc-1', [bash('echo parent'), say('Parent turn.')]);
    world.api.script('fc-2', [
      { content: [{ type: 'tool_use', name: 'ToolSearch', input: { query: 'select:WebSearch', max_results: 1 } }] },
      { content: [{ type: 'tool_use', name: 'WebSearch', input: { query: 'ccflux fork [[fc-q]]' } }] },
      say('Searched.'),
    ]);
    world.api.script('fc-q', [{ content: [{ type: 'web_search', query: 'ccflux fork' }, { type: 'text', text: 'One result.' }] }]);
    world.api.script('fc-3', [bash('echo fork'), say('Fork turn.')]);
    await user.prompt('[[fc-1]] first', ['--session-id', parent, '--allowedTools', 'Bash']);
    await user.prompt('/compact', ['--resume', parent]);
    await user.prompt('[[fc-2]] search', ['--resume', parent, '--allowedTools', 'WebSearch,ToolSearch']);
    const fork = await user.prompt('[[fc-3]] in the fork', ['--resume', parent, '--fork-session', '--allowedTools', 'Bash']);
    const forkId = String(fork.session_id);
    expect(forkId).not.toBe(parent);
    const { billed, stored } = await world.settle([user], [parent, forkId]);
    expect(billed['claude-opus-5-5']?.web_search_requests).toBe(1);
    expect(stored).toEqual(billed);
    // Per session too: the fork's report holds only the fork's own calls.
    expect(world.stored([forkId])).toEqual(world.billedAs([forkId]));
  });

  it('web searches and 5-minute plus 1-hour cache writes', async () => {
    const session = '0c0ffee0-0000-4000-8000-000000000022';
    world.api.script('ws', [
      {
        content: [{ type: 'tool_use', name: 'ToolSearch', input: { query: 'select:WebSearch', max_results: 1 } }],
        usage: { cache_write_5m_tokens: 700, cache_write_1h_tokens: 9_000 },
      },
      { content: [{ type: 'tool_use', name: 'WebSearch', input: { query: 'ccflux receiver [[ws-q]]' } }] },
      { content: [{ type: 'text', text: 'Found it.' }], usage: { cache_write_5m_tokens: 0, cache_write_1h_tokens: 1_234 } },
    ]);
    // The WebSearch tool's own request: two searches, billed per request, and 1h cache writes.
    world.api.script('ws-q', [
      {
        content: [{ type: 'web_search', query: 'ccflux receiver' }, { type: 'web_search', query: 'ccflux receiver docs' }, { type: 'text', text: 'Two results.' }],
        usage: { cache_write_5m_tokens: 300, cache_write_1h_tokens: 4_000 },
      },
    ]);
    await user.prompt('[[ws]] search the web', ['--session-id', session, '--allowedTools', 'WebSearch,ToolSearch']);
    const inner = world.api.requests.filter((r) => r.sessionId === session && r.marker === 'ws-q');
    expect(inner).toHaveLength(1);
    expect(inner[0]!.billed.web_search_requests).toBe(2);
    const { billed, stored } = await world.settle([user], [session]);
    expect(stored).toEqual(billed);
  });
});
