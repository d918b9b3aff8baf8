#!/usr/bin/env node
// `npm run bench`: how fast ccflux is where it matters, on this machine, with everything real
// (the built plugin, the built receiver, loopback). Prints a table and writes bench/results.json.
//
//   node bench/run.mjs [--runs 30] [--quick] [--only hook,scaling,parse,drain,ingest,receiver] [--json]
//                      [--sizes 1000,10000] [--ledger-entries 400000] [--parse-mb 260] [--parse-runs 5]
//                      [--binary plugin/bin/ccflux-<platform>-<arch>]
//
// 1. Stop hook wall time as Claude Code sees it (the plugin's hooks.json command through `sh -c`,
//    from spawn until exit and stdio closed): receiver up, nothing listening, a blackholed port;
//    each with and without NODE_EXTRA_CA_CERTS; next to `node -e 0` (and the compiled binary's
//    `--version` when plugin/bin/ccflux-<platform>-<arch> exists) measured in the same rounds.
// 2. Per-turn cost against transcript length (1k, 10k, 100k, 300k lines, 2 new lines a turn):
//    the detached worker's run, timed by running it with `--foreground`.
// 3. Cold parse of a 200 MB transcript (MB/s, peak RSS) next to a bare split + JSON.parse loop
//    (`--parse-mb 260`: the issue-12 size, ~300k lines of the 2.1.328 mix).
// 4. Queue drain: 500 queued reports delivered to the local receiver by `ccflux flush`; and a
//    1,000-report backlog drained by one `flush` from a receiver at its default rate limit.
// 5. Receiver ingest with 16 concurrent clients (bench/receiver-ingest.mjs, run as it is).
// 6. The receiver at 1,000 users × 90 days on SQLite and PostgreSQL: views, /health under view
//    load, ingest with 1–3 instances (bench/receiver.mjs; its options pass through).
//
// Variants are interleaved (shuffled each round) after warm-up rounds, so drift in machine load
// hits them alike. Shared machines are noisy: compare numbers from one run, not across runs.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { appendFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  blackhole,
  CLI,
  deadPort,
  hookEnv,
  hookInput,
  makeDataDir,
  RECEIVER,
  ROOT,
  RUSAGE_PRELOAD,
  startReceiver,
  stats,
  stopCommand,
  timed,
  waitQuiet,
  writeOldLedger,
  writeTranscript,
} from './lib.mjs';
import { receiverBench, receiverOptions, receiverTable } from './receiver.mjs';

const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? fallback : args[i + 1];
};
const QUICK = flag('quick');
const RUNS = Number(option('runs', QUICK ? 8 : 30));
const WARMUP = QUICK ? 1 : 3;
const ONLY = new Set(option('only', 'hook,scaling,parse,drain,ingest,receiver').split(','));
const SIZES = option('sizes', '') ? option('sizes').split(',').map(Number) : QUICK ? [1_000, 10_000, 50_000] : [1_000, 10_000, 100_000, 300_000];
/** A year of heavy use: ~1,100 messages a day (issue 12). */
const LEDGER_ENTRIES = Number(option('ledger-entries', QUICK ? 100_000 : 400_000));
const PARSE_MB = Number(option('parse-mb', QUICK ? 40 : 200));
const DRAIN_REPORTS = QUICK ? 100 : 500;
const DRAIN_RUNS = QUICK ? 1 : 3;
/** The issue-14 figure: always 1,000, also with --quick (a few seconds). */
const BACKLOG_REPORTS = 1000;
const PARSE_RUNS = Number(option('parse-runs', QUICK ? 1 : 3));
const INGEST_REPORTS = QUICK ? 500 : 3000;
const EXTRA_CA = process.env.NODE_EXTRA_CA_CERTS || (existsSync('/etc/ssl/certs/ca-certificates.crt') ? '/etc/ssl/certs/ca-certificates.crt' : '');

