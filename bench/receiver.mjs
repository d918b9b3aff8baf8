#!/usr/bin/env node
// The receiver at an organisation's scale (issues 11 and 13), on SQLite and on PostgreSQL:
//
//   node bench/receiver.mjs [--quick] [--users 1000] [--days 90] [--turns 3] [--view-runs 7]
//                           [--backends sqlite,postgres] [--parts views,health,ingest]
//                           [--view-timeout 20] [--pg-fill copy|insert] [--keep-data] [--json]
//
// 1. Data: bench/receiver-data.ts (bundled with esbuild) writes 1,000 users × 90 days of usage
//    through the receiver's own store into a SQLite file and into a throwaway PostgreSQL server
//    (loopback, temp data dir; skipped with a line saying why when PostgreSQL is not installed).
// 2. Views: the built receiver (receiver/dist/ccflux-receiver.cjs serve) on each database, logged
//    in as admin through the form; first byte (server time as the client sees it), full answer
//    and page size per dashboard view, interleaved with a bare node:http server (the floor).
// 3. /health latency, p50/p99, while one client loads views back to back, next to idle.
// 4. Ingest: signed reports/s from 16 keep-alive clients, SQLite one instance, PostgreSQL one,
//    two and three instances on one database (clients spread round-robin, no proxy), and the bare
//    node:http floor; short rounds, variants shuffled each round.
//
// Everything lives in one temp dir (ccflux-bench-receiver-*) removed at the end; --keep-data
// keeps the generated SQLite file in a cache dir keyed by generator version, sizes, day and the
// receiver's store/schema sources, and reuses it on the next run.
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { createRequire } from 'node:module';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { post } from './lib.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RECEIVER = join(ROOT, 'receiver', 'dist', 'ccflux-receiver.cjs');
const ADMIN_TOKEN = randomBytes(32).toString('hex');
const log = (msg) => process.stderr.write(`${msg}\n`);

export function receiverOptions(argv) {
  const flag = (name) => argv.includes(`--${name}`);
  const option = (name, fallback) => {
    const i = argv.indexOf(`--${name}`);
    return i === -1 ? fallback : argv[i + 1];
  };
  const quick = flag('quick');
  return {
    quick,
    users: Number(option('users', quick ? 300 : 1000)),
    days: Number(option('days', 90)),
    turns: Number(option('turns', quick ? 1.5 : 3)),
    runs: Number(option('view-runs', quick ? 3 : 7)),
    backends: new Set(option('backends', 'sqlite,postgres').split(',')),
    parts: new Set(option('parts', 'views,health,ingest').split(',')),
    viewTimeoutMs: Number(option('view-timeout', quick ? 10 : 20)) * 1000,
    healthSeconds: Number(option('health-seconds', quick ? 5 : 10)),
    ingestReports: Number(option('ingest-reports', quick ? 600 : 1500)),
    ingestRounds: Number(option('ingest-rounds', quick ? 2 : 4)),
    pgFill: option('pg-fill', 'copy'),
    keepData: flag('keep-data'),
    json: flag('json'),
  };
}

// ---- the generator, bundled --------------------------------------------------------------------

/** bench/receiver-data.ts as one ES module; the native and driver packages stay external, by
 * absolute path, so the bundle can live in a temp dir. */
