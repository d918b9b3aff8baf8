import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { build } from 'esbuild';
import { MockAgent } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTransport, MAX_RESPONSE_BODY_BYTES, type TransportResult } from '../../../src/client/deliver/transport';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const ALLOW_HTTP = { CCFLUX_ALLOW_HTTP: '1' };

function expectResponse(result: TransportResult): Extract<TransportResult, { kind: 'response' }> {
  if (result.kind !== 'response') throw new Error(`expected a response, got ${JSON.stringify(result)}`);
  return result;
}
function expectNetworkError(result: TransportResult): Extract<TransportResult, { kind: 'network-error' }> {
  if (result.kind !== 'network-error') throw new Error(`expected a network error, got status ${result.status}`);
  return result;
}

// --- MockAgent injected as the dispatcher -----------------------------------------------------

describe('with an injected MockAgent', () => {
  let agent: MockAgent;
  afterEach(async () => {
    await agent.close();
  });
  const origin = 'https://usage.example.org';
  const setup = () => {
    agent = new MockAgent();
    agent.disableNetConnect();
    return agent.get(origin);
  };

  it('POSTs headers and body and returns status, lower-cased headers and body', async () => {
    const pool = setup();
    let seen: { headers: Record<string, string>; body: string } | undefined;
    pool
      .intercept({ path: '/report', method: 'POST' })
      .reply((opts) => {
        seen = { headers: opts.headers as Record<string, string>, body: String(opts.body) };
        return { statusCode: 200, data: '{"ok":true}', responseOptions: { headers: { 'X-CCFLUX-Error': 'none', 'Set-Cookie': ['a=1', 'b=2'] } } };
      });
    const transport = createTransport({ env: {}, dispatcher: agent });
    const result = expectResponse(
      await transport.post(`${origin}/report`, { headers: { authorization: 'Bearer abc', 'content-type': 'application/json' }, body: '{"x":1}' }),
    );
    expect(result.status).toBe(200);
    expect(result.body).toBe('{"ok":true}');
    expect(result.truncated).toBe(false);
    expect(result.headers['x-ccflux-error']).toBe('none');
    expect(result.headers['set-cookie']).toBe('a=1, b=2');
    expect(seen?.body).toBe('{"x":1}');
    expect(seen?.headers.authorization).toBe('Bearer abc');
    agent.assertNoPendingInterceptors();
  });

  it('an HTTP error status is a response, not a throw; a 3xx is not followed', async () => {
    const pool = setup();
    pool.intercept({ path: '/report', method: 'POST' }).reply(503, 'busy');
    pool.intercept({ path: '/report', method: 'POST' }).reply(302, '', { headers: { location: 'https://evil.example/steal' } });
    const transport = createTransport({ env: {}, dispatcher: agent });
    expect(expectResponse(await transport.post(`${origin}/report`, { body: '' })).status).toBe(503);
    const redirect = expectResponse(await transport.post(`${origin}/report`, { body: '' }));
    expect(redirect.status).toBe(302);
    expect(redirect.headers.location).toBe('https://evil.example/steal');
  });

  it('a connection error is a network-error value', async () => {
    const pool = setup();
    pool.intercept({ path: '/token', method: 'POST' }).replyWithError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    const transport = createTransport({ env: {}, dispatcher: agent });
    const result = expectNetworkError(await transport.post(`${origin}/token`, { body: '' }));
    expect(result.code).toBe('ECONNREFUSED');
  });

  it('an unmatched request (net connect disabled) is a value too', async () => {
    setup();
    const transport = createTransport({ env: {}, dispatcher: agent });
    expect(expectNetworkError(await transport.get(`${origin}/health`)).code).toMatch(/^UND_MOCK_ERR/);
  });

  it('caps a large body at 64 KiB', async () => {
    const pool = setup();
    pool.intercept({ path: '/health', method: 'GET' }).reply(200, 'x'.repeat(200_000));
    const transport = createTransport({ env: {}, dispatcher: agent });
    const result = expectResponse(await transport.get(`${origin}/health`));
    expect(result.body.length).toBe(MAX_RESPONSE_BODY_BYTES);
    expect(result.truncated).toBe(true);
  });

  it('never throws: invalid URL, bad header value', async () => {
    setup();
    const transport = createTransport({ env: {}, dispatcher: agent });
    expect(expectNetworkError(await transport.get('not a url')).code).toBe('invalid-url');
    expect(expectNetworkError(await transport.get('ftp://usage.example.org/x')).code).toBe('invalid-url');
    const bad = await transport.post(`${origin}/report`, { headers: { authorization: 'Bearer a\r\nInjected: 1' }, body: '' });
    expect(bad.kind).toBe('network-error');
  });
});

