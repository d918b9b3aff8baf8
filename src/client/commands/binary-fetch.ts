/**
 * Verified download of the plugin's platform binary (`ccflux fetch-binary`; the shell twin is
 * plugin/scripts/fetch-binary.sh). The expected SHA-256 comes from `<plugin>/bin/SHA256SUMS`, which
 * ships inside the plugin folder, never from the server that serves the binary. The file is
 * downloaded over https only (every redirect too) to a private temp name beside the target, hashed
 * while it streams, and only when the hash matches made executable and renamed into place; on a
 * mismatch it is deleted. The binary then never exists half-written or unverified under its name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, open, readFile, rename, unlink } from '../local/fs';
import { join } from 'node:path';
import type { Dispatcher } from 'undici';
import { CcfluxError, ERROR_CODES } from '../local/errors';

/** Where releases live unless CCFLUX_RELEASE_BASE_URL says otherwise (also in fetch-binary.sh and ccflux-hook.ps1). */
export const RELEASE_REPO = 'ccflux/ccflux';
export const SUMS_FILE = 'SHA256SUMS';

const MAX_REDIRECTS = 5;
/** A Node SEA is ~90 MB; anything far larger is not our binary. */
const MAX_BINARY_BYTES = 256 * 1024 * 1024;
const CONNECT_TIMEOUT_MILLIS = 20_000;
const HEADERS_TIMEOUT_MILLIS = 30_000;
/** Idle gap between body chunks, not the whole download. */
const BODY_TIMEOUT_MILLIS = 60_000;
const TOTAL_TIMEOUT_MILLIS = 15 * 60_000;

const PLATFORMS = new Set(['linux', 'darwin', 'win32']);
const ARCHS = new Set(['x64', 'arm64']);

/** `ccflux-<os>-<arch>[.exe]` in Node's names: what the wrappers look for in `<plugin>/bin/`. */
export function binaryName(platform: string, arch: string): string {
  if (!PLATFORMS.has(platform) || !ARCHS.has(arch)) {
    throw new CcfluxError(ERROR_CODES.USAGE, `no ccflux binary is built for ${platform}-${arch}`, {
      hint: 'use Node.js 20+ with the bundled dist/ccflux.cjs instead',
    });
  }
  return `ccflux-${platform}-${arch}${platform === 'win32' ? '.exe' : ''}`;
}

/** `sha256sum` output (`<hex>  <name>` or `<hex> *<name>`) → name → lower-case hex. Other lines are ignored. */
export function parseSha256Sums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^([0-9a-fA-F]{64}) [ *](\S.*)$/.exec(line.trim());
    if (match) sums.set(match[2] as string, (match[1] as string).toLowerCase());
  }
  return sums;
}

/** The download URL; https only, whatever the environment says. */
export function releaseUrl(env: NodeJS.ProcessEnv, version: string, name: string): string {
  const base = env.CCFLUX_RELEASE_BASE_URL || `https://github.com/${RELEASE_REPO}/releases/download/v${version}`;
  let url: URL;
  try {
    url = new URL(`${base.replace(/\/+$/, '')}/${name}`);
  } catch {
    throw new CcfluxError(ERROR_CODES.CONFIG_INVALID, `CCFLUX_RELEASE_BASE_URL is not a URL: ${base}`);
  }
  if (url.protocol !== 'https:') {
    throw new CcfluxError(ERROR_CODES.INSECURE_ENDPOINT, `refusing to download ${name} over ${url.protocol.replace(':', '')}: https only`, {
      hint: 'set CCFLUX_RELEASE_BASE_URL to an https:// mirror, or unset it',
    });
  }
  return url.toString();
}

/** The next URL of a redirect, only if it stays on https. */
export function redirectTarget(from: string, location: string | undefined): string {
  if (!location) throw new CcfluxError(ERROR_CODES.NETWORK, `redirect without a Location from ${from}`);
  const next = new URL(location, from);
  if (next.protocol !== 'https:') {
    throw new CcfluxError(ERROR_CODES.INSECURE_ENDPOINT, `refusing a redirect from ${from} to a non-https URL (${next.protocol})`);
  }
  return next.toString();
}

