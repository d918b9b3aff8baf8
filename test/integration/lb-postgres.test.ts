/**
 * Stateless instances: three real receivers (the built bundle) on one real PostgreSQL database
 * behind a real nginx, several devices replaying fixture sessions through the real plugin hooks at
 * the same time, one instance SIGKILLed mid-run and restarted on its port. Then: every device's
 * totals are exactly what the API billed (0 lost, 0 counted twice), one token's rate limit holds
 * across the three instances, and an admin session made on one instance works on the others.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../receiver/src/store';
import { cleanupTempDirs, fixtureDir, hookEnv, makeDataDir } from '../helpers/env';
import { freshDatabase, testPgAdminUrl } from '../helpers/postgres';
import { RECEIVER_BUNDLE } from '../helpers/receiver';
import { expectedModels, installPlugin, replayTimeline, waitForQuiet } from '../helpers/timeline';
import { freePort } from '../helpers/ports';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const CAN_RUN = testPgAdminUrl() !== undefined && NGINX !== undefined;
const ADMIN_TOKEN = 'lb-test-admin-token-0123456789abcdef';
const RATE = 120;
const DEVICES = 4;
const SCENARIO = 'basic';

interface Instance {
  port: number;
  child: ChildProcess;
}

async function startInstance(url: string, port: number): Promise<Instance> {
  const child = spawn(process.execPath, [RECEIVER_BUNDLE, 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: url,
      LISTEN_ADDR: `127.0.0.1:${port}`,
      ADMIN_TOKEN,
      RATE_LIMIT_PER_MINUTE: String(RATE),
      LOG_LEVEL: 'silent',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    err = (err + c).slice(-4000);
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`receiver exited ${code}: ${err}`)));
  });
  return { port, child };
}

function stopInstance(i: Instance, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (i.child.exitCode !== null || i.child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    i.child.once('exit', () => resolve());
    i.child.kill(signal);
  });
}

async function startNginx(dir: string, ports: number[]): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const conf = `
${asRoot ? 'user root root;' : ''}
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream ccflux {
${ports.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`).join('\n')}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 64k;
    location / {
      proxy_pass http://ccflux;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_next_upstream_tries 3;
    }
  }
}`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn(NGINX!, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/health`);
      if (r.status === 200) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error('nginx did not come up');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGQUIT');
      }),
  };
}

describe.skipIf(!CAN_RUN)('three receivers behind nginx on PostgreSQL', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await cleanupTempDirs();
  });

  it('loses nothing, counts nothing twice, shares the rate limit and the admin sessions', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ccflux-lb-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const db = await freshDatabase();
    cleanups.push(db.drop);
    const ports = [await freePort(), await freePort(), await freePort()];
    const instances: Instance[] = [];
    for (const p of ports) instances.push(await startInstance(db.url, p));
    cleanups.push(async () => {
      for (const i of instances) await stopInstance(i);
    });
    const nginx = await startNginx(dir, ports);
    cleanups.push(nginx.stop);
    const base = `http://127.0.0.1:${nginx.port}`;

    // Provisioning straight through the store, as an operator's CLI would.
    const store = await PostgresStore.open(db.url, () => new Date());
    cleanups.push(() => store.close());
    const scenario = fixtureDir(SCENARIO);
    const devices = [];
    for (let d = 0; d < DEVICES; d++) {
      const email = `dev${d}@example.org`;
      const { refreshToken } = await store.createUser(email);
      const { dataDir, home } = await makeDataDir({ email });
      const pluginRoot = await installPlugin(dataDir);
      const env = { ...hookEnv({ dataDir, home, pluginRoot, endpoint: base, token: refreshToken }), CCFLUX_ALLOW_HTTP: '1' };
      devices.push({ email, dataDir, pluginRoot, env });
    }

    // All devices at once; one instance killed mid-run and brought back on its port.
    const replays = devices.map((dev) => replayTimeline(scenario, { dataDir: dev.dataDir, env: dev.env, pluginRoot: dev.pluginRoot }));
    await new Promise((r) => setTimeout(r, 1500));
    await stopInstance(instances[1]!, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    instances[1] = await startInstance(db.url, ports[1]!);
    await Promise.all(replays);
    for (const dev of devices) await waitForQuiet(dev.dataDir, { timeoutMillis: 90_000 });

    const expected = expectedModels(scenario);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    cleanups.push(() => client.end());
    for (const dev of devices) {
      const r = await client.query(
        `SELECT model, SUM(input_tokens)::bigint AS input_tokens, SUM(output_tokens)::bigint AS output_tokens,
                SUM(cache_read_tokens)::bigint AS cache_read_tokens, SUM(cache_write_tokens)::bigint AS cache_write_tokens
           FROM usage_events WHERE user_email = $1 GROUP BY model ORDER BY model`,
        [dev.email],
      );
      const sums = Object.fromEntries(
        r.rows.map((row) => [
          row.model,
          {
            input_tokens: Number(row.input_tokens),
            output_tokens: Number(row.output_tokens),
            cache_read_tokens: Number(row.cache_read_tokens),
            cache_write_tokens: Number(row.cache_write_tokens),
          },
        ]),
      );
      expect(sums, dev.email).toEqual(expected);
    }

    // One token, one budget across the three instances (a per-process limiter would let 3x through).
    const { refreshToken } = await store.createUser('burst@example.org');
    const statuses: number[] = [];
    for (let i = 0; i < RATE + 60; i++) {
      const r = await fetch(`${base}/token`, { method: 'POST', headers: { authorization: `Bearer ${refreshToken}` } });
      statuses.push(r.status);
      await r.arrayBuffer();
    }
    const allowed = statuses.filter((s) => s === 200).length;
    // The sliding weight can let one more through when the burst straddles a minute boundary.
    expect(allowed).toBeGreaterThanOrEqual(RATE - 1);
    expect(allowed).toBeLessThanOrEqual(RATE + 1);
    expect(statuses.filter((s) => s === 429).length).toBe(RATE + 60 - allowed);

    // An admin session made through nginx (some instance) works on each instance directly.
    const login = await fetch(`${base}/admin/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
      redirect: 'manual',
    });
    expect(login.status).toBe(303);
    const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
    for (const p of ports) {
      const page = await fetch(`http://127.0.0.1:${p}/admin/`, { headers: { cookie }, redirect: 'manual' });
      expect(page.status, `instance on ${p}`).toBe(200);
      await page.text();
    }
  });
});