// --- undici is loaded lazily -------------------------------------------------------------------

describe('lazy undici', () => {
  let dir: string;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('undici is loaded only for a proxy: not on import, not for insecure URLs, not for a direct send (node:http)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccflux-lazy-'));
    const entry = join(dir, 'entry.ts');
    await writeFile(
      entry,
      `import { createTransport } from ${JSON.stringify(resolve('src/client/deliver/transport.ts'))};
       const loaded = () => (globalThis as Record<string, unknown>).__undiciLoaded === true;
       (async () => {
         const out: Record<string, unknown> = { afterImport: loaded() };
         const t = createTransport({ env: {} });
         out.afterCreate = loaded();
         out.insecure = (await t.get('http://127.0.0.1:9/')).kind;
         out.afterInsecure = loaded();
         const t2 = createTransport({ env: { CCFLUX_ALLOW_HTTP: '1' } });
         out.refused = await t2.get('http://127.0.0.1:9/');
         out.afterSend = loaded();
         await t2.close();
         const t3 = createTransport({ env: { CCFLUX_ALLOW_HTTP: '1', HTTP_PROXY: 'http://127.0.0.1:9' } });
         out.viaProxy = (await t3.get('http://127.0.0.1:9/')).kind;
         out.afterProxySend = loaded();
         await t3.close();
         process.stdout.write(JSON.stringify(out));
       })();`,
    );
    // As in the real build, undici is bundled (so the dynamic import becomes a deferred require);
    // a stub in its place records when it is loaded, then hands over the real module.
    const stub = join(dir, 'undici-stub.cjs');
    await writeFile(stub, `globalThis.__undiciLoaded = true;\nmodule.exports = require(${JSON.stringify(require.resolve('undici'))});\n`);
    const outfile = join(dir, 'lazy.cjs');
    await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      outfile,
      logLevel: 'silent',
      plugins: [{ name: 'undici-stub', setup: (b) => b.onResolve({ filter: /^undici$/ }, () => ({ path: stub })) }],
    });
    const { stdout } = await run(process.execPath, [outfile]);
    const out = JSON.parse(stdout);
    expect(out.refused).toMatchObject({ kind: 'network-error', code: 'ECONNREFUSED' });
    expect(out).toMatchObject({ afterImport: false, afterCreate: false, insecure: 'network-error', afterInsecure: false, afterSend: false });
    expect(out).toMatchObject({ viaProxy: 'network-error', afterProxySend: true });
    expect(out.refused.kind).toBe('network-error');
  });
});

