/**
 * The receiver's HTTP server: node:http with a fixed endpoint table (see docs/receiver.md for why
 * no framework). `createReceiver` wires config, store, clock and metrics; the caller listens
 * (or uses `listen()`) and owns the store, which `close()` leaves open. Nothing is kept per
 * instance that another instance would need: several can serve one PostgreSQL database.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type Poster, startBudgetMonitor } from './admin/alerts';
import { type AdminHandler, createAdminHandler } from './admin/index';
import type { ReceiverConfig } from './config';
import { answerEarly, originFormTarget, sendError } from './http';
import { type Logger, routeName, silentLogger } from './log';
import { Metrics } from './metrics';
import { PriceBook } from './prices/cost';
import { loadPrices } from './prices/load';
import { type Output, silentOutput } from './output';
import type { RouteDeps } from './routes/context';
import { isAdminPath, ROUTES } from './routes/index';
import { purgeRawRows } from './retention';
import type { Store } from './store';

/** How often expired access tokens are deleted. */
export const PURGE_INTERVAL_MILLIS = 10 * 60 * 1000;
/** On shutdown, requests still running after this are cut off. */
export const CLOSE_GRACE_MILLIS = 10_000;
/** A client must send its headers within this, and its whole request within REQUEST_TIMEOUT. */
export const HEADERS_TIMEOUT_MILLIS = 10_000;
export const REQUEST_TIMEOUT_MILLIS = 30_000;
/** How often Node checks those two timeouts. Its default, 30 s, let a slow client stay up to 30 s
 * past them; checking every half second keeps both within a second of the documented value. */
const CONNECTIONS_CHECKING_INTERVAL_MILLIS = 500;
/** Sent to a connection over the per-address cap before it is closed. */
const TOO_MANY_BODY = '{"error":"too many connections from this address, retry later"}';
const TOO_MANY_CONNECTIONS = `HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: ${TOO_MANY_BODY.length}\r\n\r\n${TOO_MANY_BODY}`;

export interface ReceiverOptions {
  config: ReceiverConfig;
  store: Store;
  now?: () => Date;
  /** Where unexpected errors are reported; silent by default. */
  output?: Output;
  /** JSON request and event log (LOG_LEVEL); silent by default. */
  logger?: Logger;
  /** Budget alert webhook sender (tests); `fetch` by default. */
  alertPoster?: Poster;
  /** How often budgets are checked; CHECK_INTERVAL_MILLIS by default. */
  budgetCheckMillis?: number;
}

export interface Receiver {
  server: Server;
  store: Store;
  metrics: Metrics;
  /** Runs one budget round now (record crossings, deliver due alerts); the timer does it too. */
  checkBudgets(): Promise<void>;
  /** Listens on the configured address (port 0 picks one); resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  /** Stops accepting connections, lets in-flight requests finish (up to CLOSE_GRACE_MILLIS) and
   * stops the purge timer. Does not close the store. */
  close(): Promise<void>;
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  // SQLite's lock errors; PostgreSQL's serialization failure, deadlock, too many connections.
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || code === '40001' || code === '40P01' || code === '53300';
}

/**
 * Counts open connections per remote address; one past `cap` is answered 503 and closed before
 * its request is read.
 */
