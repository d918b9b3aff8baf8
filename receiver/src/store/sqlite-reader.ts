/**
 * Where the dashboard's SQL runs on SQLite. better-sqlite3 is synchronous: a view query that scans
 * for a second holds the event loop for that second, and `/health` and `/report` wait behind it.
 * So a file database gets worker threads (VIEW_THREADS), each with its own read-only connection to
 * the same file (WAL, set by db/open.ts: a reader never blocks the writer and always sees the last
 * commit), and the main thread only posts `{id, sql, params}` to the least busy one and matches the
 * answers. With two, a page's statements run two at a time and its heaviest read, split in shares
 * of the users (`parallel`, admin/queries.ts), on both cores at once. `:memory:` databases
 * (nothing else can open them) and callers that ask for it run the SQL inline instead.
 *
 * The worker's code is a plain CommonJS string run with `eval: true`: the same text works from the
 * TypeScript sources (tests), the esbuild bundle (receiver/dist) and anywhere else, with no second
 * file to ship or resolve. It loads the very better-sqlite3 the main thread resolved.
 */
import { Worker } from 'node:worker_threads';
import type { Statement } from 'better-sqlite3';
import type { SqlReader } from '../admin/queries';
import type { Db } from '../db/open';
import { ReceiverError } from '../errors';

/** Queries waiting for the workers beyond this are refused at once (a dashboard page makes ~20). */
export const MAX_QUEUED_QUERIES = 256;
/**
 * Reader threads of a file database. Two: on two cores a page's heaviest read split in two shares
 * finishes in about half the time, and /health under view load measured no worse than with one
 * thread (docs/bench.md, "SQLite views, session 6"). Each costs a V8 isolate and its page cache.
 */
export const VIEW_THREADS = 2;
/** Page cache of each reader connection, KiB (SQLite's default is 2,000): every 30- or 90-day page
 * walks the running sums' b-tree again (29 MB at 1,000 users × 90 days). */
const READER_CACHE_KIB = 32 * 1024;
/** Prepared statements kept by the worker; the dashboard's SQL is a fixed set far below this. */
const MAX_PREPARED = 512;
const BUSY_TIMEOUT_MILLIS = 5_000;
/** Bound of the test hook's wait, so a test that never lets go still ends. */
const HOLD_MAX_MILLIS = 20_000;

export interface SqliteReaderOptions {
  /** `inline`: on the calling thread (default for `:memory:`); `worker`: worker threads. */
  mode?: 'worker' | 'inline';
  /** Worker threads (VIEW_THREADS); each starts on first use, when the others are busy. */
  threads?: number;
  maxQueued?: number;
  /**
   * Test hook: before each query the reader's thread blocks (Atomics.wait) while
   * `Int32Array(hold)[0]` is 0, at most HOLD_MAX_MILLIS: a view query that takes as long as the
   * test likes, with no timing involved. Inline, that blocks the main thread, as slow SQL would.
   * A buffer of two Int32s counts in `[1]` the queries that have reached the hold (in a pool of
   * threads, how many are inside a query at once while it is closed).
   */
  hold?: SharedArrayBuffer;
}

export interface ClosableSqlReader extends SqlReader {
  readonly kind: 'worker' | 'inline';
  /** Worker threads: the queries sent to each and not yet answered. */
  readonly waitingPerThread?: number[];
  close(): Promise<void>;
}

/** The reader for `db`: worker threads over its file, or inline where no other connection can see it. */
export function openSqlReader(db: Db, options: SqliteReaderOptions = {}): ClosableSqlReader {
  const mode = options.mode ?? (db.memory ? 'inline' : 'worker');
  // Without CJS `require` (an ESM bundle) the worker could not load the driver this process uses.
  if (mode === 'inline' || db.memory || typeof require !== 'function') return inlineReader(db, options.hold);
  return new ReaderPool(db.name, options);
}

/** Runs each text prepared once on this connection, on the calling thread. */
export function inlineReader(db: Db, hold?: SharedArrayBuffer): ClosableSqlReader {
  const cache = new Map<string, Statement>();
  return {
    kind: 'inline',
    async all(sql, params) {
      if (hold !== undefined) waitOnHold(new Int32Array(hold), HOLD_MAX_MILLIS);
      let stmt = cache.get(sql);
      if (stmt === undefined) {
        stmt = db.prepare(sql);
        cache.set(sql, stmt);
      }
      return (params === undefined ? stmt.all() : stmt.all(params)) as Record<string, unknown>[];
    },
    async close() {},
  };
}

/** The test hook's wait; once it has timed out the hold is open for good (one stall, not one per query). */
function waitOnHold(flag: Int32Array, maxMillis: number): void {
  if (flag.length > 1) Atomics.add(flag, 1, 1);
  if (Atomics.wait(flag, 0, 0, maxMillis) === 'timed-out') Atomics.store(flag, 0, 1);
}

