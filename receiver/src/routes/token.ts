/** `POST /token`: a refresh token (bearer) for a fresh access token. */
import { formatTimestamp, type TokenResponse } from '../../../src/protocol/wire';
import { sendJson } from '../http';
import { authenticate, boundedBody, type Route, rateLimit } from './context';

export const handleToken: Route = async (req, res, deps) => {
  const auth = await authenticate(req, res, deps, 'refresh');
  if (auth === null) {
    deps.metrics.inc('ccflux_token_exchanges_rejected_total');
    return;
  }
  if (!(await rateLimit(req, res, deps, auth))) return;
  // The body is meant to be empty; anything within the limit is read and ignored.
  if ((await boundedBody(req, res, deps)) === null) return;

  const { accessToken, expiresAt } = await deps.store.issueAccessToken(auth);
  deps.metrics.inc('ccflux_token_exchanges_total');
  const body: TokenResponse = { access_token: accessToken, expires_at: formatTimestamp(expiresAt), token_type: 'Bearer' };
  sendJson(res, 200, body);
};
