/**
 * Issue 17, the drop-in promise end to end: an organisation running the Rust device and receiver
 * switches both. The receiver database is the Rust one (taken over in place), and the device's data
 * dir is byte for byte what the Rust device leaves mid-session: JSON `.offset`, a report still in
 * `pending_reports.jsonl` (one without `session_start_utc`: the transcript starts with more than 50
 * `summary` lines), `signing_key`, `key_registered`, `config.json`, `token_cache.json` with the Rust
 * receiver's access token, logs. Our plugin then runs a few more turns through its real hooks; the
 * receiver must end with exactly what the API billed for the whole session, every turn once.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { keyFromSeed } from '../../src/client/deliver/keys';
import { cleanupTempDirs, hookEnv, makeDataDir, readJsonLines, sessionRows, sessionSums } from '../helpers/env';
import { type RunningReceiver, startReceiver } from '../helpers/receiver';
import { buildRustDatabase, rfc3339In } from '../helpers/rust-db';
import { installPlugin, runHook, waitForQuiet } from '../helpers/timeline';

const SID = '7e3c1a5b-9d2f-4e60-8b1a-2c3d4e5f6a7b';
const EMAIL = 'ana@example.org';
const REFRESH = 'rtok_4b2d6f8a0c1e3a5b7d9f1b3d5f7a9c1e';
const ACCESS = 'c4e6a8b0d2f4a6c8e0b2d4f6a8c0e2b4';
const SONNET = 'claude-sonnet-4-6';
const OPUS = 'claude-opus-4-7';
const HAIKU = 'claude-haiku-4-5';

type Usage = { input_tokens: number; output_tokens: number; cache_read_input_tokens: number; cache_creation_input_tokens: number };
const u = (i: number, o: number, cr: number, cw: number): Usage => ({ input_tokens: i, output_tokens: o, cache_read_input_tokens: cr, cache_creation_input_tokens: cw });

let clockMs = Date.now() - 30 * 60_000;
const at = () => {
  clockMs += 1_537;
  return new Date(clockMs).toISOString();
};
const line = (o: Record<string, unknown>) => `${JSON.stringify(o)}\n`;
const prompt = () => line({ type: 'user', sessionId: SID, uuid: `u-${clockMs}`, timestamp: at(), message: { role: 'user', content: 'go on' } });
function block(id: string, model: string, usage: Usage, extra: Record<string, unknown> = {}): { text: string; timestamp: string } {
  const timestamp = at();
  const text = line({
    type: 'assistant',
    sessionId: SID,
    requestId: `req_${id}`,
    uuid: `a-${id}-${clockMs}`,
    timestamp,
    message: { id, model, role: 'assistant', content: [{ type: 'text', text: '…' }], usage },
    ...extra,
  });
  return { text, timestamp };
}

/** The Rust device's report body: serde field order, `session_start_utc` skipped when None. */
function rustBody(turn: number, timestamp: string, model: string, x: Usage): string {
  return JSON.stringify({
    schema_version: 1,
    session_id: SID,
    user_email: EMAIL,
    turn_index: turn,
    timestamp_utc: timestamp,
    models: { [model]: { input_tokens: x.input_tokens, output_tokens: x.output_tokens, cache_read_tokens: x.cache_read_input_tokens, cache_write_tokens: x.cache_creation_input_tokens } },
    plugin_version: '0.4.2',
  });
}

let receiver: RunningReceiver | undefined;
afterEach(async () => {
  await receiver?.stop();
  receiver = undefined;
});
afterAll(async () => {
  await cleanupTempDirs();
});

