/**
 * The hook worker (`runHook`) and the hook commands' input handling, against a temp data dir with
 * no receiver configured (so nothing touches the network: reports stay queued).
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { readStdin } from '../../../src/cli/hook-command';
import { parseHookInput, parseHookText, runHook } from '../../../src/client/hook/worker';
import { cleanupTempDirs, makeDataDir, readJsonLines } from '../../helpers/env';

const SESSION = '3f2a0000-1111-2222-3333-444455556666';
const NOW = new Date('2026-05-11T04:40:00Z');

function assistantLine(n: number): string {
  return `${JSON.stringify({
    type: 'assistant',
    sessionId: SESSION,
    requestId: `req_${n}`,
    timestamp: '2026-05-11T04:32:10.000Z',
    message: {
      id: `msg_${n}`,
      model: 'claude-sonnet-4-6',
      usage: { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 3, cache_creation_input_tokens: 2 },
    },
  })}\n`;
}

async function session(options: { lines?: number } = {}) {
  const { dataDir, home } = await makeDataDir({ email: 'a@example.org' });
  const transcript = join(dataDir, 'projects', '-home-u-repo', `${SESSION}.jsonl`);
  await mkdir(join(dataDir, 'projects', '-home-u-repo'), { recursive: true });
  if (options.lines !== undefined) {
    await writeFile(transcript, Array.from({ length: options.lines }, (_, i) => assistantLine(i)).join(''));
  }
  const env: NodeJS.ProcessEnv = { CLAUDE_CONFIG_DIR: dataDir };
  const deps = { env, home, now: () => NOW };
  const queue = () => readJsonLines<{ turn_index: number; models: Record<string, unknown> }>(join(dataDir, 'ccflux', 'pending_reports.jsonl'));
  return { dataDir, home, transcript, env, deps, queue };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

afterAll(async () => {
  await cleanupTempDirs();
});

describe('parseHookInput', () => {
  it('keeps only session id and transcript paths', () => {
    expect(
      parseHookInput({ session_id: SESSION, transcript_path: '/d/projects/p/x.jsonl', agent_transcript_path: '/a.jsonl', cwd: '/x' }),
    ).toEqual({ ok: true, value: { sessionId: SESSION, transcriptPath: '/d/projects/p/x.jsonl', agentTranscriptPath: '/a.jsonl' } });
  });

  it.each([
    [null],
    ['text'],
    [[1, 2]],
    [{}],
    [{ session_id: '../../etc/passwd' }],
    [{ session_id: 'a'.repeat(65) }],
    [{ session_id: 42 }],
  ])('rejects %j', (input) => {
    expect(parseHookInput(input).ok).toBe(false);
  });

  it('treats a non-string or oversized path as absent', () => {
    const parsed = parseHookInput({ session_id: SESSION, transcript_path: 7, agent_transcript_path: 'x'.repeat(5000) });
    expect(parsed).toEqual({ ok: true, value: { sessionId: SESSION, transcriptPath: null, agentTranscriptPath: null } });
  });
});

describe('parseHookText', () => {
  it('parses JSON, and treats blank text as no input', () => {
    expect(parseHookText(' {"session_id":"s"} \n')).toEqual({ session_id: 's' });
    expect(parseHookText('')).toBeNull();
    expect(parseHookText('  \n')).toBeNull();
  });

  it('still finds the fields it needs in JSON that was cut short', () => {
    const text = `{"session_id":"${SESSION}","transcript_path":"/d/projects/p/a \\"b\\".jsonl","last_assistant_message":"lo`;
    expect(parseHookText(text)).toEqual({ session_id: SESSION, transcript_path: '/d/projects/p/a "b".jsonl' });
    expect(parseHookText('garbage')).toBeNull();
  });
});

describe('readStdin', () => {
  it('reads a piped stream to its end', async () => {
    const stream = new PassThrough();
    const done = readStdin(stream);
    stream.write('{"a":');
    stream.end('1}');
    expect(await done).toBe('{"a":1}');
  });

  it('treats a terminal as no input, without waiting', async () => {
    const stream = Object.assign(new PassThrough(), { isTTY: true });
    expect(await readStdin(stream)).toBe('');
  });

  it('gives up on a stream that never ends', async () => {
    const stream = new PassThrough();
    stream.write('{"partial":');
    const started = Date.now();
    expect(await readStdin(stream, 100)).toBe('{"partial":');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('stops reading at the size bound', async () => {
    const stream = new PassThrough();
    const done = readStdin(stream, 5_000, 8);
    stream.write('0123456789abcdef');
    expect(await done).toBe('01234567');
  });
});

describe('runHook', () => {
  it('report-turn queues the turn and advances the offset (no receiver configured)', async () => {
    const s = await session({ lines: 2 });
    const outcome = await runHook('report-turn', { session_id: SESSION, transcript_path: s.transcript }, s.deps);
    expect(outcome).toEqual({ status: 'done', dataDir: s.dataDir });
    const queued = await s.queue();
    expect(queued).toHaveLength(1);
    expect(queued[0]?.models).toEqual({
      'claude-sonnet-4-6': { input_tokens: 20, output_tokens: 10, cache_read_tokens: 6, cache_write_tokens: 4 },
    });
    expect(await readFile(join(s.dataDir, 'ccflux', 'activity.log'), 'utf8')).toMatch(/ccflux login/);
    expect((await stat(join(s.dataDir, 'ccflux'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(s.dataDir, 'ccflux', 'signing_key'))).mode & 0o777).toBe(0o600);

    // The same turn again: nothing new, nothing queued twice.
    await runHook('report-turn', { session_id: SESSION, transcript_path: s.transcript }, s.deps);
    expect(await s.queue()).toHaveLength(1);
  });

  it('init before the transcript exists creates the session state and reads nothing', async () => {
    const s = await session();
    const outcome = await runHook('init', { session_id: SESSION, transcript_path: s.transcript, source: 'startup' }, s.deps);
    expect(outcome.status).toBe('done');
    expect(await exists(join(s.dataDir, 'ccflux', `${SESSION}.offset`))).toBe(true);
    expect(await exists(join(s.dataDir, 'ccflux', 'signing_key'))).toBe(true);
    expect(await s.queue()).toEqual([]);
  });

  it('session-end reports the rest and marks the session closed', async () => {
    const s = await session({ lines: 1 });
    await runHook('session-end', { session_id: SESSION, transcript_path: s.transcript, reason: 'other' }, s.deps);
    const state = JSON.parse(await readFile(join(s.dataDir, 'ccflux', `${SESSION}.offset`), 'utf8')) as { closed: boolean };
    expect(state.closed).toBe(true);
    expect(await s.queue()).toHaveLength(1);
  });

  it('finds the transcript by session id when the hook sent no path', async () => {
    const s = await session({ lines: 1 });
    const outcome = await runHook('report-turn', { session_id: SESSION }, s.deps);
    expect(outcome).toEqual({ status: 'done', dataDir: s.dataDir });
    expect(await s.queue()).toHaveLength(1);
  });

  it('finds the transcript when the path sent is stale (resume/worktree bugs)', async () => {
    const s = await session({ lines: 1 });
    const stale = join(s.dataDir, 'projects', '-elsewhere', `${SESSION}.jsonl`);
    expect((await runHook('report-turn', { session_id: SESSION, transcript_path: stale }, s.deps)).status).toBe('done');
    expect(await s.queue()).toHaveLength(1);
  });

  it('does nothing for a plugin installed in another data dir', async () => {
    const s = await session({ lines: 1 });
    const other = await makeDataDir();
    const env = { ...s.env, CLAUDE_PLUGIN_ROOT: join(other.dataDir, 'plugins', 'cache', 'mkt', 'ccflux', '0.1.0') };
    const outcome = await runHook('report-turn', { session_id: SESSION, transcript_path: s.transcript }, { ...s.deps, env });
    expect(outcome.status).toBe('other-data-dir');
    expect(await exists(join(s.dataDir, 'ccflux'))).toBe(false);
  });

  it('reports for a plugin installed in the same data dir, reached through a symlink', async () => {
    const s = await session({ lines: 1 });
    const { symlink } = await import('node:fs/promises');
    const link = `${s.dataDir}-link`;
    await symlink(s.dataDir, link);
    const env = { ...s.env, CLAUDE_PLUGIN_ROOT: join(link, 'plugins', 'cache', 'mkt', 'ccflux', '0.1.0') };
    const outcome = await runHook('report-turn', { session_id: SESSION, transcript_path: s.transcript }, { ...s.deps, env });
    expect(outcome.status).toBe('done');
  });

  it('stays silent while the device key is revoked: nothing collected or queued', async () => {
    const s = await session({ lines: 1 });
    await mkdir(join(s.dataDir, 'ccflux'), { recursive: true, mode: 0o700 });
    await writeFile(join(s.dataDir, 'ccflux', 'key_revoked'), '{}', { mode: 0o600 });
    const outcome = await runHook('report-turn', { session_id: SESSION, transcript_path: s.transcript }, s.deps);
    expect(outcome.status).toBe('revoked');
    expect(await s.queue()).toEqual([]);
    expect(await exists(join(s.dataDir, 'ccflux', `${SESSION}.offset`))).toBe(false);
  });

  it('never throws on bad input, and never creates state for it', async () => {
    const s = await session({ lines: 1 });
    for (const input of [null, 'x', {}, { session_id: '../x' }, { session_id: 'another-session', transcript_path: '/nonexistent/a.jsonl' }]) {
      const outcome = await runHook('report-turn', input, s.deps);
      expect(['invalid-input', 'no-transcript']).toContain(outcome.status);
    }
    expect(await exists(join(s.dataDir, 'ccflux'))).toBe(false);
  });
});
