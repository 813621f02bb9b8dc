'use strict';

// A panic inside the protocol core (injected by a test hook) stays inside
// its connection: that one gets an 'error' (WS_NATIVE_ERR_INTERNAL) and is
// closed with 1011, the process and the server's other connections go on.
// On both transports: TCP (native engine) and TLS (stream transport).

const assert = require('assert');
const { describe } = require('node:test');
const { once } = require('events');

const binding = require('../lib/binding');
const WebSocket = require('..');
const { describeError, it, startServer, serverUrl, track } = require('./helpers');

function closed(ws) {
  return new Promise((resolve) => (ws.readyState === 3 ? resolve() : ws.on('close', (code) => resolve(code))));
}

describe('a panic in the core closes only its connection', () => {
  it('the hook arms only with WS_NATIVE_TEST_HOOKS=1', () => {
    delete process.env.WS_NATIVE_TEST_HOOKS;
    assert.strictEqual(binding.injectPanic(), false);
    process.env.WS_NATIVE_TEST_HOOKS = '1';
  });

  for (const tls of [false, true]) {
    it(tls ? 'TLS (stream transport)' : 'TCP (native engine)', async () => {
      const wss = track(await startServer('native', {}, { tls }));
      const log = [];
      const servers = [];
      wss.on('connection', (ws) => {
        servers.push(ws);
        ws.on('message', (data) => {
          log.push(['server message', String(data)]);
          ws.send(data);
        });
        ws.on('error', (err) => log.push(['server error', ...describeError(err)]));
        ws.on('close', (code) => (ws.closeCode = code));
      });
      const options = { rejectUnauthorized: false };

      const victim = track(new WebSocket(serverUrl(wss), options));
      const bystander = track(new WebSocket(serverUrl(wss), options));
      await Promise.all([once(victim, 'open'), once(bystander, 'open')]);
      const victimClosed = closed(victim);
      assert.strictEqual(binding.injectPanic(), true);
      victim.send('boom');
      const victimCode = await victimClosed;
      await closed(servers[0]);
      log.push(['closed: victim, server side', victimCode, servers[0].closeCode]);

      bystander.send('still here');
      const [echo] = await once(bystander, 'message');
      log.push(['bystander echo', String(echo)]);

      const late = track(new WebSocket(serverUrl(wss), options));
      await once(late, 'open');
      late.send('a new connection');
      const [reply] = await once(late, 'message');
      log.push(['new connection echo', String(reply)]);

      assert.deepStrictEqual(log, [
        ['server error', 'Error', 'ws-native internal error', 'WS_NATIVE_ERR_INTERNAL', 1011],
        ['closed: victim, server side', 1011, 1006],
        ['server message', 'still here'],
        ['bystander echo', 'still here'],
        ['server message', 'a new connection'],
        ['new connection echo', 'a new connection']
      ]);
    });
  }
});
