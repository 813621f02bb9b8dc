'use strict';

// WebSocketServer: the server side of the opening handshake on Node's own
// http server, with ws's options, checks, status codes and events.

const EventEmitter = require('events');

const extension = require('./extension');
const { abortResponse, acceptKey, upgradeRequired } = require('./http-responses');
const nativeListener = require('./native-listener');
const { getEngine } = require('./native-transport');
const PerMessageDeflate = require('./permessage-deflate');
const subprotocol = require('./subprotocol');
const WebSocket = require('./websocket');
const { handshakeHeaders } = require('./request-headers');
const { CLOSE_TIMEOUT, kServer, kWebSocket, MAX_PENDING_AUTO_PONGS } = require('./constants');
const { sendMarks } = require('./backpressure');
const { Topics, message } = require('./topics');

const KEY = /^[+/0-9A-Za-z]{22}==$/;
/** The protocols of a request that offers none: never handed to user code. */
const NO_PROTOCOLS = new Set();
const RUNNING = 0;
const CLOSING = 1;
const CLOSED = 2;

class WebSocketServer extends EventEmitter {
  /**
   * @param {Object} options ws's server options
   * @param {Function} [callback] A listener for the `listening` event
   */
  constructor(options, callback) {
    super();

    options = {
      allowSynchronousEvents: true,
      autoPong: true,
      maxBufferedChunks: 256 * 1024,
      maxFragments: 16 * 1024,
      maxPayload: 100 * 1024 * 1024,
      maxPendingAutoPongs: MAX_PENDING_AUTO_PONGS,
      skipUTF8Validation: false,
      perMessageDeflate: false,
      handleProtocols: null,
      clientTracking: true,
      closeTimeout: CLOSE_TIMEOUT,
      verifyClient: null,
      noServer: false,
      backlog: null,
      server: null,
      host: null,
      path: null,
      port: null,
      WebSocket,
      ...options
    };

    const modes = [options.port != null, !!options.server, !!options.noServer];
    if (modes.filter(Boolean).length !== 1) {
      throw new TypeError(
        'One and only one of the "port", "server", or "noServer" options must be specified'
      );
    }

    this._emitConnection = this.emit.bind(this, 'connection');
    this._listener = null;
    if (options.port != null && nativeListener.usable(options)) {
      this._listener = nativeListener.listen(this, options, callback);
      this._server = this._listener.http;
    } else if (options.port != null) {
      this._server = upgradeRequired();
      this._server.listen(options.port, options.host, options.backlog, callback);
    } else if (options.server) {
      this._server = options.server;
    }
    // The engine (and its fds) now, while fds are to be had: connections
    // come when the process may have run out of them.
    getEngine();

    if (this._server) {
      const emitConnection = this._emitConnection;
      const listeners = {
        listening: this.emit.bind(this, 'listening'),
        error: this.emit.bind(this, 'error'),
        upgrade: (req, socket, head) => this.handleUpgrade(req, socket, head, emitConnection)
      };
      for (const [event, fn] of Object.entries(listeners)) this._server.on(event, fn);
      this._removeListeners = () => {
        for (const [event, fn] of Object.entries(listeners)) this._server.removeListener(event, fn);
      };
    }

    if (options.perMessageDeflate === true) options.perMessageDeflate = {};
    if (options.clientTracking) {
      this.clients = new Set();
      this._shouldEmitClose = false;
    }

    sendMarks(options, true);
    this._topics = new Topics();
    /** A backplane (ws-native/redis) that takes publishes to other servers. */
    this._backplane = null;

    this.options = options;
    this._state = RUNNING;
  }

  /**
   * Sends a message to every subscriber of `topic` (WebSocket#subscribe),
   * framed once for all (beyond ws). Returns how many got it here; with a
   * backplane, the other servers' subscribers get it too.
   * @param {String} topic
   * @param {*} data As for `send()`, but not a Blob
   * @param {Object} [options] binary, compress, and `except`: a WebSocket to pass by
   * @return {Number}
   */
  publish(topic, data, options) {
    if (typeof topic !== 'string') throw new TypeError('The topic must be a string');
    const msg = message(data, options);
    const count = this._topics.publish(topic, msg);
    if (this._backplane !== null) this._backplane.publish(topic, msg.payload, msg.binary, msg.compress);
    return count;
  }

  /** A publish to this server's subscribers only (a backplane delivers with it). */
  _publishLocal(topic, data, options) {
    return this._topics.publish(topic, message(data, options));
  }

