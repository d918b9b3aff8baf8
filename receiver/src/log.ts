/**
 * Structured JSON logs (pino) on stderr: one line per request (method, route, status, ms) and one
 * per event (start, stop, admin action, alert delivery). Never a token, a body or a query string:
 * the route is one of our fixed names, never the request target as sent.
 */
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config';
import { ADMIN_ROUTES } from './admin/routes';
import { isAdminPath, ROUTES } from './routes/index';

export type { Logger } from 'pino';

/** Log lines are gathered up to this many bytes and written in one system call... */
const LOG_BUFFER_BYTES = 4096;
/** ...and at least this often, so a quiet receiver's lines do not wait. */
const LOG_FLUSH_MILLIS = 200;

/**
 * A logger writing JSON lines to `destination` (stderr by default). A file descriptor gets the
 * lines in blocks (LOG_BUFFER_BYTES, or every LOG_FLUSH_MILLIS), written synchronously: under
 * load the request log costs one system call per ~25 requests, and never a thread-pool write
 * competing with signature checks. What is buffered is written when the process exits (a signal
 * or an error included; SIGKILL loses at most the last LOG_FLUSH_MILLIS of lines).
 */
export function createLogger(level: LogLevel, destination: NodeJS.WritableStream | number = 2): Logger {
  let dest: NodeJS.WritableStream | ReturnType<typeof pino.destination>;
  if (typeof destination === 'number') {
    const boom = pino.destination({ fd: destination, sync: true, minLength: LOG_BUFFER_BYTES, periodicFlush: LOG_FLUSH_MILLIS });
    process.once('exit', () => {
      try {
        boom.flushSync();
      } catch {
        // Nowhere left to report a failed log write.
      }
    });
    dest = boom;
  } else {
    dest = destination;
  }
  return pino({ level, base: { service: 'ccflux-receiver' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, dest);
}

export const silentLogger: Logger = pino({ level: 'silent' });

/** The route name a request is logged under: a known path, `/admin/*` for other dashboard paths,
 * else `other` (a scanner's paths never reach the log). */
export function routeName(path: string | null): string {
  if (path === null) return 'invalid';
  if (ROUTES.has(path)) return path;
  if (isAdminPath(path)) return (ADMIN_ROUTES as readonly string[]).includes(path) ? path : '/admin/*';
  return 'other';
}
