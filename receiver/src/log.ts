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

/**
 * A logger writing JSON lines to `destination` (stderr by default). A file descriptor is written
 * asynchronously (lines written while a write is under way go out together in the next one), so
 * the request log costs the event loop no system call per request; pino flushes what is left
 * synchronously when the process exits, however it exits short of SIGKILL.
 */
export function createLogger(level: LogLevel, destination: NodeJS.WritableStream | number = 2): Logger {
  const dest = typeof destination === 'number' ? pino.destination({ fd: destination, sync: false }) : destination;
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
