import { execFile } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ensureSigningKey,
  fingerprint,
  forgetRegistration,
  isRegistered,
  isRevoked,
  keyFromSeed,
  markRegistered,
  markRevoked,
  sign,
} from '../../../src/client/deliver/keys';
import type { Logger } from '../../../src/client/local/log';
import { type StatePaths, statePaths } from '../../../src/client/local/paths';
import { formatSignatureHeader, parseSignatureHeader, signingMessage } from '../../../src/protocol/wire';

const run = promisify(execFile);
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

let root: string;
let paths: StatePaths;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ccflux-keys-'));
  paths = statePaths(root);
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function memoryLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, activity: (m) => lines.push(`info ${m}`), error: (m) => lines.push(`error ${m}`), flush: async () => {} };
}

function verifyRaw(publicKey: Buffer, message: Buffer, signature: Buffer): boolean {
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' });
  return verify(null, message, key, signature);
}

describe('ensureSigningKey', () => {
  it('creates a raw 32-byte seed, 0600, and returns the same key afterwards', async () => {
    const key = await ensureSigningKey(paths);
    const onDisk = await readFile(paths.signingKey);
    expect(onDisk.length).toBe(32);
    expect(onDisk.equals(key.seed)).toBe(true);
    expect((await stat(paths.signingKey)).mode & 0o777).toBe(0o600);
    expect(key.publicKey.length).toBe(32);
    expect(key.publicKeyB64).toBe(key.publicKey.toString('base64'));
    const again = await ensureSigningKey(paths);
    expect(again.publicKeyB64).toBe(key.publicKeyB64);
    // No temp files left behind.
    expect((await readdir(paths.dir)).filter((f) => f.startsWith('signing_key'))).toEqual(['signing_key']);
  });

  it('reads an existing (Rust-format) seed', async () => {
    const seed = Buffer.alloc(32, 7);
    await writeFile(paths.signingKey, seed, { mode: 0o600 });
    const key = await ensureSigningKey(paths);
    expect(key.seed.equals(seed)).toBe(true);
    expect(key.publicKeyB64).toBe(keyFromSeed(seed).publicKeyB64);
  });

  it('concurrent calls in one process all get one key', async () => {
    const keys = await Promise.all(Array.from({ length: 16 }, () => ensureSigningKey(paths)));
    const distinct = new Set(keys.map((k) => k.publicKeyB64));
    expect(distinct.size).toBe(1);
    expect((await readFile(paths.signingKey)).equals(keys[0]!.seed)).toBe(true);
  });

  describe('racing processes', () => {
    let bundle: string;
    let bundleDir: string;
    beforeAll(async () => {
      bundleDir = await mkdtemp(join(tmpdir(), 'ccflux-keys-bundle-'));
      const entry = join(bundleDir, 'entry.ts');
      await writeFile(
        entry,
        `import { ensureSigningKey } from ${JSON.stringify(resolve('src/client/deliver/keys.ts'))};
         import { statePaths } from ${JSON.stringify(resolve('src/client/local/paths.ts'))};
         ensureSigningKey(statePaths(process.argv[2])).then((k) => process.stdout.write(k.publicKeyB64));`,
      );
      bundle = join(bundleDir, 'race.cjs');
      await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: bundle, logLevel: 'silent' });
    });
    afterAll(async () => {
      await rm(bundleDir, { recursive: true, force: true });
    });

    it('six processes creating the key at once agree on one key', async () => {
      const outputs = await Promise.all(Array.from({ length: 6 }, () => run(process.execPath, [bundle, root])));
      const keys = new Set(outputs.map((o) => o.stdout));
      expect(keys.size).toBe(1);
      const [only] = [...keys];
      expect(keyFromSeed(await readFile(paths.signingKey)).publicKeyB64).toBe(only);
      expect((await stat(paths.signingKey)).mode & 0o777).toBe(0o600);
    });
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['short', Buffer.alloc(31, 1)],
    ['long', Buffer.alloc(64, 1)],
    ['text', Buffer.from('-----BEGIN PRIVATE KEY-----\nnot ours\n-----END PRIVATE KEY-----\n')],
  ])('a corrupt (%s) key file is moved aside, logged and replaced', async (_name, bad) => {
    await writeFile(paths.signingKey, bad, { mode: 0o600 });
    const oldPub = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
    await markRegistered(paths, oldPub);
    const log = memoryLog();
    const key = await ensureSigningKey(paths, { log, now: () => new Date('2026-05-11T03:00:00Z') });
    expect(key.seed.length).toBe(32);
    expect((await readFile(paths.signingKey)).equals(key.seed)).toBe(true);
    const aside = (await readdir(paths.dir)).filter((f) => f.startsWith('signing_key.corrupt-'));
    expect(aside).toEqual([`signing_key.corrupt-${Date.parse('2026-05-11T03:00:00Z')}`]);
    expect((await readFile(join(paths.dir, aside[0]!))).equals(bad)).toBe(true);
    expect(log.lines.some((l) => l.startsWith('error signing key was corrupt'))).toBe(true);
    // The old registration marker no longer matches: the device registers again.
    expect(await isRegistered(paths, key.publicKeyB64)).toBe(false);
  });
});

