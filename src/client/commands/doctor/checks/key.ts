import { type RegisterResult, registerDeviceKey } from '../../../deliver/register';
import { ensureSigningKey, fingerprint, isRegistered, isRevoked, keyFromSeed, markRegistered, SEED_BYTES } from '../../../deliver/keys';
import { ensurePrivateDir, readBytesIfExists } from '../../../local/fsx';
import type { StatePaths } from '../../../local/paths';
import { type Check, type CheckResult, type DoctorContext, resultOf } from '../check';

const id = { id: 'key-registered', title: 'device key registered' } as const;

export interface KeyFacts {
  present: boolean;
  corrupt: boolean;
  publicKeyB64: string | null;
  registered: boolean;
  revoked: boolean;
}

export function judgeKey(facts: KeyFacts, registration: RegisterResult | null): CheckResult {
  if (facts.revoked) {
    return resultOf(
      id,
      'fail',
      'the receiver revoked this device key; hooks stay silent on this device',
      'ask IT why; to start over with a new key: `ccflux logout --forget-key`, then `ccflux login`',
    );
  }
  if (facts.corrupt) return resultOf(id, 'fail', `signing_key is not ${SEED_BYTES} bytes`, 'it is replaced and registered on the next turn, or now with `ccflux login`');
  if (!facts.present || !facts.publicKeyB64) {
    return resultOf(id, 'fail', 'no signing key yet', 'run `ccflux doctor --fix` (or `ccflux login`) to create and register it');
  }
  const fp = fingerprint(facts.publicKeyB64);
  if (facts.registered) return resultOf(id, 'pass', `key ${fp} is registered`);
  if (registration?.kind === 'registered') return resultOf(id, 'pass', `key ${fp} registered now`, null, true);
  const why =
    registration === null
      ? ''
      : registration.kind === 'failed' || registration.kind === 'clock-skew'
        ? `; registering now failed: ${registration.detail}`
        : registration.kind === 'revoked'
          ? '; the receiver says this key is revoked'
          : '; the receiver refused the fresh access token (401)';
  return resultOf(
    id,
    'fail',
    `key ${fp} is not registered with the receiver${why}`,
    registration === null ? 'run `ccflux doctor --fix` to register it now (hooks also retry on every turn)' : 'run `ccflux flush` later; if it persists, send IT the output of `ccflux status`',
  );
}

async function readKeyFacts(paths: StatePaths): Promise<KeyFacts> {
  const facts: KeyFacts = { present: false, corrupt: false, publicKeyB64: null, registered: false, revoked: false };
  const seed = await readBytesIfExists(paths.signingKey).catch(() => null);
  if (seed !== null) {
    facts.present = true;
    if (seed.length === SEED_BYTES) {
      facts.publicKeyB64 = keyFromSeed(seed).publicKeyB64;
      facts.registered = await isRegistered(paths, facts.publicKeyB64).catch(() => false);
    } else {
      facts.corrupt = true;
    }
  }
  facts.revoked = await isRevoked(paths).catch(() => false);
  return facts;
}

/** With `--fix`, after a good exchange: create the key if needed and register it. */
async function registerNow(ctx: DoctorContext, facts: KeyFacts): Promise<RegisterResult | null> {
  const { paths, now, transport, hostname } = ctx.deps;
  if (!ctx.fix || facts.revoked || facts.registered || !ctx.endpoint || ctx.exchange?.kind !== 'ok') return null;
  await ensurePrivateDir(paths.dir);
  const key = await ensureSigningKey(paths, { now });
  facts.present = true;
  facts.corrupt = false;
  facts.publicKeyB64 = key.publicKeyB64;
  const registration = await registerDeviceKey(
    { transport, now },
    { endpoint: ctx.endpoint, accessToken: ctx.exchange.cache.access_token, key, deviceId: hostname },
  );
  if (registration.kind === 'registered') await markRegistered(paths, key.publicKeyB64);
  return registration;
}

export const keyCheck: Check = {
  ...id,
  async run(ctx) {
    const facts = await readKeyFacts(ctx.deps.paths);
    return judgeKey(facts, await registerNow(ctx, facts));
  },
};
