/**
 * Starts Debian's nginx on loopback in front of a test receiver, with the server block that
 * docs/receiver.md documents (TLS lines dropped: the test speaks plain HTTP to it). Single process,
 * no daemon, everything under a temp dir; `stop()` ends the process it started.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../../test/helpers/ports';

export const NGINX_BIN = '/usr/sbin/nginx';
const DOCS = new URL('../../../docs/receiver.md', import.meta.url);

export function nginxAvailable(): boolean {
  return existsSync(NGINX_BIN);
}

/** The first ```nginx block of docs/receiver.md. */
export function documentedServerBlock(): string {
  const text = readFileSync(DOCS, 'utf8');
  const match = /```nginx\n([\s\S]*?)```/.exec(text);
  if (match === null) throw new Error('docs/receiver.md has no nginx block');
  return match[1]!;
}

export interface Nginx {
  port: number;
  stop(): Promise<void>;
}

export async function startNginx(receiverPort: number): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'ccflux-nginx-'));
  mkdirSync(join(dir, 'logs'));
  const port = await freePort();
  const server = documentedServerBlock()
    .replace(/listen 443 ssl;/, `listen 127.0.0.1:${port};`)
    .replace(/^\s*ssl_certificate.*$/gm, '')
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${receiverPort}`);
  const conf = `
master_process off;
daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')} warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
${server}
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child: ChildProcess = spawn(NGINX_BIN, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitForPort(port, () => child.exitCode !== null, () => stderr);
  return {
    port,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number, dead: () => boolean, stderr: () => string): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 200; i++) {
    if (dead()) throw new Error(`nginx exited: ${stderr()}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nginx did not listen on ${port}: ${stderr()}`);
}
