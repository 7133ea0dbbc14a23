// A loopback TCP port that nothing listens on now (the OS's pick for port 0), for the servers
// the Node test scripts start. Another process may take it before the caller binds it; the
// callers retry or fail clearly.

import { createServer } from 'node:net';

export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}
