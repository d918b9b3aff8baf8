#!/usr/bin/env node
// How long Claude Code waits for a ccflux hook, and how long the detached worker then works.
//
//   node bench/hook-timing.mjs [--runs 20] [--quick] [--json]     (after `npm run build`)
//
// 1. Stop hook wall time (the installed plugin's hooks.json command through `sh -c`, stdin = hook
//    JSON, timed until the process exits and its stdio closes — what Claude Code waits for) with
//    the receiver up, with nothing listening, and with a port that accepts but never answers.
//    Each with the worker's total time, measured by running the same worker in the foreground.
// 2. The same on a 1,000-line and a 200,000-line transcript, 2 new lines per turn.
// Medians (and p90) in milliseconds. Measures; asserts nothing.
import { spawn } from 'node:child_process';
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(root, 'plugin', 'dist', 'ccflux.cjs');
const RECEIVER = join(root, 'receiver', 'dist', 'ccflux-receiver.cjs');
const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1]) || (args.includes('--quick') ? 7 : 20);
const WORKER_RUNS = args.includes('--quick') ? 3 : 5;
const BIG_LINES = args.includes('--quick') ? 50_000 : 200_000;
const asJson = args.includes('--json');

const progress = (msg) => {
  if (!asJson) process.stderr.write(`${msg}\n`);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: +median.toFixed(1), p90: +q(0.9).toFixed(1), min: +s[0].toFixed(1), max: +s[s.length - 1].toFixed(1), n: s.length };
}

function run(file, argv, { env, input = '', timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(file, argv, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err, ms: performance.now() - t0 });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

async function startReceiver(dir) {
  const dbPath = join(dir, 'receiver.db');
  const env = { ...process.env, DATABASE_PATH: dbPath, LISTEN_ADDR: '127.0.0.1:0' };
  const child = spawn(process.execPath, [RECEIVER, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`receiver did not start: ${text}`)), 15_000);
    child.stdout.on('data', (d) => {
      text += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`receiver exited ${code}: ${text}`)));
  });
  const added = await run(process.execPath, [RECEIVER, 'users', 'add', 'bench@example.org'], { env });
  if (added.code !== 0) throw new Error(`users add failed: ${added.err}`);
  return { url, token: added.out.trim().split('\n').pop(), stop: () => child.kill('SIGTERM') };
}