export interface FetchBinaryOptions {
  /** The plugin folder: `<root>/bin/SHA256SUMS` holds the expected checksums, the binary goes to `<root>/bin/`. */
  pluginRoot: string;
  /** Release version (the plugin's), for the default URL. */
  version: string;
  platform: string;
  arch: string;
  env: NodeJS.ProcessEnv;
  /** Tests inject a dispatcher; otherwise one is made from the environment (proxy, extra CAs). */
  dispatcher?: Dispatcher;
}

export interface FetchBinaryResult {
  status: 'downloaded' | 'present';
  name: string;
  path: string;
  sha256: string;
  url: string | null;
  bytes: number;
}

/** The expected hash of `name`, from the plugin folder. */
export async function expectedSha256(pluginRoot: string, name: string): Promise<string> {
  const file = join(pluginRoot, 'bin', SUMS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new CcfluxError(ERROR_CODES.CHECKSUM, `${file} is missing, so ${name} cannot be verified and is not downloaded`, {
      hint: 'install the plugin from a release (its bin/SHA256SUMS lists the binaries), or use Node.js 20+',
    });
  }
  const sha = parseSha256Sums(text).get(name);
  if (!sha) {
    throw new CcfluxError(ERROR_CODES.CHECKSUM, `${file} has no checksum for ${name}, so it is not downloaded`, {
      hint: 'this release has no binary for this platform: use Node.js 20+ with dist/ccflux.cjs',
    });
  }
  return sha;
}

async function sha256OfFile(path: string): Promise<{ sha256: string; bytes: number } | null> {
  try {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of createReadStream(path)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    return { sha256: hash.digest('hex'), bytes };
  } catch {
    return null;
  }
}

async function readPems(env: NodeJS.ProcessEnv): Promise<string[]> {
  const files = [env.CCFLUX_CA_CERT, env.CCFLUX_EXTRA_CA_CERTS].filter((f): f is string => typeof f === 'string' && f !== '');
  const pems: string[] = [];
  for (const file of files) {
    try {
      pems.push(await readFile(file, 'utf8'));
    } catch (err) {
      throw new CcfluxError(ERROR_CODES.CONFIG_INVALID, `cannot read the CA file ${file}`, { cause: err });
    }
  }
  return pems;
}

async function makeDispatcher(env: NodeJS.ProcessEnv): Promise<Dispatcher> {
  // undici is loaded only here: commands that never download must not pay its ~100 ms start-up.
  const { EnvHttpProxyAgent } = await import('undici');
  const pems = await readPems(env);
  // `ca` replaces the default roots, so the extra CAs are added to them.
  const tls = pems.length > 0 ? { ca: [...process.getBuiltinModule('node:tls').rootCertificates, ...pems] } : {};
  return new EnvHttpProxyAgent({ connect: { ...tls, timeout: CONNECT_TIMEOUT_MILLIS }, requestTls: tls });
}

/**
 * Makes sure `<pluginRoot>/bin/<binary>` exists and matches the shipped checksum, downloading it if
 * needed. Throws CcfluxError: CHECKSUM (mismatch, no checksum), INSECURE_ENDPOINT (non-https URL or
 * redirect), NETWORK (HTTP status, timeout, connection), IO.
 */
