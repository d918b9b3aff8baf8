/**
 * Records fixtures from the real Claude Code 2.1.328 (run with CCFLUX_CC_RECORD=1; writes
 * test/fixtures/cc-2-1-328*): the new line types (api-request, api-request-blob,
 * api-request-shape, atis-latch, tools-used, cost-state, …), subagent files with .meta.json
 * neighbours, a --fork-session copy whose lines carry `requestSessionId`, and the real hook inputs.
 * `cc-2-1-328-cost-state` adds a compaction and a web search, whose usage only cost-state holds.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/env';
import type { Step } from './support/fake-api';
import { buildFixture, installRecorder, writeFixture } from './support/recorder';
import { type World, openWorld, unavailable } from './support/world';

const say = (text: string): Step => ({ content: [{ type: 'text', text }] });
const bash = (command: string): Step => ({
  content: [{ type: 'tool_use', name: 'Bash', input: { command, description: `Run ${command.split(' ')[0]}` } }],
});

describe.skipIf(unavailable !== null || process.env.CCFLUX_CC_RECORD !== '1')('record fixtures from the real client', { timeout: 120_000 }, () => {
  let world: World;

  beforeAll(async () => {
    world = await openWorld();
  }, 120_000);

  afterAll(async () => {
    await world?.close();
  });

  it('cc-2-1-328: tools, subagents on two models, --resume, --fork-session', async () => {
    const email = 'dev@example.org';
    const user = await world.user(email);
    const record = await installRecorder(user);
    const session = 'f1000000-0000-4000-8000-000000000001';
    world.api.script('fx-1', [
      bash('echo one'),
      {
        content: [
          { type: 'tool_use', name: 'Agent', input: { description: 'Foreground helper', prompt: '[[fx-fg]] count', subagent_type: 'general-purpose', model: 'haiku', run_in_background: false } },
        ],
      },
      { content: [{ type: 'tool_use', name: 'Agent', input: { description: 'Background helper', prompt: '[[fx-bg]] list', subagent_type: 'general-purpose' } }] },
      say('Done with both helpers.'),
    ]);
    world.api.script('fx-fg', [bash('echo fg'), say('Foreground helper done.')]);
    world.api.script('fx-bg', [bash('echo bg'), say('Background helper done.')]);
    world.api.script('fx-2', [bash('echo resumed'), say('Resumed turn done.')]);
    world.api.script('fx-3', [say('Fork turn done.')]);
    await user.prompt('[[fx-1]] first turn', ['--session-id', session, '--allowedTools', 'Bash,Agent']);
    await user.prompt('[[fx-2]] resumed turn', ['--resume', session, '--allowedTools', 'Bash']);
    const fork = await user.prompt('[[fx-3]] fork turn', ['--resume', session, '--fork-session']);
    const sessions = [session, String(fork.session_id)];
    const { billed, stored } = await world.settle([user], sessions);
    expect(stored).toEqual(billed);
    const fixture = buildFixture(user, record, { scenario: 'cc-2-1-328', email, sessions }, world.api.billed(sessions));
    await writeFixture(join(REPO_ROOT, 'test', 'fixtures', 'cc-2-1-328'), fixture);
  });

  it('cc-2-1-328-cost-state: a compaction and a web search, seen only in cost-state', async () => {
    const email = 'bg@example.org';
    const user = await world.user(email);
    const record = await installRecorder(user);
    const session = 'f1000000-0000-4000-8000-000000000002';
    world.api.script('fy-1', [bash('echo before'), say('Before the compaction.')]);
    world.api.script('fy-2', [
      { content: [{ type: 'tool_use', name: 'ToolSearch', input: { query: 'select:WebSearch', max_results: 1 } }], usage: { cache_write_1h_tokens: 5_000 } },
      { content: [{ type: 'tool_use', name: 'WebSearch', input: { query: 'ccflux [[fy-q]]' } }] },
      say('Found it.'),
    ]);
    world.api.script('fy-q', [{ content: [{ type: 'web_search', query: 'ccflux' }, { type: 'text', text: 'One result.' }], usage: { cache_write_1h_tokens: 2_000 } }]);
    await user.prompt('[[fy-1]] first', ['--session-id', session, '--allowedTools', 'Bash']);
    await user.prompt('/compact', ['--resume', session]);
    await user.prompt('[[fy-2]] search', ['--resume', session, '--allowedTools', 'WebSearch,ToolSearch']);
    await world.quiet([user]);
    const fixture = buildFixture(user, record, { scenario: 'cc-2-1-328-cost-state', email, sessions: [session] }, world.api.billed([session]));
    await writeFixture(join(REPO_ROOT, 'test', 'fixtures', 'cc-2-1-328-cost-state'), fixture);
  });
});
