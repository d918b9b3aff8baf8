/**
 * Installing the plugin into a Claude Code data dir without a marketplace (`ccflux install`), and
 * removing it again (`ccflux uninstall`). It lays the plugin out the way Claude Code's own
 * `/plugin install` does for a local directory marketplace (docs/install.md):
 *
 *   <data>/plugins/marketplaces/ccflux-local/.claude-plugin/marketplace.json   the marketplace
 *   <data>/plugins/marketplaces/ccflux-local/plugins/ccflux/                   its copy of the plugin
 *   <data>/plugins/cache/ccflux-local/ccflux/<version>/                        what hooks run from
 *   <data>/plugins/known_marketplaces.json   "ccflux-local": directory source
 *   <data>/plugins/installed_plugins.json    "ccflux@ccflux-local": [{scope: user, installPath, …}]
 *   <data>/settings.json                     enabledPlugins["ccflux@ccflux-local"] = true
 *
 * Every registry is read and checked before anything is written, other keys are kept as they
 * are, and each file is replaced atomically; folders are built beside their final name and then
 * swapped in, so a running Claude Code never sees half a plugin.
 */
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, link, mkdir, readdir, readFile, rename, rm, stat } from '../local/fs';
import { dirname, join, resolve } from 'node:path';
import { CcfluxError, ERROR_CODES } from '../local/errors';
import { readTextIfExists, writeFileAtomic } from '../local/fsx';
import { STATE_DIR_NAME } from '../local/paths';

export const PLUGIN_NAME = 'ccflux';
export const LOCAL_MARKETPLACE = 'ccflux-local';
export const LOCAL_PLUGIN_ID = `${PLUGIN_NAME}@${LOCAL_MARKETPLACE}`;
/** Claude Code's `${CLAUDE_PLUGIN_DATA}` folder name for that id (non-alphanumerics become `-`). */
const PLUGIN_DATA_NAME = LOCAL_PLUGIN_ID.replace(/[^A-Za-z0-9_-]/g, '-');
/** installed_plugins.json format this code writes and understands. */
const INSTALLED_PLUGINS_FORMAT = 2;
const BINARY_PATTERN = /^ccflux-(linux|darwin|win32)-(x64|arm64)(\.exe)?$/;

export interface InstallLayout {
  dataDir: string;
  pluginsDir: string;
  marketplaceDir: string;
  marketplaceManifest: string;
  marketplacePluginDir: string;
  /** `<data>/plugins/cache/ccflux-local`: every installed version lives below it. */
  cacheRoot: string;
  cacheDir(version: string): string;
  knownMarketplaces: string;
  installedPlugins: string;
  settings: string;
  /** `${CLAUDE_PLUGIN_DATA}` of the local install. */
  pluginDataDir: string;
  /** `<data>/ccflux`: the device's state (signing key, queue, offsets). */
  stateDir: string;
}

export function installLayout(dataDir: string): InstallLayout {
  const pluginsDir = join(dataDir, 'plugins');
  const marketplaceDir = join(pluginsDir, 'marketplaces', LOCAL_MARKETPLACE);
  const cacheRoot = join(pluginsDir, 'cache', LOCAL_MARKETPLACE);
  return {
    dataDir,
    pluginsDir,
    marketplaceDir,
    marketplaceManifest: join(marketplaceDir, '.claude-plugin', 'marketplace.json'),
    marketplacePluginDir: join(marketplaceDir, 'plugins', PLUGIN_NAME),
    cacheRoot,
    cacheDir: (version: string) => join(cacheRoot, PLUGIN_NAME, version),
    knownMarketplaces: join(pluginsDir, 'known_marketplaces.json'),
    installedPlugins: join(pluginsDir, 'installed_plugins.json'),
    settings: join(dataDir, 'settings.json'),
    pluginDataDir: join(pluginsDir, 'data', PLUGIN_DATA_NAME),
    stateDir: join(dataDir, STATE_DIR_NAME),
  };
}

export interface PluginFolder {
  root: string;
  version: string;
  description: string;
  /** Platform binaries present in `bin/`. */
  binaries: string[];
  /** `dist/ccflux.cjs` and the code beside it, `dist/ccflux.body.cjs`, are present (run with Node.js 20+). */
  bundle: boolean;
}

