//! Outgoing frames: data messages (whole or fragmented, compressed or not)
//! and control frames, with ws's rules for when a message is compressed.

use super::deflate::Deflater;
use super::frame::{write_frame, write_header, OP_CONTINUATION};
use super::mask::apply_mask;

pub struct Encoder {
    deflater: Option<Deflater>,
    /// Smallest message to compress; ws applies it only when our side
    /// negotiated no_context_takeover.
    threshold: Option<usize>,
    first_fragment: bool,
    compress_message: bool,
}

impl Encoder {
    pub fn new(deflater: Option<Deflater>, threshold: Option<usize>) -> Self {
        Encoder { deflater, threshold, first_fragment: true, compress_message: false }
    }

    pub fn has_deflate(&self) -> bool {
        self.deflater.is_some()
    }

    /// Appends one data frame. `opcode` is 1 or 2; on a continuation
    /// fragment it is replaced by 0, as ws does.
    pub fn data(&mut self, out: &mut Vec<u8>, payload: &[u8], opcode: u8, fin: bool, compress: bool, mask: Option<[u8; 4]>) {
        let mut op = opcode;
        if self.first_fragment {
            let mut c = compress && self.deflater.is_some();
            if c {
                if let Some(t) = self.threshold {
                    c = payload.len() >= t;
                }
            }
            self.compress_message = c;
            self.first_fragment = false;
        } else {
            op = OP_CONTINUATION;
        }
        let rsv1 = self.compress_message && op != OP_CONTINUATION;
        if fin {
            self.first_fragment = true;
        }
        match self.deflater.as_mut().filter(|_| self.compress_message) {
            Some(d) => {
                let mut z = Vec::new();
                d.deflate(payload, fin, &mut z);
                write_frame(out, fin, rsv1, op, &z, mask);
            }
            None => write_frame(out, fin, rsv1, op, payload, mask),
        }
    }

    /// Appends a control frame (close, ping or pong).
    pub fn control(&mut self, out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
        write_frame(out, true, false, opcode, payload, mask);
    }
}

/// Writes a frame header for `len` bytes and masks `payload` in place, for
/// callers that send the payload from its own buffer.
pub fn header_for(out: &mut Vec<u8>, opcode: u8, fin: bool, payload: &mut [u8], mask: Option<[u8; 4]>) {
    write_header(out, fin, false, opcode, payload.len(), mask);
    if let Some(m) = mask {
        apply_mask(payload, m, 0);
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
    fn compression_threshold_applies_only_without_context_takeover() {
        let mut e = Encoder::new(Some(Deflater::new(15, false, -1)), None);
        let mut out = vec![];
        e.data(&mut out, b"tiny", OP_TEXT, true, true, None);
        assert_eq!(out[0], 0xc1);
        let mut e = Encoder::new(Some(Deflater::new(15, true, -1)), Some(1024));
        let mut out = vec![];
        e.data(&mut out, b"tiny", OP_TEXT, true, true, None);
        assert_eq!(out, vec![0x81, 4, b't', b'i', b'n', b'y']);
    }

    #[test]
    fn compressed_fragments_set_rsv1_on_the_first_only() {
        let mut e = Encoder::new(Some(Deflater::new(15, false, -1)), None);
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
