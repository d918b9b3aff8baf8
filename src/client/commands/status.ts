/**
 * `ccflux status`, the logic: gather the facts of one data dir (read-only: nothing is created,
 * nothing is sent), turn them into the stable `--json` report, and render that for people.
 * `buildStatus` and `renderStatus` are pure; `gatherStatusFacts` is the only part that reads files.
 *
 * Never in the output: the refresh token, the access token, the signing key.
 */
import { readdir } from '../local/fs';
import { parseTimestamp } from '../../protocol/wire';
import { VERSION } from '../../version';
import { credentialBinding, needsRefresh, parseTokenCache } from '../deliver/auth';
import { type CredentialSource, loadCredentials, validateEndpoint } from '../local/credentials';
import { type DataDirSource, displayPath } from '../local/data-dirs';
import { type DeliveryStatus, readDeliveryStatus } from '../deliver/drain';
import { CcfluxError } from '../local/errors';
import { readBytesIfExists, readTextIfExists } from '../local/fsx';
import { fingerprint, isRegistered, isRevoked, keyFromSeed, SEED_BYTES } from '../deliver/keys';
import { nullLogger } from '../local/log';
import type { StatePaths } from '../local/paths';
import { createFsQueue } from '../deliver/queue';
import { readStoredOptions, type StoredOptions } from '../local/plugin-store';
import { type ClockOffset, readClockOffset } from '../deliver/clock';

export interface StatusFacts {
  dataDir: string;
  dataDirSource: DataDirSource;
  stateDir: string;
  stateDirExists: boolean;
  configPath: string;
  credentials: { source: CredentialSource | 'none'; endpoint: string | null; problem: string | null };
  /** What Claude Code's own files say about the plugin's options (never their values). */
  pluginStore: { kind: StoredOptions['kind']; pluginId: string | null };
  /** Parsed `token_cache.json`, and whether it belongs to the current credentials. */
  tokenCache: { expiresAt: string; matchesCredentials: boolean; wellFormed: boolean } | null;
  key: { present: boolean; publicKeyB64: string | null; corrupt: boolean; registered: boolean; revoked: boolean };
  queue: { length: number; oldestReportAt: string | null };
  rejectedCount: number;
  delivery: DeliveryStatus;
  /** The kept clock correction (`clock_offset.json`), null when the device clock is right. */
  clockOffset: ClockOffset | null;
  /** Other `~/.claude*` folders that have ccflux state. */
  otherDataDirs: string[];
}

/** The `ccflux status --json` document (schema in docs/commands.md). */
export interface StatusReport {
  ok: true;
  version: string;
  dataDir: string;
  dataDirSource: DataDirSource;
  stateDir: string;
  credentials: {
    source: CredentialSource | 'none';
    endpoint: string | null;
    configPath: string;
    problem: string | null;
    /** `found`: read from Claude Code's files; `keychain`: in the macOS keychain, out of reach here; `unset`: plugin installed, options not set; `none`: no plugin. */
    pluginStore: StoredOptions['kind'];
    pluginId: string | null;
  };
  accessToken: { cached: boolean; expiresAt: string | null; usable: boolean };
  key: { present: boolean; fingerprint: string | null; registered: boolean; revoked: boolean; problem: string | null };
  queue: { length: number; oldestReportAt: string | null; oldestAgeSeconds: number | null };
  rejected: { count: number };
  delivery: {
    lastAttemptAt: string | null;
    lastDeliveryAt: string | null;
    lastErrorAt: string | null;
    lastError: string | null;
    consecutiveFailures: number;
    /** What the last delivery run (usually a hook's worker) used: credential source and endpoint. */
    lastCredentialSource: string | null;
    lastEndpoint: string | null;
  };
  /** Receiver time minus device time that signatures are corrected by; null when none is kept. */
  clock: { offsetSeconds: number | null; measuredAt: string | null };
  otherDataDirs: string[];
}

