// Shared pieces of `npm run bench` (bench/run.mjs): processes timed as Claude Code waits for them,
// a receiver on port 0, dead and blackholed ports, data dirs with the plugin installed, and
// transcripts of a given length. Plain ESM, no dependencies beyond Node.
import { spawn } from 'node:child_process';
import { cpSync, createWriteStream, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = join(ROOT, 'plugin', 'dist', 'ccflux.cjs');
export const RECEIVER = join(ROOT, 'receiver', 'dist', 'ccflux-receiver.cjs');
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Median, p95, min, max, mean of milliseconds (rounded to 0.1). */
export function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  const r = (x) => Math.round(x * 10) / 10;
  return { n: s.length, median: r(median), p95: r(at(0.95)), min: r(s[0]), max: r(s[s.length - 1]), mean: r(s.reduce((a, b) => a + b, 0) / s.length) };
}

/**
 * Runs a command to completion: wall time from spawn until it exited and every holder of its
 * stdout/stderr let go (what Claude Code waits for). `input` goes to stdin, then stdin closes.
 */
export function timed(file, args, { env = process.env, input = '', timeoutMs = 600_000, cwd = ROOT } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(file, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
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
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ ms: performance.now() - t0, code, signal, out, err });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/**
 * The built receiver on port 0 with a user; rate limit lifted (the default 30/min would be what we
 * measured), unless `defaultLimits` asks for the receiver exactly as deployed (own database).
 */
