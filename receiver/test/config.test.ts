import { describe, expect, it } from 'vitest';
import { describeConfig, parseConfig, parseListenAddr } from '../src/config';

describe('parseConfig', () => {
  it('gives SPEC §3 defaults for an empty environment', () => {
    const result = parseConfig({});
    expect(result).toEqual({
      ok: true,
      config: {
        databasePath: 'ccflux.db',
        databaseUrl: undefined,
        databasePoolMax: 10,
        listenHost: '127.0.0.1',
        listenPort: 8080,
        accessTokenExpirySecs: 28800,
        refreshTokenRollingDays: 90,
        rateLimitPerMinute: 30,
        bodyLimitKb: 64,
        bodyLimitBytes: 65536,
        requireSignatures: false,
        requireKeyProof: false,
        adminToken: undefined,
        cookieSecure: false,
        pricesFile: undefined,
        seatPriceUsd: null,
        displayTimeZone: 'UTC',
        logLevel: 'info',
        metricsToken: undefined,
        metricsPerUser: false,
        alertWebhookUrl: undefined,
        publicUrl: undefined,
        maxConnections: 1024,
        maxConnectionsPerAddress: 64,
        trustProxy: [],
        unauthRateLimitPerMinute: 60,
        retentionDays: null,
      },
    });
  });

  it('reads the dashboard, log, metrics and alert settings, and refuses bad ones without echoing secrets', () => {
    const ok = parseConfig({
      PRICES_FILE: '/etc/ccflux/prices.json',
      SEAT_PRICE_USD: '30.50',
      DISPLAY_TIME_ZONE: 'Europe/Paris',
      LOG_LEVEL: 'WARN',
      METRICS_TOKEN: 'm'.repeat(32),
      METRICS_PER_USER: '1',
      ALERT_WEBHOOK_URL: 'https://hooks.example.org/services/T/B/secret',
    });
    expect(ok.ok && ok.config).toMatchObject({ pricesFile: '/etc/ccflux/prices.json', seatPriceUsd: 30.5, displayTimeZone: 'Europe/Paris', logLevel: 'warn', metricsPerUser: true });
    expect(ok.ok && describeConfig(ok.config).join('\n')).not.toMatch(/mmmm|secret/);
    const bad = parseConfig({ SEAT_PRICE_USD: 'lots', DISPLAY_TIME_ZONE: 'Mars/Base', LOG_LEVEL: 'loud', METRICS_TOKEN: 'short', ALERT_WEBHOOK_URL: 'http://hooks.example.org/x' });
    expect(bad.ok ? [] : bad.errors).toHaveLength(5);
    expect(bad.ok ? '' : bad.errors.join('\n')).not.toContain('short');
    expect(parseConfig({ ALERT_WEBHOOK_URL: 'http://127.0.0.1:9/hook' }).ok).toBe(true);
  });

  it('reads every variable', () => {
    const result = parseConfig({
      DATABASE_PATH: '/var/lib/ccflux/x.db',
      LISTEN_ADDR: '0.0.0.0:9000',
      ACCESS_TOKEN_EXPIRY_SECS: '3600',
      REFRESH_TOKEN_ROLLING_DAYS: '30',
      RATE_LIMIT_PER_MINUTE: '5',
      BODY_LIMIT_KB: '16',
      REQUIRE_SIGNATURES: 'true',
      ADMIN_TOKEN: 'a'.repeat(64),
      COOKIE_SECURE: '1',
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config).toMatchObject({
      databasePath: '/var/lib/ccflux/x.db',
      listenHost: '0.0.0.0',
      listenPort: 9000,
      accessTokenExpirySecs: 3600,
      refreshTokenRollingDays: 30,
      rateLimitPerMinute: 5,
      bodyLimitBytes: 16 * 1024,
      requireSignatures: true,
      adminToken: 'a'.repeat(64),
      cookieSecure: true,
    });
  });

  it.each([
    ['RATE_LIMIT_PER_MINUTE', 'abc'],
    ['RATE_LIMIT_PER_MINUTE', '0'],
    ['RATE_LIMIT_PER_MINUTE', '-1'],
    ['RATE_LIMIT_PER_MINUTE', '1.5'],
    ['ACCESS_TOKEN_EXPIRY_SECS', '8h'],
    ['REFRESH_TOKEN_ROLLING_DAYS', '99999'],
    ['BODY_LIMIT_KB', '0'],
    ['LISTEN_ADDR', 'localhost'],
    ['LISTEN_ADDR', '127.0.0.1:99999'],
    ['LISTEN_ADDR', '127.0.0.1:'],
    ['LISTEN_ADDR', '::1:8080'],
    ['LISTEN_ADDR', 'http://127.0.0.1:8080'],
    ['LISTEN_ADDR', '[zz::1]:8080'],
    ['REQUIRE_SIGNATURES', 'maybe'],
    ['COOKIE_SECURE', '2'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    const result = parseConfig({ [name]: value });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toContain(name);
  });

  it('reports every bad value at once', () => {
    const result = parseConfig({ RATE_LIMIT_PER_MINUTE: 'abc', LISTEN_ADDR: 'nope', BODY_LIMIT_KB: 'x' });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors).toHaveLength(3);
  });

  it('refuses a short ADMIN_TOKEN without echoing it', () => {
    const result = parseConfig({ ADMIN_TOKEN: 'hunter2' });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.errors[0]).toContain('ADMIN_TOKEN');
      expect(result.errors.join('\n')).not.toContain('hunter2');
    }
  });

  it('treats empty values as unset', () => {
    const result = parseConfig({ ADMIN_TOKEN: '', RATE_LIMIT_PER_MINUTE: '', REQUIRE_SIGNATURES: '' });
    expect(result.ok && result.config.adminToken === undefined && result.config.rateLimitPerMinute === 30).toBe(true);
  });
});

describe('parseListenAddr', () => {
  it.each([
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['0.0.0.0:8080', { host: '0.0.0.0', port: 8080 }],
    ['[::1]:8080', { host: '::1', port: 8080 }],
    ['localhost:8080', { host: 'localhost', port: 8080 }],
  ])('%s', (value, expected) => {
    expect(parseListenAddr(value)).toEqual(expected);
  });
});

describe('describeConfig', () => {
  it('masks the admin token', () => {
    const result = parseConfig({ ADMIN_TOKEN: 's3cr3t-s3cr3t-s3cr3t-s3cr3t' });
    if (!result.ok) throw new Error('config');
    const text = describeConfig(result.config).join('\n');
    expect(text).not.toContain('s3cr3t');
    expect(text).toContain('ADMIN_TOKEN=********');
    expect(text).toContain('LISTEN_ADDR=127.0.0.1:8080');
  });

  it('shows DATABASE_URL without its password, and refuses a URL that is not postgres://', () => {
    const result = parseConfig({ DATABASE_URL: 'postgres://ccflux:hunter2-secret@db.internal:5432/ccflux?sslmode=verify-full' });
    if (!result.ok) throw new Error('config');
    expect(result.config).toMatchObject({ databaseUrl: expect.stringContaining('hunter2-secret') });
    const text = describeConfig(result.config).join('\n');
    expect(text).not.toContain('hunter2');
    expect(text).toContain('DATABASE_URL=postgres://ccflux:***@db.internal:5432/ccflux?sslmode=verify-full');
    const bad = parseConfig({ DATABASE_URL: 'mysql://u:hunter2@x/db' });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors.join(' ')).not.toContain('hunter2');
  });
});