/** Reads and checks a plugin folder: ccflux's manifest, its hooks, and something that can run. */
export async function readPluginFolder(root: string): Promise<PluginFolder> {
  const manifestPath = join(root, '.claude-plugin', 'plugin.json');
  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
  } catch {
    throw new CcfluxError(ERROR_CODES.CONFIG_INVALID, `${root} is not a ccflux plugin folder (no readable .claude-plugin/plugin.json)`, {
      hint: 'pass the plugin folder of a release with --from <dir>',
    });
  }
  if (manifest.name !== PLUGIN_NAME || typeof manifest.version !== 'string' || !/^[0-9A-Za-z.+-]{1,64}$/.test(manifest.version)) {
    throw new CcfluxError(ERROR_CODES.CONFIG_INVALID, `${manifestPath} is not ccflux's manifest (name "ccflux" and a version are needed)`);
  }
  if (!(await isFile(join(root, 'hooks', 'hooks.json')))) {
    throw new CcfluxError(ERROR_CODES.CONFIG_INVALID, `${root} has no hooks/hooks.json`, { hint: 'use an unmodified plugin folder of a release' });
  }
  const binaries = (await readdir(join(root, 'bin')).catch(() => [] as string[])).filter((n) => BINARY_PATTERN.test(n)).sort();
  // The bundle is its loader and the code beside it (scripts/build.mjs): one without the other cannot run.
  const bundle = (await isFile(join(root, 'dist', 'ccflux.cjs'))) && (await isFile(join(root, 'dist', 'ccflux.body.cjs')));
  if (!bundle && binaries.length === 0) {
    throw new CcfluxError(ERROR_CODES.CONFIG_INVALID, `${root} is not built: it has neither dist/ccflux.cjs with dist/ccflux.body.cjs nor a binary in bin/`, {
      hint: 'run `npm run build` in the repository, or use the plugin folder of a release',
    });
  }
  return {
    root: resolve(root),
    version: manifest.version,
    description: typeof manifest.description === 'string' ? manifest.description : 'ccflux',
    binaries,
    bundle,
  };
}

/**
 * Where the plugin folder of the running CLI may be: the bundle is `<plugin>/dist/ccflux.cjs`, the
 * binary `<plugin>/bin/ccflux-…`; a checkout's `bin/ccflux.cjs` loads `<repo>/plugin/dist/…`.
 */
export function pluginRootCandidates(self: { file: string; args: string[] }): string[] {
  const entry = self.args[0] ?? self.file;
  const parent = dirname(dirname(resolve(entry)));
  return [parent, join(parent, 'plugin')];
}

export async function findRunningPluginRoot(self: { file: string; args: string[] }): Promise<string> {
  const candidates = pluginRootCandidates(self);
  for (const candidate of candidates) {
    try {
      const manifest = JSON.parse(await readFile(join(candidate, '.claude-plugin', 'plugin.json'), 'utf8')) as { name?: unknown };
      if (manifest.name === PLUGIN_NAME) return candidate;
    } catch {
      // not this one
    }
  }
  throw new CcfluxError(ERROR_CODES.CONFIG_INVALID, `cannot find the plugin folder this ccflux runs from (looked in ${candidates.join(', ')})`, {
    hint: 'pass it with --from <plugin folder>',
  });
}

export type Runner = 'binary' | 'node' | 'fetch';

export interface InstallOptions {
  dataDir: string;
  source: PluginFolder;
  /** Decides which hooks file is active and which binary counts (Windows gets the PowerShell hooks). */
  platform: string;
  arch: string;
  now: () => Date;
}

export interface InstallResult {
  dataDir: string;
  pluginId: string;
  version: string;
  installPath: string;
  marketplaceDir: string;
  settingsFile: string;
  /** What the hooks will start on this machine: the platform binary, node + bundle, or a binary still to be downloaded. */
  runner: Runner;
  hooks: 'sh' | 'powershell';
  /** This plugin id was installed before (reinstall or upgrade). */
  reinstalled: boolean;
}

type JsonObject = Record<string, unknown>;

interface JsonFile {
  value: JsonObject;
  /** Permission bits to keep when rewriting; null when the file does not exist yet. */
  mode: number | null;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function readJsonObject(path: string): Promise<JsonFile> {
  const text = await readTextIfExists(path);
  if (text === null) return { value: {}, mode: null };
  let value: unknown;
  try {
    value = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    throw new CcfluxError(ERROR_CODES.CONFIG_INVALID, `${path} is not valid JSON; nothing was changed`, { hint: 'fix the file (or move it away), then retry' });
  }
  if (!isObject(value)) {
    throw new CcfluxError(ERROR_CODES.CONFIG_INVALID, `${path} does not hold a JSON object; nothing was changed`, { hint: 'fix the file (or move it away), then retry' });
  }
  return { value, mode: (await stat(path)).mode & 0o777 };
}

async function writeJson(path: string, file: JsonFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, `${JSON.stringify(file.value, null, 2)}\n`, file.mode ?? 0o600);
}