async function loadGenerator(dir) {
  const { build } = await import('esbuild');
  const req = createRequire(join(ROOT, 'receiver', 'package.json'));
  const outfile = join(dir, 'receiver-data.mjs');
  await build({
    entryPoints: [join(ROOT, 'bench', 'receiver-data.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'warning',
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    plugins: [
      {
        name: 'external-by-path',
        setup(b) {
          b.onResolve({ filter: /^(better-sqlite3|pg|pino)$/ }, (args) => ({ path: req.resolve(args.path), external: true }));
        },
      },
    ],
  });
  return import(pathToFileURL(outfile).href);
}

/** What a cached SQLite file depends on: the generator and the receiver's store and schema code. */
function cacheKey(o, endDay) {
  const h = createHash('sha256');
  for (const dir of ['receiver/src/store', 'receiver/src/db', 'bench']) {
    for (const f of readdirSync(join(ROOT, dir)).sort()) if (f.endsWith('.ts')) h.update(f).update(readFileSync(join(ROOT, dir, f)));
  }
  return `${o.users}u-${o.days}d-${o.turns}t-${endDay}-${h.digest('hex').slice(0, 12)}`;
}

async function sqliteData(gen, o, base, endMs) {
  const key = cacheKey(o, new Date(endMs).toISOString().slice(0, 10));
  const cacheDir = join(tmpdir(), `ccflux-bench-data-v${gen.GENERATOR_VERSION}`);
  const cached = join(cacheDir, `${key}.db`);
  const summaryFile = `${cached}.json`;
  const path = join(base, 'views.db');
  if (o.keepData && existsSync(cached) && existsSync(summaryFile)) {
    cpSync(cached, path);
    log(`  SQLite: reusing ${cached}`);
    return { path, summary: JSON.parse(readFileSync(summaryFile, 'utf8')), cached };
  }
  const clock = { ms: endMs };
  const store = await gen.openBenchStore({ databasePath: path }, clock);
  const summary = await gen.generate(store, clock, { users: o.users, days: o.days, turnsPerDay: o.turns, endMs, seed: 11, concurrency: 1, log });
  await store.close();
  if (o.keepData) {
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    cpSync(path, `${cached}.tmp`);
    renameSync(`${cached}.tmp`, cached);
    writeFileSync(summaryFile, JSON.stringify(summary));
  }
  return { path, summary, cached: o.keepData ? cached : null };
}

/**
 * PostgreSQL gets the same organisation. `--pg-fill copy` (default): the SQLite file moved by the
 * documented migration path, `ccflux-receiver migrate --from sqlite:… --to postgres://…` (users,
 * tokens, keys, usage, rollups), then the audit log and budgets written through the store, which
 * that command does not copy. `--pg-fill insert`: every report through PostgresStore.insertReport,
 * 8 in flight (minutes: PostgreSQL's per-transaction cost on 2 cores).
 */
async function postgresData(gen, o, pgServer, endMs, sqlitePath) {
  const db = await gen.freshDatabase(pgServer.adminUrl);
  const clock = { ms: endMs };
  const t0 = performance.now();
  if (o.pgFill === 'insert') {
    const store = await gen.openBenchStore({ databaseUrl: db.url }, clock);
    const summary = await gen.generate(store, clock, { users: o.users, days: o.days, turnsPerDay: o.turns, endMs, seed: 11, concurrency: 8, log });
    await store.close();
    return { url: db.url, summary: { ...summary, fill: 'every report through PostgresStore.insertReport, 8 in flight' } };
  }
  const migrate = await run(process.execPath, [RECEIVER, 'migrate', '--from', `sqlite:${sqlitePath.path}`, '--to', db.url], { DATABASE_URL: db.url });
  if (migrate.code !== 0) throw new Error(`ccflux-receiver migrate --from sqlite: failed: ${migrate.err.slice(-2000)}`);
  const copiedSeconds = (performance.now() - t0) / 1000;
  const store = await gen.openBenchStore({ databaseUrl: db.url }, clock);
  const admin = await gen.generateAdmin(store, clock, { users: o.users, days: o.days, endMs, seed: 11 });
  await store.close();
  const seconds = +((performance.now() - t0) / 1000).toFixed(1);
  log(`  copied by ccflux-receiver migrate --from sqlite: in ${copiedSeconds.toFixed(0)} s; audit log and budgets through the store`);
  return { url: db.url, summary: { ...sqlitePath.summary, ...admin, seconds, fill: `the SQLite data copied by ccflux-receiver migrate --from sqlite: (${copiedSeconds.toFixed(0)} s), audit log and budgets through the store` } };
}

function run(file, args, env) {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.stderr.on('data', (c) => {
      err += c;
    });
    child.once('exit', (code) => resolve({ code, out, err }));
  });
}

// ---- processes and HTTP --------------------------------------------------------------------------

