/**
 * `POST /register-key`: binds a device's Ed25519 public key to the access token's user.
 *
 * Proof of possession (optional unless `REQUIRE_KEY_PROOF=1`): the request signed exactly as a
 * report is — `X-CCFLUX-Timestamp` and `X-CCFLUX-Signature: ed25519 <sig> <public key>` over
 * `<body bytes>\n<timestamp>` — by the key being registered (the header's key must equal the body's
 * `public_key`). Without it anyone holding an access token could register another user's public key.
 * A failed proof is 403 with `X-CCFLUX-Error` (`signature-required`, `timestamp-missing`,
 * `timestamp-stale`, `signature-invalid`), as on `/report`.
 */
import type { IncomingMessage } from 'node:http';
import {
  HEADERS,
  parseSignatureHeader,
  parseTimestamp,
  signingMessage,
  timestampFresh,
  validateRegisterKey,
  type WireErrorCode,
} from '../../../src/protocol/wire';
import { verifyEd25519, weakPublicKeyReason } from '../ed25519';
import { parseJson, sendError, sendJson } from '../http';
import { MAX_ACTIVE_KEYS_PER_USER } from '../store';
import { isWellFormedText } from '../text';
import { authenticate, boundedBody, type Route, type RouteDeps, rateLimit, requireJsonBody } from './context';

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Null when the proof holds (or is absent and not required); the 403 error code otherwise. */
export function keyProofProblem(req: IncomingMessage, body: Buffer, publicKey: string, deps: RouteDeps): WireErrorCode | null {
  const signatureHeader = headerValue(req.headers[HEADERS.signature]);
  if (signatureHeader === undefined) return deps.config.requireKeyProof ? 'signature-required' : null;
  const timestampHeader = headerValue(req.headers[HEADERS.timestamp]);
  const timestamp = timestampHeader === undefined ? null : parseTimestamp(timestampHeader);
  if (timestampHeader === undefined || timestamp === null) return 'timestamp-missing';
  if (!timestampFresh(timestamp, deps.now())) return 'timestamp-stale';
  const signature = parseSignatureHeader(signatureHeader);
  if (signature === null || signature.publicKey !== publicKey) return 'signature-invalid';
  return verifyEd25519(publicKey, signingMessage(body, timestampHeader), signature.signature) ? null : 'signature-invalid';
}

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
  const weak = weakPublicKeyReason(Buffer.from(valid.value.public_key, 'base64'));
  if (weak !== null) return sendError(res, 400, weak);
  const proof = keyProofProblem(req, body, valid.value.public_key, deps);
  if (proof !== null) return sendError(res, 403, proof, { [HEADERS.error]: proof });

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
