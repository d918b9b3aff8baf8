/** `POST /register-key`: binds a device's Ed25519 public key to the access token's user. */
import { HEADERS, validateRegisterKey } from '../../../src/protocol/wire';
import { parseJson, sendError, sendJson } from '../http';
import { MAX_ACTIVE_KEYS_PER_USER } from '../store';
import { isWellFormedText } from '../text';
import { authenticate, boundedBody, type Route, rateLimit, requireJsonBody } from './context';

export const handleRegisterKey: Route = async (req, res, deps) => {
  const auth = await authenticate(req, res, deps, 'access');
  if (auth === null) return;
  if (!(await rateLimit(req, res, deps, auth))) return;
  if (!requireJsonBody(req, res)) return;
  const body = await boundedBody(req, res, deps);
  if (body === null) return;

  const parsed = parseJson(body);
  if (!parsed.ok) return sendError(res, 400, 'body is not JSON');
  const valid = validateRegisterKey(parsed.value);
  if (!valid.ok) return sendError(res, 400, valid.error);
  if (!isWellFormedText(valid.value.device_id)) return sendError(res, 400, 'device_id must be valid Unicode');

  const outcome = await deps.store.registerKey(auth, valid.value.public_key, valid.value.device_id);
  switch (outcome) {
    case 'registered':
      deps.metrics.inc('ccflux_key_registrations_total');
      return sendJson(res, 200, { status: 'registered' });
    case 'exists':
      // 200 like the Rust receiver: registering again is idempotent (devices accept 200 and 409).
      return sendJson(res, 200, { status: 'already registered' });
    case 'revoked':
      return sendError(res, 403, 'key-revoked', { [HEADERS.error]: 'key-revoked' });
    case 'limit':
      return sendError(res, 400, `at most ${MAX_ACTIVE_KEYS_PER_USER} active device keys per user`);
  }
};
