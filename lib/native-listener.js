'use strict';

// The listener of a `{ port }` WebSocketServer, in the engine: it accepts
// connections and reads their upgrade requests natively, so a connection
// costs no net.Socket and no trip through Node's HTTP parser. JS gets each
// request as a real http.IncomingMessage; its `socket` (and the
// WebSocket's `_socket`) is a net.Socket made the first time it is asked
// for. Whatever is not a plain upgrade request (a plain HTTP request, a
// request that is incomplete after its first read, malformed or too big)
// goes to a Node HTTP server made as ws makes its internal one, with the
// bytes read so far, so those answers are Node's own.
//
// WS_NATIVE_LISTENER=0 in the environment leaves `{ port }` servers on
// Node's HTTP server, as do cluster workers (their listen() goes through
// the primary).

const dns = require('dns');
const http = require('http');
const net = require('net');
const { getSystemErrorMap } = require('util');

const { abortResponse, upgradeRequired } = require('./http-responses');
const { setRawHeaders } = require('./request-headers');
const nativeTransport = require('./native-transport');

const { engineDestroy, errnoError, getEngine, goneSocket, handshakes, listeners, socketOver } = nativeTransport;

/** Whether a `{ port }` server with these options can listen natively. */
function usable(options) {
  if (process.env.WS_NATIVE_LISTENER === '0') return false;
  // A cluster worker's listen() shares its primary's socket: Node's to do.
  if (require('cluster').isWorker) return false;
  const port = typeof options.port === 'string' && /^[0-9]+$/.test(options.port) ? Number(options.port) : options.port;
  // Anything else (a pipe path, a bad port) is for Node's listen() to
  // take or refuse.
  if (!Number.isInteger(port) || port < 0 || port > 65535) return false;
  if (options.backlog != null && !Number.isInteger(options.backlog)) return false;
  return options.host == null || typeof options.host === 'string';
}

function listen(wss, options, callback) {
  return new NativeListener(wss, options, callback);
}

/** The error Node's listen() gives for `errno`. */
function listenError(errno, syscall, address, port) {
  const [, description] = getSystemErrorMap().get(-errno) || [];
  const err = errnoError(errno, syscall, `: ${description} ${address}:${port}`);
  err.address = address;
  err.port = port;
  return err;
}

/** A net.Socket that owns `fd` and reads it: the engine has let go of it. */
function socketOwning(fd) {
  return new net.Socket({ fd, readable: true, writable: true });
}

class NativeListener {
  constructor(wss, options, callback) {
    this.wss = wss;
    this.id = 0;
    this.addr = null;
    this.closed = false;
    this.drained = false;
    this.onClosed = null;
    /** Sockets handed to Node's HTTP server, until they close. */
    this.handed = 0;
    this.sweeper = null;
    // The server ws would make (wss._server): Node's answers for what the
    // engine hands over, and the emitter of 'listening' and 'error', which
    // the WebSocketServer forwards, as it does its internal server's.
    this.http = upgradeRequired();
    let headersTimeout = this.http.headersTimeout;
    Object.defineProperty(this.http, 'headersTimeout', {
      configurable: true,
      enumerable: true,
      get: () => headersTimeout,
      set: (value) => {
        headersTimeout = value;
        if (this.id) this.sweep();
      }
    });
    // Asked of it as of ws's internal server: this listener's answers.
    this.http.address = () => this.address();
    this.http.getConnections = (cb) => {
        const native = this.id && !this.drained ? getEngine().listenerConnections(this.id) : 0;
        process.nextTick(cb, null, native + this.handed);
        return this.http;
      };
    if (callback) this.http.once('listening', callback);
    const port = Number(options.port);
    const host = options.host;
    if (host == null || net.isIP(host)) {
      this.start(host || '', port, options.backlog);
    } else {
      dns.lookup(host, (err, ip) => {
        if (err) this.http.emit('error', err);
        else this.start(ip, port, options.backlog);
      });
    }
  }

  start(ip, port, backlog) {
    if (this.closed) return;
    const r = getEngine().listen(ip, port, backlog == null ? 511 : backlog);
    if (r[0] !== 'ok') {
      const err = listenError(Number(r[1]), r[2], ip || '::', port);
      this.drained = true;
      process.nextTick(() => this.http.emit('error', err));
      return;
    }
    this.id = Number(r[1]);
    this.addr = { address: r[2], family: r[3], port: Number(r[4]) };
    listeners.set(this.id, this);
    this.sweep();
    process.nextTick(() => {
      if (!this.closed) this.http.emit('listening');
    });
  }

  /**
   * Node's headersTimeout (wss._server.headersTimeout, 60 s by default) for
   * requests the engine is still reading, checked as often as Node's
   * connectionsCheckingInterval (30 s), or twice per timeout when shorter.
   */
  sweep() {
    clearTimeout(this.sweeper);
    const timeout = this.http.headersTimeout;
    if (!(timeout > 0) || this.drained) return;
    this.sweeper = setTimeout(() => {
      getEngine().sweep(this.id, timeout);
      this.sweep();
    }, Math.max(50, Math.min(30000, timeout / 2))).unref();
  }

  address() {
    return this.closed ? null : this.addr;
  }

