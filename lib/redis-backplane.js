'use strict';

// A Redis backplane for WebSocketServer#publish(): what one server
// publishes reaches the subscribers of every server attached to the same
// Redis. The user brings two connected clients, of node-redis (the `redis`
// package, v4 and later) or of ioredis: one to publish on, one for the
// subscription (a connection in subscriber mode cannot publish).
//
// Envelope. A topic travels on the Redis channel `channelPrefix + topic`;
// the message is
//
//   byte 0      flags: bit 0 binary, bit 1 compress, bit 2 batch; the other
//               bits are 0 (a message with any of them set is not ours and
//               is dropped)
//   bytes 1-16  the origin: random bytes drawn per backplane
//   bytes 17-   the payload, as given (a string as its UTF-8 bytes)
//
// Publishes made in one tick go out as one Redis message (a client library
// spends tens of microseconds of CPU per command, far more than a local
// delivery): a batch, on the channel `channelPrefix` itself, whose flags
// byte has only bit 2 set and whose body, after the origin, is its
// publishes in order, each
//
//   flags (1 byte: binary, compress), topic length (2, big-endian), topic
//   (UTF-8), payload length (4, big-endian), payload
//
// Every server PSUBSCRIBEs to `channelPrefix*` (one pattern, whatever the
// topics: each server gets every publish, its own included) and hands what
// it receives to wss._publishLocal(), except its own messages (its origin),
// which wss.publish() has delivered locally already. The one publisher
// connection sends in call order and Redis keeps that order towards each
// subscriber, so what a server publishes arrives everywhere in its order.
//
// Outages. The first connection error or loss, or failed PUBLISH, of an
// outage is emitted as an 'error' on the WebSocketServer (the client's
// error, if it gave one, as `cause`); nothing more is until the connections
// that failed are ready again. Both libraries reconnect by themselves and
// resubscribe (node-redis always; ioredis unless `autoResubscribe: false`,
// and then the backplane subscribes again). Local delivery never waits for
// Redis; what is published while Redis is away is queued or dropped as the
// publisher client's offline queue does, and other servers miss what Redis
// sends while their subscriber is away (Redis pub/sub keeps nothing).

const crypto = require('crypto');
const { isAnyArrayBuffer } = require('util').types;

const FLAG_BINARY = 0x01;
const FLAG_COMPRESS = 0x02;
const FLAG_BATCH = 0x04;
const ORIGIN_LENGTH = 16;
const HEADER_LENGTH = 1 + ORIGIN_LENGTH;
/** A batch goes out before the tick ends once it holds this many bytes. */
const BATCH_BYTES = 1 << 20;

const noop = () => {};

