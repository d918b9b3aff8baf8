import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli';
import { chooseDatabase, csvLine, maskUrl, parseCsv } from '../../src/commands/shared';
import type { CliContext } from '../../src/commands/types';
import { onboarding, parseImport } from '../../src/commands/users';
import { tempDir } from '../support';

function context(env: Record<string, string>, tty: boolean): { ctx: CliContext; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    ctx: {
      env,
      stderrIsTTY: tty,
      now: () => new Date('2026-05-11T12:00:00Z'),
      output: { out: (l) => out.push(l), err: (l) => err.push(l) },
      onShutdownSignal: () => () => {},
    },
  };
}

describe('users add on a terminal', () => {
  it('keeps stdout to the token and tells the admin on stderr what to send and the one command', async () => {
    const tmp = tempDir('ccflux-users-');
    try {
      const env = { DATABASE_PATH: join(tmp.dir, 'r.db'), PUBLIC_URL: 'https://ccflux.example.org' };
      const term = context(env, true);
      expect(await runCli(['users', 'add', 'ana@example.org'], term.ctx)).toBe(0);
      expect(term.out).toHaveLength(1);
      expect(term.out[0]).toMatch(/^ccf_rt_/);
      expect(term.err.join('\n')).toContain('endpoint   https://ccflux.example.org');
      expect(term.err.join('\n')).toContain('they run   ccflux login --endpoint https://ccflux.example.org');
      expect(term.err.join('\n')).not.toContain(term.out[0]!);
      const piped = context(env, false);
      await runCli(['users', 'add', 'bob@example.org'], piped.ctx);
      expect(piped.err).toEqual([`ccflux-receiver: database ${env.DATABASE_PATH} (DATABASE_PATH)`]);
    } finally {
      tmp.cleanup();
    }
  });

  it('says where the endpoint goes when PUBLIC_URL is unset', () => {
    expect(onboarding('a@x.org', undefined).command).toBe('ccflux login --endpoint <endpoint>');
    expect(onboarding('a@x.org', undefined).endpoint).toContain('set PUBLIC_URL');
  });
});

describe('which database (pure)', () => {
  const none = () => false;
  it('creates only when the path is explicit or --create is given', () => {
    expect(chooseDatabase({ DATABASE_PATH: 'x.db' }, '/srv', none, {}).line).toBe('database /srv/x.db (DATABASE_PATH; new, created now)');
    expect(() => chooseDatabase({}, '/srv', none, {})).toThrow(/no database at \/srv\/ccflux\.db/);
    expect(chooseDatabase({}, '/srv', none, { create: true }).path).toBe('/srv/ccflux.db');
    expect(chooseDatabase({}, '/srv', () => true, {}).line).toContain('DATABASE_PATH unset');
    expect(chooseDatabase({ DATABASE_URL: 'postgres://u:pw@db/ccflux' }, '/srv', none, {}).line).toBe('database postgres://u:***@db/ccflux (DATABASE_URL)');
    expect(maskUrl('nonsense')).toBe('(unparsable DATABASE_URL)');
  });
});

describe('CSV (pure)', () => {
  it('round-trips quotes, commas and line breaks, and defuses formulas', () => {
    const line = csvLine(['a,b', 'say "hi"', 'x\ny', '=SUM(A1)', 'plain']);
    expect(line).toBe('"a,b","say ""hi""","x\ny",\'=SUM(A1),plain\r\n');
    expect(parseCsv(line)).toEqual([['a,b', 'say "hi"', 'x\ny', "'=SUM(A1)", 'plain']]);
    expect(parseCsv('\ufeffemail\n\na@x.org\n')).toEqual([['email'], ['a@x.org']]);
  });

  it('needs an email column and lower-cases addresses', () => {
    expect(() => parseImport('name,division\nx,y\n')).toThrow(/no "email" column/);
    expect(parseImport('EMAIL\nAna@Example.org\n')).toEqual([{ line: 2, email: 'ana@example.org', division: '' }]);
  });
});
