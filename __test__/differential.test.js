'use strict';

// The same conversations over every pairing of ws and ws-native; each side's
// events, arguments and order must equal what ws with ws gives.

const assert = require('assert');
const crypto = require('crypto');
const { describe } = require('node:test');

const { assertSameAsWs: sameAsWs, it } = require('./helpers');

/** The server echoes; the client sends `messages` then closes after the echoes. */
function echo(messages, { closeCode = 1000, closeReason = 'done', sendOptions } = {}) {
  return {
    server(ws) {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    },
    client(ws) {
      let left = messages.length;
      ws.on('open', () => {
        for (const m of messages) ws.send(m, sendOptions);
      });
      ws.on('message', () => {
        if (--left === 0) ws.close(closeCode, closeReason);
      });
    }
  };
}

for (const tls of [false, true]) describe(`differential over ${tls ? 'TLS (stream transport)' : 'TCP (native engine)'}`, () => {
  const assertSameAsWs = (assert, script, options = {}) => sameAsWs(assert, script, { ...options, tls });

  it('echoes text messages', async () => {
    await assertSameAsWs(assert, echo(['hello', 'héllo wörld €', '', 'x'.repeat(200)]));
  });

  it('echoes binary messages of every length form', async () => {
    const sizes = [0, 1, 125, 126, 127, 65535, 65536, 100000];
    await assertSameAsWs(assert, echo(sizes.map((n) => crypto.randomBytes(n))));
  });

  it('echoes typed arrays, ArrayBuffers and numbers', async () => {
    await assertSameAsWs(
      assert,
      echo([new Uint16Array([1, 2, 3]), new Float64Array([1.5]).buffer, 42, new DataView(new ArrayBuffer(3))])
    );
  });

  it('sends falsy data as ws does', async () => {
    await assertSameAsWs(assert, {
      server(ws) {
        ws.send(false);
        ws.send(0);
        ws.ping(false);
        ws.send(null);
        ws.send('');
        ws.close();
      }
    });
  });

  it("send()'s options: absent, empty, a callback only, and keys set to undefined override their defaults", async () => {
    await assertSameAsWs(assert, {
      server(ws) {
        const abc = () => Buffer.from('abc');
        ws.send(abc());
        ws.send(abc(), {});
        ws.send(abc(), { binary: undefined });
        ws.send('text', { binary: true });
        ws.send(abc(), () => {});
        ws.send('first half, ', { fin: undefined });
        ws.send('second half');
        ws.send(abc(), { compress: undefined, mask: undefined });
        ws.close();
      }
    });
  });

  it('echoes a 16 MiB message', async () => {
    await assertSameAsWs(assert, echo([crypto.randomBytes(16 * 1024 * 1024)]));
  });

  it('assembles fragmented sends into one message', async () => {
    await assertSameAsWs(assert, {
      server(ws) {
        ws.on('message', (data, isBinary) => {
          ws.send(data, { binary: isBinary, fin: false });
          ws.send(Buffer.from('!'), { fin: true });
        });
      },
      client(ws) {
        ws.on('open', () => {
          ws.send('frag', { fin: false });
          ws.send('ment', { fin: false });
          ws.send('ed', { fin: true });
        });
        ws.on('message', () => ws.close());
      }
    });
  });

  it('compresses with permessage-deflate', async () => {
    const json = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ i, name: `item ${i}` })) });
    await assertSameAsWs(assert, echo([json, 'small', Buffer.alloc(5000, 7), '']), {
      serverOptions: { perMessageDeflate: true }
    });
  });

  it('compresses a burst of messages, some fragmented, that arrives in few reads', async () => {
    // Inflated and assembled messages are kept apart from the bytes read
    // (src/engine/batch.rs, pending); a burst makes batches both small
    // enough to share the pool and too big to.
    const json = (i) => JSON.stringify(Array.from({ length: 20 + (i % 50) * 3 }, (_, k) => ({ k, i, name: `item ${k * i}` })));
    await assertSameAsWs(assert, {
      server(ws) {
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
      },
      client(ws) {
        const n = 300;
        let left = n;
        ws.on('open', () => {
          for (let i = 0; i < n; i++) {
            if (i % 7 === 3) {
              ws.send(json(i), { fin: false });
              ws.send(`-${i}`, { fin: true });
            } else {
              ws.send(i % 5 === 0 ? Buffer.from(json(i)) : json(i));
            }
          }
        });
        ws.on('message', () => {
          if (--left === 0) ws.close();
        });
      }
    }, { serverOptions: { perMessageDeflate: true } });
  });

  it('compresses with no context takeover and a threshold', async () => {
    const pmd = { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 10, serverMaxWindowBits: 10 };
    await assertSameAsWs(assert, echo(['a'.repeat(500), 'tiny', 'b'.repeat(3000)]), {
      serverOptions: { perMessageDeflate: pmd },
      clientOptions: { perMessageDeflate: pmd }
    });
  });

  it('pings and pongs both ways, with automatic pongs', async () => {
    await assertSameAsWs(assert, {
      server(ws) {
        ws.ping('from server');
        ws.on('pong', () => ws.ping(Buffer.from([1, 2, 3])));
        ws.on('message', () => ws.close(4000, 'enough'));
      },
      client(ws) {
        let pings = 0;
        ws.on('ping', () => {
          if (++pings === 2) {
            ws.ping('from client');
          }
        });
        ws.on('pong', () => ws.send('done'));
      }
    });
  });

  it('closes from the server with a code and a reason', async () => {
    await assertSameAsWs(assert, {
      server(ws) {
        ws.close(1001, 'going away');
      }
    });
  });

  it('closes with no code', async () => {
    await assertSameAsWs(assert, {
      client(ws) {
        ws.on('open', () => ws.close());
      }
    });
  });

  it('reports 1006 when the peer terminates', async () => {
    await assertSameAsWs(assert, {
      server(ws) {
        ws.on('message', () => ws.terminate());
      },
      client(ws) {
        ws.on('open', () => ws.send('bye'));
      }
    });
  });

  it('negotiates a subprotocol', async () => {
    await assertSameAsWs(
      assert,
      {
        protocols: ['chat', 'superchat'],
        server(ws) {
          ws.close();
        }
      },
      { serverOptions: { handleProtocols: (set) => (set.has('superchat') ? 'superchat' : false) } }
    );
  });

  it('delivers arraybuffer and fragments binary types', async () => {
    for (const binaryType of ['arraybuffer', 'fragments', 'blob']) {
      await assertSameAsWs(assert, {
        server(ws) {
          ws.send(Buffer.from('binary'));
          ws.send('text');
        },
        client(ws) {
          ws.binaryType = binaryType;
          let n = 0;
          ws.on('message', () => {
            if (++n === 2) ws.close();
          });
        }
      });
    }
  });

  it('defers each message with allowSynchronousEvents: false', async () => {
    await assertSameAsWs(
      assert,
      {
        server(ws) {
          ws.send('a');
          ws.ping('p');
          ws.send('b');
          ws.close(1000, 'x');
        },
        client(ws) {
          const order = [];
          ws.on('message', (d) => {
            order.push(`message ${d} state ${ws.readyState}`);
            Promise.resolve().then(() => order.push('microtask'));
            if (String(d) === 'b') ws.on('close', () => ws.emit('order', order));
          });
          ws.on('order', (o) => ws.emit('message', Buffer.from(o.join(',')), false));
        }
      },
      { clientOptions: { allowSynchronousEvents: false } }
    );
  });

  it('writes frames pre-encoded with Sender.frame(), as socket.io broadcasts do', async () => {
    await assertSameAsWs(assert, {
      server(ws) {
        const { Sender } = ws.constructor;
        const frame = Sender.frame(Buffer.from('4["news",1]'), { readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true });
        ws._sender.sendFrame(frame, (err) => {
          ws._sender.sendFrame(Sender.frame(Buffer.alloc(70000, 1), { readOnly: true, mask: false, opcode: 2, fin: true }));
          ws.send(`callback ${err}`);
        });
      },
      client(ws) {
        let n = 0;
        ws.on('message', () => ++n === 3 && ws.close());
      }
    });
  });

  it('calls send callbacks after the data is written', async () => {
    await assertSameAsWs(assert, {
      server(ws) {
        const order = [];
        ws.send('one', (err) => order.push(['one', err]));
        ws.send('two', (err) => {
          order.push(['two', err]);
          ws.send(JSON.stringify(order));
        });
      },
      client(ws) {
        let n = 0;
        ws.on('message', () => {
          if (++n === 3) ws.close();
        });
      }
    });
  });

  it('sends from a message listener: bufferedAmount after each, callbacks in order, with pings, fragments and a large frame between', async () => {
    await assertSameAsWs(assert, {
      server(ws) {
        const order = [];
        const note = (...entry) => order.push(entry);
        ws.on('message', (data) => {
          const n = String(data);
          if (n === 'report') return ws.send(JSON.stringify(order));
          const at = ws.bufferedAmount;
          ws.send(`a${n}`, (err) => note('a', n, String(err), ws.bufferedAmount));
          note('after a', n, ws.bufferedAmount - at);
          ws.ping(n);
          ws.send('frag', { fin: false });
          ws.send('ment', { fin: true }, (err) => note('fragment', n, String(err)));
          note('after fragment', n, ws.bufferedAmount - at);
          if (n === '2') ws.send(Buffer.alloc(20000, 7), (err) => note('large', n, String(err), ws.bufferedAmount));
          ws.send(`b${n}`, (err) => note('b', n, String(err), ws.bufferedAmount));
          note('after b', n, ws.bufferedAmount - at);
        });
      },
      client(ws) {
        let n = 0;
        ws.on('open', () => ws.send('1'));
        ws.on('message', (data) => {
          n++;
          if (n === 3) ws.send('2');
          else if (n === 7) {
            // Three at once: most often one chunk for the server.
            ws.send('3');
            ws.send('4');
            ws.send('5');
          } else if (n === 16) ws.send('report');
          else if (n === 17) ws.close(1000, String(data).length > 0 ? 'done' : 'empty');
        });
      }
    });
  });
});
