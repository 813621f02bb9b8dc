'use strict';

// The client side of the opening handshake, on Node's http/https request,
// with ws's options, URL rules, redirects and error messages.

const http = require('http');
const https = require('https');
const net = require('net');
const tls = require('tls');
const { randomBytes } = require('crypto');
const { unescape } = require('querystring');
const { URL } = require('url');

const PerMessageDeflate = require('./permessage-deflate');
const { format, parse } = require('./extension');
const { CLOSE_TIMEOUT, MAX_PENDING_AUTO_PONGS } = require('./constants');
const { acceptKey } = require('./http-responses');

const kAborted = Symbol('kAborted');
const PROTOCOL_VERSIONS = [8, 13];
const SUBPROTOCOL = /^[!#$%&'*+\-.0-9A-Z^_`|a-z~]+$/;
const CLOSING = 2;

/** Sorts out ws's `(address, protocols, options)` overloads. */
function normalizeArgs(protocols, options) {
  const fromOptions = (opts) => {
    if (!opts || opts.protocols === undefined) return [];
    return Array.isArray(opts.protocols) ? opts.protocols : [opts.protocols];
  };
  if (protocols === undefined) return { protocols: fromOptions(options), options };
  if (Array.isArray(protocols)) return { protocols, options };
  if (typeof protocols === 'object' && protocols !== null) {
    return { protocols: fromOptions(protocols), options: protocols };
  }
  return { protocols: [protocols], options };
}

function defaults(options) {
  return {
    allowSynchronousEvents: true,
    autoPong: true,
    closeTimeout: CLOSE_TIMEOUT,
    protocolVersion: 13,
    maxBufferedChunks: 256 * 1024,
    maxFragments: 16 * 1024,
    maxPayload: 100 * 1024 * 1024,
    maxPendingAutoPongs: MAX_PENDING_AUTO_PONGS,
    skipUTF8Validation: false,
    perMessageDeflate: true,
    followRedirects: false,
    maxRedirects: 10,
    ...options,
    socketPath: undefined,
    hostname: undefined,
    protocol: undefined,
    protocols: undefined,
    timeout: undefined,
    method: 'GET',
    host: undefined,
    path: undefined,
    port: undefined
  };
}

function parseUrl(address) {
  if (address instanceof URL) return address;
  try {
    return new URL(address);
  } catch {
    throw new SyntaxError(`Invalid URL: ${address}`);
  }
}

function urlProblem(url, isIpc) {
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:' && !isIpc) {
    return 'The URL\'s protocol must be one of "ws:", "wss:", "http:", "https:", or "ws+unix:"';
  }
  if (isIpc && !url.pathname) return "The URL's pathname is empty";
  if (url.hash) return 'The URL contains a fragment identifier';
  return null;
}

