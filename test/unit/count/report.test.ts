import { describe, expect, it } from 'vitest';
import { buildReport, buildReports, normalizeModels, type ReportInput } from '../../../src/client/count/report';
import { LIMITS, type ModelUsage, validateReport } from '../../../src/protocol/wire';

const u = (i: number, o: number, cr = 0, cw = 0): ModelUsage => ({ input_tokens: i, output_tokens: o, cache_read_tokens: cr, cache_write_tokens: cw });

const base = (models: ReportInput['models']): ReportInput => ({
  sessionId: 'cd613e30-d8f1-6adf-91b7-584a2265b1f5',
  turnIndex: 4,
  userEmail: 'alice@example.org',
  timestampUtc: '2026-11-20T01:10:32Z',
  sessionStartUtc: '2026-11-20T01:09:04Z',
  models,
  pluginVersion: '0.1.0',
});

describe('buildReport', () => {
  it('builds exactly the wire fields, valid for the receiver', () => {
    const r = buildReport(base({ 'claude-sonnet-4-6': u(14200, 1800, 9400, 0) }));
    expect(r).toEqual({
      schema_version: 2,
      session_id: 'cd613e30-d8f1-6adf-91b7-584a2265b1f5',
      user_email: 'alice@example.org',
      turn_index: 4,
      timestamp_utc: '2026-11-20T01:10:32Z',
      session_start_utc: '2026-11-20T01:09:04Z',
      models: { 'claude-sonnet-4-6': u(14200, 1800, 9400, 0) },
      plugin_version: '0.1.0',
    });
    expect(validateReport(JSON.parse(JSON.stringify(r))).ok).toBe(true);
  });

  it('passes nothing else through: extra keys on the inputs are not copied', () => {
    const sneaky = { ...u(1, 1), prompt: 'secret' } as unknown as ModelUsage;
    const input = { ...base({ m: sneaky }), cwd: '/home/alice/private' } as ReportInput;
    const r = buildReport(input);
    expect(Object.keys(r.models.m ?? {})).toEqual(['input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens']);
    expect(JSON.stringify(r)).not.toContain('private');
    expect(JSON.stringify(r)).not.toContain('secret');
  });

  it('schema_version 2: the cache-write split and web searches are carried per model, a model with only web searches counts', () => {
    const detail = { ...u(5, 7, 0, 900), cache_write_5m_tokens: 100, cache_write_1h_tokens: 800, web_search_requests: 3 };
    const r = buildReport(base({ a: detail, b: { ...u(0, 0), web_search_requests: 2 } }));
    expect(r.models.a).toEqual(detail);
    expect(r.models.b).toMatchObject({ input_tokens: 0, web_search_requests: 2 });
    const checked = validateReport(JSON.parse(JSON.stringify(r)));
    expect(checked.ok && checked.value.models.a).toEqual(detail);
  });

  it('drops all-zero models, accepts a Map, sorts names', () => {
    const r = buildReport(base(new Map([['z', u(0, 1)], ['a', u(0, 0)], ['b', u(2, 0)]])));
    expect(Object.keys(r.models)).toEqual(['b', 'z']);
  });

  it('bounds model names: empty → unknown, over 128 truncated (colliding names summed), logged', () => {
    const long = 'm'.repeat(200);
    const logged: string[] = [];
    const models = normalizeModels({ [long]: u(1, 1), [`${long}x`]: u(2, 2), '': u(5, 0) }, { activity: () => {}, error: (m) => logged.push(m) });
    expect(models).toEqual([
      ['m'.repeat(LIMITS.modelNameChars), u(3, 3)],
      ['unknown', u(5, 0)],
    ]);
    expect(logged.length).toBe(2);
  });

  it('a model named __proto__ stays a plain key', () => {
    const r = buildReport(base(new Map([['__proto__', u(1, 1)]])));
    expect(Object.keys(r.models)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(JSON.parse(JSON.stringify(r)).models, '__proto__')?.value).toEqual(u(1, 1));
  });

  it('caps email and plugin version to the wire limits; negative or fractional counts become 0', () => {
    const r = buildReport({ ...base({ m: { input_tokens: -3, output_tokens: 1.5, cache_read_tokens: 2, cache_write_tokens: 0 } }), userEmail: `${'a'.repeat(300)}@x`, pluginVersion: 'v'.repeat(100) });
    expect(r.user_email.length).toBe(LIMITS.userEmailChars);
    expect(r.plugin_version?.length).toBe(LIMITS.pluginVersionChars);
    expect(r.models.m).toEqual(u(0, 0, 2, 0));
    expect(validateReport(r).ok).toBe(true);
  });

  it('throws when the models do not fit one report', () => {
    const many = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`model-${i}`, u(1, 1)]));
    expect(() => buildReport(base(many))).toThrow(RangeError);
  });
});

describe('buildReports', () => {
  it('nothing to report: no report', () => {
    expect(buildReports(base({ a: u(0, 0) }))).toEqual([]);
  });

  it('more than 20 models are split across consecutive turn indexes, nothing lost or merged', () => {
    const many = Object.fromEntries(Array.from({ length: 45 }, (_, i) => [`model-${String(i).padStart(2, '0')}`, u(i + 1, 1)]));
    const reports = buildReports(base(many));
    expect(reports.map((r) => [r.turn_index, Object.keys(r.models).length])).toEqual([
      [4, 20],
      [5, 20],
      [6, 5],
    ]);
    const names = reports.flatMap((r) => Object.keys(r.models));
    expect(new Set(names).size).toBe(45);
    expect(reports.reduce((n, r) => n + Object.values(r.models).reduce((m, x) => m + x.input_tokens, 0), 0)).toBe((45 * 46) / 2);
    for (const r of reports) expect(validateReport(r).ok).toBe(true);
  });
});
