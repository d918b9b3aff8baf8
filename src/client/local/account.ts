/**
 * The user's email from Claude Code's account file, for `user_email` (informational: the receiver
 * attributes usage by token). Read only, never written ("not a public API").
 *
 * With CLAUDE_CONFIG_DIR set, only `$CLAUDE_CONFIG_DIR/.claude.json` is read: the home file may
 * belong to another account. Otherwise `~/.claude.json`, then `~/.claude/.claude.json`.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile } from './fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { LIMITS } from '../../protocol/wire';
import { writeFileAtomic } from './fsx';

/** `.claude.json` also holds project history; a file larger than this is not read. */
const MAX_ACCOUNT_FILE_BYTES = 64 * 1024 * 1024;

export interface AccountOptions {
  env: NodeJS.ProcessEnv;
  home?: string;
}

export function accountFileCandidates({ env, home = homedir() }: AccountOptions): string[] {
  const configDir = env.CLAUDE_CONFIG_DIR;
  if (configDir) return [join(resolve(configDir), '.claude.json')];
  return [join(home, '.claude.json'), join(home, '.claude', '.claude.json')];
}

/** `oauthAccount.emailAddress` of an account file's text; '' when absent or not a string. */
export function emailFromAccountJson(text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return '';
  }
  if (typeof parsed !== 'object' || parsed === null) return '';
  const account = (parsed as Record<string, unknown>).oauthAccount;
  if (typeof account !== 'object' || account === null) return '';
  const email = (account as Record<string, unknown>).emailAddress;
  if (typeof email !== 'string') return '';
  return email.trim().slice(0, LIMITS.userEmailChars);
}

/** The account email, or '' when there is none (API-key users) or the file is unreadable. */
export function readUserEmail(options: AccountOptions): string {
  for (const path of accountFileCandidates(options)) {
    try {
      const st = statSync(path);
      if (!st.isFile() || st.size > MAX_ACCOUNT_FILE_BYTES) continue;
      const email = emailFromAccountJson(readFileSync(path, 'utf8'));
      if (email !== '') return email;
    } catch {
      // Missing or unreadable: try the next candidate.
    }
  }
  return '';
}

/** What identifies the account files' current content: path, size and mtime of each candidate. */
function accountFingerprint(options: AccountOptions): string {
  return accountFileCandidates(options)
    .map((path) => {
      try {
        const st = statSync(path);
        return `${path}:${st.size}:${st.mtimeMs}`;
      } catch {
        return `${path}:-`;
      }
    })
    .join('|');
}

/**
 * `readUserEmail` behind a cache file: `.claude.json` also holds Claude Code's project history
 * (3 MB took ~14 ms to parse, on every turn), while the email changes almost never. The cache is
 * used while every candidate file has the size and mtime it had when the email was read.
 * Never throws: a cache that cannot be read or written only costs the parse.
 */
export async function readUserEmailCached(cachePath: string, options: AccountOptions): Promise<string> {
  const fingerprint = accountFingerprint(options);
  try {
    const cached = JSON.parse(await readFile(cachePath, 'utf8')) as { fingerprint?: unknown; email?: unknown };
    if (cached.fingerprint === fingerprint && typeof cached.email === 'string') return cached.email;
  } catch {
    // missing or damaged: read the account file
  }
  const email = readUserEmail(options);
  try {
    await writeFileAtomic(cachePath, JSON.stringify({ fingerprint, email }));
  } catch {
    // next turn reads the account file again
  }
  return email;
}

