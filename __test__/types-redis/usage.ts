// Compiles against redis.d.ts with clients of both libraries.
import { WebSocketServer } from 'ws-native';
import { createRedisBackplane } from 'ws-native/redis';
import { createClient } from 'redis';
import Redis from 'ioredis';

async function nodeRedis(wss: WebSocketServer): Promise<void> {
  const publisher = await createClient({ url: 'redis://127.0.0.1:6379' }).connect();
  const subscriber = await publisher.duplicate().connect();
  const bp = createRedisBackplane(wss, { publisher, subscriber });
  await bp.ready;
  await bp.close();
}

async function ioredis(wss: WebSocketServer): Promise<void> {
  const publisher = new Redis(6379, '127.0.0.1');
  const subscriber = publisher.duplicate();
  const bp = createRedisBackplane(wss, { publisher, subscriber, channelPrefix: 'app:' });
  await bp.ready;
  const done: Promise<void> = bp.close();
  await done;
  // @ts-expect-error: the subscriber is required
  createRedisBackplane(wss, { publisher });
  // @ts-expect-error: not a client
  createRedisBackplane(wss, { publisher, subscriber: {} });
}

const wss = new WebSocketServer({ port: 0 });
wss.on('error', (err: Error) => void err.cause);
void nodeRedis(wss);
void ioredis(wss);