function capConnectionsPerAddress(server: Server, cap: number, refused: WeakSet<Socket>, exempt: readonly string[]): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    // A trusted proxy carries every client's connections: only MAX_CONNECTIONS bounds it.
    if (exempt.includes(address.replace(/^::ffff:(?=\d+\.)/i, ''))) return;
    const count = (open.get(address) ?? 0) + 1;
    if (count > cap) {
      refused.add(socket);
      socket.end(TOO_MANY_CONNECTIONS, () => socket.destroy());
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

/** What the request handlers share, wired from the options. */
interface Wiring {
  output: Output;
  logger: Logger;
  metrics: Metrics;
  deps: RouteDeps;
  budgets: ReturnType<typeof startBudgetMonitor>;
  admin: AdminHandler | null;
}

/** Requests being answered, and whether `close()` has begun. */
interface Lifecycle {
  active: Set<ServerResponse>;
  closing: boolean;
}

export function createReceiver(options: ReceiverOptions): Receiver {
  const { config, store } = options;
  const wiring = wire(options);
  const life: Lifecycle = { active: new Set<ServerResponse>(), closing: false };
  const server = createHttpServer(config, wiring, life);
  const purgeTimer = startPurgeTimer(store, wiring, config.retentionDays, wiring.deps.now);

  let closed: Promise<void> | null = null;
  return {
    server,
    store,
    metrics: wiring.metrics,
    checkBudgets: () => wiring.budgets.runNow(),
    listen: () => listenOn(server, config),
    close: () => {
      closed ??= closeGracefully(server, life, purgeTimer, wiring.budgets);
      return closed;
    },
  };
}

/** Clock, output, metrics, prices, the budget monitor and the admin handler. */
function wire(options: ReceiverOptions): Wiring {
  const { config, store } = options;
  const now = options.now ?? (() => new Date());
  const output = options.output ?? silentOutput;
  const logger = options.logger ?? silentLogger;
  const metrics = new Metrics();
  // A bad PRICES_FILE stops the start (ReceiverError 'config'), before anything listens.
  const prices = new PriceBook(loadPrices(config.pricesFile));
  const deps: RouteDeps = { config, store, metrics, now, output, prices };
  // Budgets are checked on their own timer, never in the ingest path.
  const budgets = startBudgetMonitor(
    { store, prices, url: config.alertWebhookUrl, now, logger, ...(options.alertPoster === undefined ? {} : { post: options.alertPoster }) },
    options.budgetCheckMillis,
  );
  const admin =
    config.adminToken === undefined
      ? null
      : createAdminHandler({ config, store, now, metrics, prices, logger, onBudgetChange: () => void budgets.runNow() });
  return { output, logger, metrics, deps, budgets, admin };
}

type Target = { path: string; url?: URL } | null;

/** The request target, parsed once per request: a device endpoint's exact path (no query) needs
 * no URL object; anything else goes through the full origin-form check. */
function requestTarget(raw: string | undefined): Target {
  return raw !== undefined && ROUTES.has(raw) ? { path: raw } : originFormTarget(raw);
}

/** Request target check, then the admin paths, then the endpoint table. */
function routeRequest(wiring: Wiring): (req: IncomingMessage, res: ServerResponse, target: Target) => Promise<void> {
  const { admin, deps } = wiring;
  return async (req, res, target) => {
    if (target === null) return answerEarly(req, res, () => sendError(res, 400, 'bad request target'));
    if (isAdminPath(target.path)) {
      if (admin === null) return sendError(res, 404, 'not found');
      return admin(req, res, target.url ?? new URL(target.path, 'http://receiver.invalid'));
    }
    const endpoint = ROUTES.get(target.path);
    if (endpoint === undefined) return sendError(res, 404, 'not found');
    if (!endpoint.methods.includes(req.method ?? '')) {
      return sendError(res, 405, 'method not allowed', { allow: endpoint.methods.join(', ') });
    }
    return endpoint.handler(req, res, deps);
  };
}

/** The node:http server with its timeouts and connection limits; each request is logged and tracked. */
function createHttpServer(config: ReceiverConfig, wiring: Wiring, life: Lifecycle): Server {
  const { output, logger } = wiring;
  const handle = routeRequest(wiring);
  const refused = new WeakSet<Socket>();
  const server = createServer({ connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MILLIS }, (req, res) => {
    // A request that arrived on a connection already refused is never handled.
    if (refused.has(req.socket)) return void res.destroy();
    life.active.add(res);
    if (life.closing) res.shouldKeepAlive = false;
    const started = process.hrtime.bigint();
    const target = requestTarget(req.url);
    res.on('finish', () => {
      if (!logger.isLevelEnabled('info')) return;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      logger.info({ msg: 'request', method: req.method, route: routeName(target?.path ?? null), status: res.statusCode, ms: Math.round(ms * 10) / 10 });
    });
    res.on('close', () => {
      life.active.delete(res);
      // The socket turns idle only after this event; close it then.
      if (life.closing) setImmediate(() => server.closeIdleConnections());
    });
    handle(req, res, target).catch((err: unknown) => answerFailure(req, res, err, output));
  });
  server.headersTimeout = HEADERS_TIMEOUT_MILLIS;
  server.requestTimeout = REQUEST_TIMEOUT_MILLIS;
  // Past this Node closes new connections at once; the per-address cap below keeps one client
  // from taking them all.
  server.maxConnections = config.maxConnections;
  capConnectionsPerAddress(server, config.maxConnectionsPerAddress, refused, config.trustProxy);
  return server;
}

/** A handler that threw: 503 when the database is busy, 500 otherwise; once headers are out, the connection is cut. */
function answerFailure(req: IncomingMessage, res: ServerResponse, err: unknown, output: Output): void {
  if (!isBusy(err)) output.err(`ccflux-receiver: error handling ${req.method} request: ${(err as Error)?.message}`);
  if (res.headersSent) {
    res.destroy();
  } else if (isBusy(err)) {
    sendError(res, 503, 'database busy, retry later', { 'retry-after': '1' });
  } else {
    sendError(res, 500, 'internal error');
  }
}

/**
 * Deletes expired access tokens (and, with RETENTION_DAYS, raw usage rows past the horizon) now and
 * every PURGE_INTERVAL_MILLIS; the timer does not hold the process. A run still going when the
 * next is due is not doubled.
 */
function startPurgeTimer(store: Store, wiring: Pick<Wiring, 'output' | 'logger'>, retentionDays: number | null, now: () => Date): NodeJS.Timeout {
  const { output, logger } = wiring;
  let rawPurge: Promise<void> | null = null;
  const purge = () => {
    store.purgeExpiredAccessTokens().catch((err: unknown) => {
      output.err(`ccflux-receiver: purging expired access tokens failed: ${(err as Error).message}`);
    });
    if (retentionDays === null || rawPurge !== null) return;
    rawPurge = purgeRawRows(store, now(), retentionDays)
      .then((rows) => {
        if (rows > 0) logger.info({ msg: 'retention purge', rows, retentionDays });
      })
      .catch((err: unknown) => output.err(`ccflux-receiver: purging raw usage rows failed: ${(err as Error).message}`))
      .finally(() => {
        rawPurge = null;
      });
  };
  purge();
  const purgeTimer = setInterval(purge, PURGE_INTERVAL_MILLIS);
  purgeTimer.unref();
  return purgeTimer;
}

function listenOn(server: Server, config: ReceiverConfig): Promise<AddressInfo> {
  return new Promise<AddressInfo>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(config.listenPort, config.listenHost, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeGracefully(server: Server, life: Lifecycle, purgeTimer: NodeJS.Timeout, budgets: Wiring['budgets']): Promise<void> {
  return new Promise<void>((resolve) => {
    life.closing = true;
    clearInterval(purgeTimer);

    // Answers still being prepared go out with `Connection: close`; idle keep-alive sockets
    // are closed now, busy ones as soon as their answer is sent (the 'close' hook in createHttpServer).
    for (const res of life.active) if (!res.headersSent) res.shouldKeepAlive = false;
    const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MILLIS);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      // A budget round still running finishes before the caller closes the store.
      void budgets.stop().then(resolve);
    });
    server.closeIdleConnections();
  });
}
