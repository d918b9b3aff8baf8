/**
 * Runs the dashboard's SQL (`admin/queries.ts`, written for SQLite with `@name` parameters) on
 * PostgreSQL. The translation is textual and covers exactly the spellings that SQL uses; the
 * receiver-pg test project runs every view through it, so a new spelling fails a test rather
 * than a user:
 * - `@name` → `$n` (each name once, in order of first use), values from the params object,
 *   `@name IS NULL` typed as text;
 * - `TOTAL(x)` stays: migration 4 defines a `total` aggregate (float8 sum, 0 for no rows);
 * - `GROUP_CONCAT(DISTINCT x)` → `string_agg(DISTINCT x, ',')`;
 * - `json_each(@x) j` (rows of a JSON array parameter, read as `j.value`) →
 *   `json_array_elements_text(CAST(@x AS json)) AS j(value)`;
 * - `pragma_table_info('t')` → information_schema for the current schema;
 * - mixed-case aliases and `user` are quoted, so rows keep the keys the code reads.
 */
import type pg from 'pg';
import { type SqlReader, USAGE_SHARDS } from '../admin/queries';
import { DEFAULT_POOL_MAX } from '../db/postgres';

const cache = new Map<string, { text: string; names: string[] }>();

export function translate(sql: string): { text: string; names: string[] } {
  const hit = cache.get(sql);
  if (hit !== undefined) return hit;
  const names: string[] = [];
  const lists = sql.replace(/json_each\((@\w+)\) (\w+)/g, (_, param: string, alias: string) => `json_array_elements_text(CAST(${param} AS json)) AS ${alias}(value)`);
  // `@x IS NULL` alone cannot type its parameter in PostgreSQL: the optional filters are text.
  let text = lists.replace(/@([A-Za-z_]\w*)( IS NULL)?/g, (_, name: string, isNull: string | undefined) => {
    let i = names.indexOf(name);
    if (i < 0) i = names.push(name) - 1;
    return isNull === undefined ? `$${i + 1}` : `$${i + 1}::text IS NULL`;
  });
  text = text
    .replace(/GROUP_CONCAT\(\s*(DISTINCT\s+)?([^()]+?)\s*\)/gi, (_, d: string | undefined, x: string) => `string_agg(${d ?? ''}${x}, ',')`)
    .replace(
      /SELECT name FROM pragma_table_info\('(\w+)'\)/g,
      "SELECT column_name AS name FROM information_schema.columns WHERE table_name = '$1' AND table_schema = current_schema()",
    )
    .replace(/(?<![.\w"])user(?![\w"])/g, '"user"');
  // A mixed-case alias is quoted where it is declared and wherever else it is named (ORDER BY
  // lastAt): unquoted, PostgreSQL folds it to lower case and finds no such column.
  const aliases = new Set<string>();
  text = text.replace(/\bAS ([a-z]+[A-Z]\w*)/g, (_, alias: string) => {
    aliases.add(alias);
    return `AS "${alias}"`;
  });
  for (const alias of aliases) text = text.replace(new RegExp(`(?<![.\\w"])${alias}(?![\\w"])`, 'g'), `"${alias}"`);
  const out = { text, names };
  cache.set(sql, out);
  return out;
}

/**
 * Runs view SQL on the pool. A dashboard sends all its statements at once; `maxInFlight` caps how
 * many of them (from every view of this reader) hold a connection together, so the rest of the
 * pool stays free for /health, ingest and logins instead of queueing behind a page's reads.
 */
export function pgReader(pool: pg.Pool, maxInFlight = Number.POSITIVE_INFINITY): SqlReader {
  let running = 0;
  const waiting: (() => void)[] = [];
  const turn = async (): Promise<void> => {
    if (running < maxInFlight) {
      running++;
      return;
    }
    // The finishing statement hands its place over (running stays the same).
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const done = (): void => {
    const next = waiting.shift();
    if (next === undefined) running--;
    else next();
  };
  return {
    dialect: 'postgres',
    async all(sql, params = {}) {
      const { text, names } = translate(sql);
      const values = names.map((n) => params[n] ?? null);
      await turn();
      try {
        return (await pool.query(text, values)).rows;
      } finally {
        done();
      }
    },
  };
}

/**
 * The most view statements that run at once on one instance: the usage statement's shards
 * (`USAGE_SHARDS`), whatever the pool. Each running statement is a backend busy on one of the
 * database's cores; more of them make a page no faster (its other statements are short) but leave
 * /health's ping and ingest waiting for a core. Measured with PostgreSQL on the receiver's 2 cores
 * (docs/bench.md, "PostgreSQL /health, session 6"): five at once, /health p99 24–26 ms while views
 * load; two, 16–17 ms and the same page times; one, 9–11 ms but the 30-day overview over 200 ms.
 */
export const VIEW_STATEMENTS = USAGE_SHARDS;

/** How many view statements may hold a connection at once: `VIEW_STATEMENTS`, and never more
 * than half the pool (at least one), so the rest stays free for /health, ingest and logins. */
export function viewSlots(poolMax: number | undefined): number {
  return Math.max(1, Math.min(VIEW_STATEMENTS, Math.floor((poolMax ?? DEFAULT_POOL_MAX) / 2)));
}
