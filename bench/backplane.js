'use strict';

// The cost of a publish across servers (issue 10, README "Scale-out"): a
// real redis-server, two ws-native servers in processes of their own
// (bench/backplane-server.js) attached to it, and subscribers on each. Server
// A publishes; every subscriber on A and on B must get every message. Prints
// publishes/s end to end and the CPU each process spent per publish.
//
//   node bench/backplane.js [--subscribers N] [--messages N] [--size BYTES]

const fs = require('fs');
const os = require('os');
const path = require('path');
const { fork } = require('child_process');
const { once } = require('events');

// ws-native's client: the receiving side of the bench must not be what limits it.
const WebSocket = require('..');
const { startRedis } = require('../__test__/redis-server');

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const SUBSCRIBERS = arg('--subscribers', 100);
const MESSAGES = arg('--messages', 20000);
const SIZE = arg('--size', 32);
const TICK_US = 1e6 / 100;

function procCpuUs(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

function ask(child, msg, key) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (key in m) {
        child.removeListener('message', on);
        resolve(m[key]);
      }
    };
    child.on('message', on);
    if (msg) child.send(msg);
  });
}

async function main() {
  const redis = await startRedis();
  const servers = [];
  const clients = [];
  try {
    for (let i = 0; i < 2; i++) {
      const child = fork(path.join(__dirname, 'backplane-server.js'), { env: { ...process.env, REDIS_PORT: String(redis.port) } });
      servers.push({ child, port: await ask(child, null, 'port') });
    }
    let left = SUBSCRIBERS * 2 * MESSAGES;
    let allIn;
    const done = new Promise((resolve) => (allIn = resolve));
    for (const { port } of servers) {
      for (let i = 0; i < SUBSCRIBERS; i++) {
        const c = new WebSocket(`ws://127.0.0.1:${port}`);
        await once(c, 'open');
        c.on('message', () => --left === 0 && allIn());
        clients.push(c);
      }
    }
    // Subscribed once a message published now comes back everywhere.
    const cpu = async () => [await ask(servers[0].child, { cmd: 'cpu' }, 'cpu'), await ask(servers[1].child, { cmd: 'cpu' }, 'cpu'), procCpuUs(redis.child.pid)];
    const before = await cpu();
    const start = process.hrtime.bigint();
    servers[0].child.send({ cmd: 'publish', n: MESSAGES, size: SIZE });
    await done;
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    const after = await cpu();
    const per = after.map((v, i) => (v - before[i]) / MESSAGES);
    console.log(`${os.cpus().length} x ${os.cpus()[0].model.trim()}, Node ${process.version}, redis-server ${redis.child.spawnfile}`);
    console.log(`${MESSAGES} publishes of ${SIZE} B from server A; ${SUBSCRIBERS} subscribers on A and ${SUBSCRIBERS} on B`);
    console.log(`end to end: ${Math.round(MESSAGES / secs).toLocaleString('en-US')} publishes/s, ${Math.round((MESSAGES * SUBSCRIBERS * 2) / secs).toLocaleString('en-US')} deliveries/s`);
    console.log(`CPU per publish: server A (publishes, delivers ${SUBSCRIBERS}) ${per[0].toFixed(1)} us; server B (receives, delivers ${SUBSCRIBERS}) ${per[1].toFixed(1)} us; redis-server ${per[2].toFixed(1)} us`);
  } finally {
    for (const c of clients) c.terminate();
    for (const { child } of servers) child.kill();
    await redis.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
