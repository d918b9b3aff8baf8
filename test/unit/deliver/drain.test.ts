import { createPublicKey, verify } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockAgent } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type DeliverDeps,
  type DeliverOptions,
  deliverQueue,
  readDeliveryStatus,
  registerDeviceKey,
  runDelivery,
} from '../../../src/client/deliver/drain';
import { acquireLock, ensurePrivateDir } from '../../../src/client/local/fsx';
import { ensureSigningKey, isRegistered, keyFromSeed, markRegistered } from '../../../src/client/deliver/keys';
import { createLogger, type Logger } from '../../../src/client/local/log';
import { type StatePaths, statePaths } from '../../../src/client/local/paths';
import { createFsQueue, createMemoryQueue, type QueueStore } from '../../../src/client/deliver/queue';
import { createTransport, type Transport } from '../../../src/client/deliver/transport';
import { readClockOffset } from '../../../src/client/deliver/clock';
import { formatTimestamp, parseSignatureHeader, type ReportBody, signingMessage } from '../../../src/protocol/wire';

// Deliberately not shaped like anything log.ts's redact() recognises: if one of these reached a
// log, redaction would not hide it and the secret scan below would catch it.
const REFRESH = 'RT-secret-refresh-7f3a';
const ACCESS_PREFIX = 'AT-secret-access-';
const ORIGIN = 'https://usage.example.org';
const START = Date.parse('2026-05-11T03:00:00Z');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function report(session: string, turn: number): ReportBody {
  return {
    schema_version: 1,
    session_id: session,
    user_email: 'a@b.org',
    turn_index: turn,
    timestamp_utc: '2026-05-11T02:59:00Z',
    session_start_utc: '2026-05-11T02:00:00Z',
    models: { 'claude-sonnet-4-6': { input_tokens: 10 + turn, output_tokens: 5, cache_read_tokens: 0, cache_write_tokens: 0 } },
    plugin_version: '0.1.0',
  };
}

interface Reply {
  statusCode: number;
  data?: string;
  responseOptions?: { headers?: Record<string, string> };
}
interface Seen {
  headers: Record<string, string>;
  body: string;
}

/** A scripted receiver on a MockAgent: realistic defaults, overridable answer by answer. */
class FakeReceiver {
  readonly agent = new MockAgent();
  readonly script: Record<'token' | 'register' | 'report', (Reply | 'network-error')[]> = { token: [], register: [], report: [] };
  readonly calls: Record<'token' | 'register' | 'report', Seen[]> = { token: [], register: [], report: [] };
  readonly issued: string[] = [];
  readonly valid = new Set<string>();
  registeredKey: string | null = null;
  readonly accepted: { report: ReportBody; timestamp: string }[] = [];
  /** Runs on every /report request (for example to move the clock). */
  onReport: () => void = () => {};
  /**
   * The receiver's own clock, as an offset from the device clock (null: no Date header, no
   * timestamp check). When set, every /report answer carries `Date` and stale timestamps get 403.
   */
  receiverAheadMs: number | null = null;
  /** Answers POST /reports per report (as the TypeScript receiver); false: 404, as a Rust receiver. */
  supportsBatch = false;
  /** Whole answers to the next POST /reports requests (429, 5xx, …), before any report is looked at. */
  readonly batchScript: Reply[] = [];
  readonly batchCalls: number[] = [];

