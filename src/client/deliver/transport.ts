/**
 * HTTP for the device: every call returns a `TransportResult`, never throws (an HTTP status is an
 * answer, a refused connection is a value), and every call is bounded in time and size.
 *
 * Two engines. The common case (no proxy, no injected dispatcher) uses `node:http`/`node:https`:
 * they are part of Node's start-up snapshot and parse HTTP natively, where loading undici and
 * compiling its WebAssembly parser cost a hook worker ~60-100 ms (docs/bench.md, "Where a turn's
 * time goes"). undici (imported inside the first send that needs it; a bundled dynamic import
 * becomes a deferred require) serves proxies (`EnvHttpProxyAgent`) and tests' `MockAgent`.
 * Neither follows redirects (a 3xx is just an answer), so a bearer token can never be forwarded
 * to another origin.
 *
 * Time bounds, the same in both: connect (TCP + TLS) 2 s, response headers 3 s, gap between body
 * chunks 3 s, whole exchange 5 s. Timeouts keep undici's codes (`UND_ERR_CONNECT_TIMEOUT`,
 * `UND_ERR_HEADERS_TIMEOUT`) whichever engine answered, so logs and callers see one vocabulary.
 * An AbortSignal does not interrupt undici's connect phase (deps-notes §4), so there the connect
 * timeout is what bounds a silent network, not the signal.
 */
import { readFile } from '../local/fs';
import type { Agent as HttpAgent, ClientRequest, IncomingMessage } from 'node:http';
import type { Dispatcher } from 'undici';
import { httpAllowed } from '../local/credentials';

export type TransportResult =
  | {
      kind: 'response';
      status: number;
      /** Lower-case names; repeated headers joined with `, `. */
      headers: Record<string, string>;
      /** At most `maxBodyBytes` bytes (UTF-8 decoded); the rest is discarded. */
      body: string;
      /** The body was cut at the cap, or stopped arriving before the deadline. */
      truncated: boolean;
    }
  | {
      kind: 'network-error';
      /** `insecure`, `invalid-url`, `timeout`, `ca-unreadable`, or the system/undici code (`ECONNREFUSED`, `UND_ERR_…`). */
      code: string;
      message: string;
    };

export interface RequestInit {
  headers?: Record<string, string>;
  /** Caps the whole exchange below the default 5 s (for example a caller's remaining budget). */
  timeoutMillis?: number;
}

export interface Transport {
  post(url: string, init: RequestInit & { body: string | Buffer }): Promise<TransportResult>;
  get(url: string, init?: RequestInit): Promise<TransportResult>;
  /** Closes idle connections (only if undici was loaded). Never rejects. */
  close(): Promise<void>;
}

export interface TransportTimeouts {
  connectMillis: number;
  headersMillis: number;
  bodyMillis: number;
  overallMillis: number;
}

export const DEFAULT_TIMEOUTS: TransportTimeouts = {
  connectMillis: 2_000,
  headersMillis: 3_000,
  bodyMillis: 3_000,
  overallMillis: 5_000,
};
export const MAX_RESPONSE_BODY_BYTES = 64 * 1024;
const MAX_ERROR_MESSAGE_CHARS = 200;

export interface TransportOptions {
  env: NodeJS.ProcessEnv;
  /** Tests inject an undici `MockAgent`; by default an Agent (or proxy agent) is built from `env`. */
  dispatcher?: Dispatcher;
  timeouts?: Partial<TransportTimeouts>;
  maxBodyBytes?: number;
}

type Undici = typeof import('undici');
type Engine =
  | { ok: true; kind: 'undici'; undici: Undici; dispatcher: Dispatcher }
  | { ok: true; kind: 'node'; ca: string[] | undefined; agents: Map<string, HttpAgent> };
type Setup = Engine | { ok: false; code: string; message: string };

export function createTransport(options: TransportOptions): Transport {
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const maxBodyBytes = options.maxBodyBytes ?? MAX_RESPONSE_BODY_BYTES;
  let setup: Promise<Setup> | undefined;

  const send = async (
    method: 'GET' | 'POST',
    url: string,
    init: RequestInit & { body?: string | Buffer },
  ): Promise<TransportResult> => {
    try {
      const refused = checkUrl(url, options.env);
      if (refused) return refused;
      setup ??= prepare(options, timeouts);
      const ready = await setup;
      if (!ready.ok) return { kind: 'network-error', code: ready.code, message: ready.message };
      const overallMillis = Math.max(1, Math.min(timeouts.overallMillis, init.timeoutMillis ?? Number.POSITIVE_INFINITY));
      const bounds = { ...timeouts, overallMillis };
      return ready.kind === 'node'
        ? await exchangeNode(ready, method, url, init, bounds, maxBodyBytes)
        : await exchange(ready, method, url, init, bounds, maxBodyBytes);
    } catch (err) {
      return networkError(err);
    }
  };

  return {
    post: (url, init) => send('POST', url, init),
    get: (url, init = {}) => send('GET', url, init),
    close: async () => {
      if (!setup || options.dispatcher) return;
      const ready = await setup.catch(() => null);
      if (ready?.ok && ready.kind === 'undici') await ready.dispatcher.close().catch(() => {});
      if (ready?.ok && ready.kind === 'node') for (const agent of ready.agents.values()) agent.destroy();
    },
  };
}

