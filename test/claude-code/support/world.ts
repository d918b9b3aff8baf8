/**
 * One test file's world: a network namespace, the fake Anthropic API and the real receiver inside
 * it, and users whose Claude Code has the ccflux plugin installed. `settle()` compares what the
 * receiver stored with what the fake API billed, per model and counter.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { cleanupTempDirs, sleep } from '../../helpers/env';
import { type RunningReceiver, startReceiver } from '../../helpers/receiver';
import { waitForQuiet } from '../../helpers/timeline';
import { type Profile, claudeUnavailable, installPlugin, makeProfile } from './claude';
import { type Billed, type BilledByModel, FakeAnthropicApi, addBilled, zeroBilled } from './fake-api';
import { type Sandbox, openSandbox, sandboxUnavailable } from './sandbox';

/** Why the real-client suite cannot run here, or null (printed once per file when skipped). */
export const unavailable: string | null = (() => {
  if (process.env.CCFLUX_SKIP_CLAUDE_CODE === '1') return 'CCFLUX_SKIP_CLAUDE_CODE=1';
  const why = claudeUnavailable() ?? sandboxUnavailable();
  if (why) console.warn(`[claude-code suite] skipped: ${why}`);
  return why;
})();

/** Why interactive (tmux) scenarios cannot run here, or null. */
export const tmuxUnavailable: string | null = (() => {
  if (unavailable !== null) return unavailable;
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return null;
  } catch {
    console.warn('[claude-code suite] interactive scenarios skipped: tmux is not installed (Debian package tmux)');
    return 'tmux is not installed';
  }
})();

const SETTLE_TIMEOUT_MILLIS = 30_000;

export interface World {
  sandbox: Sandbox;
  api: FakeAnthropicApi;
  receiver: RunningReceiver;
  apiPort: number;
  /** A user: receiver account, Claude Code profile, plugin installed and configured. */
  user(email: string): Promise<Profile>;
  /** What the receiver stored per model for these sessions, in the fake API's counters. */
  stored(sessionIds: string[]): BilledByModel;
  /** What the fake API billed for these sessions, in the counters the receiver has. */
  billedAs(sessionIds: string[]): BilledByModel;
  /**
   * Waits until the users' ccflux processes are done and the receiver holds what the fake API
   * billed for these sessions (or the timeout passes); returns both for the assertion.
   */
  /** Waits until these users' ccflux processes are done (queue empty unless `queueEmpty: false`). */
  quiet(profiles: Profile[], options?: { queueEmpty?: boolean }): Promise<void>;
  settle(profiles: Profile[], sessionIds: string[], options?: { queueEmpty?: boolean }): Promise<{ billed: BilledByModel; stored: BilledByModel }>;
  close(): Promise<void>;
}

/** Receiver columns per fake-API counter; the schema-v2 ones are compared only where they exist. */
const COLUMNS: Array<[keyof Billed, string]> = [
  ['input_tokens', 'input_tokens'],
  ['output_tokens', 'output_tokens'],
  ['cache_read_tokens', 'cache_read_tokens'],
  ['cache_write_tokens', 'cache_write_tokens'],
  ['cache_write_5m_tokens', 'cache_write_5m_tokens'],
  ['cache_write_1h_tokens', 'cache_write_1h_tokens'],
  ['web_search_requests', 'web_search_requests'],
];