  /**
   * Sends a message to every open client (beyond ws): `clients.forEach(send)`
   * with the frame made once. Needs clientTracking. Returns the count.
   */
  broadcast(data, options) {
    return this._topics.broadcast(this.clients, message(data, options));
  }

  address() {
    if (this.options.noServer) {
      throw new Error('The server is operating in "noServer" mode');
    }
    if (this._listener) return this._listener.address();
    if (!this._server) return null;
    return this._server.address();
  }

  /**
   * Stops accepting connections. Open connections are left alone (ws 8).
   */
  close(cb) {
    if (this._state === CLOSED) {
      if (cb) this.once('close', () => cb(new Error('The server is not running')));
      process.nextTick(emitClose, this);
      return;
    }
    if (cb) this.once('close', cb);
    if (this._state === CLOSING) return;
    this._state = CLOSING;

    const server = this._server;
    if (server) {
      this._removeListeners();
      this._removeListeners = this._server = null;
    }

    if (this._listener) {
      // As the internal server's close(): once its connections are gone.
      this._listener.close(() => emitClose(this));
    } else if (this.options.noServer || this.options.server) {
      if (this.clients && this.clients.size) this._shouldEmitClose = true;
      else process.nextTick(emitClose, this);
    } else {
      // The internal server's close() waits for its connections, upgraded
      // ones included (their sockets stay open, see adopted-socket.js).
      server.close(() => emitClose(this));
    }
  }

  shouldHandle(req) {
    if (this.options.path) {
      const q = req.url.indexOf('?');
      const pathname = q !== -1 ? req.url.slice(0, q) : req.url;
      if (pathname !== this.options.path) return false;
    }
    return true;
  }

  handleUpgrade(req, socket, head, cb) {
    socket.on('error', socketOnError);
    this._handshake(req, new SocketChannel(socket, head), cb);
  }

  /**
   * The server side of the opening handshake, on a channel: a socket
   * (`SocketChannel`), or a connection a native listener holds
   * (native-listener.js).
   */
  _handshake(req, socket, cb) {
    const headers = handshakeHeaders(req);
    const key = headers['sec-websocket-key'];
    const upgrade = headers.upgrade;
    const version = +headers['sec-websocket-version'];

    if (req.method !== 'GET') {
      return rejectOrReport(this, req, socket, 405, 'Invalid HTTP method');
    }
    if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') {
      return rejectOrReport(this, req, socket, 400, 'Invalid Upgrade header');
    }
    if (key === undefined || !KEY.test(key)) {
      return rejectOrReport(this, req, socket, 400, 'Missing or invalid Sec-WebSocket-Key header');
    }
    if (version !== 13 && version !== 8) {
      return rejectOrReport(this, req, socket, 400, 'Missing or invalid Sec-WebSocket-Version header', {
        'Sec-WebSocket-Version': '13, 8'
      });
    }
    if (!this.shouldHandle(req)) {
      socket.reject(400);
      return;
    }

    let protocols = NO_PROTOCOLS;
    const protocolHeader = headers['sec-websocket-protocol'];
    if (protocolHeader !== undefined) {
      try {
        protocols = subprotocol.parse(protocolHeader);
      } catch {
        return rejectOrReport(this, req, socket, 400, 'Invalid Sec-WebSocket-Protocol header');
      }
    }

    const extensions = {};
    const extensionHeader = headers['sec-websocket-extensions'];
    if (this.options.perMessageDeflate && extensionHeader !== undefined) {
      const pmd = new PerMessageDeflate({
        ...this.options.perMessageDeflate,
        isServer: true,
        maxPayload: this.options.maxPayload
      });
      try {
        const offers = extension.parse(extensionHeader);
        if (offers[PerMessageDeflate.extensionName]) {
          pmd.accept(offers[PerMessageDeflate.extensionName]);
          extensions[PerMessageDeflate.extensionName] = pmd;
        }
      } catch {
        return rejectOrReport(this, req, socket, 400, 'Invalid or unacceptable Sec-WebSocket-Extensions header');
      }
    }

    const verify = this.options.verifyClient;
    if (verify) {
      const info = {
        origin: headers[version === 8 ? 'sec-websocket-origin' : 'origin'],
        secure: socket.secure(),
        req
      };
      if (verify.length === 2) {
        verify(info, (verified, code, message, headers) => {
          if (!verified) return socket.reject(code || 401, message, headers);
          this._complete(extensions, key, protocols, req, socket, cb);
        });
        return;
      }
      if (!verify(info)) return socket.reject(401);
    }

