//! The one error enum of the crate. Every variant knows the text ws puts in
//! the error's `message`, its `code` (`WS_ERR_*`), the close code sent to the
//! peer and which JS error class ws throws.

use thiserror::Error;

/// JS error class that ws uses for a given failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Error,
    RangeError,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WsError {
    #[error("Invalid WebSocket frame: RSV2 and RSV3 must be clear")]
    UnexpectedRsv23,
    #[error("Invalid WebSocket frame: RSV1 must be clear")]
    UnexpectedRsv1,
    #[error("Invalid WebSocket frame: invalid opcode {0}")]
    InvalidOpcode(u8),
    #[error("Invalid WebSocket frame: FIN must be set")]
    ExpectedFin,
    #[error("Invalid WebSocket frame: invalid payload length {0}")]
    InvalidControlPayloadLength(u8),
    #[error("Invalid WebSocket frame: MASK must be set")]
    ExpectedMask,
    #[error("Invalid WebSocket frame: MASK must be clear")]
    UnexpectedMask,
    #[error("Unsupported WebSocket frame: payload length > 2^53 - 1")]
    UnsupportedDataPayloadLength,
    #[error("Max payload size exceeded")]
    MaxPayloadExceeded,
    #[error("Invalid WebSocket frame: invalid status code {0}")]
    InvalidCloseCode(u16),
    #[error("Invalid WebSocket frame: invalid UTF-8 sequence")]
    InvalidUtf8,
    #[error("Too many message fragments")]
    TooManyFragments,
    #[error("Too many buffered chunks")]
    TooManyBufferedChunks,
    /// A zlib failure while inflating; carries zlib's own message and its
    /// Node error code (for example `Z_DATA_ERROR`).
    #[error("{message}")]
    Inflate { message: String, code: &'static str },
    /// A bug in ws-native (a panic, caught): the connection closes with 1011.
    #[error("ws-native internal error")]
    Internal,
}

/// Every `code` an error can carry, in a fixed order: records that cross
/// to JS name a code by its index here (`WsError::code_index`).
pub const CODES: [&str; 15] = [
    "WS_ERR_UNEXPECTED_RSV_2_3",
    "WS_ERR_UNEXPECTED_RSV_1",
    "WS_ERR_INVALID_OPCODE",
    "WS_ERR_EXPECTED_FIN",
    "WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH",
    "WS_ERR_EXPECTED_MASK",
    "WS_ERR_UNEXPECTED_MASK",
    "WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH",
    "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH",
    "WS_ERR_INVALID_CLOSE_CODE",
    "WS_ERR_INVALID_UTF8",
    "WS_ERR_TOO_MANY_BUFFERED_PARTS",
    "Z_DATA_ERROR",
    "Z_BUF_ERROR",
    "WS_NATIVE_ERR_INTERNAL",
];

impl WsError {
    /// The position of `code()` in `CODES`.
    pub fn code_index(&self) -> usize {
        let code = self.code();
        CODES.iter().position(|&c| c == code).unwrap_or(CODES.len().saturating_sub(1))
    }

    /// The `code` property ws sets on the error object.
    pub fn code(&self) -> &'static str {
        use WsError::*;
        match self {
            UnexpectedRsv23 => "WS_ERR_UNEXPECTED_RSV_2_3",
            UnexpectedRsv1 => "WS_ERR_UNEXPECTED_RSV_1",
            InvalidOpcode(_) => "WS_ERR_INVALID_OPCODE",
            ExpectedFin => "WS_ERR_EXPECTED_FIN",
            InvalidControlPayloadLength(_) => "WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH",
            ExpectedMask => "WS_ERR_EXPECTED_MASK",
            UnexpectedMask => "WS_ERR_UNEXPECTED_MASK",
            UnsupportedDataPayloadLength => "WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH",
            MaxPayloadExceeded => "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH",
            InvalidCloseCode(_) => "WS_ERR_INVALID_CLOSE_CODE",
            InvalidUtf8 => "WS_ERR_INVALID_UTF8",
            TooManyFragments | TooManyBufferedChunks => "WS_ERR_TOO_MANY_BUFFERED_PARTS",
            Inflate { code, .. } => code,
            Internal => "WS_NATIVE_ERR_INTERNAL",
        }
    }

    /// The close code sent to the peer when this error ends a connection.
    pub fn close_code(&self) -> u16 {
        use WsError::*;
        match self {
            UnsupportedDataPayloadLength | MaxPayloadExceeded => 1009,
            InvalidUtf8 | Inflate { .. } => 1007,
            TooManyFragments | TooManyBufferedChunks => 1008,
            Internal => 1011,
            _ => 1002,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match self {
            WsError::InvalidUtf8 | WsError::Inflate { .. } | WsError::Internal => ErrorClass::Error,
            _ => ErrorClass::RangeError,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_codes_and_close_codes_match_ws() {
        let e = WsError::InvalidOpcode(3);
        assert_eq!(e.to_string(), "Invalid WebSocket frame: invalid opcode 3");
        assert_eq!(e.code(), "WS_ERR_INVALID_OPCODE");
        assert_eq!(e.close_code(), 1002);
        assert_eq!(e.class(), ErrorClass::RangeError);

        let e = WsError::MaxPayloadExceeded;
        assert_eq!(e.to_string(), "Max payload size exceeded");
        assert_eq!(e.close_code(), 1009);

        let e = WsError::InvalidUtf8;
        assert_eq!(e.to_string(), "Invalid WebSocket frame: invalid UTF-8 sequence");
        assert_eq!(e.class(), ErrorClass::Error);
        assert_eq!(e.close_code(), 1007);

        assert_eq!(WsError::TooManyFragments.close_code(), 1008);
        assert_eq!(CODES[WsError::TooManyBufferedChunks.code_index()], "WS_ERR_TOO_MANY_BUFFERED_PARTS");
        let z = WsError::Inflate { message: "x".into(), code: "Z_DATA_ERROR" };
        assert_eq!(CODES[z.code_index()], "Z_DATA_ERROR");
        assert_eq!(WsError::TooManyFragments.code(), "WS_ERR_TOO_MANY_BUFFERED_PARTS");
        assert_eq!(
            WsError::UnsupportedDataPayloadLength.to_string(),
            "Unsupported WebSocket frame: payload length > 2^53 - 1"
        );
    }
}
