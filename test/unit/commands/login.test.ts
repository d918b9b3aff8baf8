/**
 * `ccflux login` logic with plain values (fake ports, fake terminal streams), plus the terminal
 * helpers it relies on (hidden prompt, `--token-stdin` line reader) and the data dir choice.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { promptChoice, promptHidden, promptVisible, readStdinLine } from '../../../src/cli/prompt';
import type { ExchangeResult } from '../../../src/client/deliver/auth';
import { decideDataDir, displayPath, expandPath, listDataDirCandidates, resolveDataDir } from '../../../src/client/local/data-dirs';
import type { RegisterResult } from '../../../src/client/deliver/drain';
import { CcfluxError, ERROR_CODES } from '../../../src/client/local/errors';
import { checkTokenShape, exchangeFailure, type LoginPorts, loginSummary, performLogin, refuseTokenInArgv } from '../../../src/client/commands/login';

const TOKEN = 'ccf_rt_0123456789abcdefghijklmnopqrstuvwxyzABCD';
const ENDPOINT = 'https://ccflux.example.org/';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof CcfluxError ? err.code : 'not-a-ccflux-error';
  }
  return undefined;
}

async function codeOfAsync(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return err instanceof CcfluxError ? err.code : 'not-a-ccflux-error';
  }
  return undefined;
}

interface Recorder {
  calls: string[];
  saved: Array<{ endpoint: string; token: string }>;
  registered: boolean[];
}

function fakePorts(
  exchange: ExchangeResult,
  register: RegisterResult | Error = { kind: 'registered' },
): { ports: LoginPorts; rec: Recorder } {
  const rec: Recorder = { calls: [], saved: [], registered: [] };
  const ports: LoginPorts = {
    exchangeToken: async () => {
      rec.calls.push('exchange');
      return exchange;
    },
    ensureSigningKey: async () => {
      rec.calls.push('key');
      return { publicKey: 'PUB', fingerprint: 'fp0123456789abcd' };
    },
    registerKey: async () => {
      rec.calls.push('register');
      if (register instanceof Error) throw register;
      return register;
    },
    saveCredentials: async (endpoint, token) => {
      rec.calls.push('save');
      rec.saved.push({ endpoint, token });
    },
    recordRegistration: async (_key, registered) => {
      rec.calls.push('record');
      rec.registered.push(registered);
    },
  };
  return { ports, rec };
}

const OK: ExchangeResult = { kind: 'ok', cache: { access_token: 'ccf_at_access', expires_at: '2026-05-11T11:00:00Z' } };
const input = { endpoint: ENDPOINT, refreshToken: TOKEN, configPath: '/h/.claude/ccflux/config.json', replacing: false };

describe('refuseTokenInArgv', () => {
  it('accepts no positional argument and no token option', () => {
    expect(codeOf(() => refuseTokenInArgv([], { endpoint: ENDPOINT, tokenStdin: true }))).toBeUndefined();
  });

  it.each([
    [[TOKEN], {}],
    [[], { token: TOKEN }],
    [[], { refreshToken: TOKEN }],
    [[], { apiToken: TOKEN }],
  ])('refuses %j %j with TOKEN_IN_ARGV and never repeats the token', (args, options) => {
    let error: unknown;
    try {
      refuseTokenInArgv(args, options);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CcfluxError);
    const e = error as CcfluxError;
    expect(e.code).toBe(ERROR_CODES.TOKEN_IN_ARGV);
    expect(e.hint).toContain('--token-stdin');
    expect(`${e.message} ${e.hint}`).not.toContain(TOKEN);
  });

  it('an unknown option is a usage error naming the option only, never its value', () => {
    for (const args of [[`--tokn=${TOKEN}`], ['--tokn', TOKEN], [`-${TOKEN}`]]) {
      let error: unknown;
      try {
        refuseTokenInArgv(args, {});
      } catch (err) {
        error = err;
      }
      const e = error as CcfluxError;
      expect(e.code).toBe(ERROR_CODES.USAGE);
      expect(`${e.message} ${e.hint}`).not.toContain(TOKEN);
    }
    expect(codeOf(() => refuseTokenInArgv(['--endpont', 'https://x'], {}))).toBe(ERROR_CODES.USAGE);
  });
});

describe('checkTokenShape', () => {
  it('trims and accepts one printable word', () => {
    expect(checkTokenShape(`  ${TOKEN}\n`)).toBe(TOKEN);
  });
  it.each(['', '   ', 'two words', 'tab\there', 'x'.repeat(5000), 'nul\u0000'])('refuses %j as a usage error', (value) => {
    expect(codeOf(() => checkTokenShape(value))).toBe(ERROR_CODES.USAGE);
  });
});

describe('exchangeFailure', () => {
  it('401 → TOKEN_REVOKED, network → NETWORK, 404 → TOKEN_EXCHANGE with a URL hint', () => {
    expect(exchangeFailure({ kind: 'revoked' }, ENDPOINT).code).toBe(ERROR_CODES.TOKEN_REVOKED);
    expect(exchangeFailure({ kind: 'unavailable', reason: 'unreachable', detail: 'network error ECONNREFUSED', status: null }, ENDPOINT).code).toBe(
      ERROR_CODES.NETWORK,
    );
    const notFound = exchangeFailure({ kind: 'unavailable', reason: 'unexpected-answer', detail: 'unexpected HTTP 404', status: 404 }, ENDPOINT);
    expect(notFound.code).toBe(ERROR_CODES.TOKEN_EXCHANGE);
    expect(notFound.hint).toMatch(/base URL/);
    expect(exchangeFailure({ kind: 'unavailable', reason: 'server-busy', detail: 'HTTP 429 (rate limited)', status: 429 }, ENDPOINT).hint).toMatch(
      /rate limiting/,
    );
  });

  it('every failure says the existing settings were kept', () => {
    for (const outcome of [
      { kind: 'revoked' } as const,
      { kind: 'unavailable', reason: 'unreachable', detail: 'x', status: null } as const,
      { kind: 'unavailable', reason: 'server-busy', detail: 'HTTP 503', status: 503 } as const,
    ]) {
      expect(exchangeFailure(outcome, ENDPOINT).message).toContain('existing settings were kept');
    }
  });
});

describe('performLogin', () => {
  it('exchanges, registers, then saves; reports the key as registered', async () => {
    const { ports, rec } = fakePorts(OK);
    const outcome = await performLogin(input, ports);
    expect(rec.calls).toEqual(['exchange', 'key', 'register', 'save', 'record']);
    expect(rec.saved).toEqual([{ endpoint: ENDPOINT, token: TOKEN }]);
    expect(rec.registered).toEqual([true]);
    expect(outcome.key).toEqual({ fingerprint: 'fp0123456789abcd', registered: true, revoked: false, problem: null });
    expect(outcome.accessTokenExpiresAt).toBe('2026-05-11T11:00:00Z');
    expect(JSON.stringify(outcome)).not.toContain(TOKEN);
    expect(JSON.stringify(outcome)).not.toContain('ccf_at_access');
  });

  it.each([
    [{ kind: 'revoked' } as ExchangeResult, ERROR_CODES.TOKEN_REVOKED],
    [{ kind: 'unavailable', reason: 'unreachable', detail: 'ECONNREFUSED', status: null } as ExchangeResult, ERROR_CODES.NETWORK],
  ])('a failed exchange (%j) writes nothing and touches no key', async (exchange, code) => {
    const { ports, rec } = fakePorts(exchange);
    expect(await codeOfAsync(performLogin(input, ports))).toBe(code);
    expect(rec.calls).toEqual(['exchange']);
    expect(rec.saved).toEqual([]);
  });

  it('a malformed token never reaches the network', async () => {
    const { ports, rec } = fakePorts(OK);
    expect(await codeOfAsync(performLogin({ ...input, refreshToken: 'not a token' }, ports))).toBe(ERROR_CODES.USAGE);
    expect(rec.calls).toEqual([]);
  });

  it('a failed registration still saves the proven credentials and forgets the registration', async () => {
    const { ports, rec } = fakePorts(OK, { kind: 'failed', reason: 'server-busy', detail: 'HTTP 503' });
    const outcome = await performLogin(input, ports);
    expect(rec.saved).toHaveLength(1);
    expect(rec.registered).toEqual([false]);
    expect(outcome.key.registered).toBe(false);
    expect(outcome.key.problem).toBe('HTTP 503');
    expect(loginSummary(outcome, '~/.claude/ccflux/config.json')).toMatch(/NOT registered[\s\S]*retried on every turn/);
  });

  it('a registration that throws is a failed registration, not a failed login', async () => {
    const { ports } = fakePorts(OK, new Error('boom'));
    const outcome = await performLogin(input, ports);
    expect(outcome.key).toMatchObject({ registered: false, problem: 'boom' });
  });

  it('a revoked key is reported with what to do', async () => {
    const { ports } = fakePorts(OK, { kind: 'revoked' });
    const outcome = await performLogin({ ...input, replacing: true }, ports);
    expect(outcome.key.revoked).toBe(true);
    const text = loginSummary(outcome, '~/.claude/ccflux/config.json');
    expect(text).toContain('replaced the credentials in ~/.claude/ccflux/config.json');
    expect(text).toContain('logout --forget-key');
  });

  it('the summary is one line when all went well', async () => {
    const { ports } = fakePorts(OK);
    const text = loginSummary(await performLogin(input, ports), '~/.claude/ccflux/config.json');
    expect(text.split('\n')).toHaveLength(1);
    expect(text).toBe(
      `Logged in to ${ENDPOINT}: token verified, device key fp0123456789abcd registered, saved the credentials to ~/.claude/ccflux/config.json.`,
    );
  });
});

/** A fake terminal: stdin that records raw mode, stderr that records what was shown. */
function fakeTerminal() {
  const stdin = Object.assign(new PassThrough(), { isTTY: true, rawModes: [] as boolean[] }) as PassThrough & {
    isTTY: boolean;
    rawModes: boolean[];
    setRawMode: (mode: boolean) => void;
  };
  stdin.setRawMode = (mode: boolean) => {
    stdin.rawModes.push(mode);
  };
  const stderr = new PassThrough();
  let shown = '';
  stderr.on('data', (d: Buffer) => {
    shown += d.toString();
  });
  return { io: { stdin, stderr }, stdin, shown: () => shown };
}

