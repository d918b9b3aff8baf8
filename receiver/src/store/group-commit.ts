/**
 * Group commit for the SQLite store: the writes of concurrent requests (a report's rows and
 * rollups, a rate-limit count) that reach the store in the same turn of the event loop share one
 * `BEGIN IMMEDIATE … COMMIT`, run on the next `setImmediate`. A commit costs more than the
 * statements of one report (the WAL frames of every page it touched), and concurrent reports
 * touch many of the same pages, so one commit for all of them is most of the saving.
 *
 * - Each write runs in its own savepoint (or, when it is one statement, in that statement, which
 *   SQLite applies whole or not at all): one that throws is rolled back alone and only its
 *   caller gets the error; the others are committed.
 * - A caller's promise settles only after the COMMIT that holds its write returned: a 200 still
 *   means stored durably (WAL, as durable as one commit per report was).
 * - When the transaction as a whole fails (BEGIN or COMMIT: the database is busy past its
 *   timeout, the disk is full, or an error that makes SQLite roll back the whole transaction),
 *   nothing of the batch is stored and every caller gets that error (503 or 500, the device
 *   retries).
 * - A batch holds at most `maxBatch` writes, so one flush never holds the event loop for long;
 *   the rest go in the next.
 */
import type { Transaction } from 'better-sqlite3';
import type { Db } from '../db/open';

/** Writes per transaction at most: a report is ~20 statements, so a full batch is a few ms. */
export const MAX_GROUP_COMMIT_WRITES = 256;

interface Job {
  work: () => unknown;
  /** One write statement at most: atomic on its own (SQLite undoes a failed statement), no savepoint. */
  single: boolean;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; err: unknown };

export class GroupCommit {
  private queue: Job[] = [];
  private scheduled = false;
  private readonly batch: Transaction<(jobs: Job[]) => Outcome[]>;

  constructor(
    db: Db,
    private readonly maxBatch = MAX_GROUP_COMMIT_WRITES,
  ) {
    // Called inside the outer transaction, better-sqlite3 runs this one as a savepoint.
    const inSavepoint = db.transaction((work: () => unknown) => work());
    this.batch = db.transaction((jobs: Job[]) =>
      jobs.map((job): Outcome => {
        try {
          return { ok: true, value: job.single ? job.work() : inSavepoint(job.work) };
        } catch (err) {
          // Some errors (SQLITE_FULL, SQLITE_IOERR, …) end the whole transaction: what the
          // batch wrote so far is gone, so it must fail as a whole rather than go on outside it.
          if (!db.inTransaction) throw err;
          return { ok: false, err };
        }
      }),
    );
  }

  /**
   * Runs `work` (synchronous store statements) in the next group transaction; settles after its
   * COMMIT. `single`: the work writes with one statement at most (reads aside), which SQLite
   * applies whole or not at all, so it needs no savepoint of its own.
   */
  run<T>(work: () => T, single = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, single, resolve: resolve as (value: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Writes still waiting for their commit. */
  get pending(): number {
    return this.queue.length;
  }

  /** Commits what is queued (the timer does it; `close` calls it with `all` before the database closes). */
  flush(all = false): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const jobs = this.queue.splice(0, this.maxBatch);
      this.commit(jobs);
      // More than one batch waiting: give the event loop a turn between them.
      if (!all && this.queue.length > 0) {
        this.scheduled = true;
        setImmediate(() => this.flush());
        return;
      }
    }
  }

  private commit(jobs: Job[]): void {
    let outcomes: Outcome[];
    try {
      outcomes = this.batch.immediate(jobs);
    } catch (err) {
      for (const job of jobs) job.reject(err);
      return;
    }
    outcomes.forEach((o, i) => {
      const job = jobs[i] as Job;
      if (o.ok) job.resolve(o.value);
      else job.reject(o.err);
    });
  }
}
