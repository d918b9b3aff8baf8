#!/usr/bin/env node
// `npm run demo`: the whole pipeline on this machine, nothing to configure.
//
// Starts the receiver on a temporary SQLite file (a free loopback port), provisions a user,
// installs the built plugin into a temporary Claude Code data dir, plays two recorded sessions
// (fixtures "basic" and "subagents") through the plugin's real hook scripts exactly as Claude
// Code runs them, waits for the detached workers to deliver, then prints what the receiver stored
// next to what the transcripts really hold and what the Rust version's method would have summed.
// Everything it creates is removed at the end.
//
// `npm run demo -- --serve` then keeps the receiver and its dashboard running, prints the dashboard
// URL and the admin token, and waits for Ctrl-C. Ctrl-C at any point (also during the demo) stops
// the receiver and the delivery workers and removes the temporary folder: the receiver database,
// the device signing key, the token cache, everything.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(root, 'plugin', 'dist', 'ccflux.cjs');
const RECEIVER = join(root, 'receiver', 'dist', 'ccflux-receiver.cjs');
const SCENARIOS = [
  { name: 'basic', tag: 'dea0001a', about: 'one line per content block, placeholder counts, a <synthetic> error line' },
  { name: 'subagents', tag: 'dea0002b', about: 'Task-tool subagents in their own files, a /btw replay' },
];
const EMAIL = 'demo@example.org';
const FIELDS = ['input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens'];
const QUIET_TIMEOUT_MS = 60_000;
const SERVE = process.argv.slice(2).includes('--serve');
/** The dashboard's admin token for this run only (gone with the temp folder). */
const ADMIN_TOKEN = randomBytes(32).toString('hex');
/** Real turns are seconds apart; a short pause lets each turn's worker report it on its own. */
const TURN_GAP_MS = 300;

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code, text) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
const bold = (t) => paint(1, t);
const dim = (t) => paint(2, t);
const green = (t) => paint(32, t);
const red = (t) => paint(31, t);
const say = (line = '') => process.stdout.write(`${line}\n`);
const step = (line) => say(`${bold('▸')} ${line}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function fixtureDir(name) {
  const own = join(root, 'test', 'fixtures', name);
  return existsSync(join(own, 'timeline.jsonl')) ? own : join('/work/shared/fixtures', name);
}

function run(file, args, { env = process.env, input = '' } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    if (stopping) {
      reject(new Error('stopped'));
      return;
    }
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    child.on('exit', () => children.delete(child));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err, ms: performance.now() - t0 }));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

async function startReceiver(dir) {
  const env = { ...process.env, DATABASE_PATH: join(dir, 'receiver.db'), LISTEN_ADDR: '127.0.0.1:0', ADMIN_TOKEN };
  const child = spawn(process.execPath, [RECEIVER, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => {
    log += d;
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the receiver did not start:\n${log}`)), 15_000);
    child.stdout.on('data', (d) => {
      out += d;
      const match = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the receiver exited (${code}):\n${log}`));
    });
  });
  const exited = new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    url,
    env,
    dbPath: env.DATABASE_PATH,
    exited,
    stop: async () => {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
    },
  };
}

/** Every fixture was generated from one seed: give each its own session, line, message and request ids. */
function retag(text, tag) {
  return text
    .replace(/\b[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b/g, `${tag}$1`)
    .replace(/\b(msg|req)_/g, `$1_${tag}`);
}

function hookCommand(pluginRoot, event) {
  const hooks = JSON.parse(readFileSync(join(pluginRoot, 'hooks', 'hooks.json'), 'utf8'));
  return hooks.hooks[event][0].hooks[0].command.replaceAll('$' + '{CLAUDE_PLUGIN_ROOT}', pluginRoot);
}

/** Plays a fixture timeline: bytes appended to transcripts, hooks run as Claude Code runs them. */
async function play(scenario, { dataDir, pluginRoot, env }) {
  const lines = retag(readFileSync(join(fixtureDir(scenario.name), 'timeline.jsonl'), 'utf8'), scenario.tag)
    .split('\n')
    .filter((l) => l.trim());
  let sessions = [];
  const hookTimes = [];
  for (const line of lines) {
    const entry = JSON.parse(line);
    if (entry.meta) sessions = entry.meta.sessions;
    if (entry.append) {
      const file = join(dataDir, entry.append.file);
      mkdirSync(dirname(file), { recursive: true });
      appendFileSync(file, entry.append.data);
    }
    if (entry.hook) {
      const input = JSON.stringify(entry.hook.input).replaceAll('$' + '{DATA_DIR}', dataDir);
      const result = await run('sh', ['-c', hookCommand(pluginRoot, entry.hook.event)], { env, input });
      if (result.code !== 0 || result.out || result.err) {
        throw new Error(`${entry.hook.event} hook misbehaved: exit ${result.code} ${result.out}${result.err}`);
      }
      hookTimes.push(result.ms);
      say(dim(`    ${entry.hook.event.padEnd(12)} hook returned to Claude Code in ${result.ms.toFixed(0).padStart(3)} ms`));
      await sleep(TURN_GAP_MS);
    }
  }
  return { sessions, hookTimes };
}

function queueLength(dataDir) {
  try {
    return readFileSync(join(dataDir, 'ccflux', 'pending_reports.jsonl'), 'utf8').split('\n').filter((l) => l.trim()).length;
  } catch {
    return 0;
  }
}

/** Our detached delivery workers for `dataDir` (Linux /proc; elsewhere none are seen). */
function workerPids(dataDir) {
  let pids;
  try {
    pids = readdirSync('/proc');
  } catch {
    return []; // not Linux: rely on the queue and the locks
  }
  const found = [];
  for (const pid of pids) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('ccflux')) continue;
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').includes(`CLAUDE_CONFIG_DIR=${dataDir}\0`)) found.push(Number(pid));
    } catch {
      // gone, or not ours
    }
  }
  return found;
}

const workersAlive = (dataDir) => workerPids(dataDir).length > 0;

async function waitForDelivery(dataDir) {
  const deadline = Date.now() + QUIET_TIMEOUT_MS;
  let calm = 0;
  while (Date.now() < deadline) {
    const busy =
      queueLength(dataDir) > 0 ||
      workersAlive(dataDir) ||
      existsSync(join(dataDir, 'ccflux', 'state.lock')) ||
      existsSync(join(dataDir, 'ccflux', 'deliver.lock'));
    calm = busy ? 0 : calm + 1;
    if (calm >= 3) return true;
    await sleep(100);
  }
  return false;
}

function stored(dbPath, sessions) {
  const Database = createRequire(import.meta.url)('better-sqlite3');
  const db = new Database(dbPath, { readonly: true });
  const marks = sessions.map(() => '?').join(',');
  try {
    const rows = db
      .prepare(
        `SELECT model, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
                SUM(cache_read_tokens) AS cache_read_tokens, SUM(cache_write_tokens) AS cache_write_tokens
           FROM usage_events WHERE session_id IN (${marks}) GROUP BY model`,
      )
      .all(...sessions);
    const { reports } = db
      .prepare(`SELECT COUNT(DISTINCT session_id || ':' || turn_index) AS reports FROM usage_events WHERE session_id IN (${marks})`)
      .get(...sessions);
    return { sums: Object.fromEntries(rows.map(({ model, ...rest }) => [model, rest])), reports };
  } finally {
    db.close();
  }
}

function addInto(target, sums) {
  for (const [model, usage] of Object.entries(sums)) {
    const acc = target[model] ?? Object.fromEntries(FIELDS.map((f) => [f, 0]));
    for (const f of FIELDS) acc[f] += usage[f] ?? 0;
    target[model] = acc;
  }
}

const fmt = (n) => (n === undefined ? '—' : n.toLocaleString('en-US'));

function printTable(stored, expected, naive) {
  const models = [...new Set([...Object.keys(expected), ...Object.keys(stored), ...Object.keys(naive)])].sort();
  const header = ['model', 'tokens', 'receiver stored', 'transcripts hold', 'Rust method'];
  const rows = [];
  for (const model of models) {
    for (const field of FIELDS) {
      const s = stored[model]?.[field];
      const e = expected[model]?.[field];
      const n = naive[model]?.[field];
      const ok = (s ?? 0) === (e ?? 0);
      rows.push({
        cells: [model, field.replace('_tokens', '').replace('_', ' '), fmt(s), fmt(e), fmt(n)],
        ok,
        naiveOff: (n ?? 0) !== (e ?? 0),
      });
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r.cells[i].length)));
  const line = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  say(bold(line(header)));
  say(dim(widths.map((w) => '─'.repeat(w)).join('  ')));
  let lastModel = '';
  for (const row of rows) {
    const cells = [...row.cells];
    if (cells[0] === lastModel) cells[0] = '';
    else lastModel = cells[0];
    let text = line(cells);
    if (!row.ok) text = red(text);
    say(`${text}${row.ok ? green('  ✓') : red('  ✗')}${row.naiveOff ? dim('  (Rust off)') : ''}`);
  }
}

async function main() {
  for (const file of [CLI, RECEIVER]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` (npm run demo does it for you)`);
  }
  base = mkdtempSync(join(tmpdir(), 'ccflux-demo-'));
  try {
    say(bold('ccflux demo: two recorded Claude Code sessions, the real plugin, a real receiver\n'));

    step('Starting the receiver on a temporary SQLite database…');
    receiver = await startReceiver(base);
    say(`  listening on ${receiver.url}`);

    step(`Provisioning a user (${EMAIL}) — the receiver prints their refresh token…`);
    const added = await run(process.execPath, [RECEIVER, 'users', 'add', EMAIL], { env: receiver.env });
    if (added.code !== 0) throw new Error(`users add failed: ${added.err}`);
    const token = added.out.trim().split('\n').pop();
    say(`  token ${token.slice(0, 8)}… (shown once; the device only ever sends it to /token)`);

    step('Installing the plugin into a temporary Claude Code data dir…');
    dataDir = join(base, '.claude');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, '.claude.json'), JSON.stringify({ oauthAccount: { emailAddress: EMAIL } }));
    const version = JSON.parse(readFileSync(join(root, 'plugin', '.claude-plugin', 'plugin.json'), 'utf8')).version;
    const pluginRoot = join(dataDir, 'plugins', 'cache', 'local', 'ccflux', version);
    cpSync(join(root, 'plugin'), pluginRoot, { recursive: true, filter: (src) => !/[\\/]bin[\\/]ccflux-[^\\/]*$/.test(src) });
    say(`  ${pluginRoot}`);

    const env = {
      ...process.env,
      CLAUDE_CONFIG_DIR: dataDir,
      CLAUDE_PLUGIN_ROOT: pluginRoot,
      CLAUDE_PLUGIN_OPTION_API_ENDPOINT: receiver.url,
      CLAUDE_PLUGIN_OPTION_API_TOKEN: token,
      // Loopback receiver without TLS: allowed for local development only.
      CCFLUX_ALLOW_HTTP: '1',
      // The hooks' spool files and the workers' working folder: inside the folder that is removed.
      TMPDIR: join(base, 'tmp'),
    };
    mkdirSync(env.TMPDIR, { mode: 0o700 });

    const sessions = [];
    const expected = {};
    const naive = {};
    const hookTimes = [];
    for (const scenario of SCENARIOS) {
      step(`Playing session "${scenario.name}" (${scenario.about})…`);
      const played = await play(scenario, { dataDir, pluginRoot, env });
      sessions.push(...played.sessions);
      hookTimes.push(...played.hookTimes);
      const truth = JSON.parse(readFileSync(join(fixtureDir(scenario.name), 'expected.json'), 'utf8'));
      addInto(expected, truth.models);
      addInto(naive, truth.naive_main_file_sum);
    }

    step('Waiting for the detached workers to deliver…');
    const quiet = await waitForDelivery(dataDir);
    if (!quiet) say(red(`  still busy after ${QUIET_TIMEOUT_MS / 1000} s; showing what arrived so far`));
    const { sums, reports } = stored(receiver.dbPath, sessions);
    say(`  done: the receiver holds ${reports} signed per-turn report(s); ${queueLength(dataDir)} left in the queue`);

    say();
    printTable(sums, expected, naive);
    say();
    const sorted = [...hookTimes].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    say(`${hookTimes.length} hooks ran; Claude Code waited ${median.toFixed(0)} ms per hook (median), ${sorted[sorted.length - 1].toFixed(0)} ms at most.`);
    const exact =
      Object.keys(expected).every((m) => FIELDS.every((f) => (sums[m]?.[f] ?? 0) === expected[m][f])) &&
      Object.keys(sums).every((m) => m in expected);
    say(
      exact
        ? green(bold('Exact: the receiver holds what the API billed, token for token.'))
        : red(bold('Mismatch: the receiver does not hold what the transcripts hold (see ✗ rows).')),
    );
    say(dim('"Rust method" sums every assistant line of the main transcript: it repeats multi-line messages, misses subagents and advisor tokens.'));
    process.exitCode = exact ? 0 : 1;
    if (SERVE) await serve(receiver, exact);
  } finally {
    await cleanUp();
  }
}

/** Keeps the receiver up until Ctrl-C (or until it stops by itself). */
async function serve(running, exact) {
  say();
  say(bold('The receiver and its dashboard keep running (--serve):'));
  say(`  dashboard    ${running.url.replace(/\/$/, '')}/admin/`);
  say(`  admin token  ${ADMIN_TOKEN}`);
  say(dim('  (this run only: paste it at the login page; it and everything else go away on Ctrl-C)'));
  say(`Press Ctrl-C to stop: the receiver stops and ${base} is removed.`);
  serving = true;
  const keepAlive = setInterval(() => {}, 60_000);
  await running.exited;
  // Ctrl-C on a terminal reaches the receiver too: let our own handler say so first.
  await sleep(300);
  clearInterval(keepAlive);
  if (!stopping) {
    say(red('The receiver stopped by itself.'));
    process.exitCode = 1;
  } else {
    process.exitCode = exact ? 0 : 1;
  }
}

let base;
let dataDir;
let receiver;
let stopping = false;
let cleaned;
/** Hook scripts and receiver commands running now: stopped first, so nothing writes after the removal. */
const children = new Set();

/** Stops the receiver and our workers, then removes the temp folder; once, whoever asks first. */
function cleanUp() {
  cleaned ??= (async () => {
    stopping = true;
    for (const child of children) child.kill('SIGTERM');
    await receiver?.stop();
    if (dataDir) {
      for (const pid of workerPids(dataDir)) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
      for (let i = 0; i < 20 && workersAlive(dataDir); i++) await sleep(100);
    }
    if (base) rmSync(base, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    // A worker that was just starting may have written once more: look again.
    if (base && dataDir) {
      await sleep(200);
      for (const pid of workerPids(dataDir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      rmSync(base, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    }
  })();
  return cleaned;
}

/** Ctrl-C (or a SIGTERM) at any point: clean up, then exit — 0 when it ends a --serve, 130 mid-demo. */
function onSignal(signal) {
  if (stopping) return;
  const during = !serving;
  say();
  say(dim(`${signal}: stopping and removing ${base ?? 'the temporary folder'}…`));
  cleanUp().then(
    () => process.exit(during ? 130 : (process.exitCode ?? 0)),
    (err) => {
      process.stderr.write(`demo cleanup failed: ${err instanceof Error ? err.message : err}\n`);
      process.exit(1);
    },
  );
}

let serving = false;

process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));

main().catch(async (err) => {
  // After Ctrl-C a hook or the receiver may fail on the way down: that is the stop, not a failure.
  if (stopping) return;
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : err}\n`);
  process.exitCode = 1;
  await cleanUp();
});