  constructor(private readonly clock: { now: () => Date }) {
    this.agent.disableNetConnect();
    const pool = this.agent.get(ORIGIN);
    pool
      .intercept({ path: '/reports', method: 'POST' })
      .reply((opts) => this.answerBatch(opts.headers as Record<string, string>, String(opts.body ?? '')))
      .persist();
    for (const [path, name] of [
      ['/token', 'token'],
      ['/register-key', 'register'],
      ['/report', 'report'],
    ] as const) {
      pool
        .intercept({ path, method: 'POST' })
        .reply((opts) => {
          const seen = {
            headers: Object.fromEntries(Object.entries(opts.headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v])),
            body: Buffer.isBuffer(opts.body) ? opts.body.toString('utf8') : String(opts.body ?? ''),
          };
          this.calls[name].push(seen);
          if (name === 'report') this.onReport();
          const scripted = this.script[name].shift();
          if (scripted === 'network-error') throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
          return scripted ?? this.defaultAnswer(name, seen);
        })
        .persist();
    }
  }

  transport(): Transport {
    return createTransport({ env: {}, dispatcher: this.agent });
  }

  /** Each item answered as /report would answer it alone (scripted /report answers included). */
  private answerBatch(rawHeaders: Record<string, string>, text: string): Reply {
    if (!this.supportsBatch) return { statusCode: 404, data: '{"error":"not found"}' };
    const whole = this.batchScript.shift();
    if (whole) return whole;
    const headers = Object.fromEntries(Object.entries(rawHeaders).map(([k, v]) => [k.toLowerCase(), v]));
    const items = (JSON.parse(text) as { reports: { body: string; timestamp: string; signature: string }[] }).reports;
    this.batchCalls.push(items.length);
    let date: string | undefined;
    const results = items.map((item) => {
      const seen = { headers: { ...headers, 'x-ccflux-timestamp': item.timestamp, 'x-ccflux-signature': item.signature }, body: item.body };
      this.calls.report.push(seen);
      this.onReport();
      const scripted = this.script.report.shift();
      const reply = scripted && scripted !== 'network-error' ? scripted : this.defaultAnswer('report', seen);
      date = reply.responseOptions?.headers?.date ?? date;
      if (reply.statusCode === 200) return { status: 200, stored: 1 };
      return { status: reply.statusCode, error: reply.responseOptions?.headers?.['x-ccflux-error'] ?? reply.data ?? '' };
    });
    return { statusCode: 200, data: JSON.stringify({ status: 'ok', results }), responseOptions: { headers: date ? { date } : {} } };
  }

  private bearer(seen: Seen): string {
    return (seen.headers.authorization ?? '').replace(/^Bearer /, '');
  }

  private defaultAnswer(name: 'token' | 'register' | 'report', seen: Seen): Reply {
    if (name === 'token') {
      if (this.bearer(seen) !== REFRESH || seen.body !== '') return { statusCode: 401 };
      const token = `${ACCESS_PREFIX}${this.issued.length + 1}`;
      this.issued.push(token);
      this.valid.add(token);
      const expires_at = formatTimestamp(new Date(this.clock.now().getTime() + 8 * 3600_000));
      return { statusCode: 200, data: JSON.stringify({ access_token: token, expires_at, token_type: 'Bearer' }) };
    }
    if (!this.valid.has(this.bearer(seen))) return { statusCode: 401 };
    if (name === 'register') {
      this.registeredKey = JSON.parse(seen.body).public_key;
      return { statusCode: 200, data: '{"status":"registered"}' };
    }
    const timestamp = seen.headers['x-ccflux-timestamp'] ?? '';
    const parsed = parseSignatureHeader(seen.headers['x-ccflux-signature'] ?? '');
    if (!parsed || parsed.publicKey !== this.registeredKey) {
      return { statusCode: 403, responseOptions: { headers: { 'x-ccflux-error': 'key-not-registered' } } };
    }
    const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, Buffer.from(parsed.publicKey, 'base64')]), format: 'der', type: 'spki' });
    if (!verify(null, signingMessage(Buffer.from(seen.body, 'utf8'), timestamp), key, parsed.signature)) {
      return { statusCode: 403, responseOptions: { headers: { 'x-ccflux-error': 'signature-invalid' } } };
    }
    if (this.receiverAheadMs !== null) {
      const receiverNow = this.clock.now().getTime() + this.receiverAheadMs;
      const date = { date: new Date(receiverNow).toUTCString() };
      if (Math.abs(Date.parse(timestamp) - receiverNow) > 5 * 60_000) {
        return { statusCode: 403, responseOptions: { headers: { 'x-ccflux-error': 'timestamp-stale', ...date } } };
      }
      this.accepted.push({ report: JSON.parse(seen.body), timestamp });
      return { statusCode: 200, data: '{"status":"ok"}', responseOptions: { headers: date } };
    }
    this.accepted.push({ report: JSON.parse(seen.body), timestamp });
    return { statusCode: 200, data: '{"status":"ok"}' };
  }
}

let root: string;
let paths: StatePaths;
let nowMs: number;
let log: Logger;
let fake: FakeReceiver;
let queue: QueueStore;
let env: NodeJS.ProcessEnv;

const now = () => new Date(nowMs);

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ccflux-deliver-'));
  paths = statePaths(root);
  await ensurePrivateDir(paths.dir);
  nowMs = START;
  log = createLogger(paths, now);
  fake = new FakeReceiver({ now });
  queue = createFsQueue(paths, { log, now });
  env = { CLAUDE_PLUGIN_OPTION_API_ENDPOINT: `${ORIGIN}/report`, CLAUDE_PLUGIN_OPTION_API_TOKEN: REFRESH };
});

afterEach(async () => {
  await log.flush();
  // No secret in any file a person or a support ticket might see.
  const secrets = [REFRESH, ...fake.issued];
  for (const name of await readdir(paths.dir)) {
    if (['config.json', 'token_cache.json'].includes(name)) continue;
    const path = join(paths.dir, name);
    if (!(await stat(path)).isFile()) continue;
    const text = await readFile(path, 'utf8');
    for (const secret of secrets) expect(text, `${name} leaks a secret`).not.toContain(secret);
  }
  await fake.agent.close();
  await rm(root, { recursive: true, force: true });
});

function deps(overrides: Partial<DeliverDeps> = {}): DeliverDeps {
  return { paths, env, now, log, transport: fake.transport(), queue, hostname: 'test-host', ...overrides };
}
const opts = (extra: Partial<DeliverOptions> = {}): DeliverOptions => ({ deadlineMillis: 20_000, ...extra });

