import { endpointUrls, parseTimestamp } from '../../../../protocol/wire';
import { type ExchangeResult, exchangeToken, saveTokenCache } from '../../../deliver/auth';
import type { TransportResult } from '../../../deliver/transport';
import { type CredentialSource, reconfigureHint } from '../../../local/credentials';
import { formatDuration } from '../../status';
import { type Check, type CheckResult, type DoctorContext, resultOf, skippedOf } from '../check';

const reachableId = { id: 'receiver-reachable', title: 'receiver reachable' } as const;
const exchangeId = { id: 'token-exchange', title: 'token exchange works' } as const;

export function judgeHealth(answer: TransportResult, healthUrl: string): CheckResult {
  if (answer.kind === 'network-error') {
    return resultOf(
      reachableId,
      'fail',
      `${healthUrl}: ${answer.code} (${answer.message})`,
      'check the endpoint, your network or VPN, HTTPS_PROXY, and CCFLUX_CA_CERT for an internal CA',
    );
  }
  if (answer.status === 200) {
    let healthy = false;
    try {
      healthy = (JSON.parse(answer.body) as { status?: unknown }).status === 'ok';
    } catch {
      healthy = false;
    }
    if (healthy) return resultOf(reachableId, 'pass', `${healthUrl} answered ok`);
    return resultOf(reachableId, 'fail', `${healthUrl} answered 200 but not as a ccflux receiver`, 'check the endpoint URL with IT');
  }
  if (answer.status === 503) {
    return resultOf(reachableId, 'fail', `${healthUrl}: the receiver is up but its database is failing (503)`, 'tell IT: the receiver’s database is down');
  }
  return resultOf(
    reachableId,
    'fail',
    `${healthUrl} answered HTTP ${answer.status}`,
    answer.status === 404 ? 'the endpoint does not point at a ccflux receiver: use its base URL or its /report URL' : 'check the endpoint URL with IT',
  );
}

export function judgeExchange(outcome: ExchangeResult, now: Date, source: CredentialSource = 'config-file'): CheckResult {
  if (outcome.kind === 'ok') {
    const expires = parseTimestamp(outcome.cache.expires_at);
    const left = expires ? ` (access token valid for ${formatDuration(expires.getTime() - now.getTime())})` : '';
    return resultOf(exchangeId, 'pass', `the receiver accepted the refresh token${left}`);
  }
  if (outcome.kind === 'revoked') {
    return resultOf(
      exchangeId,
      'fail',
      'the receiver refused the refresh token (401): expired or revoked',
      `ask your IT admin for a new token, then ${reconfigureHint(source, 'new token').replace(' IT gave you', '')}`,
    );
  }
  return resultOf(
    exchangeId,
    'fail',
    outcome.detail,
    outcome.reason === 'server-busy' ? 'the receiver is busy or rate limiting: try again in a minute' : 'check the endpoint URL with IT',
  );
}

function notUsable(ctx: DoctorContext): string | null {
  if (ctx.endpoint && ctx.credentials) return null;
  return ctx.credentials ? 'the endpoint is not usable' : 'no credentials';
}

/** One GET /health; its Date header feeds the clock check. */
export const receiverCheck: Check = {
  ...reachableId,
  async run(ctx) {
    const because = notUsable(ctx);
    if (because || !ctx.endpoint) return skippedOf(reachableId, because ?? 'no endpoint');
    const healthUrl = `${endpointUrls(ctx.endpoint).base}/health`;
    const health = await ctx.deps.transport.get(healthUrl);
    if (health.kind === 'response') ctx.dateHeader = health.headers.date;
    ctx.unreachable = health.kind === 'network-error';
    return judgeHealth(health, healthUrl);
  },
};

/** One real exchange; its access token is cached for the next hook. */
export const exchangeCheck: Check = {
  ...exchangeId,
  async run(ctx) {
    const because = notUsable(ctx);
    if (because || !ctx.endpoint || !ctx.credentials) return skippedOf(exchangeId, because ?? 'no endpoint');
    if (ctx.unreachable) return skippedOf(exchangeId, 'the receiver is unreachable');
    const { transport, now, paths } = ctx.deps;
    const endpoint = ctx.endpoint;
    const token = ctx.credentials.token;
    ctx.exchange = await exchangeToken({ transport, now }, { endpoint, refreshToken: token });
    if (ctx.exchange.kind === 'ok') {
      // A real exchange happened: let the next hook reuse its access token.
      await saveTokenCache(paths, ctx.exchange.cache, { endpoint, token }).catch(() => {});
    }
    return judgeExchange(ctx.exchange, now(), ctx.credentials.source);
  },
};