function checkUrl(url: string, env: NodeJS.ProcessEnv): TransportResult | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { kind: 'network-error', code: 'invalid-url', message: 'not a valid URL' };
  }
  if (parsed.protocol === 'https:') return null;
  if (parsed.protocol === 'http:') {
    if (httpAllowed(env)) return null;
    return {
      kind: 'network-error',
      code: 'insecure',
      message: 'refusing plain http:// (set CCFLUX_ALLOW_HTTP=1 for local development only)',
    };
  }
  return { kind: 'network-error', code: 'invalid-url', message: 'only https:// URLs are used' };
}

async function prepare(options: TransportOptions, timeouts: TransportTimeouts): Promise<Setup> {
  if (options.dispatcher) return { ok: true, kind: 'undici', undici: await import('undici'), dispatcher: options.dispatcher };

  const env = options.env;
  const extraCas: string[] = [];
  for (const name of ['CCFLUX_CA_CERT', 'CCFLUX_EXTRA_CA_CERTS'] as const) {
    const file = env[name];
    if (!file) continue;
    try {
      extraCas.push(await readFile(file, 'utf8'));
    } catch (err) {
      // Falling back to the default roots would only fail later with a less helpful TLS error.
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      return { ok: false, code: 'ca-unreadable', message: `cannot read ${name} file (${code})` };
    }
  }
  // `ca` replaces Node's roots, so an extra CA is added to them rather than passed alone.
  // node:tls only when needed: loading it costs a hook run ~10-20 ms (docs/bench.md). Builtins
  // are loaded lazily with getBuiltinModule, not import(): the bundle runs from a vm.Script
  // (scripts/build.mjs) where Node 20 has no loader for import().
  const ca = extraCas.length > 0 ? [...process.getBuiltinModule('node:tls').rootCertificates, ...extraCas] : undefined;
  const tls = ca ? { ca } : {};
  const connect = { ...tls, timeout: timeouts.connectMillis };
  const agentOptions = {
    connect,
    headersTimeout: timeouts.headersMillis,
    bodyTimeout: timeouts.bodyMillis,
  };

  // Lower-case wins, as in curl and undici; passed explicitly (undici would read process.env,
  // and `env` here is an option). An empty string means "no proxy".
  const httpProxy = env.http_proxy ?? env.HTTP_PROXY ?? '';
  const httpsProxy = env.https_proxy ?? env.HTTPS_PROXY ?? '';
  if (httpProxy === '' && httpsProxy === '') {
    return { ok: true, kind: 'node', ca, agents: new Map() };
  }
  {
    const undici: Undici = await import('undici');
    const dispatcher = new undici.EnvHttpProxyAgent({
      ...agentOptions,
      httpProxy,
      httpsProxy,
      noProxy: env.no_proxy ?? env.NO_PROXY ?? '',
      // Through a tunnel, `connect` does not reach the target: its TLS options go in requestTls,
      // and proxyTls bounds the connection to the proxy itself.
      requestTls: connect,
      proxyTls: connect,
    });
    return { ok: true, kind: 'undici', undici, dispatcher };
  }
}

async function exchange(
  ready: { undici: Undici; dispatcher: Dispatcher },
  method: 'GET' | 'POST',
  url: string,
  init: RequestInit & { body?: string | Buffer },
  timeouts: TransportTimeouts,
  maxBodyBytes: number,
): Promise<TransportResult> {
  const signal = AbortSignal.timeout(timeouts.overallMillis);
  const response = await ready.undici.request(url, {
    method,
    headers: init.headers ?? {},
    body: method === 'POST' ? (init.body ?? '') : null,
    dispatcher: ready.dispatcher,
    signal,
    headersTimeout: timeouts.headersMillis,
    bodyTimeout: timeouts.bodyMillis,
  });

  const chunks: Buffer[] = [];
  let size = 0;
  let truncated = false;
  try {
    for await (const chunk of response.body) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      const room = maxBodyBytes - size;
      if (buf.length > room) {
        chunks.push(buf.subarray(0, room));
        size += room;
        truncated = true;
        break;
      }
      chunks.push(buf);
      size += buf.length;
    }
  } catch {
    // The status line already answered; a body that stalls or dies is cut, not an error.
    truncated = true;
  } finally {
    // An endless or huge body: stop reading and drop the connection rather than drain it.
    if (truncated) response.body.destroy();
  }

  return {
    kind: 'response',
    status: response.statusCode,
    headers: headerRecord(response.headers),
    body: Buffer.concat(chunks, size).toString('utf8'),
    truncated,
  };
}

/** Lower-case names; repeated headers joined with `, `. */
function headerRecord(raw: Record<string, string | string[] | number | undefined>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return headers;
}