function initAsClient(websocket, address, protocols, options) {
  const opts = defaults(options);

  if (!PROTOCOL_VERSIONS.includes(opts.protocolVersion)) {
    throw new RangeError(
      `Unsupported protocol version: ${opts.protocolVersion} ` +
        `(supported versions: ${PROTOCOL_VERSIONS.join(', ')})`
    );
  }

  let url = parseUrl(address);
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    url = new URL(url);
    url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  }
  websocket._url = url.href;

  const isSecure = url.protocol === 'wss:';
  const isIpc = url.protocol === 'ws+unix:';
  const problem = urlProblem(url, isIpc);
  if (problem) {
    const err = new SyntaxError(problem);
    if (websocket._redirects === 0) throw err;
    emitErrorAndClose(websocket, err);
    return;
  }

  const defaultPort = isSecure ? 443 : 80;
  const key = randomBytes(16).toString('base64');
  const request = isSecure ? https.request : http.request;
  const protocolSet = new Set();
  let perMessageDeflate;

  opts.createConnection = opts.createConnection || (isSecure ? tlsConnect : netConnect);
  opts.defaultPort = opts.defaultPort || defaultPort;
  opts.port = url.port || defaultPort;
  opts.host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  opts.headers = {
    ...opts.headers,
    'Sec-WebSocket-Version': opts.protocolVersion,
    'Sec-WebSocket-Key': key,
    Connection: 'Upgrade',
    Upgrade: 'websocket'
  };
  opts.path = url.pathname + url.search;
  opts.timeout = opts.handshakeTimeout;

  if (opts.perMessageDeflate) {
    perMessageDeflate = new PerMessageDeflate({
      ...opts.perMessageDeflate,
      isServer: false,
      maxPayload: opts.maxPayload
    });
    opts.headers['Sec-WebSocket-Extensions'] = format({
      [PerMessageDeflate.extensionName]: perMessageDeflate.offer()
    });
  }
  if (protocols.length) {
    for (const p of protocols) {
      if (typeof p !== 'string' || !SUBPROTOCOL.test(p) || protocolSet.has(p)) {
        throw new SyntaxError('An invalid or duplicated subprotocol was specified');
      }
      protocolSet.add(p);
    }
    opts.headers['Sec-WebSocket-Protocol'] = protocols.join(',');
  }
  if (opts.origin) {
    if (opts.protocolVersion < 13) opts.headers['Sec-WebSocket-Origin'] = opts.origin;
    else opts.headers.Origin = opts.origin;
  }
  if (url.username || url.password) {
    opts.auth = `${decodeURIComponentSafe(url.username)}:${decodeURIComponentSafe(url.password)}`;
  }
  if (isIpc) {
    const i = opts.path.indexOf(':');
    opts.socketPath = i === -1 ? opts.path : opts.path.slice(0, i);
    opts.path = i === -1 ? '' : opts.path.slice(i + 1);
  }

  let req;
  if (opts.followRedirects) {
    if (websocket._redirects === 0) {
      websocket._originalIpc = isIpc;
      websocket._originalSecure = isSecure;
      websocket._originalHostOrSocketPath = isIpc ? opts.socketPath : url.host;
      const headers = options && options.headers;
      options = { ...options, headers: {} };
      if (headers) {
        for (const [k, v] of Object.entries(headers)) options.headers[k.toLowerCase()] = v;
      }
    } else if (websocket.listenerCount('redirect') === 0) {
      const sameHost = isIpc
        ? websocket._originalIpc && opts.socketPath === websocket._originalHostOrSocketPath
        : !websocket._originalIpc && url.host === websocket._originalHostOrSocketPath;
      if (!sameHost || (websocket._originalSecure && !isSecure)) {
        delete opts.headers.authorization;
        delete opts.headers.cookie;
        if (!sameHost) delete opts.headers.host;
        opts.auth = undefined;
      }
    }
    if (opts.auth && !options.headers.authorization) {
      options.headers.authorization = 'Basic ' + Buffer.from(opts.auth).toString('base64');
    }
    req = websocket._req = request(opts);
    if (websocket._redirects) websocket.emit('redirect', websocket.url, req);
  } else {
    req = websocket._req = request(opts);
  }

  if (opts.timeout) {
    req.on('timeout', () => abortHandshake(websocket, req, 'Opening handshake has timed out'));
  }

  req.on('error', (err) => {
    if (req === null || req[kAborted]) return;
    req = websocket._req = null;
    emitErrorAndClose(websocket, err);
  });

  req.on('response', (res) => {
    const location = res.headers.location;
    const status = res.statusCode;
    if (location && opts.followRedirects && status >= 300 && status < 400) {
      if (++websocket._redirects > opts.maxRedirects) {
        abortHandshake(websocket, req, 'Maximum redirects exceeded');
        return;
      }
      req.abort();
      let next;
      try {
        next = new URL(location, address);
      } catch {
        emitErrorAndClose(websocket, new SyntaxError(`Invalid URL: ${location}`));
        return;
      }
      initAsClient(websocket, next, protocols, options);
    } else if (!websocket.emit('unexpected-response', req, res)) {
      abortHandshake(websocket, req, `Unexpected server response: ${res.statusCode}`);
    }
  });

  req.on('upgrade', (res, socket, head) => {
    websocket.emit('upgrade', res);
    if (websocket.readyState !== 0) return;
    req = websocket._req = null;

    const problem = checkResponse(res, key, protocolSet, perMessageDeflate, websocket);
    if (problem) {
      abortHandshake(websocket, socket, problem);
      return;
    }
    websocket.setSocket(socket, head, {
      allowSynchronousEvents: opts.allowSynchronousEvents,
      generateMask: opts.generateMask,
      maxBufferedChunks: opts.maxBufferedChunks,
      maxFragments: opts.maxFragments,
      maxPayload: opts.maxPayload,
      skipUTF8Validation: opts.skipUTF8Validation
    });
  });

  if (opts.finishRequest) opts.finishRequest(req, websocket);
  else req.end();

  return opts;
}

