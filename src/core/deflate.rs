//! permessage-deflate (RFC 7692) compression state for one connection.
//! Negotiation of the parameters happens in the JS handshake code; this module
//! only applies them.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

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

pub struct Deflater {
    z: Compress,
    window_bits: u8,
    level: u32,
    no_context_takeover: bool,
}

impl Deflater {
    /// `level` is zlib's 0..=9; anything else means zlib's default (6).
    pub fn new(window_bits: u8, no_context_takeover: bool, level: i32) -> Self {
        let level = if (0..=9).contains(&level) { level as u32 } else { 6 };
        Deflater {
            z: Compress::new_with_window_bits(Compression::new(level), false, window(window_bits)),
            window_bits,
            level,
            no_context_takeover,
        }
    }

    /// `(window bits, level, no context takeover)`: deflaters alike in
    /// these make the same bytes of a message with no context before it.
    pub fn params(&self) -> (u8, u32, bool) {
        (self.window_bits, self.level, self.no_context_takeover)
    }

    /// Compresses one fragment, appending to `out`. The last fragment of a
    /// message loses the 00 00 ff ff tail of the sync flush (RFC 7692 7.2.1).
    pub fn deflate(&mut self, mut input: &[u8], fin: bool, out: &mut Vec<u8>) {
        let start = out.len();
        if input.is_empty() {
            // zlib refuses a second sync flush in a row with no input between;
            // a no-op write in between makes it emit the empty block ws sends.
            out.reserve(OUT_CHUNK);
            let _ = self.z.compress_vec(&[], out, FlushCompress::None);
        }
        loop {
            if out.capacity().saturating_sub(out.len()) < 64 {
                out.reserve((input.len() / 2).clamp(OUT_CHUNK, MAX_OUT_CHUNK));
            }
            let in0 = self.z.total_in();
            if self.z.compress_vec(input, out, FlushCompress::Sync).is_err() {
                break;
            }
            input = input.get(self.z.total_in().saturating_sub(in0) as usize..).unwrap_or_default();
            if input.is_empty() && out.len() < out.capacity() {
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
        let mut d = Deflater::new(bits, nct, -1);
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
    fn empty_message_compresses_to_one_zero_byte() {
        let mut d = Deflater::new(15, false, -1);
        let mut wire = vec![];
        d.deflate(b"", true, &mut wire);
        assert_eq!(wire, vec![0x00]);
    }

    #[test]
    fn bomb_never_grows_past_limit() {
        // Miri interprets every instruction: a smaller bomb there.
        let zeros = vec![0u8; if cfg!(miri) { 32 * 1024 } else { 10 * 1024 * 1024 }];
        let mut d = Deflater::new(15, false, 9);
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
        Deflater::new(15, false, -1).deflate(&msg, true, &mut inline);
        let done = DeflateJob { deflater: Box::new(Deflater::new(15, false, -1)), input: msg.clone(), fin: true }.run();
        assert_eq!(done.output, inline);
        let job = |limit, input: &[u8]| InflateJob { inflater: Box::new(Inflater::new(15, false)), input: input.to_vec(), text: true, limit, check_utf8: true }.run();
        assert_eq!(job(0, &inline).result.unwrap(), msg);
        assert_eq!(job(10, &inline).result.unwrap_err(), WsError::MaxPayloadExceeded);
        let mut bad = vec![];
        Deflater::new(15, false, -1).deflate(&[0xff, 0xfe], true, &mut bad);
        assert_eq!(job(0, &bad).result.unwrap_err(), WsError::InvalidUtf8);
    }
}