export async function startReceiver(dir, { defaultLimits = false } = {}) {
  const env = { ...process.env, DATABASE_PATH: join(dir, defaultLimits ? 'receiver-defaults.db' : 'receiver.db'), LISTEN_ADDR: '127.0.0.1:0', RATE_LIMIT_PER_MINUTE: '1000000' };
  if (defaultLimits) delete env.RATE_LIMIT_PER_MINUTE;
  const added = await timed(process.execPath, [RECEIVER, 'users', 'add', 'bench@example.org'], { env });
  if (added.code !== 0) throw new Error(`receiver users add failed: ${added.err}`);
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
  child.stderr.resume();
  return {
    url,
    token: added.out.trim().split('\n').pop(),
    dbPath: env.DATABASE_PATH,
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}

/** A port that accepts connections and never answers. */
export async function blackhole() {
  const sockets = new Set();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('data', () => {});
    s.on('close', () => sockets.delete(s));
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
export async function deadPort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return `http://127.0.0.1:${port}`;
}

const TEXT = 'The function reads the new part of the transcript, groups the lines by message and request, and sums usage. ';

/** A transcript writer: realistic lines (a user prompt, then one assistant line per content block). */
export class TranscriptWriter {
  constructor(sessionId) {
    this.sessionId = sessionId;
    this.n = 0;
  }
  userLine() {
    const n = this.n++;
    return `${JSON.stringify({
      parentUuid: null,
      isSidechain: false,
      userType: 'external',
      cwd: '/home/bench/work/repo',
      sessionId: this.sessionId,
      version: '2.1.0',
      gitBranch: 'main',
      type: 'user',
      message: { role: 'user', content: `Please continue with step ${n}. ${TEXT}` },
      uuid: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
      timestamp: new Date(Date.UTC(2026, 4, 11, 4, 0, 0) + n * 1000).toISOString(),
    })}\n`;
  }
  assistantLine(block = 0) {
    const n = this.n++;
    const msg = Math.floor(n / 2);
    return `${JSON.stringify({
      parentUuid: `00000000-0000-4000-8000-${String(n - 1).padStart(12, '0')}`,
      isSidechain: false,
      userType: 'external',
      cwd: '/home/bench/work/repo',
      sessionId: this.sessionId,
      version: '2.1.0',
      gitBranch: 'main',
      message: {
        id: `msg_bench${msg}`,
        type: 'message',
        role: 'assistant',
        model: msg % 3 ? 'claude-sonnet-4-6' : 'claude-opus-4-7',
        content: [{ type: 'text', text: TEXT.repeat(2 + (n % 3)) }],
        stop_reason: block ? 'end_turn' : null,
        usage: {
          input_tokens: 12 + (n % 7),
          cache_creation_input_tokens: 300,
          cache_read_input_tokens: 9000 + n,
          output_tokens: block ? 80 + (n % 50) : 1,
          service_tier: 'standard',
        },
      },
      requestId: `req_bench${msg}`,
      type: 'assistant',
      uuid: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
      timestamp: new Date(Date.UTC(2026, 4, 11, 4, 0, 0) + n * 1000).toISOString(),
    })}\n`;
  }
  /** One turn's worth: a user line and an assistant line (the "2 new lines" of a turn). */
  turn() {
    return this.userLine() + this.assistantLine(1);
  }
  /**
   * The `system` `stop_hook_summary` line Claude Code writes once the Stop hooks are done
   * (claude-code-formats.md §8.4): the worker's settle wait ends on it, as in a real session,
   * instead of waiting 300 ms for a quiet file. Not usage, never parsed.
   */
  closingLine() {
    return `${JSON.stringify({ type: 'system', subtype: 'stop_hook_summary', sessionId: this.sessionId, hookCount: 1, timestamp: new Date(Date.UTC(2026, 4, 11, 4, 0, 0) + this.n * 1000).toISOString() })}\n`;
  }
  /**
   * One turn as Claude Code 2.1.328 writes it (claude-code-formats.md §8.3): most lines are not
   * usage. A prompt, per API call an `api-request` and an `api-request-blob` (the request's
   * content), assistant lines (thinking, text, tool use, each with the call's usage), a tool
   * result, an attachment, a system line and a `cost-state`. About 900 bytes a line on average.
   */
  realisticTurn() {
    const t = new Date(Date.UTC(2026, 4, 11, 4, 0, 0) + this.n * 1000).toISOString();
    const common = { parentUuid: null, isSidechain: false, userType: 'external', cwd: '/home/bench/work/repo', sessionId: this.sessionId, version: '2.1.328', gitBranch: 'main' };
    const lines = [this.userLine()];
    for (let call = 0; call < 2; call++) {
      const n = this.n++;
      const msg = `msg_real${n}`;
      lines.push(`${JSON.stringify({ type: 'api-request', ...common, params: { model: 'claude-sonnet-5-5' }, querySource: 'repl_main_thread', timestamp: t })}\n`);
      lines.push(`${JSON.stringify({ type: 'api-request-blob', ...common, requestRef: `r${n}`, content: [{ role: 'user', content: TEXT.repeat(12 + (n % 9)) }], timestamp: t })}\n`);
      const usage = { input_tokens: 4 + (n % 5), cache_creation_input_tokens: 500, cache_read_input_tokens: 20000 + n, output_tokens: 60 + (n % 40), service_tier: 'standard' };
      for (const [block, content] of [[0, { type: 'thinking', thinking: TEXT.repeat(2) }], [1, { type: 'tool_use', id: `toolu_${n}`, name: 'Read', input: { file_path: '/home/bench/work/repo/src/x.ts' } }]]) {
        lines.push(
          `${JSON.stringify({ ...common, type: 'assistant', requestId: `req_real${n}`, apiBlockIndex: block, message: { id: msg, type: 'message', role: 'assistant', model: 'claude-sonnet-5-5', content: [content], usage }, uuid: `a-${n}-${block}`, timestamp: t })}\n`,
        );
      }
      lines.push(`${JSON.stringify({ ...common, type: 'user', message: { role: 'user', content: [{ type: 'tool_result', tool_use_id: `toolu_${n}`, content: TEXT.repeat(6 + (n % 11)) }] }, uuid: `u-${n}`, timestamp: t })}\n`);
    }
    lines.push(`${JSON.stringify({ ...common, type: 'attachment', attachment: { type: 'todo', content: [] }, timestamp: t })}\n`);
    lines.push(`${JSON.stringify({ ...common, type: 'system', subtype: 'informational', content: 'ok', timestamp: t })}\n`);
    lines.push(`${JSON.stringify({ type: 'cost-state', sessionId: this.sessionId, totalCostUSD: 0.01 * this.n, modelUsage: { 'claude-sonnet-5-5': { inputTokens: this.n, outputTokens: this.n, cacheReadInputTokens: 0, cacheCreationInputTokens: 0, costUSD: 0 } }, timestamp: t })}\n`);
    return { text: lines.join(''), lines: lines.length };
  }
}

/** Writes `lines` lines (or until `bytes` bytes) to `path` (`realistic`: 2.1.328's mix of lines); resolves with the byte and line counts. */
export async function writeTranscript(path, writer, { lines = Number.POSITIVE_INFINITY, bytes = Number.POSITIVE_INFINITY, realistic = false }) {
  mkdirSync(dirname(path), { recursive: true });
  const out = createWriteStream(path);
  let written = 0;
  let count = 0;
  let batch = '';
  while (count < lines && written < bytes) {
    const turn = realistic ? writer.realisticTurn() : { text: writer.turn(), lines: 2 };
    const text = turn.text;
    batch += text;
    written += Buffer.byteLength(text);
    count += turn.lines;
    if (batch.length > 1 << 20) {
      if (!out.write(batch)) await new Promise((r) => out.once('drain', r));
      batch = '';
    }
  }
  out.write(batch);
  await new Promise((r) => out.end(r));
  return { bytes: written, lines: count };
}

/** A Claude Code data dir with the plugin installed where Claude Code caches it, and an account file. */
export function makeDataDir(base, name) {
  const dataDir = join(base, name);
  mkdirSync(join(dataDir, 'projects', '-home-bench-work-repo'), { recursive: true });
  writeFileSync(join(dataDir, '.claude.json'), JSON.stringify({ oauthAccount: { emailAddress: 'bench@example.org' } }));
  const version = JSON.parse(readFileSync(join(ROOT, 'plugin', '.claude-plugin', 'plugin.json'), 'utf8')).version;
  const pluginRoot = join(dataDir, 'plugins', 'cache', 'local', 'ccflux', version);
  cpSync(join(ROOT, 'plugin'), pluginRoot, { recursive: true, filter: (src) => !/[\\/]bin[\\/]ccflux-[^\\/]*$/.test(src) });
  const sessionId = `${name.replace(/[^a-z0-9]/gi, '').slice(0, 8).padEnd(8, '0')}-0000-4000-8000-000000000000`;
  const transcript = join(dataDir, 'projects', '-home-bench-work-repo', `${sessionId}.jsonl`);
  return { name, dataDir, pluginRoot, sessionId, transcript, writer: new TranscriptWriter(sessionId) };
}

/** Claude Code's environment for a hook; NODE_EXTRA_CA_CERTS kept or removed as asked. */
export function hookEnv(session, endpoint, token, { extraCa }) {
  const env = { ...process.env, CLAUDE_CONFIG_DIR: session.dataDir, CLAUDE_PLUGIN_ROOT: session.pluginRoot, CCFLUX_ALLOW_HTTP: '1' };
  for (const key of Object.keys(env)) if (/^(CCFLUX_(?!ALLOW_HTTP)|CLAUDE_PLUGIN_OPTION_|NODE_OPTIONS$)/.test(key)) delete env[key];
  if (extraCa) env.NODE_EXTRA_CA_CERTS = extraCa;
  else delete env.NODE_EXTRA_CA_CERTS;
  if (endpoint) env.CLAUDE_PLUGIN_OPTION_API_ENDPOINT = endpoint;
  if (token) env.CLAUDE_PLUGIN_OPTION_API_TOKEN = token;
  return env;
}

export function stopCommand(session) {
  const hooks = JSON.parse(readFileSync(join(session.pluginRoot, 'hooks', 'hooks.json'), 'utf8'));
  return hooks.hooks.Stop[0].hooks[0].command.replaceAll('$' + '{CLAUDE_PLUGIN_ROOT}', session.pluginRoot);
}

export function hookInput(session) {
  return JSON.stringify({
    session_id: session.sessionId,
    transcript_path: session.transcript,
    cwd: '/home/bench/work/repo',
    permission_mode: 'default',
    hook_event_name: 'Stop',
    stop_hook_active: false,
    last_assistant_message: 'Done.',
  });
}

/** Pids of live ccflux processes of this data dir (Linux /proc; elsewhere none). */
export function workers(dataDir) {
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const out = [];
  for (const pid of entries) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('ccflux')) continue;
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').includes(`CLAUDE_CONFIG_DIR=${dataDir}\0`)) out.push(Number(pid));
    } catch {
      // gone, or not ours
    }
  }
  return out;
}

