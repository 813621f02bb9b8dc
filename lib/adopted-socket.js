'use strict';

// After the engine adopts a socket's fd, the net.Socket the application
// holds (`req.socket`, the `socket` of 'upgrade' and handleUpgrade(),
// `ws._socket`) stays the connection. Node keeps its handle open but never
// reads from it again; the stream methods that would touch the fd go to the
// engine instead, so that raw writes queue behind the frames already sent,
// end() half-closes after them and destroy() closes both. Everything else
// (addresses, setKeepAlive, setNoDelay, setTimeout, ref/unref, its events)
// is Node's own.

function noop() {}

/** A chunk as the engine takes it: a string in UTF-8, or bytes. */
function bytesOf(chunk, encoding) {
  if (typeof chunk !== 'string' || encoding === 'utf8' || encoding === 'utf-8') return chunk;
  return Buffer.from(chunk, encoding);
}

/**
 * Routes `socket`'s I/O to the engine's connection behind `tr`. Call after
 * the last bytes Node had read were taken from it.
 */
function keepLive(socket, tr) {
  const handle = socket._handle;
  const proto = Object.getPrototypeOf(socket);
  const base = { read: handle.bytesRead || 0, written: handle.bytesWritten || 0 };
  handle.readStop();
  handle.reading = false;

  socket._read = noop;
  // Each write is queued at once, behind what the WebSocket sent before it,
  // so raw writes and frames go out in the order they were made.
  socket._write = function (chunk, encoding, cb) {
    cb(tr.write(bytesOf(chunk, encoding)) ? undefined : tr.writeError());
  };
  socket._writev = function (chunks, cb) {
    let ok = true;
    for (let i = 0; i < chunks.length && ok; i++) ok = tr.write(bytesOf(chunks[i].chunk, chunks[i].encoding));
    cb(ok ? undefined : tr.writeError());
  };
  socket._final = function (cb) {
    tr.final(cb);
  };
  socket._destroy = function (err, cb) {
    tr.detach();
    proto._destroy.call(this, err, cb);
  };
  socket.pause = function () {
    tr.setPaused(true);
    return proto.pause.call(this);
  };
  socket.resume = function () {
    tr.setPaused(false);
    return proto.resume.call(this);
  };
  socket.setTimeout = function (msecs, callback) {
    tr.timed = msecs > 0;
    return proto.setTimeout.call(this, msecs, callback);
  };
  Object.defineProperty(socket, 'bytesRead', {
    configurable: true,
    enumerable: false,
    get: () => base.read + tr.counter(0)
  });
  Object.defineProperty(socket, 'bytesWritten', {
    configurable: true,
    enumerable: false,
    get: () => base.written + tr.counter(1)
  });
  // Flowing, so that the peer's FIN (pushed by the engine) emits 'end'.
  proto.resume.call(socket);
}

module.exports = { keepLive };
