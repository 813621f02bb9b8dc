'use strict';

// A server for bench/backplane.js: a `{ port }` WebSocketServer attached to
// Redis (REDIS_PORT) through ws-native/redis and node-redis. Every
// connection subscribes to 'bench'. Answers the parent over IPC:
//   { cmd: 'publish', n, size } -> publishes n binary messages of `size`
//                                  bytes, then { done: true }
//   { cmd: 'cpu' }              -> { cpu: user + system µs so far }

const path = require('path');
const { once } = require('events');
const { createClient } = require('redis');

const { WebSocketServer } = require(path.join(__dirname, '..'));
const { createRedisBackplane } = require(path.join(__dirname, '..', 'redis'));

process.on('disconnect', () => process.exit(0));

async function main() {
  const publisher = createClient({ socket: { host: '127.0.0.1', port: Number(process.env.REDIS_PORT) } });
  await publisher.connect();
  const subscriber = publisher.duplicate();
  await subscriber.connect();
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('error', (err) => console.error(err.message, err.cause));
  await once(wss, 'listening');
  await createRedisBackplane(wss, { publisher, subscriber }).ready;
  wss.on('connection', (ws) => ws.subscribe('bench'));

  process.on('message', async (m) => {
    if (m.cmd === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send({ cpu: user + system });
    } else if (m.cmd === 'publish') {
      const data = Buffer.alloc(m.size, 7);
      // In rounds, so the Redis client writes while the next round is made.
      for (let sent = 0; sent < m.n; ) {
        for (const end = Math.min(m.n, sent + 500); sent < end; sent++) wss.publish('bench', data);
        await new Promise((resolve) => setImmediate(resolve));
      }
      await publisher.ping();
      process.send({ done: true });
    }
  });
  process.send({ port: wss.address().port });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
