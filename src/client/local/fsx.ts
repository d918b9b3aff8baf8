/**
 * File primitives for state: atomic writes with the mode set at creation, durable appends,
 * private directories, and cross-process locks.
 *
 * `writeFileAtomic` opens its temp file (`<file>.<uint32>`, exclusive) with the requested mode (so
 * a secret is never readable by others, not even for an instant), writes, fsyncs, then renames:
 * 6 system calls where the write-file-atomic package made about 13 (realpath walk, chown, …)
 * and cost a module load per hook run. Read-modify-write across processes must hold a lock from
 * `withLock`.
 *
 * Locks are directories that name their holder (see `acquireLock`); the layout is compatible
 * with the proper-lockfile directories of earlier versions (an unnamed directory is judged by its
 * mtime, and holders keep refreshing it).
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, readFileSync } from 'node:fs';
import { chmod, type FileHandle, mkdir, open, readFile, rename, rm, rmdir, stat, unlink, utimes, writeFile } from './fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { CcfluxError, ERROR_CODES } from './errors';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** Refresh-time staleness below this would take over live holders on a loaded machine. */
const MIN_STALE_MILLIS = 2000;

/**
 * `data` may be given in pieces (any iterable of strings, consumed one piece at a time): a large
 * file is then never one string, nor one buffer, in memory (a first read's session state).
 */
export async function writeFileAtomic(path: string, data: string | Buffer | Iterable<string>, mode = PRIVATE_FILE_MODE): Promise<void> {
  const temp = `${path}.${randomBytes(4).readUInt32BE(0)}`;
  const handle = await open(temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
  try {
    // The umask may only have narrowed `mode`; the file gets exactly what was asked.
    if (((await handle.stat()).mode & 0o777) !== mode) await handle.chmod(mode);
    if (typeof data === 'string' || Buffer.isBuffer(data)) await handle.writeFile(data);
    else await writePieces(handle, data);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => {});
    await rm(temp, { force: true }).catch(() => {});
    throw err;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => {});
    throw err;
  }
}

/**
 * Writes the pieces one after another through one reused buffer, a write each time it is full:
 * a buffer per piece (what writeFile of a string makes) stays allocated until a garbage
 * collection, and a large file's pieces added up to the size of the file again.
 */
async function writePieces(handle: FileHandle, pieces: Iterable<string>): Promise<void> {
  let buf = Buffer.allocUnsafe(PIECE_BUFFER_BYTES);
  let filled = 0;
  const flush = async () => {
    for (let at = 0; at < filled; ) at += (await handle.write(buf, at, filled - at)).bytesWritten;
    filled = 0;
  };
  for (const piece of pieces) {
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    const most = piece.length * 3;
    if (filled + most > buf.length) await flush();
    if (most > buf.length) buf = Buffer.allocUnsafe(most);
    filled += buf.write(piece, filled);
  }
  await flush();
}

const PIECE_BUFFER_BYTES = 256 * 1024;

/** The file's text, or null when it does not exist. Other errors (EACCES, EISDIR) are thrown. */
export async function readTextIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export async function readBytesIfExists(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** mkdir -p with 0700 on the leaf; tightens the leaf's mode when it already exists looser. */
export async function ensurePrivateDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  const st = await stat(path);
  if (!st.isDirectory()) throw new CcfluxError(ERROR_CODES.IO, `${path} is not a directory`);
  if ((st.mode & 0o777) !== PRIVATE_DIR_MODE) await chmod(path, PRIVATE_DIR_MODE);
}

/**
 * Appends `text` and fsyncs before returning: once this resolves the bytes survive a crash.
 * The file is created 0600. O_APPEND keeps concurrent small appends from interleaving mid-line,
 * but callers that also rewrite the file must hold its lock.
 */
