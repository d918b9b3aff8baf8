import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, isCcfluxError } from '../../../src/client/local/errors';
import { acquireLock, inspectLock, processStartToken, waitForLockHolder, writeFileAtomic } from '../../../src/client/local/fsx';

let dir: string;
let holderScript: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ccflux-fsx-'));
  // A separate process that takes a lock, says so, then holds it (or works in a loop for the race test).
  const entry = join(dir, 'holder.ts');
  writeFileSync(
    entry,
    `import { appendFileSync } from 'node:fs';
     import { acquireLock } from ${JSON.stringify(resolve('src/client/local/fsx.ts'))};
     const [lock, mode, log] = process.argv.slice(2);
     (async () => {
       if (mode === 'hold') {
         await acquireLock(lock, { waitMillis: 0, staleMillis: 60_000 });
         process.stdout.write('held\\n');
         setInterval(() => {}, 1000);
         return;
       }
       for (let i = 0; i < 15; i++) {
         const release = await acquireLock(lock, { waitMillis: 20_000, staleMillis: 60_000 });
         appendFileSync(log, 'in ' + process.pid + '\\n');
         await new Promise((r) => setTimeout(r, 2));
         appendFileSync(log, 'out ' + process.pid + '\\n');
         await release();
       }
     })();`,
  );
  holderScript = join(dir, 'holder.cjs');
  await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: holderScript, logLevel: 'silent' });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function startHolder(lock: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [holderScript, lock, 'hold'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res, rej) => {
    child.stdout?.on('data', (d) => String(d).includes('held') && res());
    child.once('exit', (code) => rej(new Error(`holder exited ${code}`)));
  });
  return child;
}

async function expectLocked(p: Promise<unknown>): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(isCcfluxError(err, ERROR_CODES.LOCKED), String(err)).toBe(true);
}

describe('locks that name their holder', () => {
  it('a live holder in another process is respected; once it is SIGKILLed the lock is taken over at once', async () => {
    const lock = join(dir, 'a.lock');
    const child = await startHolder(lock);
    const owner = JSON.parse(readFileSync(join(lock, 'owner'), 'utf8'));
    expect(owner).toMatchObject({ pid: child.pid, start: processStartToken(child.pid ?? 0) });
    await expectLocked(acquireLock(lock, { waitMillis: 300, staleMillis: 60_000 }));
    expect(await inspectLock(lock, 60_000)).toEqual({ state: 'held' });
    child.kill('SIGKILL');
    await once(child, 'exit');
    const started = Date.now();
    // staleMillis 60 s: only the dead holder makes this succeed, not the refresh time.
    const release = await acquireLock(lock, { waitMillis: 0, staleMillis: 60_000 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(JSON.parse(readFileSync(join(lock, 'owner'), 'utf8')).pid).toBe(process.pid);
    await release();
    expect(await inspectLock(lock, 60_000)).toEqual({ state: 'free' });
  });

  it('a reused pid (same pid, other process start) is a dead holder', async () => {
    const lock = join(dir, 'b.lock');
    mkdirSync(lock);
    writeFileSync(join(lock, 'owner'), JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), start: 'other-boot:1', nonce: 'n1' }));
    const release = await acquireLock(lock, { waitMillis: 0, staleMillis: 60_000 });
    await release();
  });

  it('release and take-over leave nothing behind, also of a lock dir holding more than its owner file', async () => {
    const area = mkdtempSync(join(dir, 'tidy-'));
    const lock = join(area, 'd.lock');
    await (await acquireLock(lock, { waitMillis: 0, staleMillis: 60_000 }))();
    expect(readdirSync(area)).toEqual([]);

    mkdirSync(join(lock, 'nested'), { recursive: true });
    writeFileSync(join(lock, 'nested', 'junk'), 'left by an older version');
    writeFileSync(join(lock, 'owner'), JSON.stringify({ pid: process.pid, host: (await import('node:os')).hostname(), start: 'other-boot:1', nonce: 'n2' }));
    const release = await acquireLock(lock, { waitMillis: 0, staleMillis: 60_000 });
    expect(readdirSync(lock)).toEqual(['owner']);
    await release();
    expect(readdirSync(area)).toEqual([]);
  });

  it('a contender that gives up leaves no staging copy of its own lock behind', async () => {
    const area = mkdtempSync(join(dir, 'busy-'));
    const lock = join(area, 'e.lock');
    const release = await acquireLock(lock, { waitMillis: 0, staleMillis: 60_000 });
    await expectLocked(acquireLock(lock, { waitMillis: 30, staleMillis: 60_000 }));
    expect(readdirSync(area)).toEqual(['e.lock']);
    await release();
    expect(readdirSync(area)).toEqual([]);
  });

  it.skipIf(processStartToken(process.pid) === null)('the start token is stable for a process and differs between processes', () => {
    expect(processStartToken(process.pid)).toBe(processStartToken(process.pid));
    expect(processStartToken(process.ppid)).not.toBe(processStartToken(process.pid));
  });

  it('an unnamed (older ccflux) or other-host lock is judged by its refresh time', async () => {
    const lock = join(dir, 'c.lock');
    mkdirSync(lock);
    await expectLocked(acquireLock(lock, { waitMillis: 0, staleMillis: 5_000 }));
    const old = new Date(Date.now() - 10_000);
    utimesSync(lock, old, old);
    await (await acquireLock(lock, { waitMillis: 0, staleMillis: 5_000 }))();

    mkdirSync(lock);
    writeFileSync(join(lock, 'owner'), JSON.stringify({ pid: 1, host: 'another-host.example', start: null, nonce: 'n2' }));
    await expectLocked(acquireLock(lock, { waitMillis: 0, staleMillis: 5_000 }));
    utimesSync(lock, old, old);
    await (await acquireLock(lock, { waitMillis: 0, staleMillis: 5_000 }))();
  });

  it('release leaves alone a lock that was taken over meanwhile', async () => {
    const lock = join(dir, 'd.lock');
    const release = await acquireLock(lock, { waitMillis: 0, staleMillis: 5_000 });
    writeFileSync(join(lock, 'owner'), JSON.stringify({ pid: 1, host: 'another-host.example', start: null, nonce: 'theirs' }));
    await release();
    expect(await inspectLock(lock, 5_000)).toEqual({ state: 'held' });
  });

  it('waitForLockHolder returns when the holder dies, or at the deadline while it lives', async () => {
    const lock = join(dir, 'e.lock');
    const child = await startHolder(lock);
    expect(await waitForLockHolder(lock, { staleMillis: 60_000, deadlineAt: Date.now() + 200, pollMillis: 20 })).toBe(false);
    setTimeout(() => child.kill('SIGKILL'), 100);
    expect(await waitForLockHolder(lock, { staleMillis: 60_000, deadlineAt: Date.now() + 10_000, pollMillis: 20 })).toBe(true);
    await (await acquireLock(lock, { waitMillis: 0, staleMillis: 60_000 }))();
  });

  it('mutual exclusion: 4 processes taking turns, and a dead holder taken over by many at once, never two inside', async () => {
    const lock = join(dir, 'f.lock');
    const log = join(dir, 'f.log');
    writeFileSync(log, '');
    const dead = await startHolder(lock);
    dead.kill('SIGKILL');
    await once(dead, 'exit');
    const workers = Array.from({ length: 4 }, () => spawn(process.execPath, [holderScript, lock, 'loop', log], { stdio: 'inherit' }));
    await Promise.all(workers.map((w) => once(w, 'exit')));
    const events = readFileSync(log, 'utf8').trim().split('\n');
    expect(events).toHaveLength(4 * 15 * 2);
    let inside: string | null = null;
    for (const e of events) {
      const [what, pid] = e.split(' ');
      if (what === 'in') {
        expect(inside, `overlap at ${e}`).toBeNull();
        inside = pid ?? null;
      } else {
        expect(inside).toBe(pid);
        inside = null;
      }
    }
  }, 60_000);
});

