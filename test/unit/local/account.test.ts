import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { accountFileCandidates, emailFromAccountJson, readUserEmail, readUserEmailCached } from '../../../src/client/local/account';

let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'ccflux-account-'));
});
afterEach(() => {
  rmSync(home, { recursive: true, force: true });
});

const account = (email: unknown) => JSON.stringify({ userID: 'x', projects: {}, oauthAccount: { emailAddress: email, accountUuid: 'u' } });

describe('readUserEmail', () => {
  it('CLAUDE_CONFIG_DIR set: only $CLAUDE_CONFIG_DIR/.claude.json, never the home files', () => {
    const config = join(home, 'work-profile');
    mkdirSync(config);
    writeFileSync(join(home, '.claude.json'), account('home@example.org'));
    expect(readUserEmail({ env: { CLAUDE_CONFIG_DIR: config }, home })).toBe('');
    writeFileSync(join(config, '.claude.json'), account('work@example.org'));
    expect(readUserEmail({ env: { CLAUDE_CONFIG_DIR: config }, home })).toBe('work@example.org');
    expect(accountFileCandidates({ env: { CLAUDE_CONFIG_DIR: config }, home })).toEqual([join(config, '.claude.json')]);
  });

  it('otherwise ~/.claude.json first', () => {
    mkdirSync(join(home, '.claude'));
    writeFileSync(join(home, '.claude.json'), account('first@example.org'));
    writeFileSync(join(home, '.claude', '.claude.json'), account('second@example.org'));
    expect(readUserEmail({ env: {}, home })).toBe('first@example.org');
  });

  it('then ~/.claude/.claude.json (also when the first has no email)', () => {
    mkdirSync(join(home, '.claude'));
    writeFileSync(join(home, '.claude', '.claude.json'), account('second@example.org'));
    expect(readUserEmail({ env: {}, home })).toBe('second@example.org');
    writeFileSync(join(home, '.claude.json'), JSON.stringify({ userID: 'api-key user' }));
    expect(readUserEmail({ env: {}, home })).toBe('second@example.org');
  });

  it("'' when absent, unreadable, garbage or not a string", () => {
    expect(readUserEmail({ env: {}, home })).toBe('');
    writeFileSync(join(home, '.claude.json'), '{ not json');
    expect(readUserEmail({ env: {}, home })).toBe('');
    writeFileSync(join(home, '.claude.json'), account(42));
    expect(readUserEmail({ env: {}, home })).toBe('');
    mkdirSync(join(home, '.claude', '.claude.json'), { recursive: true }); // a directory
    expect(readUserEmail({ env: {}, home })).toBe('');
    writeFileSync(join(home, '.claude.json'), account('locked@example.org'));
    chmodSync(join(home, '.claude.json'), 0o000);
    // root reads anyway; either way it must not throw
    expect(() => readUserEmail({ env: {}, home })).not.toThrow();
  });

  it('caps the email at the wire limit', () => {
    writeFileSync(join(home, '.claude.json'), account(`${'a'.repeat(400)}@example.org`));
    expect(readUserEmail({ env: {}, home }).length).toBe(255);
  });

  it('emailFromAccountJson handles odd shapes', () => {
    for (const text of ['null', '[]', '{"oauthAccount":null}', '{"oauthAccount":"x"}', '{"oauthAccount":{}}']) expect(emailFromAccountJson(text)).toBe('');
    expect(emailFromAccountJson(account('  spaced@example.org '))).toBe('spaced@example.org');
  });
});

describe('readUserEmailCached', () => {
  it('parses the account file once, then answers from the cache while the file is unchanged', async () => {
    const file = join(home, '.claude.json');
    const cache = join(home, 'account_cache.json');
    writeFileSync(file, account('first@example.org'));
    expect(await readUserEmailCached(cache, { env: {}, home })).toBe('first@example.org');
    expect(statSync(cache).mode & 0o777).toBe(0o600);
    // Proof that an unchanged file is not parsed again: a cache entry naming another email wins.
    const entry = JSON.parse(readFileSync(cache, 'utf8')) as { fingerprint: string };
    writeFileSync(cache, JSON.stringify({ fingerprint: entry.fingerprint, email: 'from-cache@example.org' }));
    expect(await readUserEmailCached(cache, { env: {}, home })).toBe('from-cache@example.org');
  });

  it('a changed, new or removed account file is read again', async () => {
    const file = join(home, '.claude.json');
    const cache = join(home, 'account_cache.json');
    expect(await readUserEmailCached(cache, { env: {}, home })).toBe('');
    writeFileSync(file, account('first@example.org'));
    expect(await readUserEmailCached(cache, { env: {}, home })).toBe('first@example.org');
    writeFileSync(file, account('other@example.org'));
    utimesSync(file, new Date(Date.now() + 5000), new Date(Date.now() + 5000));
    expect(await readUserEmailCached(cache, { env: {}, home })).toBe('other@example.org');
    rmSync(file);
    expect(await readUserEmailCached(cache, { env: {}, home })).toBe('');
  });

  it('a damaged or unwritable cache only costs the parse', async () => {
    writeFileSync(join(home, '.claude.json'), account('first@example.org'));
    const cache = join(home, 'account_cache.json');
    writeFileSync(cache, 'garbage');
    expect(await readUserEmailCached(cache, { env: {}, home })).toBe('first@example.org');
    expect(await readUserEmailCached(join(home, 'no-such-dir', 'cache.json'), { env: {}, home })).toBe('first@example.org');
  });
});

