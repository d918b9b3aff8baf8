import { chmod, lstat, readdir } from '../../../local/fs';
import { join } from 'node:path';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../../../local/fsx';
import { type Check, type CheckResult, resultOf } from '../check';

const id = { id: 'permissions', title: 'file and folder permissions' } as const;

/** The permission scan stops after this many entries (the ledger has at most 256 shards). */
const MAX_SCANNED_ENTRIES = 2000;

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
  if (entries.length === 0) return resultOf(id, 'pass', 'no state folder yet (created 0700 on first use)');
  if (loose.length === 0 && repaired.length > 0) {
    return resultOf(id, 'pass', `repaired: ${describe(repaired)} → files 0600, folders 0700`, null, true);
  }
  if (loose.length === 0) return resultOf(id, 'pass', `${entries.length} entries, files 0600 and folders 0700`);
  return resultOf(
    id,
    'fail',
    `readable by others: ${describe(loose)} (files should be 0600, folders 0700)`,
    'run `ccflux doctor --fix` to repair them',
  );
}

function relative(path: string, stateDir: string): string {
  if (path === stateDir) return 'ccflux/';
  return path.startsWith(`${stateDir}/`) ? path.slice(stateDir.length + 1) : path;
}

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

export const permissionsCheck: Check = {
  ...id,
  async run(ctx) {
    const { paths } = ctx.deps;
    let entries = await scanPermissions(paths.dir);
    let repaired: PermissionEntry[] = [];
    if (ctx.fix && loosePermissions(entries).length > 0) {
      repaired = await repairPermissions(entries);
      entries = await scanPermissions(paths.dir);
    }
    return judgePermissions(entries, repaired, paths.dir);
  },
};
