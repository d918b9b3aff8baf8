/**
 * The plugin options as Claude Code stores them, for user commands run in a plain shell (where
 * Claude Code's `CLAUDE_PLUGIN_OPTION_*` variables are not set). Claude Code 2.1.328 keeps
 * sensitive options in `<config dir>/.credentials.json` under `pluginSecrets["ccflux@<marketplace>"]`
 * (Linux, Windows; the system keychain on macOS) and plain ones in `<config dir>/settings.json`
 * under `pluginConfigs["ccflux@<marketplace>"].options`.
 *
 * Only this plugin's entry is read out of those files (they also hold Claude Code's own login);
 * nothing here returns, logs or copies anything else, and no message names a value.
 */
import { readTextIfExists } from './fsx';
import { join } from 'node:path';

export const PLUGIN_NAME = 'ccflux';
/** The id of the marketplace this repository publishes; other marketplaces use `ccflux@<theirs>`. */
export const DEFAULT_PLUGIN_ID = 'ccflux@ccflux';
/** Claude Code's files are small; a bigger one is not read. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

export type StoredOptions =
  /** Both options found in Claude Code's files. */
  | { kind: 'found'; pluginId: string; endpoint: string; token: string; file: string }
  /** The plugin is enabled but its options are where ccflux cannot read them (macOS keychain). */
  | { kind: 'keychain'; pluginId: string }
  /** The plugin is enabled in this data dir, but its options are not (both) set. */
  | { kind: 'unset'; pluginId: string }
  /** No ccflux plugin in this data dir. */
  | { kind: 'none' };

/** `ccflux@ccflux` first, else the only other `ccflux@…` id; null when none or ambiguous. */
export function pickPluginId(ids: readonly string[]): string | null {
  if (ids.includes(DEFAULT_PLUGIN_ID)) return DEFAULT_PLUGIN_ID;
  const ours = [...new Set(ids.filter((id) => id.startsWith(`${PLUGIN_NAME}@`)))];
  return ours.length === 1 ? (ours[0] as string) : null;
}

function objectAt(value: unknown, key: string): Record<string, unknown> | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const inner = (value as Record<string, unknown>)[key];
  return typeof inner === 'object' && inner !== null && !Array.isArray(inner) ? (inner as Record<string, unknown>) : null;
}

async function readJson(path: string): Promise<unknown> {
  let text: string | null;
  try {
    text = await readTextIfExists(path);
  } catch {
    return null;
  }
  if (text === null || text.length > MAX_FILE_BYTES) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function stringOption(options: Record<string, unknown> | null, key: string): string {
  const value = options?.[key];
  return typeof value === 'string' ? value.trim() : '';
}

/** Pure: what the two files say about this plugin's options. */
export function judgeStoredOptions(
  credentialsJson: unknown,
  settingsJson: unknown,
  platform: NodeJS.Platform,
  file: string,
): StoredOptions {
  const secrets = objectAt(credentialsJson, 'pluginSecrets');
  const configs = objectAt(settingsJson, 'pluginConfigs');
  const enabled = objectAt(settingsJson, 'enabledPlugins');
  const enabledIds = enabled ? Object.keys(enabled).filter((id) => enabled[id] === true) : [];
  const pluginId = pickPluginId([...Object.keys(secrets ?? {}), ...Object.keys(configs ?? {}), ...enabledIds]);
  if (pluginId === null) return { kind: 'none' };
  const secret = objectAt(secrets, pluginId);
  const plain = objectAt(objectAt(configs, pluginId), 'options');
  const endpoint = stringOption(secret, 'api_endpoint') || stringOption(plain, 'api_endpoint');
  const token = stringOption(secret, 'api_token') || stringOption(plain, 'api_token');
  if (endpoint !== '' && token !== '') return { kind: 'found', pluginId, endpoint, token, file };
  if (platform === 'darwin' && secret === null) return { kind: 'keychain', pluginId };
  return { kind: 'unset', pluginId };
}

/** Reads `<dataDir>/.credentials.json` and `<dataDir>/settings.json` for this plugin's options. */
export async function readStoredOptions(dataDir: string, platform: NodeJS.Platform = process.platform): Promise<StoredOptions> {
  const file = join(dataDir, '.credentials.json');
  const [credentialsJson, settingsJson] = await Promise.all([readJson(file), readJson(join(dataDir, 'settings.json'))]);
  return judgeStoredOptions(credentialsJson, settingsJson, platform, file);
}
