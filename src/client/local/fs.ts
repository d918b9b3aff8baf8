/**
 * The file calls of the device side, shaped like `node:fs/promises` (same names, arguments,
 * results and error codes) but made with the synchronous calls.
 *
 * Why: a ccflux process is short and does one thing at a time. Each `node:fs/promises` call is a
 * round trip through libuv's thread pool, and the first one starts the pool's threads (16 for a
 * hook, main.ts). A turn's worker makes ~110 file calls, most of them on small files in its own
 * state dir: made this way the same turn took 136 ms instead of 196 ms (docs/bench.md, "Session
 * 7"). Nothing in a turn can use the event loop while a call runs, so blocking it costs nothing.
 *
 * The one place where overlap pays is many fsyncs at once (the ledger on a session's first read,
 * up to 256 shards): ledger.ts takes `node:fs/promises` for those batches. Files that could block
 * an open or a read (a FIFO where a transcript should be) are opened with O_NONBLOCK and checked
 * to be regular files before they are read (count/safe-files.ts).
 *
 * Only paths are taken where `node:fs/promises` also takes a FileHandle, and there is no
 * AbortSignal: test/unit/local/fs.test.ts holds each call against `node:fs/promises`.
 */
import * as fs from 'node:fs';
import type * as promises from 'node:fs/promises';

/** A synchronous call as a promise: its result resolves it, its throw rejects it. */
function direct<A extends unknown[], R>(call: (...args: A) => R): (...args: A) => Promise<R> {
  return async (...args: A) => call(...args);
}

export const readFile = direct(fs.readFileSync) as unknown as typeof promises.readFile;
export const writeFile = direct(fs.writeFileSync) as unknown as typeof promises.writeFile;
export const appendFile = direct(fs.appendFileSync) as unknown as typeof promises.appendFile;
export const stat = direct(fs.statSync) as unknown as typeof promises.stat;
export const lstat = direct(fs.lstatSync) as unknown as typeof promises.lstat;
export const readdir = direct(fs.readdirSync) as unknown as typeof promises.readdir;
export const realpath = direct(fs.realpathSync) as unknown as typeof promises.realpath;
export const readlink = direct(fs.readlinkSync) as unknown as typeof promises.readlink;
export const mkdir = direct(fs.mkdirSync) as unknown as typeof promises.mkdir;
export const mkdtemp = direct(fs.mkdtempSync) as unknown as typeof promises.mkdtemp;
export const rename = direct(fs.renameSync) as typeof promises.rename;
export const rm = direct(fs.rmSync) as typeof promises.rm;
export const rmdir = direct(fs.rmdirSync) as typeof promises.rmdir;
export const unlink = direct(fs.unlinkSync) as typeof promises.unlink;
export const link = direct(fs.linkSync) as typeof promises.link;
export const symlink = direct(fs.symlinkSync) as unknown as typeof promises.symlink;
export const chmod = direct(fs.chmodSync) as typeof promises.chmod;
export const utimes = direct(fs.utimesSync) as typeof promises.utimes;
export const copyFile = direct(fs.copyFileSync) as typeof promises.copyFile;

/** An open file: the `FileHandle` methods the device side uses, on a plain descriptor. */
export class FileHandle {
  constructor(readonly fd: number) {}

  async read<T extends NodeJS.ArrayBufferView>(buffer: T, offset: number, length: number, position: number | null): Promise<{ bytesRead: number; buffer: T }> {
    return { bytesRead: fs.readSync(this.fd, buffer, offset, length, position), buffer };
  }

  async write<T extends NodeJS.ArrayBufferView>(buffer: T, offset?: number, length?: number, position?: number | null): Promise<{ bytesWritten: number; buffer: T }> {
    return { bytesWritten: fs.writeSync(this.fd, buffer, offset, length, position), buffer };
  }

  /** Writes all of `data` from the current position (the end for O_APPEND), as `FileHandle.writeFile` does. */
  async writeFile(data: string | NodeJS.ArrayBufferView): Promise<void> {
    fs.writeFileSync(this.fd, data);
  }

  async readFile(encoding: BufferEncoding): Promise<string> {
    return fs.readFileSync(this.fd, encoding);
  }

  async stat(): Promise<fs.Stats> {
    return fs.fstatSync(this.fd);
  }

  async chmod(mode: number): Promise<void> {
    fs.fchmodSync(this.fd, mode);
  }

  async sync(): Promise<void> {
    fs.fsyncSync(this.fd);
  }

  async close(): Promise<void> {
    fs.closeSync(this.fd);
  }
}

export async function open(path: fs.PathLike, flags: string | number = 'r', mode?: fs.Mode): Promise<FileHandle> {
  return new FileHandle(fs.openSync(path, flags, mode));
}
