/**
 * Prometheus counters (in memory, reset at restart, as Prometheus expects of counters) and the
 * text exposition format for `GET /metrics`.
 */
export const COUNTERS = {
  ccflux_reports_accepted_total: 'Reports answered 200 (including idempotent retries).',
  ccflux_reports_duplicate_total: 'Accepted reports whose rows were all stored already (retries, replays).',
  ccflux_reports_expired_total: 'Reports acknowledged without being counted: their turn is older than RETENTION_DAYS.',
  ccflux_reports_rejected_total: 'Reports answered 400 or 413.',
  ccflux_reports_auth_rejected_total: 'Reports answered 401 (missing, unknown, expired or revoked access token).',
  ccflux_reports_sig_rejected_total: 'Reports answered 403 (signature, timestamp or device key checks).',
  ccflux_reports_rate_limited_total: 'Requests answered 429 by the per-token limit (/report, /token, /register-key).',
  ccflux_unauthenticated_limited_total: 'Requests answered 429 instead of 401: too many bad or missing tokens from one client address.',
  ccflux_token_exchanges_total: 'Refresh tokens exchanged for an access token.',
  ccflux_token_exchanges_rejected_total: 'Token exchanges answered 401.',
  ccflux_key_registrations_total: 'Device keys registered.',
} as const;
export type CounterName = keyof typeof COUNTERS;

export const GAUGES = {
  ccflux_active_access_tokens: 'Access tokens issued and not yet expired.',
} as const;
export type GaugeName = keyof typeof GAUGES;

export class Metrics {
  private readonly counts = new Map<CounterName, number>();

  inc(name: CounterName, by = 1): void {
    this.counts.set(name, (this.counts.get(name) ?? 0) + by);
  }

  get(name: CounterName): number {
    return this.counts.get(name) ?? 0;
  }

  /** Every counter, including the ones still at zero. */
  snapshot(): Record<CounterName, number> {
    const out = {} as Record<CounterName, number>;
    for (const name of Object.keys(COUNTERS) as CounterName[]) out[name] = this.get(name);
    return out;
  }

  render(gauges: Record<GaugeName, number>): string {
    const lines: string[] = [];
    for (const [name, help] of Object.entries(COUNTERS) as [CounterName, string][]) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${this.get(name)}`);
    }
    for (const [name, help] of Object.entries(GAUGES) as [GaugeName, string][]) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${gauges[name]}`);
    }
    return `${lines.join('\n')}\n`;
  }
}
