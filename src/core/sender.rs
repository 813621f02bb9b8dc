//! Outgoing frames: data messages (whole or fragmented, compressed or not)
//! and control frames, with ws's rules for when a message is compressed.

use super::deflate::{Deflater, Params};
use super::frame::{write_frame, write_header, OP_CONTINUATION};

/// What a data frame is, apart from its payload.
#[derive(Debug, Clone, Copy)]
pub struct DataFrame {
    pub opcode: u8,
    pub fin: bool,
    pub compress: bool,
}

/// How a published message (a whole one, sent to many) is framed for one
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    /// Uncompressed: the same frame for everyone.
    Plain,
    /// Compressed with no context: the same frame for every connection
    /// with these deflate parameters.
    Deflated(Params),
    /// Compressed with this connection's context: its own frame.
    Own,
}

pub struct Encoder {
    /// Boxed: most connections have none, and an idle one should stay small.
    deflater: Option<Box<Deflater>>,
    /// The deflater's parameters, also while it is away compressing.
    params: Option<(Params, bool)>,
    /// Smallest message to compress; ws applies it only when our side
    /// negotiated no_context_takeover.
    threshold: Option<usize>,
    first_fragment: bool,
    compress_message: bool,
}

impl Encoder {
    pub fn new(deflater: Option<Deflater>, threshold: Option<usize>) -> Self {
        let params = deflater.as_ref().map(Deflater::params);
        Encoder { deflater: deflater.map(Box::new), params, threshold, first_fragment: true, compress_message: false }
    }

    /// How a whole message of `len` bytes published to many is framed here.
    /// In the middle of a fragmented message it is this connection's own
    /// frame: the message's last fragment, as a `send()` would make it.
    pub fn shared(&self, len: usize, compress: bool) -> Shared {
        if !self.first_fragment {
            return Shared::Own;
        }
        match self.params {
            Some((params, no_context)) if compress && self.threshold.is_none_or(|t| len >= t) => {
                if no_context {
                    Shared::Deflated(params)
                } else {
                    Shared::Own
                }
            }
            _ => Shared::Plain,
        }
    }

    pub fn has_deflate(&self) -> bool {
        self.deflater.is_some()
    }

    /// Whether the next data frame of `len` bytes would be compressed.
    fn would_compress(&self, len: usize, compress: bool) -> bool {
        if self.first_fragment {
            compress && self.deflater.is_some() && self.threshold.is_none_or(|t| len >= t)
        } else {
            self.compress_message
        }
    }

    /// Opcode and RSV1 of the next data frame; advances the fragment state.
    /// A continuation fragment gets opcode 0 and the first fragment's
    /// compression, as in ws.
    fn next_frame(&mut self, len: usize, opcode: u8, fin: bool, compress: bool) -> (u8, bool) {
        let compressed = self.would_compress(len, compress);
        let op = if self.first_fragment { opcode } else { OP_CONTINUATION };
        self.compress_message = compressed;
        self.first_fragment = fin;
        (op, compressed && op != OP_CONTINUATION)
    }

    /// Appends one data frame (`opcode` 1 or 2). Returns whether its payload
    /// went through the deflater.
    pub fn data(&mut self, out: &mut Vec<u8>, payload: &[u8], opcode: u8, fin: bool, compress: bool, mask: Option<[u8; 4]>) -> bool {
        let (op, rsv1) = self.next_frame(payload.len(), opcode, fin, compress);
        match self.deflater.as_mut().filter(|_| self.compress_message) {
            Some(d) => {
                let mut z = Vec::new();
                d.deflate(payload, fin, &mut z);
                write_frame(out, fin, rsv1, op, &z, mask);
                true
            }
            None => {
                write_frame(out, fin, rsv1, op, payload, mask);
                false
            }
        }
    }

