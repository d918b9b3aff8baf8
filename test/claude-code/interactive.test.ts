/**
 * Real Claude Code 2.1.328, interactive, in a tmux terminal: `/clear` in the middle of a session
 * (a new session id and a new file), and a session killed (SIGKILL) right after the Stop of its
 * last turn, so that no later hook can run. The receiver must hold what the fake API billed.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../helpers/env';
import { type Profile, startInteractive } from './support/claude';
import type { Step } from './support/fake-api';
import { type World, openWorld, tmuxUnavailable } from './support/world';

const say = (text: string): Step => ({ content: [{ type: 'text', text }] });
const bash = (command: string): Step => ({
  content: [{ type: 'tool_use', name: 'Bash', input: { command, description: `Run ${command.split(' ')[0]}` } }],
});

/** The session's transcript, once Claude Code has created it. */
async function transcriptOf(user: Profile, sessionId: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const found = (await user.transcripts()).find((p) => p.endsWith(`${sessionId}.jsonl`));
    if (found) return found;
    await sleep(100);
  }
  throw new Error(`no transcript for ${sessionId}`);
}

/** Polls (every 10 ms) until the transcript has `count` stop_hook_summary lines: the turn's final lines are on disk. */
async function waitForTurnWritten(path: string, count: number, timeoutMillis = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMillis;
  for (;;) {
    const text = await readFile(path, 'utf8').catch(() => '');
    if ((text.match(/"subtype":"stop_hook_summary"/g) ?? []).length >= count) return;
    if (Date.now() > deadline) throw new Error(`${path}: turn ${count} never finished`);
    await sleep(10);
  }
}

describe.skipIf(tmuxUnavailable !== null)('real Claude Code, interactive under tmux: stored equals billed', { timeout: 120_000 }, () => {
  let world: World;

  beforeAll(async () => {
    world = await openWorld();
  }, 120_000);

  afterAll(async () => {
    await world?.close();
  });

  it('/clear mid-session: both sessions are counted, each once', async () => {
    const user = await world.user('clear@example.org');
    const session = '0c0ffee0-0000-4000-8000-000000000011';
    world.api.script('cl-1', [bash('echo before'), say('Reply-before-clear')]);
    world.api.script('cl-2', [say('Reply-after-clear')]);
    const since = world.api.count;
    const term = await startInteractive(world.sandbox, user, ['--session-id', session, '--allowedTools', 'Bash']);
    try {
      await term.waitFor(/❯/);
      await term.type('[[cl-1]] before');
      await term.waitFor(/Reply-before-clear/);
      await waitForTurnWritten(await transcriptOf(user, session), 1);
      await term.type('/clear');
      await sleep(1_000);
      await term.type('[[cl-2]] after');
      await term.waitFor(/Reply-after-clear/);
      await term.type('/exit');
    } finally {
      await sleep(2_000);
      await term.kill();
    }
    const sessions = world.api.sessions(since);
    expect(sessions).toHaveLength(2);
    expect(sessions[0]).toBe(session);
    const { billed, stored } = await world.settle([user], sessions);
    expect(stored).toEqual(billed);
  });

  // Without the worker's settle-before-read this failed whenever the final response landed after
  // the Stop worker had read (seen: 1 of 4 runs on a loaded machine).
  it('terminal killed right after the last Stop: that turn is still delivered', async () => {
    const user = await world.user('killed@example.org');
    const session = '0c0ffee0-0000-4000-8000-000000000012';
    world.api.script('kl-1', [bash('echo first'), say('Reply-first-turn')]);
    world.api.script('kl-2', [say('Reply-last-turn')]);
    const term = await startInteractive(world.sandbox, user, ['--session-id', session, '--allowedTools', 'Bash']);
    try {
      await term.waitFor(/❯/);
      await term.type('[[kl-1]] first');
      await term.waitFor(/Reply-first-turn/);
      const transcript = await transcriptOf(user, session);
      await waitForTurnWritten(transcript, 1);
      await term.type('[[kl-2]] last');
      await waitForTurnWritten(transcript, 2);
    } finally {
      // At once, and hard: SIGKILL leaves no SessionEnd hook (a SIGHUP would still run one), so no
      // later hook may pick up what the last Stop's worker missed.
      await term.kill9();
    }
    const { billed, stored } = await world.settle([user], [session]);
    expect(stored).toEqual(billed);
  });
});