function startReceiver(env) {
  const child = spawn(process.execPath, [RECEIVER, 'serve'], {
    env: { ...process.env, LISTEN_ADDR: '127.0.0.1:0', RATE_LIMIT_PER_MINUTE: '1000000', ADMIN_TOKEN, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c) => {
    stderr = (stderr + c).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`receiver did not start: ${stderr}`)), 60_000);
    child.stdout.setEncoding('utf8').on('data', (c) => {
      out += c;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], stop: () => stopChild(child), stderr: () => stderr });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`receiver exited ${code}: ${stderr}`));
    });
  });
}

function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
}

/** A bare node:http server answering every request with a small page: the HTTP floor. */
async function startFloor() {
  const page = Buffer.from(`<!doctype html><title>floor</title>${'x'.repeat(2000)}`);
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': page.length });
      res.end(page);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stop: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(r);
      }),
  };
}

/**
 * One request: ms to the first byte of the answer (status line and headers arrive with it),
 * ms to the last byte, and its size. `firstByteOnly` stops reading after the first chunk of the
 * body (exports: a year of rows is not the point). Resolves { timedOut: true } after `timeoutMs`.
 */
function fetchTimed(url, { agent, headers = {}, method = 'GET', body, timeoutMs = 20_000, firstByteOnly = false } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let firstMs = null;
    const req = request(url, { method, agent, headers: body ? { ...headers, 'content-length': body.length } : headers }, (res) => {
      firstMs = performance.now() - t0;
      let bytes = 0;
      let done = false;
      res.on('data', (c) => {
        bytes += c.length;
        if (firstByteOnly && !done) {
          done = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode, firstMs: performance.now() - t0, totalMs: null, bytes: null, headers: res.headers });
          req.destroy();
        }
      });
      res.on('end', () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ status: res.statusCode, firstMs, totalMs: performance.now() - t0, bytes, headers: res.headers });
      });
      res.on('error', () => {});
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve({ timedOut: true, firstMs });
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      if (req.destroyed && firstMs !== null) return;
      reject(err);
    });
    req.end(body);
  });
}

