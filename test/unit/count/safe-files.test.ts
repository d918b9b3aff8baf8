/**
 * Issue 16 rows 7 and 8: the device reads transcripts only from under the data dir's projects/
 * (real paths, so no symlink leads out), and only regular files, opened without blocking — a FIFO
 * never stalls the worker.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CollectDeps, collectSession } from '../../../src/client/count/collect';
import { isUnder, openRegularFile } from '../../../src/client/count/safe-files';
import { readNewLines } from '../../../src/client/count/transcript';
import { ensurePrivateDir } from '../../../src/client/local/fsx';
import type { Logger } from '../../../src/client/local/log';
import { statePaths } from '../../../src/client/local/paths';
import { MemoryQueue, sumReports } from '../../helpers/gen-transcript';

const A = 'aaaaaaaa-0000-4000-8000-000000000001';
let root: string;
let dataDir: string;
let outside: string;
let errors: string[];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ccflux-safe-files-'));
  dataDir = join(root, 'claude');
  outside = join(root, 'other-user-tmp');
  mkdirSync(join(dataDir, 'projects', '-p'), { recursive: true });
  mkdirSync(outside, { recursive: true });
  errors = [];
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function line(id: string, input: number): string {
  return `${JSON.stringify({
    type: 'assistant',
    uuid: `u-${id}`,
    sessionId: A,
    isSidechain: true,
    timestamp: '2026-05-11T02:59:00.000Z',
    requestId: `req_${id}`,
    message: { id: `msg_${id}`, model: 'claude-sonnet-4-6', role: 'assistant', usage: { input_tokens: input, output_tokens: 1 } },
  })}\n`;
}

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}

describe('isUnder', () => {
  it('accepts files under projects/, refuses others and symlinks leading out', async () => {
    const projects = join(dataDir, 'projects');
    writeFileSync(join(projects, '-p', 's.jsonl'), '');
    writeFileSync(join(outside, 'agent-x.jsonl'), '');
    symlinkSync(join(outside, 'agent-x.jsonl'), join(projects, '-p', 'agent-link.jsonl'));
    symlinkSync(outside, join(projects, 'linked-project'));
    expect(await isUnder(projects, join(projects, '-p', 's.jsonl'))).toBe(true);
    expect(await isUnder(projects, join(projects, '-p', 'not-yet.jsonl'))).toBe(true);
    expect(await isUnder(projects, join(outside, 'agent-x.jsonl'))).toBe(false);
    expect(await isUnder(projects, join(projects, '..', '..', 'other-user-tmp', 'agent-x.jsonl'))).toBe(false);
    expect(await isUnder(projects, join(projects, '-p', 'agent-link.jsonl'))).toBe(false);
    expect(await isUnder(projects, join(projects, 'linked-project', 'agent-x.jsonl'))).toBe(false);
    expect(await isUnder(projects, projects)).toBe(false);
  });

  it('follows a symlinked data dir itself (the root is resolved too)', async () => {
    const link = join(root, 'claude-link');
    symlinkSync(dataDir, link);
    writeFileSync(join(dataDir, 'projects', '-p', 's.jsonl'), '');
    expect(await isUnder(join(link, 'projects'), join(link, 'projects', '-p', 's.jsonl'))).toBe(true);
  });
});

describe('openRegularFile', () => {
  it('opens a regular file; returns null at once for a FIFO (no blocking open) and a directory', async () => {
    const file = join(root, 'f.jsonl');
    writeFileSync(file, 'x');
    const handle = await openRegularFile(file);
    expect(handle).not.toBeNull();
    await handle?.close();
    const fifo = join(root, 'fifo.jsonl');
    mkfifo(fifo);
    expect(await openRegularFile(fifo)).toBeNull();
    expect(await openRegularFile(root)).toBeNull();
    await expect(openRegularFile(join(root, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('the transcript reader skips a FIFO instead of blocking in open()', async () => {
    const fifo = join(root, 'fifo.jsonl');
    mkfifo(fifo);
    const result = await readNewLines(fifo, undefined, () => {}, { log: { error: (m: string) => errors.push(m) } as unknown as Logger });
    expect(result.lines).toBe(0);
    expect(errors.join('\n')).toContain('not a regular file');
  });
});

describe('collectSession reads nothing outside projects/', () => {
  function deps(queue: MemoryQueue): CollectDeps {
    const log = { activity: () => {}, error: (m: string) => errors.push(m), flush: async () => {} } as unknown as Logger;
    return { paths: statePaths(dataDir), now: () => new Date('2026-05-11T03:00:00Z'), log, queue, userEmail: 'a@example.org' };
  }

  it('an agent_transcript_path in another folder, a symlinked agent file and a FIFO are not counted', async () => {
    await ensurePrivateDir(statePaths(dataDir).dir);
    const main = join(dataDir, 'projects', '-p', `${A}.jsonl`);
    writeFileSync(main, line('main', 1));
    const foreign = join(outside, 'agent-foreign.jsonl');
    writeFileSync(foreign, line('foreign', 1000));
    // A subagent file that is a symlink out of projects/, and a FIFO where a subagent file would be.
    const subagents = join(dataDir, 'projects', '-p', A, 'subagents');
    mkdirSync(subagents, { recursive: true });
    const leaking = join(outside, 'agent-leak.jsonl');
    writeFileSync(leaking, line('leak', 50_000));
    symlinkSync(leaking, join(dataDir, 'projects', '-p', 'agent-sibling.jsonl'));
    mkfifo(join(subagents, 'agent-fifo.jsonl'));
    const queue = new MemoryQueue();
    await collectSession(deps(queue), { sessionId: A, transcriptPath: main, agentTranscriptPath: foreign });
    expect(sumReports(queue.reports)).toEqual({
      'claude-sonnet-4-6': { input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 },
    });
    // The foreign file is not tracked (re-read every turn before the fix).
    writeFileSync(foreign, line('foreign', 1000) + line('foreign2', 1000));
    await collectSession(deps(queue), { sessionId: A, transcriptPath: main });
    expect(sumReports(queue.reports)['claude-sonnet-4-6']?.input_tokens).toBe(1);
  }, 20_000);
});
