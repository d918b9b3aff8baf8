/**
 * The receiver's HTTP server: node:http with a fixed endpoint table (see docs/receiver.md for why
 * no framework). `createReceiver` wires config, database, clock and metrics; the caller listens
 * (or uses `listen()`) and owns the database handle, which `close()` leaves open.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdminHandler } from './admin/index';
import type { ReceiverConfig } from './config';
import type { Db } from './db/open';
import { sendError } from './http';
import { Metrics } from './metrics';
import { PriceBook } from './prices/cost';
import { loadPrices } from './prices/load';
import { type Output, silentOutput } from './output';
import { RateLimiter } from './ratelimit';
import type { RouteDeps } from './routes/context';
import { isAdminPath, ROUTES } from './routes/index';
import { Store } from './store';

/** How often expired access tokens are deleted. */
export const PURGE_INTERVAL_MILLIS = 10 * 60 * 1000;
/** On shutdown, requests still running after this are cut off. */
export const CLOSE_GRACE_MILLIS = 10_000;
/** A client must send its headers within this, and its whole request within REQUEST_TIMEOUT. */
const HEADERS_TIMEOUT_MILLIS = 10_000;
const REQUEST_TIMEOUT_MILLIS = 30_000;

export interface ReceiverOptions {
  config: ReceiverConfig;
  db: Db;
  now?: () => Date;
  /** Where unexpected errors are reported; silent by default. */
  output?: Output;
}

export interface Receiver {
  server: Server;
  store: Store;
  metrics: Metrics;
  /** Listens on the configured address (port 0 picks one); resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  /** Stops accepting connections, lets in-flight requests finish (up to CLOSE_GRACE_MILLIS) and
   * stops the purge timer. Does not close the database. */
  close(): Promise<void>;
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

export function createReceiver(options: ReceiverOptions): Receiver {
  const { config, db } = options;
  const now = options.now ?? (() => new Date());
  const output = options.output ?? silentOutput;
  const store = new Store(db, now, {
    accessTokenExpirySecs: config.accessTokenExpirySecs,
    refreshTokenRollingDays: config.refreshTokenRollingDays,
  });
  const metrics = new Metrics();
  const limiter = new RateLimiter({ limitPerMinute: config.rateLimitPerMinute, now });
  const deps: RouteDeps = { config, store, metrics, limiter, now, output };
  // A bad PRICES_FILE stops the start (ReceiverError 'config'), before anything listens.
  const prices = new PriceBook(loadPrices(config.pricesFile));
  const admin = config.adminToken === undefined ? null : createAdminHandler({ db, config, store, now, metrics, prices });

  const active = new Set<ServerResponse>();
  let closing = false;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://receiver.invalid');
    } catch {
      return sendError(res, 400, 'bad request target');
    }
    if (isAdminPath(url.pathname)) {
      if (admin === null) return sendError(res, 404, 'not found');
      return admin(req, res, url);
    }
    const endpoint = ROUTES.get(url.pathname);
    if (endpoint === undefined) return sendError(res, 404, 'not found');
    if (!endpoint.methods.includes(req.method ?? '')) {
      return sendError(res, 405, 'method not allowed', { allow: endpoint.methods.join(', ') });
    }
    return endpoint.handler(req, res, deps);
  };

  const server = createServer((req, res) => {
    active.add(res);
    if (closing) res.shouldKeepAlive = false;
    res.on('close', () => {
      active.delete(res);
      // The socket turns idle only after this event; close it then.
      if (closing) setImmediate(() => server.closeIdleConnections());
    });
    handle(req, res).catch((err: unknown) => {
      if (!isBusy(err)) output.err(`ccflux-receiver: error handling ${req.method} request: ${(err as Error)?.message}`);
      if (res.headersSent) {
        res.destroy();
      } else if (isBusy(err)) {
        sendError(res, 503, 'database busy, retry later', { 'retry-after': '1' });
      } else {
        sendError(res, 500, 'internal error');
      }
    });
  });
  server.headersTimeout = HEADERS_TIMEOUT_MILLIS;
  server.requestTimeout = REQUEST_TIMEOUT_MILLIS;

  const purge = () => {
    try {
      store.purgeExpiredAccessTokens();
    } catch (err) {
      output.err(`ccflux-receiver: purging expired access tokens failed: ${(err as Error).message}`);
    }
  };
  purge();
  const purgeTimer = setInterval(purge, PURGE_INTERVAL_MILLIS);
  purgeTimer.unref();

  let closed: Promise<void> | null = null;
  return {
    server,
    store,
    metrics,
    listen: () =>
      new Promise<AddressInfo>((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        server.once('error', onError);
        server.listen(config.listenPort, config.listenHost, () => {
          server.off('error', onError);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        clearInterval(purgeTimer);
        // Answers still being prepared go out with `Connection: close`; idle keep-alive sockets
        // are closed now, busy ones as soon as their answer is sent (the 'close' hook above).
        for (const res of active) if (!res.headersSent) res.shouldKeepAlive = false;
        const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MILLIS);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closed;
    },
  };
}
