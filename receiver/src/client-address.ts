/**
 * Who is asking, for the limiters: the socket's address, or — only when the connection comes from
 * the proxy named by `TRUST_PROXY` — the address that proxy put last in `X-Forwarded-For` (nginx's
 * `$proxy_add_x_forwarded_for` appends the client it saw; entries before it are whatever the client
 * sent, never trusted). Addresses are grouped for counting: IPv4 as is, IPv6 by its /64 (one host
 * usually holds the whole /64, so counting single IPv6 addresses would count nothing).
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** `::ffff:10.0.0.5` is 10.0.0.5. */
function plain(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/** Parses `TRUST_PROXY`: empty for off, else comma-separated IP addresses; null when invalid. */
export function parseTrustProxy(value: string | undefined): string[] | null {
  if (value === undefined || value.trim() === '') return [];
  const list = value.split(',').map((v) => v.trim());
  return list.every((v) => isIP(v) !== 0) ? list.map(plain) : null;
}

export function clientAddress(req: IncomingMessage, trustedProxies: readonly string[]): string {
  const socket = plain(req.socket.remoteAddress ?? 'unknown');
  if (!trustedProxies.includes(socket)) return socket;
  const header = req.headers['x-forwarded-for'];
  const text = Array.isArray(header) ? header.join(',') : header;
  const last = text?.split(',').at(-1)?.trim();
  return last !== undefined && isIP(plain(last)) !== 0 ? plain(last) : socket;
}

/** The key an address is counted under: IPv4 whole, IPv6 by its first 64 bits. */
export function addressGroup(address: string): string {
  const ip = plain(address);
  if (isIP(ip) !== 6) return ip;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const hextets = ip.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${hextets
    .slice(0, 4)
    .map((h) => Number.parseInt(h, 16).toString(16))
    .join(':')}::/64`;
}
