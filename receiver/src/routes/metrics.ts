/** `GET /metrics`: Prometheus text exposition. */
import { sendText } from '../http';
import type { Route } from './context';

export const handleMetrics: Route = async (_req, res, deps) => {
  let active = Number.NaN;
  try {
    active = await deps.store.countActiveAccessTokens();
  } catch {
    // Database down: the counters are still worth scraping; the gauge reads NaN.
  }
  sendText(res, 200, deps.metrics.render({ ccflux_active_access_tokens: active }), {
    'content-type': 'text/plain; version=0.0.4; charset=utf-8',
  });
};
