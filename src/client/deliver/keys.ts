/**
 * The device's Ed25519 signing key and its registration markers.
 *
 * `signing_key` is the raw 32-byte seed (the Rust version's format), 0600 from the first byte.
 * It is written to a private temp file and then hard-linked into place: link(2) fails with EEXIST
 * when the name exists, like O_EXCL, but the key appears complete or not at all — with a bare
 * `open(path, 'wx')` a racing hook could read the winner's still-empty file and judge it corrupt.
 * Filesystems without hard links fall back to `open(path, 'wx', 0o600)`.
 *
 * `key_registered` holds the base64 public key the receiver accepted; it counts only while it
 * equals the current key, so replacing a corrupt key re-registers by itself.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, randomBytes, sign as cryptoSign, timingSafeEqual } from 'node:crypto';
import { link, open, rename, stat, unlink } from '../local/fs';
import { basename } from 'node:path';
import { decodePublicKey, formatTimestamp } from '../../protocol/wire';
import { CcfluxError, ERROR_CODES } from '../local/errors';
import { PRIVATE_FILE_MODE, readBytesIfExists, readTextIfExists, writeFileAtomic } from '../local/fsx';
import { type Logger, nullLogger } from '../local/log';
import type { StatePaths } from '../local/paths';

export const SEED_BYTES = 32;
/** PKCS#8 DER header for an Ed25519 private key; the 32-byte seed follows. */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** A key file shorter than a seed may be a fallback-path writer mid-write: look again once. */
const SHORT_KEY_RECHECK_MILLIS = 25;
const MAX_ENSURE_ATTEMPTS = 4;
const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK']);

export interface SigningKey {
  seed: Buffer;
  /** Raw 32 bytes. */
  publicKey: Buffer;
  publicKeyB64: string;
}

/** A seed turned into a KeyObject, and its public half once asked for. */
interface KeyEntry {
  seed: Buffer;
  privateKey: KeyObject;
  publicKey?: Buffer;
}

/**
 * Keys made this process, newest last. Decoding a seed into a KeyObject costs ~1–2 ms and a turn
 * needs it 3 times (the hook, the drain, each signature); a process uses one key per data dir.
 */
const keyEntries: KeyEntry[] = [];
const MAX_KEY_ENTRIES = 4;

function keyEntry(seed: Buffer): KeyEntry {
  if (seed.length !== SEED_BYTES) throw new CcfluxError(ERROR_CODES.STATE_CORRUPT, 'a signing key seed is 32 bytes');
  // Secret against secret: constant time all the same.
  const known = keyEntries.find((entry) => timingSafeEqual(entry.seed, seed));
  if (known) return known;
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  // Our own copy: the caller's buffer may be changed or zeroed after this.
  const entry: KeyEntry = { seed: Buffer.from(seed), privateKey };
  keyEntries.push(entry);
  if (keyEntries.length > MAX_KEY_ENTRIES) keyEntries.shift();
  return entry;
}

/** Derives the public half of a 32-byte seed. */
export function keyFromSeed(seed: Buffer): SigningKey {
  const entry = keyEntry(seed);
  if (!entry.publicKey) {
    const jwk = createPublicKey(entry.privateKey).export({ format: 'jwk' });
    entry.publicKey = Buffer.from(jwk.x as string, 'base64url');
  }
  const publicKey = Buffer.from(entry.publicKey);
  return { seed: Buffer.from(seed), publicKey, publicKeyB64: publicKey.toString('base64') };
}

/** Ed25519 signature (64 bytes) of `message`. */
export function sign(seed: Buffer, message: Buffer): Buffer {
  return cryptoSign(null, message, keyEntry(seed).privateKey);
}

