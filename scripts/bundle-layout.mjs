// The layout of the CLI bundle (scripts/build.mjs): plugin/dist/ccflux.cjs is a short
// compile-cache loader; the code itself is BODY_FILE beside it, pure ASCII, the body of a
// CommonJS module function.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const BODY_FILE = 'ccflux.body.cjs';

/**
 * The bundle's code without the loader (scripts/build-binary.mjs: a SEA has its own code cache):
 * the body file beside `bundlePath`, else the file itself (a plain CommonJS bundle).
 */
export function bundleCode(bundlePath) {
  const body = join(dirname(bundlePath), BODY_FILE);
  if (existsSync(body)) return readFileSync(body, 'latin1');
  return readFileSync(bundlePath, 'utf8').replace(/^#![^\n]*\n/, '');
}
