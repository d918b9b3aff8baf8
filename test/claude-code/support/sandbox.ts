/**
 * A fresh network namespace with only loopback up, so that nothing the real Claude Code does can
 * leave the machine. A holder process (netns-holder.cjs) is started under `unshare --net` and keeps
 * the namespace alive; every `claude` process, the receiver and the hooks' workers are started in
 * it with `nsenter --net`. The fake API is served from this test process on a listening socket
 * that the holder created inside the namespace, so it too is reachable only from in there.
 *
 * Root (CI) uses `unshare --net`; other users get a user namespace too (`unshare -rn`), entered
 * with `nsenter --user --preserve-credentials`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const HOLDER = fileURLToPath(new URL('./netns-holder.cjs', import.meta.url));
const READY_TIMEOUT_MILLIS = 10_000;

export interface Sandbox {
  /** Pid of the holder: the namespace is `/proc/<pid>/ns/net`. */
  pid: number;
  /** The command line that runs `file args` inside the namespace. */
  wrap(file: string, args: string[]): [string, string[]];
  /** A listening TCP socket on 127.0.0.1 inside the namespace, and its port. */
  listen(): Promise<{ handle: unknown; port: number }>;
  close(): Promise<void>;
}

const asRoot = process.getuid?.() === 0;

function unshareArgs(): string[] {
  return asRoot ? ['--net'] : ['--user', '--map-root-user', '--net'];
}

function nsenterArgs(pid: number): string[] {
  return asRoot ? ['--target', String(pid), '--net'] : ['--target', String(pid), '--user', '--net', '--preserve-credentials'];
}

/** Why the sandbox cannot run here, or null when it can (checked once, synchronously). */
export function sandboxUnavailable(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  for (const tool of ['unshare', 'nsenter', 'ip']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `\`${tool}\` is not installed (Debian package util-linux / iproute2)`;
    }
  }
  try {
    execFileSync('unshare', [...unshareArgs(), 'sh', '-c', 'ip link set lo up'], { stdio: 'pipe', timeout: 10_000 });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return `\`unshare ${unshareArgs().join(' ')}\` is not permitted here: ${stderr || String(err)}`;
  }
  return null;
}

export async function openSandbox(): Promise<Sandbox> {
  const holder: ChildProcess = spawn(
    'unshare',
    [...unshareArgs(), 'sh', '-c', 'ip link set lo up && exec "$0" "$1"', process.execPath, HOLDER],
    { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] },
  );
  let stderr = '';
  holder.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const interfaces = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`network namespace holder did not start: ${stderr}`)), READY_TIMEOUT_MILLIS);
    holder.once('message', (msg: { type: string; interfaces: string[] }) => {
      clearTimeout(timer);
      resolve(msg.interfaces);
    });
    holder.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`network namespace holder exited (${code}): ${stderr}`));
    });
  });
  if (interfaces.join(',') !== 'lo') {
    holder.kill('SIGKILL');
    throw new Error(`the sandbox must have only loopback, it has: ${interfaces.join(', ')}`);
  }
  const pid = holder.pid!;
  let nextId = 0;
  return {
    pid,
    wrap: (file, args) => ['nsenter', [...nsenterArgs(pid), '--', file, ...args]],
    listen: () =>
      new Promise((resolve, reject) => {
        const id = ++nextId;
        const onMessage = (msg: { type: string; id: number; port?: number; message?: string }, handle: unknown) => {
          if (msg.id !== id) return;
          holder.off('message', onMessage);
          if (msg.type === 'listening') resolve({ handle, port: msg.port! });
          else reject(new Error(`cannot listen in the sandbox: ${msg.message}`));
        };
        holder.on('message', onMessage);
        holder.send({ type: 'listen', id });
      }),
    close: async () => {
      if (holder.exitCode !== null || holder.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        holder.once('exit', () => resolve());
        holder.disconnect();
        setTimeout(() => holder.kill('SIGKILL'), 2_000).unref();
      });
    },
  };
}
