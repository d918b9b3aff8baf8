/**
 * keys.ts turns a seed into a KeyObject once per process (a turn needs it for the hook, the drain
 * and every signature), keyed by the seed's bytes: never a stale key, never a key for other bytes.
 */
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const made = vi.hoisted(() => ({ privateKeys: 0 }));
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return {
    ...actual,
    createPrivateKey: (...args: Parameters<typeof actual.createPrivateKey>) => {
      made.privateKeys++;
      return actual.createPrivateKey(...args);
    },
  };
});

const { ensureSigningKey, keyFromSeed, sign } = await import('../../../src/client/deliver/keys');
const { statePaths } = await import('../../../src/client/local/paths');

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function verifies(publicKey: Buffer, message: Buffer, signature: Buffer): boolean {
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' });
  return verify(null, message, key, signature);
}

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ccflux-keys-cache-'));
  made.privateKeys = 0;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('signing key objects', () => {
  it('a turn (key read by the hook and the drain, three signatures) decodes its key once', async () => {
    const paths = statePaths(root);
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    const byHook = await ensureSigningKey(paths);
    const byDrain = await ensureSigningKey(paths);
    const message = Buffer.from('report body');
    const signatures = [1, 2, 3].map(() => sign(byDrain.seed, message));
    expect(made.privateKeys).toBe(1);
    expect(byDrain.publicKeyB64).toBe(byHook.publicKeyB64);
    for (const signature of signatures) expect(verifies(byHook.publicKey, message, signature)).toBe(true);
  });

  it('goes by the seed bytes: another seed, or the same buffer refilled, gets its own key', () => {
    const seedA = randomBytes(32);
    const seedB = randomBytes(32);
    const keyA = keyFromSeed(seedA);
    const keyB = keyFromSeed(seedB);
    expect(keyB.publicKeyB64).not.toBe(keyA.publicKeyB64);
    const message = Buffer.from('m');
    expect(verifies(keyB.publicKey, message, sign(seedB, message))).toBe(true);
    expect(verifies(keyA.publicKey, message, sign(seedB, message))).toBe(false);

    // The caller's buffer changed in place: the key follows the bytes, not the object.
    const buffer = Buffer.from(seedA);
    seedB.copy(buffer);
    expect(keyFromSeed(buffer).publicKeyB64).toBe(keyB.publicKeyB64);
    // A key made from a buffer the caller zeroes afterwards stays that seed's key.
    const seedC = randomBytes(32);
    const scratch = Buffer.from(seedC);
    const keyC = keyFromSeed(scratch);
    scratch.fill(0);
    expect(verifies(keyC.publicKey, message, sign(seedC, message))).toBe(true);
    expect(made.privateKeys).toBe(3); // A, B, C: each once
  });

  it('hands out copies: changing a returned key does not change the next one', () => {
    const seed = randomBytes(32);
    const first = keyFromSeed(seed);
    const publicB64 = first.publicKeyB64;
    first.publicKey.fill(0);
    first.seed.fill(0);
    expect(keyFromSeed(seed).publicKeyB64).toBe(publicB64);
    expect(keyFromSeed(seed).publicKey.toString('base64')).toBe(publicB64);
  });

  it('still refuses a seed of the wrong size, without naming its bytes', () => {
    const short = Buffer.from('0123456789abcdef', 'hex');
    let message = '';
    try {
      sign(short, Buffer.from('m'));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/32 bytes/);
    expect(message).not.toContain('0123456789abcdef');
    expect(made.privateKeys).toBe(0);
  });
});
