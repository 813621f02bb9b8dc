'use strict';

// Re-entrant listeners: send, close and terminate from inside message,
// close and error listeners, and a listener that removes the others. Every
// pairing of ws and ws-native, over TCP (native engine) and TLS (stream
// transport), must log what ws with ws logs.

const assert = require('assert');
const { describe } = require('node:test');

const { assertSameAsWs, it } = require('./helpers');

/** Logs a send's callback outcome into the side's event log. */
function note(ws, what) {
  return (err) => ws.emit('ping', Buffer.from(`${what}: ${err ? err.message : 'ok'}`));
}

const scripts = {
  'send then close inside a message listener, send after the close': {
    server(ws) {
      ws.on('message', (data) => {
        ws.send(`echo ${data}`, note(ws, 'send'));
        ws.close(4000, 'from the listener');
        ws.send('after close', note(ws, 'late send'));
      });
    },
    client(ws) {
      ws.on('open', () => ws.send('hi'));
    }
  },
  'terminate inside a message listener, then send and close': {
    server(ws) {
      ws.on('message', () => {
        ws.terminate();
        ws.send('after terminate', note(ws, 'send'));
        ws.close(4001);
      });
    },
    client(ws) {
      ws.on('open', () => ws.send('hi'));
    }
  },
  'close and send inside a close listener': {
    server(ws) {
      ws.on('close', () => {
        ws.close(4002);
        ws.send('from close', note(ws, 'send in close'));
      });
    },
    client(ws) {
      ws.on('open', () => ws.close(1000, 'bye'));
    }
  },
  'send and close inside an error listener': {
    server(ws) {
      ws.on('error', () => {
        ws.send('from error', note(ws, 'send in error'));
        ws.close(4003);
      });
    },
    client(ws) {
      // A frame with RSV2 set: the server fails with WS_ERR_UNEXPECTED_RSV_2_3.
      ws.on('open', () => ws._socket.write(Buffer.from([0xa1, 0x81, 1, 2, 3, 4, 0])));
    }
  },
  'a message listener that removes the other listeners': {
    server(ws) {
      ws.on('message', () => {
        ws.removeAllListeners('message');
        ws.on('message', (data) => {
          ws.send(`second: ${data}`);
          if (String(data) === 'three') ws.close(1000);
        });
      });
      ws.on('message', (data) => ws.send(`later listener: ${data}`));
    },
    client(ws) {
      ws.on('open', () => {
        ws.send('one');
        ws.send('two');
        ws.send('three');
      });
    }
  },
  'messages sent from inside pong and ping listeners': {
    server(ws) {
      ws.on('ping', (data) => {
        if (String(data) === 'p') ws.send('pinged', note(ws, 'send in ping'));
      });
      ws.on('message', () => ws.ping('s'));
      ws.on('pong', () => ws.close(1000));
    },
    client(ws) {
      ws.on('open', () => {
        ws.ping('p');
        ws.send('go');
      });
    }
  }
};

for (const tls of [false, true]) {
  describe(`re-entrant listeners over ${tls ? 'TLS' : 'TCP'}`, () => {
    for (const [name, script] of Object.entries(scripts)) {
      it(name, async () => {
        await assertSameAsWs(assert, script, { tls });
      });
    }
  });
}