  /** Stops listening; `cb` runs once every connection it took is gone. */
  close(cb) {
    this.onClosed = cb;
    if (this.closed) return;
    this.closed = true;
    if (this.id) getEngine().closeListener(this.id);
    else this.drained = true;
    this.maybeClosed();
  }

  onDrained() {
    listeners.delete(this.id);
    clearTimeout(this.sweeper);
    this.drained = true;
    this.maybeClosed();
  }

  maybeClosed() {
    if (!this.drained || this.handed > 0 || this.onClosed === null) return;
    const cb = this.onClosed;
    this.onClosed = null;
    process.nextTick(cb);
  }

  /** An upgrade request: `text` is method, URL, then names and values, NUL between. */
  onRequest(id, text) {
    const parts = text.split('\0');
    const req = new NativeRequest();
    const channel = new NativeChannel(this, id, req);
    handshakes.set(id, channel);
    req.method = parts[0];
    req.url = parts[1];
    req.httpVersionMajor = 1;
    req.httpVersionMinor = 1;
    req.httpVersion = '1.1';
    req.upgrade = true;
    setRawHeaders(req, parts.slice(2));
    req[kChannel] = channel;
    this.wss._handshake(req, channel, this.wss._emitConnection);
  }

  /** A connection for Node's HTTP server, with the bytes it sent so far. */
  onHandoff(fd, bytes) {
    const socket = socketOwning(fd);
    this.track(socket);
    if (bytes.length) socket.unshift(bytes);
    this.http.emit('connection', socket);
  }

  track(socket) {
    this.handed++;
    socket.once('close', () => {
      this.handed--;
      this.maybeClosed();
    });
  }
}

const kChannel = Symbol('ws-native channel');

/**
 * `req.socket` of a native listener's request: the channel's socket, made
 * when first asked for; until the application sets one of its own. The
 * same two functions for every request: an accessor pair of its own would
 * give each request a hidden class of its own, which V8 keeps in old space
 * with the closures and so the whole request alive through every young
 * collection until a full one (40% of what a handshake allocated survived).
 */
const SOCKET = {
  configurable: true,
  enumerable: true,
  get() {
    return this[kChannel].socket();
  },
  set(value) {
    Object.defineProperty(this, 'socket', { value, writable: true, configurable: true, enumerable: true });
  }
};

/**
 * A native listener's request: an http.IncomingMessage (its `constructor`
 * too) whose own `socket` is the accessor above. IncomingMessage's
 * constructor assigns `socket` itself; turning that data property into an
 * accessor afterwards put every request in dictionary mode (4% of a
 * handshake's CPU, and slow property loads after it), so the prototype
 * here swallows that assignment and the accessor is added as a new property.
 */
class NativeRequest extends http.IncomingMessage {
  constructor() {
    super(null);
    this[kChannel] = null;
    Object.defineProperty(this, 'socket', SOCKET);
  }
}
Object.defineProperties(NativeRequest.prototype, {
  socket: { configurable: true, set() {} },
  constructor: { value: http.IncomingMessage, writable: true, configurable: true }
});

/** A handshake on a connection the engine holds (websocket-server.js's channel). */
class NativeChannel {
  constructor(listener, id, req) {
    this.listener = listener;
    this.id = id;
    this.req = req;
    /** The connection closed before the handshake ended. */
    this.gone = false;
    this.sock = null;
    this.ws = null;
  }

  /** `req.socket`: a net.Socket over the connection, made when first asked for. */
  socket() {
    if (this.ws !== null) return this.ws._socket;
    if (this.sock === null) this.sock = (!this.gone && socketOver(this.id)) || goneSocket(false);
    return this.sock;
  }

  secure() {
    return false;
  }

  reject(code, message, headers) {
    this.done();
    getEngine().refuse(this.id, Buffer.from(abortResponse(code, message, headers)));
  }

  /** The connection as a socket of the application's own (`wsClientError`). */
  own() {
    this.done();
    const handed = getEngine().handOver(this.id);
    let socket = this.sock;
    if (socket !== null) {
      // The socket asked for already (over the same fd) is the one the
      // application knows; it reads from now on.
      socket.resume();
    } else {
      socket = handed ? socketOwning(handed.fd) : goneSocket(false);
    }
    if (handed && handed.rest.length) socket.unshift(handed.rest);
    this.listener.track(socket);
    // From now on req.socket is this socket, as under ws.
    this.sock = socket;
    this.gone = true;
    return socket;
  }

  usable() {
    return !this.gone;
  }

  destroy() {
    this.done();
    engineDestroy(this.id);
  }

  taken() {
    return false;
  }

  start(ws, response, options) {
    handshakes.delete(this.id);
    this.ws = ws;
    const config = ws._config(options);
    const upgraded = getEngine().upgrade(this.id, response, config.limits, config.deflate);
    const socket = this.sock;
    ws._setTransport((w) => {
      const tr = nativeTransport.attachUpgraded(this.id, w, socket);
      // Gone between the check and the upgrade: closed as a socket that
      // went away would be.
      if (!upgraded) tr._closed(0);
      return tr;
    });
  }

  /**
   * The handshake is over: the engine's close is the transport's now. A
   * socket asked for waits for the engine's close, which lets go of its fd.
   */
  done() {
    if (this.sock === null) handshakes.delete(this.id);
  }
}

module.exports = { listen, usable };