export async function fetchBinary(options: FetchBinaryOptions): Promise<FetchBinaryResult> {
  const name = binaryName(options.platform, options.arch);
  const binDir = join(options.pluginRoot, 'bin');
  const target = join(binDir, name);
  const expected = await expectedSha256(options.pluginRoot, name);

  const existing = await sha256OfFile(target);
  if (existing && existing.sha256 === expected) {
    // The right file; an archive tool may have dropped its mode.
    await chmod(target, 0o755).catch(() => {});
    return { status: 'present', name, path: target, sha256: expected, url: null, bytes: existing.bytes };
  }

  const url = releaseUrl(options.env, options.version, name);
  const ownDispatcher = options.dispatcher ? null : await makeDispatcher(options.env);
  const dispatcher = options.dispatcher ?? (ownDispatcher as Dispatcher);
  const temp = join(binDir, `.${name}.download-${process.pid}-${randomBytes(4).toString('hex')}`);
  const signal = AbortSignal.timeout(TOTAL_TIMEOUT_MILLIS);
  try {
    const { sha256, bytes } = await download(url, temp, dispatcher, signal);
    if (sha256 !== expected) {
      throw new CcfluxError(
        ERROR_CODES.CHECKSUM,
        `checksum mismatch for ${name} from ${url}: expected ${expected}, got ${sha256}; the file was discarded`,
        { hint: 'the download was damaged or tampered with; try again later, or install the binary from the release by hand' },
      );
    }
    await chmod(temp, 0o755);
    await rename(temp, target);
    return { status: 'downloaded', name, path: target, sha256, url, bytes };
  } finally {
    await unlink(temp).catch(() => {});
    await ownDispatcher?.close().catch(() => {});
  }
}

async function download(firstUrl: string, temp: string, dispatcher: Dispatcher, signal: AbortSignal): Promise<{ sha256: string; bytes: number }> {
  const { request } = await import('undici');
  let url = firstUrl;
  for (let hop = 0; ; hop++) {
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, {
        method: 'GET',
        dispatcher,
        signal,
        headersTimeout: HEADERS_TIMEOUT_MILLIS,
        bodyTimeout: BODY_TIMEOUT_MILLIS,
        headers: { 'user-agent': 'ccflux-fetch-binary', accept: 'application/octet-stream' },
      });
    } catch (err) {
      throw networkError(url, err);
    }
    const { statusCode, headers, body } = response;
    if (statusCode >= 300 && statusCode < 400) {
      await body.dump().catch(() => {});
      if (hop >= MAX_REDIRECTS) throw new CcfluxError(ERROR_CODES.NETWORK, `too many redirects from ${firstUrl}`);
      const location = headers.location;
      url = redirectTarget(url, Array.isArray(location) ? location[0] : location);
      continue;
    }
    if (statusCode !== 200) {
      await body.dump().catch(() => {});
      throw new CcfluxError(ERROR_CODES.NETWORK, `download of ${url} failed: HTTP ${statusCode}`, {
        hint: statusCode === 404 ? 'this release has no such binary; use Node.js 20+ instead' : 'try again later',
      });
    }
    const declared = Number(headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_BINARY_BYTES) {
      await body.dump().catch(() => {});
      throw new CcfluxError(ERROR_CODES.CHECKSUM, `${url} is ${declared} bytes, larger than any ccflux binary; not downloaded`);
    }
    // Created 0600 and exclusively: nobody else can read or swap it before it is verified.
    const handle = await open(temp, 'wx', 0o600);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      for await (const chunk of body) {
        const data = chunk as Buffer;
        bytes += data.length;
        if (bytes > MAX_BINARY_BYTES) throw new CcfluxError(ERROR_CODES.CHECKSUM, `${url} is larger than any ccflux binary; discarded`);
        hash.update(data);
        await handle.write(data);
      }
      await handle.sync();
    } catch (err) {
      if (err instanceof CcfluxError) throw err;
      throw networkError(url, err);
    } finally {
      await handle.close();
    }
    return { sha256: hash.digest('hex'), bytes };
  }
}

function networkError(url: string, err: unknown): CcfluxError {
  const code = (err as { code?: string }).code;
  const detail = err instanceof Error ? err.message : String(err);
  return new CcfluxError(ERROR_CODES.NETWORK, `download of ${url} failed: ${code ? `${code}: ` : ''}${detail}`, {
    hint: 'check the network or proxy (HTTPS_PROXY); an internal CA goes in CCFLUX_CA_CERT',
    cause: err,
  });
}
