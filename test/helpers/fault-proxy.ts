/**
 * A small HTTP proxy on loopback port 0 that sits in front of the real receiver and misbehaves on
 * purpose: per request, a seeded plan picks what happens — forward it, answer an error status,
 * reset the connection, hang, answer late, or answer something hostile (huge or endless body,
 * garbage JSON, control characters in headers, redirects). The plan sees the parsed request, so a
 * test can target one endpoint or the n-th request; the proxy counts what it did and knows which
 * requests are in flight (a crash test asks "was a request mid-flight when I killed the worker?").
 *
 * Seeded (mulberry32): a failing run replays with the same seed, except for timing.
 */
import { type IncomingMessage, request as httpRequest, type Server, type ServerResponse, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { mulberry32 } from './gen-transcript';

/** The proxy never buffers more than this of a request body (the receiver's own limit is 64 KiB). */
const MAX_REQUEST_BODY_BYTES = 4 * 1024 * 1024;
/** An endless body writes one chunk this often until the client goes away. */
const ENDLESS_CHUNK_INTERVAL_MILLIS = 5;
const ENDLESS_CHUNK_BYTES = 16 * 1024;

export interface FaultRequest {
  /** 0, 1, 2, … in arrival order. */
  index: number;
  method: string;
  /** Path and query, as sent. */
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export type FaultAction =
  /**
   * Relay to the target; optionally wait before relaying and before passing the answer back, and
   * rewrite the target's answer on its way back.
   */
  | { kind: 'forward'; delayRequestMillis?: number; delayResponseMillis?: number; rewrite?: (answer: UpstreamAnswer) => UpstreamAnswer }
  /** Relay to the target (which acts on it), then reset instead of passing its answer back. */
  | { kind: 'forward-then-reset' }
  /** Answer this status without asking the target. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Answer with this exact status, headers and body (or an endless one). */
  | { kind: 'respond'; status: number; headers?: Record<string, string | string[]>; body?: string | Buffer; endless?: boolean }
  /** These exact bytes on the socket (headers no HTTP library would write), then close. */
  | { kind: 'raw'; data: Buffer }
  /** TCP reset without answering. */
  | { kind: 'reset' }
  /** Keep the connection open and never answer. */
  | { kind: 'hang' };

export type InFlightPhase = 'request' | 'upstream' | 'response' | 'held';

export type FaultPlan = (request: FaultRequest, random: () => number) => FaultAction;

export interface FaultProxy {
  url: string;
  port: number;
  setPlan(plan: FaultPlan): void;
  /** Where `forward` goes; null answers 502 to every forward (a receiver that is gone). */
  setTarget(port: number | null): void;
  /** Requests received per action kind (and `total`). */
  counts(): Record<string, number>;
  /** Requests received per path. */
  paths(): Record<string, number>;
  /** Requests received whose answer is not finished yet (or that were cut). */
  inFlight(): number;
  /**
   * In-flight requests by phase: `request` (body arriving, or waiting before relaying), `upstream`
   * (the receiver has it and has not answered), `response` (the receiver answered; the answer is
   * delayed or being written), `held` (hang or endless body).
   */
  inFlightPhases(): Record<InFlightPhase, number>;
  /** Closes every connection, the hanging ones included. */
  dropConnections(): void;
  stop(): Promise<void>;
}

export interface FaultProxyOptions {
  targetPort: number | null;
  seed: number;
  plan?: FaultPlan;
  /** Serve HTTPS with this key and certificate (the target is still plain HTTP). */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

export interface UpstreamAnswer {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

export const passThrough: FaultPlan = () => ({ kind: 'forward' });

/**
 * A receiver under strain: `errorRate` of the requests get one of `statuses` (or a reset when
 * `resetRate` is given), the rest are forwarded.
 */
export function flaky(options: { errorRate: number; statuses?: number[]; resetRate?: number }): FaultPlan {
  const statuses = options.statuses ?? [500, 502, 503, 429];
  return (_req, random) => {
    const roll = random();
    if (roll < (options.resetRate ?? 0)) return { kind: 'reset' };
    if (roll < (options.resetRate ?? 0) + options.errorRate) {
      const status = statuses[Math.floor(random() * statuses.length)] as number;
      return status === 429
        ? { kind: 'status', status, headers: { 'retry-after': '1' }, body: '{"error":"rate limit exceeded"}' }
        : { kind: 'status', status, body: '{"error":"injected"}' };
    }
    return { kind: 'forward' };
  };
}

/** Applies `plan` to requests whose path ends with `suffix`, forwards the rest. */
export function onPath(suffix: string, plan: FaultPlan): FaultPlan {
  return (req, random) => (new URL(req.path, 'http://x').pathname.endsWith(suffix) ? plan(req, random) : { kind: 'forward' });
}

function readRequestBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_REQUEST_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(Buffer.concat(chunks)));
    req.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis));

/** Hop-by-hop and framing headers are recomputed for the client. */
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

function relay(targetPort: number, request: FaultRequest): Promise<UpstreamAnswer | null> {
  return new Promise((resolve) => {
    const headers = { ...request.headers, host: `127.0.0.1:${targetPort}`, connection: 'close' };
    const upstream = httpRequest(
      { host: '127.0.0.1', port: targetPort, method: request.method, path: request.path, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers: Record<string, string | string[]> = {};
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined && !DROPPED_RESPONSE_HEADERS.has(name)) headers[name] = value;
          }
          resolve({ status: res.statusCode ?? 502, headers, body: Buffer.concat(chunks) });
        });
        res.on('error', () => resolve(null));
      },
    );
    upstream.on('error', () => resolve(null));
    upstream.end(request.body);
  });
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const random = mulberry32(options.seed);
  let plan: FaultPlan = options.plan ?? passThrough;
  let target = options.targetPort;
  let index = 0;
  let open = 0;
  let nextId = 0;
  const phases = new Map<number, InFlightPhase>();
  const counts: Record<string, number> = { total: 0 };
  const pathCounts: Record<string, number> = {};
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    open++;
    const id = nextId++;
    phases.set(id, 'request');
    const phase = (p: InFlightPhase) => {
      if (phases.has(id)) phases.set(id, p);
    };
    let finished = false;
    const done = () => {
      if (!finished) {
        finished = true;
        open--;
        phases.delete(id);
      }
    };
    res.on('close', done);
    res.on('finish', done);
    const body = await readRequestBody(req);
    const request: FaultRequest = { index: index++, method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body };
    let action: FaultAction;
    try {
      action = plan(request, random);
    } catch {
      action = { kind: 'status', status: 599 };
    }
    counts.total = (counts.total ?? 0) + 1;
    counts[action.kind] = (counts[action.kind] ?? 0) + 1;
    const pathname = request.path.split('?')[0] ?? request.path;
    pathCounts[pathname] = (pathCounts[pathname] ?? 0) + 1;

    switch (action.kind) {
      case 'reset':
        req.socket.resetAndDestroy();
        return;
      case 'hang':
        phase('held');
        return;
      case 'raw':
        req.socket.end(action.data);
        return;
      case 'status': {
        const text = action.body ?? `{"error":"injected ${action.status}"}`;
        res.writeHead(action.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...action.headers });
        res.end(text);
        return;
      }
      case 'respond': {
        if (action.endless) {
          phase('held');
          res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
          const chunk = Buffer.alloc(ENDLESS_CHUNK_BYTES, 0x20);
          res.write('{"access_token":"');
          const timer = setInterval(() => {
            if (res.destroyed || res.writableEnded) {
              clearInterval(timer);
              timers.delete(timer);
              return;
            }
            res.write(chunk);
          }, ENDLESS_CHUNK_INTERVAL_MILLIS);
          timers.add(timer);
          res.on('close', () => {
            clearInterval(timer);
            timers.delete(timer);
          });
          return;
        }
        const payload = action.body ?? '';
        res.writeHead(action.status, { 'content-length': Buffer.byteLength(payload), ...action.headers });
        res.end(payload);
        return;
      }
      case 'forward':
      case 'forward-then-reset': {
        if (action.kind === 'forward' && action.delayRequestMillis) await sleep(action.delayRequestMillis);
        if (req.socket.destroyed) return;
        phase('upstream');
        const relayed = target === null ? null : await relay(target, request);
        const upstream = relayed && action.kind === 'forward' && action.rewrite ? action.rewrite(relayed) : relayed;
        phase('response');
        if (action.kind === 'forward-then-reset') {
          req.socket.resetAndDestroy();
          return;
        }
        if (action.delayResponseMillis) await sleep(action.delayResponseMillis);
        if (res.destroyed || req.socket.destroyed) return;
        if (upstream === null) {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end('{"error":"upstream unreachable"}');
          return;
        }
        const headers: Record<string, string | string[]> = { ...upstream.headers, 'content-length': String(upstream.body.length) };
        res.writeHead(upstream.status, headers);
        res.end(upstream.body);
        return;
      }
    }
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) {
        res.writeHead(599);
        res.end();
      }
    });
  };
  const server: Server = options.tls ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, listener) : createServer(listener);
  server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy has no port');

  const dropConnections = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${address.port}`,
    port: address.port,
    setPlan(next) {
      plan = next;
    },
    setTarget(port) {
      target = port;
    },
    counts: () => ({ ...counts }),
    paths: () => ({ ...pathCounts }),
    inFlight: () => open,
    inFlightPhases: () => {
      const out: Record<InFlightPhase, number> = { request: 0, upstream: 0, response: 0, held: 0 };
      for (const p of phases.values()) out[p]++;
      return out;
    },
    dropConnections,
    async stop() {
      for (const timer of timers) clearInterval(timer);
      dropConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
