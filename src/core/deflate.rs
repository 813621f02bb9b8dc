//! permessage-deflate (RFC 7692) compression state for one connection.
//! Negotiation of the parameters happens in the JS handshake code; this module
//! only applies them.

use flate2::{Decompress, FlushDecompress, Status};
use zlib_rs::{DeflateFlush, Strategy};

use super::error::WsError;

const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
const OUT_CHUNK: usize = 16 * 1024;
const MAX_OUT_CHUNK: usize = 256 * 1024;

/// zlib can't do raw streams with an 8-bit window; like Node, use 9 instead
/// (a larger window still inflates anything an 8-bit window produced).
fn window(bits: u8) -> u8 {
    bits.clamp(9, 15)
}

pub struct Inflater {
    z: Decompress,
    window_bits: u8,
    no_context_takeover: bool,
    ended: bool,
}

impl Inflater {
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Self {
        Inflater {
            z: Decompress::new_with_window_bits(false, window(window_bits)),
            window_bits,
            no_context_takeover,
            ended: false,
        }
    }

    /// Inflates one fragment of a message into `out`. `limit` is the most
    /// `out` may hold (0: no limit); the output never grows past it.
    pub fn inflate(&mut self, input: &[u8], fin: bool, out: &mut Vec<u8>, limit: usize) -> Result<(), WsError> {
        self.run(input, out, limit)?;
        if fin {
            self.run(&TRAILER, out, limit)?;
            if self.no_context_takeover || self.ended {
                self.reset();
            }
        }
        Ok(())
    }

    fn run(&mut self, mut input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), WsError> {
        while !input.is_empty() && !self.ended {
            if out.len() == out.capacity() {
                let mut want = input.len().saturating_mul(4).clamp(OUT_CHUNK, MAX_OUT_CHUNK);
                if limit > 0 {
                    // One byte of headroom tells "exactly at the limit" from "past it".
                    want = want.min(limit.saturating_sub(out.len()).saturating_add(1));
                }
                out.reserve_exact(want.max(1));
            }
            let (in0, out0) = (self.z.total_in(), self.z.total_out());
            let status = match self.z.decompress_vec(input, out, FlushDecompress::Sync) {
                Ok(s) => s,
                Err(e) => {
                    let message = e.message().unwrap_or("Zlib error").to_string();
                    self.reset();
                    return Err(WsError::Inflate { message, code: "Z_DATA_ERROR" });
                }
            };
            if limit > 0 && out.len() > limit {
                self.reset();
                return Err(WsError::MaxPayloadExceeded);
            }
            let consumed = self.z.total_in().saturating_sub(in0) as usize;
            let produced = self.z.total_out().saturating_sub(out0);
            input = input.get(consumed..).unwrap_or_default();
            if status == Status::StreamEnd {
                self.ended = true;
            }
            if consumed == 0 && produced == 0 && out.len() < out.capacity() {
                break;
            }
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.z = Decompress::new_with_window_bits(false, window(self.window_bits));
        self.ended = false;
    }
}

/// What makes a deflater's bytes: deflaters alike in these make the same
/// bytes of a message with no context before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub window_bits: u8,
    pub level: u8,
    pub mem_level: u8,
    pub strategy: u8,
}

/// The block size ws-native's deflaters use where `zlibDeflateOptions`
/// name no `memLevel`: 4,096 symbols (zlib's default, 8, holds 16,384).
/// zlib-rs clears its whole symbol buffer for every block, and with a sync
/// flush per message that is every message: 12 KiB here against 48. Its
/// hash table does not depend on memLevel, so a message of up to 4,095
/// symbols (a 4 KiB JSON message makes about 1,000) compresses to the
/// same bytes; a bigger one is split into more blocks.
const MEM_LEVEL: u8 = 6;

impl Params {
    /// zlib's options as ws takes them from `zlibDeflateOptions`: anything
    /// outside zlib's ranges means zlib's default (level 6, the default
    /// strategy), and memLevel ws-native's (`MEM_LEVEL`).
    pub fn new(window_bits: u8, level: i32, mem_level: i32, strategy: i32) -> Self {
        let pick = |v: i32, range: std::ops::RangeInclusive<i32>, default: u8| if range.contains(&v) { v as u8 } else { default };
        Params {
            window_bits: window(window_bits),
            level: pick(level, 0..=9, 6),
            mem_level: pick(mem_level, 1..=9, MEM_LEVEL),
            strategy: pick(strategy, 0..=4, 0),
        }
    }

    fn config(self) -> zlib_rs::DeflateConfig {
        zlib_rs::DeflateConfig {
            window_bits: i32::from(self.window_bits).wrapping_neg(),
            level: i32::from(self.level),
            mem_level: i32::from(self.mem_level),
            strategy: Strategy::try_from(i32::from(self.strategy)).unwrap_or_default(),
            ..Default::default()
        }
    }
}

