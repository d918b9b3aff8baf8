/**
 * Builds the bundles the integration tests spawn (plugin/dist/ccflux.cjs,
 * receiver/dist/ccflux-receiver.cjs) once per test run, and only when a source is newer than
 * them: `npm test` has already built, a bare `npx vitest` has not.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
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

export default function setup(): void {
  const newestInput = Math.max(...INPUTS.map((p) => newestMtime(join(root, p))));
  if (oldestOutput() >= newestInput) return;
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs'), '--quiet'], { cwd: root, stdio: 'inherit' });
}
