/**
 * Shared pieces of the fault suites: the reliability line every test prints, the seed, a raw
 * HTTP client that never throws, and an Ed25519 signer speaking the wire protocol.
 */
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { request as httpRequest, type Agent, type IncomingHttpHeaders } from 'node:http';
import { formatSignatureHeader, formatTimestamp, signingMessage } from '../../src/protocol/wire';

/**
 * One seed for the whole fault suite; each test derives its own from it. A failing run replays
 * with `CCFLUX_FAULT_SEED=<n> npx vitest run test/faults` (timing aside).
 */
export const FAULT_SEED = Number(process.env.CCFLUX_FAULT_SEED ?? '') || 20260511;

/** `RELIABILITY | <test> | <figure>`: the suite's output reads as a table. */
export function reliability(test: string, figure: string): void {
  console.log(`RELIABILITY | ${test} | ${figure}`);
}

export function formatCounts(counts: Record<string | number, number>): string {
  return Object.entries(counts)
    .sort(([a], [b]) => String(a).localeCompare(String(b)))
    .map(([k, v]) => `${k}:${v}`)
    .join(' ');
}

export function bump(counts: Record<string, number>, key: string | number, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

export type HttpAnswer =
  | { kind: 'response'; status: number; headers: IncomingHttpHeaders; body: Buffer; millis: number }
  | { kind: 'error'; code: string; millis: number };

export interface HttpCall {
  method: string;
  url: string;
  headers?: Record<string, string | string[]>;
  body?: Buffer | string;
  agent?: Agent | false;
  timeoutMillis?: number;
  /** Source address (any 127.x.y.z works on Linux loopback: a "different client"). */
  localAddress?: string;
}

/** One HTTP exchange; a refused or reset connection is an answer too. Never rejects. */
export function httpCall(call: HttpCall): Promise<HttpAnswer> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const finish = (answer: HttpAnswer) => {
      if (!settled) {
        settled = true;
        resolve(answer);
      }
    };
    let req: ReturnType<typeof httpRequest>;
    try {
      req = httpRequest(call.url, {
          method: call.method,
          headers: call.headers ?? {},
          agent: call.agent ?? false,
          ...(call.localAddress ? { localAddress: call.localAddress } : {}),
        }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          finish({ kind: 'response', status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), millis: performance.now() - started }),
        );
        res.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'error', code: err.code ?? err.message, millis: performance.now() - started }));
      });
    } catch (err) {
      // Headers node refuses to send (invalid characters): nothing reached the server.
      finish({ kind: 'error', code: `client-refused:${(err as NodeJS.ErrnoException).code ?? 'invalid'}`, millis: 0 });
      return;
    }
    req.setTimeout(call.timeoutMillis ?? 10_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
    req.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'error', code: err.code ?? err.message, millis: performance.now() - started }));
    req.end(call.body);
  });
}

export interface Signer {
  publicKeyB64: string;
  /** The two signing headers for `body` at `now`. */
  headers(body: Buffer | string, now?: Date): Record<string, string>;
}

/** DER SPKI of an Ed25519 key is a 12-byte header and the raw 32 bytes. */
function rawPublicKey(key: KeyObject): Buffer {
  return (key.export({ format: 'der', type: 'spki' }) as Buffer).subarray(12);
}

export function makeSigner(): Signer {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKey(publicKey);
  return {
    publicKeyB64: raw.toString('base64'),
    headers(body, now = new Date()) {
      const timestamp = formatTimestamp(now);
      const signature = sign(null, signingMessage(body, timestamp), privateKey);
      return { 'x-ccflux-timestamp': timestamp, 'x-ccflux-signature': formatSignatureHeader(signature, raw) };
    },
  };
}

export const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis));
