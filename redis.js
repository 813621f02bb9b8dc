'use strict';

// `require('ws-native/redis')`: the Redis backplane of WebSocketServer#publish().

module.exports = require('./lib/redis-backplane');
