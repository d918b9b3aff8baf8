/**
 * Builds the bundles the integration tests spawn (plugin/dist/ccflux.cjs,
 * receiver/dist/ccflux-receiver.cjs) once per test run, and only when a source is newer than
 * them: `npm test` has already built, a bare `npx vitest` has not.
 *
 * Then gives the run its own temp folder (TMPDIR, inherited by every worker and every process the
 * tests start) and, at teardown, fails the run when any `ccflux-*` entry is left in it: a test
 * that leaves a temp dir (a receiver database, a CA key, a signing key) is a bug. Other runs on
 * the same machine have their own folders, so they cannot make this one fail. A run that was
 * killed (no teardown) leaves its folder behind: the next run removes it once its owner is dead.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUTPUTS = ['plugin/dist/ccflux.cjs', 'receiver/dist/ccflux-receiver.cjs'];
const INPUTS = ['src', 'receiver/src', 'scripts/build.mjs', 'package.json'];

function newestMtime(path: string): number {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

function oldestOutput(): number {
  let oldest = Number.POSITIVE_INFINITY;
  for (const out of OUTPUTS) {
    try {
      oldest = Math.min(oldest, statSync(join(root, out)).mtimeMs);
    } catch {
      return 0;
    }
  }
  return oldest;
}

function build(): void {
  const newestInput = Math.max(...INPUTS.map((p) => newestMtime(join(root, p))));
  if (oldestOutput() >= newestInput) return;
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs'), '--quiet'], { cwd: root, stdio: 'inherit' });
}

/** Set while a run's temp folder is in place (tests can find it; a second project reuses it). */
export const RUN_TMP_ENV = 'CCFLUX_TEST_RUN_TMP';

const RUN_PREFIX = 'ccflux-run-';
/** In each run's folder: the pid of the vitest process that owns it. */
const OWNER_FILE = '.owner-pid';

/** What the tests left in the run's temp folder: `ccflux-*` entries fail the run, others are listed. */
export function leftovers(names: string[]): { offenders: string[]; others: string[] } {
  const mine = names.filter((n) => n !== OWNER_FILE);
  return { offenders: mine.filter((n) => n.startsWith('ccflux-')).sort(), others: mine.filter((n) => !n.startsWith('ccflux-')).sort() };
}

/** A run folder whose owner process is gone; one without a readable owner is not ours to judge. */
export function isStaleRun(ownerText: string | null, alive: (pid: number) => boolean): boolean {
  const pid = Number(ownerText?.trim());
  return Number.isSafeInteger(pid) && pid > 0 && !alive(pid);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeStaleRuns(outer: string): void {
  for (const name of readdirSync(outer)) {
    if (!name.startsWith(RUN_PREFIX)) continue;
    const dir = join(outer, name);
    let owner: string | null = null;
    try {
      owner = readFileSync(join(dir, OWNER_FILE), 'utf8');
    } catch {
      continue;
    }
    if (isStaleRun(owner, processAlive)) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

export default function setup(): () => void {
  build();
  // Each vitest project runs the global setup: the first one's folder serves the whole run.
  if (process.env[RUN_TMP_ENV] !== undefined) return () => {};
  const outer = process.env.TMPDIR;
  removeStaleRuns(tmpdir());
  const runTmp = mkdtempSync(join(tmpdir(), RUN_PREFIX));
  // Like /tmp: the PostgreSQL tests hand a folder in here to the postgres user.
  chmodSync(runTmp, 0o1777);
  writeFileSync(join(runTmp, OWNER_FILE), `${process.pid}\n`);
  process.env.TMPDIR = runTmp;
  process.env[RUN_TMP_ENV] = runTmp;
  return () => {
    delete process.env[RUN_TMP_ENV];
    if (outer === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = outer;
    const { offenders, others } = leftovers(readdirSync(runTmp));
    rmSync(runTmp, { recursive: true, force: true, maxRetries: 3 });
    if (others.length > 0) {
      // Not ours (e.g. the real Claude Code's own scratch files): said, not failed on.
      process.stderr.write(`global teardown: removed temp entries made by other programs: ${others.join(', ')}\n`);
    }
    if (offenders.length > 0) {
      // vitest reports a teardown error but would still exit 0.
      process.exitCode = 1;
      throw new Error(`tests left ${offenders.length} ccflux-* temp entr${offenders.length === 1 ? 'y' : 'ies'} in ${runTmp} (removed now; fix the test's cleanup): ${offenders.join(', ')}`);
    }
  };
}