pub struct Deflater {
    z: zlib_rs::Deflate,
    params: Params,
    no_context_takeover: bool,
}

impl Deflater {
    pub fn new(params: Params, no_context_takeover: bool) -> Self {
        Deflater { z: zlib_rs::Deflate::new_with_config(params.config()), params, no_context_takeover }
    }

    pub fn params(&self) -> (Params, bool) {
        (self.params, self.no_context_takeover)
    }

    /// Compresses one fragment, appending to `out`. The last fragment of a
    /// message loses the 00 00 ff ff tail of the sync flush (RFC 7692 7.2.1).
    pub fn deflate(&mut self, mut input: &[u8], fin: bool, out: &mut Vec<u8>) {
        let start = out.len();
        if input.is_empty() {
            // zlib refuses a second sync flush in a row with no input between;
            // a no-op write in between makes it emit the empty block ws sends.
            self.step(&[], out, DeflateFlush::NoFlush);
        }
        while let Some((consumed, full)) = self.step(input, out, DeflateFlush::SyncFlush) {
            input = input.get(consumed..).unwrap_or_default();
            // Done when the flush fit; never spinning where zlib moved on
            // neither input nor output.
            if !full && (input.is_empty() || consumed == 0) {
                break;
            }
        }
        if fin {
            if out.get(start..).is_some_and(|written| written.ends_with(&TRAILER)) {
                out.truncate(out.len().saturating_sub(TRAILER.len()));
            }
            if self.no_context_takeover {
                self.z.reset();
            }
        }
    }

    /// One call into zlib with room for about half the input again at the
    /// end of `out` (zeroed first: a guess, not `out`'s whole capacity, so a
    /// message that compresses well costs little): the input consumed, and
    /// whether the room ran out; None on zlib's error.
    fn step(&mut self, input: &[u8], out: &mut Vec<u8>, flush: DeflateFlush) -> Option<(usize, bool)> {
        let len = out.len();
        let room = (input.len() / 2).saturating_add(256).min(MAX_OUT_CHUNK);
        out.resize(len.saturating_add(room), 0);
        let (in0, out0) = (self.z.total_in(), self.z.total_out());
        let done = self.z.compress(input, out.get_mut(len..).unwrap_or_default(), flush);
        let produced = self.z.total_out().saturating_sub(out0) as usize;
        out.truncate(len.saturating_add(produced));
        done.ok()?;
        Some((self.z.total_in().saturating_sub(in0) as usize, produced == room))
    }
}

/// A whole single-frame compressed message, to inflate away from the JS
/// thread. The connection's inflater travels with it and comes back in
/// `Inflated`; until then the receiver parses nothing more.
pub struct InflateJob {
    pub inflater: Box<Inflater>,
    pub input: Vec<u8>,
    pub text: bool,
    /// The most the message may inflate to (0: no limit).
    pub limit: usize,
    pub check_utf8: bool,
}

pub struct Inflated {
    pub inflater: Box<Inflater>,
    pub text: bool,
    pub result: Result<Vec<u8>, WsError>,
}

impl InflateJob {
    /// Inflates, then validates a text message, as ws does once a frame is
    /// whole: a data error or the size limit comes before a UTF-8 error.
    pub fn run(self) -> Inflated {
        let InflateJob { mut inflater, input, text, limit, check_utf8 } = self;
        let mut out = Vec::new();
        let result = inflater.inflate(&input, true, &mut out, limit).and_then(|()| {
            if text && check_utf8 && !super::utf8::is_valid(&out) {
                Err(WsError::InvalidUtf8)
            } else {
                Ok(out)
            }
        });
        Inflated { inflater, text, result }
    }
}

impl std::fmt::Debug for InflateJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InflateJob({} bytes, text: {})", self.input.len(), self.text)
    }
}

impl PartialEq for InflateJob {
    fn eq(&self, other: &Self) -> bool {
        self.input == other.input && self.text == other.text
    }
}

impl Eq for InflateJob {}

/// One data frame's payload, to compress away from the JS thread with the
/// connection's deflater, which comes back in `Deflated`.
pub struct DeflateJob {
    pub deflater: Box<Deflater>,
    pub input: Vec<u8>,
    pub fin: bool,
}

pub struct Deflated {
    pub deflater: Box<Deflater>,
    pub output: Vec<u8>,
}