export async function waitQuiet(dataDirs, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (dataDirs.some((d) => workers(d).length > 0)) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/** `--require` this to have a process write its `process.resourceUsage()` to $CCFLUX_BENCH_RUSAGE at exit. */
export const RUSAGE_PRELOAD = `
const fs = require('node:fs');
process.on('exit', () => {
  try { fs.writeFileSync(process.env.CCFLUX_BENCH_RUSAGE, JSON.stringify(process.resourceUsage())); } catch {}
});
`;

/** FNV-1a shard choice, as src/client/count/ledger.ts `shardOf` (part of the on-disk format). */
export function shardOf(id) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return ((hash ^ (hash >>> 8) ^ (hash >>> 16) ^ (hash >>> 24)) & 0xff).toString(16).padStart(2, '0');
}

/**
 * A year of heavy use in a data dir's ledger: `entries` ledger lines (~1,100 messages a day) of
 * 1,000 closed sessions spread over the last 365 days, in the real shard layout, each with its
 * closed session state; the transcripts of the last 30 days' sessions still exist (Claude Code's
 * default cleanupPeriodDays removed the others). Returns the ledger bytes written.
 */
export function writeOldLedger(dataDir, entries) {
  const stateDir = join(dataDir, 'ccflux');
  const dir = join(stateDir, 'ledger');
  const projectDir = join(dataDir, 'projects', '-home-bench-old-repo');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(projectDir, { recursive: true });
  const today = Math.floor(Date.now() / 86_400_000);
  const perSession = Math.max(1, Math.ceil(entries / 1000));
  const shards = new Map();
  for (let n = 0; n < entries; n++) {
    const m = `msg_old${n}`;
    const session = Math.floor(n / perSession);
    const sid = `01d${String(session).padStart(5, '0')}-0000-4000-8000-000000000000`;
    const t = today - 365 + Math.floor((n / entries) * 365);
    const line = JSON.stringify({ k: `m:${m}|r:req_old${n}`, m, sc: false, model: 'claude-sonnet-4-6', i: 10, o: 100 + (n % 50), cr: 9000, cw: 300, s: sid, t });
    const id = shardOf(m);
    const list = shards.get(id) ?? [];
    list.push(line);
    shards.set(id, list);
    if (n % perSession === 0) {
      const transcriptPath = join(projectDir, `${sid}.jsonl`);
      const at = new Date(t * 86_400_000).toISOString();
      const state = { version: 1, sessionId: sid, transcriptPath, nextTurnIndex: 40, sessionStartUtc: at, closed: true, files: {}, outbox: [], updatedAt: at };
      writeFileSync(join(stateDir, `${sid}.offset`), `${JSON.stringify(state)}\n`, { mode: 0o600 });
      if (today - t <= 30) writeFileSync(transcriptPath, '{"type":"summary"}\n');
    }
  }
  let bytes = 0;
  for (const [id, list] of shards) {
    const text = `${list.join('\n')}\n`;
    writeFileSync(join(dir, `${id}.jsonl`), text, { mode: 0o600 });
    bytes += text.length;
  }
  // A device in use has pruned before (its last cycle yesterday): today's cycle is due.
  writeFileSync(join(dir, 'prune.json'), `${JSON.stringify({ day: today - 1, next: 256, retired: [] })}\n`, { mode: 0o600 });
  return bytes;
}

/** One POST on a keep-alive agent; resolves with the status and the whole body as text. */
export function post(agent, url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