export async function appendDurable(path: string, text: string | Buffer, mode = PRIVATE_FILE_MODE): Promise<void> {
  const handle = await open(path, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT, mode);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface LockOptions {
  /** How long to keep trying before giving up with CCFLUX_ERR_LOCKED. 0 = one try. */
  waitMillis: number;
  /**
   * A lock whose holder cannot be checked (another host, an older ccflux, a holder that died
   * before naming itself) is taken over once not refreshed for this long.
   */
  staleMillis?: number;
}

export type Release = () => Promise<void>;

/** The holder a lock names: `<lockPath>/owner`. */
interface LockOwner {
  pid: number;
  host: string;
  /** Boot id + the process's start time in clock ticks (Linux); null where unknown. */
  start: string | null;
  /** Unique per acquisition: a take-over removes only the lock it judged dead. */
  nonce: string;
}

const OWNER_FILE = 'owner';
/** A take-over mutex older than this belongs to a process killed mid-take-over. */
const TAKEOVER_STALE_MILLIS = 2000;

let selfStart: string | null | undefined;

/** `<boot id>:<start ticks>` of a process on this host (Linux /proc; `exited` for a zombie), else null. */
export function processStartToken(pid: number): string | null {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime); the command name (field 2) may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return 'exited';
    const ticks = fields[19];
    return boot !== '' && ticks !== undefined && /^\d+$/.test(ticks) ? `${boot}:${ticks}` : null;
  } catch {
    return null;
  }
}

/** Whether the process a lock names is certainly gone: true only when it can be checked. */
export function holderIsDead(owner: LockOwner): boolean | null {
  if (owner.host !== hostname()) return null;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true;
    // EPERM: alive, another user's.
  }
  if (owner.start === null) return null;
  const now = processStartToken(owner.pid);
  if (now === null) return null;
  // Same pid, other start time: the pid was reused by an unrelated process.
  return now !== owner.start;
}

function parseOwner(text: string | null): LockOwner | null {
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.nonce === 'string' && (typeof v.start === 'string' || v.start === null)) {
      return { pid: v.pid, host: v.host, start: v.start, nonce: v.nonce };
    }
  } catch {
    // half-written: treated as unnamed
  }
  return null;
}

export type LockState = { state: 'free' } | { state: 'held' } | { state: 'dead'; nonce: string | null };

/**
 * What a lock directory says about its holder. A named holder on this host is checked at once
 * (pid alive and the same process start); anything else is judged by the refresh time (mtime).
 */
export async function inspectLock(lockPath: string, staleMillis: number): Promise<LockState> {
  let mtimeMs: number;
  try {
    mtimeMs = (await stat(lockPath)).mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'free' };
    throw err;
  }
  const owner = parseOwner(await readTextIfExists(join(lockPath, OWNER_FILE)).catch(() => null));
  const dead = owner === null ? null : holderIsDead(owner);
  if (dead === true) return { state: 'dead', nonce: owner?.nonce ?? null };
  if (dead === null && Date.now() - mtimeMs > staleMillis) return { state: 'dead', nonce: owner?.nonce ?? null };
  return { state: 'held' };
}

/**
 * Removes a lock judged dead, under a take-over mutex so that two contenders can never remove a
 * lock a third has just taken: the judgement is repeated under the mutex, and only the very lock
 * judged dead (same nonce) is removed.
 */
async function takeOver(lockPath: string, staleMillis: number, judged: string | null): Promise<void> {
  const mutex = `${lockPath}.takeover`;
  try {
    await mkdir(mutex, { mode: PRIVATE_DIR_MODE });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const age = await stat(mutex).then((st) => Date.now() - st.mtimeMs, () => 0);
    if (age > TAKEOVER_STALE_MILLIS) await rm(mutex, { recursive: true, force: true });
    return;
  }
  try {
    const again = await inspectLock(lockPath, staleMillis);
    if (again.state === 'dead' && again.nonce === judged) await removeLockDir(lockPath, randomBytes(12).toString('hex'), 'dead');
  } finally {
    await rm(mutex, { recursive: true, force: true });
  }
}

/**
 * Takes the cross-process lock `<lockPath>`: a directory holding `owner` (pid, host, process
 * start, nonce), built under a unique temp name and renamed into place, so a lock never exists
 * without its owner, and removed by renaming it away first, so a holder killed mid-release leaves
 * no unnamed lock behind. While held, the directory's mtime is refreshed. A contender takes over
 * at once a lock whose holder is dead on this host (or a reused pid), respects a live one, and
 * falls back to the refresh time (`staleMillis`) when it cannot check. Resolves to a release
 * function, or throws CCFLUX_ERR_LOCKED after `waitMillis`.
 *
 * rename(2) replaces an empty directory, so the lock is only renamed into place after checking
 * the name is free: an unnamed directory (an older ccflux's lock) is never replaced, save in the
 * microseconds between that check and the rename.
 */
