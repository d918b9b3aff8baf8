/**
 * Shared harness for the receiver's tests: an in-process receiver on port 0 over a real database
 * — a SQLite file in a temp dir, or (CCFLUX_TEST_BACKEND=postgres, the `receiver-pg` vitest
 * project) a fresh database on the run's PostgreSQL server — an injectable clock, Ed25519
 * devices, and small request helpers.
 */
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  formatSignatureHeader,
  formatTimestamp,
  type ReportBody,
  signingMessage,
} from '../../src/protocol/wire';
import { parseConfig, type ReceiverConfig } from '../src/config';
import { type Db, openDatabase } from '../src/db/open';
import { createReceiver, type Receiver } from '../src/server';
import { PostgresStore, SqliteStore, type Store } from '../src/store';
import { freshSchema, PG_MISSING, testPgAdminUrl } from '../../test/helpers/postgres';

export type Backend = 'sqlite' | 'postgres';
/** The backend this test process runs the receiver suite against. */
export const BACKEND: Backend = process.env.CCFLUX_TEST_BACKEND === 'postgres' ? 'postgres' : 'sqlite';
export const ON_POSTGRES = BACKEND === 'postgres';

/** A store on a fresh database of `backend`, and how to remove it. */
export async function freshStore(
  backend: Backend,
  now: () => Date,
  options: ConstructorParameters<typeof SqliteStore>[2] = {},
  sqlite: { dbPath?: string; prepare?: (dbPath: string) => void } = {},
): Promise<{ store: Store; db: Db | undefined; dbPath: string; dispose(): Promise<void> }> {
  if (backend === 'postgres') {
    if (sqlite.prepare !== undefined) throw new Error('this test prepares a SQLite file: SQLite only');
    if (testPgAdminUrl() === undefined) throw new Error(PG_MISSING);
    const database = await freshSchema();
    const store = await PostgresStore.open(database.url, now, { ...options, poolMax: 4 });
    return {
      store,
      db: undefined,
      dbPath: database.url,
      async dispose() {
        await store.close().catch(() => {});
        await database.drop();
      },
    };
  }
  const { dir, cleanup } = tempDir();
  const dbPath = sqlite.dbPath ?? join(dir, 'ccflux.db');
  sqlite.prepare?.(dbPath);
  const db = openDatabase(dbPath, { notice: () => {}, now });
  const store = new SqliteStore(db, now, options);
  return {
    store,
    db,
    dbPath,
    async dispose() {
      await store.close();
      cleanup();
    },
  };
}

/** Runs `sql` (with `?` placeholders) on either backend; plain row objects. */
export async function sqlRows(store: Store, sql: string, ...params: unknown[]): Promise<Record<string, unknown>[]> {
  if (store instanceof PostgresStore) {
    let n = 0;
    return (await store.pool.query(sql.replace(/\?/g, () => `$${++n}`), params)).rows;
  }
  return (store as SqliteStore).db.prepare(sql).all(...params) as Record<string, unknown>[];
}

export class Clock {
  ms: number;
  constructor(start = Date.parse('2026-05-11T03:00:00.000Z')) {
    this.ms = start;
  }
  now = (): Date => new Date(this.ms);
  advance(ms: number): void {
    this.ms += ms;
  }
}

export function tempDir(prefix = 'ccflux-receiver-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestReceiver {
  url: string;
  port: number;
  dir: string;
  /** The SQLite file, or the PostgreSQL URL. */
  dbPath: string;
  /** The SQLite handle (undefined on PostgreSQL: tests that need it skip there). */
  db: Db;
  config: ReceiverConfig;
  receiver: Receiver;
  store: Store;
  clock: Clock;
  /** Closes server and database, removes the temp dir. */
  close(): Promise<void>;
}

