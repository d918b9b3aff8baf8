import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { accountFileCandidates, emailFromAccountJson, readUserEmail } from '../../src/client/account';

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
