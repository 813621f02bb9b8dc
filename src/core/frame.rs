//! Frame headers (RFC 6455 section 5.2): reading the fixed two bytes and
//! writing whole headers.

use super::mask::apply_mask;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xa;

/// The first two bytes of a frame, split into fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseHeader {
    pub fin: bool,
    pub rsv1: bool,
    pub rsv23: bool,
    pub opcode: u8,
    pub masked: bool,
    /// 0..=125, or 126 / 127 for the 16- and 64-bit forms.
    pub len7: u8,
}

impl BaseHeader {
    pub fn parse(b0: u8, b1: u8) -> Self {
        BaseHeader {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            rsv23: b0 & 0x30 != 0,
            opcode: b0 & 0x0f,
            masked: b1 & 0x80 != 0,
            len7: b1 & 0x7f,
        }
    }

    /// Bytes of extended length and mask that follow the first two.
    pub fn rest_len(&self) -> usize {
        let ext: usize = match self.len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        if self.masked {
            ext.saturating_add(4)
        } else {
            ext
        }
    }
}

pub fn is_control(opcode: u8) -> bool {
    opcode & 0x08 != 0
}

/// Size of a header for a payload of `len` bytes.
pub fn header_len(len: usize, masked: bool) -> usize {
    let base: usize = if len < 126 {
        2
    } else if len < 65536 {
        4
    } else {
        10
    };
    if masked {
        base.saturating_add(4)
    } else {
        base
    }
}

/// Appends a header for a frame of `len` payload bytes.
pub fn write_header(out: &mut Vec<u8>, fin: bool, rsv1: bool, opcode: u8, len: usize, mask: Option<[u8; 4]>) {
    let mut b0 = opcode & 0x0f;
    if fin {
        b0 |= 0x80;
    }
    if rsv1 {
        b0 |= 0x40;
    }
    let mbit = if mask.is_some() { 0x80 } else { 0 };
    out.push(b0);
    if len < 126 {
        out.push(mbit | len as u8);
    } else if len < 65536 {
        out.push(mbit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mbit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(m) = mask {
        out.extend_from_slice(&m);
    }
}

/// Appends a whole frame: header, then the payload, masked when `mask` is set.
pub fn write_frame(out: &mut Vec<u8>, fin: bool, rsv1: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    out.reserve(header_len(payload.len(), mask.is_some()).saturating_add(payload.len()));
    write_header(out, fin, rsv1, opcode, payload.len(), mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let (Some(m), Some(body)) = (mask, out.get_mut(start..)) {
        apply_mask(body, m, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_header() {
        let h = BaseHeader::parse(0x81, 0x85);
        assert!(h.fin && !h.rsv1 && !h.rsv23 && h.masked);
        assert_eq!((h.opcode, h.len7, h.rest_len()), (OP_TEXT, 5, 4));
        let h = BaseHeader::parse(0x42, 0x7e);
        assert!(!h.fin && h.rsv1 && !h.masked);
        assert_eq!((h.opcode, h.len7, h.rest_len()), (OP_BINARY, 126, 2));
        assert!(BaseHeader::parse(0xa0, 0).rsv23);
        assert_eq!(BaseHeader::parse(0x82, 0xff).rest_len(), 12);
    }

    #[test]
    fn writes_7_16_and_64_bit_lengths() {
        for (len, hl) in [(0usize, 2usize), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let mut out = vec![];
            write_header(&mut out, true, false, OP_BINARY, len, None);
            assert_eq!(out.len(), hl);
            assert_eq!(header_len(len, false), hl);
            assert_eq!(out[0], 0x82);
        }
        let mut out = vec![];
        write_header(&mut out, false, true, OP_TEXT, 300, Some([1, 2, 3, 4]));
        assert_eq!(out, vec![0x41, 0xfe, 0x01, 0x2c, 1, 2, 3, 4]);
    }

    #[test]
    fn masked_frame_round_trips() {
        let mut out = vec![];
        write_frame(&mut out, true, false, OP_TEXT, b"Hello", Some([0x37, 0xfa, 0x21, 0x3d]));
        // RFC 6455 section 5.7 example.
        assert_eq!(out, vec![0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }
}
