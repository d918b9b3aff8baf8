/**
 * Where the device's credentials come from: the plugin's options (Claude Code sets
 * `CLAUDE_PLUGIN_OPTION_API_ENDPOINT` / `CLAUDE_PLUGIN_OPTION_API_TOKEN` from `userConfig`), else
 * `<dir>/config.json` written by `ccflux login`. The token is the user's long-lived refresh token:
 * no message built here ever contains it, nor the config file's content.
 */
import { ERROR_CODES, CcfluxError } from './errors';
import { ensurePrivateDir, readTextIfExists, writeFileAtomic } from './fsx';
import type { StatePaths } from './paths';
import { readStoredOptions } from './plugin-store';

/**
 * `plugin-options`: Claude Code's environment (hooks); `plugin-store`: the same options read from
 * Claude Code's files by a user command in a plain shell; `config-file`: `ccflux login`'s file.
 */
export type CredentialSource = 'plugin-options' | 'plugin-store' | 'config-file';

export interface Credentials {
  endpoint: string;
  /** The refresh token. Only ever sent to `/token`. */
  token: string;
  source: CredentialSource;
}

export const ENV_ENDPOINT = 'CLAUDE_PLUGIN_OPTION_API_ENDPOINT';
export const ENV_TOKEN = 'CLAUDE_PLUGIN_OPTION_API_TOKEN';
export const ENV_ALLOW_HTTP = 'CCFLUX_ALLOW_HTTP';

/** Longer than any token a receiver issues; bounds what we hold and send. */
export const MAX_TOKEN_CHARS = 4096;
const MAX_ENDPOINT_CHARS = 2048;
/** A config.json is two short strings; anything bigger is not ours. */
const MAX_CONFIG_BYTES = 64 * 1024;

export const CONFIGURE_HINT =
  "set the plugin's options (`claude plugin configure ccflux@ccflux`, or /plugin in Claude Code), or run `ccflux login`";

/**
 * How to change what is configured, where it is configured: the plugin's options are Claude
 * Code's (`claude plugin configure`), config.json is `ccflux login`'s.
 */
export function reconfigureHint(source: CredentialSource | 'none', what: string): string {
  return source === 'plugin-options' || source === 'plugin-store'
    ? `set the plugin's ${what} with \`claude plugin configure ccflux@ccflux\` (or /plugin in Claude Code)`
    : `run \`ccflux login\` with the ${what} IT gave you`;
}

/** `CCFLUX_ALLOW_HTTP=1`: plain http for local development only. */
export function httpAllowed(env: NodeJS.ProcessEnv): boolean {
  return env[ENV_ALLOW_HTTP] === '1';
}

/** A token goes into an HTTP header: printable ASCII without spaces, bounded. */
export function isUsableToken(token: string): boolean {
  return token.length > 0 && token.length <= MAX_TOKEN_CHARS && /^[\x21-\x7e]+$/.test(token);
}

/**
 * The credentials to use, or null when none are configured. Throws CONFIG_INVALID when what is
 * configured cannot be used (the message names the source, never its content).
 */
