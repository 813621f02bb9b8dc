'use strict';

// The stream transport (TLS sockets and other Duplex streams) is not
// implemented yet; see the issue on API parity.

function attach() {
  throw new Error('ws-native: TLS and non-TCP streams are not supported yet');
}

module.exports = { attach };