/** installed_plugins.json, checked: version 2 with a `plugins` object (created when missing). */
async function readInstalledPlugins(path: string): Promise<JsonFile & { plugins: JsonObject }> {
  const file = await readJsonObject(path);
  if (file.mode === null) file.value = { version: INSTALLED_PLUGINS_FORMAT, plugins: {} };
  const plugins = file.value.plugins ?? {};
  if (file.value.version !== INSTALLED_PLUGINS_FORMAT || !isObject(plugins)) {
    throw new CcfluxError(
      ERROR_CODES.CONFIG_INVALID,
      `${path} has a format this ccflux does not know (version ${String(file.value.version)}); nothing was changed`,
      { hint: 'install through Claude Code instead: /plugin marketplace add, then /plugin install (docs/install.md)' },
    );
  }
  file.value.plugins = plugins;
  return { ...file, plugins };
}

/** ccflux plugin ids installed from marketplaces other than ours (`ccflux@acme`). */
function otherCcfluxIds(plugins: JsonObject): string[] {
  return Object.keys(plugins).filter((id) => id.startsWith(`${PLUGIN_NAME}@`) && id !== LOCAL_PLUGIN_ID);
}

/** Folder entries not to copy: temp files, locks and markers (`.fetch.lock`, `.gitkeep`), but keep `.claude-plugin`. */
function skipEntry(name: string): boolean {
  return name.startsWith('.') && name !== '.claude-plugin';
}

/**
 * Copies a folder tree. `link` hard-links files instead (same volume, never modified in place:
 * binaries are replaced by rename), falling back to a copy. Symlinks are not followed or copied.
 */
async function copyTree(src: string, dst: string, mode: 'copy' | 'link'): Promise<void> {
  await mkdir(dst, { recursive: true });
  for (const entry of await readdir(src, { withFileTypes: true })) {
    if (skipEntry(entry.name)) continue;
    const from = join(src, entry.name);
    const to = join(dst, entry.name);
    if (entry.isDirectory()) {
      await copyTree(from, to, mode);
    } else if (entry.isFile()) {
      if (mode === 'link') {
        try {
          await link(from, to);
          continue;
        } catch {
          // another volume, or links not allowed: copy
        }
      }
      await copyFile(from, to);
      await chmod(to, (await stat(from)).mode & 0o777);
    }
  }
}