export function buildStatus(facts: StatusFacts, now: Date): StatusReport {
  const oldest = facts.queue.oldestReportAt ? parseTimestamp(facts.queue.oldestReportAt) : null;
  const cache = facts.tokenCache;
  // needsRefresh judges the expiry; the token itself is never read into a status.
  const cacheUsable =
    cache?.wellFormed === true && cache.matchesCredentials && !needsRefresh({ access_token: 'redacted', expires_at: cache.expiresAt }, now);
  return {
    ok: true,
    version: VERSION,
    dataDir: facts.dataDir,
    dataDirSource: facts.dataDirSource,
    stateDir: facts.stateDir,
    credentials: {
      source: facts.credentials.source,
      endpoint: facts.credentials.endpoint,
      configPath: facts.configPath,
      problem: facts.credentials.problem,
      pluginStore: facts.pluginStore.kind,
      pluginId: facts.pluginStore.pluginId,
    },
    accessToken: {
      cached: facts.tokenCache !== null,
      expiresAt: facts.tokenCache?.expiresAt ?? null,
      usable: cacheUsable,
    },
    key: {
      present: facts.key.present,
      fingerprint: facts.key.publicKeyB64 ? fingerprint(facts.key.publicKeyB64) : null,
      registered: facts.key.registered,
      revoked: facts.key.revoked,
      problem: facts.key.corrupt ? `signing_key is not ${SEED_BYTES} bytes: it will be set aside and replaced on the next turn` : null,
    },
    queue: {
      length: facts.queue.length,
      oldestReportAt: facts.queue.oldestReportAt,
      oldestAgeSeconds: oldest ? Math.max(0, Math.round((now.getTime() - oldest.getTime()) / 1000)) : null,
    },
    rejected: { count: facts.rejectedCount },
    delivery: {
      lastAttemptAt: facts.delivery.lastAttemptAt,
      lastDeliveryAt: facts.delivery.lastDeliveryAt,
      lastErrorAt: facts.delivery.lastErrorAt,
      lastError: facts.delivery.lastError,
      consecutiveFailures: facts.delivery.consecutiveFailures,
      lastCredentialSource: facts.delivery.lastCredentialSource,
      lastEndpoint: facts.delivery.lastEndpoint,
    },
    clock: {
      offsetSeconds: facts.clockOffset ? Math.round(facts.clockOffset.offsetMillis / 1000) : null,
      measuredAt: facts.clockOffset?.measuredAt ?? null,
    },
    otherDataDirs: facts.otherDataDirs,
  };
}

