#!/usr/bin/env node
// Ingest throughput of the built receiver (receiver/dist/ccflux-receiver.cjs; run `npm run build`
// first): provisions a user, exchanges the token, registers a key, then sends N distinct signed
// reports from C concurrent keep-alive clients, and prints reports/s with p50/p99 latency.
// The same load against a bare node:http server that reads the body and answers 200 gives the
// floor (what the HTTP layer and this client cost without any receiver work).
//
//   node bench/receiver-ingest.mjs [--reports 3000] [--concurrency 16]
//   DATABASE_URL=postgres://… node bench/receiver-ingest.mjs     # the same on PostgreSQL
// (bench/receiver.mjs runs SQLite and PostgreSQL with 1, 2 and 3 instances, interleaved.)
import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { post } from './lib.mjs';

const BUNDLE = fileURLToPath(new URL('../receiver/dist/ccflux-receiver.cjs', import.meta.url));

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const REPORTS = arg('reports', 3000);
const CONCURRENCY = arg('concurrency', 16);
const WARMUP = 200;

const FLOOR_SERVER = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.stringify({ status: 'ok', stored: 1, n: Buffer.concat(chunks).length });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write('listening on http://127.0.0.1:' + server.address().port + '\\n'));
process.on('SIGTERM', () => server.close());
`;

function startProcess(args, env) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c) => {
    stderr += c;
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c) => {
      out += c;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
}

function stop(child) {
  return new Promise((resolve) => {
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
}

/** CPU seconds (user + system) a child has used so far; null where /proc is not available. A
 * load-independent figure on a shared machine, where wall-clock throughput is noisy. */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return null;
  }
}

async function measured(child, run) {
  const before = cpuSeconds(child.pid);
  const result = await run();
  const after = cpuSeconds(child.pid);
  return { ...result, cpuSeconds: before === null || after === null ? null : after - before };
}

function timestamp(date) {
  return `${date.toISOString().slice(0, 19)}Z`;
}

function makeSigner() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return {
    publicKey: raw.toString('base64'),
    headers(body) {
      const ts = timestamp(new Date());
      const signature = sign(null, Buffer.concat([body, Buffer.from(`\n${ts}`)]), privateKey);
      return { 'x-ccflux-timestamp': ts, 'x-ccflux-signature': `ed25519 ${signature.toString('base64')} ${raw.toString('base64')}` };
    },
  };
}

function reportBody(run, i) {
  return Buffer.from(
    JSON.stringify({
      schema_version: 1,
      session_id: `bench-${run}-${Math.floor(i / 50)}`,
      user_email: 'bench@example.org',
      turn_index: i % 50,
      timestamp_utc: '2026-05-11T04:32:10Z',
      session_start_utc: '2026-05-11T04:30:00Z',
      models: {
        'claude-sonnet-4-6': { input_tokens: 14200 + i, output_tokens: 1800, cache_read_tokens: 9400, cache_write_tokens: 0 },
        'claude-haiku-4-5': { input_tokens: 120, output_tokens: 80, cache_read_tokens: 0, cache_write_tokens: 64 },
      },
      plugin_version: '0.1.0',
    }),
  );
}

async function load(url, makeRequest, count) {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies = new Array(count);
  let next = 0;
  let failures = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const i = next++;
        const { headers, body } = makeRequest(i);
        const t0 = process.hrtime.bigint();
        const res = await post(agent, url, headers, body);
        latencies[i] = Number(process.hrtime.bigint() - t0) / 1e6;
        if (res.status !== 200) {
          failures++;
          if (failures <= 3) process.stderr.write(`unexpected ${res.status}: ${res.body}\n`);
        }
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(count - 1, Math.floor((p / 100) * count))];
  return { perSecond: count / seconds, p50: pct(50), p99: pct(99), failures };
}

function line(label, r) {
  const cpu = r.cpuSeconds === null ? '' : `   server CPU ${((r.cpuSeconds / REPORTS) * 1e6).toFixed(0)} µs/report`;
  return `${label.padEnd(24)} ${r.perSecond.toFixed(0).padStart(6)} reports/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms${cpu}${r.failures ? `   ${r.failures} FAILED` : ''}`;
}

async function main() {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} missing: run npm run build first`);
  const dir = mkdtempSync(join(tmpdir(), 'ccflux-bench-'));
  const env = {
    DATABASE_PATH: join(dir, 'bench.db'),
    LISTEN_ADDR: '127.0.0.1:0',
    RATE_LIMIT_PER_MINUTE: '1000000',
    REQUIRE_SIGNATURES: '1',
  };
  try {
    const refresh = execFileSync(process.execPath, [BUNDLE, 'users', 'add', 'bench@example.org'], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    }).trim();
    const receiver = await startProcess([BUNDLE, 'serve'], env);
    const agent = new Agent({ keepAlive: true });
    const exchange = await post(agent, `${receiver.url}/token`, { authorization: `Bearer ${refresh}` }, Buffer.alloc(0));
    const access = JSON.parse(exchange.body).access_token;
    const signer = makeSigner();
    const reg = await post(
      agent,
      `${receiver.url}/register-key`,
      { authorization: `Bearer ${access}`, 'content-type': 'application/json' },
      Buffer.from(JSON.stringify({ public_key: signer.publicKey, device_id: 'bench' })),
    );
    if (reg.status !== 200) throw new Error(`register-key: ${reg.status} ${reg.body}`);
    agent.destroy();

    // Signed up front (well inside the 5-minute window) so the client's signing does not compete
    // with the receiver for CPU during the measurement.
    const signAll = (run, count) =>
      Array.from({ length: count }, (_, i) => {
        const body = reportBody(run, i);
        return { body, headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json', ...signer.headers(body) } };
      });
    const warmup = signAll('warmup', WARMUP);
    const requests = signAll('run', REPORTS);
    await load(`${receiver.url}/report`, (i) => warmup[i], WARMUP);
    const result = await measured(receiver.child, () => load(`${receiver.url}/report`, (i) => requests[i], REPORTS));
    await stop(receiver.child);

    // The rows are counted where the receiver stored them: DATABASE_URL (PostgreSQL) wins over
    // DATABASE_PATH in the receiver's config, so it does here too.
    const pgUrl = process.env.DATABASE_URL;
    const check = execFileSync(
      process.execPath,
      pgUrl
        ? ['-e', `const pg=require('pg');const c=new pg.Client({connectionString:process.argv[1]});c.connect().then(()=>c.query("SELECT count(*) n FROM usage_events WHERE session_id LIKE 'bench-run-%'")).then((r)=>{process.stdout.write(String(r.rows[0].n));return c.end()})`, pgUrl]
        : ['-e', `const D=require('better-sqlite3');const d=new D(process.argv[1],{readonly:true});process.stdout.write(String(d.prepare("SELECT count(*) n FROM usage_events WHERE session_id LIKE 'bench-run-%'").get().n))`, env.DATABASE_PATH],
      { encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)) },
    );

    const floor = await startProcess(['-e', FLOOR_SERVER], {});
    const bare = (i) => ({ body: requests[i].body, headers: { 'content-type': 'application/json' } });
    await load(`${floor.url}/report`, bare, WARMUP);
    const floorResult = await measured(floor.child, () => load(`${floor.url}/report`, bare, REPORTS));
    await stop(floor.child);

    process.stdout.write(
      `${REPORTS} signed reports (2 models each), ${CONCURRENCY} concurrent keep-alive clients, node ${process.version}\n`,
    );
    process.stdout.write(`${line('ccflux-receiver', result)}\n`);
    process.stdout.write(`${line('floor (bare node:http)', floorResult)}\n`);
    process.stdout.write(`rows stored (${pgUrl ? 'PostgreSQL' : 'SQLite'}): ${check} (expected ${REPORTS * 2}); load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exitCode = 1;
});
