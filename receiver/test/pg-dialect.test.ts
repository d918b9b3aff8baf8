import { describe, expect, it } from 'vitest';
import { translate } from '../src/store/pg-dialect';

describe('the dashboard SQL on PostgreSQL (pg-dialect translate)', () => {
  it('quotes a mixed-case alias wherever it is named, not only where it is declared', () => {
    // The user page's sessions query: ORDER BY lastAt failed on PostgreSQL ("column lastat does not exist").
    const { text } = translate('SELECT e.session_id AS sessionId, MAX(e.timestamp_utc) AS lastAt FROM usage_events e GROUP BY e.session_id ORDER BY lastAt DESC, sessionId');
    expect(text).toBe('SELECT e.session_id AS "sessionId", MAX(e.timestamp_utc) AS "lastAt" FROM usage_events e GROUP BY e.session_id ORDER BY "lastAt" DESC, "sessionId"');
  });

  it('leaves qualified columns and longer names that start with an alias alone', () => {
    const { text, names } = translate('SELECT t.lastAt, x AS lastAt, lastAtDay FROM t WHERE @from IS NULL OR d >= @from');
    expect(text).toBe('SELECT t.lastAt, x AS "lastAt", lastAtDay FROM t WHERE $1::text IS NULL OR d >= $1');
    expect(names).toEqual(['from']);
  });
});
