/**
 * Issue 16 row 1, through a real nginx with docs/receiver.md's configuration: the `/admin` and
 * `/metrics` allow-lists hold for every spelling of the path. Before the fix `//x/admin/` went
 * through `location /` and the receiver served it as `/admin/`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess, type TestReceiver } from '../support';
import { type Nginx, nginxAvailable, startNginx } from './nginx';
import { rawStatus } from './raw';

const ADMIN_TOKEN = 'b'.repeat(32);
let t: TestReceiver;
let nginx: Nginx;

beforeAll(async () => {
  if (!nginxAvailable()) return;
  t = await startInProcess({ env: { ADMIN_TOKEN } });
  nginx = await startNginx(t.port);
});
afterAll(async () => {
  await nginx?.stop();
  await t?.close();
});

function request(target: string): string {
  return `GET ${target} HTTP/1.1\r\nHost: ccflux.example.org\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nConnection: close\r\n\r\n`;
}

describe.runIf(nginxAvailable())('behind nginx with the documented config', () => {
  it('serves /health, and refuses /admin/ and /metrics to an address outside the allow-list', async () => {
    expect(await rawStatus(nginx.port, request('/health'))).toBe('200');
    expect(await rawStatus(nginx.port, request('/admin/'))).toBe('403');
    expect(await rawStatus(nginx.port, request('/metrics'))).toBe('403');
  });

  it.each(['//x/admin/', '/\\x/admin/', '//x/metrics', '//admin/', '///admin/', '/x/../admin/', '/%61dmin/'])(
    'never serves the dashboard or metrics for %s',
    async (target) => {
      const status = await rawStatus(nginx.port, request(target));
      expect(['400', '403', '404']).toContain(status);
    },
  );
});