/** A port that accepts connections and never answers. */
async function blackhole() {
  const sockets = new Set();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('data', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stop: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** A port nobody listens on (bound, then released). */
async function deadPort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return `http://127.0.0.1:${port}`;
}

let lineNo = 0;
function assistantLine(sessionId) {
  const n = lineNo++;
  return `${JSON.stringify({
    parentUuid: null,
    isSidechain: false,
    type: 'assistant',
    sessionId,
    uuid: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    requestId: `req_bench${n}`,
    timestamp: new Date(Date.UTC(2026, 4, 11, 4, 0, 0) + n * 1000).toISOString(),
    message: {
      id: `msg_bench${n}`,
      model: n % 3 ? 'claude-sonnet-4-6' : 'claude-opus-4-7',
      role: 'assistant',
      content: [{ type: 'text', text: 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(3) }],
      usage: { input_tokens: 12, output_tokens: 80, cache_read_input_tokens: 9000, cache_creation_input_tokens: 300 },
    },
  })}\n`;
}

function userLine(sessionId) {
  const n = lineNo++;
  return `${JSON.stringify({ type: 'user', sessionId, uuid: `u-${n}`, message: { role: 'user', content: 'Please continue with the next step.' } })}\n`;
}

/** A data dir with the plugin installed and a transcript of `lines` lines. */
function makeSession(base, name, lines) {
  const dataDir = join(base, name);
  const sessionId = `bench${name}-0000-4000-8000-000000000000`.slice(0, 36);
  const project = join(dataDir, 'projects', '-home-bench-repo');
  mkdirSync(project, { recursive: true });
  writeFileSync(join(dataDir, '.claude.json'), JSON.stringify({ oauthAccount: { emailAddress: 'bench@example.org' } }));
  const pluginRoot = join(dataDir, 'plugins', 'cache', 'local', 'ccflux', '0.0.0');
  cpSync(join(root, 'plugin'), pluginRoot, { recursive: true, filter: (src) => !/[\\/]bin[\\/]ccflux-[^\\/]*$/.test(src) });
  const transcript = join(project, `${sessionId}.jsonl`);
  const chunk = [];
  for (let i = 0; i < lines; i++) {
    chunk.push(i % 2 ? assistantLine(sessionId) : userLine(sessionId));
    if (chunk.length === 5000) {
      appendFileSync(transcript, chunk.join(''));
      chunk.length = 0;
    }
  }
  appendFileSync(transcript, chunk.join(''));
  return { dataDir, sessionId, pluginRoot, transcript };
}

function hookEnv(session, endpoint, token) {
  const env = { ...process.env, CLAUDE_CONFIG_DIR: session.dataDir, CLAUDE_PLUGIN_ROOT: session.pluginRoot, CCFLUX_ALLOW_HTTP: '1' };
  delete env.NODE_EXTRA_CA_CERTS; // the wrapper hands it to the worker as CCFLUX_EXTRA_CA_CERTS
  delete env.NODE_OPTIONS;
  if (endpoint) env.CLAUDE_PLUGIN_OPTION_API_ENDPOINT = endpoint;
  if (token) env.CLAUDE_PLUGIN_OPTION_API_TOKEN = token;
  return env;
}

function stopCommand(session) {
  const hooks = JSON.parse(readFileSync(join(session.pluginRoot, 'hooks', 'hooks.json'), 'utf8'));
  return hooks.hooks.Stop[0].hooks[0].command.replaceAll('$' + '{CLAUDE_PLUGIN_ROOT}', session.pluginRoot);
}

function hookInput(session) {
  return JSON.stringify({
    session_id: session.sessionId,
    transcript_path: session.transcript,
    cwd: '/home/bench/repo',
    hook_event_name: 'Stop',
    stop_hook_active: false,
    last_assistant_message: 'Done.',
  });
}

/** True while any ccflux process of this data dir is alive (Linux /proc; elsewhere: false). */
function workersAlive(dataDir) {
  let pids;
  try {
    pids = readdirSync('/proc');
  } catch {
    return false;
  }
  for (const pid of pids) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('ccflux')) continue;
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').includes(`CLAUDE_CONFIG_DIR=${dataDir}\0`)) return true;
    } catch {
      // gone, or not ours
    }
  }
  return false;
}

async function waitForWorkers(dataDir, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (workersAlive(dataDir) && Date.now() < deadline) await sleep(20);
}

/** Wrapper wall times: one Stop per run, 2 new lines before each. */
async function measureWrapper(session, env, runs, { waitBetween }) {
  const command = stopCommand(session);
  const input = hookInput(session);
  const times = [];
  for (let i = 0; i < runs; i++) {
    appendFileSync(session.transcript, userLine(session.sessionId) + assistantLine(session.sessionId));
    const r = await run('sh', ['-c', command], { env, input });
    if (r.code !== 0 || r.out || r.err) throw new Error(`hook misbehaved: ${r.code} ${r.out} ${r.err}`);
    times.push(r.ms);
    // A hanging worker holds no CPU once it waits on the socket; let it get there, so the next
    // hook is not timed against its start-up (Claude Code's turns are seconds apart anyway).
    if (waitBetween) await waitForWorkers(session.dataDir);
    else await sleep(Number(process.env.BENCH_HANG_GAP_MS ?? 700));
  }
  return stats(times);
}