/** `3d4h`, `2h05m`, `4m10s`, `12s`: the two largest units. */
export function formatDuration(millis: number): string {
  const totalSeconds = Math.max(0, Math.round(Math.abs(millis) / 1000));
  const days = Math.floor(totalSeconds / 86_400);
  const hours = Math.floor((totalSeconds % 86_400) / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (days > 0) return `${days}d${hours}h`;
  if (hours > 0) return `${hours}h${String(minutes).padStart(2, '0')}m`;
  if (minutes > 0) return `${minutes}m${String(seconds).padStart(2, '0')}s`;
  return `${seconds}s`;
}

/** `2026-05-11T03:00:00Z (4m10s ago)` / `(in 7h59m)`; `never` for null. */
export function describeTime(at: string | null, now: Date): string {
  if (!at) return 'never';
  const parsed = parseTimestamp(at) ?? (Number.isFinite(Date.parse(at)) ? new Date(at) : null);
  if (!parsed) return at;
  const delta = parsed.getTime() - now.getTime();
  return `${at} (${delta >= 0 ? `in ${formatDuration(delta)}` : `${formatDuration(delta)} ago`})`;
}

const SOURCE_LABEL: Record<CredentialSource | 'none', string> = {
  'plugin-options': 'Claude Code plugin options (CLAUDE_PLUGIN_OPTION_API_ENDPOINT / _API_TOKEN)',
  'plugin-store': 'Claude Code plugin options',
  'config-file': 'config file',
  none: 'none',
};

/** What the last delivery run used, for a user whose options this shell cannot read. */
function lastRunWords(report: StatusReport, now: Date): string {
  const d = report.delivery;
  if (!d.lastCredentialSource) return 'no delivery has run yet in this data folder';
  const source = SOURCE_LABEL[d.lastCredentialSource as CredentialSource] ?? d.lastCredentialSource;
  return `${source} for ${d.lastEndpoint ?? '?'}; last delivery ${describeTime(d.lastDeliveryAt, now)}`;
}

/** The credentials rows: where they come from, or why this shell cannot see them and what happens next. */
function credentialRows(report: StatusReport, now: Date, home: string): Array<[string, string]> {
  const c = report.credentials;
  const rows: Array<[string, string]> = [];
  const id = c.pluginId ?? 'ccflux@ccflux';
  if (c.source === 'config-file') rows.push(['credentials', `config file ${displayPath(c.configPath, home)}`]);
  else if (c.source === 'plugin-store') rows.push(['credentials', `Claude Code plugin options of ${id} (read from ${displayPath(`${report.dataDir}/.credentials.json`, home)})`]);
  else if (c.source === 'plugin-options') rows.push(['credentials', SOURCE_LABEL[c.source]]);
  else if (c.pluginStore === 'keychain') {
    rows.push(['credentials', `plugin options of ${id}, kept by Claude Code in the macOS keychain (handed only to its hooks; not readable here)`]);
    rows.push(['  last run used', lastRunWords(report, now)]);
    rows.push(['  next', 'the next Claude Code turn in this data folder delivers the queue']);
  } else if (c.pluginStore === 'unset') {
    rows.push(['credentials', `none: the plugin ${id} is installed but its api_endpoint/api_token are not set — run \`claude plugin configure ${id}\` (or \`ccflux login\`)`]);
  } else {
    rows.push(['credentials', `none — set the plugin options (\`claude plugin configure ccflux@ccflux\`) or run \`ccflux login\``]);
  }
  if (c.problem) rows.push(['  problem', c.problem]);
  rows.push(['endpoint', c.endpoint ?? '—']);
  return rows;
}

/** The human view of a status report. Pure. */
export function renderStatus(report: StatusReport, now: Date, home: string): string {
  const rows: Array<[string, string]> = credentialRows(report, now, home);

  const t = report.accessToken;
  rows.push([
    'access token',
    !t.cached
      ? 'none cached (exchanged on the next delivery)'
      : t.usable
        ? `valid until ${describeTime(t.expiresAt, now)}`
        : `expired or for other credentials (${describeTime(t.expiresAt, now)}); renewed on the next delivery`,
  ]);

  const k = report.key;
  const keyState = k.revoked ? 'REVOKED by the receiver (hooks are silent)' : k.registered ? 'registered' : 'not registered yet';
  rows.push(['device key', k.present ? `${k.fingerprint ?? '?'}  ${keyState}` : `none yet (created on first use)${k.revoked ? `, ${keyState}` : ''}`]);
  if (k.problem) rows.push(['  problem', k.problem]);

  const q = report.queue;
  rows.push([
    'queue',
    q.length === 0
      ? 'empty'
      : `${q.length} report${q.length === 1 ? '' : 's'} waiting, oldest from ${describeTime(q.oldestReportAt, now)}`,
  ]);
  rows.push(['rejected', report.rejected.count === 0 ? 'none' : `${report.rejected.count} (see ${displayPath(`${report.stateDir}/rejected_reports.jsonl`, home)})`]);
  rows.push(['last delivery', describeTime(report.delivery.lastDeliveryAt, now)]);
  const d = report.delivery;
  // An error older than the last delivery is history: say so, so nobody chases a solved problem.
  const resolved = d.lastErrorAt !== null && d.lastDeliveryAt !== null && d.lastDeliveryAt >= d.lastErrorAt;
  rows.push([
    'last error',
    d.lastError ? `${describeTime(d.lastErrorAt, now)}: ${d.lastError}${resolved ? ' (delivered since)' : ''}` : 'none',
  ]);

  rows.push(['clock', describeClock(report.clock, now)]);

  const width = Math.max(...rows.map(([label]) => label.length));
  const head = `ccflux ${report.version} — data folder ${displayPath(report.dataDir, home)} (${sourceWords(report.dataDirSource)})`;
  const lines = [head, ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)];
  if (report.otherDataDirs.length > 0) {
    lines.push(
      `Also set up: ${report.otherDataDirs.map((d) => displayPath(d, home)).join(', ')} — see them with \`ccflux status --config-dir <dir>\`.`,
    );
  }
  return lines.join('\n');
}