impl DeflateJob {
    pub fn run(self) -> Deflated {
        let DeflateJob { mut deflater, input, fin } = self;
        let mut output = Vec::new();
        deflater.deflate(&input, fin, &mut output);
        Deflated { deflater, output }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(msgs: &[&[u8]], bits: u8, nct: bool) {
        let mut d = Deflater::new(Params::new(bits, -1, -1, -1), nct);
        let mut i = Inflater::new(bits, nct);
        for m in msgs {
            let mut wire = vec![];
            d.deflate(m, true, &mut wire);
            let mut out = vec![];
            i.inflate(&wire, true, &mut out, 0).unwrap();
            assert_eq!(&out[..], *m);
        }
    }

    #[test]
    fn round_trips_with_and_without_context_takeover() {
        let big = vec![b'x'; if cfg!(miri) { 3_000 } else { 100_000 }];
        let msgs: [&[u8]; 4] = [b"Hello", b"Hello", b"", &big];
        for bits in [8, 9, 12, 15] {
            round_trip(&msgs, bits, false);
            round_trip(&msgs, bits, true);
        }
    }

    #[test]
    fn rfc7692_hello_example() {
        let mut i = Inflater::new(15, false);
        let mut out = vec![];
        i.inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], true, &mut out, 0).unwrap();
        assert_eq!(out, b"Hello");
        // Fragmented: "Hel" then "lo".
        let mut i = Inflater::new(15, false);
        let mut out = vec![];
        i.inflate(&[0xf2, 0x48, 0xcd], false, &mut out, 0).unwrap();
        i.inflate(&[0xc9, 0xc9, 0x07, 0x00], true, &mut out, 0).unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn the_default_mem_level_changes_no_byte_of_a_5_kb_json_message() {
        let msg: String = (0..60).map(|i| format!("{{\"id\":{i},\"user\":\"user{}\",\"score\":{}}},", i * 7919 % 1013, i * i % 997)).collect();
        let msg = msg.repeat(2).into_bytes();
        let mut ours = (Deflater::new(Params::new(15, -1, -1, -1), false), vec![]);
        let mut zlibs = (Deflater::new(Params::new(15, -1, 8, -1), false), vec![]);
        for _ in 0..3 {
            for (d, out) in [&mut ours, &mut zlibs] {
                out.clear();
                d.deflate(&msg, true, out);
            }
            assert_eq!(ours.1, zlibs.1);
        }
        assert_eq!(ours.0.params().0.mem_level, MEM_LEVEL);
    }

    #[test]
    fn empty_message_compresses_to_one_zero_byte() {
        let mut d = Deflater::new(Params::new(15, -1, -1, -1), false);
        let mut wire = vec![];
        d.deflate(b"", true, &mut wire);
        assert_eq!(wire, vec![0x00]);
    }

    #[test]
    fn bomb_never_grows_past_limit() {
        // Miri interprets every instruction: a smaller bomb there.
        let zeros = vec![0u8; if cfg!(miri) { 32 * 1024 } else { 10 * 1024 * 1024 }];
        let mut d = Deflater::new(Params::new(15, 9, -1, -1), false);
        let mut wire = vec![];
        d.deflate(&zeros, true, &mut wire);
        assert!(wire.len() < 20_000);
        let mut i = Inflater::new(15, false);
        let mut out = vec![];
        assert_eq!(i.inflate(&wire, true, &mut out, 1000), Err(WsError::MaxPayloadExceeded));
        assert!(out.capacity() <= 1001, "capacity {}", out.capacity());
    }

    #[test]
    fn corrupt_input_is_a_data_error() {
        let mut i = Inflater::new(15, false);
        let err = i.inflate(&[0xff, 0xff, 0xff, 0xff], true, &mut vec![], 0).unwrap_err();
        assert_eq!(err.close_code(), 1007);
        assert_eq!(err.code(), "Z_DATA_ERROR");
    }

    #[test]
    fn jobs_match_inline_results() {
        let msg = b"{\"a\":[1,2,3],\"b\":\"hello hello hello\"}".repeat(50);
        let mut inline = vec![];
        Deflater::new(Params::new(15, -1, -1, -1), false).deflate(&msg, true, &mut inline);
        let done = DeflateJob { deflater: Box::new(Deflater::new(Params::new(15, -1, -1, -1), false)), input: msg.clone(), fin: true }.run();
        assert_eq!(done.output, inline);
        let job = |limit, input: &[u8]| InflateJob { inflater: Box::new(Inflater::new(15, false)), input: input.to_vec(), text: true, limit, check_utf8: true }.run();
        assert_eq!(job(0, &inline).result.unwrap(), msg);
        assert_eq!(job(10, &inline).result.unwrap_err(), WsError::MaxPayloadExceeded);
        let mut bad = vec![];
        Deflater::new(Params::new(15, -1, -1, -1), false).deflate(&[0xff, 0xfe], true, &mut bad);
        assert_eq!(job(0, &bad).result.unwrap_err(), WsError::InvalidUtf8);
    }
}
