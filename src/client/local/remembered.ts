/**
 * The Claude Code data dirs this user set up with `ccflux login` or `ccflux install`, remembered in
 * the user's ccflux config folder (`$XDG_CONFIG_HOME/ccflux/data-dirs.json`, else
 * `~/.config/ccflux/…`; `%APPDATA%\ccflux\…` on Windows), 0600 in a 0700 folder. It holds folder
 * paths only, never a secret. `status`, `doctor` and `flush` act on these when no folder is named.
 *
 * `rememberedFilePath` and `parseRemembered` are pure; the rest reads or writes that one file.
 */
import { stat } from './fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ensurePrivateDir, readTextIfExists, writeFileAtomic } from './fsx';

const FORMAT_VERSION = 1;
/** Nobody has this many profiles; a longer list is cut, oldest first. */
const MAX_REMEMBERED = 20;

export function rememberedFilePath(env: NodeJS.ProcessEnv, home: string, platform: NodeJS.Platform = process.platform): string {
  if (platform === 'win32') return join(env.APPDATA || join(home, 'AppData', 'Roaming'), 'ccflux', 'data-dirs.json');
  // XDG says a relative XDG_CONFIG_HOME is to be ignored.
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(home, '.config'), 'ccflux', 'data-dirs.json');
}

/** The absolute paths in the file, in the order they were set up; anything unreadable counts as none. */
export function parseRemembered(text: string | null): string[] {
  if (text === null) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [];
  }
  const dirs = (parsed as { dataDirs?: unknown } | null)?.dataDirs;
  if (!Array.isArray(dirs)) return [];
  const out: string[] = [];
  for (const dir of dirs) {
    if (typeof dir === 'string' && isAbsolute(dir) && !out.includes(resolve(dir))) out.push(resolve(dir));
  }
  return out;
}

/** The remembered data dirs that still exist (a deleted profile is skipped, not an error). */
export async function readRemembered(file: string): Promise<string[]> {
  const dirs = parseRemembered(await readTextIfExists(file).catch(() => null));
  const present: string[] = [];
  for (const dir of dirs) {
    try {
      if ((await stat(dir)).isDirectory()) present.push(dir);
    } catch {
      // gone: skipped
    }
  }
  return present;
}

async function writeRemembered(file: string, dirs: string[]): Promise<void> {
  await ensurePrivateDir(dirname(file));
  await writeFileAtomic(file, `${JSON.stringify({ version: FORMAT_VERSION, dataDirs: dirs }, null, 2)}\n`);
}

/** Adds `dataDir` (kept in place when already there). Callers treat a failure as non-fatal. */
export async function rememberDataDir(file: string, dataDir: string): Promise<void> {
  const dirs = parseRemembered(await readTextIfExists(file).catch(() => null));
  const dir = resolve(dataDir);
  if (dirs.includes(dir)) return;
  await writeRemembered(file, [...dirs, dir].slice(-MAX_REMEMBERED));
}

/** Removes `dataDir` (used by `ccflux uninstall` when nothing of ccflux is left there). */
export async function forgetDataDir(file: string, dataDir: string): Promise<void> {
  const dirs = parseRemembered(await readTextIfExists(file).catch(() => null));
  const dir = resolve(dataDir);
  if (!dirs.includes(dir)) return;
  await writeRemembered(file, dirs.filter((d) => d !== dir));
}
