/** Every `.ts` file below `dir`, for tests that read the source tree (layout, function length). */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export function tsFilesUnder(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) tsFilesUnder(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}
