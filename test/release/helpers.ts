/**
 * Shared harness for the release tests: a throw-away CA and an https server on port 0 (certificates
 * made with openssl at test time), a PATH without node, and temporary copies of the plugin folder.
 */
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);
export const repoRoot = join(__dirname, '..', '..');

/** The binary name the wrappers look for on this machine (Node's platform and arch names). */
export function hostBinaryName(): string {
  return `ccflux-${process.platform}-${process.arch}${process.platform === 'win32' ? '.exe' : ''}`;
}

export interface TestCa {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** A CA and a server certificate for 127.0.0.1 signed by it, in `dir`. */
export async function makeCa(dir: string): Promise<TestCa> {
  mkdirSync(dir, { recursive: true });
  const p = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=ccflux test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(p('server.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-out', p('server.pem'), '-days', '2', '-extfile', p('server.ext')]);
  return { caPem: p('ca.pem'), certPem: p('server.pem'), keyPem: p('server.key') };
}

export interface Route {
  status?: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export interface TestServer {
  url: string;
  /** Paths requested, in order. */
  requests: string[];
  routes: Map<string, Route>;
  close(): Promise<void>;
}

export async function startHttpsServer(ca: TestCa): Promise<TestServer> {
  const routes = new Map<string, Route>();
  const requests: string[] = [];
  const server: Server = createServer({ cert: readFileSync(ca.certPem), key: readFileSync(ca.keyPem) }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    requests.push(path);
    const route = routes.get(path);
    if (!route) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(route.status ?? 200, route.headers ?? { 'content-type': 'application/octet-stream' });
    res.end(route.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    requests,
    routes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Tools the shell wrappers use. node is never among them. */
const SHELL_TOOLS = [
  'sh', 'dash', 'bash', 'cat', 'mktemp', 'uname', 'date', 'rm', 'dirname', 'setsid', 'nohup', 'find', 'awk', 'sed', 'head',
  'mkdir', 'rmdir', 'tr', 'mv', 'chmod', 'curl', 'sha256sum', 'env', 'sleep',
];

/**
 * A folder of symlinks to the wrappers' tools, to use as the whole PATH: no node in it (unless
 * `links` adds one). `extra` adds executable scripts; `omit` leaves tools out.
 */
export function pathWithoutNode(
  dir: string,
  extra: Record<string, string> = {},
  options: { omit?: string[]; links?: Record<string, string> } = {},
): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, target] of Object.entries(options.links ?? {})) symlinkSync(target, join(dir, name));
  for (const tool of SHELL_TOOLS) {
    if (options.omit?.includes(tool)) continue;
    for (const prefix of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
      const target = join(prefix, tool);
      if (existsSync(target) && !existsSync(join(dir, tool))) {
        symlinkSync(target, join(dir, tool));
        break;
      }
    }
  }
  for (const [name, text] of Object.entries(extra)) {
    writeFileSync(join(dir, name), text);
    chmodSync(join(dir, name), 0o755);
  }
  return dir;
}

/** A copy of the plugin's source folder (manifest, hooks, scripts) with empty bin/ and dist/. */
export function copyPlugin(dest: string): string {
  for (const sub of ['.claude-plugin', 'hooks', 'scripts']) cpSync(join(repoRoot, 'plugin', sub), join(dest, sub), { recursive: true });
  mkdirSync(join(dest, 'bin'), { recursive: true });
  mkdirSync(join(dest, 'dist'), { recursive: true });
  return dest;
}

/** Polls `check` every 50 ms until it returns true or `timeoutMillis` passes. */
export async function waitFor(check: () => boolean, timeoutMillis = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMillis;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}
