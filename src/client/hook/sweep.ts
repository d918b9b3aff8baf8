/**
 * Leftovers of processes killed mid-way (SIGKILL, power loss) are removed once they are clearly
 * abandoned: hook spool files in TMPDIR (hook JSON, which can quote the last assistant message:
 * content ccflux must not keep) and atomic-write temp files in the state dir. Only our own names,
 * only our own files, only when older than ORPHAN_AGE_MILLIS (a live writer finishes in ms).
 */
import { lstat, readdir, rm, unlink } from '../local/fs';
import { join } from 'node:path';
import type { Logger } from '../local/log';

export const ORPHAN_AGE_MILLIS = 10 * 60 * 1000;

/** `ccflux-hook.XXXXXXXX` (the sh wrapper's mktemp) and `ccflux-hook-XXXXXX/` (the CLI's mkdtemp). */
const SPOOL_NAME = /^ccflux-hook[.-][A-Za-z0-9]{6,}$/;
/** fsx.ts writeFileAtomic's `<file>.<uint32>` (as write-file-atomic named them), keys.ts's `signing_key.tmp-<pid>-<hex>`, and fsx.ts's lock staging and removal dirs. */
const STATE_TEMP_NAME =
  /^(?:[^/]+\.(?:json|jsonl|log|offset|pending)|key_registered|key_revoked|signing_key)\.\d{1,10}$|^signing_key\.tmp-\d+-[0-9a-f]+$|^[a-z]+\.lock\.[0-9a-f]{24}(?:\.released|\.dead)?$/;

export interface SweepOptions {
  tmpDir: string;
  stateDir: string;
  now: () => Date;
  log: Logger;
  /** Files owned by someone else are never touched (a shared /tmp). Defaults to this process's uid. */
  uid?: number;
}

async function staleEntries(dir: string, pattern: RegExp, nowMillis: number, uid: number | undefined) {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const stale: Array<{ path: string; isDirectory: boolean }> = [];
  for (const name of names) {
    if (!pattern.test(name)) continue;
    const path = join(dir, name);
    try {
      const st = await lstat(path);
      if (uid !== undefined && st.uid !== uid) continue;
      if (nowMillis - st.mtimeMs < ORPHAN_AGE_MILLIS) continue;
      if (st.isFile() || st.isDirectory()) stale.push({ path, isDirectory: st.isDirectory() });
    } catch {
      // gone meanwhile
    }
  }
  return stale;
}

async function remove(entries: Array<{ path: string; isDirectory: boolean }>): Promise<number> {
  let removed = 0;
  for (const entry of entries) {
    try {
      if (entry.isDirectory) await rm(entry.path, { recursive: true, force: true });
      else await unlink(entry.path);
      removed++;
    } catch {
      // another sweeper got there first
    }
  }
  return removed;
}

/** Removes abandoned spools and temp files; returns the counts. Never throws. */
export async function sweepOrphans(options: SweepOptions): Promise<{ spools: number; temps: number }> {
  const nowMillis = options.now().getTime();
  const uid = options.uid ?? (typeof process.getuid === 'function' ? process.getuid() : undefined);
  const spools = await remove(await staleEntries(options.tmpDir, SPOOL_NAME, nowMillis, uid));
  const temps =
    (await remove(await staleEntries(options.stateDir, STATE_TEMP_NAME, nowMillis, uid))) +
    (await remove(await staleEntries(join(options.stateDir, 'ledger'), STATE_TEMP_NAME, nowMillis, uid)));
  if (spools + temps > 0) {
    options.log.activity(`removed ${spools} abandoned hook spool file(s) and ${temps} temp file(s) left by killed processes`);
  }
  return { spools, temps };
}
