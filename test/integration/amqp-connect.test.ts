/**
 * A broker that accepts the TCP connection and never answers the AMQP
 * handshake (one starting up, or wedged) makes a connection attempt fail
 * after its timeout, so every role's reconnect loop (and its shutdown)
 * goes on instead of waiting for ever. A real socket on loopback plays it.
 */
import t from 'tap';
import { createServer, type Socket } from 'node:net';
import { connectAmqp } from '../../src/platform/messaging/amqp.js';

t.test('a handshake that never comes fails the attempt after the timeout', async (t) => {
  const sockets: Socket[] = [];
  const silent = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const { port } = silent.address() as { port: number };
  await t.rejects(connectAmqp(`amqp://guest:guest@127.0.0.1:${port}`, 'test', 300), 'the attempt fails');
  t.equal(sockets.length, 1, 'it had reached the socket');
});
