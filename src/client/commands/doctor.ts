/**
 * `ccflux doctor`, the logic: a fixed list of checks, each ending in pass / warn / fail / skip
 * with a one-line fix for a failure. The judgements (`judge*`) are pure functions of plain facts;
 * `runDoctor` gathers the facts (files, one GET /health, one real token exchange) and, with
 * `fix`, repairs what can be repaired safely: file and folder modes, and an unregistered key.
 *
 * Never in the output: the refresh token, the access token, the signing key.
 */
import { chmod, lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { endpointUrls, parseTimestamp, TIMESTAMP_WINDOW_MS } from '../../protocol/wire';
import { type ExchangeResult, exchangeToken, saveTokenCache } from '../deliver/auth';
import { skewFromDateHeader } from '../deliver/answer';
import { type Credentials, httpAllowed, loadCredentials, validateEndpoint } from '../local/credentials';
import { type DeliveryStatus, readDeliveryStatus, type RegisterResult, registerDeviceKey } from '../deliver/drain';
import { CcfluxError } from '../local/errors';
import { ensurePrivateDir, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, readBytesIfExists, readTextIfExists } from '../local/fsx';
import { ensureSigningKey, fingerprint, isRegistered, isRevoked, keyFromSeed, markRegistered, SEED_BYTES } from '../deliver/keys';
import type { StatePaths } from '../local/paths';
import { createFsQueue, DEFAULT_QUEUE_MAX_ENTRIES } from '../deliver/queue';
import { nullLogger } from '../local/log';
import { formatDuration } from './status';
import type { Transport, TransportResult } from '../deliver/transport';

export type CheckState = 'pass' | 'warn' | 'fail' | 'skip';

export const CHECK_IDS = [
  'config',
  'permissions',
  'endpoint-https',
  'receiver-reachable',
  'token-exchange',
  'key-registered',
  'clock-skew',
  'queue',
  'plugin',
] as const;
export type CheckId = (typeof CHECK_IDS)[number];

export interface CheckResult {
  id: CheckId;
  title: string;
  state: CheckState;
  detail: string;
  /** One line telling the user what to do; null when nothing is needed. */
  fix: string | null;
  /** `--fix` repaired it (the state is the one after the repair). */
  fixed: boolean;
}

export interface DoctorReport {
  ok: boolean;
  dataDir: string;
  checks: CheckResult[];
  summary: { passed: number; warnings: number; failed: number; skipped: number };
}

const TITLES: Record<CheckId, string> = {
  config: 'credentials configured',
  permissions: 'file and folder permissions',
  'endpoint-https': 'endpoint uses https',
  'receiver-reachable': 'receiver reachable',
  'token-exchange': 'token exchange works',
  'key-registered': 'device key registered',
  'clock-skew': 'clock in sync with the receiver',
  queue: 'report queue moving',
  plugin: 'plugin installed in this data folder',
};

/** Skew under this is noise (the Date header has 1 s resolution, plus the request time). */
export const CLOCK_SKEW_WARN_MILLIS = 60_000;
/** Beyond this, signed reports come close to the receiver's ±5 min window. */
export const CLOCK_SKEW_FAIL_MILLIS = TIMESTAMP_WINDOW_MS - 60_000;
/** A queued report older than this means deliveries are not happening. */
export const QUEUE_STUCK_AFTER_MILLIS = 60 * 60 * 1000;
/** The permission scan stops after this many entries (the ledger has at most 256 shards). */
const MAX_SCANNED_ENTRIES = 2000;
/** Plugin script files larger than this are not scripts we ship. */
const MAX_SCRIPT_BYTES = 256 * 1024;

function result(id: CheckId, state: CheckState, detail: string, fix: string | null = null, fixed = false): CheckResult {
  return { id, title: TITLES[id], state, detail, fix: state === 'fail' || state === 'warn' ? fix : null, fixed };
}

export function skipped(id: CheckId, because: string): CheckResult {
  return result(id, 'skip', `skipped: ${because}`);
}

// ---------------------------------------------------------------------------------------------
// Pure judgements

export type CredentialFacts =
  | { kind: 'ok'; source: Credentials['source']; endpoint: string }
  | { kind: 'none' }
  | { kind: 'invalid'; message: string };

export function judgeConfig(facts: CredentialFacts, configPath: string): CheckResult {
  if (facts.kind === 'none') {
    return result('config', 'fail', `no credentials: ${configPath} does not exist and the plugin options are not set in this shell`, 'run `ccflux login`');
  }
  if (facts.kind === 'invalid') return result('config', 'fail', facts.message, 'run `ccflux login` to write a fresh config.json');
  return result(
    'config',
    'pass',
    facts.source === 'plugin-options' ? 'from the plugin options (CLAUDE_PLUGIN_OPTION_API_*)' : `from ${configPath}`,
  );
}

export interface PermissionEntry {
  path: string;
  kind: 'file' | 'dir';
  /** The permission bits (`mode & 0o777`). */
  mode: number;
}

/** Entries that other users could read or write: state files must be 0600, folders 0700. */
export function loosePermissions(entries: readonly PermissionEntry[]): PermissionEntry[] {
  return entries.filter((e) => (e.mode & 0o077) !== 0);
}

export function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

export function judgePermissions(
  entries: readonly PermissionEntry[],
  repaired: readonly PermissionEntry[],
  stateDir: string,
): CheckResult {
  const loose = loosePermissions(entries);
  const describe = (list: readonly PermissionEntry[]) => {
    const shown = list.slice(0, 3).map((e) => `${relative(e.path, stateDir)} is ${octal(e.mode)}`);
    return `${shown.join(', ')}${list.length > 3 ? ` and ${list.length - 3} more` : ''}`;
  };
  if (entries.length === 0) return result('permissions', 'pass', 'no state folder yet (created 0700 on first use)');
  if (loose.length === 0 && repaired.length > 0) {
    return result('permissions', 'pass', `repaired: ${describe(repaired)} → files 0600, folders 0700`, null, true);
  }
  if (loose.length === 0) return result('permissions', 'pass', `${entries.length} entries, files 0600 and folders 0700`);
  return result(
    'permissions',
    'fail',
    `readable by others: ${describe(loose)} (files should be 0600, folders 0700)`,
    'run `ccflux doctor --fix` to repair them',
  );
}

function relative(path: string, stateDir: string): string {
  if (path === stateDir) return 'ccflux/';
  return path.startsWith(`${stateDir}/`) ? path.slice(stateDir.length + 1) : path;
}

export function judgeEndpointScheme(endpoint: string, env: NodeJS.ProcessEnv): CheckResult {
  let protocol = '';
  try {
    protocol = new URL(endpoint).protocol;
  } catch {
    return result('endpoint-https', 'fail', 'the endpoint is not a valid URL', 'run `ccflux login` with the https URL IT gave you');
  }
  if (protocol === 'https:') return result('endpoint-https', 'pass', endpoint);
  if (protocol === 'http:' && httpAllowed(env)) {
    return result(
      'endpoint-https',
      'warn',
      `${endpoint} is plain http, allowed only because CCFLUX_ALLOW_HTTP=1 is set: tokens cross the network in clear`,
      'for local development only; use the receiver’s https URL (`ccflux login`) and unset CCFLUX_ALLOW_HTTP',
    );
  }
  return result('endpoint-https', 'fail', `${endpoint} is not https`, 'run `ccflux login` with the receiver’s https URL');
}

export function judgeHealth(answer: TransportResult, healthUrl: string): CheckResult {
  if (answer.kind === 'network-error') {
    return result(
      'receiver-reachable',
      'fail',
      `${healthUrl}: ${answer.code} (${answer.message})`,
      'check the endpoint, your network or VPN, HTTPS_PROXY, and CCFLUX_CA_CERT for an internal CA',
    );
  }
  if (answer.status === 200) {
    let healthy = false;
    try {
      healthy = (JSON.parse(answer.body) as { status?: unknown }).status === 'ok';
    } catch {
      healthy = false;
    }
    if (healthy) return result('receiver-reachable', 'pass', `${healthUrl} answered ok`);
    return result('receiver-reachable', 'fail', `${healthUrl} answered 200 but not as a ccflux receiver`, 'check the endpoint URL with IT');
  }
  if (answer.status === 503) {
    return result('receiver-reachable', 'fail', `${healthUrl}: the receiver is up but its database is failing (503)`, 'tell IT: the receiver’s database is down');
  }
  return result(
    'receiver-reachable',
    'fail',
    `${healthUrl} answered HTTP ${answer.status}`,
    answer.status === 404 ? 'the endpoint does not point at a ccflux receiver: use its base URL or its /report URL' : 'check the endpoint URL with IT',
  );
}

export function judgeExchange(outcome: ExchangeResult, now: Date): CheckResult {
  if (outcome.kind === 'ok') {
    const expires = parseTimestamp(outcome.cache.expires_at);
    const left = expires ? ` (access token valid for ${formatDuration(expires.getTime() - now.getTime())})` : '';
    return result('token-exchange', 'pass', `the receiver accepted the refresh token${left}`);
  }
  if (outcome.kind === 'revoked') {
    return result(
      'token-exchange',
      'fail',
      'the receiver refused the refresh token (401): expired or revoked',
      'ask your IT admin for a new token, then run `ccflux login`',
    );
  }
  return result(
    'token-exchange',
    'fail',
    outcome.detail,
    outcome.reason === 'server-busy' ? 'the receiver is busy or rate limiting: try again in a minute' : 'check the endpoint URL with IT',
  );
}

export interface KeyFacts {
  present: boolean;
  corrupt: boolean;
  publicKeyB64: string | null;
  registered: boolean;
  revoked: boolean;
}

export function judgeKey(facts: KeyFacts, registration: RegisterResult | null): CheckResult {
  if (facts.revoked) {
    return result(
      'key-registered',
      'fail',
      'the receiver revoked this device key; hooks stay silent on this device',
      'ask IT why; to start over with a new key: `ccflux logout --forget-key`, then `ccflux login`',
    );
  }
  if (facts.corrupt) return result('key-registered', 'fail', `signing_key is not ${SEED_BYTES} bytes`, 'it is replaced and registered on the next turn, or now with `ccflux login`');
  if (!facts.present || !facts.publicKeyB64) {
    return result('key-registered', 'fail', 'no signing key yet', 'run `ccflux doctor --fix` (or `ccflux login`) to create and register it');
  }
  const fp = fingerprint(facts.publicKeyB64);
  if (facts.registered) return result('key-registered', 'pass', `key ${fp} is registered`);
  if (registration?.kind === 'registered') return result('key-registered', 'pass', `key ${fp} registered now`, null, true);
  const why =
    registration === null
      ? ''
      : registration.kind === 'failed'
        ? `; registering now failed: ${registration.detail}`
        : registration.kind === 'revoked'
          ? '; the receiver says this key is revoked'
          : '; the receiver refused the fresh access token (401)';
  return result(
    'key-registered',
    'fail',
    `key ${fp} is not registered with the receiver${why}`,
    registration === null ? 'run `ccflux doctor --fix` to register it now (hooks also retry on every turn)' : 'run `ccflux flush` later; if it persists, send IT the output of `ccflux status`',
  );
}

export function judgeClockSkew(dateHeader: string | undefined, now: Date): CheckResult {
  const skew = skewFromDateHeader(dateHeader, now);
  if (skew === null) {
    return result('clock-skew', 'warn', 'cannot tell: the receiver sent no usable Date header', 'make sure this computer syncs its clock (NTP)');
  }
  const size = Math.abs(skew);
  const words = `this device is ${formatDuration(size)} ${skew >= 0 ? 'ahead of' : 'behind'} the receiver`;
  if (size <= CLOCK_SKEW_WARN_MILLIS) return result('clock-skew', 'pass', size < 2000 ? 'in sync (within 2 s)' : words);
  const fix = 'turn on automatic time sync (NTP) for this computer';
  if (size <= CLOCK_SKEW_FAIL_MILLIS) return result('clock-skew', 'warn', `${words}; reports are refused beyond 5 minutes`, fix);
  return result('clock-skew', 'fail', `${words}; signed reports are refused beyond 5 minutes`, fix);
}

export interface QueueFacts {
  length: number;
  oldestReportAt: string | null;
  maxEntries: number;
  rejectedCount: number;
  delivery: Pick<DeliveryStatus, 'lastError' | 'lastErrorAt' | 'lastDeliveryAt' | 'consecutiveFailures'>;
}

export function judgeQueue(facts: QueueFacts, now: Date): CheckResult {
  const rejected = facts.rejectedCount > 0 ? `; ${facts.rejectedCount} report(s) were refused for good (rejected_reports.jsonl)` : '';
  if (facts.length === 0) {
    return facts.rejectedCount > 0
      ? result('queue', 'warn', `empty${rejected}`, 'send rejected_reports.jsonl to IT if the count grows')
      : result('queue', 'pass', 'empty: everything was delivered');
  }
  const oldest = facts.oldestReportAt ? parseTimestamp(facts.oldestReportAt) : null;
  const ageMillis = oldest ? now.getTime() - oldest.getTime() : 0;
  const lastError = facts.delivery.lastError ? `; last error: ${facts.delivery.lastError}` : '';
  const waiting = `${facts.length} report(s) waiting, oldest ${oldest ? `${formatDuration(ageMillis)} old` : 'of unknown age'}`;
  if (facts.length >= facts.maxEntries * 0.9) {
    return result('queue', 'fail', `${waiting}: the queue is nearly full (${facts.maxEntries}); older reports will be dropped${lastError}`, 'fix what the last error says, then run `ccflux flush`');
  }
  if (ageMillis > QUEUE_STUCK_AFTER_MILLIS) {
    return result('queue', 'fail', `${waiting}: deliveries are not getting through${lastError}${rejected}`, 'run `ccflux flush` to deliver now and see why');
  }
  return result('queue', 'pass', `${waiting}; delivered after the next turn${rejected}`);
}

export interface PluginInstall {
  id: string;
  installPath: string;
  exists: boolean;
  enabled: boolean | null;
  /** `file:line` of every CCFLUX_ALLOW_HTTP in the install's scripts/ and hooks/. */
  allowHttpHits: string[];
}

export function judgePlugin(installs: readonly PluginInstall[], dataDir: string): CheckResult {
  const present = installs.filter((i) => i.exists);
  if (present.length === 0) {
    return result(
      'plugin',
      'fail',
      installs.length > 0 ? `registered in ${dataDir}/plugins but its folder is missing` : `the ccflux plugin is not installed in ${dataDir}`,
      'run `ccflux install` (or `/plugin install` in Claude Code) for this data folder',
    );
  }
  const hits = present.flatMap((i) => i.allowHttpHits);
  if (hits.length > 0) {
    return result(
      'plugin',
      'fail',
      `CCFLUX_ALLOW_HTTP is set in the plugin’s scripts (${hits.slice(0, 3).join(', ')}): tokens would be sent in clear`,
      'remove that line and reinstall the plugin (it is for local development only)',
    );
  }
  const disabled = present.filter((i) => i.enabled === false);
  if (disabled.length === present.length) {
    return result('plugin', 'warn', `${present.map((i) => i.id).join(', ')} installed but disabled`, 'enable it with `/plugin` in Claude Code');
  }
  return result('plugin', 'pass', present.map((i) => `${i.id} at ${i.installPath}`).join('; '));
}

export function summarize(dataDir: string, checks: CheckResult[]): DoctorReport {
  const count = (state: CheckState) => checks.filter((c) => c.state === state).length;
  const summary = { passed: count('pass'), warnings: count('warn'), failed: count('fail'), skipped: count('skip') };
  return { ok: summary.failed === 0 && summary.skipped === 0, dataDir, checks, summary };
}

const MARK: Record<CheckState, string> = { pass: '✓', warn: '!', fail: '✗', skip: '-' };

/** The human view: one line per check, a `fix:` line under each failure, a summary. Pure. */
export function renderDoctor(report: DoctorReport, shownDataDir: string): string {
  const width = Math.max(...report.checks.map((c) => c.title.length));
  const lines = [`ccflux doctor — data folder ${shownDataDir}`];
  for (const check of report.checks) {
    lines.push(`${MARK[check.state]} ${check.title.padEnd(width)}  ${check.detail}`);
    if (check.fix) lines.push(`  ${' '.repeat(width)}  fix: ${check.fix}`);
  }
  const s = report.summary;
  const parts = [`${s.passed} passed`];
  if (s.warnings > 0) parts.push(`${s.warnings} warning${s.warnings === 1 ? '' : 's'}`);
  if (s.failed > 0) parts.push(`${s.failed} failed`);
  if (s.skipped > 0) parts.push(`${s.skipped} skipped`);
  lines.push(report.ok ? `All checks passed (${parts.join(', ')}).` : `Some checks did not pass (${parts.join(', ')}).`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Gathering facts (the shell)

/** The state dir and everything in it, without following symlinks; lock folders are transient and skipped. */
export async function scanPermissions(stateDir: string): Promise<PermissionEntry[]> {
  const out: PermissionEntry[] = [];
  const visit = async (path: string, depth: number): Promise<void> => {
    if (out.length >= MAX_SCANNED_ENTRIES) return;
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(path);
    } catch {
      return;
    }
    if (st.isSymbolicLink()) return;
    if (st.isDirectory()) {
      out.push({ path, kind: 'dir', mode: st.mode & 0o777 });
      if (depth >= 2) return;
      let names: string[] = [];
      try {
        names = await readdir(path);
      } catch {
        return;
      }
      for (const name of names.sort()) {
        if (name.endsWith('.lock')) continue;
        await visit(join(path, name), depth + 1);
      }
    } else if (st.isFile()) {
      out.push({ path, kind: 'file', mode: st.mode & 0o777 });
    }
  };
  await visit(stateDir, 0);
  return out;
}

export async function repairPermissions(entries: readonly PermissionEntry[]): Promise<PermissionEntry[]> {
  const repaired: PermissionEntry[] = [];
  for (const entry of loosePermissions(entries)) {
    try {
      await chmod(entry.path, entry.kind === 'dir' ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE);
      repaired.push(entry);
    } catch {
      // Left loose: the re-scan reports it.
    }
  }
  return repaired;
}

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function readJson(path: string): Promise<unknown> {
  const text = await readTextIfExists(path).catch(() => null);
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** `file:line` of each CCFLUX_ALLOW_HTTP under `<root>/scripts` and `<root>/hooks` (one level deep, bounded). */
export async function findAllowHttp(root: string): Promise<string[]> {
  const hits: string[] = [];
  for (const sub of ['scripts', 'hooks']) {
    let names: string[] = [];
    try {
      names = await readdir(join(root, sub));
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      const file = join(root, sub, name);
      try {
        const st = await lstat(file);
        if (!st.isFile() || st.size > MAX_SCRIPT_BYTES) continue;
        const lines = (await readFile(file, 'utf8')).split('\n');
        lines.forEach((line, i) => {
          if (line.includes('CCFLUX_ALLOW_HTTP')) hits.push(`${sub}/${name}:${i + 1}`);
        });
      } catch {
        // unreadable: not ours to judge
      }
    }
  }
  return hits;
}

/**
 * ccflux installs registered in `<dataDir>/plugins/installed_plugins.json` (format 1: one object
 * per id; format 2: a list per id), with `enabledPlugins` from `<dataDir>/settings.json`.
 */
export async function findPluginInstalls(dataDir: string): Promise<PluginInstall[]> {
  const registry = await readJson(join(dataDir, 'plugins', 'installed_plugins.json'));
  const settings = await readJson(join(dataDir, 'settings.json'));
  const enabledMap = isObject(settings) && isObject(settings.enabledPlugins) ? settings.enabledPlugins : {};
  const plugins = isObject(registry) && isObject(registry.plugins) ? registry.plugins : {};
  const installs: PluginInstall[] = [];
  for (const [id, value] of Object.entries(plugins)) {
    if (!/^ccflux@/.test(id)) continue;
    const entries = Array.isArray(value) ? value : [value];
    for (const entry of entries) {
      if (!isObject(entry) || typeof entry.installPath !== 'string') continue;
      const installPath = entry.installPath;
      const exists = await lstat(installPath).then(
        (s) => s.isDirectory(),
        () => false,
      );
      const enabled = typeof enabledMap[id] === 'boolean' ? (enabledMap[id] as boolean) : null;
      installs.push({ id, installPath, exists, enabled, allowHttpHits: exists ? await findAllowHttp(installPath) : [] });
    }
  }
  return installs;
}

export interface DoctorDeps {
  paths: StatePaths;
  env: NodeJS.ProcessEnv;
  now: () => Date;
  transport: Transport;
  /** device_id for a registration done by `--fix`. */
  hostname: string;
}

export async function runDoctor(deps: DoctorDeps, options: { fix: boolean }): Promise<DoctorReport> {
  const { paths, env, now, transport } = deps;
  const checks: CheckResult[] = [];

  // Credentials: plugin options (only visible inside Claude Code's hooks) or config.json.
  let credentials: Credentials | null = null;
  let credentialFacts: CredentialFacts;
  try {
    credentials = await loadCredentials({ env, paths });
    credentialFacts = credentials ? { kind: 'ok', source: credentials.source, endpoint: credentials.endpoint } : { kind: 'none' };
  } catch (err) {
    credentialFacts = { kind: 'invalid', message: err instanceof CcfluxError ? err.message : String(err) };
  }
  checks.push(judgeConfig(credentialFacts, paths.config));

  let entries = await scanPermissions(paths.dir);
  let repaired: PermissionEntry[] = [];
  if (options.fix && loosePermissions(entries).length > 0) {
    repaired = await repairPermissions(entries);
    entries = await scanPermissions(paths.dir);
  }
  checks.push(judgePermissions(entries, repaired, paths.dir));

  let endpoint: string | null = null;
  if (credentials) {
    checks.push(judgeEndpointScheme(credentials.endpoint, env));
    try {
      endpoint = validateEndpoint(credentials.endpoint, env);
    } catch {
      endpoint = null;
    }
  } else {
    checks.push(skipped('endpoint-https', 'no credentials'));
  }

  let dateHeader: string | undefined;
  let exchange: ExchangeResult | null = null;
  if (endpoint && credentials) {
    const healthUrl = `${endpointUrls(endpoint).base}/health`;
    const health = await transport.get(healthUrl);
    checks.push(judgeHealth(health, healthUrl));
    if (health.kind === 'response') dateHeader = health.headers.date;
    if (health.kind === 'network-error') {
      checks.push(skipped('token-exchange', 'the receiver is unreachable'));
    } else {
      exchange = await exchangeToken({ transport, now }, { endpoint, refreshToken: credentials.token });
      checks.push(judgeExchange(exchange, now()));
      if (exchange.kind === 'ok') {
        // A real exchange happened: let the next hook reuse its access token.
        await saveTokenCache(paths, exchange.cache, { endpoint, token: credentials.token }).catch(() => {});
      }
    }
  } else {
    const because = credentials ? 'the endpoint is not usable' : 'no credentials';
    checks.push(skipped('receiver-reachable', because), skipped('token-exchange', because));
  }

  const keyFacts = await readKeyFacts(paths);
  let registration: RegisterResult | null = null;
  if (options.fix && !keyFacts.revoked && !keyFacts.registered && endpoint && exchange?.kind === 'ok') {
    await ensurePrivateDir(paths.dir);
    const key = await ensureSigningKey(paths, { now });
    keyFacts.present = true;
    keyFacts.corrupt = false;
    keyFacts.publicKeyB64 = key.publicKeyB64;
    registration = await registerDeviceKey(
      { transport, now },
      { endpoint, accessToken: exchange.cache.access_token, publicKeyB64: key.publicKeyB64, deviceId: deps.hostname },
    );
    if (registration.kind === 'registered') await markRegistered(paths, key.publicKeyB64);
  }
  checks.push(judgeKey(keyFacts, registration));

  checks.push(dateHeader !== undefined ? judgeClockSkew(dateHeader, now()) : skipped('clock-skew', 'no answer from the receiver'));

  const reports = await createFsQueue(paths, { log: nullLogger })
    .list()
    .catch(() => []);
  const rejectedText = await readTextIfExists(paths.rejected).catch(() => null);
  checks.push(
    judgeQueue(
      {
        length: reports.length,
        oldestReportAt: reports[0]?.timestamp_utc ?? null,
        maxEntries: DEFAULT_QUEUE_MAX_ENTRIES,
        rejectedCount: rejectedText ? rejectedText.split('\n').filter((l) => l.trim() !== '').length : 0,
        delivery: await readDeliveryStatus(paths),
      },
      now(),
    ),
  );

  checks.push(judgePlugin(await findPluginInstalls(paths.dataDir), paths.dataDir));
  return summarize(paths.dataDir, checks);
}

async function readKeyFacts(paths: StatePaths): Promise<KeyFacts> {
  const facts: KeyFacts = { present: false, corrupt: false, publicKeyB64: null, registered: false, revoked: false };
  const seed = await readBytesIfExists(paths.signingKey).catch(() => null);
  if (seed !== null) {
    facts.present = true;
    if (seed.length === SEED_BYTES) {
      facts.publicKeyB64 = keyFromSeed(seed).publicKeyB64;
      facts.registered = await isRegistered(paths, facts.publicKeyB64).catch(() => false);
    } else {
      facts.corrupt = true;
    }
  }
  facts.revoked = await isRevoked(paths).catch(() => false);
  return facts;
}