function tempSuffix(): string {
  return `${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Puts `staging` at `target`, replacing what was there, with two renames. */
async function swapIn(staging: string, target: string): Promise<void> {
  const old = `${target}.old-${tempSuffix()}`;
  let moved = false;
  try {
    await rename(target, old);
    moved = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`cannot replace ${target}`, err);
  }
  try {
    await rename(staging, target);
  } catch (err) {
    if (moved) await rename(old, target).catch(() => {});
    throw ioError(`cannot move the new plugin into ${target}`, err);
  }
  if (moved) await rm(old, { recursive: true, force: true });
}

function ioError(message: string, cause: unknown): CcfluxError {
  const code = (cause as NodeJS.ErrnoException).code;
  return new CcfluxError(ERROR_CODES.IO, `${message}${code ? ` (${code})` : ''}`, {
    hint: code === 'EBUSY' || code === 'EPERM' ? 'quit Claude Code (it may be running the plugin) and retry' : 'check the permissions of the data dir',
    cause,
  });
}

function hostBinaryName(platform: string, arch: string): string {
  return `ccflux-${platform}-${arch}${platform === 'win32' ? '.exe' : ''}`;
}

interface Registries {
  settings: JsonFile;
  enabled: JsonObject;
  known: JsonFile;
  installed: JsonFile & { plugins: JsonObject };
  /** Our entry in installed_plugins.json from an earlier install, if any. */
  previousEntry: JsonObject | null;
}

/** Reads and checks every registry first: a file we cannot understand stops us before any change. */
async function readRegistries(layout: InstallLayout): Promise<Registries> {
  const settings = await readJsonObject(layout.settings);
  const enabled = settings.value.enabledPlugins ?? {};
  if (!isObject(enabled)) {
    throw new CcfluxError(ERROR_CODES.CONFIG_INVALID, `${layout.settings}: "enabledPlugins" is not an object; nothing was changed`);
  }
  const known = await readJsonObject(layout.knownMarketplaces);
  const installed = await readInstalledPlugins(layout.installedPlugins);
  const others = otherCcfluxIds(installed.plugins);
  if (others.length > 0) {
    throw new CcfluxError(ERROR_CODES.USAGE, `ccflux is already installed in ${layout.dataDir} as ${others.join(', ')}`, {
      hint: `keep that one, or remove it first in Claude Code: /plugin uninstall ${others[0]}`,
    });
  }
  const previous = installed.plugins[LOCAL_PLUGIN_ID];
  const previousEntry = Array.isArray(previous) && isObject(previous[0]) ? previous[0] : null;
  return { settings, enabled, known, installed, previousEntry };
}

async function hooksFlavour(source: PluginFolder, platform: string): Promise<'sh' | 'powershell'> {
  return platform === 'win32' && (await isFile(join(source.root, 'hooks', 'hooks-windows.json'))) ? 'powershell' : 'sh';
}

/** Step 1: the marketplace's own copy (a real copy: the source folder may change or go away). */
async function installMarketplaceCopy(source: PluginFolder, layout: InstallLayout, hooks: 'sh' | 'powershell'): Promise<void> {
  const stagingPlugin = join(dirname(layout.marketplacePluginDir), `.${PLUGIN_NAME}.staging-${tempSuffix()}`);
  try {
    await copyTree(source.root, stagingPlugin, 'copy');
    if (hooks === 'powershell') {
      // Claude Code auto-loads hooks/hooks.json; on Windows it is the native PowerShell variant.
      await copyFile(join(stagingPlugin, 'hooks', 'hooks-windows.json'), join(stagingPlugin, 'hooks', 'hooks.json'));
    }
    await swapIn(stagingPlugin, layout.marketplacePluginDir);
  } finally {
    await rm(stagingPlugin, { recursive: true, force: true });
  }
  await writeJson(layout.marketplaceManifest, {
    mode: null,
    value: {
      name: LOCAL_MARKETPLACE,
      owner: { name: 'ccflux install' },
      description: 'ccflux installed with `ccflux install` (no remote marketplace)',
      plugins: [{ name: PLUGIN_NAME, source: `./plugins/${PLUGIN_NAME}`, version: source.version, description: source.description }],
    },
  });
}

/** Step 2: the copy Claude Code runs, hard-linked to the marketplace copy. Returns its path. */
async function installCacheCopy(layout: InstallLayout, version: string): Promise<string> {
  const installPath = layout.cacheDir(version);
  const stagingCache = join(dirname(installPath), `.${version}.staging-${tempSuffix()}`);
  try {
    await copyTree(layout.marketplacePluginDir, stagingCache, 'link');
    await swapIn(stagingCache, installPath);
  } finally {
    await rm(stagingCache, { recursive: true, force: true });
  }
  return installPath;
}

/** Step 3: the registries, the enabling one last. */
async function writeRegistries(layout: InstallLayout, registries: Registries, entry: { installPath: string; version: string; nowIso: string }): Promise<void> {
  const { settings, enabled, known, installed, previousEntry } = registries;
  const { installPath, version, nowIso } = entry;
  known.value[LOCAL_MARKETPLACE] = {
    source: { source: 'directory', path: layout.marketplaceDir },
    installLocation: layout.marketplaceDir,
    lastUpdated: nowIso,
  };
  await writeJson(layout.knownMarketplaces, known);
  installed.plugins[LOCAL_PLUGIN_ID] = [
    {
      scope: 'user',
      installPath,
      version,
      installedAt: typeof previousEntry?.installedAt === 'string' ? previousEntry.installedAt : nowIso,
      lastUpdated: nowIso,
      isLocal: true,
    },
  ];
  await writeJson(layout.installedPlugins, installed);
  settings.value.enabledPlugins = { ...enabled, [LOCAL_PLUGIN_ID]: true };
  await writeJson(layout.settings, settings);
}

function chooseRunner(source: PluginFolder, platform: string, arch: string): Runner {
  const binary = hostBinaryName(platform, arch);
  return source.binaries.includes(binary) ? 'binary' : source.bundle ? 'node' : 'fetch';
}

export async function installPlugin(options: InstallOptions): Promise<InstallResult> {
  const { source, dataDir } = options;
  const layout = installLayout(dataDir);
  const nowIso = options.now().toISOString();
  const registries = await readRegistries(layout);
  const hooks = await hooksFlavour(source, options.platform);
  await installMarketplaceCopy(source, layout, hooks);
  const installPath = await installCacheCopy(layout, source.version);
  await writeRegistries(layout, registries, { installPath, version: source.version, nowIso });
  return {
    dataDir,
    pluginId: LOCAL_PLUGIN_ID,
    version: source.version,
    installPath,
    marketplaceDir: layout.marketplaceDir,
    settingsFile: layout.settings,
    runner: chooseRunner(source, options.platform, options.arch),
    hooks,
    reinstalled: registries.previousEntry !== null,
  };
}

export interface InstallStatus {
  dataDir: string;
  /** ccflux@ccflux-local is registered or its folders exist. */
  installed: boolean;
  /** ccflux installed through other marketplaces (removed with /plugin uninstall). */
  otherInstalls: string[];
  stateDir: string;
  stateExists: boolean;
  /** Reports in the queue that were never delivered (lost if the state is removed). */
  pendingReports: number;
}

export async function installStatus(dataDir: string): Promise<InstallStatus> {
  const layout = installLayout(dataDir);
  let plugins: JsonObject = {};
  try {
    plugins = (await readInstalledPlugins(layout.installedPlugins)).plugins;
  } catch {
    // unreadable registry: judge by the folders alone
  }
  const folders = await Promise.all([layout.marketplaceDir, layout.cacheRoot].map((p) => stat(p).then(() => true, () => false)));
  const queue = await readTextIfExists(join(layout.stateDir, 'pending_reports.jsonl')).catch(() => null);
  return {
    dataDir,
    installed: LOCAL_PLUGIN_ID in plugins || folders.some(Boolean),
    otherInstalls: otherCcfluxIds(plugins),
    stateDir: layout.stateDir,
    stateExists: await stat(layout.stateDir).then((s) => s.isDirectory(), () => false),
    pendingReports: queue ? queue.split('\n').filter((line) => line.trim() !== '').length : 0,
  };
}

export interface UninstallResult extends InstallStatus {
  /** What was removed: registry entries (`file: key`) and folders. */
  removed: string[];
  stateRemoved: boolean;
}

/** Removes what `installPlugin` made. The device state (`<data>/ccflux`) goes only with `removeState`. */
export async function uninstallPlugin(options: { dataDir: string; removeState: boolean }): Promise<UninstallResult> {
  const layout = installLayout(options.dataDir);
  const status = await installStatus(options.dataDir);
  const removed: string[] = [];

  // Disable first, so Claude Code never loads a plugin whose files are going.
  const settings = await readJsonObject(layout.settings).catch(() => null);
  const enabled = settings?.value.enabledPlugins;
  if (settings && isObject(enabled) && LOCAL_PLUGIN_ID in enabled) {
    delete enabled[LOCAL_PLUGIN_ID];
    await writeJson(layout.settings, settings);
    removed.push(`${layout.settings}: enabledPlugins["${LOCAL_PLUGIN_ID}"]`);
  }
  const installed = await readInstalledPlugins(layout.installedPlugins).catch(() => null);
  if (installed && installed.mode !== null && LOCAL_PLUGIN_ID in installed.plugins) {
    delete installed.plugins[LOCAL_PLUGIN_ID];
    await writeJson(layout.installedPlugins, installed);
    removed.push(`${layout.installedPlugins}: ${LOCAL_PLUGIN_ID}`);
  }
  const known = await readJsonObject(layout.knownMarketplaces).catch(() => null);
  const entry = known?.value[LOCAL_MARKETPLACE];
  if (known && isObject(entry) && entry.installLocation === layout.marketplaceDir) {
    delete known.value[LOCAL_MARKETPLACE];
    await writeJson(layout.knownMarketplaces, known);
    removed.push(`${layout.knownMarketplaces}: ${LOCAL_MARKETPLACE}`);
  }
  const folders = [layout.cacheRoot, layout.marketplaceDir, ...(options.removeState ? [layout.pluginDataDir, layout.stateDir] : [])];
  for (const folder of folders) {
    const exists = await stat(folder).then(() => true, () => false);
    if (!exists) continue;
    try {
      await rm(folder, { recursive: true, force: true });
    } catch (err) {
      throw ioError(`cannot remove ${folder}`, err);
    }
    removed.push(folder);
  }
  return { ...status, removed, stateRemoved: options.removeState && status.stateExists };
}
