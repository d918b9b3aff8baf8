/**
 * The `ccflux` command on PATH for a plugin installed with `ccflux install`: a symlink
 * `~/.local/bin/ccflux` (the XDG user bin folder, on PATH by default on most Linux desktops and
 * with many shells' profiles on macOS) to the installed plugin's `bin/ccflux` launcher. Never
 * replaces a `ccflux` that is not ours (an npm-installed one, say).
 */
import { lstat, mkdir, readlink, rename, symlink, unlink } from '../local/fs';
import { delimiter, join, resolve } from 'node:path';

export type ShimResult =
  | { kind: 'created' | 'updated' | 'unchanged'; path: string; target: string; onPath: boolean }
  | { kind: 'kept-other'; path: string; target: string; onPath: boolean }
  | { kind: 'unsupported'; reason: string };

export function shimPath(home: string): string {
  return join(home, '.local', 'bin', 'ccflux');
}

/** Whether `dir` is one of PATH's entries. */
export function onPath(dir: string, pathVar: string | undefined): boolean {
  return (pathVar ?? '').split(delimiter).some((entry) => entry !== '' && resolve(entry) === resolve(dir));
}

/** A symlink we made earlier points at some `…/bin/ccflux` launcher of a ccflux plugin folder. */
function isOurs(target: string): boolean {
  return /[\\/]bin[\\/]ccflux$/.test(target);
}

export async function installShim(options: { home: string; launcher: string; env: NodeJS.ProcessEnv; platform: NodeJS.Platform }): Promise<ShimResult> {
  if (options.platform === 'win32') return { kind: 'unsupported', reason: 'Windows: run the plugin binary from its bin\\ folder, or `npm i -g ccflux`' };
  const path = shimPath(options.home);
  const dir = join(options.home, '.local', 'bin');
  const target = options.launcher;
  const visible = onPath(dir, options.env.PATH);
  let existing: string | null = null;
  try {
    const st = await lstat(path);
    existing = st.isSymbolicLink() ? await readlink(path) : '';
  } catch {
    existing = null;
  }
  if (existing === target) return { kind: 'unchanged', path, target, onPath: visible };
  if (existing !== null && !isOurs(existing)) return { kind: 'kept-other', path, target, onPath: visible };
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const tmp = `${path}.${process.pid}.tmp`;
  await unlink(tmp).catch(() => {});
  await symlink(target, tmp);
  await rename(tmp, path);
  return { kind: existing === null ? 'created' : 'updated', path, target, onPath: visible };
}
