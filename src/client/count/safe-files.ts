/**
 * Which transcript files the device may read, and how it opens them (issue 16 rows 7 and 8).
 *
 * - Only files whose real path lies under the data dir's `projects/`: a hook's
 *   `agent_transcript_path` pointing anywhere else (another user's temp folder), or a symlink in
 *   `projects/` leading out of it (another profile's session, counted twice), is not read.
 * - Only regular files, opened without blocking: `stat` first, then `O_NONBLOCK`, then `fstat` must
 *   show the same regular file. A FIFO would otherwise block `open()` while the state lock is held
 *   and stall every session of the data dir.
 *
 * The transcript reader and the session-file listing call these; they hold no other policy.
 */
import { constants } from 'node:fs';
import { type FileHandle, open, realpath, stat } from '../local/fs';
import { basename, dirname, join, resolve, sep } from 'node:path';

async function realOrNull(path: string): Promise<string | null> {
  try {
    return await realpath(path);
  } catch {
    return null;
  }
}

/**
 * True when `path` resolves (symlinks followed) to a location under `root`, itself resolved. A file
 * that does not exist yet is judged by its parent directory (SessionStart names the transcript
 * before Claude Code creates it), and a missing parent by the path's text.
 */
export async function isUnder(root: string, path: string): Promise<boolean> {
  const realRoot = (await realOrNull(root)) ?? resolve(root);
  const inside = (p: string) => p.startsWith(realRoot + sep);
  const real = await realOrNull(path);
  if (real !== null) return inside(real);
  const parent = await realOrNull(dirname(resolve(path)));
  if (parent !== null) return inside(join(parent, basename(path)));
  return inside(resolve(path)) || resolve(path).startsWith(resolve(root) + sep);
}

/** `<data dir>/projects` for a main transcript `<data dir>/projects/<project>/<session>.jsonl`. */
export function projectsDirOf(mainTranscript: string): string {
  return dirname(dirname(resolve(mainTranscript)));
}

/**
 * Opens `path` for reading if it is a regular file; null when it is something else (FIFO, socket,
 * device, directory) or was swapped between the checks. Errors of `stat`/`open` (ENOENT…) propagate.
 */
export async function openRegularFile(path: string): Promise<FileHandle | null> {
  const before = await stat(path);
  if (!before.isFile()) return null;
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const after = await handle.stat();
    if (after.isFile() && after.ino === before.ino && after.dev === before.dev) return handle;
  } catch {
    // fall through: closed below
  }
  await handle.close();
  return null;
}
