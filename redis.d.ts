// Type definitions for ws-native/redis: the Redis backplane of
// WebSocketServer#publish().

/// <reference types="node" />

import WebSocket = require('./index');

declare namespace RedisBackplane {
  /** What the backplane needs of any client: node-redis or ioredis. */
  interface RedisClientLike {
    publish(...args: any[]): unknown;
    on(event: string, listener: (...args: any[]) => void): unknown;
    removeListener(event: string, listener: (...args: any[]) => void): unknown;
  }

  /** A node-redis (`redis` package, v4 and later) client. */
  interface NodeRedisSubscriber extends RedisClientLike {
    readonly isOpen: boolean;
    pSubscribe(...args: any[]): unknown;
    pUnsubscribe(...args: any[]): unknown;
  }

  /** An ioredis client. */
  interface IORedisSubscriber extends RedisClientLike {
    psubscribe(...args: any[]): unknown;
    punsubscribe(...args: any[]): unknown;
  }

  interface Options {
    /** A connected client that publishes; it may also run other commands. */
    publisher: RedisClientLike;
    /**
     * A connected client of its own (e.g. `publisher.duplicate()`), which
     * the backplane puts in subscriber mode.
     */
    subscriber: NodeRedisSubscriber | IORedisSubscriber;
    /** Prefix of the Redis channels, one per topic. Default `'ws-native:'`. */
    channelPrefix?: string;
  }

  interface Backplane {
    /** Resolves once the subscription is in place; rejects if it fails. */
    readonly ready: Promise<void>;
    /**
     * Unsubscribes and detaches from the server; the clients stay open.
     * Also done when the server closes.
     */
    close(): Promise<void>;
  }
}

declare const RedisBackplane: {
  /**
   * Connects `wss.publish()` across every server attached to the same
   * Redis. Redis errors and outages are emitted as 'error' on `wss`.
   */
  createRedisBackplane(wss: WebSocket.WebSocketServer, options: RedisBackplane.Options): RedisBackplane.Backplane;
};

export = RedisBackplane;
