/**
 * Issue 16 row 5: small-order and non-canonical Ed25519 public keys are refused at registration
 * (and never verify a report), so no one can send "signed" reports without a private key.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { formatSignatureHeader, formatTimestamp } from '../../../src/protocol/wire';
import { verifyEd25519, verifyEd25519Async, weakPublicKeyReason } from '../../src/ed25519';
import { bearer, makeDevice, makeReport, provision, send, startInProcess, type TestReceiver, usageRows } from '../support';

/** The eight points of small order (libsodium's list), and encodings that are not canonical. */
const SMALL_ORDER = [
  ['identity (order 1)', '0100000000000000000000000000000000000000000000000000000000000000'],
  ['order 2', 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'],
  ['order 4', '0000000000000000000000000000000000000000000000000000000000000000'],
  ['order 8 (a)', '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'],
  ['order 8 (b)', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'],
  ['order 8 (a, other sign)', '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85'],
  ['order 8 (b, other sign)', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa'],
] as const;
const NON_CANONICAL = [
  ['y = p (0 again)', 'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'],
  ['y = p + 1 (identity again)', 'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'],
  ['x = 0 with the sign bit set', '0100000000000000000000000000000000000000000000000000000000000080'],
  ['not on the curve', '0200000000000000000000000000000000000000000000000000000000000000'],
] as const;
const b64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');

let t: TestReceiver | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('weakPublicKeyReason', () => {
  it.each(SMALL_ORDER)('refuses %s', (_name, hex) => {
    expect(weakPublicKeyReason(Buffer.from(hex, 'hex'))).toMatch(/small-order/);
  });
  it.each(NON_CANONICAL)('refuses %s', (_name, hex) => {
    expect(weakPublicKeyReason(Buffer.from(hex, 'hex'))).toMatch(/canonical/);
  });
  it('accepts real keys and the base point', () => {
    for (let i = 0; i < 20; i++) {
      const { publicKey } = generateKeyPairSync('ed25519');
      const raw = (publicKey.export({ format: 'der', type: 'spki' }) as Buffer).subarray(-32);
      expect(weakPublicKeyReason(raw)).toBeNull();
    }
    expect(weakPublicKeyReason(Buffer.from('5866666666666666666666666666666666666666666666666666666666666666', 'hex'))).toBeNull();
  });
});

describe('at /register-key and /report', () => {
  it.each([...SMALL_ORDER, ...NON_CANONICAL])('answers 400 to %s and stores nothing', async (_name, hex) => {
    t = await startInProcess();
    const { accessToken } = await provision(t, 'mallory@example.org');
    const answer = await send(`${t.url}/register-key`, {
      headers: bearer(accessToken),
      body: JSON.stringify({ public_key: b64(hex), device_id: 'forged' }),
    });
    expect(answer.status).toBe(400);
    expect(await t.store.listKeys()).toEqual([]);
  });

  it('a fixed signature with the identity key is no signed report, even if the key got registered earlier', async () => {
    t = await startInProcess({ env: { REQUIRE_SIGNATURES: '1' } });
    const { accessToken } = await provision(t, 'mallory@example.org');
    const identity = Buffer.from(SMALL_ORDER[0][1], 'hex');
    // Registered by an older receiver: straight into the store.
    const auth = (await t.store.authenticateAccessToken(accessToken))!;
    expect(await t.store.registerKey(auth, identity.toString('base64'), 'forged')).toBe('registered');
    // R = identity, S = 0: verifies for any message under the identity key with a cofactorless check.
    const signature = Buffer.concat([identity, Buffer.alloc(32)]);
    expect(verifyEd25519(identity.toString('base64'), Buffer.from('anything'), signature)).toBe(false);
    expect(await verifyEd25519Async(identity.toString('base64'), Buffer.from('anything'), signature)).toBe(false);
    const body = JSON.stringify(makeReport());
    const answer = await send(`${t.url}/report`, {
      headers: {
        ...bearer(accessToken),
        'x-ccflux-timestamp': formatTimestamp(t.clock.now()),
        'x-ccflux-signature': formatSignatureHeader(signature, identity),
      },
      body,
    });
    expect(answer.status).toBe(403);
    expect(answer.headers['x-ccflux-error']).toBe('signature-invalid');
    expect((await usageRows(t))).toEqual([]);
  });

  it('the thread-pool check agrees with the synchronous one: good signature yes, tampered message, other key or junk no', async () => {
    const device = makeDevice();
    const message = Buffer.from('{"a":1}\n2026-05-11T03:00:00Z');
    const signature = Buffer.from(/ed25519 (\S+)/.exec(device.sign('{"a":1}', new Date('2026-05-11T03:00:00Z'))['x-ccflux-signature']!)![1]!, 'base64');
    expect(await verifyEd25519Async(device.publicKey, message, signature)).toBe(true);
    expect(verifyEd25519(device.publicKey, message, signature)).toBe(true);
    expect(await verifyEd25519Async(device.publicKey, Buffer.from('{"a":2}\n2026-05-11T03:00:00Z'), signature)).toBe(false);
    expect(await verifyEd25519Async(makeDevice().publicKey, message, signature)).toBe(false);
    expect(await verifyEd25519Async('not a key', message, signature)).toBe(false);
    expect(await verifyEd25519Async(device.publicKey, message, Buffer.alloc(3))).toBe(false);
  });

  it('real devices still register and sign', async () => {
    t = await startInProcess({ env: { REQUIRE_SIGNATURES: '1' } });
    const { accessToken } = await provision(t, 'ana@example.org');
    const device = makeDevice();
    const reg = await send(`${t.url}/register-key`, { headers: bearer(accessToken), body: JSON.stringify({ public_key: device.publicKey, device_id: 'd' }) });
    expect(reg.status).toBe(200);
  });
});

describe('proof of possession at /register-key', () => {
  function signedRegistration(device: ReturnType<typeof makeDevice>, at: Date, publicKey = device.publicKey) {
    const body = JSON.stringify({ public_key: publicKey, device_id: 'laptop' });
    return { body, headers: device.sign(body, at) };
  }

  it('accepts a registration signed by the key, with or without REQUIRE_KEY_PROOF', async () => {
    for (const env of [{}, { REQUIRE_KEY_PROOF: '1' }] as Record<string, string>[]) {
      t = await startInProcess({ env });
      const { accessToken } = await provision(t, 'ana@example.org');
      const device = makeDevice();
      const { body, headers } = signedRegistration(device, t.clock.now());
      const answer = await send(`${t.url}/register-key`, { headers: { ...bearer(accessToken), ...headers }, body });
      expect(answer.status, answer.text).toBe(200);
      await t.close();
      t = undefined;
    }
  });

  it('REQUIRE_KEY_PROOF=1 refuses an unsigned registration (403 signature-required); off by default', async () => {
    t = await startInProcess({ env: { REQUIRE_KEY_PROOF: '1' } });
    const { accessToken } = await provision(t, 'ana@example.org');
    const body = JSON.stringify({ public_key: makeDevice().publicKey, device_id: 'laptop' });
    const refused = await send(`${t.url}/register-key`, { headers: bearer(accessToken), body });
    expect(refused.status).toBe(403);
    expect(refused.headers['x-ccflux-error']).toBe('signature-required');
    expect(await t.store.listKeys()).toEqual([]);
    expect(t.config.requireKeyProof).toBe(true);
  });

  it("refuses another user's public key signed by a key the caller holds, a stale or a forged proof", async () => {
    t = await startInProcess();
    const { accessToken } = await provision(t, 'mallory@example.org');
    const victim = makeDevice();
    const mine = makeDevice();
    // Mallory signs with her own key but asks to register the victim's public key.
    const body = JSON.stringify({ public_key: victim.publicKey, device_id: 'copied' });
    const wrongKey = await send(`${t.url}/register-key`, { headers: { ...bearer(accessToken), ...mine.sign(body, t.clock.now()) }, body });
    expect(wrongKey.status).toBe(403);
    expect(wrongKey.headers['x-ccflux-error']).toBe('signature-invalid');
    // A header naming the victim's key with Mallory's signature.
    const forgedHeaders = mine.sign(body, t.clock.now());
    forgedHeaders['x-ccflux-signature'] = forgedHeaders['x-ccflux-signature']!.replace(/ \S+$/, ` ${victim.publicKey}`);
    const forged = await send(`${t.url}/register-key`, { headers: { ...bearer(accessToken), ...forgedHeaders }, body });
    expect(forged.headers['x-ccflux-error']).toBe('signature-invalid');
    // The victim's own proof, too old to replay.
    const stale = signedRegistration(victim, new Date(t.clock.ms - 10 * 60 * 1000));
    const late = await send(`${t.url}/register-key`, { headers: { ...bearer(accessToken), ...stale.headers }, body: stale.body });
    expect(late.headers['x-ccflux-error']).toBe('timestamp-stale');
    expect(await t.store.listKeys()).toEqual([]);
  });
});