export async function openWorld(): Promise<World> {
  const sandbox = await openSandbox();
  const api = new FakeAnthropicApi();
  const { handle, port: apiPort } = await sandbox.listen();
  await api.attach(handle);
  const receiver = await startReceiver({ wrap: sandbox.wrap, env: { RATE_LIMIT_PER_MINUTE: '10000' } });
  const profiles: Profile[] = [];

  const columns = (): Array<[keyof Billed, string]> => {
    const have = new Set(receiver.query<{ name: string }>('PRAGMA table_info(usage_events)').map((c) => c.name));
    return COLUMNS.filter(([, column]) => have.has(column));
  };

  const stored = (sessionIds: string[]): BilledByModel => {
    if (sessionIds.length === 0) return {};
    const cols = columns();
    const select = cols.map(([, c]) => `SUM(${c}) AS ${c}`).join(', ');
    const rows = receiver.query<Record<string, number | string | null>>(
      `SELECT model, ${select} FROM usage_events WHERE session_id IN (${sessionIds.map(() => '?').join(',')}) GROUP BY model ORDER BY model`,
      ...sessionIds,
    );
    const out: BilledByModel = {};
    rows.sort((a, b) => (String(a.model) < String(b.model) ? -1 : 1));
    for (const row of rows) {
      const b = project(zeroBilled(), cols);
      for (const [key, column] of cols) b[key] = row[column] === null ? Number.NaN : Number(row[column]);
      out[String(row.model)] = b as Billed;
    }
    return out;
  };

  /** The billed counters the receiver can hold, zero models left out. */
  const billedAsStored = (sessionIds: string[]): BilledByModel => {
    const cols = columns();
    const out: BilledByModel = {};
    const billed = api.billed(sessionIds);
    for (const [model, b] of Object.entries(billed).sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (Object.values(b).every((v) => v === 0)) continue;
      out[model] = project(b, cols) as Billed;
    }
    return out;
  };

  return {
    sandbox,
    api,
    receiver,
    apiPort,
    async user(email) {
      const token = await receiver.addUser(email);
      const profile = await makeProfile(sandbox, { apiPort, email });
      await installPlugin(profile, receiver.url, token);
      profiles.push(profile);
      return profile;
    },
    stored,
    billedAs: billedAsStored,
    async quiet(users, options = {}) {
      for (const p of users) await waitForQuiet(p.configDir, { timeoutMillis: SETTLE_TIMEOUT_MILLIS, queueEmpty: options.queueEmpty });
    },
    async settle(users, sessionIds, options = {}) {
      const deadline = Date.now() + SETTLE_TIMEOUT_MILLIS;
      for (;;) {
        for (const p of users) {
          await waitForQuiet(p.configDir, { timeoutMillis: SETTLE_TIMEOUT_MILLIS, queueEmpty: options.queueEmpty }).catch((err: unknown) => {
            console.error(deviceDiagnostics(p));
            throw err;
          });
        }
        const billed = billedAsStored(sessionIds);
        const now = stored(sessionIds);
        if (JSON.stringify(billed) === JSON.stringify(now) || Date.now() > deadline) {
          // For the resolve note: CCFLUX_CC_FIGURES=<file> collects every scenario's two sides.
          const figures = process.env.CCFLUX_CC_FIGURES;
          if (figures) appendFileSync(figures, `${JSON.stringify({ test: expect.getState().currentTestName, billed, stored: now })}\n`);
          if (JSON.stringify(billed) !== JSON.stringify(now)) for (const p of users) console.error(deviceDiagnostics(p));
          return { billed, stored: now };
        }
        await sleep(250);
      }
    },
    async close() {
      const figures = process.env.CCFLUX_CC_FIGURES;
      if (figures) {
        // The workers' settle-before-read waits, from each user's activity log.
        for (const p of profiles) {
          let log = '';
          try {
            log = readFileSync(join(p.configDir, 'ccflux', 'activity.log'), 'utf8');
          } catch {
            // no worker ran for this user
          }
          for (const m of log.matchAll(/transcript settled after (\d+) ms \(([a-z-]+)\)/g)) {
            appendFileSync(figures, `${JSON.stringify({ settleMillis: Number(m[1]), reason: m[2] })}\n`);
          }
        }
      }
      await receiver.stop().catch(() => {});
      await api.close().catch(() => {});
      await sandbox.close().catch(() => {});
      await cleanupTempDirs();
    },
  };
}

/** What a failed settle prints: the user's activity log and the data dir's files, so a CI failure says which step stalled. */
function deviceDiagnostics(p: Profile): string {
  const dir = join(p.configDir, 'ccflux');
  const tail = (name: string) => {
    try {
      return readFileSync(join(dir, name), 'utf8').split('\n').slice(-60).join('\n');
    } catch {
      return `(no ${name})`;
    }
  };
  let files = '(no data dir)';
  try {
    files = readdirSync(dir, { recursive: true }).map(String).sort().join(' ');
  } catch {
    // nothing written
  }
  return `[settle] ${p.configDir}: not everything billed was stored in time\n  files: ${files}\n  activity.log (tail):\n${tail('activity.log')}\n  errors.log (tail):\n${tail('errors.log')}`;
}

function project(b: Billed, cols: Array<[keyof Billed, string]>): Partial<Billed> {
  const out: Partial<Billed> = {};
  for (const [key] of cols) out[key] = b[key];
  return out;
}

/** Sums several per-model totals (e.g. billed figures of a few sessions, for the notes). */
export function sumBilled(...all: BilledByModel[]): BilledByModel {
  const out: BilledByModel = {};
  for (const one of all) for (const [model, b] of Object.entries(one)) addBilled(out, model, b);
  return out;
}