async function enqueue(...reports: ReportBody[]): Promise<void> {
  for (const r of reports) await queue.append(r);
}
async function logText(): Promise<{ activity: string; errors: string }> {
  await log.flush();
  const read = (p: string) => readFile(p, 'utf8').catch(() => '');
  return { activity: await read(paths.activityLog), errors: await read(paths.errorsLog) };
}
const turns = (reports: ReportBody[]) => reports.map((r) => `${r.session_id}#${r.turn_index}`);

describe('deliverQueue: the happy path', () => {
  it('exchanges, registers, then sends every report oldest first, signed with the send time', async () => {
    await enqueue(report('s1', 0), report('s1', 1), report('s2', 0));
    const summary = await deliverQueue(deps(), opts());
    expect(summary).toEqual({ delivered: 3, rejected: 0, remaining: 0, stoppedBecause: null });

    expect(fake.calls.token).toHaveLength(1);
    expect(fake.calls.token[0]!.headers.authorization).toBe(`Bearer ${REFRESH}`);
    expect(fake.calls.register).toHaveLength(1);
    const key = await ensureSigningKey(paths);
    expect(JSON.parse(fake.calls.register[0]!.body)).toEqual({ public_key: key.publicKeyB64, device_id: 'test-host' });
    expect(fake.calls.register[0]!.headers.authorization).toBe(`Bearer ${ACCESS_PREFIX}1`);
    expect(await isRegistered(paths, key.publicKeyB64)).toBe(true);

    expect(turns(fake.accepted.map((a) => a.report))).toEqual(['s1#0', 's1#1', 's2#0']);
    expect(fake.accepted.every((a) => a.timestamp === '2026-05-11T03:00:00Z')).toBe(true);
    for (const call of fake.calls.report) {
      expect(call.headers.authorization).toBe(`Bearer ${ACCESS_PREFIX}1`);
      expect(call.headers['content-type']).toBe('application/json');
      expect(call.headers['x-ccflux-signature']).toMatch(/^ed25519 [A-Za-z0-9+/]{86}== [A-Za-z0-9+/]{43}=$/);
    }
    // The refresh token only ever went to /token.
    for (const call of [...fake.calls.register, ...fake.calls.report]) expect(JSON.stringify(call)).not.toContain(REFRESH);

    expect(await queue.size()).toBe(0);
    const status = await readDeliveryStatus(paths);
    expect(status).toMatchObject({ lastAttemptAt: '2026-05-11T03:00:00Z', lastDeliveryAt: '2026-05-11T03:00:00Z', consecutiveFailures: 0 });
    expect((await stat(paths.deliveryStatus)).mode & 0o777).toBe(0o600);
    expect((await logText()).activity).toContain('delivered 3 report(s)');
  });

  it('the next run reuses the cached token and registration', async () => {
    await enqueue(report('s', 0));
    await deliverQueue(deps(), opts());
    await enqueue(report('s', 1));
    nowMs += 60_000;
    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 1, stoppedBecause: null });
    expect(fake.calls.token).toHaveLength(1);
    expect(fake.calls.register).toHaveLength(1);
    expect(fake.accepted.at(-1)!.timestamp).toBe('2026-05-11T03:01:00Z');
  });

  it('nothing queued and registered: no network at all', async () => {
    const key = await ensureSigningKey(paths);
    await markRegistered(paths, key.publicKeyB64);
    expect(await deliverQueue(deps(), opts())).toEqual({ delivered: 0, rejected: 0, remaining: 0, stoppedBecause: null });
    expect(fake.calls.token.length + fake.calls.register.length + fake.calls.report.length).toBe(0);
  });

  it('nothing queued but not registered: registers (retried every run until it succeeds)', async () => {
    expect(await deliverQueue(deps(), opts())).toMatchObject({ stoppedBecause: null });
    expect(fake.calls.register).toHaveLength(1);
    expect(fake.calls.report).toHaveLength(0);
  });

  it('works with the in-memory queue too', async () => {
    const memory = createMemoryQueue({ initial: [report('m', 0), report('m', 1)] });
    expect(await deliverQueue(deps({ queue: memory }), opts())).toMatchObject({ delivered: 2, remaining: 0 });
    expect(await memory.size()).toBe(0);
  });

  it('reports progress', async () => {
    await enqueue(report('p', 0), report('p', 1));
    const seen: unknown[] = [];
    await deliverQueue(deps(), opts({ onProgress: (p) => seen.push(p) }));
    expect(seen).toEqual([
      { delivered: 1, rejected: 0, remaining: 1 },
      { delivered: 2, rejected: 0, remaining: 0 },
    ]);
  });
});

