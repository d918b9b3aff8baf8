/**
 * Small HTTP helpers over node:http: bounded body reading, JSON answers, and answering before a
 * request body has been read without leaving the connection in a bad state.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** After an early answer (401, 413, 429...) at most this much of the unread body is drained
 * before the connection is cut; draining lets the client read our answer instead of a reset. */
export const DRAIN_LIMIT_BYTES = 1024 * 1024;

const COMMON_HEADERS: OutgoingHttpHeaders = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...COMMON_HEADERS,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  headers: OutgoingHttpHeaders = {},
): void {
  res.writeHead(status, {
    ...COMMON_HEADERS,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, message: string, headers: OutgoingHttpHeaders = {}): void {
  sendJson(res, status, { error: message }, headers);
}

/** True while the request may still have body bytes we have not read. */
function hasUnreadBody(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Answers without reading (the rest of) the body. The connection is closed after the answer;
 * up to DRAIN_LIMIT_BYTES of the body are read and dropped first so the client sees the answer,
 * and a client that keeps sending past that is cut off.
 */
export function answerEarly(req: IncomingMessage, res: ServerResponse, send: () => void): void {
  if (hasUnreadBody(req)) {
    res.shouldKeepAlive = false;
    let drained = 0;
    req.removeAllListeners('data');
    req.on('data', (chunk: Buffer) => {
      drained += chunk.length;
      if (drained > DRAIN_LIMIT_BYTES) req.socket.destroy();
    });
    req.on('error', () => {});
    req.resume();
  }
  send();
}

export type BodyResult = { ok: true; body: Buffer } | { ok: false; reason: 'too-large' | 'aborted' };

/**
 * Reads the request body up to `limitBytes`. A declared Content-Length over the limit is refused
 * before reading anything; a body that grows past the limit while streaming (chunked, or lying
 * about its length) is refused as soon as it does.
 */
export function readBody(req: IncomingMessage, limitBytes: number): Promise<BodyResult> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limitBytes) {
    return Promise.resolve({ ok: false, reason: 'too-large' });
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (result: BodyResult) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        chunks.length = 0;
        req.pause();
        finish({ ok: false, reason: 'too-large' });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish({ ok: true, body: Buffer.concat(chunks, size) });
    const onError = () => finish({ ok: false, reason: 'aborted' });
    // 'close' before 'end' means the client went away mid-body.
    const onClose = () => finish({ ok: false, reason: 'aborted' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/**
 * The path of an origin-form request target (`/path?query`), exactly as sent, with its parsed URL;
 * null for anything else: absolute-form, `*`, a target starting with `//` (which URL parsing would
 * read as a host), one containing a backslash or `#`, or one whose path URL parsing would change (dot
 * segments, characters it escapes). Routing on this raw path means the receiver and a proxy in
 * front of it, which matches locations on the raw path too, always agree on what was asked for.
 */
export function originFormTarget(target: string | undefined): { path: string; url: URL } | null {
  if (target === undefined || !target.startsWith('/') || target.startsWith('//')) return null;
  if (target.includes('\\') || target.includes('#')) return null;
  const query = target.indexOf('?');
  const path = query === -1 ? target : target.slice(0, query);
  let url: URL;
  try {
    url = new URL(target, 'http://receiver.invalid');
  } catch {
    return null;
  }
  return url.pathname === path ? { path, url } : null;
}

/** True for `Content-Type: application/json`, with or without parameters, in any letter case. */
export function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const semicolon = value.indexOf(';');
  const type = (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase();
  return type === 'application/json';
}

/** Parses JSON; never throws. */
export function parseJson(body: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) };
  } catch {
    return { ok: false };
  }
}
