/** Raw-socket helpers for the security tests: exact request bytes, and when the server hangs up. */
import { connect, type Socket } from 'node:net';

/** Sends `payload` as-is and resolves with the status line's code ('' when the server closed
 * without answering). */
export function rawStatus(port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(received)?.[1];
      if (status !== undefined) {
        socket.destroy();
        resolve(status);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(/^HTTP\/1\.[01] (\d{3})/.exec(received)?.[1] ?? ''));
    socket.write(payload);
  });
}

export function get(target: string): string {
  return `GET ${target} HTTP/1.1\r\nHost: receiver.test\r\nConnection: close\r\n\r\n`;
}

/** An open connection and a promise of when the server closed it (ms after `openedAt`). */
export interface HeldConnection {
  socket: Socket;
  openedAt: number;
  closedAfter: Promise<number>;
  received(): string;
}

export function hold(port: number, first: string): Promise<HeldConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
    });
    socket.once('error', reject);
    socket.once('connect', () => {
      const openedAt = Date.now();
      const closedAfter = new Promise<number>((done) => socket.once('close', () => done(Date.now() - openedAt)));
      socket.on('error', () => {});
      socket.write(first);
      resolve({ socket, openedAt, closedAfter, received: () => text });
    });
  });
}
