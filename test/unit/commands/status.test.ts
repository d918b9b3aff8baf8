/**
 * `ccflux status` logic: the facts → report → text pipeline with plain values, the read-only
 * gathering against a temp state dir, and the progress bar `ccflux flush` draws.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createProgress, progressMode, renderBar } from '../../../src/cli/progress';
import { credentialBinding } from '../../../src/client/deliver/auth';
import { keyFromSeed } from '../../../src/client/deliver/keys';
import { statePaths } from '../../../src/client/local/paths';
import { buildStatus, describeTime, formatDuration, gatherStatusFacts, renderStatus, type StatusFacts } from '../../../src/client/commands/status';

const NOW = new Date('2026-05-11T03:00:00Z');
const REFRESH = 'ccf_rt_refresh_token_value_0123456789abcdef';
const ACCESS = 'ccf_at_access_token_value_0123456789abcdef';

function facts(overrides: Partial<StatusFacts> = {}): StatusFacts {
  return {
    dataDir: '/home/u/.claude',
    dataDirSource: 'default',
    stateDir: '/home/u/.claude/ccflux',
    stateDirExists: true,
    configPath: '/home/u/.claude/ccflux/config.json',
    credentials: { source: 'config-file', endpoint: 'https://ccflux.example.org/', problem: null },
    tokenCache: { expiresAt: '2026-05-11T10:00:00Z', wellFormed: true, matchesCredentials: true },
    key: { present: true, publicKeyB64: keyFromSeed(Buffer.alloc(32, 7)).publicKeyB64, corrupt: false, registered: true, revoked: false },
    queue: { length: 2, oldestReportAt: '2026-05-11T02:30:00Z' },
    rejectedCount: 1,
    delivery: {
      lastAttemptAt: '2026-05-11T02:59:00Z',
      lastDeliveryAt: '2026-05-11T02:00:00Z',
      lastErrorAt: '2026-05-11T02:59:00Z',
      lastError: 'receiver unreachable — delivery stopped: network error ECONNREFUSED',
      consecutiveFailures: 3,
      lastStoppedBecause: 'unreachable',
      lastCredentialSource: 'config-file',
      lastEndpoint: 'https://ccflux.example.org/',
    },
    pluginStore: { kind: 'none', pluginId: null },
    clockOffset: null,
    otherDataDirs: [],
    ...overrides,
  };
}

describe('formatDuration / describeTime', () => {
  it('shows the two largest units', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(12_400)).toBe('12s');
    expect(formatDuration(250_000)).toBe('4m10s');
    expect(formatDuration(7_500_000)).toBe('2h05m');
    expect(formatDuration(3 * 86_400_000 + 4 * 3_600_000)).toBe('3d4h');
  });
  it('says ago / in, and never for null', () => {
    expect(describeTime(null, NOW)).toBe('never');
    expect(describeTime('2026-05-11T02:55:50Z', NOW)).toBe('2026-05-11T02:55:50Z (4m10s ago)');
    expect(describeTime('2026-05-11T05:00:00Z', NOW)).toBe('2026-05-11T05:00:00Z (in 2h00m)');
  });
});

describe('clock correction', () => {
  it('shows a kept clock offset (status and --json), and says so when there is none', () => {
    const kept = buildStatus(facts({ clockOffset: { offsetMillis: -600_000, measuredAt: '2026-05-11T02:50:00Z' } }), NOW);
    expect(kept.clock).toEqual({ offsetSeconds: -600, measuredAt: '2026-05-11T02:50:00Z' });
    expect(renderStatus(kept, NOW, '/home/u')).toMatch(/clock +this device is 10m00s ahead of the receiver; reports are signed with the receiver's time/);
    const none = buildStatus(facts(), NOW);
    expect(none.clock).toEqual({ offsetSeconds: null, measuredAt: null });
    expect(renderStatus(none, NOW, '/home/u')).toMatch(/clock +in step with the receiver/);
  });
});

describe('buildStatus', () => {
  it('computes ages and usability, and keeps the documented keys', () => {
    const report = buildStatus(facts(), NOW);
    expect(Object.keys(report)).toEqual([
      'ok',
      'version',
      'dataDir',
      'dataDirSource',
      'stateDir',
      'credentials',
      'accessToken',
      'key',
      'queue',
      'rejected',
      'delivery',
      'clock',
      'otherDataDirs',
    ]);
    expect(report.queue).toEqual({ length: 2, oldestReportAt: '2026-05-11T02:30:00Z', oldestAgeSeconds: 1800 });
    expect(report.accessToken).toEqual({ cached: true, expiresAt: '2026-05-11T10:00:00Z', usable: true });
    expect(report.key.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(report.rejected.count).toBe(1);
    expect(report.delivery.consecutiveFailures).toBe(3);
  });

  it('an access token within 5 minutes of expiry, or for other credentials, is not usable', () => {
    expect(buildStatus(facts({ tokenCache: { expiresAt: '2026-05-11T03:04:00Z', wellFormed: true, matchesCredentials: true } }), NOW).accessToken.usable).toBe(
      false,
    );
    expect(buildStatus(facts({ tokenCache: { expiresAt: '2026-05-11T10:00:00Z', wellFormed: true, matchesCredentials: false } }), NOW).accessToken.usable).toBe(
      false,
    );
  });

  it('no credentials, no key, empty queue', () => {
    const report = buildStatus(
      facts({
        credentials: { source: 'none', endpoint: null, problem: null },
        tokenCache: null,
        key: { present: false, publicKeyB64: null, corrupt: false, registered: false, revoked: false },
        queue: { length: 0, oldestReportAt: null },
      }),
      NOW,
    );
    expect(report.accessToken).toEqual({ cached: false, expiresAt: null, usable: false });
    expect(report.key).toEqual({ present: false, fingerprint: null, registered: false, revoked: false, problem: null });
    expect(report.queue.oldestAgeSeconds).toBeNull();
    const text = renderStatus(report, NOW, '/home/u');
    expect(text).toContain('none — set the plugin options (`claude plugin configure ccflux@ccflux`) or run `ccflux login`');
    expect(text).toContain('queue          empty');
  });

  it('plugin options out of reach (keychain) or unset: says so and what happens next, never `login`', () => {
    const base = facts({ credentials: { source: 'none', endpoint: null, problem: null } });
    const keychain = renderStatus(
      buildStatus({ ...base, pluginStore: { kind: 'keychain', pluginId: 'ccflux@ccflux' }, delivery: { ...base.delivery, lastCredentialSource: 'plugin-options' } }, NOW),
      NOW,
      '/home/u',
    );
    expect(keychain).toContain('macOS keychain');
    expect(keychain).toMatch(/last run used +Claude Code plugin options .* for https:\/\/ccflux\.example\.org\/; last delivery 2026-05-11T02:00:00Z/);
    expect(keychain).toMatch(/next +the next Claude Code turn/);
    expect(keychain).not.toContain('ccflux login');
    const unset = renderStatus(buildStatus({ ...base, pluginStore: { kind: 'unset', pluginId: 'ccflux@acme' } }, NOW), NOW, '/home/u');
    expect(unset).toContain('`claude plugin configure ccflux@acme`');
    const stored = renderStatus(
      buildStatus({ ...facts({ credentials: { source: 'plugin-store', endpoint: 'https://x/', problem: null } }), pluginStore: { kind: 'found', pluginId: 'ccflux@ccflux' } }, NOW),
      NOW,
      '/home/u',
    );
    expect(stored).toContain('credentials    Claude Code plugin options of ccflux@ccflux (read from ~/.claude/.credentials.json)');
  });
});

describe('renderStatus', () => {
  it('shows every fact on its own line, with paths under home shortened', () => {
    const text = renderStatus(buildStatus(facts({ otherDataDirs: ['/home/u/.claude-work'] }), NOW), NOW, '/home/u');
    expect(text).toMatch(/^ccflux \S+ — data folder ~\/\.claude \(default\)\n/);
    expect(text).toContain('credentials    config file ~/.claude/ccflux/config.json');
    expect(text).toContain('endpoint       https://ccflux.example.org/');
    expect(text).toContain('access token   valid until 2026-05-11T10:00:00Z (in 7h00m)');
    expect(text).toMatch(/device key +[0-9a-f]{16} {2}registered/);
    expect(text).toContain('queue          2 reports waiting, oldest from 2026-05-11T02:30:00Z (30m00s ago)');
    expect(text).toContain('rejected       1 (see ~/.claude/ccflux/rejected_reports.jsonl)');
    expect(text).toContain('last delivery  2026-05-11T02:00:00Z (1h00m ago)');
    expect(text).toContain('last error     2026-05-11T02:59:00Z (1m00s ago): receiver unreachable');
    expect(text).toContain('Also set up: ~/.claude-work');
    expect(text).not.toContain('(delivered since)');
  });

  it('an error older than the last delivery is marked as history', () => {
    const f = facts();
    const text = renderStatus(buildStatus({ ...f, delivery: { ...f.delivery, lastDeliveryAt: '2026-05-11T02:59:30Z' } }, NOW), NOW, '/home/u');
    expect(text).toMatch(/last error +2026-05-11T02:59:00Z \(1m00s ago\): receiver unreachable .* \(delivered since\)$/m);
  });

  it('a revoked key says the hooks are silent', () => {
    const text = renderStatus(
      buildStatus(facts({ key: { present: true, publicKeyB64: keyFromSeed(Buffer.alloc(32, 1)).publicKeyB64, corrupt: false, registered: true, revoked: true } }), NOW),
      NOW,
      '/home/u',
    );
    expect(text).toContain('REVOKED by the receiver (hooks are silent)');
  });
});

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('gatherStatusFacts', () => {
  it('reads a state dir without creating anything and never returns a secret', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'ccflux-unit-status-'));
    tempDirs.push(dataDir);
    const paths = statePaths(dataDir);
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    const endpoint = 'https://ccflux.example.org/';
    await writeFile(paths.config, JSON.stringify({ endpoint, token: REFRESH }), { mode: 0o600 });
    const binding = credentialBinding({ endpoint, token: REFRESH });
    await writeFile(paths.tokenCache, JSON.stringify({ access_token: ACCESS, expires_at: '2026-05-11T10:00:00Z', bound_to: binding }));
    const seed = Buffer.alloc(32, 9);
    await writeFile(paths.signingKey, seed);
    await writeFile(paths.keyRegistered, keyFromSeed(seed).publicKeyB64);
    const report = (turn: number, at: string) =>
      JSON.stringify({
        schema_version: 1,
        session_id: 's1',
        user_email: '',
        turn_index: turn,
        timestamp_utc: at,
        session_start_utc: at,
        models: { m: { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 } },
        plugin_version: '0.1.0',
      });
    await writeFile(paths.queue, `${report(0, '2026-05-11T01:00:00Z')}\n${report(1, '2026-05-11T02:00:00Z')}\n`);
    await writeFile(paths.rejected, '{"a":1}\n{"b":2}\n\n');
    const before = (await readdir(paths.dir)).sort();

    const gathered = await gatherStatusFacts({ paths, env: {}, dataDirSource: 'flag', otherDataDirs: [] });
    expect((await readdir(paths.dir)).sort()).toEqual(before);
    expect(gathered.credentials).toEqual({ source: 'config-file', endpoint, problem: null });
    expect(gathered.tokenCache).toEqual({ expiresAt: '2026-05-11T10:00:00Z', wellFormed: true, matchesCredentials: true });
    expect(gathered.key).toMatchObject({ present: true, registered: true, revoked: false, corrupt: false });
    expect(gathered.queue).toEqual({ length: 2, oldestReportAt: '2026-05-11T01:00:00Z' });
    expect(gathered.rejectedCount).toBe(2);
    const json = JSON.stringify(buildStatus(gathered, NOW));
    expect(json).not.toContain(REFRESH);
    expect(json).not.toContain(ACCESS);
    expect(json).not.toContain(seed.toString('base64'));
  });

  it('plugin options win; an http endpoint without CCFLUX_ALLOW_HTTP is a problem; a missing state dir is fine', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'ccflux-unit-status-'));
    tempDirs.push(dataDir);
    const paths = statePaths(dataDir);
    const gathered = await gatherStatusFacts({
      paths,
      env: { CLAUDE_PLUGIN_OPTION_API_ENDPOINT: 'http://10.0.0.1:8080', CLAUDE_PLUGIN_OPTION_API_TOKEN: REFRESH },
      dataDirSource: 'env',
      otherDataDirs: [],
    });
    expect(gathered.stateDirExists).toBe(false);
    expect(gathered.credentials.source).toBe('plugin-options');
    expect(gathered.credentials.problem).toContain('https');
    expect(gathered.key.present).toBe(false);
    expect(gathered.queue.length).toBe(0);
  });

  it('an unparseable config.json is reported, not thrown', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'ccflux-unit-status-'));
    tempDirs.push(dataDir);
    const paths = statePaths(dataDir);
    await mkdir(paths.dir, { recursive: true });
    await writeFile(paths.config, `{"endpoint": "https://x", "token": "${REFRESH}"`);
    const gathered = await gatherStatusFacts({ paths, env: {}, dataDirSource: 'default', otherDataDirs: [] });
    expect(gathered.credentials).toEqual({ source: 'config-file', endpoint: null, problem: 'config.json is not valid JSON' });
  });
});

describe('progress', () => {
  it('renders a bar with a count', () => {
    expect(renderBar({ done: 0, total: 4 }, 8)).toBe('[--------] 0/4');
    expect(renderBar({ done: 2, total: 4, note: 'delivered' }, 8)).toBe('[####----] 2/4 delivered');
    expect(renderBar({ done: 0, total: 0 }, 4)).toBe('[####] 0/0');
  });

  it('bar on a terminal, lines otherwise, nothing with --json', () => {
    const tty = Object.assign(new PassThrough(), { isTTY: true });
    expect(progressMode(tty, false)).toBe('bar');
    expect(progressMode(tty, true)).toBe('off');
    expect(progressMode(new PassThrough(), false)).toBe('lines');
  });

  it('plain lines say how far it got; the bar is redrawn in place and cleared at the end', () => {
    const lines = new PassThrough();
    let text = '';
    lines.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const p = createProgress(lines, 'lines');
    p.update({ done: 1, total: 2, note: 'delivered' });
    p.update({ done: 2, total: 2, note: 'rejected' });
    p.end();
    expect(text).toBe('1/2 delivered\n2/2 rejected\n');

    const tty = Object.assign(new PassThrough(), { isTTY: true, columns: 80 });
    let drawn = '';
    tty.on('data', (d: Buffer) => {
      drawn += d.toString();
    });
    let clock = 0;
    const bar = createProgress(tty, 'bar', () => clock);
    bar.update({ done: 1, total: 3 });
    clock += 10; // too soon to redraw
    bar.update({ done: 2, total: 3 });
    bar.update({ done: 3, total: 3 }); // the last step is always drawn
    bar.end();
    expect(drawn.match(/\r\u001b\[2K\[/g)).toHaveLength(2);
    expect(drawn).toContain('3/3');
    expect(drawn.endsWith('\r\u001b[2K')).toBe(true);
  });
});