function describeClock(clock: StatusReport['clock'], now: Date): string {
  if (clock.offsetSeconds === null) return 'in step with the receiver (no correction kept)';
  const ahead = clock.offsetSeconds < 0;
  const size = formatDuration(Math.abs(clock.offsetSeconds) * 1000);
  return `this device is ${size} ${ahead ? 'ahead of' : 'behind'} the receiver; reports are signed with the receiver's time (measured ${describeTime(clock.measuredAt, now)}) — turn on automatic time sync (NTP) to fix the clock itself`;
}

function sourceWords(source: DataDirSource): string {
  switch (source) {
    case 'flag':
      return 'from --config-dir';
    case 'env':
      return 'from CLAUDE_CONFIG_DIR';
    case 'chosen':
      return 'chosen';
    case 'default':
      return 'default';
    case 'remembered':
      return 'set up with ccflux login/install';
    case 'found':
      return 'has ccflux state';
  }
}

async function countLines(path: string): Promise<number> {
  const text = await readTextIfExists(path).catch(() => null);
  if (text === null) return 0;
  return text.split('\n').filter((line) => line.trim() !== '').length;
}

async function dirExists(path: string): Promise<boolean> {
  try {
    await readdir(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads everything `status` shows. Read-only; tolerates a missing or partly unreadable state dir. */
export async function gatherStatusFacts(deps: {
  paths: StatePaths;
  env: NodeJS.ProcessEnv;
  dataDirSource: DataDirSource;
  otherDataDirs: string[];
}): Promise<StatusFacts> {
  const { paths, env } = deps;

  let credentials: StatusFacts['credentials'] = { source: 'none', endpoint: null, problem: null };
  let binding: string | null = null;
  try {
    const loaded = await loadCredentials({ env, paths });
    if (loaded) {
      credentials = { source: loaded.source, endpoint: loaded.endpoint, problem: null };
      try {
        const endpoint = validateEndpoint(loaded.endpoint, env);
        credentials.endpoint = endpoint;
        binding = credentialBinding({ endpoint, token: loaded.token });
      } catch (err) {
        credentials.problem = err instanceof CcfluxError ? err.message : String(err);
      }
    }
  } catch (err) {
    credentials = { source: 'config-file', endpoint: null, problem: err instanceof CcfluxError ? err.message : String(err) };
  }

  const stored = await readStoredOptions(paths.dataDir).catch((): StoredOptions => ({ kind: 'none' }));
  const pluginStore = { kind: stored.kind, pluginId: stored.kind === 'none' ? null : stored.pluginId };

  let tokenCache: StatusFacts['tokenCache'] = null;
  const cacheText = await readTextIfExists(paths.tokenCache).catch(() => null);
  if (cacheText !== null) {
    const parsed = parseTokenCache(cacheText);
    tokenCache = parsed
      ? {
          expiresAt: parsed.expires_at,
          wellFormed: true,
          matchesCredentials: binding !== null && (parsed.bound_to === undefined || parsed.bound_to === binding),
        }
      : { expiresAt: '', wellFormed: false, matchesCredentials: false };
  }

  const key: StatusFacts['key'] = { present: false, publicKeyB64: null, corrupt: false, registered: false, revoked: false };
  const seed = await readBytesIfExists(paths.signingKey).catch(() => null);
  if (seed !== null) {
    key.present = true;
    if (seed.length === SEED_BYTES) {
      key.publicKeyB64 = keyFromSeed(seed).publicKeyB64;
      key.registered = await isRegistered(paths, key.publicKeyB64).catch(() => false);
    } else {
      key.corrupt = true;
    }
  }
  key.revoked = await isRevoked(paths).catch(() => false);

  const reports = await createFsQueue(paths, { log: nullLogger })
    .list()
    .catch(() => []);

  return {
    dataDir: paths.dataDir,
    dataDirSource: deps.dataDirSource,
    stateDir: paths.dir,
    stateDirExists: await dirExists(paths.dir),
    configPath: paths.config,
    credentials,
    pluginStore,
    tokenCache,
    key,
    queue: { length: reports.length, oldestReportAt: reports[0]?.timestamp_utc ?? null },
    rejectedCount: await countLines(paths.rejected),
    delivery: await readDeliveryStatus(paths),
    clockOffset: await readClockOffset(paths),
    otherDataDirs: deps.otherDataDirs,
  };
}
