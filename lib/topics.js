'use strict';

// Publish/subscribe on a WebSocketServer (beyond ws, in the shape Bun's
// ServerWebSocket made familiar): `ws.subscribe(topic)`, `wss.publish(topic,
// data)`, `wss.broadcast(data)`. Connections on the native engine are
// members of the engine's own topic, and a publish frames the message once
// and queues the same bytes to each of them without JS work per recipient
// (src/engine/topics.rs). Connections on the stream transport (TLS, any
// Duplex) get the message through their own transport, one by one.

const { publishNative, topicJoin, topicLeave } = require('./native-transport');
const { toBuffer } = require('./buffer-util');
const { EMPTY_BUFFER } = require('./constants');
const { isBlob } = require('./validation');

const OPEN = 1;

/** Engine topic ids; one sequence for every server of the process. */
let nextId = 1;

class Topic {
  constructor(name) {
    this.name = name;
    this.id = nextId++;
    /** Members on the native engine (the engine knows which). */
    this.native = 0;
    /** Members on the stream transport. */
    this.stream = new Set();
  }

  get size() {
    return this.native + this.stream.size;
  }
}

class Topics {
  constructor() {
    this.byName = new Map();
    /** Every client of the server, once `broadcast()` was first called. */
    this.everyone = null;
  }

  subscribe(ws, name) {
    let topic = this.byName.get(name);
    if (topic === undefined) {
      topic = new Topic(name);
      this.byName.set(name, topic);
    }
    this.join(ws, topic);
  }

  unsubscribe(ws, name) {
    const topic = this.byName.get(name);
    if (topic === undefined || ws._topics === null || !ws._topics.has(topic)) return;
    this.leave(ws, topic);
  }

  join(ws, topic) {
    if (ws._topics === null) ws._topics = new Set();
    else if (ws._topics.has(topic)) return;
    ws._topics.add(topic);
    const id = nativeId(ws);
    if (id >= 0) {
      topicJoin(id, topic.id);
      topic.native++;
    } else {
      topic.stream.add(ws);
    }
  }

  leave(ws, topic) {
    ws._topics.delete(topic);
    if (!topic.stream.delete(ws)) {
      topic.native--;
      const id = nativeId(ws);
      if (id >= 0) topicLeave(id, topic.id);
    }
    if (topic.size === 0 && topic !== this.everyone) this.byName.delete(topic.name);
  }

  /** A member closed: it leaves every topic (the engine has let go already). */
  leaveAll(ws) {
    for (const topic of ws._topics) this.leave(ws, topic);
    ws._topics = null;
  }

  /** Sends `msg` (from `message()`) to the subscribers of `name`; returns how many. */
  publish(name, msg) {
    const topic = this.byName.get(name);
    return topic === undefined ? 0 : deliver(topic, msg);
  }

  broadcast(clients, msg) {
    if (this.everyone === null) {
      if (!clients) throw new Error('broadcast() needs the clientTracking option');
      this.everyone = new Topic('');
      for (const ws of clients) if (ws.readyState === OPEN) this.join(ws, this.everyone);
    }
    return deliver(this.everyone, msg);
  }

  /** A new connection of the server: a member of `everyone` once there is one. */
  connected(ws) {
    if (this.everyone !== null) this.join(ws, this.everyone);
  }
}

/** The engine's id of `ws`'s connection, or -1 when it is not on the engine. */
function nativeId(ws) {
  const tr = ws._transport;
  return tr !== null && tr.native === true && !tr.closed ? tr.id : -1;
}

/** The payload and flags of a publish, checked as `send()` checks its own. */
function message(data, options) {
  if (typeof data === 'number') data = data.toString();
  if (isBlob(data)) throw new TypeError('publish() takes a string, a Buffer, an ArrayBuffer or a view, not a Blob');
  const payload = !data ? EMPTY_BUFFER : typeof data === 'string' ? data : toBuffer(data);
  const opts = options || {};
  const binary = opts.binary === undefined ? typeof data !== 'string' : !!opts.binary;
  const compress = opts.compress === undefined ? true : !!opts.compress;
  const except = opts.except === undefined ? null : opts.except;
  return { payload, binary, compress, except };
}

function deliver(topic, { payload, binary, compress, except }) {
  let count = 0;
  if (topic.native > 0) {
    const skip = except === null ? -1 : nativeId(except);
    count += publishNative(topic.id, payload, binary, compress, skip);
  }
  for (const ws of topic.stream) {
    if (ws === except || ws.readyState !== OPEN) continue;
    ws._publishOne(payload, binary, compress);
    count++;
  }
  return count;
}

module.exports = { Topics, message };