export async function loadCredentials(deps: {
  env: NodeJS.ProcessEnv;
  paths: Pick<StatePaths, 'config'> & Partial<Pick<StatePaths, 'dataDir'>>;
  /** Also read the options Claude Code stored for the plugin (default: when `paths.dataDir` is known). */
  pluginStore?: boolean;
}): Promise<Credentials | null> {
  const endpoint = (deps.env[ENV_ENDPOINT] ?? '').trim();
  const token = (deps.env[ENV_TOKEN] ?? '').trim();
  // Both or nothing: half of the plugin options plus half of a config file would mix two setups.
  if (endpoint !== '' && token !== '') {
    checkShape(endpoint, token, 'the plugin options api_endpoint/api_token');
    return { endpoint, token, source: 'plugin-options' };
  }
  // The same options as Claude Code stored them: what the hooks of this data dir are given.
  if (deps.pluginStore !== false && deps.paths.dataDir !== undefined) {
    const stored = await readStoredOptions(deps.paths.dataDir);
    if (stored.kind === 'found') {
      checkShape(stored.endpoint, stored.token, `the plugin options of ${stored.pluginId} stored by Claude Code`);
      return { endpoint: stored.endpoint, token: stored.token, source: 'plugin-store' };
    }
  }

  const text = await readTextIfExists(deps.paths.config);
  if (text === null) return null;
  const where = 'config.json';
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw invalidConfig(`${where} is too large to be a ccflux config`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalidConfig(`${where} is not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidConfig(`${where} must be a JSON object with "endpoint" and "token"`);
  }
  const fields = parsed as Record<string, unknown>;
  if (typeof fields.endpoint !== 'string' || typeof fields.token !== 'string') {
    throw invalidConfig(`${where} must hold "endpoint" and "token" strings`);
  }
  const fileEndpoint = fields.endpoint.trim();
  const fileToken = fields.token.trim();
  checkShape(fileEndpoint, fileToken, where);
  return { endpoint: fileEndpoint, token: fileToken, source: 'config-file' };
}

function checkShape(endpoint: string, token: string, where: string): void {
  if (endpoint === '' || endpoint.length > MAX_ENDPOINT_CHARS) throw invalidConfig(`${where}: the endpoint is empty or too long`);
  if (!isUsableToken(token)) {
    throw invalidConfig(`${where}: the token is empty, too long or contains spaces or control characters`);
  }
}

function invalidConfig(message: string): CcfluxError {
  return new CcfluxError(ERROR_CODES.CONFIG_INVALID, message, { hint: CONFIGURE_HINT });
}

/**
 * Checks a configured endpoint and returns it normalised. https only unless `CCFLUX_ALLOW_HTTP=1`;
 * no user name/password, query or fragment (they would leak into logs or be sent where they do not
 * belong). Throws INSECURE_ENDPOINT or CONFIG_INVALID; messages never echo the URL, which could
 * hold a password.
 */
export function validateEndpoint(endpoint: string, env: NodeJS.ProcessEnv): string {
  const text = endpoint.trim();
  if (text === '' || text.length > MAX_ENDPOINT_CHARS) throw invalidConfig('the endpoint is empty or too long');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalidConfig('the endpoint is not a valid URL (expected https://host or https://host/report)');
  }
  if (url.protocol === 'http:') {
    if (!httpAllowed(env)) {
      throw new CcfluxError(ERROR_CODES.INSECURE_ENDPOINT, 'the endpoint must use https://', {
        hint: 'plain http:// is refused: tokens would cross the network in clear (CCFLUX_ALLOW_HTTP=1 is for local development only)',
      });
    }
  } else if (url.protocol !== 'https:') {
    throw invalidConfig('the endpoint must be an https:// URL');
  }
  if (url.username !== '' || url.password !== '') throw invalidConfig('the endpoint must not contain a user name or password');
  if (url.search !== '' || text.includes('?')) throw invalidConfig('the endpoint must not contain a query string');
  if (url.hash !== '' || text.includes('#')) throw invalidConfig('the endpoint must not contain a fragment');
  // The dashboard's address pasted as the endpoint: every turn would be a failed admin login, and
  // the receiver's login limiter would then lock the real admins out.
  if (/(^|\/)admin(\/|$)/i.test(url.pathname)) {
    throw invalidConfig(
      `the endpoint ${url.origin}${url.pathname} is the admin dashboard, not the report endpoint: use the receiver's base URL (${url.origin}) or ${url.origin}/report`,
    );
  }
  return url.href;
}

/** Writes `config.json` atomically, 0600 from the first byte (the state dir is created 0700). */
export async function writeConfig(
  paths: Pick<StatePaths, 'dir' | 'config'>,
  credentials: { endpoint: string; token: string },
): Promise<void> {
  const endpoint = credentials.endpoint.trim();
  const token = credentials.token.trim();
  checkShape(endpoint, token, 'the new credentials');
  await ensurePrivateDir(paths.dir);
  await writeFileAtomic(paths.config, `${JSON.stringify({ endpoint, token }, null, 2)}\n`);
}