describe('deliverQueue: each answer', () => {
  it('400 and 413 move the report to rejected_reports.jsonl, log it, and go on', async () => {
    await enqueue(report('r', 0), report('r', 1), report('r', 2));
    fake.script.report.push({ statusCode: 400, data: '{"error":"session_id must be 1-64 characters"}' }, { statusCode: 413 });
    expect(await deliverQueue(deps(), opts())).toEqual({ delivered: 1, rejected: 2, remaining: 0, stoppedBecause: null });
    const rejected = (await readFile(paths.rejected, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(rejected.map((r) => r.report.turn_index)).toEqual([0, 1]);
    expect(rejected[0].reason).toContain('HTTP 400');
    expect(rejected[1].reason).toBe('HTTP 413');
    expect(turns(fake.accepted.map((a) => a.report))).toEqual(['r#2']);
    const { errors } = await logText();
    expect(errors).toContain('report r#0 refused by the receiver (HTTP 400');
    expect(errors).toContain('report r#1 refused by the receiver (HTTP 413)');
  });

  it('401 on /report: one fresh exchange, then the retry succeeds', async () => {
    await enqueue(report('a', 0));
    await deliverQueue(deps(), opts()); // registered, token cached
    await enqueue(report('a', 1));
    fake.valid.clear(); // the receiver forgot the access token
    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 1, stoppedBecause: null });
    expect(fake.calls.token).toHaveLength(2);
    expect(fake.calls.report.at(-2)!.headers.authorization).toBe(`Bearer ${ACCESS_PREFIX}1`);
    expect(fake.calls.report.at(-1)!.headers.authorization).toBe(`Bearer ${ACCESS_PREFIX}2`);
    expect(JSON.parse(await readFile(paths.tokenCache, 'utf8')).access_token).toBe(`${ACCESS_PREFIX}2`);
  });

  it('401 again after the refresh: stops (once only), queue intact', async () => {
    await enqueue(report('a', 0));
    fake.script.report.push({ statusCode: 401 }, { statusCode: 401 });
    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 0, remaining: 1, stoppedBecause: 'unauthorized' });
    expect(fake.calls.token).toHaveLength(2);
    expect(fake.calls.report).toHaveLength(2);
  });

  it('/token 401: logs the SPEC line, keeps the queue, records it for status', async () => {
    await enqueue(report('t', 0), report('t', 1));
    fake.script.token.push({ statusCode: 401 });
    expect(await deliverQueue(deps(), opts())).toEqual({ delivered: 0, rejected: 0, remaining: 2, stoppedBecause: 'token-revoked' });
    const { errors } = await logText();
    expect(errors).toContain('refresh token expired or revoked — contact your IT admin');
    const status = await readDeliveryStatus(paths);
    expect(status.lastError).toBe('refresh token expired or revoked — contact your IT admin');
    expect(status.consecutiveFailures).toBe(1);
    expect(fake.calls.report).toHaveLength(0);
  });

  it('/token 401 after a /report 401: same line once, queue kept', async () => {
    await enqueue(report('t', 0));
    await deliverQueue(deps(), opts()); // token cached, key registered
    await enqueue(report('t', 1));
    fake.valid.clear();
    fake.script.token.push({ statusCode: 401 });
    expect(await deliverQueue(deps(), opts())).toMatchObject({ stoppedBecause: 'token-revoked', remaining: 1 });
    const { errors } = await logText();
    expect(errors.split('refresh token expired or revoked — contact your IT admin')).toHaveLength(2);
  });

  it('403 key-revoked: writes key_revoked, clears the queue, then stays silent', async () => {
    await enqueue(report('k', 0), report('k', 1));
    fake.script.report.push({ statusCode: 403, responseOptions: { headers: { 'x-ccflux-error': 'key-revoked' } } });
    expect(await deliverQueue(deps(), opts())).toEqual({ delivered: 0, rejected: 0, remaining: 0, stoppedBecause: 'revoked' });
    expect((await stat(paths.keyRevoked)).mode & 0o777).toBe(0o600);
    expect((await logText()).errors).toContain("the receiver revoked this device's key");

    const before = await logText();
    const callsBefore = fake.calls.report.length + fake.calls.token.length;
    await enqueue(report('k', 2));
    expect(await deliverQueue(deps(), opts())).toMatchObject({ stoppedBecause: 'revoked', remaining: 1 });
    expect(fake.calls.report.length + fake.calls.token.length).toBe(callsBefore);
    expect(await logText()).toEqual(before);
  });

  it('403 key-revoked at registration: the same revoked path', async () => {
    await enqueue(report('k', 0));
    fake.script.register.push({ statusCode: 403, responseOptions: { headers: { 'x-ccflux-error': 'key-revoked' } } });
    expect(await deliverQueue(deps(), opts())).toMatchObject({ stoppedBecause: 'revoked', remaining: 0 });
    expect(fake.calls.report).toHaveLength(0);
    await stat(paths.keyRevoked);
  });

  it('403 key-not-registered: forgets key_registered, registers again, resends', async () => {
    await enqueue(report('n', 0));
    await deliverQueue(deps(), opts());
    fake.registeredKey = null; // the receiver lost the registration
    await enqueue(report('n', 1));
    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 1, stoppedBecause: null });
    expect(fake.calls.register).toHaveLength(2);
    expect(turns(fake.accepted.map((a) => a.report))).toEqual(['n#0', 'n#1']);
    expect((await logText()).activity).toContain('registering it again');
  });

  it('403 key-not-registered twice: stops with the report kept', async () => {
    await enqueue(report('n', 0));
    const notRegistered = { statusCode: 403, responseOptions: { headers: { 'x-ccflux-error': 'key-not-registered' } } };
    fake.script.report.push(notRegistered, notRegistered);
    expect(await deliverQueue(deps(), opts())).toMatchObject({ stoppedBecause: 'registration-failed', remaining: 1 });
    expect(fake.calls.register).toHaveLength(2);
  });

  it('403 timestamp-stale: takes the offset from the Date header, re-signs and resends in the same run', async () => {
    await enqueue(report('c', 0), report('c', 1));
    fake.receiverAheadMs = -(7 * 60_000 + 12_000); // the device clock is 7m12s fast
    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 2, stoppedBecause: null, remaining: 0 });
    expect(fake.calls.report).toHaveLength(3); // one refusal, then both with the corrected time
    expect(fake.accepted.map((a) => a.timestamp)).toEqual(['2026-05-11T02:52:48Z', '2026-05-11T02:52:48Z']);
    const logs = await logText();
    expect(logs.errors).toContain('the device clock is 7m12s ahead of');
    expect(logs.errors).toContain('re-signed');
    expect(await readClockOffset(paths)).toEqual({ offsetMillis: -432_000, measuredAt: '2026-05-11T03:00:00Z' });
  });

  it('a later run signs with the kept offset at once: no refusal first', async () => {
    fake.receiverAheadMs = 10 * 60_000; // the device clock is 10 minutes slow
    await enqueue(report('c', 0));
    await deliverQueue(deps(), opts());
    await enqueue(report('c', 1));
    nowMs += 60_000;
    const before = fake.calls.report.length;
    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 1, stoppedBecause: null });
    expect(fake.calls.report.length - before).toBe(1);
    expect(fake.accepted.at(-1)?.timestamp).toBe('2026-05-11T03:11:00Z');
  });

  it('re-measured when the answers move: a clock fixed later drops the correction', async () => {
    fake.receiverAheadMs = 10 * 60_000;
    await enqueue(report('c', 0));
    await deliverQueue(deps(), opts());
    expect((await readClockOffset(paths))?.offsetMillis).toBe(600_000);
    fake.receiverAheadMs = 0; // NTP fixed the device clock: the kept offset is now wrong by 10 min
    await enqueue(report('c', 1), report('c', 2));
    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 2, stoppedBecause: null });
    expect(await readClockOffset(paths)).toBeNull();
    expect(fake.accepted.at(-1)?.timestamp).toBe('2026-05-11T03:00:00Z');
    expect((await logText()).activity).toContain('clock correction dropped');
  });

  it('a small drift inside the window is corrected from a 200 answer too', async () => {
    fake.receiverAheadMs = -2 * 60_000;
    await enqueue(report('c', 0), report('c', 1));
    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 2 });
    expect(fake.calls.report).toHaveLength(2);
    expect(fake.accepted.map((a) => a.timestamp)).toEqual(['2026-05-11T03:00:00Z', '2026-05-11T02:58:00Z']);
  });

  it('403 timestamp-stale without a usable Date header: logs, keeps the report', async () => {
    await enqueue(report('c', 0));
    fake.script.report.push({ statusCode: 403, responseOptions: { headers: { 'x-ccflux-error': 'timestamp-stale' } } });
    expect(await deliverQueue(deps(), opts())).toMatchObject({ stoppedBecause: 'clock-skew', remaining: 1 });
    expect((await logText()).errors).toContain('no usable Date header');
    expect(await readClockOffset(paths)).toBeNull();
  });

  it('403 timestamp-stale again after re-signing: stops with the report kept (no loop)', async () => {
    await enqueue(report('c', 0));
    const stale = {
      statusCode: 403,
      responseOptions: { headers: { 'x-ccflux-error': 'timestamp-stale', date: new Date(START - 7 * 60_000 - 12_000).toUTCString() } },
    };
    fake.script.report.push(stale, stale);
    expect(await deliverQueue(deps(), opts())).toMatchObject({ stoppedBecause: 'clock-skew', remaining: 1 });
    expect(fake.calls.report).toHaveLength(2);
    expect((await readDeliveryStatus(paths)).lastError).toContain('ahead');
  });

  it.each(['signature-invalid', 'signature-required', 'made-up'])('403 %s: logs, keeps the report', async (code) => {
    await enqueue(report('f', 0), report('f', 1));
    fake.script.report.push({ statusCode: 403, responseOptions: { headers: { 'x-ccflux-error': code } } });
    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 0, remaining: 2, stoppedBecause: 'forbidden' });
    expect((await logText()).errors).toContain(`HTTP 403 ${code}`);
    expect(fake.calls.report).toHaveLength(1);
  });

  it.each([
    [{ statusCode: 429 }, 'server-busy'],
    [{ statusCode: 500 }, 'server-busy'],
    [{ statusCode: 503 }, 'server-busy'],
    ['network-error', 'unreachable'],
    [{ statusCode: 302, responseOptions: { headers: { location: 'https://elsewhere.example/' } } }, 'unexpected-answer'],
    [{ statusCode: 404 }, 'unexpected-answer'],
  ] as const)('%j on /report: stops, queue intact', async (answer, because) => {
    await enqueue(report('b', 0), report('b', 1), report('b', 2));
    fake.script.report.push(answer as Reply | 'network-error');
    expect(await deliverQueue(deps(), opts())).toEqual({ delivered: 0, rejected: 0, remaining: 3, stoppedBecause: because });
    expect(fake.calls.report).toHaveLength(1);
    expect(turns(await queue.list())).toEqual(['b#0', 'b#1', 'b#2']);
    const status = await readDeliveryStatus(paths);
    expect(status.consecutiveFailures).toBe(1);
    expect(status.lastErrorAt).toBe('2026-05-11T03:00:00Z');
  });

  it('429 with Retry-After inside the budget: waits it out (fake sleep), then delivers the rest', async () => {
    await enqueue(report('r', 0), report('r', 1));
    fake.script.report.push({ statusCode: 200 }, { statusCode: 429, responseOptions: { headers: { 'retry-after': '7' } } });
    const waits: number[] = [];
    const sleep = async (millis: number) => {
      waits.push(millis);
      nowMs += millis;
    };
    expect(await deliverQueue(deps({ sleep }), opts({ deadlineMillis: 60_000 }))).toMatchObject({
      delivered: 2,
      remaining: 0,
      stoppedBecause: null,
    });
    expect(waits).toEqual([7000]);
    expect(fake.calls.report).toHaveLength(3);
    expect((await logText()).activity).toContain('retry in 7s');
  });

  it('429 with a Retry-After past the budget: stops at once, queue intact', async () => {
    await enqueue(report('s', 0));
    fake.script.report.push({ statusCode: 429, responseOptions: { headers: { 'retry-after': '30' } } });
    const sleep = async () => {
      throw new Error('must not wait');
    };
    expect(await deliverQueue(deps({ sleep }), opts({ deadlineMillis: 10_000 }))).toMatchObject({
      delivered: 0,
      remaining: 1,
      stoppedBecause: 'server-busy',
    });
  });

  it('a stop halfway keeps the undelivered rest in order', async () => {
    await enqueue(report('h', 0), report('h', 1), report('h', 2));
    fake.script.report.push({ statusCode: 200 }, { statusCode: 503 });
    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 1, remaining: 2, stoppedBecause: 'server-busy' });
    expect(turns(await queue.list())).toEqual(['h#1', 'h#2']);
  });

  it('consecutive failures count up and reset after a delivery', async () => {
    await enqueue(report('x', 0));
    fake.script.token.push({ statusCode: 503 }, { statusCode: 503 });
    await deliverQueue(deps(), opts());
    await deliverQueue(deps(), opts());
    expect((await readDeliveryStatus(paths)).consecutiveFailures).toBe(2);
    await deliverQueue(deps(), opts());
    const status = await readDeliveryStatus(paths);
    expect(status.consecutiveFailures).toBe(0);
    expect(status.lastError).toContain('HTTP 503');
  });
});

