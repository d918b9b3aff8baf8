/**
 * `migrate`: brings the configured database to this release's schema (what `serve` also does at
 * start), or with `--from sqlite:PATH --to postgres://…` copies a SQLite receiver's data into an
 * empty PostgreSQL database (the move from one machine to several instances; docs/deploy.md).
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { openDatabase } from '../db/open';
import { createPool, migratePostgres, schemaVersion } from '../db/postgres';
import { SCHEMA_VERSION } from '../db/schema';
import { PG_SCHEMA_VERSION } from '../db/schema-postgres';
import { isPostgresUrl, redactUrl } from '../db/url';
import { ReceiverError } from '../errors';
import { copySqliteToPostgres } from '../store/copy';
import { loadConfig } from './shared';
import { type CommandSpec, EXIT } from './types';

export const migrateCommand: CommandSpec = {
  name: 'migrate',
  register(program, ctx, act) {
    program
      .command('migrate')
      .description('apply schema migrations to the configured database, or copy a SQLite receiver into PostgreSQL')
      .option('--from <source>', 'sqlite:PATH — a SQLite receiver database to copy from (read-only)')
      .option('--to <url>', 'postgres://… — an empty PostgreSQL database to copy into (migrated first)')
      .addHelpText(
        'after',
        `
Without options: migrates DATABASE_URL (PostgreSQL) or DATABASE_PATH (SQLite) to schema version
${SCHEMA_VERSION}. serve does the same at start; run it yourself to migrate with an owner role
while serve runs with a role that cannot create tables.

Examples:
  DATABASE_URL=postgres://ccflux_owner@db/ccflux ccflux-receiver migrate
  ccflux-receiver migrate --from sqlite:/var/lib/ccflux/ccflux.db --to postgres://ccflux_owner@db/ccflux`,
      )
      .action((opts: { from?: string; to?: string }) =>
        act(async () => {
          if (opts.from !== undefined || opts.to !== undefined) return copy(opts.from, opts.to);
          const config = loadConfig(ctx);
          if (config.databaseUrl !== undefined) {
            const pool = createPool(config.databaseUrl, { max: 1 });
            try {
              const applied = await migratePostgres(pool, config.databaseUrl);
              ctx.output.err(describeApplied(applied, redactUrl(config.databaseUrl), PG_SCHEMA_VERSION));
            } finally {
              await pool.end();
            }
            return EXIT.ok;
          }
          const before = existsSync(config.databasePath) ? sqliteVersion(config.databasePath) : 0;
          openDatabase(config.databasePath).close();
          const applied = Array.from({ length: SCHEMA_VERSION - before }, (_, i) => before + i + 1);
          ctx.output.err(describeApplied(applied, config.databasePath, SCHEMA_VERSION));
          return EXIT.ok;
        }),
      );

    async function copy(from: string | undefined, to: string | undefined): Promise<number> {
      if (from === undefined || !from.startsWith('sqlite:') || from.length === 'sqlite:'.length) {
        throw new ReceiverError('invalid', '--from must be sqlite:PATH (the SQLite receiver database)');
      }
      if (to === undefined || !isPostgresUrl(to)) throw new ReceiverError('invalid', '--to must be a postgres:// URL');
      const path = from.slice('sqlite:'.length);
      if (!existsSync(path)) throw new ReceiverError('invalid', `no SQLite database at ${path}`);
      // Bring the source to this release's schema first, so both sides have the same columns.
      openDatabase(path).close();
      const source = new Database(path, { readonly: true, fileMustExist: true });
      const pool = createPool(to, { max: 2 });
      try {
        await migratePostgres(pool, to);
        const client = await pool.connect();
        try {
          if ((await schemaVersion(client)) !== PG_SCHEMA_VERSION) throw new ReceiverError('database', 'target schema did not migrate');
        } finally {
          client.release();
        }
        const counts = await copySqliteToPostgres(source, pool, (table, done, total) => {
          ctx.output.err(`  ${table}: ${done}/${total} rows`);
        });
        ctx.output.err(`copied ${path} into ${redactUrl(to)}:`);
        for (const [table, n] of Object.entries(counts)) ctx.output.out(`${table}\t${n}`);
        ctx.output.err('Next: point DATABASE_URL at it, start the instances, then retire the SQLite file (keep a backup).');
      } finally {
        source.close();
        await pool.end();
      }
      return EXIT.ok;
    }
  },
};

function sqliteVersion(path: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

function describeApplied(applied: number[], where: string, latest: number): string {
  if (applied.length === 0) return `${where}: already at schema version ${latest}, nothing to do`;
  return `${where}: applied migration${applied.length === 1 ? '' : 's'} ${applied.join(', ')}; now at schema version ${latest}`;
}