function decodeURIComponentSafe(s) {
  return unescape(s);
}

/** Checks the 101 response; returns ws's message for what is wrong, if anything. */
function checkResponse(res, key, protocolSet, perMessageDeflate, websocket) {
  const upgrade = res.headers.upgrade;
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket') {
    return 'Invalid Upgrade header';
  }
  if (res.headers['sec-websocket-accept'] !== acceptKey(key)) {
    return 'Invalid Sec-WebSocket-Accept header';
  }

  const serverProt = res.headers['sec-websocket-protocol'];
  if (serverProt !== undefined) {
    if (!protocolSet.size) return 'Server sent a subprotocol but none was requested';
    if (!protocolSet.has(serverProt)) return 'Server sent an invalid subprotocol';
  } else if (protocolSet.size) {
    return 'Server sent no subprotocol';
  }
  if (serverProt) websocket._protocol = serverProt;

  const header = res.headers['sec-websocket-extensions'];
  if (header === undefined) return null;
  if (!perMessageDeflate) {
    return 'Server sent a Sec-WebSocket-Extensions header but no extension was requested';
  }
  let extensions;
  try {
    extensions = parse(header);
  } catch {
    return 'Invalid Sec-WebSocket-Extensions header';
  }
  const names = Object.keys(extensions);
  if (names.length !== 1 || names[0] !== PerMessageDeflate.extensionName) {
    return 'Server indicated an extension that was not requested';
  }
  try {
    perMessageDeflate.accept(extensions[PerMessageDeflate.extensionName]);
  } catch {
    return 'Invalid Sec-WebSocket-Extensions header';
  }
  websocket._extensions = { [PerMessageDeflate.extensionName]: perMessageDeflate };
  return null;
}

function emitErrorAndClose(websocket, err) {
  websocket._readyState = CLOSING;
  websocket._errorEmitted = true;
  websocket.emit('error', err);
  websocket.emitClose();
}

function netConnect(options) {
  options.path = options.socketPath;
  return net.connect(options);
}

function tlsConnect(options) {
  options.path = undefined;
  if (!options.servername && options.servername !== '') {
    options.servername = net.isIP(options.host) ? '' : options.host;
  }
  return tls.connect(options);
}

/** Fails the handshake on `stream` (the request, or the upgraded socket). */
function abortHandshake(websocket, stream, message) {
  websocket._readyState = CLOSING;
  const err = new Error(message);
  Error.captureStackTrace(err, abortHandshake);

  if (stream.setHeader) {
    stream[kAborted] = true;
    stream.abort();
    if (stream.socket && !stream.socket.destroyed) stream.socket.destroy();
    process.nextTick(emitErrorAndClose, websocket, err);
  } else {
    stream.destroy(err);
    stream.once('error', websocket.emit.bind(websocket, 'error'));
    stream.once('close', websocket.emitClose.bind(websocket));
  }
}

module.exports = { abortHandshake, initAsClient, normalizeArgs };