describe('writeFileAtomic', () => {
  it('replaces the file whole with exactly the mode asked, leaves no temp file, and refuses a folder in the way', async () => {
    const sub = join(dir, 'atomic');
    mkdirSync(sub);
    const f = join(sub, 'state.json');
    writeFileSync(f, 'old', { mode: 0o644 });
    await writeFileAtomic(f, 'new');
    expect(readFileSync(f, 'utf8')).toBe('new');
    expect(statSync(f).mode & 0o777).toBe(0o600);
    await writeFileAtomic(f, Buffer.from('bytes'), 0o640);
    expect(statSync(f).mode & 0o777).toBe(0o640);
    expect(readdirSync(sub)).toEqual(['state.json']);
    mkdirSync(join(sub, 'folder.json'));
    await expect(writeFileAtomic(join(sub, 'folder.json'), 'x')).rejects.toMatchObject({ code: 'EISDIR' });
    expect(readdirSync(sub).sort()).toEqual(['folder.json', 'state.json']);
  });

  it('writes data given in pieces one after another, taking each piece only when the last is written', async () => {
    const f = join(dir, 'pieces.json');
    const taken: number[] = [];
    function* pieces() {
      for (let i = 0; i < 5; i++) {
        taken.push(i);
        yield `${'é'.repeat(i)}${i},`;
      }
    }
    await writeFileAtomic(f, pieces());
    expect(readFileSync(f, 'utf8')).toBe('0,é1,éé2,ééé3,éééé4,');
    expect(taken).toEqual([0, 1, 2, 3, 4]);
    expect(statSync(f).mode & 0o777).toBe(0o600);
    // Pieces larger than the write buffer, and many small ones filling it several times.
    const big = ['a'.repeat(300_000), ...Array.from({ length: 5000 }, (_, i) => `é${i}✓`), 'b'.repeat(100_000), 'end'];
    await writeFileAtomic(f, big.values());
    expect(readFileSync(f, 'utf8')).toBe(big.join(''));
  });
});
