/**
 * Where things live. The Claude Code data dir is three levels above a transcript
 * (`<data_dir>/projects/<project>/<session>.jsonl`); ccflux state lives in `<data_dir>/ccflux/`.
 */
import { homedir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';

export const STATE_DIR_NAME = 'ccflux';

export interface StatePaths {
  /** `<data_dir>` itself. */
  dataDir: string;
  /** `<data_dir>/ccflux`, mode 0700. */
  dir: string;
  config: string;
  signingKey: string;
  keyRegistered: string;
  keyRevoked: string;
  tokenCache: string;
  queue: string;
  rejected: string;
  activityLog: string;
  errorsLog: string;
  /** Sharded record of every message group already reported (see docs/DESIGN.md). */
  ledgerDir: string;
  /** Held briefly by whoever mutates queue, ledger or session state. */
  stateLock: string;
  /** Held by the one process per data dir that is delivering. */
  deliverLock: string;
  /** Small JSON of delivery facts for `ccflux status` (last delivery, last error). */
  deliveryStatus: string;
  /** The account email with the account file's size and mtime, so a turn need not parse it. */
  accountCache: string;
  sessionOffset(sessionId: string): string;
}

export function statePaths(dataDir: string): StatePaths {
  const dir = join(dataDir, STATE_DIR_NAME);
  return {
    dataDir,
    dir,
    config: join(dir, 'config.json'),
    signingKey: join(dir, 'signing_key'),
    keyRegistered: join(dir, 'key_registered'),
    keyRevoked: join(dir, 'key_revoked'),
    tokenCache: join(dir, 'token_cache.json'),
    queue: join(dir, 'pending_reports.jsonl'),
    rejected: join(dir, 'rejected_reports.jsonl'),
    activityLog: join(dir, 'activity.log'),
    errorsLog: join(dir, 'errors.log'),
    ledgerDir: join(dir, 'ledger'),
    stateLock: join(dir, 'state.lock'),
    deliverLock: join(dir, 'deliver.lock'),
    deliveryStatus: join(dir, 'delivery_status.json'),
    accountCache: join(dir, 'account_cache.json'),
    sessionOffset: (sessionId: string) => join(dir, `${sessionId}.offset`),
  };
}

/** Session ids become file names: only a safe alphabet, 1-64 characters. */
export function isSafeSessionId(sessionId: unknown): sessionId is string {
  return typeof sessionId === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(sessionId);
}

/** `<data_dir>` for a main-session transcript path. */
export function dataDirFromTranscript(transcriptPath: string): string {
  return dirname(dirname(dirname(resolve(transcriptPath))));
}

/** The data dir Claude Code uses when nothing else says: `CLAUDE_CONFIG_DIR`, else `~/.claude`. */
export function defaultDataDir(env: NodeJS.ProcessEnv, home: string = homedir()): string {
  const configured = env.CLAUDE_CONFIG_DIR;
  return configured ? resolve(configured) : join(home, '.claude');
}

/**
 * The data dir a plugin is installed in: the folder holding the `plugins` component of
 * `CLAUDE_PLUGIN_ROOT` (`<data_dir>/plugins/cache/<mkt>/<plugin>/<version>`). A marketplace clone
 * can itself contain a `plugins` folder, so a component followed by Claude Code's own sub-folders
 * wins; otherwise the last one. Null when the root has no `plugins` component.
 */
export function dataDirOfPluginRoot(pluginRoot: string): string | null {
  const parts = resolve(pluginRoot).split(sep);
  const indexes = parts.flatMap((part, i) => (part === 'plugins' && i > 0 ? [i] : []));
  if (indexes.length === 0) return null;
  const known = indexes.filter((i) => KNOWN_PLUGIN_SUBDIRS.has(parts[i + 1] ?? ''));
  const index = known.length > 0 ? (known[known.length - 1] as number) : (indexes[indexes.length - 1] as number);
  return parts.slice(0, index).join(sep) || sep;
}

const KNOWN_PLUGIN_SUBDIRS = new Set(['cache', 'marketplaces', 'data', 'repos']);
