/**
 * Issue 16 rows 2 and 9 on the device: model names and user_email are cut by code point and made
 * well-formed, model names restricted to a model-like character set, counters capped, so one odd
 * transcript value never gets the whole turn refused by the receiver.
 */
import { describe, expect, it } from 'vitest';
import { buildReport, type ReportInput } from '../../../src/client/count/report';
import { isWellFormedText, reportTextWellFormed } from '../../../receiver/src/text';
import {
  cleanModelName,
  LIMITS,
  MAX_TOKEN_COUNT,
  type ModelUsage,
  truncateCodePoints,
  validateReport,
  wellFormedText,
} from '../../../src/protocol/wire';

const u = (i: number): ModelUsage => ({ input_tokens: i, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0 });
const base = (models: ReportInput['models'], userEmail = 'alice@example.org'): ReportInput => ({
  sessionId: 'cd613e30-d8f1-6adf-91b7-584a2265b1f5',
  turnIndex: 0,
  userEmail,
  timestampUtc: '2026-11-20T01:10:32Z',
  sessionStartUtc: '2026-11-20T01:09:04Z',
  models,
  pluginVersion: '0.1.0',
});

/** What the receiver checks: the wire shape and well-formed text. */
function receiverAccepts(report: unknown): boolean {
  const valid = validateReport(JSON.parse(JSON.stringify(report)));
  return valid.ok && reportTextWellFormed(valid.value);
}

describe('model names', () => {
  it('a surrogate pair across the 128-unit limit no longer makes the receiver refuse the turn', () => {
    const name = `${'m'.repeat(127)}😀tail`;
    const r = buildReport(base({ [name]: u(5) }));
    const [sent] = Object.keys(r.models);
    expect(sent!.length).toBeLessThanOrEqual(LIMITS.modelNameChars);
    expect(isWellFormedText(sent!)).toBe(true);
    expect(receiverAccepts(r)).toBe(true);
  });

  it('keeps real model ids as they are', () => {
    for (const id of ['claude-sonnet-4-6', 'us.anthropic.claude-3-5-sonnet-20241022-v2:0', 'claude-3-5-sonnet-v2@20241022', 'claude-opus-4-7[1m]', 'arn:aws:bedrock:us-east-1:1:inference-profile/x']) {
      expect(cleanModelName(id)).toBe(id);
    }
  });

  it('replaces everything outside the model-name set, one `_` per code point', () => {
    expect(cleanModelName('free text <script>é😀\ud800\n')).toBe('free_text__script_____');
    const r = buildReport(base({ 'a\u0000b': u(1), 'a b': u(2) }));
    expect(r.models).toEqual({ a_b: { ...u(3), output_tokens: 2 } });
    expect(receiverAccepts(r)).toBe(true);
  });
});

describe('user_email', () => {
  it('is cut between code points and made well-formed', () => {
    const email = `${'a'.repeat(254)}😀@example.org`;
    const r = buildReport(base({ m: u(1) }, email));
    expect(r.user_email).toBe('a'.repeat(254));
    expect(receiverAccepts(r)).toBe(true);
    const lone = buildReport(base({ m: u(1) }, 'al\udc00ice@example.org'));
    expect(lone.user_email).toBe('al\ufffdice@example.org');
    expect(receiverAccepts(lone)).toBe(true);
  });

  it('helpers', () => {
    expect(truncateCodePoints('ab😀', 3)).toBe('ab');
    expect(truncateCodePoints('ab😀', 4)).toBe('ab😀');
    expect(wellFormedText('x\ud800y\u001b')).toBe('x\ufffdy\ufffd');
    expect(wellFormedText('😀é')).toBe('😀é');
  });
});

describe('counters', () => {
  it('a hostile transcript value is capped at MAX_TOKEN_COUNT so the receiver still accepts the turn', () => {
    const r = buildReport(base({ m: u(Number.MAX_SAFE_INTEGER) }));
    expect(r.models.m!.input_tokens).toBe(MAX_TOKEN_COUNT);
    expect(receiverAccepts(r)).toBe(true);
  });
});
