/**
 * src/client/local/fs.ts against `node:fs/promises`: the same results and error codes for the
 * calls the device side makes, failures as rejected promises (never a synchronous throw), and no
 * other file under src/ going back to the thread pool by importing `node:fs/promises`.
 */
import * as threaded from 'node:fs/promises';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as direct from '../../../src/client/local/fs';
import { cleanupTempDirs, makeTempDir, REPO_ROOT } from '../../helpers/env';

afterAll(async () => {
  await cleanupTempDirs();
});

/** Runs `call` with both implementations on twin directories; returns both outcomes. */
async function both<T>(call: (fs: typeof direct, dir: string) => Promise<T>): Promise<[unknown, unknown]> {
  const outcome = async (fs: typeof direct, dir: string) => {
    try {
      return { value: await call(fs, dir) };
    } catch (err) {
      return { code: (err as NodeJS.ErrnoException).code, syscall: (err as NodeJS.ErrnoException).syscall };
    }
  };
  const a = await makeTempDir('ccflux-fs-direct-');
  const b = await makeTempDir('ccflux-fs-threaded-');
  const strip = (v: unknown, dir: string) => JSON.parse(JSON.stringify(v ?? null).replaceAll(dir, '<dir>'));
  return [strip(await outcome(direct, a), a), strip(await outcome(threaded as unknown as typeof direct, b), b)];
}

