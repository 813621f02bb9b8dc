//! Close codes (RFC 6455 section 7.4) with the rules ws applies.

/// The codes ws accepts in a close frame it receives or is asked to send.
pub fn is_valid_status_code(code: u16) -> bool {
    (1000..=1014).contains(&code) && !matches!(code, 1004..=1006) || (3000..=4999).contains(&code)
}

/// Payload of a close frame: the code in network order, then the reason.
pub fn encode(code: Option<u16>, reason: &[u8]) -> Vec<u8> {
    match code {
        None => Vec::new(),
        Some(code) => {
            let mut out = Vec::with_capacity(reason.len().saturating_add(2));
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(reason);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        for ok in [1000, 1001, 1002, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999] {
            assert!(is_valid_status_code(ok), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535] {
            assert!(!is_valid_status_code(bad), "{bad}");
        }
    }

    #[test]
    fn encodes_code_and_reason() {
        assert_eq!(encode(None, b""), Vec::<u8>::new());
        assert_eq!(encode(Some(1000), b"bye"), vec![0x03, 0xe8, b'b', b'y', b'e']);
    }
}