describe('sign', () => {
  it('verifies with node:crypto and through the wire helpers', async () => {
    const key = await ensureSigningKey(paths);
    const body = Buffer.from('{"schema_version":1,"session_id":"s"}');
    const timestamp = '2026-05-11T03:00:00Z';
    const message = signingMessage(body, timestamp);
    const signature = sign(key.seed, message);
    expect(signature.length).toBe(64);
    expect(verifyRaw(key.publicKey, message, signature)).toBe(true);

    const header = formatSignatureHeader(signature, key.publicKey);
    const parsed = parseSignatureHeader(header);
    expect(parsed).not.toBeNull();
    expect(parsed!.publicKey).toBe(key.publicKeyB64);
    expect(verifyRaw(Buffer.from(parsed!.publicKey, 'base64'), message, parsed!.signature)).toBe(true);

    // Tampering with body or timestamp breaks it.
    expect(verifyRaw(key.publicKey, signingMessage(Buffer.from('{"schema_version":2}'), timestamp), signature)).toBe(false);
    expect(verifyRaw(key.publicKey, signingMessage(body, '2026-05-11T03:00:01Z'), signature)).toBe(false);
  });

  it('matches the RFC 8032 test vector 1', () => {
    const seed = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex');
    const key = keyFromSeed(seed);
    expect(key.publicKey.toString('hex')).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(sign(seed, Buffer.alloc(0)).toString('hex')).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });

  it('refuses a seed of the wrong size', () => {
    expect(() => sign(Buffer.alloc(16), Buffer.alloc(1))).toThrow();
  });
});

describe('markers', () => {
  it('key_registered counts only for the current key', async () => {
    const key = await ensureSigningKey(paths);
    expect(await isRegistered(paths, key.publicKeyB64)).toBe(false);
    await markRegistered(paths, key.publicKeyB64);
    expect(await readFile(paths.keyRegistered, 'utf8')).toBe(key.publicKeyB64);
    expect((await stat(paths.keyRegistered)).mode & 0o777).toBe(0o600);
    expect(await isRegistered(paths, key.publicKeyB64)).toBe(true);
    expect(await isRegistered(paths, keyFromSeed(Buffer.alloc(32, 9)).publicKeyB64)).toBe(false);
    await forgetRegistration(paths);
    await forgetRegistration(paths); // idempotent
    expect(await isRegistered(paths, key.publicKeyB64)).toBe(false);
  });

  it('accepts a marker with a trailing newline (hand-edited or another writer)', async () => {
    const key = await ensureSigningKey(paths);
    await writeFile(paths.keyRegistered, `${key.publicKeyB64}\n`);
    expect(await isRegistered(paths, key.publicKeyB64)).toBe(true);
  });

  it('key_revoked', async () => {
    expect(await isRevoked(paths)).toBe(false);
    await markRevoked(paths, { publicKeyB64: 'pub', now: new Date('2026-05-11T03:00:00Z') });
    expect(await isRevoked(paths)).toBe(true);
    expect((await stat(paths.keyRevoked)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(paths.keyRevoked, 'utf8'))).toEqual({ revoked_at: '2026-05-11T03:00:00Z', public_key: 'pub' });
  });

  it('fingerprint is short, stable hex', () => {
    const pub = keyFromSeed(Buffer.alloc(32, 1)).publicKeyB64;
    expect(fingerprint(pub)).toMatch(/^[0-9a-f]{16}$/);
    expect(fingerprint(pub)).toBe(fingerprint(pub));
    expect(fingerprint(pub)).not.toBe(fingerprint(keyFromSeed(Buffer.alloc(32, 2)).publicKeyB64));
  });
});