describe('local/fs: node:fs/promises made with synchronous calls', () => {
  it.each<[string, (fs: typeof direct, dir: string) => Promise<unknown>]>([
    ['writeFile then readFile (text and bytes)', async (fs, d) => {
      await fs.writeFile(join(d, 'a'), 'héllo', { mode: 0o600 });
      return [await fs.readFile(join(d, 'a'), 'utf8'), [...(await fs.readFile(join(d, 'a')))], (await fs.stat(join(d, 'a'))).mode & 0o777];
    }],
    ['writeFile with flag wx on an existing file', async (fs, d) => {
      await fs.writeFile(join(d, 'a'), 'x');
      await fs.writeFile(join(d, 'a'), 'y', { flag: 'wx' });
    }],
    ['appendFile twice', async (fs, d) => {
      await fs.appendFile(join(d, 'log'), 'one\n');
      await fs.appendFile(join(d, 'log'), 'two\n');
      return fs.readFile(join(d, 'log'), 'utf8');
    }],
    ['readFile of a missing file', (fs, d) => fs.readFile(join(d, 'missing'), 'utf8')],
    ['stat and lstat of a file, a symlink and a missing path', async (fs, d) => {
      await fs.writeFile(join(d, 'f'), '12345');
      await fs.symlink(join(d, 'f'), join(d, 'l'));
      const s = await fs.stat(join(d, 'l'));
      const l = await fs.lstat(join(d, 'l'));
      return [s.size, s.isFile(), l.isSymbolicLink(), await fs.readlink(join(d, 'l')), await fs.stat(join(d, 'nope')).catch((e) => e.code)];
    }],
    ['mkdir recursive, readdir (names and entries), rmdir of a non-empty dir', async (fs, d) => {
      await fs.mkdir(join(d, 'x', 'y'), { recursive: true, mode: 0o700 });
      await fs.writeFile(join(d, 'x', 'f'), '');
      const names = (await fs.readdir(join(d, 'x'))).sort();
      const kinds = (await fs.readdir(join(d, 'x'), { withFileTypes: true })).map((e) => [e.name, e.isDirectory()]).sort();
      return [names, kinds, await fs.rmdir(join(d, 'x')).catch((e) => e.code)];
    }],
    ['mkdir of an existing dir without recursive', async (fs, d) => {
      await fs.mkdir(join(d, 'x'));
      await fs.mkdir(join(d, 'x'));
    }],
    ['mkdtemp, rename, link, unlink, copyFile, chmod, utimes, rm recursive', async (fs, d) => {
      const tmp = await fs.mkdtemp(join(d, 'tmp-'));
      await fs.writeFile(join(tmp, 'a'), 'data');
      await fs.rename(join(tmp, 'a'), join(tmp, 'b'));
      await fs.link(join(tmp, 'b'), join(tmp, 'c'));
      await fs.unlink(join(tmp, 'b'));
      await fs.copyFile(join(tmp, 'c'), join(tmp, 'd'));
      await fs.chmod(join(tmp, 'd'), 0o640);
      await fs.utimes(join(tmp, 'd'), 1_000, 2_000);
      const st = await fs.stat(join(tmp, 'd'));
      const listed = (await fs.readdir(tmp)).sort();
      await fs.rm(tmp, { recursive: true, force: true });
      return [listed, st.mode & 0o777, st.mtimeMs, await fs.readdir(d)];
    }],
    ['realpath through a symlinked dir, and of a missing path', async (fs, d) => {
      await fs.mkdir(join(d, 'real'));
      await fs.symlink(join(d, 'real'), join(d, 'alias'));
      return [await fs.realpath(join(d, 'alias')), await fs.realpath(join(d, 'gone')).catch((e) => e.code)];
    }],
    ['rename onto a missing directory', (fs, d) => fs.rename(join(d, 'a'), join(d, 'no', 'b'))],
    ['unlink of a missing file', (fs, d) => fs.unlink(join(d, 'a'))],
    ['open exclusive twice', async (fs, d) => {
      await (await fs.open(join(d, 'a'), 'wx', 0o600)).close();
      await fs.open(join(d, 'a'), 'wx', 0o600);
    }],
    ['a file handle: write, append, read at positions, stat, chmod, sync, readFile', async (fs, d) => {
      const path = join(d, 'h');
      const w = await fs.open(path, 'w', 0o600);
      const wrote = await w.write(Buffer.from('abcdef'), 1, 4);
      await w.writeFile('XYZ');
      await w.chmod(0o644);
      await w.sync();
      const mode = (await w.stat()).mode & 0o777;
      await w.close();
      const r = await fs.open(path, 'r');
      const buf = Buffer.alloc(3);
      const at2 = await r.read(buf, 0, 3, 2);
      const text = buf.toString();
      const atEnd = await r.read(Buffer.alloc(4), 0, 4, 100);
      const size = (await r.stat()).size;
      const all = await r.readFile('utf8');
      await r.close();
      return [wrote.bytesWritten, mode, at2.bytesRead, text, atEnd.bytesRead, size, all];
    }],
    ['O_APPEND handle writes at the end whatever the position', async (fs, d) => {
      const path = join(d, 'ap');
      await fs.writeFile(path, 'start');
      const { constants } = await import('node:fs');
      const h = await fs.open(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o600);
      await h.writeFile(' more');
      await h.write(Buffer.from('!'), 0, 1);
      await h.close();
      return fs.readFile(path, 'utf8');
    }],
  ])('%s: same outcome as node:fs/promises', async (_name, call) => {
    const [mine, theirs] = await both(call);
    expect(mine).toEqual(theirs);
  });

  it('a failure is a rejected promise, not a throw at the call', async () => {
    const pending = direct.stat('/nonexistent/ccflux/path');
    expect(pending).toBeInstanceOf(Promise);
    await expect(pending).rejects.toMatchObject({ code: 'ENOENT', syscall: 'stat' });
    const opening = direct.open('/nonexistent/ccflux/path', 'r');
    await expect(opening).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('no file under src/ imports node:fs/promises but local/fs.ts (types) and the ledger (batches of shards)', () => {
    const allowed = new Set(['src/client/local/fs.ts', 'src/client/count/ledger.ts']);
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.ts') && /['"]node:fs\/promises['"]|['"]fs\/promises['"]/.test(readFileSync(path, 'utf8'))) {
          const rel = relative(REPO_ROOT, path);
          if (!allowed.has(rel)) offenders.push(rel);
        }
      }
    };
    walk(join(REPO_ROOT, 'src'));
    expect(offenders).toEqual([]);
  });
});
