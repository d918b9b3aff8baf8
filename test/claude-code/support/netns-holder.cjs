// Runs as the first process of a fresh network namespace (started by sandbox.ts under
// `unshare --net`). It keeps the namespace alive while the test process is connected, reports the
// interfaces it sees, and on request creates a listening TCP socket on 127.0.0.1 inside the
// namespace and hands it to the test process, which serves on it: such a socket is reachable
// only from processes inside this namespace.
const net = require('node:net');
const fs = require('node:fs');

process.on('message', (msg) => {
  if (msg?.type !== 'listen') return;
  const server = net.createServer();
  server.on('error', (err) => process.send({ type: 'listen-error', id: msg.id, message: String(err) }));
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    // Closed here once handed over, so only the test process accepts on it.
    process.send({ type: 'listening', id: msg.id, port }, server, () => server.close());
  });
});
process.on('disconnect', () => process.exit(0));
// /proc/net/dev lists the interfaces of this process's own namespace.
const interfaces = fs
  .readFileSync('/proc/net/dev', 'utf8')
  .split('\n')
  .slice(2)
  .map((line) => line.split(':')[0].trim())
  .filter(Boolean);
process.send({ type: 'ready', interfaces });