async function login(url) {
  const body = Buffer.from(new URLSearchParams({ token: ADMIN_TOKEN }).toString());
  const res = await fetchTimed(`${url}/admin/login`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const cookie = res.headers?.['set-cookie']?.[0]?.split(';')[0];
  if (res.status !== 303 || !cookie) throw new Error(`admin login failed: ${res.status}`);
  return cookie;
}

function stats(values) {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  const r = (x) => Math.round(x * 10) / 10;
  return { n: s.length, median: r(median), p95: r(at(0.95)), p99: r(at(0.99)), max: r(s[s.length - 1]) };
}

let seed = 20261201;
function shuffled(items) {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

// ---- views -----------------------------------------------------------------------------------

/** Every dashboard view an admin opens, as URLs (the dashboard keeps all its state in the URL). */
function viewList(sample) {
  const enc = encodeURIComponent;
  return [
    ['overview, 24 h', '/admin/?range=24h'],
    ['overview, 7 d', '/admin/?range=7d'],
    ['overview, 30 d (default)', '/admin/'],
    ['overview, 90 d', '/admin/?range=90d'],
    [`overview, 30 d, division ${sample.divisions[0]}`, `/admin/?division=${enc(sample.divisions[0])}`],
    [`overview, 30 d, model ${sample.models[2]}`, `/admin/?model=${enc(sample.models[2])}`],
    ['usage by user, 90 d, page 5 by cost', '/admin/?view=usage&range=90d&byuser.sort=cost&byuser.page=5'],
    ['users, page 10', '/admin/?view=users&users.page=10'],
    ['users, search', '/admin/?view=users&users.q=ana'],
    ['device keys, page 5', '/admin/?view=keys&keys.page=5'],
    ['audit log, page 3', '/admin/?view=audit&audit.page=3'],
    ['inactive seats, 14 d', '/admin/?view=inactive&inactive=14'],
    ['5-hour windows, 30 d', '/admin/?view=windows'],
    ['events, page 2', '/admin/?view=events&events.page=2'],
    ['budgets', '/admin/?view=budgets'],
    ['user page, 30 d (heavy user)', `/admin/user?email=${enc(sample.heavyUser)}`],
    ['user page, 90 d', `/admin/user?email=${enc(sample.user)}&range=90d`],
    ['export usage.csv 30 d (first byte)', '/admin/export/usage.csv', true],
    ['export events.json 24 h (first byte)', '/admin/export/events.json?range=24h', true],
    ['export audit.csv (first byte)', '/admin/export/audit.csv', true],
  ].map(([label, path, firstByteOnly]) => ({ label, path: path.replace(/#.*$/, ''), firstByteOnly: firstByteOnly === true }));
}

/** A view slower than this after its first run is not run again (its one figure is enough). */
const SLOW_MS = 3000;

async function measureViews(o, receiver, floorUrl, views) {
  const receiverUrl = receiver.url;
  const cookie = await login(receiverUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const rows = views.map((v) => ({ ...v, first: [], total: [], bytes: [], status: new Set(), timedOut: 0, slow: false }));
  const floor = { label: 'bare node:http (floor)', first: [], total: [], bytes: [] };
  // One warm-up pass (compiles, fills caches), then `runs` rounds, shuffled.
  for (const v of rows) {
    const r = await fetchTimed(receiverUrl + v.path, { agent, headers: { cookie }, timeoutMs: o.viewTimeoutMs, firstByteOnly: v.firstByteOnly });
    if (r.timedOut) v.timedOut++;
    else if (r.status !== 200) {
      // A broken view is a finding, not a reason to stop: say so and keep measuring the others.
      v.error = `HTTP ${r.status}`;
      v.slow = true;
      const last = receiver.stderr().trim().split('\n').filter((l) => /error|warn/i.test(l)).pop();
      log(`  ${v.label}: HTTP ${r.status}${last ? `; receiver log: ${last.slice(0, 300)}` : ''}`);
    }
    else if (r.firstMs > SLOW_MS) {
      v.slow = true;
      v.first.push(r.firstMs);
      if (r.totalMs !== null) v.total.push(r.totalMs);
      if (r.bytes !== null) v.bytes.push(r.bytes);
    }
    if (r.timedOut) v.slow = true;
  }
  for (let round = 0; round < o.runs; round++) {
    for (const v of shuffled([...rows.filter((x) => !x.slow), floor])) {
      const url = v === floor ? `${floorUrl}/` : receiverUrl + v.path;
      const r = await fetchTimed(url, { agent, headers: { cookie }, timeoutMs: o.viewTimeoutMs, firstByteOnly: v.firstByteOnly === true });
      if (r.timedOut) {
        v.timedOut++;
        v.slow = true;
        continue;
      }
      v.first.push(r.firstMs);
      if (r.totalMs !== null) v.total.push(r.totalMs);
      if (r.bytes !== null) v.bytes.push(r.bytes);
    }
  }
  agent.destroy();
  const out = (v) => ({
    label: v.label,
    path: v.path,
    firstByte: stats(v.first),
    total: stats(v.total),
    kb: v.bytes.length ? Math.round(Math.max(...v.bytes) / 1024) : null,
    timedOut: v.timedOut,
    ...(v.error ? { error: v.error } : v.slow && !v.timedOut ? { note: `over ${SLOW_MS} ms: run once` } : {}),
  });
  return { views: rows.map(out), floor: out(floor) };
}

/** /health latency while one client loads the dashboard views back to back, and idle before. */
async function healthUnderLoad(o, receiverUrl, views) {
  const cookie = await login(receiverUrl);
  const probe = async (seconds) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const times = [];
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      const r = await fetchTimed(`${receiverUrl}/health`, { agent, timeoutMs: 30_000 });
      times.push(r.timedOut ? 30_000 : r.firstMs);
      await new Promise((res) => setTimeout(res, 10));
    }
    agent.destroy();
    return times;
  };
  const idle = await probe(Math.min(3, o.healthSeconds));
  let stop = false;
  let loaded = 0;
  const pages = views.filter((v) => !v.firstByteOnly);
  const loader = (async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; !stop; i++) {
      await fetchTimed(receiverUrl + pages[i % pages.length].path, { agent, headers: { cookie }, timeoutMs: o.viewTimeoutMs });
      loaded++;
    }
    agent.destroy();
  })();
  const busy = await probe(o.healthSeconds);
  stop = true;
  await loader;
  return { idle: stats(idle), underLoad: stats(busy), viewsLoaded: loaded, seconds: o.healthSeconds };
}

// ---- ingest ----------------------------------------------------------------------------------

/** Ingest users: reports from one organisation come from many users at once, and a report's
 * rollup rows are its user's, so one user for every client would measure row-lock queues. */
const INGEST_USERS = 16;

/** Provisions the ingest users with the receiver's own `users import`, exchanges each token and
 * registers a key per user; `signed` makes distinct signed reports spread over the users. */
async function ingestClient(env, url, dir) {
  const csv = join(dir, `ingest-users-${Date.now()}.csv`);
  const out = `${csv}.tokens`;
  writeFileSync(csv, `email,division\n${Array.from({ length: INGEST_USERS }, (_, i) => `ingest${i}@example.org,Bench`).join('\n')}\n`);
  const imported = await run(process.execPath, [RECEIVER, 'users', 'import', csv, '--out', out], env);
  if (imported.code !== 0) throw new Error(`users import: ${imported.err}`);
  const rows = readFileSync(out, 'utf8').trim().split(/\r?\n/).slice(1).map((l) => l.split(',').map((f) => f.trim()));
  const agent = new Agent({ keepAlive: false });
  const users = [];
  for (const row of rows) {
    const email = row[0];
    const refresh = row.at(-1);
    const exchange = await post(agent, `${url}/token`, { authorization: `Bearer ${refresh}` }, Buffer.alloc(0));
    const access = JSON.parse(exchange.body).access_token;
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('base64');
    const reg = await post(agent, `${url}/register-key`, { authorization: `Bearer ${access}`, 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ public_key: raw, device_id: 'bench' })));
    if (reg.status !== 200) throw new Error(`register-key: ${reg.status} ${reg.body}`);
    users.push({ email, access, raw, privateKey });
  }
  /** Distinct signed reports, signed now (well inside the 5-minute window), 2 models each. */
  const signed = (tag, count) =>
    Array.from({ length: count }, (_, i) => {
      const u = users[i % users.length];
      const n = Math.floor(i / users.length);
      const ts = `${new Date().toISOString().slice(0, 19)}Z`;
      const body = Buffer.from(
        JSON.stringify({
          schema_version: 2,
          session_id: `ingest-${tag}-${Math.floor(n / 50)}`,
          user_email: u.email,
          turn_index: n % 50,
          timestamp_utc: ts,
          session_start_utc: ts,
          models: {
            'claude-sonnet-4-6': { input_tokens: 14200 + i, output_tokens: 1800, cache_read_tokens: 9400, cache_write_tokens: 300, cache_write_5m_tokens: 300, cache_write_1h_tokens: 0, web_search_requests: 0 },
            'claude-haiku-4-5': { input_tokens: 120, output_tokens: 80, cache_read_tokens: 0, cache_write_tokens: 64 },
          },
          plugin_version: '0.2.0',
        }),
      );
      const signature = sign(null, Buffer.concat([body, Buffer.from(`\n${ts}`)]), u.privateKey).toString('base64');
      return { body, headers: { authorization: `Bearer ${u.access}`, 'content-type': 'application/json', 'x-ccflux-timestamp': ts, 'x-ccflux-signature': `ed25519 ${signature} ${u.raw}` } };
    });
  return { signed };
}

/** `requests` from 16 keep-alive clients, spread round-robin over `urls`; reports/s, p50, p99. */
async function load(urls, requests, concurrency = 16) {
  const agents = urls.map(() => new Agent({ keepAlive: true, maxSockets: concurrency }));
  const latencies = [];
  let next = 0;
  let failures = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, c) => {
      const target = c % urls.length;
      while (next < requests.length) {
        const r = requests[next++];
        const s = performance.now();
        const res = await post(agents[target], `${urls[target]}/report`, r.headers, r.body);
        latencies.push(performance.now() - s);
        if (res.status !== 200 && ++failures <= 3) log(`  unexpected ${res.status}: ${res.body.slice(0, 200)}`);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  for (const a of agents) a.destroy();
  const st = stats(latencies);
  return { perSecond: requests.length / seconds, p50: st.median, p99: st.p99, failures };
}

/** CPU seconds a process has used, its main thread (the event loop) and all its threads; null
 * where /proc is not available. Less noisy than throughput on a shared machine (not free of it). */
function cpuSeconds(pid) {
  const read = (path) => {
    const fields = readFileSync(path, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, USER_HZ 100
  };
  try {
    return { main: read(`/proc/${pid}/task/${pid}/stat`), all: read(`/proc/${pid}/stat`) };
  } catch {
    return null;
  }
}

async function ingest(o, gen, base, pgServer) {
  const variants = [];
  const stops = [];
  try {
    const sqliteEnv = { DATABASE_PATH: join(base, 'ingest.db'), REQUIRE_SIGNATURES: '1' };
    const sqlite = await startReceiver(sqliteEnv);
    stops.push(sqlite.stop);
    variants.push({ label: 'SQLite, 1 instance', pid: sqlite.child.pid, urls: [sqlite.url], client: await ingestClient(sqliteEnv, sqlite.url, base), runs: [], target: { databasePath: sqliteEnv.DATABASE_PATH } });
    if (pgServer) {
      const db = await gen.freshDatabase(pgServer.adminUrl);
      const pgEnv = { DATABASE_URL: db.url, REQUIRE_SIGNATURES: '1', DATABASE_POOL_MAX: '10' };
      const instances = [];
      for (let i = 0; i < 3; i++) {
        const r = await startReceiver(pgEnv);
        stops.push(r.stop);
        instances.push(r.url);
      }
      const client = await ingestClient(pgEnv, instances[0], base);
      for (const n of [1, 2, 3]) variants.push({ label: `PostgreSQL, ${n} instance${n > 1 ? 's' : ''}`, urls: instances.slice(0, n), client, runs: [], target: { databaseUrl: db.url } });
    }
    const floor = await startFloor();
    stops.push(floor.stop);
    variants.push({ label: 'bare node:http (floor)', urls: [floor.url], floor: true, runs: [] });
    variants.forEach((v, i) => {
      v.tag = `v${i}`;
    });
    const sample = variants[0].client.signed('warm', o.ingestReports);
    for (const v of variants) await load(v.urls, v.floor ? sample : v.client.signed(`warm-${v.label}`, 200));
    for (let round = 0; round < o.ingestRounds; round++) {
      for (const v of shuffled(variants)) {
        const requests = v.floor ? sample : v.client.signed(`${v.tag}-r${round}`, o.ingestReports);
        const before = v.pid === undefined ? null : cpuSeconds(v.pid);
        const run = await load(v.urls, requests);
        const after = before === null ? null : cpuSeconds(v.pid);
        if (before !== null && after !== null) run.cpu = { main: ((after.main - before.main) / requests.length) * 1e6, all: ((after.all - before.all) / requests.length) * 1e6 };
        v.runs.push(run);
      }
    }
    // Every report of every round must be stored, 2 rows each: a figure with losses is no figure.
    for (const v of variants.filter((x) => !x.floor)) {
      v.rows = await gen.countRows(v.target, `ingest-${v.tag}-r`);
      v.expectedRows = 2 * o.ingestReports * o.ingestRounds;
    }
    const floorRate = median(variants.at(-1).runs.map((r) => r.perSecond));
    return {
      reports: o.ingestReports,
      rounds: o.ingestRounds,
      concurrency: 16,
      spread: `${INGEST_USERS} users, round-robin over the instances, no proxy`,
      variants: variants.map((v) => {
        const rate = median(v.runs.map((r) => r.perSecond));
        const cpu = v.runs.every((r) => r.cpu) ? { cpuMainUs: Math.round(median(v.runs.map((r) => r.cpu.main))), cpuAllUs: Math.round(median(v.runs.map((r) => r.cpu.all))) } : {};
        return { ...cpu, label: v.label, reportsPerSec: Math.round(rate), p50Ms: +median(v.runs.map((r) => r.p50)).toFixed(1), p99Ms: +median(v.runs.map((r) => r.p99)).toFixed(1), xFloor: +(rate / floorRate).toFixed(2), failures: v.runs.reduce((a, r) => a + r.failures, 0), ...(v.floor ? {} : { rows: v.rows, expectedRows: v.expectedRows }) };
      }),
    };
  } finally {
    for (const s of stops.reverse()) await s();
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// ---- the section ----------------------------------------------------------------------------

export async function receiverBench(o) {
  if (!existsSync(RECEIVER)) throw new Error(`${RECEIVER} missing: run npm run build first`);
  const base = mkdtempSync(join(tmpdir(), 'ccflux-bench-receiver-'));
  const results = { settings: { users: o.users, days: o.days, turnsPerDay: o.turns, runs: o.runs, viewTimeoutMs: o.viewTimeoutMs }, loadavgStart: loadavg().map((x) => +x.toFixed(2)), backends: {}, notes: [] };
  let pgServer = null;
  try {
    log('receiver: bundling bench/receiver-data.ts…');
    const gen = await loadGenerator(base);
    if (o.backends.has('postgres')) {
      if (!gen.postgresAvailable()) results.notes.push(`PostgreSQL skipped: ${gen.PG_MISSING}`);
      else pgServer = await gen.startPostgres();
    }
    const endMs = Date.now();
    const needData = o.parts.has('views') || o.parts.has('health');
    let sqlite = null;
    for (const backend of ['sqlite', 'postgres']) {
      if (!o.backends.has(backend) || !needData || (backend === 'postgres' && !pgServer)) continue;
      log(`receiver: ${o.users} users × ${o.days} days into ${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'} through the store…`);
      if (backend === 'sqlite' || o.pgFill === 'copy') sqlite ??= await sqliteData(gen, o, base, endMs);
      const data = backend === 'sqlite' ? sqlite : await postgresData(gen, o, pgServer, endMs, sqlite);
      const r = { data: data.summary };
      results.backends[backend] = r;
      const receiver = await startReceiver(backend === 'sqlite' ? { DATABASE_PATH: data.path } : { DATABASE_URL: data.url });
      const floor = await startFloor();
      try {
        const views = viewList(data.summary.sample);
        if (o.parts.has('views')) {
          log(`  views (first byte, ${o.runs} runs each, interleaved with the floor)…`);
          Object.assign(r, await measureViews(o, receiver, floor.url, views));
        }
        if (o.parts.has('health')) {
          log(`  /health while views load (${o.healthSeconds} s)…`);
          r.health = await healthUnderLoad(o, receiver.url, viewList(data.summary.sample));
        }
      } finally {
        await receiver.stop();
        await floor.stop();
      }
    }
    if (o.parts.has('ingest')) {
      log(`receiver ingest: ${o.ingestRounds} rounds of ${o.ingestReports} signed reports per variant, 16 clients…`);
      results.ingest = await ingest(o, gen, base, pgServer);
    }
  } finally {
    if (pgServer) await pgServer.stop();
    rmSync(base, { recursive: true, force: true });
  }
  results.loadavgEnd = loadavg().map((x) => +x.toFixed(2));
  results.cores = availableParallelism();
  return results;
}

export function receiverTable(results) {
  const out = [];
  const pad = (s, n) => String(s).padEnd(n);
  const num = (x, n = 9) => String(x ?? '—').padStart(n);
  const s = results.settings;
  out.push(`Receiver at ${s.users} users × ${s.days} days (load ${results.loadavgStart.join(' ')} → ${results.loadavgEnd.join(' ')}, ${results.cores} cores)`);
  for (const n of results.notes) out.push(`  ${n}`);
  for (const [backend, r] of Object.entries(results.backends)) {
    const d = r.data;
    out.push('', `${backend === 'sqlite' ? 'SQLite' : 'PostgreSQL'}: ${d.reports} reports (${d.v2Reports} schema v2) = ${d.rows} rows, ${d.devices} devices, ${d.auditEntries} audit entries, ${d.budgets} budgets; generated through the store in ${d.seconds} s${d.fill ? ` (${d.fill})` : ''}`);
    if (r.views) {
      out.push(`${pad('view (logged in as admin)', 50)}${num('1st byte')}${num('p95')}${num('total')}${num('KB', 7)}${num('× floor', 9)}`);
      const f = r.floor.firstByte?.median;
      for (const v of r.views) {
        if (v.error) {
          out.push(`${pad(v.label, 50)}  FAILED: ${v.error}`);
          continue;
        }
        if (v.firstByte === null) {
          out.push(`${pad(v.label, 50)}  TIMED OUT after ${s.viewTimeoutMs / 1000} s`);
          continue;
        }
        const ratio = f ? (v.firstByte.median / f).toFixed(v.firstByte.median / f < 10 ? 1 : 0) : '';
        out.push(`${pad(v.label, 50)}${num(v.firstByte.median)}${num(v.firstByte.p95)}${num(v.total?.median)}${num(v.kb, 7)}${num(ratio, 9)}${v.note ? `  (${v.note})` : ''}${v.timedOut ? `  (${v.timedOut} timed out)` : ''}`);
      }
      out.push(`${pad(r.floor.label, 50)}${num(r.floor.firstByte?.median)}${num(r.floor.firstByte?.p95)}${num(r.floor.total?.median)}${num(r.floor.kb, 7)}${num(1, 9)}`);
      const over = r.views.filter((v) => !v.error && (v.firstByte === null || v.firstByte.p95 > 200)).length;
      const failed = r.views.filter((v) => v.error).length;
      const big = r.views.filter((v) => v.kb !== null && v.kb > 300).length;
      out.push(`(ms; target ≤ 200 ms first byte and ≤ 300 KB per page: ${over} view(s) over 200 ms at p95, ${big} over 300 KB${failed ? `, ${failed} FAILED` : ''})`);
    }
    if (r.health) {
      const h = r.health;
      out.push(`/health: idle p50 ${h.idle.median} ms p99 ${h.idle.p99} ms; while views load (${h.viewsLoaded} views in ${h.seconds} s) p50 ${h.underLoad.median} ms p99 ${h.underLoad.p99} ms max ${h.underLoad.max} ms (target p99 ≤ 20 ms)`);
    }
  }
  if (results.ingest) {
    const i = results.ingest;
    out.push('', `Receiver ingest: ${i.rounds} rounds × ${i.reports} signed reports (2 models each) per variant, ${i.concurrency} keep-alive clients, ${i.spread}; medians of the rounds`);
    out.push(`${pad('', 30)}${num('reports/s', 11)}${num('p50 ms')}${num('p99 ms')}${num('× floor', 9)}`);
    for (const v of i.variants) out.push(`${pad(v.label, 30)}${num(v.reportsPerSec, 11)}${num(v.p50Ms)}${num(v.p99Ms)}${num(v.xFloor, 9)}${v.failures ? `  ${v.failures} FAILED` : ''}${v.rows !== undefined && v.rows !== v.expectedRows ? `  ROWS ${v.rows} of ${v.expectedRows}` : ''}`);
    const stored = i.variants.filter((v) => v.rows !== undefined);
    if (stored.every((v) => v.rows === v.expectedRows)) out.push(`(rows stored checked in the database: ${stored.map((v) => v.rows).join(', ')}, all as expected)`);
    for (const v of i.variants.filter((x) => x.cpuMainUs !== undefined)) out.push(`(${v.label}: receiver CPU per report ${v.cpuMainUs} µs on the event loop, ${v.cpuAllUs} µs in all its threads, Ed25519 checks on the thread pool included)`);
  }
  return out.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const o = receiverOptions(process.argv.slice(2));
  receiverBench(o)
    .then((results) => process.stdout.write(o.json ? `${JSON.stringify(results, null, 2)}\n` : `${receiverTable(results)}\n`))
    .catch((err) => {
      process.stderr.write(`${err.stack ?? err}\n`);
      process.exitCode = 1;
    });
}
