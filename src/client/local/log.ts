/**
 * Diagnostics for hooks, which must never print: `activity.log` and `errors.log` in the state dir,
 * each capped near 64 KiB (when over, the newer half is kept). Errors appear in both. Every line
 * passes through `redact()` so a token can never reach a log, whoever wrote the message.
 */
import { appendFile, open, readFile, stat } from './fs';
import { writeFileAtomic } from './fsx';
import type { StatePaths } from './paths';

export const LOG_CAP_BYTES = 64 * 1024;
const MAX_LINE_CHARS = 2000;

export interface Logger {
  activity(message: string): void;
  error(message: string): void;
  /** Resolves once every line logged so far is on disk. Never rejects. */
  flush(): Promise<void>;
}

/** Removes anything that looks like a credential: bearer values, ccflux tokens, long opaque strings. */
export function redact(text: string): string {
  return text
    .replace(/(bearer\s+)[^\s"',;]+/gi, '$1[redacted]')
    .replace(/\b(ccf_[a-z]{2}_)[A-Za-z0-9_-]+/g, '$1[redacted]')
    .replace(/("?(?:access_token|refresh_token|token|api_token|authorization)"?\s*[:=]\s*"?)[^\s"',;}]+/gi, '$1[redacted]')
    .replace(/\b[A-Za-z0-9_-]{40,}\b/g, '[redacted]');
}

function oneLine(message: string): string {
  const flat = message.replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e\u00a0-\uffff]/g, '?');
  return flat.length > MAX_LINE_CHARS ? `${flat.slice(0, MAX_LINE_CHARS)}…` : flat;
}

async function appendCapped(path: string, line: string): Promise<void> {
  await appendFile(path, line, { mode: 0o600 });
  const size = (await stat(path)).size;
  if (size <= LOG_CAP_BYTES) return;
  const text = await readFile(path, 'utf8');
  const keepFrom = text.indexOf('\n', text.length - Math.floor(LOG_CAP_BYTES / 2));
  await writeFileAtomic(path, keepFrom === -1 ? '' : text.slice(keepFrom + 1));
}

export function createLogger(paths: Pick<StatePaths, 'activityLog' | 'errorsLog'>, now: () => Date = () => new Date()): Logger {
  let chain: Promise<void> = Promise.resolve();
  const write = (files: string[], level: string, message: string) => {
    const line = `${now().toISOString()} ${level} pid=${process.pid} ${redact(oneLine(message))}\n`;
    chain = chain.then(async () => {
      for (const file of files) {
        try {
          await appendCapped(file, line);
        } catch {
          // The state dir may be unwritable or gone; a logger must never take the caller down.
        }
      }
    });
  };
  return {
    activity: (message) => write([paths.activityLog], 'info', message),
    error: (message) => write([paths.errorsLog, paths.activityLog], 'error', message),
    flush: () => chain,
  };
}

/** A logger that drops everything (tests, or before the state dir is known). */
export const nullLogger: Logger = { activity() {}, error() {}, flush: async () => {} };

/** Reads the last `maxLines` lines of a log, for `ccflux status` / `doctor`. */
export async function tailLog(path: string, maxLines: number): Promise<string[]> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(path, 'r');
    const text = await handle.readFile('utf8');
    return text.split('\n').filter(Boolean).slice(-maxLines);
  } catch {
    return [];
  } finally {
    await handle?.close();
  }
}
