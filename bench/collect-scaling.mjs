#!/usr/bin/env node
/**
 * Per-turn collection cost against transcript length, and the cold parse against a bare
 * split + JSON.parse loop. No assertions: prints numbers.
 *
 *   node bench/collect-scaling.mjs [--sizes 1000,200000] [--turns 20]
 *
 * Bundles src/client with esbuild on the fly (no build step needed).
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? fallback : args[i + 1];
};
const sizes = arg('sizes', '1000,200000').split(',').map(Number);
const turns = Number(arg('turns', '50'));

const work = mkdtempSync(join(tmpdir(), 'ccflux-bench-'));
const entry = join(work, 'entry.ts');
writeFileSync(
  entry,
  [
    `export { collectSession, ensureSessionState } from ${JSON.stringify(join(root, 'src/client/count/collect.ts'))};`,
    `export { statePaths } from ${JSON.stringify(join(root, 'src/client/local/paths.ts'))};`,
    `export { ensurePrivateDir } from ${JSON.stringify(join(root, 'src/client/local/fsx.ts'))};`,
    `export { nullLogger } from ${JSON.stringify(join(root, 'src/client/local/log.ts'))};`,
    `export { readNewLines } from ${JSON.stringify(join(root, 'src/client/count/transcript.ts'))};`,
    `export { parseUsageLine, mergeRecord } from ${JSON.stringify(join(root, 'src/client/count/usage.ts'))};`,
  ].join('\n'),
);
const bundle = join(work, 'bundle.cjs');
await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: bundle, logLevel: 'error' });

// Deterministic cost counters (wall-clock is noisy on a shared machine): bytes read and fsyncs.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
const io = { bytesRead: 0, fsyncs: 0 };
{
  const probe = await fsp.open(fileURLToPath(import.meta.url), 'r');
  const proto = Object.getPrototypeOf(probe);
  await probe.close();
  const read = proto.read;
  proto.read = async function (...a) {
    const r = await read.apply(this, a);
    io.bytesRead += r.bytesRead;
    return r;
  };
  const sync = proto.sync;
  proto.sync = async function () {
    io.fsyncs++;
    return sync.call(this);
  };
  const readFile = fsp.readFile;
  fsp.readFile = async (...a) => {
    const r = await readFile(...a);
    io.bytesRead += typeof r === 'string' ? Buffer.byteLength(r) : r.length;
    return r;
  };
  const fsync = fs.fsync;
  fs.fsync = (fd, cb) => {
    io.fsyncs++;
    return fsync(fd, cb);
  };
}
const lib = createRequire(import.meta.url)(bundle);

const SESSION = 'bench0000-0000-4000-8000-000000000000';
let n = 0;
const ts = () => new Date(Date.UTC(2026, 10, 20, 1, 0, 0) + n * 1000).toISOString();
const filler = 'lorem ipsum 東京 naïve '.repeat(40); // ~1 KB of prompt/tool text
function userLine() {
  n++;
  return JSON.stringify({ parentUuid: null, isSidechain: false, type: 'user', uuid: `u-${n}`, sessionId: SESSION, timestamp: ts(), message: { role: 'user', content: filler } });
}
function assistantLines() {
  // One response written as 2 content-block lines, a placeholder then the final usage.
  n++;
  const id = `msg_${n}`;
  const req = `req_${n}`;
  const usage = (out) => ({ input_tokens: 5, output_tokens: out, cache_read_input_tokens: 40000, cache_creation_input_tokens: 300, cache_creation: { ephemeral_5m_input_tokens: 300, ephemeral_1h_input_tokens: 0 } });
  const base = { parentUuid: null, isSidechain: false, type: 'assistant', sessionId: SESSION, version: '2.1.240', requestId: req };
  return [
    JSON.stringify({ ...base, uuid: `a-${n}-1`, timestamp: ts(), message: { id, model: 'claude-sonnet-4-6', role: 'assistant', content: [{ type: 'thinking', thinking: filler.slice(0, 300) }], stop_reason: null, usage: usage(3) } }),
    JSON.stringify({ ...base, uuid: `a-${n}-2`, timestamp: ts(), message: { id, model: 'claude-sonnet-4-6', role: 'assistant', content: [{ type: 'text', text: filler.slice(0, 500) }], stop_reason: 'end_turn', usage: usage(800) } }),
  ];
}
function transcriptText(lines) {
  const out = [];
  while (out.length < lines) out.push(userLine(), ...assistantLines());
  return `${out.slice(0, lines).join('\n')}\n`;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

console.log(`node ${process.version}, ${turns} turns per size`);
for (const size of sizes) {
  const dataDir = join(work, `data-${size}`);
  const transcript = join(dataDir, 'projects', '-bench', `${SESSION}.jsonl`);
  mkdirSync(dirname(transcript), { recursive: true });
  writeFileSync(transcript, transcriptText(size));
  const bytes = statSync(transcript).size;
  const paths = lib.statePaths(dataDir);
  await lib.ensurePrivateDir(paths.dir);
  const queue = { reports: 0, append: async () => void queue.reports++ };
  const deps = { paths, now: () => new Date(), log: lib.nullLogger, queue, userEmail: '' };
  const req = { sessionId: SESSION, transcriptPath: transcript };

  // Baseline: read the whole file, split, JSON.parse every line.
  let t0 = process.hrtime.bigint();
  let parsed = 0;
  for (const line of readFileSync(transcript, 'utf8').split('\n')) {
    if (line) {
      JSON.parse(line);
      parsed++;
    }
  }
  const bare = ms(t0);

  // Our reader + parser alone (no ledger, no state).
  t0 = process.hrtime.bigint();
  const groups = new Map();
  await lib.readNewLines(transcript, undefined, (line) => {
    for (const r of lib.parseUsageLine(line, SESSION).records) lib.mergeRecord(groups, r, null);
  });
  const readerOnly = ms(t0);

  // The first collect: everything is new (ledger written for every group).
  await lib.ensureSessionState(deps, req);
  t0 = process.hrtime.bigint();
  await lib.collectSession(deps, req);
  const cold = ms(t0);

  // Let the writeback of the freshly written transcript finish: it would compete with our fsyncs.
  execFileSync('sync');
  // Per turn: 2 new lines (a prompt and a one-line response), then collect.
  const perTurn = [];
  const cpuMicros = [];
  io.bytesRead = 0;
  io.fsyncs = 0;
  for (let t = 0; t < turns; t++) {
    appendFileSync(transcript, `${userLine()}\n${assistantLines()[1]}\n`);
    const cpu0 = process.cpuUsage();
    t0 = process.hrtime.bigint();
    await lib.collectSession(deps, req);
    perTurn.push(ms(t0));
    const cpu = process.cpuUsage(cpu0);
    cpuMicros.push(cpu.user + cpu.system);
  }
  console.log(
    `${String(size).padStart(7)} lines ${(bytes / 1e6).toFixed(1).padStart(6)} MB | bare split+JSON.parse ${bare.toFixed(0).padStart(5)} ms (${parsed} lines) | reader+parser ${readerOnly.toFixed(0).padStart(5)} ms (${groups.size} groups) | first collect ${cold.toFixed(0).padStart(5)} ms | per turn (2 new lines): median ${median(perTurn).toFixed(2)} ms wall, ${(median(cpuMicros) / 1000).toFixed(2)} ms CPU, ${Math.round(io.bytesRead / turns)} bytes read, ${(io.fsyncs / turns).toFixed(1)} fsyncs | reports ${queue.reports}`,
  );
}
rmSync(work, { recursive: true, force: true });