/** Short, stable, non-secret name of a public key for status output: 16 hex chars of sha256. */
export function fingerprint(publicKeyB64: string): string {
  const raw = decodePublicKey(publicKeyB64) ?? Buffer.from(publicKeyB64, 'utf8');
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

/**
 * Returns the data dir's signing key, creating it on first use. Safe against concurrent callers
 * (processes or promises): every caller ends up with the same key. A key file of the wrong size
 * is renamed aside to `signing_key.corrupt-<ms>` (logged) and replaced.
 */
export async function ensureSigningKey(
  paths: Pick<StatePaths, 'signingKey'>,
  options: { log?: Logger; now?: () => Date } = {},
): Promise<SigningKey> {
  const log = options.log ?? nullLogger;
  const now = options.now ?? (() => new Date());
  let rechecked = false;
  for (let attempt = 0; attempt < MAX_ENSURE_ATTEMPTS; attempt++) {
    const bytes = await readBytesIfExists(paths.signingKey);
    if (bytes === null) {
      const seed = randomBytes(SEED_BYTES);
      if (await createExclusive(paths.signingKey, seed)) return keyFromSeed(seed);
      continue; // another caller won: read its key
    }
    if (bytes.length === SEED_BYTES) return keyFromSeed(bytes);
    if (bytes.length < SEED_BYTES && !rechecked) {
      rechecked = true;
      await new Promise((resolve) => setTimeout(resolve, SHORT_KEY_RECHECK_MILLIS));
      continue;
    }
    await setAside(paths.signingKey, bytes, log, now);
  }
  throw new CcfluxError(ERROR_CODES.IO, 'could not create the signing key');
}

/** Creates `path` holding `seed`, unless it exists. True when this call created it. */
async function createExclusive(path: string, seed: Buffer): Promise<boolean> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeNew(tmp, seed);
  try {
    await link(tmp, path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST') return false;
    if (!LINK_UNSUPPORTED.has(code)) throw err;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  try {
    await writeNew(path, seed);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** O_EXCL create, 0600 at creation, contents fsynced before close. */
async function writeNew(path: string, data: Buffer): Promise<void> {
  const handle = await open(path, 'wx', PRIVATE_FILE_MODE);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function setAside(path: string, badBytes: Buffer, log: Logger, now: () => Date): Promise<void> {
  const aside = `${path}.corrupt-${now().getTime()}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // another caller already moved it
    throw err;
  }
  // Between our read and the rename another caller may have replaced the bad file with a fresh
  // key; if that is what we moved, put it back (link: only if the name is still free).
  const moved = await readBytesIfExists(aside);
  if (moved !== null && moved.length === SEED_BYTES && !moved.equals(badBytes)) {
    try {
      await link(aside, path);
      await unlink(aside);
    } catch {
      // A third key took the name: the one we hold aside stays aside, unused.
    }
    return;
  }
  log.error(
    `signing key was corrupt (${badBytes.length} bytes, expected ${SEED_BYTES}): moved to ${basename(aside)}; ` +
      'a new key is created and registered with the receiver',
  );
}

/** True when `key_registered` names the current key (a marker for another key does not count). */
export async function isRegistered(paths: Pick<StatePaths, 'keyRegistered'>, publicKeyB64: string): Promise<boolean> {
  const text = await readTextIfExists(paths.keyRegistered);
  return text !== null && text.trim() === publicKeyB64;
}

export async function markRegistered(paths: Pick<StatePaths, 'keyRegistered'>, publicKeyB64: string): Promise<void> {
  // No trailing newline: the Rust version compares the file's content with the key.
  await writeFileAtomic(paths.keyRegistered, publicKeyB64);
}

export async function forgetRegistration(paths: Pick<StatePaths, 'keyRegistered'>): Promise<void> {
  await unlink(paths.keyRegistered).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/** The receiver revoked this device: hooks stay silent while the marker exists. */
export async function isRevoked(paths: Pick<StatePaths, 'keyRevoked'>): Promise<boolean> {
  try {
    await stat(paths.keyRevoked);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export async function markRevoked(
  paths: Pick<StatePaths, 'keyRevoked'>,
  info: { publicKeyB64: string; now: Date },
): Promise<void> {
  const marker = { revoked_at: formatTimestamp(info.now), public_key: info.publicKeyB64 };
  await writeFileAtomic(paths.keyRevoked, `${JSON.stringify(marker)}\n`);
}