describe('deliverQueue: registration pending', () => {
  it('reports wait until registration succeeds, then go out signed', async () => {
    await enqueue(report('g', 0), report('g', 1));
    fake.script.register.push({ statusCode: 503 });
    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 0, remaining: 2, stoppedBecause: 'server-busy' });
    expect(fake.calls.report).toHaveLength(0);
    expect(await isRegistered(paths, (await ensureSigningKey(paths)).publicKeyB64)).toBe(false);

    fake.script.register.push({ statusCode: 400 });
    expect(await deliverQueue(deps(), opts())).toMatchObject({ remaining: 2, stoppedBecause: 'registration-failed' });
    expect(fake.calls.report).toHaveLength(0);

    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 2, remaining: 0, stoppedBecause: null });
    expect(fake.accepted).toHaveLength(2); // signatures verified against the registered key
  });

  it('409 (already registered) counts as registered', async () => {
    await enqueue(report('g', 0));
    const key = await ensureSigningKey(paths);
    fake.registeredKey = key.publicKeyB64;
    fake.script.register.push({ statusCode: 409 });
    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 1 });
    expect(await isRegistered(paths, key.publicKeyB64)).toBe(true);
  });

  it('401 at registration: one refresh, then registered', async () => {
    await enqueue(report('g', 0));
    fake.script.register.push({ statusCode: 401 });
    expect(await deliverQueue(deps(), opts())).toMatchObject({ delivered: 1, stoppedBecause: null });
    expect(fake.calls.token).toHaveLength(2);
    expect(fake.calls.register).toHaveLength(2);
  });

  it('registerDeviceKey standalone (for ccflux login)', async () => {
    fake.valid.add('AT-standalone');
    const key = keyFromSeed(Buffer.alloc(32, 3));
    const result = await registerDeviceKey(
      { transport: fake.transport() },
      { endpoint: ORIGIN, accessToken: 'AT-standalone', key, deviceId: `host\u0000${'x'.repeat(400)}` },
    );
    expect(result).toEqual({ kind: 'registered' });
    const body = JSON.parse(fake.calls.register[0]!.body);
    expect(body.device_id.length).toBe(255);
    expect(body.device_id.startsWith('host?')).toBe(true);
    fake.script.register.push('network-error');
    expect(
      await registerDeviceKey({ transport: fake.transport() }, { endpoint: ORIGIN, accessToken: 'AT-standalone', key, deviceId: 'h' }),
    ).toMatchObject({ kind: 'failed', reason: 'unreachable' });
  });

  it('registerDeviceKey always sends a proof of possession: the request signed by the key (issue 16 row 5)', async () => {
    fake.valid.add('AT-proof');
    const key = keyFromSeed(Buffer.alloc(32, 4));
    const at = new Date('2026-05-11T03:00:00Z');
    expect((await registerDeviceKey({ transport: fake.transport(), now: () => at }, { endpoint: ORIGIN, accessToken: 'AT-proof', key, deviceId: 'h' })).kind).toBe('registered');
    const call = fake.calls.register.at(-1)!;
    expect(call.headers['x-ccflux-timestamp']).toBe('2026-05-11T03:00:00Z');
    const header = parseSignatureHeader(String(call.headers['x-ccflux-signature']));
    expect(header?.publicKey).toBe(key.publicKeyB64);
    expect(JSON.parse(call.body).public_key).toBe(key.publicKeyB64);
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), key.publicKey]);
    const publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    expect(verify(null, signingMessage(call.body, '2026-05-11T03:00:00Z'), publicKey, header!.signature)).toBe(true);
  });
});