    /// For a data frame whose payload compresses elsewhere: its opcode and
    /// RSV1, and the deflater, which `put_deflater` gives back. None, with
    /// nothing changed, when the frame would not be compressed.
    pub fn take_deflater(&mut self, len: usize, opcode: u8, fin: bool, compress: bool) -> Option<(u8, bool, Box<Deflater>)> {
        if !self.would_compress(len, compress) {
            return None;
        }
        let (op, rsv1) = self.next_frame(len, opcode, fin, compress);
        let deflater = self.deflater.take()?;
        Some((op, rsv1, deflater))
    }

    pub fn put_deflater(&mut self, d: Box<Deflater>) {
        self.deflater = Some(d);
    }

    /// Appends only the header of an unmasked, uncompressed data frame whose
    /// payload the caller writes from its own memory. Returns false, with
    /// nothing written, when the frame is to be compressed.
    pub fn data_header(&mut self, out: &mut Vec<u8>, len: usize, opcode: u8, fin: bool, compress: bool) -> bool {
        if self.would_compress(len, compress) {
            return false;
        }
        let (op, rsv1) = self.next_frame(len, opcode, fin, compress);
        write_header(out, fin, rsv1, op, len, None);
        true
    }

    /// Appends a control frame (close, ping or pong).
    pub fn control(&mut self, out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
        write_frame(out, true, false, opcode, payload, mask);
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::deflate::Inflater;
    use crate::core::frame::{OP_BINARY, OP_PING, OP_TEXT};

    #[test]
    fn plain_and_fragmented() {
        let mut e = Encoder::new(None, None);
        let mut out = vec![];
        e.data(&mut out, b"ab", OP_TEXT, false, true, None);
        e.data(&mut out, b"c", OP_TEXT, true, true, None);
        e.data(&mut out, b"d", OP_BINARY, true, false, None);
        assert_eq!(out, vec![0x01, 2, b'a', b'b', 0x80, 1, b'c', 0x82, 1, b'd']);
        let mut out = vec![];
        e.control(&mut out, OP_PING, b"", Some([0; 4]));
        assert_eq!(out, vec![0x89, 0x80, 0, 0, 0, 0]);
    }

    #[test]
    fn header_only_frames_follow_the_fragment_state() {
        let mut e = Encoder::new(None, None);
        let mut out = vec![];
        assert!(e.data_header(&mut out, 3, OP_BINARY, false, false));
        e.data(&mut out, b"x", OP_BINARY, true, false, None);
        assert_eq!(out, vec![0x02, 3, 0x80, 1, b'x']);
        let mut z = Encoder::new(Some(Deflater::new(Params::new(15, -1, -1, -1), false)), None);
        assert!(!z.data_header(&mut out, 3, OP_BINARY, true, true));
        assert!(z.data_header(&mut out, 3, OP_BINARY, true, false));
    }

    #[test]
    fn compression_threshold_applies_only_without_context_takeover() {
        let mut e = Encoder::new(Some(Deflater::new(Params::new(15, -1, -1, -1), false)), None);
        let mut out = vec![];
        e.data(&mut out, b"tiny", OP_TEXT, true, true, None);
        assert_eq!(out[0], 0xc1);
        let mut e = Encoder::new(Some(Deflater::new(Params::new(15, -1, -1, -1), true)), Some(1024));
        let mut out = vec![];
        e.data(&mut out, b"tiny", OP_TEXT, true, true, None);
        assert_eq!(out, vec![0x81, 4, b't', b'i', b'n', b'y']);
    }

    #[test]
    fn compressed_fragments_set_rsv1_on_the_first_only() {
        let mut e = Encoder::new(Some(Deflater::new(Params::new(15, -1, -1, -1), false)), None);
        let mut out = vec![];
        e.data(&mut out, b"Hello ", OP_TEXT, false, true, None);
        let first_len = out.len();
        e.data(&mut out, b"world", OP_TEXT, true, true, None);
        assert_eq!(out[0], 0x41);
        assert_eq!(out[first_len], 0x80);
        let mut i = Inflater::new(15, false);
        let mut msg = vec![];
        i.inflate(&out[2..first_len], false, &mut msg, 0).unwrap();
        i.inflate(&out[first_len + 2..], true, &mut msg, 0).unwrap();
        assert_eq!(msg, b"Hello world");
    }
}
