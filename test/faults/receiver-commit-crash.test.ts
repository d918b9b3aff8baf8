/**
 * Group commit under SIGKILL: the real receiver (built bundle, SQLite) takes signed reports from 16
 * keep-alive clients, so concurrent reports share transactions; it is killed with SIGKILL at a
 * random moment, several times, and restarted on the same file. Every report it answered 200 must
 * be in the database (a 200 is sent only after the COMMIT that holds it), none twice, and the
 * rollups must equal the raw rows (a batch is committed whole or not at all).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { Agent } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupTempDirs, makeTempDir } from '../helpers/env';
import { RECEIVER_BUNDLE } from '../helpers/receiver';
import { FAULT_SEED, httpCall, makeSigner, reliability, type Signer } from './support';
import { mulberry32 } from '../helpers/gen-transcript';

const USERS = 8;
const CLIENTS = 16;
const KILLS = 3;

afterAll(async () => {
  await cleanupTempDirs();
});

function start(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [RECEIVER_BUNDLE, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.once('exit', (code) => reject(new Error(`receiver exited ${code}: ${stderr}`)));
  });
}

interface User {
  email: string;
  access: string;
  signer: Signer;
}

async function provision(env: NodeJS.ProcessEnv, url: string): Promise<User[]> {
  const users: User[] = [];
  for (let i = 0; i < USERS; i++) {
    const email = `crash${i}@example.org`;
    const refresh = execFileSync(process.execPath, [RECEIVER_BUNDLE, 'users', 'add', email], { env, encoding: 'utf8' }).trim();
    const token = await httpCall({ method: 'POST', url: `${url}/token`, headers: { authorization: `Bearer ${refresh}` } });
    if (token.kind !== 'response' || token.status !== 200) throw new Error('token exchange failed');
    const access = (JSON.parse(token.body.toString()) as { access_token: string }).access_token;
    const signer = makeSigner();
    const reg = await httpCall({
      method: 'POST',
      url: `${url}/register-key`,
      headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json' },
      body: JSON.stringify({ public_key: signer.publicKeyB64, device_id: `dev-${i}` }),
    });
    if (reg.kind !== 'response' || reg.status !== 200) throw new Error('register-key failed');
    users.push({ email, access, signer });
  }
  return users;
}

function body(user: User, round: number, n: number): string {
  return JSON.stringify({
    schema_version: 2,
    session_id: `crash-${round}-${user.email}`,
    user_email: user.email,
    turn_index: n,
    timestamp_utc: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    session_start_utc: '2026-01-01T00:00:00Z',
    models: {
      'claude-sonnet-4-6': { input_tokens: 1000 + n, output_tokens: 10, cache_read_tokens: 5, cache_write_tokens: 3, cache_write_5m_tokens: 3, cache_write_1h_tokens: 0, web_search_requests: 0 },
      'claude-haiku-4-5': { input_tokens: 7, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 },
    },
    plugin_version: '0.2.0',
  });
}

/** 16 clients send until the receiver dies; the (session, turn) of every 200. */
async function loadUntilKilled(url: string, users: User[], round: number, killAfter: number, kill: () => void): Promise<Set<string>> {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const stored = new Set<string>();
  let next = 0;
  let dead = false;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (!dead) {
        const n = next++;
        const user = users[n % users.length]!;
        const text = body(user, round, n);
        const answer = await httpCall({
          method: 'POST',
          url: `${url}/report`,
          agent,
          headers: { authorization: `Bearer ${user.access}`, 'content-type': 'application/json', ...user.signer.headers(text) },
          body: text,
        });
        if (answer.kind === 'error') {
          dead = true;
          break;
        }
        if (answer.status === 200) stored.add(`crash-${round}-${user.email}/${n}`);
        if (stored.size >= killAfter && !dead) {
          dead = true;
          kill();
        }
      }
    }),
  );
  agent.destroy();
  return stored;
}

describe('receiver group commit under SIGKILL', () => {
  it('every report answered 200 is stored once, and the rollups equal the raw rows, after each kill', async () => {
    const dir = await makeTempDir('ccflux-commit-crash-');
    const dbPath = join(dir, 'ccflux.db');
    const env = { ...process.env, DATABASE_PATH: dbPath, LISTEN_ADDR: '127.0.0.1:0', REQUIRE_SIGNATURES: '1', RATE_LIMIT_PER_MINUTE: '1000000', LOG_LEVEL: 'silent' };
    const random = mulberry32(FAULT_SEED);
    let receiver = await start(env);
    const users = await provision(env, receiver.url);
    const answered = new Set<string>();
    for (let round = 0; round < KILLS; round++) {
      const killAfter = 100 + Math.floor(random() * 300);
      const child = receiver.child;
      const exited = new Promise((r) => child.once('exit', r));
      for (const key of await loadUntilKilled(receiver.url, users, round, killAfter, () => child.kill('SIGKILL'))) answered.add(key);
      await exited;
      expect(child.signalCode).toBe('SIGKILL');

      const db = new Database(dbPath);
      try {
        const rows = db.prepare("SELECT session_id || '/' || turn_index AS k, count(*) AS n FROM usage_events GROUP BY session_id, turn_index").all() as { k: string; n: number }[];
        const present = new Map(rows.map((r) => [r.k, r.n]));
        const missing = [...answered].filter((k) => present.get(k) !== 2);
        expect(missing).toEqual([]);
        const raw = db.prepare('SELECT count(*) AS n, sum(input_tokens) AS input FROM usage_events').get() as { n: number; input: number };
        const daily = db.prepare('SELECT sum(model_turns) AS n, sum(input) AS input FROM usage_daily').get() as { n: number; input: number };
        const hourly = db.prepare('SELECT sum(model_turns) AS n, sum(input) AS input FROM usage_hourly').get() as { n: number; input: number };
        expect(daily).toEqual(raw);
        expect(hourly).toEqual(raw);
        reliability('receiver-commit-crash', `kill ${round + 1}: ${answered.size} reports answered 200 so far, all stored (${raw.n} rows, ${present.size - answered.size} more stored whose answer was lost)`);
      } finally {
        db.close();
      }
      receiver = await start(env);
    }
    const child = receiver.child;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  });
});
