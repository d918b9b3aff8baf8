/**
 * A real PostgreSQL server for tests (never a mock): Debian's PostgreSQL 15 binaries, a scratch
 * data dir under os.tmpdir(), loopback only, password authentication (scram), fsync off (test
 * data is disposable). As root the server runs as the `postgres` user (`runuser -u postgres`),
 * otherwise as the current user.
 *
 * `test/pg-setup.ts` (a vitest globalSetup) starts one server per test run and exports its admin
 * URL as CCFLUX_TEST_PG_URL; each test takes a fresh database from it with `freshDatabase()`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './ports';

export const PG_BIN = process.env.CCFLUX_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const START_TIMEOUT_MILLIS = 30_000;

export function postgresAvailable(): boolean {
  return existsSync(join(PG_BIN, 'initdb')) && existsSync(join(PG_BIN, 'postgres'));
}

/** Why PostgreSQL tests are skipped here, for the skip message. */
export const PG_MISSING = `PostgreSQL binaries not found in ${PG_BIN} (apt-get install postgresql, or set CCFLUX_PG_BIN); .ci/run installs them`;

export interface PostgresServer {
  /** Superuser URL of the `postgres` database (password included: tests only). */
  adminUrl: string;
  port: number;
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<PostgresServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ccflux-pg-'));
  const data = join(dir, 'data');
  const password = randomBytes(12).toString('hex');
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  const asRoot = process.getuid?.() === 0;
  let ids: { uid: number; gid: number } | undefined;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    ids = { uid, gid };
    chownSync(dir, uid, gid);
    chownSync(pwfile, uid, gid);
    chmodSync(dir, 0o700);
  }
  const run = (bin: string, args: string[]): string[] => (asRoot ? ['runuser', '-u', 'postgres', '--', join(PG_BIN, bin), ...args] : [join(PG_BIN, bin), ...args]);
  const [initCmd, ...initArgs] = run('initdb', ['-D', data, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C.UTF-8']);
  execFileSync(initCmd!, initArgs, { stdio: 'pipe' });
  const port = await freePort();
  // The server itself runs as postgres (spawn's uid/gid, not through runuser): it is then our
  // direct child, and the SIGINT of stop() reaches it.
  const args = [
    '-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1',
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200',
  ];
  const child: ChildProcess = spawn(join(PG_BIN, 'postgres'), args, { stdio: ['ignore', 'ignore', 'pipe'], ...ids });
  // If the test runner dies without its teardown, the server goes with it.
  const killOnExit = () => child.kill('SIGINT');
  process.once('exit', killOnExit);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    stderr = (stderr + c).slice(-4000);
  });
  const adminUrl = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + START_TIMEOUT_MILLIS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres exited ${child.exitCode}: ${stderr}`);
    const client = new pg.Client({ connectionString: adminUrl });
    try {
      await client.connect();
      await client.end();
      break;
    } catch {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw new Error(`postgres did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    adminUrl,
    port,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGINT'); // fast shutdown
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The run's server (from test/pg-setup.ts), or undefined when PostgreSQL is not installed. */
export function testPgAdminUrl(): string | undefined {
  const url = process.env.CCFLUX_TEST_PG_URL;
  return url === undefined || url === '' ? undefined : url;
}

async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A new empty database on the run's server (`dropDatabase` removes it). */
export async function freshDatabase(adminUrl = testPgAdminUrl()): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  if (adminUrl === undefined) throw new Error(PG_MISSING);
  const name = `ccflux_t_${randomBytes(6).toString('hex')}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`); // name is ours: hex only
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), name, drop: () => adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/**
 * A new empty schema in the run's shared test database, and a URL whose connections use it
 * (`options=-c search_path=…`): much cheaper than a database per test, equally isolated.
 */
export async function freshSchema(adminUrl = testPgAdminUrl()): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  if (adminUrl === undefined) throw new Error(PG_MISSING);
  const base = new URL(adminUrl);
  base.pathname = '/ccflux_tests';
  const name = `t_${randomBytes(6).toString('hex')}`;
  await adminQuery(adminUrl, 'CREATE DATABASE ccflux_tests').catch((err: { code?: string }) => {
    if (err.code !== '42P04' && err.code !== '23505') throw err; // exists (or created concurrently)
  });
  await adminQuery(base.toString(), `CREATE SCHEMA ${name}`);
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${name}`);
  return { url: url.toString(), name, drop: () => adminQuery(base.toString(), `DROP SCHEMA IF EXISTS ${name} CASCADE`) };
}