    this._complete(extensions, key, protocols, req, socket, cb);
  }

  /**
   * The 101 response, after 'headers' listeners changed its lines as they
   * wished. With none (and EventEmitter's own emit()), the text is made
   * without the array.
   */
  _response(accept, protocol, offer, req) {
    if (this.emit === EventEmitter.prototype.emit && this.listenerCount('headers') === 0) {
      return (
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
        (protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
        (offer ? `Sec-WebSocket-Extensions: ${offer}\r\n` : '') +
        '\r\n'
      );
    }
    const headers = responseLines(accept, protocol, offer);
    this.emit('headers', headers, req);
    return headers.join('\r\n') + '\r\n\r\n';
  }

  completeUpgrade(extensions, key, protocols, req, socket, head, cb) {
    this._complete(extensions, key, protocols, req, new SocketChannel(socket, head), cb);
  }

  _complete(extensions, key, protocols, req, socket, cb) {
    if (!socket.usable()) return socket.destroy();
    if (socket.taken()) {
      throw new Error(
        'server.handleUpgrade() was called more than once with the same ' +
          'socket, possibly due to a misconfiguration'
      );
    }
    if (this._state > RUNNING) return socket.reject(503);

    const accept = acceptKey(key);
    const ws = new this.options.WebSocket(null, undefined, this.options);

    let protocol;
    if (protocols.size) {
      protocol = this.options.handleProtocols
        ? this.options.handleProtocols(protocols, req)
        : protocols.values().next().value;
      if (protocol) ws._protocol = protocol;
    }

    const pmd = extensions[PerMessageDeflate.extensionName];
    let offer;
    if (pmd) {
      offer = extension.format({ [PerMessageDeflate.extensionName]: [pmd.params] });
      ws._extensions = extensions;
    }

    const response = Buffer.from(this._response(accept, protocol, offer, req), 'latin1');
    socket.start(ws, response, {
      allowSynchronousEvents: this.options.allowSynchronousEvents,
      maxBufferedChunks: this.options.maxBufferedChunks,
      maxFragments: this.options.maxFragments,
      maxPayload: this.options.maxPayload,
      skipUTF8Validation: this.options.skipUTF8Validation
    });

    ws[kServer] = this;
    if (this.clients) {
      this.clients.add(ws);
      // One function for every client, not a closure each (idle memory).
      ws.on('close', clientClosed);
    }
    this._topics.connected(ws);

    cb(ws, req);
  }
}

/** The lines of a 101 response (ws's 'headers' event gets them). */
function responseLines(accept, protocol, offer) {
  const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${accept}`];
  if (protocol) lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
  if (offer) lines.push(`Sec-WebSocket-Extensions: ${offer}`);
  return lines;
}

/** A tracked client closed (`this` is it). */
function clientClosed() {
  const server = this[kServer];
  server.clients.delete(this);
  if (server._shouldEmitClose && !server.clients.size) process.nextTick(emitClose, server);
}

function emitClose(server) {
  server._state = CLOSED;
  server.emit('close');
}

function socketOnError() {
  this.destroy();
}

/** With a `wsClientError` listener the listener owns the socket; else abort. */
function rejectOrReport(server, req, socket, code, message, headers) {
  if (server.listenerCount('wsClientError')) {
    const err = new Error(message);
    Error.captureStackTrace(err, rejectOrReport);
    server.emit('wsClientError', err, socket.own(), req);
  } else {
    socket.reject(code, message, headers);
  }
}

/** A handshake on a socket Node's http server gave ('upgrade', handleUpgrade). */
class SocketChannel {
  constructor(socket, head) {
    this.socket = socket;
    this.head = head;
  }

  secure() {
    return !!(this.socket.authorized || this.socket.encrypted);
  }

  /** Writes an HTTP error response and closes the socket. */
  reject(code, message, headers) {
    const socket = this.socket;
    socket.once('finish', socket.destroy);
    socket.end(abortResponse(code, message, headers));
  }

  /** The socket, for a `wsClientError` listener. */
  own() {
    return this.socket;
  }

  usable() {
    return this.socket.readable && this.socket.writable;
  }

  destroy() {
    this.socket.destroy();
  }

  taken() {
    return !!this.socket[kWebSocket];
  }

  start(ws, response, options) {
    const socket = this.socket;
    socket.removeListener('error', socketOnError);
    socket[kWebSocket] = ws;
    ws.setSocket(socket, this.head, options, response);
  }
}

module.exports = WebSocketServer;