describe('switching from the Rust version mid-session', () => {
  it('keeps every file of the Rust data dir and the Rust database, and counts the session exactly once', async () => {
    const key = keyFromSeed(randomBytes(32));
    // --- the transcript so far, as Claude Code wrote it while the Rust device reported ---
    let transcript = '';
    for (let i = 0; i < 55; i++) transcript += line({ type: 'summary', summary: `earlier work ${i}`, leafUuid: `leaf-${i}` });
    transcript += prompt();
    const a = block('msg_a', SONNET, u(10, 120, 2000, 300));
    transcript += a.text + prompt();
    const b = block('msg_b', SONNET, u(5, 80, 2300, 0));
    transcript += b.text + prompt();
    // msg_c's first content block, with its placeholder output count: the Rust device read it so.
    const c1 = block('msg_c', SONNET, u(7, 1, 2400, 50));
    transcript += c1.text;
    const rustLines = transcript.split('\n').length - 1;

    // --- the Rust receiver's database: turns 0 and 2 delivered, signed by the registered key ---
    const rustRow = (turn: number, ts: string, x: Usage) => ({
      email: EMAIL,
      refreshToken: REFRESH,
      deviceId: 'ana-laptop',
      sessionId: SID,
      turnIndex: turn,
      timestampUtc: ts,
      sessionStartUtc: null,
      model: SONNET,
      usage: [x.input_tokens, x.output_tokens, x.cache_read_input_tokens, x.cache_creation_input_tokens] as [number, number, number, number],
    });
    const rx = await startReceiver({
      prepare: (dbPath) =>
        buildRustDatabase(dbPath, {
          users: [{ email: EMAIL, division: 'engineering', refreshToken: REFRESH, accessToken: ACCESS }],
          keys: [{ email: EMAIL, publicKey: key.publicKeyB64, deviceId: 'ana-laptop' }],
          usage: [rustRow(0, a.timestamp, u(10, 120, 2000, 300)), rustRow(2, c1.timestamp, u(7, 1, 2400, 50))],
        }),
    });
    receiver = rx;
    expect(rx.stderr()).toMatch(/took over a Rust ccflux receiver database: 1 user\(s\)/);

    // --- the Rust device's data dir, byte for byte (modes as it leaves them) ---
    const { dataDir, home } = await makeDataDir({ email: EMAIL });
    const transcriptPath = join(dataDir, 'projects', '-home-ana-repo', `${SID}.jsonl`);
    await mkdir(dirname(transcriptPath), { recursive: true });
    await writeFile(transcriptPath, transcript);
    const state = join(dataDir, 'ccflux');
    await mkdir(state, { mode: 0o755 });
    const put = async (name: string, content: string | Buffer, mode: number) => {
      await writeFile(join(state, name), content);
      await chmod(join(state, name), mode);
    };
    await put('config.json', JSON.stringify({ endpoint: `${rx.url}/report`, token: REFRESH }, null, 2), 0o644);
    await put('signing_key', key.seed, 0o600);
    await put('key_registered', key.publicKeyB64, 0o644);
    await put('token_cache.json', JSON.stringify({ access_token: ACCESS, expires_at: rfc3339In(7 * 3600) }), 0o600);
    await put('pending_reports.jsonl', `${rustBody(1, b.timestamp, SONNET, u(5, 80, 2300, 0))}\n`, 0o644);
    await put(`${SID}.offset`, JSON.stringify({ line: rustLines, turn: 3, session_start: '', closed: false }), 0o600);
    await put('activity.log', '[2026-12-01T09:58:01.120431+00:00] key: registered device \'ana-laptop\' ok\n[2026-12-01T09:58:01.201337+00:00] report: turn 2 session 7e3c1a5b… sent ok\n[2026-12-01T09:58:01.244918+00:00] report: drained 1 queued report ok\n', 0o644);

    // --- our plugin from here on: config.json, not plugin options ---
    const pluginRoot = await installPlugin(dataDir);
    const env = hookEnv({ dataDir, home, pluginRoot });
    const input = (event: string) => ({ session_id: SID, transcript_path: transcriptPath, cwd: '/home/ana/repo', hook_event_name: event });
    const append = async (text: string) => writeFile(transcriptPath, text, { flag: 'a' });

    // msg_c's final block lands after the Rust read; then a new message over two lines.
    await append(block('msg_c', SONNET, u(7, 260, 2400, 50)).text + prompt());
    await append(block('msg_d', OPUS, u(3, 4, 900, 0)).text + block('msg_d', OPUS, u(3, 95, 900, 0)).text);
    await runHook(pluginRoot, 'Stop', input('Stop'), env);
    await waitForQuiet(dataDir);
    // A turn with a subagent (a file the Rust version never read).
    await append(prompt() + block('msg_e', SONNET, u(2, 40, 2600, 10)).text);
    const agent = join(dirname(transcriptPath), SID, 'subagents', 'agent-a9.jsonl');
    await mkdir(dirname(agent), { recursive: true });
    await writeFile(agent, block('msg_s', HAIKU, u(400, 33, 0, 120), { isSidechain: true, agentId: 'a9' }).text);
    await runHook(pluginRoot, 'Stop', input('Stop'), env);
    await runHook(pluginRoot, 'SessionEnd', { ...input('SessionEnd'), reason: 'exit' }, env);
    await waitForQuiet(dataDir);

    // What the API billed for the whole session (each message once, at its final counts).
    expect(sessionSums(rx, [SID])).toEqual({
      [HAIKU]: { input_tokens: 400, output_tokens: 33, cache_read_tokens: 0, cache_write_tokens: 120 },
      [OPUS]: { input_tokens: 3, output_tokens: 95, cache_read_tokens: 900, cache_write_tokens: 0 },
      [SONNET]: { input_tokens: 10 + 5 + 7 + 2, output_tokens: 120 + 80 + 260 + 40, cache_read_tokens: 2000 + 2300 + 2400 + 2600, cache_write_tokens: 300 + 50 + 10 },
    });
    // Every turn once: 0 and 2 from the Rust database, 1 from the Rust queue, 3 and 4 ours; all signed by the Rust-registered key.
    const rows = sessionRows(rx, [SID]);
    expect(rows.map((r) => `${r.turn_index}:${r.model}`)).toEqual([`0:${SONNET}`, `1:${SONNET}`, `2:${SONNET}`, `3:${OPUS}`, `3:${SONNET}`, `4:${HAIKU}`, `4:${SONNET}`]);
    expect(rows.every((r) => r.signed === 1 && r.device_id === 'ana-laptop')).toBe(true);
    expect(rx.query("SELECT turn_index, session_start_utc FROM usage_events WHERE turn_index < 3 ORDER BY turn_index")).toEqual([
      { turn_index: 0, session_start_utc: null },
      { turn_index: 1, session_start_utc: null },
      { turn_index: 2, session_start_utc: null },
    ]);
    // The Rust access token in token_cache.json was used as it was: no exchange, no second key.
    expect(rx.query('SELECT count(*) AS n FROM access_tokens')).toEqual([{ n: 1 }]);
    expect(rx.query('SELECT count(*) AS n FROM device_keys')).toEqual([{ n: 1 }]);
    expect(await readJsonLines(join(state, 'pending_reports.jsonl'))).toEqual([]);
    expect(await readJsonLines(join(state, 'rejected_reports.jsonl'))).toEqual([]);
    const ours = JSON.parse(await readFile(join(state, `${SID}.offset`), 'utf8'));
    expect(ours).toMatchObject({ version: 1, nextTurnIndex: 5, closed: true });
    expect(await readFile(join(state, 'errors.log'), 'utf8').catch(() => '')).toBe('');
  });
});