export async function acquireLock(lockPath: string, options: LockOptions): Promise<Release> {
  const stale = Math.max(options.staleMillis ?? 10_000, MIN_STALE_MILLIS);
  const deadline = Date.now() + options.waitMillis;
  await mkdir(dirname(lockPath), { recursive: true, mode: PRIVATE_DIR_MODE });
  selfStart ??= processStartToken(process.pid);
  const owner: LockOwner = { pid: process.pid, host: hostname(), start: selfStart, nonce: randomBytes(12).toString('hex') };
  const staging = `${lockPath}.${owner.nonce}`;
  await mkdir(staging, { mode: PRIVATE_DIR_MODE });
  let placed = false;
  try {
    await writeFile(join(staging, OWNER_FILE), JSON.stringify(owner), { mode: PRIVATE_FILE_MODE });
    for (let attempt = 0; ; attempt++) {
      placed = await renameIntoPlace(staging, lockPath);
      if (placed) return holdLock(lockPath, owner, stale);
      const seen = await inspectLock(lockPath, stale);
      if (seen.state === 'dead') {
        await takeOver(lockPath, stale, seen.nonce);
        continue;
      }
      if (seen.state === 'free') continue;
      if (Date.now() >= deadline) throw new CcfluxError(ERROR_CODES.LOCKED, 'another ccflux process holds the lock');
      const backoffMillis = Math.min(5 * 2 ** Math.min(attempt, 4), 50);
      await new Promise((resolve) => setTimeout(resolve, backoffMillis));
    }
  } finally {
    // Renamed into place: gone already (and no rm: it loads node's rimraf on every lock). Otherwise our staging copy.
    if (!placed) await removeLockTree(staging).catch(() => {});
  }
}

async function renameIntoPlace(staging: string, lockPath: string): Promise<boolean> {
  try {
    await stat(lockPath);
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    await rename(staging, lockPath);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EISDIR' || code === 'ENOTDIR') return false;
    throw err;
  }
}

/** Renames `path` away (atomically: it is gone at once, owner and all), then deletes the copy. */
async function removeLockDir(path: string, nonce: string, why: 'released' | 'dead'): Promise<void> {
  const away = `${path}.${nonce}.${why}`;
  try {
    await rename(path, away);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await removeLockTree(away);
}

/** A lock dir holds its owner file only: two calls, where a recursive rm walks it; anything else in it goes the long way. */
async function removeLockTree(path: string): Promise<void> {
  const code = (err: unknown) => (err as NodeJS.ErrnoException).code;
  await unlink(join(path, OWNER_FILE)).catch((err) => {
    if (code(err) !== 'ENOENT') throw err;
  });
  try {
    await rmdir(path);
  } catch (err) {
    if (code(err) === 'ENOENT') return;
    await rm(path, { recursive: true, force: true });
  }
}

function holdLock(lockPath: string, owner: LockOwner, staleMillis: number): Release {
  // Contenders that cannot check the pid (another host, an older ccflux) go by this refresh.
  const refresh = setInterval(() => {
    const now = new Date();
    utimes(lockPath, now, now).catch(() => {});
  }, Math.floor(staleMillis / 2));
  refresh.unref();
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    clearInterval(refresh);
    // Taken over meanwhile (we were judged stale): the lock is someone else's now.
    const current = parseOwner(await readTextIfExists(join(lockPath, OWNER_FILE)).catch(() => null));
    if (current?.nonce !== owner.nonce) return;
    await removeLockDir(lockPath, owner.nonce, 'released').catch(() => {});
  };
}

/** Waits until `lockPath` is free or its holder is dead (then true), or `deadlineAt` passes (false). */
export async function waitForLockHolder(lockPath: string, options: { staleMillis: number; deadlineAt: number; pollMillis?: number }): Promise<boolean> {
  for (;;) {
    const seen = await inspectLock(lockPath, Math.max(options.staleMillis, MIN_STALE_MILLIS)).catch(() => ({ state: 'held' }) as LockState);
    if (seen.state !== 'held') return true;
    if (Date.now() >= options.deadlineAt) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(options.pollMillis ?? 100, Math.max(1, options.deadlineAt - Date.now()))));
  }
}

/** Runs `fn` while holding the lock; always releases. */
export async function withLock<T>(lockPath: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const release = await acquireLock(lockPath, options);
  try {
    return await fn();
  } finally {
    await release();
  }
}
