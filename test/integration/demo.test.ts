/**
 * `npm run demo -- --serve` as a user runs it: the script keeps the receiver and dashboard up,
 * prints the URL and admin token, and Ctrl-C (SIGINT) at any point removes everything it made.
 * Each run gets its own TMPDIR, so "nothing left" is checked on the whole folder.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, cleanupTempDirs, makeTempDir } from '../helpers/env';

afterAll(async () => {
  await cleanupTempDirs();
});

interface Demo {
  child: ChildProcess;
  output: () => string;
  waitFor: (pattern: RegExp, timeoutMillis?: number) => Promise<RegExpExecArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startDemo(args: string[], tmp: string): Demo {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'scripts', 'demo.mjs'), ...args], {
    env: { ...process.env, TMPDIR: tmp, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so Ctrl-C can be sent the way a terminal sends it: to the whole group
    // (the demo, the receiver, any hook running).
    detached: true,
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const waitFor = (pattern: RegExp, timeoutMillis = 90_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(out);
        if (!match) return;
        listeners.delete(check);
        clearTimeout(timer);
        resolve(match);
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`no ${pattern} in the demo's output:\n${out}`));
      }, timeoutMillis);
      listeners.add(check);
      exited.then(() => setTimeout(() => {
        if (listeners.has(check)) {
          listeners.delete(check);
          clearTimeout(timer);
          reject(new Error(`the demo exited before ${pattern}:\n${out}`));
        }
      }, 50));
      check();
    });
  return { child, output: () => out, waitFor, exited };
}

/** Ctrl-C as a terminal delivers it: SIGINT to every process of the foreground group. */
function ctrlC(demo: Demo): void {
  process.kill(-(demo.child.pid as number), 'SIGINT');
}

function killAll(demo: Demo): void {
  try {
    process.kill(-(demo.child.pid as number), 'SIGKILL');
  } catch {
    // already gone
  }
}

describe('npm run demo', () => {
  it('--serve keeps the dashboard up with an admin token; Ctrl-C stops it and removes everything (exit 0)', async () => {
    const tmp = await makeTempDir('ccflux-demo-test-');
    const demo = startDemo(['--serve'], tmp);
    try {
      const [, dashboard] = await demo.waitFor(/dashboard {4}(http:\/\/127\.0\.0\.1:\d+\/admin\/)\n/);
      const [, adminToken] = await demo.waitFor(/admin token {2}([0-9a-f]{64})\n/);
      await demo.waitFor(/Press Ctrl-C to stop/);
      expect(demo.output()).toContain('Exact: the receiver holds what the API billed');
      expect(await readdir(tmp)).toHaveLength(1);

      const page = await fetch(`${dashboard}login`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>ccflux admin — log in</title>');
      // The printed token opens the dashboard (a bearer export is the simplest proof).
      const snapshot = await fetch(`${dashboard}?export`, { headers: { authorization: `Bearer ${adminToken}` } });
      expect(snapshot.status).toBe(200);

      ctrlC(demo);
      expect(await demo.exited).toEqual({ code: 0, signal: null });
      expect(demo.output()).not.toContain('stopped by itself');
      expect(await readdir(tmp)).toEqual([]);
      await expect(fetch(`${dashboard}login`)).rejects.toThrow();
    } finally {
      killAll(demo);
    }
  });

  it('a SIGINT to the demo alone (not its group) in --serve also stops the receiver and removes everything', async () => {
    const tmp = await makeTempDir('ccflux-demo-test-');
    const demo = startDemo(['--serve'], tmp);
    try {
      const [, dashboard] = await demo.waitFor(/dashboard {4}(http:\/\/127\.0\.0\.1:\d+\/admin\/)\n/);
      await demo.waitFor(/Press Ctrl-C to stop/);
      demo.child.kill('SIGINT');
      expect(await demo.exited).toEqual({ code: 0, signal: null });
      expect(await readdir(tmp)).toEqual([]);
      await expect(fetch(`${dashboard}login`)).rejects.toThrow();
    } finally {
      killAll(demo);
    }
  });

  it('Ctrl-C in the middle of the demo stops the receiver and workers and removes the temp folder (exit 130)', async () => {
    const tmp = await makeTempDir('ccflux-demo-test-');
    const demo = startDemo([], tmp);
    try {
      await demo.waitFor(/Stop +hook returned/);
      // Only the demo's own folder: the hooks' spool files live inside it, not beside it.
      expect(await readdir(tmp)).toHaveLength(1);
      ctrlC(demo);
      expect(await demo.exited).toEqual({ code: 130, signal: null });
      expect(demo.output()).toContain('SIGINT: stopping and removing');
      expect(demo.output()).not.toContain('demo failed');
      expect(await readdir(tmp)).toEqual([]);
    } finally {
      killAll(demo);
    }
  });
});
