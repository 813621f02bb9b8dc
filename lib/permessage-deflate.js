'use strict';

// permessage-deflate (RFC 7692) negotiation. The compression itself runs in
// Rust; this file decides the parameters and hands them over.

const NAME = 'permessage-deflate';

function isBits(n) {
  return Number.isInteger(n) && n >= 8 && n <= 15;
}

class PerMessageDeflate {
  /**
   * @param {Object} [options] ws's perMessageDeflate options, plus
   *   `isServer` and `maxPayload`
   */
  constructor(options) {
    this._options = options || {};
    this._threshold = this._options.threshold !== undefined ? this._options.threshold : 1024;
    this._maxPayload = this._options.maxPayload | 0;
    this._isServer = !!this._options.isServer;
    this.params = null;
  }

  static get extensionName() {
    return NAME;
  }

  /** The parameters a client offers. */
  offer() {
    const o = this._options;
    const params = {};
    if (o.serverNoContextTakeover) params.server_no_context_takeover = true;
    if (o.clientNoContextTakeover) params.client_no_context_takeover = true;
    if (o.serverMaxWindowBits) params.server_max_window_bits = o.serverMaxWindowBits;
    if (o.clientMaxWindowBits) params.client_max_window_bits = o.clientMaxWindowBits;
    else if (o.clientMaxWindowBits == null) params.client_max_window_bits = true;
    return params;
  }

  /** Accepts offers (server) or a response (client); returns the params. */
  accept(configurations) {
    const list = configurations.map((c) => this._normalize(c));
    this.params = this._isServer ? this._acceptOffer(list) : this._acceptResponse(list[0]);
    return this.params;
  }

  /** Nothing to release: the Rust side owns the zlib streams. */
  cleanup() {}

  _acceptOffer(offers) {
    const o = this._options;
    const fits = (p) => {
      if (o.serverNoContextTakeover === false && p.server_no_context_takeover) return false;
      if (p.server_max_window_bits) {
        if (o.serverMaxWindowBits === false) return false;
        if (typeof o.serverMaxWindowBits === 'number' && o.serverMaxWindowBits > p.server_max_window_bits) {
          return false;
        }
      }
      if (typeof o.clientMaxWindowBits === 'number') {
        if (typeof p.client_max_window_bits === 'number') {
          if (o.clientMaxWindowBits > p.client_max_window_bits) return false;
        } else if (!p.client_max_window_bits) {
          return false;
        }
      }
      return true;
    };

    const accepted = offers.find(fits);
    if (!accepted) throw new Error('None of the extension offers can be accepted');

    if (o.serverNoContextTakeover) accepted.server_no_context_takeover = true;
    if (o.clientNoContextTakeover) accepted.client_no_context_takeover = true;
    if (typeof o.serverMaxWindowBits === 'number') {
      accepted.server_max_window_bits = o.serverMaxWindowBits;
    }
    if (typeof o.clientMaxWindowBits === 'number') {
      accepted.client_max_window_bits = o.clientMaxWindowBits;
    } else if (accepted.client_max_window_bits === true || o.clientMaxWindowBits === false) {
      delete accepted.client_max_window_bits;
    }
    return accepted;
  }

  _acceptResponse(params) {
    const o = this._options;
    if (o.clientNoContextTakeover === false && params.client_no_context_takeover) {
      throw new Error('Unexpected parameter "client_no_context_takeover"');
    }
    if (!params.client_max_window_bits) {
      if (typeof o.clientMaxWindowBits === 'number') {
        params.client_max_window_bits = o.clientMaxWindowBits;
      }
    } else if (
      o.clientMaxWindowBits === false ||
      (typeof o.clientMaxWindowBits === 'number' && params.client_max_window_bits > o.clientMaxWindowBits)
    ) {
      throw new Error('Unexpected or invalid parameter "client_max_window_bits"');
    }
    return params;
  }

  // Each parameter once, with a value of the right kind.
  _normalize(params) {
    for (const key of Object.keys(params)) {
      if (params[key].length > 1) {
        throw new Error(`Parameter "${key}" must have only a single value`);
      }
      const value = params[key][0];
      const invalid = () => new TypeError(`Invalid value for parameter "${key}": ${value}`);

      if (key === 'client_max_window_bits') {
        if (value === true) {
          if (!this._isServer) throw invalid();
          params[key] = true;
        } else {
          if (!isBits(+value)) throw invalid();
          params[key] = +value;
        }
      } else if (key === 'server_max_window_bits') {
        if (!isBits(+value)) throw invalid();
        params[key] = +value;
      } else if (key === 'client_no_context_takeover' || key === 'server_no_context_takeover') {
        if (value !== true) throw invalid();
        params[key] = true;
      } else {
        throw new Error(`Unknown parameter "${key}"`);
      }
    }
    return params;
  }

  /**
   * The negotiated parameters as the Rust engine takes them:
   * [inflateBits, inflateNoContext, deflateBits, deflateNoContext, level,
   * threshold, memLevel, strategy] (-1: zlib's default).
   */
  engineConfig() {
    const p = this.params || {};
    const peer = this._isServer ? 'client' : 'server';
    const self = this._isServer ? 'server' : 'client';
    const bits = (v) => (typeof v === 'number' ? v : 15);
    const zlib = this._options.zlibDeflateOptions || {};
    const option = (v) => (typeof v === 'number' ? v : -1);
    return [
      bits(p[`${peer}_max_window_bits`]),
      p[`${peer}_no_context_takeover`] ? 1 : 0,
      bits(p[`${self}_max_window_bits`]),
      p[`${self}_no_context_takeover`] ? 1 : 0,
      option(zlib.level),
      this._threshold,
      option(zlib.memLevel),
      option(zlib.strategy)
    ];
  }
}

module.exports = PerMessageDeflate;