export async function startInProcess(
  options: { env?: Record<string, string>; clock?: Clock; /** writes the database file first */ prepare?: (dbPath: string) => void } = {},
): Promise<TestReceiver> {
  const { dir, cleanup } = tempDir();
  const parsed = parseConfig({ DATABASE_PATH: join(dir, 'ccflux.db'), LISTEN_ADDR: '127.0.0.1:0', ...options.env });
  if (!parsed.ok) throw new Error(`bad test config: ${parsed.errors.join('; ')}`);
  const clock = options.clock ?? new Clock();
  const fresh = await freshStore(BACKEND, clock.now, {
    accessTokenExpirySecs: parsed.config.accessTokenExpirySecs,
    refreshTokenRollingDays: parsed.config.refreshTokenRollingDays,
  }, { dbPath: join(dir, 'ccflux.db'), ...(options.prepare ? { prepare: options.prepare } : {}) });
  const { store, dbPath } = fresh;
  const db = fresh.db as Db;
  const receiver = createReceiver({ config: parsed.config, store, now: clock.now });
  const address = await receiver.listen();
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    dir,
    dbPath,
    db,
    config: parsed.config,
    receiver,
    store,
    clock,
    async close() {
      await receiver.close();
      await fresh.dispose();
      cleanup();
    },
  };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

/**
 * One HTTP request over a fresh connection (no pooling, so a test's early answer and closed
 * connection cannot leak into the next request).
 */
export function send(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[] } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const headers: Record<string, string> = { ...options.headers };
    // JSON endpoints answer 415 without it; a test about Content-Type sets its own (or '').
    if ((body !== undefined || options.chunks !== undefined) && headers['content-type'] === undefined) {
      headers['content-type'] = 'application/json';
    }
    if (headers['content-type'] === '') delete headers['content-type'];
    if (body !== undefined && headers['content-length'] === undefined && options.chunks === undefined) {
      headers['content-length'] = String(body.length);
    }
    const req = request(url, { method: options.method ?? 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.chunks) {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    } else {
      req.end(body);
    }
  });
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export function makeReport(overrides: Partial<ReportBody> = {}): ReportBody {
  return {
    schema_version: 1,
    session_id: '4b0c5f6e-5d7a-4a8e-9d1e-2f3a4b5c6d7e',
    user_email: 'laptop-user@example.org',
    turn_index: 0,
    timestamp_utc: '2026-05-11T02:59:00Z',
    session_start_utc: '2026-05-11T02:30:00Z',
    models: {
      'claude-sonnet-4-6': { input_tokens: 14200, output_tokens: 1800, cache_read_tokens: 9400, cache_write_tokens: 0 },
    },
    plugin_version: '0.1.0',
    ...overrides,
  };
}

export interface Device {
  publicKey: string;
  privateKey: KeyObject;
  /** Headers for a signed request of `body` sent at `at`. */
  sign(body: string | Buffer, at: Date): Record<string, string>;
}

export function makeDevice(): Device {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = (publicKey.export({ format: 'der', type: 'spki' }) as Buffer).subarray(-32);
  return {
    publicKey: raw.toString('base64'),
    privateKey,
    sign(body, at) {
      const timestamp = formatTimestamp(at);
      const signature = sign(null, signingMessage(body, timestamp), privateKey);
      return {
        'x-ccflux-timestamp': timestamp,
        'x-ccflux-signature': formatSignatureHeader(signature, raw),
      };
    },
  };
}

/** Provisions `email`, exchanges its refresh token, and returns both tokens. */
export async function provision(
  t: TestReceiver,
  email: string,
): Promise<{ refreshToken: string; accessToken: string }> {
  const { refreshToken } = await t.store.createUser(email, {});
  const answer = await send(`${t.url}/token`, { headers: bearer(refreshToken) });
  if (answer.status !== 200) throw new Error(`token exchange failed: ${answer.status} ${answer.text}`);
  return { refreshToken, accessToken: (answer.json as { access_token: string }).access_token };
}

export async function registerKey(t: TestReceiver, accessToken: string, device: Device, deviceId = 'laptop-1'): Promise<Answer> {
  return send(`${t.url}/register-key`, {
    headers: { ...bearer(accessToken), 'content-type': 'application/json' },
    body: JSON.stringify({ public_key: device.publicKey, device_id: deviceId }),
  });
}

/** POSTs a report; signed by `device` at the clock's time unless `unsigned`. */
export async function postReport(
  t: TestReceiver,
  accessToken: string,
  body: ReportBody | string,
  device?: Device,
  extraHeaders: Record<string, string> = {},
): Promise<Answer> {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const signed = device ? device.sign(text, t.clock.now()) : {};
  return send(`${t.url}/report`, {
    headers: { ...bearer(accessToken), 'content-type': 'application/json', ...signed, ...extraHeaders },
    body: text,
  });
}

export async function usageRows(t: TestReceiver): Promise<Record<string, unknown>[]> {
  return sqlRows(t.store, 'SELECT * FROM usage_events ORDER BY id');
}
