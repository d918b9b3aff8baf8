import Database from 'better-sqlite3';
const db = new Database('/tmp/ccflux-r1/org.db');
const sql = process.argv[2];
for (const r of db.prepare('EXPLAIN QUERY PLAN ' + sql).all({ user: null, model: null, division: null, dayFrom: '2026-02-11', dayTo: '2026-05-12', headFrom: '2026-02-10T12', headTo: '2026-02-11T00', tailFrom: '2026-05-11T00', tailTo: '2026-05-11T13', from: '2026-02-10T12:00:00Z', to: '2026-05-11T12:15:00Z', limit: 50, offset: 0 })) console.log(r.id, r.parent, r.detail);
const a = performance.now();
db.prepare(sql).all({ user: null, model: null, division: null, dayFrom: '2026-02-11', dayTo: '2026-05-12', headFrom: '2026-02-10T12', headTo: '2026-02-11T00', tailFrom: '2026-05-11T00', tailTo: '2026-05-11T13', from: '2026-02-10T12:00:00Z', to: '2026-05-11T12:15:00Z', limit: 50, offset: 0 });
console.log('ms', performance.now() - a);
