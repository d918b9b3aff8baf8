/**
 * The real receiver for integration tests: spawns the built bundle
 * (`node receiver/dist/ccflux-receiver.cjs serve`, run `npm run build` first) on
 * `LISTEN_ADDR=127.0.0.1:0` with a SQLite file in a fresh temp dir, and waits for its
 * `listening on http://127.0.0.1:<port>` line.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

export const RECEIVER_BUNDLE = fileURLToPath(new URL('../../receiver/dist/ccflux-receiver.cjs', import.meta.url));

const START_TIMEOUT_MILLIS = 15_000;
const STOP_TIMEOUT_MILLIS = 10_000;
/** Kept from the child's stderr for error messages. */
const STDERR_KEEP_CHARS = 8_000;

export interface UsageSums {
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
}

export interface RunningReceiver {
  url: string;
  port: number;
  dbPath: string;
  dir: string;
  /** Stops the receiver (SIGTERM, then SIGKILL after a timeout) and removes the temp dir. */
  stop(): Promise<void>;
  /** Stops the process only (keeps port and database): a receiver that is down. */
  kill(): Promise<void>;
  /** Starts it again on the same port and database (after `kill()`, or while running). */
  restart(): Promise<void>;
  /** `ccflux-receiver users add <email>`; resolves with the refresh token. */
  addUser(email: string, opts?: { division?: string; days?: number }): Promise<string>;
  /** Runs any receiver CLI command against this database; resolves with its stdout. */
  cli(args: string[]): Promise<string>;
  /** A read-only query against the database (a fresh connection each call). */
  query<T = Record<string, unknown>>(sql: string, ...params: unknown[]): T[];
  /** Token sums per model over usage_events. */
  sums(): Record<string, UsageSums>;
  /** The child's stderr so far (configuration, errors), for failure messages. */
  stderr(): string;
}

export interface StartReceiverOptions {
  /** Extra environment, e.g. `{ REQUIRE_SIGNATURES: '1', RATE_LIMIT_PER_MINUTE: '1000' }`. */
  env?: Record<string, string>;
  /** Rewrites the command line, e.g. to start the receiver inside a network namespace. */
  wrap?: (file: string, args: string[]) => [string, string[]];
  /** Writes the database file before the receiver first opens it (e.g. a Rust receiver's). */
  prepare?: (dbPath: string) => void;
}

export async function startReceiver(opts: StartReceiverOptions = {}): Promise<RunningReceiver> {
  if (!existsSync(RECEIVER_BUNDLE)) {
    throw new Error(`${RECEIVER_BUNDLE} is missing: run \`npm run build\` first`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'ccflux-it-receiver-'));
  const dbPath = join(dir, 'ccflux.db');
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, ...opts.env, DATABASE_PATH: dbPath };
  let child: ChildProcess | null = null;
  let port = 0;
  let stderrText = '';

  const launch = async (listenPort: number): Promise<number> => {
    const command: [string, string[]] = [process.execPath, [RECEIVER_BUNDLE, 'serve']];
    const [file, args] = opts.wrap ? opts.wrap(...command) : command;
    const proc = spawn(file, args, {
      env: { ...baseEnv, LISTEN_ADDR: `127.0.0.1:${listenPort}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      stderrText = (stderrText + chunk).slice(-STDERR_KEEP_CHARS);
    });
    return new Promise<number>((resolvePort, reject) => {
      let stdout = '';
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`receiver did not start within ${START_TIMEOUT_MILLIS} ms\n${stderrText}`));
      }, START_TIMEOUT_MILLIS);
      proc.stdout!.setEncoding('utf8');
      proc.stdout!.on('data', (chunk: string) => {
        stdout += chunk;
        const match = /^listening on http:\/\/127\.0\.0\.1:(\d+)$/m.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolvePort(Number(match[1]));
        }
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`receiver exited (${code ?? signal}) before listening\n${stderrText}`));
      });
    });
  };

  const kill = async (): Promise<void> => {
    const proc = child;
    child = null;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((done) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MILLIS);
      proc.once('exit', () => {
        clearTimeout(timer);
        done();
      });
      proc.kill('SIGTERM');
    });
  };

  const cli = (args: string[]): Promise<string> =>
    new Promise((resolveOut, reject) => {
      execFile(process.execPath, [RECEIVER_BUNDLE, ...args], { env: baseEnv }, (err, stdout, stderr) => {
        if (err) reject(new Error(`ccflux-receiver ${args[0]} ${args[1] ?? ''} failed: ${stderr || err.message}`));
        else resolveOut(stdout);
      });
    });

  const query = <T>(sql: string, ...params: unknown[]): T[] => {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      return db.prepare(sql).all(...params) as T[];
    } finally {
      db.close();
    }
  };

  try {
    opts.prepare?.(dbPath);
    port = await launch(0);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dbPath,
    dir,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
    kill,
    async restart() {
      await kill();
      await launch(port);
    },
    async addUser(email, userOpts = {}) {
      const args = ['users', 'add', email];
      if (userOpts.division !== undefined) args.push('--division', userOpts.division);
      if (userOpts.days !== undefined) args.push('--days', String(userOpts.days));
      return (await cli(args)).trim();
    },
    cli,
    query,
    sums() {
      const rows = query<UsageSums & { model: string }>(
        `SELECT model, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
                SUM(cache_read_tokens) AS cache_read_tokens, SUM(cache_write_tokens) AS cache_write_tokens
         FROM usage_events GROUP BY model ORDER BY model`,
      );
      return Object.fromEntries(rows.map(({ model, ...sums }) => [model, sums]));
    },
    stderr: () => stderrText,
  };
}