const log = (msg) => process.stderr.write(`${msg}\n`);
/** Seeded shuffle (mulberry32) so a run's interleaving is reproducible. */
let seed = 20260511;
function rnd() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function shuffled(items) {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

const results = {
  when: new Date().toISOString(),
  machine: { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', loadavgStart: loadavg().map((x) => +x.toFixed(2)), nodeExtraCaCerts: EXTRA_CA || null },
  settings: { runs: RUNS, warmupRounds: WARMUP, quick: QUICK },
};

const base = mkdtempSync(join(tmpdir(), 'ccflux-bench-run-'));
let receiver;
let hole;

async function hookSection() {
  log('1/5 Stop hook wall time…');
  const dead = await deadPort();
  const endpoints = [
    ['receiver up', receiver.url],
    ['nothing listening', dead],
    ['blackholed port', hole.url],
  ];
  const variants = [];
  for (const [name, url] of endpoints) {
    for (const ca of EXTRA_CA ? [false, true] : [false]) {
      const session = makeDataDir(base, `hook-${name.replace(/\W+/g, '')}-${ca ? 'ca' : 'noca'}`);
      await writeTranscript(session.transcript, session.writer, { lines: 200 });
      const env = hookEnv(session, url, receiver.token, { extraCa: ca ? EXTRA_CA : null });
      variants.push({ kind: 'hook', label: `Stop hook, ${name}${ca ? ', NODE_EXTRA_CA_CERTS set' : ''}`, session, env, hang: url === hole.url, times: [] });
    }
  }
  const floorEnv = (ca) => {
    const env = { ...process.env };
    if (ca) env.NODE_EXTRA_CA_CERTS = EXTRA_CA;
    else delete env.NODE_EXTRA_CA_CERTS;
    return env;
  };
  for (const ca of EXTRA_CA ? [false, true] : [false]) {
    variants.push({ kind: 'cmd', label: `node -e 0${ca ? ', NODE_EXTRA_CA_CERTS set' : ''}`, file: process.execPath, argv: ['-e', '0'], env: floorEnv(ca), times: [] });
  }
  variants.push({ kind: 'cmd', label: 'sh reading stdin, exit 0 (the floor)', file: 'sh', argv: ['-c', 'cat >/dev/null; exit 0'], env: process.env, times: [] });
  const arch = process.arch === 'x64' ? 'x64' : process.arch;
  const binary = option('binary', join(ROOT, 'plugin', 'bin', `ccflux-${process.platform}-${arch}${process.platform === 'win32' ? '.exe' : ''}`));
  if (existsSync(binary)) {
    for (const ca of EXTRA_CA ? [false, true] : [false]) {
      variants.push({ kind: 'cmd', label: `compiled binary --version${ca ? ', NODE_EXTRA_CA_CERTS set' : ''}`, file: binary, argv: ['--version'], env: floorEnv(ca), times: [] });
    }
  } else {
    results.hookNote = `no compiled binary at ${binary} (build one with scripts/build-binary.mjs, or pass --binary PATH)`;
  }

  // Prime: token exchange and key registration happen once per data dir, not per turn.
  for (const v of variants.filter((x) => x.kind === 'hook' && !x.hang)) {
    await timed(process.execPath, [CLI, 'report-turn', '--foreground', '--input', hookInput(v.session)], { env: v.env });
  }
  for (let round = 0; round < WARMUP + RUNS; round++) {
    for (const v of shuffled(variants)) {
      let r;
      if (v.kind === 'hook') {
        await appendFile(v.session.transcript, v.session.writer.turn());
        r = await timed('sh', ['-c', stopCommand(v.session)], { env: v.env, input: hookInput(v.session) });
        if (r.code !== 0 || r.out !== '' || r.err !== '') throw new Error(`${v.label}: hook misbehaved: ${r.code} ${r.out}${r.err}`);
      } else {
        r = await timed(v.file, v.argv, { env: v.env, input: '{}' });
      }
      if (round >= WARMUP) v.times.push(r.ms);
    }
    // Workers of the answering variants finish before the next round (they would only add load);
    // blackholed workers wait out their own deadline in the background, as they would for a user.
    await waitQuiet(variants.filter((v) => v.kind === 'hook' && !v.hang).map((v) => v.session.dataDir), 30_000);
    if ((round + 1) % 10 === 0) log(`  round ${round + 1}/${WARMUP + RUNS}`);
  }
  const floorVariant = variants.find((v) => v.label === 'node -e 0');
  const nodeMedian = floorVariant ? stats(floorVariant.times).median : null;
  results.hook = variants.map((v) => ({ label: v.label, ...stats(v.times), xNode: nodeMedian ? +(stats(v.times).median / nodeMedian).toFixed(2) : null }));
  if (existsSync(binary)) results.binaryQuiet = await binaryQuietRounds(binary, floorEnv(false), variants.filter((v) => v.kind === 'hook').map((v) => v.session.dataDir));
}

/**
 * The binary's goal is a start-up ratio, so it is measured apart too: in the rounds above it runs
 * while the answering hooks' detached workers (and the blackholed ones) still run, which loads the
 * machine for whichever command comes after a hook. Here only `node -e 0` and the binary take turns,
 * after every earlier worker has finished.
 */
async function binaryQuietRounds(binary, env, dataDirs) {
  await waitQuiet(dataDirs, 60_000);
  const pair = [
    { label: 'node -e 0', file: process.execPath, argv: ['-e', '0'], times: [] },
    { label: 'compiled binary --version', file: binary, argv: ['--version'], times: [] },
  ];
  for (let round = 0; round < WARMUP + RUNS; round++) {
    for (const v of shuffled(pair)) {
      const r = await timed(v.file, v.argv, { env, input: '{}' });
      if (round >= WARMUP) v.times.push(r.ms);
    }
  }
  const [node, bin] = pair.map((v) => stats(v.times));
  return { node, binary: bin, xNode: +(bin.median / node.median).toFixed(2) };
}

async function scalingSection() {
  log('2/5 per-turn cost against transcript length…');
  const sessions = [];
  for (const lines of SIZES) {
    const session = makeDataDir(base, `size${lines}`);
    const { bytes } = await writeTranscript(session.transcript, session.writer, { lines });
    await appendFile(session.transcript, session.writer.closingLine());
    const env = hookEnv(session, receiver.url, receiver.token, { extraCa: null });
    const input = hookInput(session);
    const first = await timed(process.execPath, [CLI, 'report-turn', '--foreground', '--input', input], { env });
    sessions.push({ lines, bytes, session, env, input, firstMs: first.ms, times: [] });
    log(`  ${lines} lines (${(bytes / 1e6).toFixed(1)} MB): first (whole file) ${first.ms.toFixed(0)} ms`);
  }
  // The same 1k-line session in a data dir whose ledger holds a year of heavy use.
  const aged = makeDataDir(base, 'agedledger');
  const agedBytes = writeOldLedger(aged.dataDir, LEDGER_ENTRIES);
  await writeTranscript(aged.transcript, aged.writer, { lines: SIZES[0] });
  await appendFile(aged.transcript, aged.writer.closingLine());
  const agedEnv = hookEnv(aged, receiver.url, receiver.token, { extraCa: null });
  const agedSession = { lines: SIZES[0], bytes: 0, session: aged, env: agedEnv, input: hookInput(aged), aged: true, times: [] };
  // The first runs of the day also prune the ledger, an eighth of its shards each (prune.ts):
  // timed apart, so the rows below are the steady per-turn cost.
  agedSession.pruneRunsMs = [];
  for (let i = 0; i < 8; i++) {
    await appendFile(aged.transcript, aged.writer.turn() + aged.writer.closingLine());
    agedSession.pruneRunsMs.push(Math.round((await timed(process.execPath, [CLI, 'report-turn', '--foreground', '--input', agedSession.input], { env: agedEnv })).ms));
  }
  agedSession.firstMs = agedSession.pruneRunsMs[0];
  const pruned = readdirSync(join(aged.dataDir, 'ccflux', 'ledger')).filter((n) => n.endsWith('.jsonl')).reduce((n, f) => n + readFileSync(join(aged.dataDir, 'ccflux', 'ledger', f), 'utf8').split('\n').length - 1, 0);
  agedSession.keptEntries = pruned;
  log(`  ${SIZES[0]} lines with a ${LEDGER_ENTRIES}-entry ledger (${(agedBytes / 1e6).toFixed(0)} MB): first 8 runs (pruning) ${agedSession.pruneRunsMs.join(', ')} ms; ${pruned} entries kept`);
  const floor = [];
  for (let round = 0; round < WARMUP + RUNS; round++) {
    for (const s of shuffled([...sessions, agedSession, null])) {
      if (s === null) {
        const r = await timed(process.execPath, ['-e', '0'], { env: sessions[0].env });
        if (round >= WARMUP) floor.push(r.ms);
        continue;
      }
      await appendFile(s.session.transcript, s.session.writer.turn() + s.session.writer.closingLine());
      const r = await timed(process.execPath, [CLI, 'report-turn', '--foreground', '--input', s.input], { env: s.env });
      if (round >= WARMUP) s.times.push(r.ms);
    }
  }
  // A number measured on a failing path is worthless: say so loudly.
  for (const s of sessions) {
    const errors = await readFile(join(s.session.dataDir, 'ccflux', 'errors.log'), 'utf8').catch(() => '');
    const failed = errors.split('\n').filter((l) => /collection failed|delivery failed/.test(l));
    if (failed.length > 0) s.errors = `${failed.length} failed run(s), e.g. ${failed[0].slice(0, 160)}`;
  }
  const nodeMedian = stats(floor).median;
  const rows = sessions.map((s) => ({ lines: s.lines, mb: +(s.bytes / 1e6).toFixed(1), firstTurnMs: Math.round(s.firstMs), ...stats(s.times), xNode: +(stats(s.times).median / nodeMedian).toFixed(2), ...(s.errors ? { errors: s.errors } : {}) }));
  const smallest = rows[0];
  const largest = rows[rows.length - 1];
  const agedStats = stats(agedSession.times);
  results.scaling = {
    rows,
    agedLedger: { entries: LEDGER_ENTRIES, keptEntries: agedSession.keptEntries, pruneRunsMs: agedSession.pruneRunsMs, mb: +(agedBytes / 1e6).toFixed(1), ...agedStats, xNode: +(agedStats.median / nodeMedian).toFixed(2), ratioToEmptyLedger: +(agedStats.median / smallest.median).toFixed(2) },
    nodeStart: stats(floor),
    ratioLargestToSmallest: +(largest.median / smallest.median).toFixed(2),
    ratioAboveNodeStart: +((largest.median - stats(floor).median) / Math.max(1, smallest.median - stats(floor).median)).toFixed(2),
  };
}

const BARE_LOOP = `
const fs = require('node:fs');
const t0 = process.hrtime.bigint();
const fd = fs.openSync(process.argv[1], 'r');
const buf = Buffer.alloc(1 << 20);
let rest = '';
let lines = 0;
let usage = 0;
for (;;) {
  const n = fs.readSync(fd, buf, 0, buf.length, null);
  if (n === 0) break;
  const parts = (rest + buf.toString('utf8', 0, n)).split('\\n');
  rest = parts.pop();
  for (const line of parts) {
    if (line === '') continue;
    const v = JSON.parse(line);
    lines++;
    if (v.message && v.message.usage) usage += v.message.usage.output_tokens;
  }
}
process.stdout.write(JSON.stringify({ lines, usage, loopMs: Number(process.hrtime.bigint() - t0) / 1e6 }));
`;

/** bench/parse-entry.ts bundled: the device's reader and parser alone, in its own process. */
async function buildReaderOnly() {
  const { build } = await import('esbuild');
  const outfile = join(base, 'reader-only.mjs');
  await build({ entryPoints: [join(ROOT, 'bench', 'parse-entry.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile, logLevel: 'warning' });
  return outfile;
}

/**
 * One transcript read from offset 0, three ways, interleaved: the worker (`report-turn`, no
 * receiver: read, count, commit), the reader and parser alone, and the bare split + JSON.parse
 * loop. Ratios: throughput = floor time / our time (higher is better); memory = our peak RSS /
 * the floor's (lower is better).
 */
async function parseOne(name, realistic, preload, readerOnly) {
  const session = makeDataDir(base, `parse-${name}`);
  const written = await writeTranscript(session.transcript, session.writer, { bytes: PARSE_MB * 1e6, realistic });
  // The turn's closing line, as Claude Code writes it: the worker reads at once instead of
  // waiting 300 ms for a quiet file (idle time that is not parsing).
  const closing = session.writer.closingLine();
  await appendFile(session.transcript, closing);
  const bytes = written.bytes + Buffer.byteLength(closing);
  const lines = written.lines + 1;
  const rusageFile = join(base, 'rusage.json');
  // No receiver configured: the worker parses, counts, commits and finds nothing to deliver to.
  const env = { ...hookEnv(session, null, null, { extraCa: null }), CCFLUX_BENCH_RUSAGE: rusageFile };
  const readRss = async () => JSON.parse(await readFile(rusageFile, 'utf8')).maxRSS;
  const runs = { worker: [], reader: [], floor: [] };
  const rss = { worker: 0, reader: 0, floor: 0 };
  let trash = 0;
  for (let i = 0; i < PARSE_RUNS; i++) {
    for (const which of shuffled(['worker', 'reader', 'floor'])) {
      let r;
      if (which === 'worker') {
        // The last run's state moved aside, not deleted: on ext4 (with `discard`) deleting its
        // 257 shards and 8 MB state left journal work that slowed this run's file creations
        // ~4× (0.4 against 0.1 ms each); a first read on a user's machine follows no such delete.
        await rename(join(session.dataDir, 'ccflux'), join(base, `parse-trash-${trash++}`)).catch((err) => {
          if (err.code !== 'ENOENT') throw err;
        });
        r = await timed(process.execPath, ['--require', preload, CLI, 'report-turn', '--foreground', '--input', hookInput(session)], { env });
      } else if (which === 'reader') {
        r = await timed(process.execPath, ['--require', preload, readerOnly, session.transcript], { env });
      } else {
        r = await timed(process.execPath, ['--require', preload, '-e', BARE_LOOP, session.transcript], { env });
      }
      runs[which].push(r.ms);
      rss[which] = Math.max(rss[which], await readRss());
    }
  }
  for (let t = 0; t < trash; t++) await rm(join(base, `parse-trash-${t}`), { recursive: true, force: true });
  const state = JSON.parse(await readFile(join(session.dataDir, 'ccflux', `${session.sessionId}.offset`), 'utf8'));
  const cursor = Object.values(state.files)[0];
  if (!cursor || cursor.offset !== bytes) throw new Error(`the worker did not read the whole transcript (${cursor?.offset} of ${bytes})`);
  const mb = bytes / 1e6;
  const f = stats(runs.floor);
  const row = (which) => {
    const st = stats(runs[which]);
    return { ...st, mbPerSec: +(mb / (st.median / 1000)).toFixed(1), maxRssMb: +(rss[which] / 1024).toFixed(1), throughputVsFloor: +(f.median / st.median).toFixed(2), rssVsFloor: +(rss[which] / rss.floor).toFixed(2) };
  };
  return { name, mb: +mb.toFixed(1), lines, worker: row('worker'), reader: row('reader'), bareLoop: { ...f, mbPerSec: +(mb / (f.median / 1000)).toFixed(1), maxRssMb: +(rss.floor / 1024).toFixed(1) } };
}

async function parseSection() {
  log(`3/5 cold parse of ${PARSE_MB} MB transcripts…`);
  const preload = join(base, 'rusage-preload.cjs');
  writeFileSync(preload, RUSAGE_PRELOAD);
  const readerOnly = await buildReaderOnly();
  results.parse = [
    await parseOne('Claude Code 2.1.328 mix (most lines not usage)', true, preload, readerOnly),
    await parseOne('every other line an assistant line with usage', false, preload, readerOnly),
  ];
}

/** `count` queued reports as the hooks leave them, in a fresh data dir. */
async function queuedDataDir(name, count) {
  const session = makeDataDir(base, name);
  const dir = join(session.dataDir, 'ccflux');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const lines = [];
  for (let i = 0; i < count; i++) {
    lines.push(
      JSON.stringify({
        schema_version: 1,
        session_id: `bench-${name}-${Math.floor(i / 50)}`,
        user_email: 'bench@example.org',
        turn_index: i % 50,
        timestamp_utc: '2026-05-11T04:32:10Z',
        session_start_utc: '2026-05-11T04:30:00Z',
        models: { 'claude-sonnet-4-6': { input_tokens: 10 + i, output_tokens: 100, cache_read_tokens: 9000, cache_write_tokens: 0 } },
        plugin_version: '0.1.0',
      }),
    );
  }
  await writeFile(join(dir, 'pending_reports.jsonl'), `${lines.join('\n')}\n`, { mode: 0o600 });
  return session;
}

/** A 1,000-report backlog against a receiver at its default settings (30 requests a minute): one `ccflux flush`. */
async function backlogAtDefaults() {
  log(`4/5 backlog of ${BACKLOG_REPORTS} reports, receiver at default settings…`);
  const strict = await startReceiver(base, { defaultLimits: true });
  try {
    const session = await queuedDataDir('backlog', BACKLOG_REPORTS);
    const r = await timed(process.execPath, [CLI, 'flush', '--json'], { env: hookEnv(session, strict.url, strict.token, { extraCa: null }) });
    const outcome = JSON.parse(r.out || '{}');
    if (outcome.delivered !== BACKLOG_REPORTS) throw new Error(`flush delivered ${outcome.delivered} of ${BACKLOG_REPORTS}: ${r.out}${r.err}`);
    return { reports: BACKLOG_REPORTS, seconds: +(r.ms / 1000).toFixed(2), exitCode: r.code, rateLimitPerMinute: 30, underAMinute: r.ms < 60_000 };
  } finally {
    await strict.stop();
  }
}

async function drainSection() {
  log(`4/5 queue drain of ${DRAIN_REPORTS} reports…`);
  const runs = [];
  for (let run = 0; run < DRAIN_RUNS; run++) {
    const session = await queuedDataDir(`drain${run}`, DRAIN_REPORTS);
    const env = hookEnv(session, receiver.url, receiver.token, { extraCa: null });
    const r = await timed(process.execPath, [CLI, 'flush', '--json'], { env });
    const outcome = JSON.parse(r.out || '{}');
    if (outcome.delivered !== DRAIN_REPORTS) throw new Error(`flush delivered ${outcome.delivered} of ${DRAIN_REPORTS}: ${r.out}${r.err}`);
    runs.push(r.ms);
  }
  const s = stats(runs);
  results.drain = { reports: DRAIN_REPORTS, ...s, seconds: +(s.median / 1000).toFixed(2), reportsPerSec: Math.round(DRAIN_REPORTS / (s.median / 1000)), note: 'includes process start, one token exchange and one key registration' };
  results.drain.backlogAtDefaults = await backlogAtDefaults();
}

async function ingestSection() {
  log('5/5 receiver ingest (bench/receiver-ingest.mjs)…');
  const r = await timed(process.execPath, [join(ROOT, 'bench', 'receiver-ingest.mjs'), '--reports', String(INGEST_REPORTS), '--concurrency', '16']);
  if (r.code !== 0) throw new Error(`receiver-ingest failed: ${r.err}`);
  const parse = (label) => {
    const line = r.out.split('\n').find((l) => l.startsWith(label));
    const m = line && /(\d+) reports\/s\s+p50 ([\d.]+) ms\s+p99 ([\d.]+) ms/.exec(line);
    return m ? { reportsPerSec: Number(m[1]), p50Ms: Number(m[2]), p99Ms: Number(m[3]) } : null;
  };
  results.ingest = { reports: INGEST_REPORTS, concurrency: 16, receiver: parse('ccflux-receiver'), floor: parse('floor'), raw: r.out.trim() };
}

function table() {
  const out = [];
  const pad = (s, n) => String(s).padEnd(n);
  const num = (x, n = 9) => String(x).padStart(n);
  out.push(`ccflux bench — node ${process.version}, ${results.machine.cpus} CPU(s) ${results.machine.cpuModel}, load ${results.machine.loadavgStart.join(' ')} → ${results.machine.loadavgEnd.join(' ')}`);
  out.push('Shared machines are noisy: variants are interleaved so they see the same noise; compare within this run.');
  if (results.hook) {
    out.push('', `Stop hook wall time as Claude Code sees it (ms, ${RUNS} runs each after ${WARMUP} warm-up rounds, interleaved)`);
    out.push(`${pad('', 58)}${num('median')}${num('p95')}${num('min')}${num('max')}${num('× node', 9)}`);
    for (const r of results.hook) out.push(`${pad(r.label, 58)}${num(r.median)}${num(r.p95)}${num(r.min)}${num(r.max)}${num(r.xNode ?? '', 9)}`);
    out.push('(× node: median against `node -e 0` in the same rounds; goal for the compiled binary --version ≤ 1.3)');
    const q = results.binaryQuiet;
    if (q) out.push(`compiled binary --version in quiet rounds (only it and node -e 0, no hook workers running): median ${q.binary.median} ms against ${q.node.median} ms, × node ${q.xNode} (goal ≤ 1.3)`);
    if (results.hookNote) out.push(`(${results.hookNote})`);
  }
  if (results.scaling) {
    out.push('', `Per-turn worker cost (report-turn --foreground, 2 new lines + Claude Code's closing line a turn, receiver up; ms, ${RUNS} turns each)`);
    out.push(`${pad('transcript', 34)}${num('first', 10)}${num('median')}${num('p95')}${num('× node', 9)}`);
    for (const r of results.scaling.rows) {
      out.push(`${pad(`${r.lines} lines (${r.mb} MB)`, 34)}${num(r.firstTurnMs, 10)}${num(r.median)}${num(r.p95)}${num(r.xNode, 9)}`);
      if (r.errors) out.push(`  WARNING: the worker failed on this transcript: ${r.errors}`);
    }
    const a = results.scaling.agedLedger;
    out.push(`${pad(`1000 lines, ${a.entries}-entry ledger`, 34)}${num(a.pruneRunsMs?.[0] ?? '', 10)}${num(a.median)}${num(a.p95)}${num(a.xNode, 9)}`);
    out.push(`${pad('node -e 0', 34)}${num('', 10)}${num(results.scaling.nodeStart.median)}${num(results.scaling.nodeStart.p95)}${num(1, 9)}`);
    out.push(`worker per turn (1k lines) × node -e 0: ${results.scaling.rows[0].xNode} (goal ≤ 3); year-old ledger / empty ledger: ${a.ratioToEmptyLedger} (goal ≤ 1.2; after its pruning runs ${(a.pruneRunsMs ?? []).join(', ')} ms, ${a.keptEntries} of ${a.entries} entries kept)`);
    out.push(`ratio largest/smallest median: ${results.scaling.ratioLargestToSmallest} (goal: flat, 1.0); above node start: ${results.scaling.ratioAboveNodeStart}`);
  }
  if (results.parse) {
    for (const p of results.parse) {
      out.push('', `Cold parse: ${p.mb} MB transcript, ${p.lines} lines, ${p.name}; process wall time, median of ${PARSE_RUNS}, interleaved`);
      out.push(`${pad('', 40)}${num('ms')}${num('MB/s')}${num('RSS MB')}${num('× floor', 10)}${num('RSS ×', 8)}`);
      const line = (label, x, ratio) => `${pad(label, 40)}${num(x.median)}${num(x.mbPerSec)}${num(x.maxRssMb)}${num(ratio ? `${x.throughputVsFloor}` : '1', 10)}${num(ratio ? `${x.rssVsFloor}` : '1', 8)}`;
      out.push(line('ccflux reader + parser alone', p.reader, true));
      out.push(line('ccflux report-turn (read, count, commit)', p.worker, true));
      out.push(line('bare split + JSON.parse loop (floor)', p.bareLoop, false));
    }
    out.push('(× floor: throughput against the bare loop, higher is better. RSS ×: peak memory against it, lower is better. Issue 12\'s goals, for the');
    out.push(' Claude Code-shaped transcript: the reader and parser ≥ 1.5, peak memory ≤ 1.2. The worker also commits every group durably, which the');
    out.push(' loop does not; the all-usage transcript, with four times the groups, is a stress case, not a goal.)');
  }
  if (results.drain) {
    const d = results.drain;
    out.push('', `Queue drain: ${d.reports} queued reports → local receiver (ccflux flush): ${d.seconds} s = ${d.reportsPerSec} reports/s (median of ${d.n}; ${d.note})`);
    const b = d.backlogAtDefaults;
    if (b) out.push(`Backlog at default receiver settings (${b.rateLimitPerMinute} requests/min): ${b.reports} reports drained by one ccflux flush in ${b.seconds} s (${b.underAMinute ? 'under' : 'OVER'} a minute; exit ${b.exitCode})`);
  }
  if (results.ingest) {
    const i = results.ingest;
    const line = (label, x) => (x ? `  ${label}: ${x.reportsPerSec} reports/s, p50 ${x.p50Ms} ms, p99 ${x.p99Ms} ms` : `  ${label}: (not parsed)`);
    out.push('', `Receiver ingest: ${i.reports} signed reports, ${i.concurrency} concurrent clients`);
    out.push(line('ccflux-receiver', i.receiver));
    out.push(line('floor (bare node:http)', i.floor));
    if (i.receiver && i.floor) out.push(`  ratio receiver / floor: ${(i.receiver.reportsPerSec / i.floor.reportsPerSec).toFixed(2)} of the throughput`);
  }
  if (results.receiver) out.push('', receiverTable(results.receiver));
  return out.join('\n');
}

async function main() {
  for (const f of [CLI, RECEIVER]) if (!existsSync(f)) throw new Error(`${f} missing: run npm run build first`);
  receiver = await startReceiver(base);
  hole = await blackhole();
  try {
    if (ONLY.has('hook')) await hookSection();
    if (ONLY.has('scaling')) await scalingSection();
    if (ONLY.has('parse')) await parseSection();
    if (ONLY.has('drain')) await drainSection();
    if (ONLY.has('ingest')) await ingestSection();
    if (ONLY.has('receiver')) results.receiver = await receiverBench(receiverOptions(args));
  } finally {
    hole.stop();
    await receiver.stop();
    // Blackholed workers wait out their own deadline before their data dir goes.
    await waitQuiet(readdirSync(base).map((name) => join(base, name)), 30_000);
    rmSync(base, { recursive: true, force: true });
  }
  results.machine.loadavgEnd = loadavg().map((x) => +x.toFixed(2));
  const file = join(ROOT, 'bench', 'results.json');
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  if (flag('json')) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else process.stdout.write(`${table()}\n\n(written to bench/results.json)\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exitCode = 1;
});
