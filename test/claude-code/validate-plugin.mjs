#!/usr/bin/env node
// CI step: `claude plugin validate --strict` on plugin/ and on the marketplace
// (.claude-plugin/marketplace.json), with the pinned client from test/claude-code/install.mjs,
// offline (inside `unshare --net` where that is allowed) and with a scratch config dir. Exits 1
// when either fails; prints why and exits 0 when the client is not installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const VERSION = '2.1.328';
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cache = process.env.CCFLUX_CLAUDE_CODE_CACHE ?? join(homedir(), '.cache', 'ccflux-test', `claude-code-${VERSION}`);
const modules = join(cache, 'node_modules', '@anthropic-ai');
const binary = [join(modules, `claude-code-linux-${process.arch}`, 'claude'), join(modules, 'claude-code', 'bin', 'claude.exe')].find(
  (p) => existsSync(p) && statSync(p).size > 1_000_000,
);
if (!binary) {
  console.log(`plugin validate: skipped, Claude Code ${VERSION} is not installed in ${cache}`);
  process.exit(0);
}
let offline = [];
try {
  execFileSync('unshare', ['--net', 'true'], { stdio: 'ignore' });
  offline = ['unshare', '--net'];
} catch {
  // no namespace here: the validator makes no request anyway
}
const scratch = mkdtempSync(join(tmpdir(), 'ccflux-validate-'));
const env = {
  PATH: process.env.PATH,
  HOME: scratch,
  CLAUDE_CONFIG_DIR: join(scratch, '.claude'),
  TMPDIR: scratch,
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DISABLE_TELEMETRY: '1',
  DISABLE_ERROR_REPORTING: '1',
  DISABLE_AUTOUPDATER: '1',
};
let failed = 0;
for (const target of [join(root, 'plugin'), join(root, '.claude-plugin', 'marketplace.json')]) {
  const [file, ...args] = [...offline, binary, 'plugin', 'validate', '--strict', target];
  const r = spawnSync(file, args, { env, encoding: 'utf8', timeout: 60_000 });
  process.stdout.write(r.stdout ?? '');
  process.stderr.write(r.stderr ?? '');
  if (r.status !== 0) {
    failed++;
    console.log(`plugin validate --strict ${target}: FAILED (${r.status ?? r.signal})`);
  }
}
rmSync(scratch, { recursive: true, force: true });
process.exit(failed === 0 ? 0 : 1);
