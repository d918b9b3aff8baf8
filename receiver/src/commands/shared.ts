/** Helpers shared by the receiver's commands: configuration, which database, tables, CSV. */
import { closeSync, constants, existsSync, fstatSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { CONFIG_DEFAULTS, parseConfig, type ReceiverConfig } from '../config';
import { ReceiverError } from '../errors';
import { openStore, type Store } from '../store';
import type { CliContext } from './types';

export { csvField, csvLine, parseCsv } from '../csv';

const MAX_TOKEN_FILE_BYTES = 4096;

/**
 * The configuration from the environment; `ADMIN_TOKEN_FILE` (a file holding the token, so it
 * never sits in a unit file, shell history or `ps`) is read here and stands in for ADMIN_TOKEN.
 */
export function loadConfig(ctx: CliContext): ReceiverConfig {
  const env = { ...ctx.env };
  const file = env.ADMIN_TOKEN_FILE;
  if (file !== undefined && file !== '') {
    if (env.ADMIN_TOKEN !== undefined && env.ADMIN_TOKEN !== '') {
      throw new ReceiverError('config', 'invalid configuration:\n  set ADMIN_TOKEN or ADMIN_TOKEN_FILE, not both');
    }
    env.ADMIN_TOKEN = readSecretFile(file, 'ADMIN_TOKEN_FILE', ctx);
  }
  const parsed = parseConfig(env);
  if (!parsed.ok) throw new ReceiverError('config', `invalid configuration:\n  ${parsed.errors.join('\n  ')}`);
  return parsed.config;
}

/** The first line of a small regular file, without its line ending. The content is never echoed. */
function readSecretFile(path: string, name: string, ctx: CliContext): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw new ReceiverError('config', `cannot read ${name} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ReceiverError('config', `${name} ${path} is not a regular file`);
    if (st.size > MAX_TOKEN_FILE_BYTES) throw new ReceiverError('config', `${name} ${path} is larger than ${MAX_TOKEN_FILE_BYTES} bytes; it should hold only the token`);
    if ((st.mode & 0o077) !== 0) ctx.output.err(`ccflux-receiver: warning: ${name} ${path} is readable by others; chmod 600 it`);
    const buf = Buffer.alloc(st.size);
    readSync(fd, buf, 0, st.size, 0);
    return buf.toString('utf8').split(/\r?\n/)[0]!.trim();
  } finally {
    closeSync(fd);
  }
}

/** Where a command's data lives, and whether it may be created. Pure over `exists`. */
export function chooseDatabase(
  env: Record<string, string | undefined>,
  cwd: string,
  exists: (path: string) => boolean,
  opts: { create?: boolean },
): { path: string; line: string } {
  const url = env.DATABASE_URL;
  if (url !== undefined && url.trim() !== '') {
    return { path: '', line: `database ${maskUrl(url.trim())} (DATABASE_URL)` };
  }
  const explicit = env.DATABASE_PATH !== undefined && env.DATABASE_PATH.trim() !== '';
  const path = resolve(cwd, explicit ? env.DATABASE_PATH! : CONFIG_DEFAULTS.DATABASE_PATH);
  const present = exists(path);
  const source = explicit ? 'DATABASE_PATH' : 'DATABASE_PATH unset: the default in the current directory';
  if (present) return { path, line: `database ${path} (${source})` };
  if (explicit || opts.create === true) return { path, line: `database ${path} (${source}; new, created now)` };
  throw new ReceiverError(
    'config',
    `no database at ${path}: DATABASE_PATH is not set, so this is the default in the current directory.\n` +
      `  Point DATABASE_PATH at the database \`serve\` uses, e.g.\n` +
      `    DATABASE_PATH=/var/lib/ccflux/ccflux.db ccflux-receiver <command> …\n` +
      `  or pass --create to start a new, empty database here.`,
  );
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

export interface StoreCommandOptions {
  /** `--create`: a missing default database may be created. */
  create?: boolean;
}

/**
 * Opens the configured database (creating and migrating it only when DATABASE_PATH/DATABASE_URL
 * is set or `--create` is given), says on stderr which one, runs `body`, closes it.
 */
export async function withStore<T>(ctx: CliContext, body: (store: Store, config: ReceiverConfig) => Promise<T>, opts: StoreCommandOptions = {}): Promise<T> {
  const config = loadConfig(ctx);
  const choice = chooseDatabase(ctx.env, ctx.cwd ?? process.cwd(), (p) => existsSync(p) && statSync(p).isFile(), opts);
  ctx.output.err(`ccflux-receiver: ${choice.line}`);
  const store = await openStore(choice.path === '' ? config : { ...config, databasePath: choice.path }, ctx.now);
  try {
    return await body(store, config);
  } finally {
    await store.close();
  }
}

export const CREATE_OPTION_HELP = 'create the database if it does not exist (otherwise a missing default ./ccflux.db is an error)';

export function parseDays(value: string): number {
  if (!/^\d{1,4}$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a whole number of days, 1 or more');
  return Number(value);
}

/** Terminal-safe text: a device id or email registered over the network could carry escapes. */
function printable(value: unknown): string {
  if (value === null || value === undefined) return '-';
  return String(value).replace(/[^\x20-\x7e]/g, '?');
}

/** A plain aligned table (columns separated by two spaces), for people. */
export function table(headers: string[], rows: unknown[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(printable))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** Creates `path` with mode 0600 from the first byte (never an existing file) and writes `text`. */
export function writePrivateFile(path: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new ReceiverError('invalid', `${path} already exists; it may hold tokens. Move it away or choose another file with --out`);
    throw new ReceiverError('invalid', `cannot create ${path}: ${code ?? (err as Error).message}`, { cause: err });
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
