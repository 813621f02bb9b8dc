'use strict';

// A throwaway Debian redis-server for the backplane tests: on 127.0.0.1 at
// a free port, without persistence, started and killed by the test (and
// killed with the test's scope, through helpers.track, if it fails).

const fs = require('fs');
const net = require('net');
const os = require('os');
const { spawn } = require('child_process');
const { once } = require('events');

const { track } = require('./helpers');

const REDIS_SERVER = '/usr/bin/redis-server';

/** Why the Redis tests cannot run here, or false. CI installs redis-server. */
const skip =
  !fs.existsSync(REDIS_SERVER) && !process.env.CI
    ? `${REDIS_SERVER} is missing (apt-get install redis-server); this test is skipped outside CI only`
    : false;

/** A port nothing listens on now: the kernel's pick for port 0. */
async function freePort() {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once Redis at `port` answers PING; rejects if it does not. */
function ping(port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (!reply.includes('\r\n')) return;
      socket.destroy();
      if (reply.startsWith('+PONG')) resolve();
      else reject(new Error(`redis-server answered ${JSON.stringify(reply)}`));
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('redis-server closed the connection')));
  });
}

class RedisServer {
  constructor(port) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.child = null;
  }

  /** Starts redis-server; resolves once it answers PING. */
  async start() {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    const child = track(spawn(REDIS_SERVER, args, { cwd: os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] }));
    this.child = child;
    let log = '';
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Each line redis-server logs at startup is a moment to try again; the
    // last ("Ready to accept connections") comes once it listens.
    let output = null;
    const onOutput = (chunk) => {
      log += chunk;
      if (output) output();
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    child.once('error', (err) => {
      log += String(err);
    });
    for (;;) {
      const next = new Promise((resolve) => (output = resolve));
      try {
        await ping(this.port);
        return this;
      } catch {
        // Not listening yet: wait for its next line, or its end.
      }
      const code = await Promise.race([next, exited.then((c) => ({ exit: c }))]);
      if (code && typeof code === 'object') {
        throw new Error(`redis-server exited (${code.exit}) before it answered PING:\n${log}`);
      }
    }
  }

  /** Kills redis-server with `signal`; resolves once it has exited. */
  async stop(signal = 'SIGKILL') {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  }
}

/** A started redis-server at a free port. */
async function startRedis() {
  return new RedisServer(await freePort()).start();
}

module.exports = { skip, freePort, startRedis, RedisServer };
