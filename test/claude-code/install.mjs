#!/usr/bin/env node
// Installs the pinned Claude Code client the real-client suite runs (test/claude-code) into a
// cache outside the checkout, once: `CCFLUX_CLAUDE_CODE_CACHE`, default
// ~/.cache/ccflux-test/claude-code-<version>. Never fails the caller: when the registry cannot be
// reached it prints why, and the suite skips itself with the same reason.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const VERSION = '2.1.328';
const PACKAGE = '@anthropic-ai/claude-code';
const cache = process.env.CCFLUX_CLAUDE_CODE_CACHE ?? join(homedir(), '.cache', 'ccflux-test', `claude-code-${VERSION}`);
const modules = join(cache, 'node_modules', '@anthropic-ai');

function installed() {
  try {
    const { version } = JSON.parse(readFileSync(join(modules, 'claude-code', 'package.json'), 'utf8'));
    if (version !== VERSION) return false;
  } catch {
    return false;
  }
  const native = [join(modules, `claude-code-linux-${process.arch}`, 'claude'), join(modules, 'claude-code', 'bin', 'claude.exe')];
  return native.some((p) => existsSync(p) && statSync(p).size > 1_000_000);
}

if (installed()) {
  console.log(`Claude Code ${VERSION}: already in ${cache}`);
  process.exit(0);
}
mkdirSync(cache, { recursive: true });
const manifest = join(cache, 'package.json');
if (!existsSync(manifest)) {
  writeFileSync(manifest, `${JSON.stringify({ name: 'ccflux-test-claude-code', private: true, allowScripts: { [PACKAGE]: true } }, null, 2)}\n`);
}
console.log(`Claude Code ${VERSION}: installing ${PACKAGE}@${VERSION} into ${cache} (about 120 MB download, once)`);
try {
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--loglevel=error', `${PACKAGE}@${VERSION}`], {
    cwd: cache,
    stdio: 'inherit',
  });
} catch (err) {
  console.log(`Claude Code ${VERSION}: install failed (${err.message}); the real-client suite will be skipped`);
  process.exit(0);
}
console.log(installed() ? `Claude Code ${VERSION}: installed` : `Claude Code ${VERSION}: installed, but no native binary for linux-${process.arch}; the suite will be skipped`);
