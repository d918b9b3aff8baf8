import Database from 'better-sqlite3';
const db = new Database('/tmp/ccflux-r1/org.db');
const P = { dayFrom: '2026-02-11', dayTo: '2026-05-12' };
const S = `TOTAL(r.input) AS input, TOTAL(r.output) AS output, TOTAL(r.cache_read) AS cacheRead, TOTAL(r.cache_write) AS cacheWrite,
  TOTAL(r.cw5m) AS cw5m, TOTAL(r.cw1h) AS cw1h, TOTAL(r.unsplit) AS unsplit, TOTAL(r.web_search) AS webSearch, TOTAL(r.model_turns) a, TOTAL(r.turns) b, TOTAL(r.sessions) c, TOTAL(r.model_sessions) d, MAX(r.last_at) e`;
const tests = {
  count: `SELECT count(*) FROM usage_daily r WHERE r.day >= @dayFrom AND r.day < @dayTo`,
  plain: `SELECT r.user_id, r.model, ${S} FROM usage_daily r WHERE r.day >= @dayFrom AND r.day < @dayTo GROUP BY r.user_id, r.model`,
  plainSum: `SELECT r.user_id, r.model, ${S.replaceAll('TOTAL(', 'SUM(')} FROM usage_daily r WHERE r.day >= @dayFrom AND r.day < @dayTo GROUP BY r.user_id, r.model`,
  byUserIdx: `SELECT r.user_id, r.model, ${S} FROM usage_daily r INDEXED BY usage_daily_user WHERE r.day >= @dayFrom AND r.day < @dayTo GROUP BY r.user_id, r.model`,
  joinAfter: `SELECT u.email, u.division, g.* FROM (SELECT r.user_id, r.model, ${S} FROM usage_daily r WHERE r.day >= @dayFrom AND r.day < @dayTo GROUP BY r.user_id, r.model) g JOIN users u ON u.id = g.user_id`,
};
for (let i = 0; i < 2; i++) for (const [k, sql] of Object.entries(tests)) {
  const st = db.prepare(sql);
  const a = performance.now();
  const rows = st.all(P);
  console.log(k, (performance.now() - a).toFixed(1), 'ms', rows.length);
}