describe('deliverQueue: configuration', () => {
  it('no credentials: one activity line saying how to configure, no network', async () => {
    await enqueue(report('z', 0));
    expect(await deliverQueue(deps({ env: {} }), opts())).toMatchObject({ stoppedBecause: 'no-credentials', remaining: 1 });
    const { activity } = await logText();
    expect(activity.trim().split('\n')).toHaveLength(1);
    expect(activity).toContain("set the plugin's options (`claude plugin configure ccflux@ccflux`, or /plugin in Claude Code), or run `ccflux login`");
    expect(fake.calls.token).toHaveLength(0);
  });

  it('config.json is used when the plugin options are unset', async () => {
    await writeFile(paths.config, JSON.stringify({ endpoint: ORIGIN, token: REFRESH }), { mode: 0o600 });
    await enqueue(report('z', 0));
    expect(await deliverQueue(deps({ env: {} }), opts())).toMatchObject({ delivered: 1 });
  });

  it('a corrupt config.json or an http:// endpoint: config-invalid, logged, no network', async () => {
    await writeFile(paths.config, `{"endpoint":"${ORIGIN}","token":"${REFRESH}"`, { mode: 0o600 });
    await enqueue(report('z', 0));
    expect(await deliverQueue(deps({ env: {} }), opts())).toMatchObject({ stoppedBecause: 'config-invalid' });
    const httpEnv = { CLAUDE_PLUGIN_OPTION_API_ENDPOINT: 'http://usage.example.org', CLAUDE_PLUGIN_OPTION_API_TOKEN: REFRESH };
    expect(await deliverQueue(deps({ env: httpEnv }), opts())).toMatchObject({ stoppedBecause: 'config-invalid' });
    expect((await logText()).errors).toContain('https://');
    expect(fake.calls.token).toHaveLength(0);
  });
});

