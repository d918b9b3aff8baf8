/**
 * The built bundle, spawned as operators run it. Needs `npm run build` first (`npm test` does it).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECEIVER_BUNDLE, type RunningReceiver, startReceiver } from '../../test/helpers/receiver';
import { COMMANDS } from '../src/commands/index';
import { silentOutput } from '../src/output';
import { bearer, makeReport, send, tempDir } from './support';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return runIn(undefined, args, env);
}

function runIn(cwd: string | undefined, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [RECEIVER_BUNDLE, ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function startServe(env: Record<string, string>): { child: ChildProcess; listening: Promise<string>; output: () => { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, [RECEIVER_BUNDLE, 'serve'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const listening = new Promise<string>((resolve, reject) => {
    const check = () => {
      const match = /^listening on (http:\/\/\S+)$/m.exec(stdout);
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
  });
  return { child, listening, output: () => ({ stdout, stderr }) };
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

const tmp = tempDir();
const dbPath = join(tmp.dir, 'cli.db');
const env = { DATABASE_PATH: dbPath };

beforeAll(async () => {
  if (!existsSync(RECEIVER_BUNDLE)) throw new Error(`${RECEIVER_BUNDLE} missing: run npm run build first`);
});
afterAll(() => tmp.cleanup());


/** SIGTERMs a `serve` started by the test and returns its JSON log lines (stderr). */
async function stopAndReadLog(serve: ReturnType<typeof startServe>): Promise<Record<string, unknown>[]> {
  serve.child.kill('SIGTERM');
  await exited(serve.child);
  return serve
    .output()
    .stderr.split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
describe('provisioning commands', () => {
  it('users add prints only the refresh token on stdout', async () => {
    const result = await run(['users', 'add', 'ana@example.org', '--division', 'Research', '--days', '30'], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ccf_rt_[A-Za-z0-9_-]{43}\n$/);
    // stderr (not a terminal here) says only which database was used.
    expect(result.stderr).toBe(`ccflux-receiver: database ${dbPath} (DATABASE_PATH; new, created now)\n`);
  });

  it('refuses an existing user, an invalid email and bad --days, on stderr with a non-zero exit', async () => {
    const dup = await run(['users', 'add', 'ana@example.org'], env);
    expect(dup.code).toBe(1);
    expect(dup.stdout).toBe('');
    expect(dup.stderr).toContain('already exists');
    const invalid = await run(['users', 'add', 'not-an-email'], env);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('email');
    const days = await run(['users', 'add', 'x@example.org', '--days', 'soon'], env);
    expect(days.code).toBe(2);
    expect(days.stderr).toContain('--days');
    const missing = await run(['users', 'add'], env);
    expect(missing.code).toBe(2);
  });

  it('lists, reissues and revokes users; unknown users are errors', async () => {
    const list = await run(['users', 'list', '--json'], env);
    expect(list.code).toBe(0);
    const users = JSON.parse(list.stdout) as { email: string; division: string }[];
    expect(users.map((u) => [u.email, u.division])).toEqual([['ana@example.org', 'Research']]);
    expect((await run(['users', 'list'], env)).stdout).toContain('ana@example.org');

    const reissue = await run(['users', 'reissue', 'ana@example.org'], env);
    expect(reissue.code).toBe(0);
    expect(reissue.stdout).toMatch(/^ccf_rt_[A-Za-z0-9_-]{43}\n$/);

    const revoke = await run(['users', 'revoke', 'ana@example.org'], env);
    expect(revoke.code).toBe(0);
    for (const args of [['users', 'revoke', 'nobody@example.org'], ['users', 'reissue', 'nobody@example.org']]) {
      const unknown = await run(args, env);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('no user nobody@example.org');
    }
    expect((await run(['users', 'reissue', 'ana@example.org'], env)).stderr).toContain('revoked');
  });

  it('lists keys and refuses to revoke an unknown key', async () => {
    const list = await run(['keys', 'list', '--json'], env);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([]);
    const unknown = await run(['keys', 'revoke', Buffer.alloc(32).toString('base64')], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no device key');
  });

  it('answers --help for the program and every command and subcommand', async () => {
    const program = new Command('ccflux-receiver');
    const ctx = { env: {}, now: () => new Date(), output: silentOutput, onShutdownSignal: () => () => {} };
    for (const spec of COMMANDS) spec.register(program, ctx, async () => {});
    const paths: string[][] = [[]];
    const walk = (cmd: Command, prefix: string[]) => {
      for (const sub of cmd.commands) {
        paths.push([...prefix, sub.name()]);
        walk(sub, [...prefix, sub.name()]);
      }
    };
    walk(program, []);
    expect(paths.length).toBeGreaterThanOrEqual(9);
    for (const path of paths) {
      const result = await run([...path, '--help'], env);
      expect(result.code, path.join(' ')).toBe(0);
      expect(result.stdout, path.join(' ')).toContain('Usage: ccflux-receiver');
    }
  });
});

describe('serve', () => {
  it.each([
    ['RATE_LIMIT_PER_MINUTE', 'abc'],
    ['LISTEN_ADDR', 'not an address'],
    ['LISTEN_ADDR', '127.0.0.1:70000'],
    ['BODY_LIMIT_KB', '-5'],
    ['REQUIRE_SIGNATURES', 'sometimes'],
  ])('stops with a clear message and non-zero exit for %s=%s', async (name, value) => {
    const result = await run(['serve'], { ...env, LISTEN_ADDR: '127.0.0.1:0', [name]: value });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('invalid configuration');
    expect(result.stderr).toContain(name);
  });

  it('does not echo a rejected ADMIN_TOKEN', async () => {
    const result = await run(['serve'], { ...env, LISTEN_ADDR: '127.0.0.1:0', ADMIN_TOKEN: 'tooshort' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('ADMIN_TOKEN');
    expect(result.stderr).not.toContain('tooshort');
  });

  it('reports a port already in use and exits non-zero', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const result = await run(['serve'], { ...env, LISTEN_ADDR: `127.0.0.1:${port}` });
    blocker.close();
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`cannot listen on 127.0.0.1:${port}`);
  });

  it('prints the masked configuration, exactly one stdout line, and stops cleanly on SIGTERM mid-request', async () => {
    const dir = tempDir();
    const adminToken = 'admin-secret-'.padEnd(40, 'z');
    const served = startServe({
      DATABASE_PATH: join(dir.dir, 'serve.db'),
      LISTEN_ADDR: '127.0.0.1:0',
      ADMIN_TOKEN: adminToken,
    });
    try {
      const url = await served.listening;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
      const { stdout, stderr } = served.output();
      expect(stdout).toBe(`listening on ${url}\n`);
      expect(stderr).toContain('RATE_LIMIT_PER_MINUTE=30');
      expect(stderr).toContain('ADMIN_TOKEN=********');
      expect(stderr).not.toContain(adminToken);
      expect((await send(`${url}/health`, { method: 'GET' })).status).toBe(200);

      const token = (await run(['users', 'add', 'ana@example.org'], { DATABASE_PATH: join(dir.dir, 'serve.db') })).stdout.trim();
      const exchange = await send(`${url}/token`, { headers: bearer(token) });
      const access = (exchange.json as { access_token: string }).access_token;

      // A request in flight when SIGTERM arrives still gets its answer.
      const body = Buffer.from(JSON.stringify(makeReport()));
      const answer = new Promise<number>((resolve, reject) => {
        const req = request(
          `${url}/report`,
          { method: 'POST', headers: { ...bearer(access), 'content-type': 'application/json', 'content-length': String(body.length) }, agent: false },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.write(body.subarray(0, 10));
        setTimeout(() => {
          served.child.kill('SIGTERM');
          setTimeout(() => req.end(body.subarray(10)), 200);
        }, 100);
      });
      expect(await answer).toBe(200);
      expect(await exited(served.child)).toBe(0);
      expect(served.output().stderr).toContain('stopped');
      // The database was closed: SQLite removes the WAL file on a clean close.
      expect(existsSync(join(dir.dir, 'serve.db-wal'))).toBe(false);
    } finally {
      served.child.kill('SIGKILL');
      dir.cleanup();
    }
  });

  it('stops on SIGINT too', async () => {
    const dir = tempDir();
    const served = startServe({ DATABASE_PATH: join(dir.dir, 'int.db'), LISTEN_ADDR: '127.0.0.1:0' });
    try {
      await served.listening;
      served.child.kill('SIGINT');
      expect(await exited(served.child)).toBe(0);
    } finally {
      dir.cleanup();
    }
  });
});

describe('test/helpers/receiver.ts', () => {
  let r: RunningReceiver;
  afterAll(async () => {
    await r?.stop();
  });

  it('starts the bundle, provisions, queries, sums and restarts on the same port and database', async () => {
    r = await startReceiver({ env: { RATE_LIMIT_PER_MINUTE: '100' } });
    expect(r.url).toBe(`http://127.0.0.1:${r.port}`);
    const token = await r.addUser('ana@example.org', { division: 'R' });
    expect(token).toMatch(/^ccf_rt_/);
    const access = ((await send(`${r.url}/token`, { headers: bearer(token) })).json as { access_token: string }).access_token;
    const report = makeReport({
      models: { m: { input_tokens: 3, output_tokens: 4, cache_read_tokens: 5, cache_write_tokens: 6 } },
    });
    expect((await send(`${r.url}/report`, { headers: bearer(access), body: JSON.stringify(report) })).status).toBe(200);
    expect(r.sums()).toEqual({ m: { input_tokens: 3, output_tokens: 4, cache_read_tokens: 5, cache_write_tokens: 6 } });
    expect(r.query<{ email: string }>('SELECT email FROM users WHERE division = ?', 'R')).toEqual([{ email: 'ana@example.org' }]);

    await r.kill();
    await expect(send(`${r.url}/health`, { method: 'GET' })).rejects.toThrow();
    await r.restart();
    expect((await send(`${r.url}/health`, { method: 'GET' })).status).toBe(200);
    // Same database: the access token still works and the row is still there.
    const again = await send(`${r.url}/report`, {
      headers: bearer(access),
      body: JSON.stringify({ ...report, turn_index: 1 }),
    });
    expect(again.status).toBe(200);
    expect(r.sums().m!.input_tokens).toBe(6);
  });
});

describe('provisioning that fits IT', () => {
  it('refuses to create a second ./ccflux.db when DATABASE_PATH is forgotten, naming the fix', async () => {
    const cwd = tempDir('ccflux-cli-cwd-');
    try {
      const forgot = await runIn(cwd.dir, ['users', 'add', 'zed@example.org'], {});
      expect(forgot.code).toBe(2);
      expect(forgot.stdout).toBe('');
      expect(forgot.stderr).toContain(`no database at ${join(cwd.dir, 'ccflux.db')}: DATABASE_PATH is not set`);
      expect(forgot.stderr).toContain('--create');
      expect(existsSync(join(cwd.dir, 'ccflux.db'))).toBe(false);
      const created = await runIn(cwd.dir, ['users', 'add', 'zed@example.org', '--create'], {});
      expect(created.code).toBe(0);
      expect(created.stderr).toContain('(DATABASE_PATH unset: the default in the current directory; new, created now)');
      const again = await runIn(cwd.dir, ['users', 'list', '--json'], {});
      expect(again.stderr).toBe(`ccflux-receiver: database ${join(cwd.dir, 'ccflux.db')} (DATABASE_PATH unset: the default in the current directory)\n`);
      expect(JSON.parse(again.stdout).map((u: { email: string }) => u.email)).toEqual(['zed@example.org']);
    } finally {
      cwd.cleanup();
    }
  });

  it('--json on add, reissue, revoke and keys revoke; add --json carries the endpoint and the command', async () => {
    const e = { ...env, PUBLIC_URL: 'https://ccflux.example.org' };
    const add = await run(['users', 'add', 'jay@example.org', '--json'], e);
    expect(add.code).toBe(0);
    const a = JSON.parse(add.stdout) as Record<string, string>;
    expect(a).toMatchObject({ email: 'jay@example.org', endpoint: 'https://ccflux.example.org', command: 'ccflux login --endpoint https://ccflux.example.org' });
    expect(a.refresh_token).toMatch(/^ccf_rt_/);
    const re = JSON.parse((await run(['users', 'reissue', 'jay@example.org', '--json'], e)).stdout) as Record<string, string>;
    expect(re.refresh_token).not.toBe(a.refresh_token);
    expect(JSON.parse((await run(['users', 'revoke', 'jay@example.org', '--json'], e)).stdout)).toEqual({ email: 'jay@example.org', revoked: true });
    const keys = await run(['keys', 'revoke', 'bm90LWEta2V5', '--json'], e);
    expect(keys.code).toBe(1);
  });

  it('imports a CSV idempotently and writes the new tokens with the endpoint to a 0600 file', async () => {
    const csv = join(tmp.dir, 'staff.csv');
    writeFileSync(csv, '\ufeffName,Email,Division\r\n"Lopez, Maria",maria@example.org,Platform\r\nDev,DEV@example.org,"R&D, Lab"\r\n');
    const out = join(tmp.dir, 'tokens.csv');
    const e = { ...env, PUBLIC_URL: 'https://ccflux.example.org' };
    const first = await run(['users', 'import', csv, '--out', out], e);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('created 2, unchanged 0, division updated 0, revoked (skipped) 0');
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const lines = readFileSync(out, 'utf8').trim().split('\r\n');
    expect(lines[0]).toBe('email,division,endpoint,refresh_token');
    expect(lines[1]).toMatch(/^maria@example\.org,Platform,https:\/\/ccflux\.example\.org,ccf_rt_[A-Za-z0-9_-]{43}$/);
    expect(lines[2]).toMatch(/^dev@example\.org,"R&D, Lab",https:\/\/ccflux\.example\.org,ccf_rt_/);

    // Again, with one division changed and one new user: only the new one gets a token.
    writeFileSync(csv, 'email,division\nmaria@example.org,Data\ndev@example.org,"R&D, Lab"\nnew@example.org,\n');
    const refused = await run(['users', 'import', csv, '--out', out], e);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('already exists');
    const second = await run(['users', 'import', csv, '--out', join(tmp.dir, 'tokens2.csv'), '--json'], e);
    const summary = JSON.parse(second.stdout);
    expect(summary).toMatchObject({ created: 1, unchanged: 1, division_updated: 1, revoked_skipped: 0 });
    expect(second.stdout).not.toContain('ccf_rt_');
    expect(readFileSync(join(tmp.dir, 'tokens2.csv'), 'utf8').trim().split('\r\n')).toHaveLength(2);
  });

  it('refuses a CSV with bad lines as a whole, listing every problem', async () => {
    const csv = join(tmp.dir, 'bad.csv');
    writeFileSync(csv, 'email,division\nok@example.org,A\nnot-an-email,B\nok@example.org,C\n');
    const result = await run(['users', 'import', csv, '--out', join(tmp.dir, 'never.csv')], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('line 3: not a valid email address');
    expect(result.stderr).toContain('line 4: ok@example.org already appears on line 2');
    expect(existsSync(join(tmp.dir, 'never.csv'))).toBe(false);
    const list = JSON.parse((await run(['users', 'list', '--json'], env)).stdout) as { email: string }[];
    expect(list.map((u) => u.email)).not.toContain('ok@example.org');
  });

  it('reads ADMIN_TOKEN_FILE and never prints the token', async () => {
    const file = join(tmp.dir, 'admin-token');
    const token = 'f'.repeat(64);
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    const both = await run(['users', 'list'], { ...env, ADMIN_TOKEN_FILE: file, ADMIN_TOKEN: token });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('set ADMIN_TOKEN or ADMIN_TOKEN_FILE, not both');
    const missing = await run(['users', 'list'], { ...env, ADMIN_TOKEN_FILE: join(tmp.dir, 'nope') });
    expect(missing.stderr).toContain('cannot read ADMIN_TOKEN_FILE');
    const serve = startServe({ ...env, ADMIN_TOKEN_FILE: file, LISTEN_ADDR: '127.0.0.1:0' });
    const url = await serve.listening;
    const page = await send(`${url}/admin/`, { method: 'GET', headers: bearer(token) });
    expect(page.status).toBe(200);
    serve.child.kill('SIGTERM');
    await exited(serve.child);
    expect(serve.output().stderr).not.toContain(token);
  });
});

describe('export and logs', () => {
  it('exports usage, rows and the audit log from the CLI, to stdout or a 0600 file', async () => {
    const e = { DATABASE_PATH: join(tmp.dir, 'export.db') };
    await run(['users', 'add', 'exp@example.org', '--division', 'Ops'], e);
    const audit = await run(['export', 'audit', '--format', 'json'], e);
    expect(audit.code).toBe(0);
    expect(JSON.parse(audit.stdout)).toEqual([expect.objectContaining({ action: 'user.provision', actor: 'cli', source: 'cli', target: 'exp@example.org' })]);
    expect(audit.stderr).toContain('exported 1 audit entries');
    const usage = await run(['export', '--from', '2026-01-01', '--to', '2026-01-31'], e);
    expect(usage.stdout.split('\r\n')[0]).toBe('day,user_email,division,model,price_family,turns,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,cache_write_5m_tokens,cache_write_1h_tokens,web_search_requests,cost_usd,cost_estimated');
    const out = join(tmp.dir, 'events.json');
    const file = await run(['export', 'events', '--format', 'json', '--out', out], e);
    expect(file.code).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual([]);
    expect((await run(['export', 'events', '--out', out], e)).code).toBe(2);
    expect((await run(['export', 'nonsense'], e)).code).toBe(2);
    expect((await run(['export', '--from', '2026-02-01', '--to', '2026-01-01'], e)).stderr).toContain('custom range');
  });

  it('serve loses no request line at shutdown (the log is written in blocks, the rest flushed at exit)', async () => {
    const serve = startServe({ DATABASE_PATH: join(tmp.dir, 'log-flush.db'), LISTEN_ADDR: '127.0.0.1:0' });
    const url = await serve.listening;
    // Eight at a time (within the per-address connection cap).
    for (let i = 0; i < 10; i++) {
      const answers = await Promise.all(Array.from({ length: 8 }, () => send(`${url}/health`, { method: 'GET' })));
      expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 8 }, () => 200));
    }
    // SIGTERM right after the last answer: lines still buffered must reach stderr before exit.
    const lines = await stopAndReadLog(serve);
    expect(lines.filter((l) => l.msg === 'request' && l.route === '/health')).toHaveLength(80);
    expect(lines.at(-1)?.msg).toBe('stopped');
  });

  it('serve writes one JSON line per request with method, route, status and ms, never the token or query', async () => {
    const secret = 'q'.repeat(40);
    const serve = startServe({ DATABASE_PATH: join(tmp.dir, 'log.db'), LISTEN_ADDR: '127.0.0.1:0', ADMIN_TOKEN: secret });
    const url = await serve.listening;
    await send(`${url}/admin/?user=private%40example.org&range=7d`, { method: 'GET', headers: bearer(secret) });
    await send(`${url}/token`, { headers: bearer('ccf_rt_notarealtokennotarealtokennotarealtoken1') });
    await send(`${url}/wp-admin/setup.php?x=1`, { method: 'GET' });
    const lines = await stopAndReadLog(serve);
    const requests = lines.filter((l) => l.msg === 'request');
    expect(requests.map((r) => [r.method, r.route, r.status])).toEqual([
      ['GET', '/admin/', 200],
      ['POST', '/token', 401],
      ['GET', 'other', 404],
    ]);
    expect(requests.every((r) => typeof r.ms === 'number' && r.level === 'info' && typeof r.time === 'string')).toBe(true);
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['listening', 'stopped']));
    const all = serve.output().stderr;
    for (const leak of [secret, 'private', 'notarealtoken', 'wp-admin', 'x=1']) expect(all).not.toContain(leak);
  });
});