// --- a real local server on port 0 -----------------------------------------------------------

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function listen(server: Server | NetServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

describe('against a real local server', () => {
  const servers: (Server | NetServer)[] = [];
  const sockets = new Set<Socket>();
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(() => r(null)))));
  });

  async function serve(handler: Handler): Promise<{ url: string; hits: string[] }> {
    const hits: string[] = [];
    const server = createHttpServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      handler(req, res);
    });
    server.on('connection', (s) => sockets.add(s));
    servers.push(server);
    const port = await listen(server);
    return { url: `http://127.0.0.1:${port}`, hits };
  }

  it('refuses plain http without CCFLUX_ALLOW_HTTP=1, before connecting', async () => {
    const { url, hits } = await serve((_req, res) => res.end('ok'));
    const result = expectNetworkError(await createTransport({ env: {} }).post(`${url}/report`, { body: '{}' }));
    expect(result.code).toBe('insecure');
    expect(hits).toEqual([]);
    expect(expectResponse(await createTransport({ env: ALLOW_HTTP }).post(`${url}/report`, { body: '{}' })).status).toBe(200);
    expect(hits).toEqual(['POST /report']);
  });

  it('does not follow redirects', async () => {
    const { url, hits } = await serve((req, res) => {
      if (req.url === '/report') {
        res.writeHead(302, { location: '/final' });
        res.end();
      } else res.end('followed');
    });
    const result = expectResponse(await createTransport({ env: ALLOW_HTTP }).post(`${url}/report`, { body: '{}' }));
    expect(result.status).toBe(302);
    expect(hits).toEqual(['POST /report']);
  });

  it('cuts an endless body at the cap and drops the connection', async () => {
    let closed = false;
    const { url } = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(16 * 1024, 'y');
      const pump = () => {
        while (!closed && res.write(chunk)) {
          /* keep writing until backpressure */
        }
        if (!closed) res.once('drain', pump);
      };
      res.on('close', () => {
        closed = true;
      });
      pump();
    });
    const started = Date.now();
    const result = expectResponse(await createTransport({ env: ALLOW_HTTP }).get(`${url}/huge`));
    expect(result.status).toBe(200);
    expect(result.truncated).toBe(true);
    expect(Buffer.byteLength(result.body)).toBe(MAX_RESPONSE_BODY_BYTES);
    expect(Date.now() - started).toBeLessThan(2000);
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(true);
  });

  it('headers timeout', async () => {
    const { url } = await serve(() => {
      /* never answers */
    });
    const started = Date.now();
    const transport = createTransport({ env: ALLOW_HTTP, timeouts: { headersMillis: 300 } });
    const result = expectNetworkError(await transport.post(`${url}/report`, { body: '{}' }));
    expect(result.code).toBe('UND_ERR_HEADERS_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('overall timeout bounds a server that never answers (and a caller timeoutMillis lowers it)', async () => {
    const { url } = await serve(() => {});
    const transport = createTransport({ env: ALLOW_HTTP, timeouts: { overallMillis: 2000 } });
    const started = Date.now();
    const result = expectNetworkError(await transport.post(`${url}/report`, { body: '{}', timeoutMillis: 300 }));
    expect(result.code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('a body that stalls after the headers: the status still answers, the body is cut (body timeout)', async () => {
    const { url } = await serve((_req, res) => {
      res.writeHead(200);
      res.write('partial');
    });
    const transport = createTransport({ env: ALLOW_HTTP, timeouts: { bodyMillis: 300 } });
    const started = Date.now();
    const result = expectResponse(await transport.get(`${url}/stall`));
    expect(result.status).toBe(200);
    expect(result.body).toBe('partial');
    expect(result.truncated).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a trickling body is cut at the overall deadline', async () => {
    const { url } = await serve((_req, res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write('.'), 50);
      res.on('close', () => clearInterval(timer));
    });
    const transport = createTransport({ env: ALLOW_HTTP, timeouts: { overallMillis: 500, bodyMillis: 3000 } });
    const started = Date.now();
    const result = expectResponse(await transport.get(`${url}/trickle`));
    expect(result.truncated).toBe(true);
    expect(result.body.length).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('connection refused is a network-error value', async () => {
    const { url } = await serve(() => {});
    const port = new URL(url).port;
    await new Promise((r) => servers.pop()!.close(() => r(null)));
    const result = expectNetworkError(await createTransport({ env: ALLOW_HTTP }).get(`http://127.0.0.1:${port}/`));
    expect(result.code).toBe('ECONNREFUSED');
  });

  it('the connect timeout bounds a TLS handshake that never completes', async () => {
    const silent = createNetServer((s) => sockets.add(s));
    servers.push(silent);
    const port = await listen(silent);
    const transport = createTransport({ env: {}, timeouts: { connectMillis: 300 } });
    const started = Date.now();
    const result = expectNetworkError(await transport.get(`https://127.0.0.1:${port}/`));
    expect(result.code).toBe('UND_ERR_CONNECT_TIMEOUT');
    // undici's connect timer is coarse (it fired at ~1 s for 300 ms here); the bound is what matters.
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('uses HTTP(S)_PROXY (CONNECT tunnel) from the injected env, and NO_PROXY bypasses it', async () => {
    const { url, hits } = await serve((_req, res) => res.end('via'));
    const tunnels: string[] = [];
    const proxy = createHttpServer();
    proxy.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      tunnels.push(String(req.url));
      const [host, port] = String(req.url).split(':');
      const upstream = netConnect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      sockets.add(client);
      sockets.add(upstream);
    });
    servers.push(proxy);
    const proxyPort = await listen(proxy);
    const proxyUrl = `http://127.0.0.1:${proxyPort}`;

    const viaProxy = createTransport({ env: { ...ALLOW_HTTP, HTTP_PROXY: proxyUrl } });
    expect(expectResponse(await viaProxy.get(`${url}/x`)).body).toBe('via');
    expect(tunnels).toEqual([new URL(url).host]);
    await viaProxy.close();

    const bypass = createTransport({ env: { ...ALLOW_HTTP, HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' } });
    expect(expectResponse(await bypass.get(`${url}/y`)).body).toBe('via');
    expect(tunnels).toHaveLength(1);
    expect(hits).toEqual(['GET /x', 'GET /y']);
    await bypass.close();
  });
});

// --- https with a private CA (CCFLUX_CA_CERT) ------------------------------------------------

const haveOpenssl = await run('openssl', ['version']).then(
  () => true,
  () => false,
);

describe.skipIf(!haveOpenssl)('https with an internal CA', () => {
  let dir: string;
  let server: Server;
  let url: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ccflux-ca-'));
    const o = (args: string[]) => run('openssl', args, { cwd: dir });
    await o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ccflux test CA']);
    await o(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=127.0.0.1']);
    await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    await o(['x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'srv.pem', '-days', '2', '-extfile', 'ext.cnf']);
    const { readFile } = await import('node:fs/promises');
    server = createHttpsServer(
      { key: await readFile(join(dir, 'srv.key')), cert: await readFile(join(dir, 'srv.pem')) },
      (_req, res) => res.end('secure'),
    );
    const port = await listen(server);
    url = `https://127.0.0.1:${port}/health`;
  }, 60_000);
  afterAll(async () => {
    await new Promise((r) => server?.close(() => r(null)));
    await rm(dir, { recursive: true, force: true });
  });

  it('fails without the CA, succeeds with CCFLUX_CA_CERT or CCFLUX_EXTRA_CA_CERTS', async () => {
    const untrusted = expectNetworkError(await createTransport({ env: {} }).get(url));
    expect(untrusted.code).toMatch(/CERT|SIGNATURE|ISSUER/);
    const withCa = createTransport({ env: { CCFLUX_CA_CERT: join(dir, 'ca.pem') } });
    expect(expectResponse(await withCa.get(url)).body).toBe('secure');
    await withCa.close();
    const withExtra = createTransport({ env: { CCFLUX_EXTRA_CA_CERTS: join(dir, 'ca.pem') } });
    expect(expectResponse(await withExtra.get(url)).body).toBe('secure');
    await withExtra.close();
  });

  it('an unreadable CA file is reported, not silently ignored', async () => {
    const result = expectNetworkError(await createTransport({ env: { CCFLUX_CA_CERT: join(dir, 'missing.pem') } }).get(url));
    expect(result.code).toBe('ca-unreadable');
    expect(result.message).toContain('CCFLUX_CA_CERT');
  });
});
