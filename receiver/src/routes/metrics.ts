/**
 * `GET /metrics`: Prometheus text exposition. Operational counters (in memory) and usage counters
 * from the database: tokens and list-price cost per model × division, and per user × model when
 * METRICS_PER_USER is on. Cardinality: models × divisions × 4 token series (+ models × divisions
 * cost series); per user: users × models × 4. Usage totals are cached for USAGE_CACHE_MILLIS, so
 * a scrape every 15 s costs one aggregate query a minute. `METRICS_TOKEN` protects the endpoint.
 */
import type { IncomingMessage } from 'node:http';
import type { MetricTotals } from '../admin/queries';
import { sendText } from '../http';
import { secretsEqual } from '../tokens';
import type { Route } from './context';

const USAGE_CACHE_MILLIS = 60_000;
const TOKEN_TYPES = [
  ['input', 'input'],
  ['output', 'output'],
  ['cache_read', 'cacheRead'],
  ['cache_write', 'cacheWrite'],
] as const;

const cache = new WeakMap<object, { atMillis: number; totals: MetricTotals }>();

/** Prometheus label value: backslash, double quote and line feed escaped. */
export function labelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function renderUsage(t: MetricTotals): string {
  const lines: string[] = [
    '# HELP ccflux_usage_tokens_total Tokens stored, by model, division and token type (all time).',
    '# TYPE ccflux_usage_tokens_total counter',
  ];
  for (const s of t.byModelDivision) {
    for (const [type, key] of TOKEN_TYPES) {
      lines.push(`ccflux_usage_tokens_total{model="${labelValue(s.model)}",division="${labelValue(s.division)}",type="${type}"} ${s[key]}`);
    }
  }
  lines.push('# HELP ccflux_usage_cost_usd_total API-equivalent cost at list prices, by model and division (unpriced models omitted).', '# TYPE ccflux_usage_cost_usd_total counter');
  for (const s of t.byModelDivision) {
    if (s.costUsd !== null) lines.push(`ccflux_usage_cost_usd_total{model="${labelValue(s.model)}",division="${labelValue(s.division)}"} ${Math.round(s.costUsd * 1e6) / 1e6}`);
  }
  if (t.byUserModel.length > 0) {
    lines.push('# HELP ccflux_user_usage_tokens_total Tokens stored, by user, model and token type (METRICS_PER_USER).', '# TYPE ccflux_user_usage_tokens_total counter');
    for (const s of t.byUserModel) {
      for (const [type, key] of TOKEN_TYPES) {
        lines.push(`ccflux_user_usage_tokens_total{user="${labelValue(s.user)}",model="${labelValue(s.model)}",type="${type}"} ${s[key]}`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const m = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
  return m !== null && secretsEqual(m[1]!, token);
}

export const handleMetrics: Route = async (req, res, deps) => {
  if (!authorized(req, deps.config.metricsToken)) {
    return sendText(res, 401, 'metrics need Authorization: Bearer <METRICS_TOKEN>', { 'www-authenticate': 'Bearer realm="ccflux-metrics"' });
  }
  let active = Number.NaN;
  let usage = '';
  try {
    active = await deps.store.countActiveAccessTokens();
    const nowMillis = deps.now().getTime();
    const hit = cache.get(deps.store);
    let totals = hit !== undefined && nowMillis - hit.atMillis < USAGE_CACHE_MILLIS ? hit.totals : undefined;
    if (totals === undefined) {
      totals = await deps.store.usageMetrics(deps.prices, deps.config.metricsPerUser === true);
      cache.set(deps.store, { atMillis: nowMillis, totals });
    }
    usage = renderUsage(totals);
  } catch {
    // Database down: the counters are still worth scraping; the gauge reads NaN.
  }
  sendText(res, 200, `${deps.metrics.render({ ccflux_active_access_tokens: active })}${usage}`.replace(/\n$/, ''), {
    'content-type': 'text/plain; version=0.0.4; charset=utf-8',
  });
};
