import { lstat, readdir, readFile } from '../../../local/fs';
import { join } from 'node:path';
import { readTextIfExists } from '../../../local/fsx';
import { type Check, type CheckResult, resultOf } from '../check';

const id = { id: 'plugin', title: 'plugin installed in this data folder' } as const;

/** Plugin script files larger than this are not scripts we ship. */
const MAX_SCRIPT_BYTES = 256 * 1024;

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
    return resultOf(
      id,
      'fail',
      installs.length > 0 ? `registered in ${dataDir}/plugins but its folder is missing` : `the ccflux plugin is not installed in ${dataDir}`,
      'run `ccflux install` (or `/plugin install` in Claude Code) for this data folder',
    );
  }
  const hits = present.flatMap((i) => i.allowHttpHits);
  if (hits.length > 0) {
    return resultOf(
      id,
      'fail',
      `CCFLUX_ALLOW_HTTP is set in the plugin’s scripts (${hits.slice(0, 3).join(', ')}): tokens would be sent in clear`,
      'remove that line and reinstall the plugin (it is for local development only)',
    );
  }
  const disabled = present.filter((i) => i.enabled === false);
  if (disabled.length === present.length) {
    return resultOf(id, 'warn', `${present.map((i) => i.id).join(', ')} installed but disabled`, 'enable it with `/plugin` in Claude Code');
  }
  return resultOf(id, 'pass', present.map((i) => `${i.id} at ${i.installPath}`).join('; '));
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
  for (const [pluginId, value] of Object.entries(plugins)) {
    if (!/^ccflux@/.test(pluginId)) continue;
    const entries = Array.isArray(value) ? value : [value];
    for (const entry of entries) {
      if (!isObject(entry) || typeof entry.installPath !== 'string') continue;
      const installPath = entry.installPath;
      const exists = await lstat(installPath).then(
        (s) => s.isDirectory(),
        () => false,
      );
      const enabled = typeof enabledMap[pluginId] === 'boolean' ? (enabledMap[pluginId] as boolean) : null;
      installs.push({ id: pluginId, installPath, exists, enabled, allowHttpHits: exists ? await findAllowHttp(installPath) : [] });
    }
  }
  return installs;
}

export const pluginCheck: Check = {
  ...id,
  async run(ctx) {
    const { dataDir } = ctx.deps.paths;
    return judgePlugin(await findPluginInstalls(dataDir), dataDir);
  },
};
