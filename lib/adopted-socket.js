'use strict';

// After the engine adopts a socket's fd, the net.Socket the application
// holds (`req.socket`, the `socket` of 'upgrade' and handleUpgrade(),
// `ws._socket`) stays the connection. Node keeps its handle (on the same fd,
// which the engine polls) open but never reads from it again, and closes it
// once the engine has let go; the stream methods that would touch the fd go
// to the engine instead, so that raw writes queue behind the frames already sent,
// end() half-closes after them and destroy() closes both. Everything else
// (addresses, setKeepAlive, setNoDelay, setTimeout, ref/unref, its events)
// is Node's own.
//
// The socket gets one own property (its transport) and a prototype shared by
// every adopted socket of its class, which overrides those methods; so an
// idle connection pays for no closures.

const kTransport = Symbol('ws-native transport');
const protos = new WeakMap();

function noop() {}

/** A method as Object.create's descriptors want it (like a class's). */
function method(value) {
  return { value, writable: true, configurable: true };
}

/** A chunk as the engine takes it: a string in UTF-8, or bytes. */
function bytesOf(chunk, encoding) {
  if (typeof chunk !== 'string' || encoding === 'utf8' || encoding === 'utf-8') return chunk;
  return Buffer.from(chunk, encoding);
}

/** The prototype of adopted sockets whose class prototype is `base`. */
function adoptedProto(base) {
  let proto = protos.get(base);
  if (proto) return proto;
  proto = Object.create(base, {
    _read: method(noop),
    // Each write is queued at once, behind what the WebSocket sent before
    // it, so raw writes and frames go out in the order they were made.
    _write: method(function (chunk, encoding, cb) {
      const tr = this[kTransport];
      cb(tr.write(bytesOf(chunk, encoding)) ? undefined : tr.writeError());
    }),
    _writev: method(function (chunks, cb) {
      const tr = this[kTransport];
      let ok = true;
      for (let i = 0; i < chunks.length && ok; i++) ok = tr.write(bytesOf(chunks[i].chunk, chunks[i].encoding));
      cb(ok ? undefined : tr.writeError());
    }),
    _final: method(function (cb) {
      this[kTransport].final(cb);
    }),
    _destroy: method(function (err, cb) {
      this[kTransport].detach();
      base._destroy.call(this, err, cb);
    }),
    pause: method(function () {
      this[kTransport].setPaused(true);
      return base.pause.call(this);
    }),
    resume: method(function () {
      this[kTransport].setPaused(false);
      return base.resume.call(this);
    }),
    setTimeout: method(function (msecs, callback) {
      this[kTransport].timed = msecs > 0;
      return base.setTimeout.call(this, msecs, callback);
    }),
    bytesRead: {
      configurable: true,
      get() {
        return this[kTransport].counter(0);
      }
    },
    bytesWritten: {
      configurable: true,
      get() {
        return this[kTransport].counter(1);
      }
    }
  });
  protos.set(base, proto);
  return proto;
}

/**
 * Routes `socket`'s I/O to the engine's connection behind `tr`. Call after
 * the last bytes Node had read were taken from it. `tr.counter(i)` adds
 * the counts Node's handle had at this point.
 */
function keepLive(socket, tr) {
  const handle = socket._handle;
  tr.base = [handle.bytesRead || 0, handle.bytesWritten || 0];
  if (handle.reading) {
    handle.readStop();
    handle.reading = false;
  }
  const base = Object.getPrototypeOf(socket);
  socket[kTransport] = tr;
  Object.setPrototypeOf(socket, adoptedProto(base));
  // Flowing, so that the peer's FIN (pushed by the engine) emits 'end'.
  base.resume.call(socket);
}

module.exports = { keepLive };