/** Worker total times: the same worker, in the foreground, 2 new lines before each. */
async function measureWorker(session, env, runs) {
  const input = hookInput(session);
  const times = [];
  for (let i = 0; i < runs; i++) {
    appendFileSync(session.transcript, userLine(session.sessionId) + assistantLine(session.sessionId));
    const r = await run(process.execPath, [CLI, 'report-turn', '--foreground', '--input', input], { env, timeoutMs: 120_000 });
    times.push(r.ms);
  }
  return stats(times);
}

async function main() {
  const base = mkdtempSync(join(tmpdir(), 'ccflux-bench-'));
  const results = { node: process.version, runs: RUNS, workerRuns: WORKER_RUNS, network: {}, size: {} };
  const receiver = await startReceiver(base);
  const hole = await blackhole();
  const dead = await deadPort();
  try {
    const floor = [];
    for (let i = 0; i < RUNS; i++) floor.push((await run('sh', ['-c', 'cat >/dev/null; exit 0'], { input: '{}' })).ms);
    results.floor = stats(floor);
    progress(`floor (sh that reads stdin and exits): ${results.floor.median} ms`);

    const endpoints = [
      ['receiver up', receiver.url],
      ['nothing listening', dead],
      ['accepts, never answers', hole.url],
    ];
    for (const [name, url] of endpoints) {
      progress(`Stop hook, ${name}…`);
      const session = makeSession(base, name.replace(/\W+/g, ''), 40);
      const env = hookEnv(session, url, receiver.token);
      await run(process.execPath, [CLI, 'report-turn', '--foreground', '--input', hookInput(session)], { env, timeoutMs: 120_000 });
      const hang = url === hole.url;
      const wrapper = await measureWrapper(session, env, RUNS, { waitBetween: !hang });
      await waitForWorkers(session.dataDir, 120_000);
      const worker = await measureWorker(session, env, hang ? Math.min(WORKER_RUNS, 3) : WORKER_RUNS);
      results.network[name] = { wrapper, worker };
      progress(`  wrapper ${wrapper.median} ms (p90 ${wrapper.p90}), worker ${worker.median} ms`);
    }

    for (const lines of [1_000, BIG_LINES]) {
      progress(`transcript of ${lines} lines: writing…`);
      const session = makeSession(base, `size${lines}`, lines);
      const env = hookEnv(session, receiver.url, receiver.token);
      const t0 = performance.now();
      await run(process.execPath, [CLI, 'report-turn', '--foreground', '--input', hookInput(session)], { env, timeoutMs: 600_000 });
      const firstMs = +(performance.now() - t0).toFixed(0);
      const wrapper = await measureWrapper(session, env, Math.min(RUNS, 10), { waitBetween: true });
      const worker = await measureWorker(session, env, WORKER_RUNS);
      results.size[`${lines} lines`] = { firstTurnWorkerMs: firstMs, wrapper, worker };
      progress(`  first (whole file) ${firstMs} ms; then per turn: wrapper ${wrapper.median} ms, worker ${worker.median} ms`);
    }
  } finally {
    receiver.stop();
    hole.stop();
    await sleep(200);
    rmSync(base, { recursive: true, force: true });
  }

  if (asJson) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return;
  }
  const row = (label, s) => `${label.padEnd(44)} ${String(s.median).padStart(8)} ${String(s.p90).padStart(8)} ${String(s.n).padStart(4)}`;
  console.log(`\nccflux hook timing (node ${process.version}); milliseconds`);
  console.log(`${''.padEnd(44)} ${'median'.padStart(8)} ${'p90'.padStart(8)} ${'n'.padStart(4)}`);
  console.log(row('floor: sh reading stdin', results.floor));
  for (const [name, r] of Object.entries(results.network)) {
    console.log(row(`Stop hook, ${name}`, r.wrapper));
    console.log(row(`  detached worker, ${name}`, r.worker));
  }
  for (const [name, r] of Object.entries(results.size)) {
    console.log(row(`Stop hook, ${name} + 2 new`, r.wrapper));
    console.log(row(`  detached worker, ${name} + 2 new`, r.worker));
    console.log(`  (first turn, whole ${name}: ${r.firstTurnWorkerMs} ms)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