describe('prompts', () => {
  it('the hidden prompt echoes nothing, handles backspace and leaves raw mode', async () => {
    const t = fakeTerminal();
    const answer = promptHidden(t.io, 'Refresh token');
    t.stdin.write(`${TOKEN}x\u007f`);
    t.stdin.write('\r');
    expect(await answer).toBe(TOKEN);
    expect(t.shown()).toBe('Refresh token (input hidden): \n');
    expect(t.stdin.rawModes).toEqual([true, false]);
  });

  it('skips escape sequences (arrow keys, bracketed paste) inside the value', async () => {
    const t = fakeTerminal();
    const answer = promptHidden(t.io, 'Refresh token');
    t.stdin.write(`\u001b[200~${TOKEN}\u001b[201~\u001b[D\r`);
    expect(await answer).toBe(TOKEN);
  });

  it('Ctrl-C cancels with a usage error', async () => {
    const t = fakeTerminal();
    const answer = promptHidden(t.io, 'Refresh token');
    t.stdin.write('abc\u0003');
    expect(await codeOfAsync(answer)).toBe(ERROR_CODES.USAGE);
    expect(t.stdin.rawModes).toEqual([true, false]);
  });

  it('the visible prompt echoes and offers a default', async () => {
    const t = fakeTerminal();
    const answer = promptVisible(t.io, 'Receiver endpoint', ENDPOINT);
    t.stdin.write('\r');
    expect(await answer).toBe(ENDPOINT);
    expect(t.shown()).toContain(`Receiver endpoint [${ENDPOINT}]: `);

    const t2 = fakeTerminal();
    const typed = promptVisible(t2.io, 'Receiver endpoint');
    t2.stdin.write('https://x\r');
    expect(await typed).toBe('https://x');
    expect(t2.shown()).toContain('https://x');
  });

  it('a numbered choice returns the index; Enter takes the default', async () => {
    const t = fakeTerminal();
    const choice = promptChoice(t.io, 'Which?', ['a', 'b', 'c'], 0);
    t.stdin.write('2\r');
    expect(await choice).toBe(1);
    const t2 = fakeTerminal();
    const byDefault = promptChoice(t2.io, 'Which?', ['a', 'b'], 1);
    t2.stdin.write('\r');
    expect(await byDefault).toBe(1);
  });

  it('--token-stdin reads the first line only, without its line ending', async () => {
    const stdin = new PassThrough();
    const line = readStdinLine(stdin);
    stdin.end(`${TOKEN}\r\nsecond line\n`);
    expect(await line).toBe(TOKEN);
    const noNewline = new PassThrough();
    const last = readStdinLine(noNewline);
    noNewline.end(TOKEN);
    expect(await last).toBe(TOKEN);
  });
});

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('data dirs', () => {
  const home = '/home/u';
  const base = { env: {}, home, cwd: '/work' };

  it('--config-dir wins, then CLAUDE_CONFIG_DIR, then ~/.claude', () => {
    const candidates = [
      { path: '/home/u/.claude', hasState: true },
      { path: '/home/u/.claude-work', hasState: false },
    ];
    expect(decideDataDir({ ...base, configDir: '~/.claude-work', env: { CLAUDE_CONFIG_DIR: '/x' } }, candidates, true)).toEqual({
      kind: 'resolved',
      dataDir: '/home/u/.claude-work',
      source: 'flag',
    });
    expect(decideDataDir({ ...base, env: { CLAUDE_CONFIG_DIR: 'rel' } }, candidates, true)).toEqual({
      kind: 'resolved',
      dataDir: '/work/rel',
      source: 'env',
    });
    expect(decideDataDir(base, candidates, false)).toEqual({ kind: 'resolved', dataDir: '/home/u/.claude', source: 'default' });
    expect(decideDataDir(base, candidates.slice(0, 1), true)).toMatchObject({ kind: 'resolved', source: 'default' });
  });

  it('asks only on a terminal, when several ~/.claude* exist and none was named', () => {
    const candidates = [
      { path: '/home/u/.claude', hasState: true },
      { path: '/home/u/.claude-work', hasState: false },
    ];
    expect(decideDataDir(base, candidates, true)).toEqual({ kind: 'ask', candidates, defaultDir: '/home/u/.claude' });
  });

  it('expands ~ and shortens paths under home for display', () => {
    expect(expandPath('~', home, '/')).toBe(home);
    expect(expandPath('~/a/../b', home, '/')).toBe('/home/u/b');
    expect(displayPath('/home/u/.claude/ccflux', home)).toBe('~/.claude/ccflux');
    expect(displayPath('/home/user2/x', home)).toBe('/home/user2/x');
  });

  it('lists ~/.claude* folders (not files), ~/.claude first, and marks those with ccflux state', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ccflux-unit-home-'));
    tempDirs.push(dir);
    await mkdir(join(dir, '.claude-work', 'ccflux'), { recursive: true });
    await mkdir(join(dir, '.claude'), { recursive: true });
    await mkdir(join(dir, '.config'), { recursive: true });
    await writeFile(join(dir, '.claude.json'), '{}');
    await writeFile(join(dir, '.claude.json.backup'), '{}');
    expect(await listDataDirCandidates(dir)).toEqual([
      { path: join(dir, '.claude'), hasState: false },
      { path: join(dir, '.claude-work'), hasState: true },
    ]);
    const picked = await resolveDataDir({ env: {}, home: dir, cwd: '/' }, { pick: async (c) => (c[1] as { path: string }).path });
    expect(picked).toMatchObject({ dataDir: join(dir, '.claude-work'), source: 'chosen' });
    expect(await resolveDataDir({ env: {}, home: dir, cwd: '/' })).toMatchObject({ dataDir: join(dir, '.claude'), source: 'default' });
  });
});