describe('deliverQueue: deadline', () => {
  it('stops at the deadline with the rest queued', async () => {
    await enqueue(report('d', 0), report('d', 1), report('d', 2), report('d', 3), report('d', 4));
    fake.onReport = () => {
      nowMs += 2000; // every send "takes" 2 s
    };
    expect(await deliverQueue(deps(), opts({ deadlineMillis: 5000 }))).toEqual({
      delivered: 3,
      rejected: 0,
      remaining: 2,
      stoppedBecause: 'deadline',
    });
    expect(turns(await queue.list())).toEqual(['d#3', 'd#4']);
    // A pause at the deadline is not a failure.
    expect((await readDeliveryStatus(paths)).consecutiveFailures).toBe(0);
  });

  it('each request gets at most the time left', async () => {
    await enqueue(report('d', 0));
    const timeouts: (number | undefined)[] = [];
    const inner = fake.transport();
    const spy: Transport = {
      ...inner,
      post: (url, init) => {
        timeouts.push(init.timeoutMillis);
        return inner.post(url, init);
      },
    };
    await deliverQueue(deps({ transport: spy }), opts({ deadlineMillis: 1234 }));
    expect(timeouts).toEqual([1234, 1234, 1234]);
  });

  it('no time at all: nothing is sent', async () => {
    await enqueue(report('d', 0));
    expect(await deliverQueue(deps(), opts({ deadlineMillis: 0 }))).toMatchObject({ stoppedBecause: 'deadline', remaining: 1 });
    expect(fake.calls.token).toHaveLength(0);
  });
});