/** `text` as a Redis glob pattern that matches only itself. */
function globEscape(text) {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** A Buffer over the bytes of a Buffer, typed array, DataView or ArrayBuffer. */
function bytesOf(data) {
  if (Buffer.isBuffer(data)) return data;
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (isAnyArrayBuffer(data)) return Buffer.from(data);
  return Buffer.from(String(data));
}

/** The envelope of one message (see the top of this file). */
function envelope(origin, flags, payload) {
  const message = Buffer.allocUnsafe(HEADER_LENGTH + payload.length);
  message[0] = flags;
  origin.copy(message, 1);
  payload.copy(message, HEADER_LENGTH);
  return message;
}

/** The envelope of a batch: `queue` holds [topic (Buffer), payload, flags]. */
function batchEnvelope(origin, queue) {
  let size = HEADER_LENGTH;
  for (const [topic, payload] of queue) size += 7 + topic.length + payload.length;
  const message = Buffer.allocUnsafe(size);
  message[0] = FLAG_BATCH;
  origin.copy(message, 1);
  let at = HEADER_LENGTH;
  for (const [topic, payload, flags] of queue) {
    message[at] = flags;
    message.writeUInt16BE(topic.length, at + 1);
    topic.copy(message, at + 3);
    at += 3 + topic.length;
    message.writeUInt32BE(payload.length, at);
    payload.copy(message, at + 4);
    at += 4 + payload.length;
  }
  return message;
}

/** The publishes of a batch's body, or null when it is malformed. */
function unbatch(body) {
  const out = [];
  for (let at = 0; at < body.length; ) {
    if (at + 3 > body.length) return null;
    const flags = body[at];
    const topicEnd = at + 3 + body.readUInt16BE(at + 1);
    if (flags & ~(FLAG_BINARY | FLAG_COMPRESS) || topicEnd + 4 > body.length) return null;
    const end = topicEnd + 4 + body.readUInt32BE(topicEnd);
    if (end > body.length) return null;
    out.push([body.toString('utf8', at + 3, topicEnd), body.subarray(topicEnd + 4, end), flags]);
    at = end;
  }
  return out;
}

/** Which library `client` is from, by its methods; null if neither. */
function flavourOf(client) {
  if (client == null || typeof client.on !== 'function') return null;
  if (typeof client.pSubscribe === 'function' && 'isOpen' in client) return 'node-redis';
  if (typeof client.psubscribe === 'function') return 'ioredis';
  return null;
}

/** An error of the backplane; `cause` is the client's error, if it gave one. */
function backplaneError(message, cause) {
  if (cause === undefined) return new Error(`Redis backplane: ${message}`);
  return new Error(`Redis backplane: ${message}: ${cause && cause.message}`, { cause });
}

class RedisBackplane {
  constructor(wss, { publisher, subscriber, channelPrefix = 'ws-native:' } = {}) {
    if (typeof wss !== 'object' || wss === null || typeof wss._publishLocal !== 'function') {
      throw new TypeError('The first argument must be a ws-native WebSocketServer');
    }
    if (wss._backplane) throw new Error('The WebSocketServer already has a backplane');
    if (!flavourOf(publisher) || typeof publisher.publish !== 'function') {
      throw new TypeError('The "publisher" option must be a node-redis or ioredis client');
    }
    this.flavour = flavourOf(subscriber);
    if (!this.flavour) throw new TypeError('The "subscriber" option must be a node-redis or ioredis client');
    if (subscriber === publisher) {
      throw new TypeError('The "subscriber" option must be a connection of its own (e.g. publisher.duplicate())');
    }
    if (typeof channelPrefix !== 'string') throw new TypeError('The "channelPrefix" option must be a string');

    this.wss = wss;
    this.publisher = publisher;
    this.subscriber = subscriber;
    this.prefix = channelPrefix;
    this.prefixLength = Buffer.byteLength(channelPrefix);
    this.pattern = `${globEscape(channelPrefix)}*`;
    this.origin = crypto.randomBytes(ORIGIN_LENGTH);
    /** This tick's publishes, [topic, payload, flags] each, and their bytes. */
    this.queue = [];
    this.queued = 0;
    this.flush = () => this.send();
    this.closed = false;
    this.closing = null;
    /** The connections ('publisher', 'subscriber') that failed this outage. */
    this.down = new Set();

    this.onPublished = () => this.recovered('publisher');
    this.onPublishFailed = (err) => this.failed('publisher', backplaneError('publishing to Redis failed', err));
    // node-redis calls a buffer-mode listener with (message, channel);
    // ioredis emits 'pmessageBuffer' with (pattern, channel, message) for
    // every pattern of the connection.
    this.onMessage = (message, channel) => this.receive(message, channel);
    this.onPmessage = (pattern, channel, message) => {
      if (pattern === this.pattern) this.receive(message, channel);
    };
    this.onWssClose = () => this.close().catch(noop);
    this.listeners = [];
    for (const [role, client] of [['publisher', publisher], ['subscriber', subscriber]]) {
      this.listen(client, 'error', (err) => this.failed(role, backplaneError(`the ${role} connection to Redis failed`, err)));
      // ioredis loses a connection without an 'error' (node-redis emits
      // one first, so this adds nothing there).
      this.listen(client, 'reconnecting', () => this.failed(role, backplaneError(`the ${role} connection to Redis was lost`)));
      this.listen(client, 'ready', () => this.reconnected(role));
    }
    this.listen(wss, 'close', this.onWssClose);

    if (this.flavour === 'ioredis') subscriber.on('pmessageBuffer', this.onPmessage);
    this.ready = this.subscribe();
    // The promise is for whoever awaits it; not awaiting it is no crash.
    this.ready.catch(noop);
    wss._backplane = this;
  }

  listen(emitter, event, listener) {
    emitter.on(event, listener);
    this.listeners.push([emitter, event, listener]);
  }

  subscribe() {
    const p =
      this.flavour === 'node-redis'
        ? this.subscriber.pSubscribe(this.pattern, this.onMessage, true)
        : this.subscriber.psubscribe(this.pattern);
    return Promise.resolve(p).then(
      () => undefined,
      (err) => {
        throw backplaneError(`subscribing to ${this.pattern} failed`, err);
      }
    );
  }

  /** The hook of wss.publish(), after its local delivery. Never throws. */
  publish(topic, data, binary, compress) {
    if (this.closed) return;
    // Copied now: the caller may reuse its buffer once publish() returns.
    const payload = typeof data === 'string' ? Buffer.from(data) : Buffer.from(bytesOf(data));
    const name = Buffer.from(topic);
    this.queue.push([name, payload, (binary ? FLAG_BINARY : 0) | (compress ? FLAG_COMPRESS : 0)]);
    this.queued += payload.length + name.length;
    if (this.queue.length === 1) process.nextTick(this.flush);
    else if (this.queued >= BATCH_BYTES) this.send();
  }

  /** Sends this tick's publishes: one as it is, more as a batch. */
  send() {
    const queue = this.queue;
    if (queue.length === 0 || this.closed) return;
    this.queue = [];
    this.queued = 0;
    const [channel, message] =
      queue.length === 1
        ? [this.prefix + queue[0][0].toString(), envelope(this.origin, queue[0][2], queue[0][1])]
        : [this.prefix, batchEnvelope(this.origin, queue)];
    let sent;
    try {
      sent = this.publisher.publish(channel, message);
    } catch (err) {
      process.nextTick(this.onPublishFailed, err);
      return;
    }
    if (sent && typeof sent.then === 'function') sent.then(this.onPublished, this.onPublishFailed);
  }

  /** A message from the subscription: delivered locally unless it is ours. */
  receive(message, channel) {
    if (this.closed || !Buffer.isBuffer(message) || message.length < HEADER_LENGTH) return;
    const flags = message[0];
    if (flags & ~(FLAG_BINARY | FLAG_COMPRESS | FLAG_BATCH)) return;
    if (message.compare(this.origin, 0, ORIGIN_LENGTH, 1, HEADER_LENGTH) === 0) return;
    if (flags & FLAG_BATCH) {
      const publishes = flags === FLAG_BATCH ? unbatch(message.subarray(HEADER_LENGTH)) : null;
      if (publishes !== null) for (const [topic, payload, f] of publishes) this.deliver(topic, payload, f);
      return;
    }
    const topic = Buffer.isBuffer(channel) ? channel.toString('utf8', this.prefixLength) : String(channel).slice(this.prefix.length);
    this.deliver(topic, message.subarray(HEADER_LENGTH), flags);
  }

  deliver(topic, payload, flags) {
    // Text stays bytes too: it goes out as it came, without a decode.
    const options = { binary: (flags & FLAG_BINARY) !== 0, compress: (flags & FLAG_COMPRESS) !== 0 };
    try {
      this.wss._publishLocal(topic, payload, options);
    } catch (err) {
      // Thrown into the Redis client, this would break its parser.
      process.nextTick(() => this.wss.emit('error', backplaneError(`delivering a message on ${topic} failed`, err)));
    }
  }

  /** `role`'s connection failed: reported unless this outage already was. */
  failed(role, err) {
    if (this.closed) return;
    const first = this.down.size === 0;
    this.down.add(role);
    if (first) process.nextTick(() => this.closed || this.wss.emit('error', err));
  }

  /** `role`'s connection is (again) ready. */
  reconnected(role) {
    if (this.closed || !this.down.has(role)) return;
    if (role === 'subscriber' && this.flavour === 'ioredis' && this.subscriber.options && this.subscriber.options.autoResubscribe === false) {
      // This ioredis client forgets its subscriptions on reconnecting.
      this.subscribe().catch((err) => this.failed('subscriber', err));
    }
    this.recovered(role);
  }

  recovered(role) {
    this.down.delete(role);
  }

  /**
   * Detaches from the server and unsubscribes; the clients stay open (they
   * are the user's). Resolves once Redis has confirmed the unsubscription,
   * or at once if the subscriber is closed already.
   */
  close() {
    if (this.closing) return this.closing;
    // What was published before the close still goes.
    this.send();
    this.closed = true;
    if (this.wss._backplane === this) this.wss._backplane = null;
    for (const [emitter, event, listener] of this.listeners.splice(0)) emitter.removeListener(event, listener);
    const subscriber = this.subscriber;
    let open;
    let p;
    if (this.flavour === 'node-redis') {
      open = () => subscriber.isOpen;
      p = open() ? subscriber.pUnsubscribe(this.pattern, this.onMessage, true) : undefined;
    } else {
      subscriber.removeListener('pmessageBuffer', this.onPmessage);
      open = () => subscriber.status !== 'end';
      p = open() ? subscriber.punsubscribe(this.pattern) : undefined;
    }
    this.closing = Promise.resolve(p).then(noop, (err) => {
      // A client closed meanwhile has no subscription left to drop.
      if (open()) throw backplaneError(`unsubscribing from ${this.pattern} failed`, err);
    });
    return this.closing;
  }
}

/**
 * Attaches a Redis backplane to `wss`; see the top of this file. Returns
 * `{ ready, close() }`: `ready` resolves once the subscription is in place.
 */
function createRedisBackplane(wss, options) {
  return new RedisBackplane(wss, options);
}

module.exports = { createRedisBackplane };
