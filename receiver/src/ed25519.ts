/**
 * Checks on an Ed25519 public key before it is registered, and the verification the routes share.
 *
 * `crypto.verify` accepts keys that prove nothing: for the identity point and the other points of
 * small order (order 1, 2, 4 or 8) a fixed signature verifies for any message, so a user who
 * registered one could send "signed" reports without any private key. Such points, non-canonical
 * encodings (y ≥ p, or x = 0 with the sign bit set) and bytes that are no curve point at all are
 * refused. Pure BigInt arithmetic on the curve −x² + y² = 1 + d·x²·y² over p = 2^255 − 19.
 */
import { createPublicKey, type KeyObject, verify } from 'node:crypto';

const P = 2n ** 255n - 19n;
const D = mod(-121665n * inverse(121666n));
/** sqrt(−1) mod p. */
const SQRT_M1 = modPow(2n, (P - 1n) / 4n);

function mod(a: bigint): bigint {
  const r = a % P;
  return r >= 0n ? r : r + P;
}

function modPow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

function inverse(a: bigint): bigint {
  return modPow(a, P - 2n);
}

/** Extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x·y = T/Z. */
type Point = [bigint, bigint, bigint, bigint];

/** Decodes RFC 8032 §5.1.3 strictly; null for a non-canonical encoding or no curve point. */
function decode(raw: Uint8Array): Point | null {
  if (raw.length !== 32) return null;
  const bytes = Uint8Array.from(raw);
  const sign = (bytes[31]! >> 7) & 1;
  bytes[31]! &= 0x7f;
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(bytes[i]!);
  if (y >= P) return null;
  const y2 = (y * y) % P;
  const u = mod(y2 - 1n);
  const v = mod(D * y2 + 1n);
  // x = u·v³·(u·v⁷)^((p−5)/8), then fix by sqrt(−1) when needed.
  let x = mod(u * modPow(v, 3n) * modPow(u * modPow(v, 7n), (P - 5n) / 8n));
  const vx2 = mod(v * x * x);
  if (vx2 === mod(-u)) x = mod(x * SQRT_M1);
  else if (vx2 !== u) return null;
  if (x === 0n && sign === 1) return null;
  if (Number(x & 1n) !== sign) x = mod(-x);
  return [x, y, 1n, mod(x * y)];
}

/** Point doubling in extended coordinates (a = −1), RFC 8032 §5.1.4. */
function double([X, Y, Z]: Point): Point {
  const A = (X * X) % P;
  const B = (Y * Y) % P;
  const C = (2n * Z * Z) % P;
  const H = mod(A + B);
  const E = mod(H - mod((X + Y) * (X + Y)));
  const G = mod(A - B);
  const F = mod(C + G);
  return [mod(E * F), mod(G * H), mod(F * G), mod(E * H)];
}

/**
 * Why a public key must not be registered, or null when it is a canonical encoding of a curve point
 * outside the small-order subgroup (8·P ≠ identity).
 */
export function weakPublicKeyReason(raw: Uint8Array): string | null {
  const point = decode(raw);
  if (point === null) return 'public_key is not a canonical Ed25519 point';
  const eight = double(double(double(point)));
  // Identity: X = 0 and Y = Z.
  if (eight[0] === 0n && eight[1] === eight[2]) return 'public_key is a small-order Ed25519 point';
  return null;
}

/** DER SubjectPublicKeyInfo header of an Ed25519 key; the raw 32 bytes follow it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
/** Parsed public keys kept (OpenSSL 3 makes parsing cost as much as verifying); least recently
 * used evicted. Only keys registered to the caller reach the cache. */
const KEY_CACHE_MAX_ENTRIES = 1024;
const keyCache = new Map<string, KeyObject | null>();

/** The key object, or null for a weak key (cached either way). */
function publicKeyObject(publicKeyB64: string, raw: Buffer): KeyObject | null {
  let key = keyCache.get(publicKeyB64);
  if (key === undefined) {
    key =
      weakPublicKeyReason(raw) === null
        ? createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
        : null;
  } else {
    keyCache.delete(publicKeyB64);
  }
  keyCache.set(publicKeyB64, key);
  if (keyCache.size > KEY_CACHE_MAX_ENTRIES) keyCache.delete(keyCache.keys().next().value as string);
  return key;
}

/** Ed25519 verification that never throws and never accepts a weak key (one registered before
 * this check existed included). */
export function verifyEd25519(publicKeyB64: string, message: Buffer, signature: Buffer): boolean {
  try {
    const key = publicKeyObject(publicKeyB64, Buffer.from(publicKeyB64, 'base64'));
    return key !== null && verify(null, message, key, signature);
  } catch {
    return false;
  }
}

/**
 * The same check on libuv's thread pool (`crypto.verify` with a callback): OpenSSL 3's Ed25519
 * verify costs ~150 µs here, the largest single cost of a report, and this way it leaves the
 * event loop free for the other requests. Never rejects; false for a weak key or a bad signature.
 */
export function verifyEd25519Async(publicKeyB64: string, message: Buffer, signature: Buffer): Promise<boolean> {
  let key: KeyObject | null;
  try {
    key = publicKeyObject(publicKeyB64, Buffer.from(publicKeyB64, 'base64'));
  } catch {
    return Promise.resolve(false);
  }
  if (key === null) return Promise.resolve(false);
  const parsed = key;
  return new Promise<boolean>((resolve) => {
    try {
      verify(null, message, parsed, signature, (err, ok) => resolve(err === null && ok));
    } catch {
      resolve(false);
    }
  });
}