describe('runDelivery: the deliver lock', () => {
  it('skips when another process is delivering', async () => {
    await enqueue(report('l', 0));
    const release = await acquireLock(paths.deliverLock, { waitMillis: 0, staleMillis: 30_000 });
    try {
      expect(await runDelivery(deps(), opts())).toEqual({ skipped: true });
      expect(fake.calls.token).toHaveLength(0);
      expect(await queue.size()).toBe(1);
    } finally {
      await release();
    }
    expect(await runDelivery(deps(), opts())).toEqual({ skipped: false, delivered: 1, rejected: 0, remaining: 0, stoppedBecause: null });
  });

  it('an entry appended just after the drain looked for the last time is not stranded', async () => {
    await enqueue(report('l', 0));
    let injected = false;
    const racing: QueueStore = {
      ...queue,
      list: async () => {
        const listed = await queue.list();
        if (listed.length === 0 && !injected) {
          injected = true;
          await queue.append(report('late', 0)); // a collector, right after our last look
        }
        return listed;
      },
    };
    // Without the re-check the late entry would wait for the next hook:
    const probe = await deliverQueue(deps({ queue: racing }), opts());
    expect(probe).toMatchObject({ delivered: 1, remaining: 1, stoppedBecause: null });

    await queue.removeFirst(10);
    await enqueue(report('l', 1));
    injected = false;
    const result = await runDelivery(deps({ queue: racing }), opts());
    expect(result).toEqual({ skipped: false, delivered: 2, rejected: 0, remaining: 0, stoppedBecause: null });
    expect(await queue.size()).toBe(0);
    expect(turns(fake.accepted.map((a) => a.report))).toEqual(['l#0', 'l#1', 'late#0']);
  });

  it('does not re-drain after a failure', async () => {
    await enqueue(report('l', 0));
    fake.script.token.push({ statusCode: 503 });
    expect(await runDelivery(deps(), opts())).toMatchObject({ skipped: false, stoppedBecause: 'server-busy', remaining: 1 });
    expect(fake.calls.token).toHaveLength(1);
  });

  it('the deliver lock is released afterwards', async () => {
    await runDelivery(deps(), opts());
    const release = await acquireLock(paths.deliverLock, { waitMillis: 0 });
    await release();
  });
});

describe('deliverQueue: batches (POST /reports)', () => {
  it('a backlog goes out 100 reports to a request, each signed on its own, oldest first', async () => {
    fake.supportsBatch = true;
    const reports = Array.from({ length: 250 }, (_, i) => report('s', i));
    for (const r of reports) await queue.append(r);
    const progress: number[] = [];
    const summary = await deliverQueue(deps(), opts({ onProgress: (p) => progress.push(p.delivered) }));
    expect(summary).toEqual({ delivered: 250, rejected: 0, remaining: 0, stoppedBecause: null });
    expect(fake.batchCalls).toEqual([100, 100, 50]);
    expect(progress).toEqual([100, 200, 250]);
    expect(turns(fake.accepted.map((a) => a.report))).toEqual(turns(reports));
    expect(await queue.size()).toBe(0);
  });

  it('per-report answers: a 400 is rejected, a key-not-registered re-registers and the rest is resent', async () => {
    fake.supportsBatch = true;
    await enqueue(report('s', 0), report('s', 1), report('s', 2), report('s', 3));
    fake.script.report.push({ statusCode: 200 }, { statusCode: 400, data: 'bad' }, {
      statusCode: 403,
      responseOptions: { headers: { 'x-ccflux-error': 'key-not-registered' } },
    });
    const summary = await deliverQueue(deps(), opts());
    expect(summary).toMatchObject({ delivered: 3, rejected: 1, remaining: 0, stoppedBecause: null });
    expect(fake.calls.register).toHaveLength(2);
    // s#0 and s#3 were delivered in the batch; s#2 alone goes to /report after registering again.
    expect(fake.batchCalls).toEqual([4]);
    expect(fake.calls.report).toHaveLength(5);
  });

  it('a 429 to the whole batch is waited out (Retry-After), then the batch goes again', async () => {
    fake.supportsBatch = true;
    await enqueue(report('s', 0), report('s', 1));
    fake.batchScript.push({ statusCode: 429, responseOptions: { headers: { 'retry-after': '3' } } });
    const waits: number[] = [];
    const summary = await deliverQueue(deps({ sleep: async (ms) => void waits.push(ms) }), opts());
    expect(summary).toMatchObject({ delivered: 2, stoppedBecause: null });
    expect(waits).toEqual([3000]);
  });

  it('a receiver without /reports (404, the Rust one): one by one, said once in the log', async () => {
    await enqueue(report('s', 0), report('s', 1), report('s', 2));
    const summary = await deliverQueue(deps(), opts());
    expect(summary).toMatchObject({ delivered: 3, stoppedBecause: null });
    expect(fake.calls.report).toHaveLength(3);
    expect((await logText()).activity.match(/does not take batches/g)).toHaveLength(1);
  });
});
