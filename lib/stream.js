'use strict';

// createWebSocketStream: a Duplex over a WebSocket, with backpressure both ways.

const { Duplex } = require('stream');

function emitClose(stream) {
  stream.emit('close');
}

function onEnd() {
  if (!this.destroyed && this._writableState.finished) this.destroy();
}

function onError(err) {
  this.removeListener('error', onError);
  this.destroy();
  if (this.listenerCount('error') === 0) this.emit('error', err);
}

/**
 * @param {WebSocket} ws The WebSocket to wrap
 * @param {Object} [options] Duplex options
 * @return {Duplex}
 */
function createWebSocketStream(ws, options) {
  let terminateOnDestroy = true;

  const duplex = new Duplex({
    ...options,
    autoDestroy: false,
    emitClose: false,
    objectMode: false,
    writableObjectMode: false
  });

  ws.on('message', (msg, isBinary) => {
    const data = !isBinary && duplex._readableState.objectMode ? msg.toString() : msg;
    if (!duplex.push(data)) ws.pause();
  });

  ws.once('error', (err) => {
    if (duplex.destroyed) return;
    terminateOnDestroy = false;
    duplex.destroy(err);
  });

  ws.once('close', () => {
    if (duplex.destroyed) return;
    duplex.push(null);
  });

  duplex._destroy = (err, callback) => {
    if (ws.readyState === ws.CLOSED) {
      callback(err);
      process.nextTick(emitClose, duplex);
      return;
    }
    let called = false;
    ws.once('error', (e) => {
      called = true;
      callback(e);
    });
    ws.once('close', () => {
      if (!called) callback(err);
      process.nextTick(emitClose, duplex);
    });
    if (terminateOnDestroy) ws.terminate();
  };

  duplex._final = (callback) => {
    if (ws.readyState === ws.CONNECTING) {
      ws.once('open', () => duplex._final(callback));
      return;
    }
    const socket = ws._socket;
    if (socket === null) return;
    if (socket._writableState.finished) {
      callback();
      if (duplex._readableState.endEmitted) duplex.destroy();
    } else {
      socket.once('finish', () => callback());
      ws.close();
    }
  };

  duplex._read = () => {
    if (ws.isPaused) ws.resume();
  };

  duplex._write = (chunk, encoding, callback) => {
    if (ws.readyState === ws.CONNECTING) {
      ws.once('open', () => duplex._write(chunk, encoding, callback));
      return;
    }
    // Backpressure (beyond ws): a write is done at once while the send
    // buffer is below its high-water mark, else once it is written out. An
    // error after an early callback destroys the stream with it.
    let done = false;
    const below = ws.send(chunk, (err) => {
      if (!done) {
        done = true;
        callback(err);
      } else if (err && !duplex.destroyed) {
        duplex.destroy(err);
      }
    });
    if (below && !done) {
      done = true;
      callback();
    }
  };

  duplex.on('end', onEnd);
  duplex.on('error', onError);
  return duplex;
}

module.exports = createWebSocketStream;
