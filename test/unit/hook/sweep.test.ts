import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nullLogger } from '../../../src/client/local/log';
import { ORPHAN_AGE_MILLIS, sweepOrphans } from '../../../src/client/hook/sweep';

let root: string;
let tmp: string;
let state: string;
const NOW = new Date('2026-11-29T12:00:00Z');
const OLD = new Date(NOW.getTime() - ORPHAN_AGE_MILLIS - 1000);
const FRESH = new Date(NOW.getTime() - 1000);

async function touch(path: string, when: Date, dir = false): Promise<void> {
  if (dir) await mkdir(path, { recursive: true });
  else await writeFile(path, 'x');
  await utimes(path, when, when);
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ccflux-sweep-'));
  tmp = join(root, 'tmp');
  state = join(root, 'ccflux');
  await mkdir(join(state, 'ledger'), { recursive: true });
  await mkdir(tmp);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('sweepOrphans', () => {
  it('removes abandoned spools and temp files, keeps fresh ones and everything that is not ours', async () => {
    await touch(join(tmp, 'ccflux-hook.Ab12Cd34'), OLD);
    await touch(join(tmp, 'ccflux-hook-Xy98Zz'), OLD, true);
    await touch(join(tmp, 'ccflux-hook.Fresh123'), FRESH);
    await touch(join(tmp, 'other-tool.Ab12Cd34'), OLD);
    await touch(join(state, 'token_cache.json.3172839401'), OLD);
    await touch(join(state, 'aaaa-bbbb.offset.12345'), OLD);
    await touch(join(state, 'signing_key.tmp-4242-deadbeef'), OLD);
    await touch(join(state, 'ledger', '3f.jsonl.99'), OLD);
    await touch(join(state, 'pending_reports.jsonl.77'), FRESH);
    await touch(join(state, 'token_cache.json'), OLD);
    await touch(join(state, 'signing_key.corrupt-1795927214628'), OLD);
    await touch(join(state, 'aaaa-bbbb.offset'), OLD);

    const counts = await sweepOrphans({ tmpDir: tmp, stateDir: state, now: () => NOW, log: nullLogger });

    expect(counts).toEqual({ spools: 2, temps: 4 });
    expect((await readdir(tmp)).sort()).toEqual(['ccflux-hook.Fresh123', 'other-tool.Ab12Cd34']);
    expect((await readdir(state)).sort()).toEqual([
      'aaaa-bbbb.offset',
      'ledger',
      'pending_reports.jsonl.77',
      'signing_key.corrupt-1795927214628',
      'token_cache.json',
    ]);
    expect(await readdir(join(state, 'ledger'))).toEqual([]);
  });

  it('never touches files of another user', async () => {
    await touch(join(tmp, 'ccflux-hook.Ab12Cd34'), OLD);
    const otherUid = (process.getuid?.() ?? 0) + 1;
    expect(await sweepOrphans({ tmpDir: tmp, stateDir: state, now: () => NOW, log: nullLogger, uid: otherUid })).toEqual({
      spools: 0,
      temps: 0,
    });
    expect(await readdir(tmp)).toEqual(['ccflux-hook.Ab12Cd34']);
  });

  it('a missing directory is not an error', async () => {
    await expect(sweepOrphans({ tmpDir: join(root, 'none'), stateDir: join(root, 'none2'), now: () => NOW, log: nullLogger })).resolves.toEqual({
      spools: 0,
      temps: 0,
    });
  });
});
