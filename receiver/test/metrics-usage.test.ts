import { afterEach, describe, expect, it } from 'vitest';
import { labelValue } from '../src/routes/metrics';
import { bearer, makeReport, postReport, provision, send, startInProcess, type TestReceiver } from './support';

let t: TestReceiver | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe('/metrics usage counters', () => {
  it('exports tokens and list-price cost by model and division; per user only when asked', async () => {
    t = await startInProcess();
    await t.store.createUser('ann@example.org', { division: 'Research' });
    const ann = await provision(t, 'ann2@example.org');
    await t.store.setDivision('ann2@example.org', 'Research');
    // claude-opus-5-5: 1M input ($4) + 100k output ($2) = $6.00
    const report = makeReport({ models: { 'claude-opus-5-5': { input_tokens: 1_000_000, output_tokens: 100_000, cache_read_tokens: 0, cache_write_tokens: 0 }, 'mystery-model': { input_tokens: 3, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 } } });
    expect((await postReport(t, ann.accessToken, report)).status).toBe(200);
    const text = (await send(`${t.url}/metrics`, { method: 'GET' })).text;
    expect(text).toContain('ccflux_usage_tokens_total{model="claude-opus-5-5",division="Research",type="input"} 1000000');
    expect(text).toContain('ccflux_usage_tokens_total{model="claude-opus-5-5",division="Research",type="output"} 100000');
    expect(text).toContain('ccflux_usage_cost_usd_total{model="claude-opus-5-5",division="Research"} 6');
    expect(text).toContain('ccflux_usage_tokens_total{model="mystery-model",division="Research",type="input"} 3');
    expect(text).not.toContain('cost_usd_total{model="mystery-model"');
    expect(text).not.toContain('ann2@example.org');
    expect(text).toContain('# TYPE ccflux_reports_accepted_total counter');
  });

  it('per-user series behind METRICS_PER_USER, and METRICS_TOKEN guards the endpoint', async () => {
    const token = 'm'.repeat(40);
    t = await startInProcess({ env: { METRICS_PER_USER: '1', METRICS_TOKEN: token } });
    const u = await provision(t, 'bo@example.org');
    await postReport(t, u.accessToken, makeReport());
    const refused = await send(`${t.url}/metrics`, { method: 'GET' });
    expect(refused.status).toBe(401);
    expect(refused.text).not.toContain('ccflux_');
    expect((await send(`${t.url}/metrics`, { method: 'GET', headers: bearer('wrong') })).status).toBe(401);
    const ok = await send(`${t.url}/metrics`, { method: 'GET', headers: bearer(token) });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('ccflux_user_usage_tokens_total{user="bo@example.org",model="claude-sonnet-4-6",type="input"} 14200');
  });

  it('escapes label values', () => {
    expect(labelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
  });
});
