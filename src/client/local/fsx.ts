/**
 * File primitives for state: atomic writes with the mode set at creation, durable appends,
 * private directories, and cross-process locks.
 *
 * write-file-atomic opens its temp file with the requested mode (so a secret is never readable by
 * others, not even for an instant), fsyncs, then renames; its serialisation is per process only,
 * so read-modify-write across processes must hold a lock from `withLock`.
 */
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, chmod, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';
import writeFileAtomicLib from 'write-file-atomic';
import { CcfluxError, ERROR_CODES } from './errors';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** proper-lockfile raises anything below 2000 ms to 2000 ms. */
const MIN_STALE_MILLIS = 2000;

export async function writeFileAtomic(path: string, data: string | Buffer, mode = PRIVATE_FILE_MODE): Promise<void> {
  await writeFileAtomicLib(path, data, { mode, fsync: true });
}

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
  /** A lock not refreshed for this long belongs to a dead process and is taken over. */
  staleMillis?: number;
}

export type Release = () => Promise<void>;

/**
 * Takes the cross-process lock `<lockPath>` (a directory, refreshed while held, so a crashed
 * holder cannot keep it for longer than `staleMillis`). Resolves to a release function, or
 * throws CCFLUX_ERR_LOCKED after `waitMillis`.
 */
export async function acquireLock(lockPath: string, options: LockOptions): Promise<Release> {
  const stale = Math.max(options.staleMillis ?? 10_000, MIN_STALE_MILLIS);
  const deadline = Date.now() + options.waitMillis;
  await mkdir(dirname(lockPath), { recursive: true, mode: PRIVATE_DIR_MODE });
  for (let attempt = 0; ; attempt++) {
    try {
      const release = await lockfile.lock(lockPath, {
        realpath: false,
        stale,
        update: Math.floor(stale / 2),
        lockfilePath: lockPath,
        retries: 0,
        onCompromised: () => {
          // Another process judged us stale and took over; our critical sections are short and
          // atomic (rename), so the worst case is one redundant write. Never throw from a timer.
        },
      });
      return async () => {
        try {
          await release();
        } catch {
          // Already released or taken over: nothing to undo.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      if (Date.now() >= deadline) {
        throw new CcfluxError(ERROR_CODES.LOCKED, 'another ccflux process holds the lock', { cause: err });
      }
      const backoffMillis = Math.min(5 * 2 ** Math.min(attempt, 4), 50);
      await new Promise((resolve) => setTimeout(resolve, backoffMillis));
    }
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