/** One keep-alive agent per origin, with the extra CAs for https. */
function agentFor(
  engine: { ca: string[] | undefined; agents: Map<string, HttpAgent> },
  target: URL,
  lib: { Agent: new (options: Record<string, unknown>) => HttpAgent },
): HttpAgent {
  let agent = engine.agents.get(target.origin);
  if (agent === undefined) {
    agent = new lib.Agent({ keepAlive: true, maxSockets: 4, ...(target.protocol === 'https:' && engine.ca ? { ca: engine.ca } : {}) });
    engine.agents.set(target.origin, agent);
  }
  return agent;
}

/** A timeout of the node engine, named as undici names it. */
class PhaseTimeout extends Error {
  constructor(readonly code: string) {
    super(code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connect timeout' : 'headers timeout');
  }
}

/**
 * One exchange over node:http(s). Keep-alive per origin (a worker's token, key and report calls
 * share one connection; `close()` destroys the agents). Each phase has its own timer: connect
 * until the socket (and TLS) is up, headers until the response starts, and a gap timer between
 * body chunks; the overall timer ends everything. Kept in one piece: the request's and the
 * response's callbacks share one settled flag and one phase timer, and splitting them apart
 * would spread that state across functions.
 */
async function exchangeNode(
  engine: { ca: string[] | undefined; agents: Map<string, HttpAgent> },
  method: 'GET' | 'POST',
  url: string,
  init: RequestInit & { body?: string | Buffer },
  timeouts: TransportTimeouts,
  maxBodyBytes: number,
): Promise<TransportResult> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const lib = secure ? process.getBuiltinModule('node:https') : process.getBuiltinModule('node:http');
  const agent = agentFor(engine, target, lib);
  const body = method === 'POST' ? (init.body ?? '') : undefined;
  const headers: Record<string, string | number> = { ...(init.headers ?? {}) };
  if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);

  return await new Promise<TransportResult>((resolve) => {
    let settled = false;
    let request: ClientRequest | undefined;
    let phase: NodeJS.Timeout | undefined;
    // Before the headers the overall deadline is a timeout; after them it cuts the body.
    let onDeadline = () => fail({ name: 'TimeoutError' });
    const overall = setTimeout(() => onDeadline(), timeouts.overallMillis);
    const arm = (millis: number, onFire: () => void) => {
      clearTimeout(phase);
      phase = setTimeout(onFire, millis);
    };
    const finish = (result: TransportResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(overall);
      clearTimeout(phase);
      resolve(result);
    };
    const fail = (err: unknown) => {
      finish(networkError(err));
      request?.destroy();
    };
    try {
      request = lib.request(target, { method, headers, agent });
    } catch (err) {
      fail(err);
      return;
    }
    const req = request;
    req.on('error', fail);
    arm(timeouts.connectMillis, () => fail(new PhaseTimeout('UND_ERR_CONNECT_TIMEOUT')));
    req.on('socket', (socket) => {
      const connected = () => arm(timeouts.headersMillis, () => fail(new PhaseTimeout('UND_ERR_HEADERS_TIMEOUT')));
      // A reused keep-alive socket is already up; a new one waits for TCP (and TLS).
      if (!socket.connecting && (!secure || (socket as { encrypted?: boolean }).encrypted === true)) connected();
      else socket.once(secure ? 'secureConnect' : 'connect', connected);
    });
    req.on('response', (response: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = (truncated: boolean) => {
        const body = Buffer.concat(chunks, size).toString('utf8');
        finish({ kind: 'response', status: response.statusCode ?? 0, headers: headerRecord(response.headers), body, truncated });
        // An endless, huge or stalled body: drop the connection rather than drain it.
        if (truncated) req.destroy();
      };
      const gap = () => arm(timeouts.bodyMillis, () => done(true));
      gap();
      onDeadline = () => done(true);
      response.on('data', (chunk: Buffer) => {
        if (settled) return;
        gap();
        const room = maxBodyBytes - size;
        if (chunk.length > room) {
          chunks.push(chunk.subarray(0, room));
          size += room;
          done(true);
          return;
        }
        chunks.push(chunk);
        size += chunk.length;
      });
      response.on('end', () => done(false));
      response.on('error', () => done(true));
      response.on('close', () => {
        if (!settled) done(!response.complete);
      });
    });
    req.end(body);
  });
}

function networkError(err: unknown): TransportResult {
  const e = (err ?? {}) as { name?: unknown; code?: unknown; message?: unknown; cause?: { code?: unknown } };
  if (e.name === 'TimeoutError') return { kind: 'network-error', code: 'timeout', message: 'no complete answer in time' };
  const code =
    typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : e.name === 'AbortError' ? 'aborted' : 'network-error';
  const message = typeof e.message === 'string' ? e.message : String(err);
  return {
    kind: 'network-error',
    code: code.replace(/[^\x20-\x7e]/g, '?').slice(0, 64),
    message: message.replace(/[^\x20-\x7e]/g, '?').slice(0, MAX_ERROR_MESSAGE_CHARS),
  };
}