const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.busyTimeoutMillis);
db.pragma('query_only = ON');
db.pragma('cache_size = -' + workerData.cacheKib);
const hold = workerData.hold ? new Int32Array(workerData.hold) : null;
const statements = new Map();
parentPort.on('message', (m) => {
  try {
    if (hold !== null) {
      if (hold.length > 1) Atomics.add(hold, 1, 1);
      if (Atomics.wait(hold, 0, 0, workerData.holdMaxMillis) === 'timed-out') Atomics.store(hold, 0, 1);
    }
    let stmt = statements.get(m.sql);
    if (stmt === undefined) {
      if (statements.size >= workerData.maxPrepared) statements.clear();
      stmt = db.prepare(m.sql);
      statements.set(m.sql, stmt);
    }
    parentPort.postMessage({ id: m.id, rows: m.params === undefined ? stmt.all() : stmt.all(m.params) });
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: { message: String(err && err.message), code: err && err.code } });
  }
});
`;

interface Pending {
  resolve(rows: Record<string, unknown>[]): void;
  reject(err: Error): void;
}

type Answer = { id: number; rows: Record<string, unknown>[] } | { id: number; error: { message: string; code?: string } };

/** The better-sqlite3 this process loaded (tests run the sources, the receiver its bundle: both have CJS `require`). */
function driverPath(): string {
  return require.resolve('better-sqlite3');
}

/**
 * The worker threads of one database: each query goes to the thread with the fewest queries
 * waiting (the first on a tie), so a CLI command's one-at-a-time reads start one thread only and a
 * dashboard page's reads spread over all. A share of a split statement (an integer `shard`
 * parameter, admin/queries.ts) goes to thread `shard % threads` instead, so the shares of one
 * statement never queue behind each other while another thread idles. The queue bound is the pool's.
 */
class ReaderPool implements ClosableSqlReader {
  readonly kind = 'worker' as const;
  readonly parallel: number;
  private readonly readers: WorkerReader[];
  private closed = false;
  private readonly maxQueued: number;

  constructor(path: string, options: SqliteReaderOptions) {
    this.parallel = Math.max(1, Math.floor(options.threads ?? VIEW_THREADS));
    this.maxQueued = options.maxQueued ?? MAX_QUEUED_QUERIES;
    this.readers = Array.from({ length: this.parallel }, () => new WorkerReader(path, options));
  }

  all(sql: string, params?: Record<string, unknown>): Promise<Record<string, unknown>[]> {
    if (this.closed) return Promise.reject(new ReceiverError('database', 'the database is closed'));
    let least = this.readers[0]!;
    let waiting = 0;
    for (const r of this.readers) {
      waiting += r.waiting;
      if (r.waiting < least.waiting) least = r;
    }
    const shard = params?.shard;
    if (typeof shard === 'number' && Number.isInteger(shard) && shard >= 0) least = this.readers[shard % this.readers.length]!;
    if (waiting >= this.maxQueued) {
      // SQLITE_BUSY's code: the server answers it 503 with Retry-After, like a locked database.
      const busy = Object.assign(new Error(`too many view queries waiting (${this.maxQueued}); try again shortly`), { code: 'SQLITE_BUSY' });
      return Promise.reject(busy);
    }
    return least.all(sql, params);
  }

  /** Queries sent and not yet answered, per thread (tests, diagnostics). */
  get waitingPerThread(): number[] {
    return this.readers.map((r) => r.waiting);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.readers.map((r) => r.close()));
  }
}

/**
 * One worker, started on first use and again after it dies. It is referenced only while queries
 * are pending, so an idle reader never keeps the process alive, and a CLI command awaiting an
 * answer is not cut short.
 */
class WorkerReader {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly options: SqliteReaderOptions,
  ) {}

  /** Queries sent and not yet answered. */
  get waiting(): number {
    return this.pending.size;
  }

  all(sql: string, params?: Record<string, unknown>): Promise<Record<string, unknown>[]> {
    if (this.closed) return Promise.reject(new ReceiverError('database', 'the database is closed'));
    const worker = this.started();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, sql, params });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.failAll(new ReceiverError('database', 'the database was closed while a view query ran'));
    if (worker !== undefined) await worker.terminate();
  }

  private started(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver: driverPath(),
        path: this.path,
        busyTimeoutMillis: BUSY_TIMEOUT_MILLIS,
        maxPrepared: MAX_PREPARED,
        holdMaxMillis: HOLD_MAX_MILLIS,
        cacheKib: READER_CACHE_KIB,
        hold: this.options.hold,
      },
    });
    worker.unref();
    worker.on('message', (answer: Answer) => this.settle(answer));
    const fail = (err: Error): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.failAll(new ReceiverError('database', `the view reader stopped: ${err.message}`, { cause: err }));
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private settle(answer: Answer): void {
    const waiting = this.pending.get(answer.id);
    if (waiting === undefined) return;
    this.pending.delete(answer.id);
    if (this.pending.size === 0) this.worker?.unref();
    if ('rows' in answer) waiting.resolve(answer.rows);
    else waiting.reject(Object.assign(new Error(answer.error.message), answer.error.code === undefined ? {} : { code: answer.error.code }));
  }

  private failAll(err: Error): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(err);
  }
}
