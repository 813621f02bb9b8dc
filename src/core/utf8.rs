//! UTF-8 validation with simdutf8, incremental across fragments so that an
//! invalid sequence is reported as soon as it arrives.

pub fn is_valid(bytes: &[u8]) -> bool {
    simdutf8::basic::from_utf8(bytes).is_ok()
}

/// Remembers how much of a growing buffer is already known to be valid.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    checked: usize,
}

impl Utf8Stream {
    /// Checks the bytes of `buf` not yet checked. With `fin` false a
    /// sequence cut at the end of `buf` is accepted for now.
    pub fn check(&mut self, buf: &[u8], fin: bool) -> bool {
        let rest = buf.get(self.checked..).unwrap_or_default();
        match simdutf8::compat::from_utf8(rest) {
            Ok(_) => {
                self.checked = buf.len();
                true
            }
            Err(e) if !fin && e.error_len().is_none() => {
                self.checked = self.checked.saturating_add(e.valid_up_to());
                true
            }
            Err(_) => false,
        }
    }

    pub fn reset(&mut self) {
        self.checked = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_buffers() {
        assert!(is_valid("héllo €".as_bytes()));
        assert!(!is_valid(&[0xff]));
        assert!(!is_valid(&[0xed, 0xa0, 0x80])); // surrogate
    }

    #[test]
    fn split_sequence_is_accepted_until_fin() {
        let euro = "€".as_bytes();
        let mut buf = vec![];
        let mut s = Utf8Stream::default();
        buf.push(euro[0]);
        assert!(s.check(&buf, false));
        buf.push(euro[1]);
        assert!(s.check(&buf, false));
        assert!(!s.check(&buf, true));
        buf.push(euro[2]);
        assert!(s.check(&buf, true));
    }

    #[test]
    fn invalid_sequence_fails_fast() {
        let mut s = Utf8Stream::default();
        assert!(!s.check(&[b'a', 0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80], false));
    }
}
