//! Events of one loop turn, for every connection, as a flat tape of u32
//! records plus one arena of payload bytes. JS gets the whole turn in one call.

use crate::core::error::WsError;
use crate::core::receiver::Event;

/// Record kinds; `lib/native-transport.js` has the same numbers.
pub const EV_TEXT: u32 = 1;
pub const EV_BINARY: u32 = 2;
pub const EV_PING: u32 = 3;
pub const EV_PONG: u32 = 4;
pub const EV_CLOSE_FRAME: u32 = 5;
pub const EV_ERROR: u32 = 6;
pub const EV_ACK: u32 = 7;
pub const EV_EOF: u32 = 8;
pub const EV_CLOSED: u32 = 9;
pub const EV_FINISH: u32 = 10;
/// Set on a data record whose payload travels as its own Buffer.
pub const EV_BIG: u32 = 0x80;

/// Payloads at least this large get their own Buffer instead of a slice of
/// the arena, so that a retained big message pins only itself.
pub const BIG_PAYLOAD: usize = 64 * 1024;
const KEEP_CAPACITY: usize = 256 * 1024;

/// Every record is four words: kind (with an 8-bit-shifted extra), id, a, b.
#[derive(Default)]
pub struct Batch {
    pub tape: Vec<u32>,
    pub arena: Vec<u8>,
    pub bigs: Vec<Vec<u8>>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.tape.is_empty()
    }

    fn record(&mut self, kind: u32, extra: u32, id: u32, a: u32, b: u32) {
        self.tape.extend_from_slice(&[kind | (extra << 8), id, a, b]);
    }

    fn bytes(&mut self, kind: u32, extra: u32, id: u32, data: &[u8]) {
        if data.len() >= BIG_PAYLOAD {
            self.bigs.push(data.to_vec());
            self.record(kind | EV_BIG, extra, id, (self.bigs.len() - 1) as u32, data.len() as u32);
        } else {
            let off = self.arena.len() as u32;
            self.arena.extend_from_slice(data);
            self.record(kind, extra, id, off, data.len() as u32);
        }
    }

    pub fn event(&mut self, id: u32, ev: Event<'_>) {
        match ev {
            Event::Text(d) => self.bytes(EV_TEXT, 0, id, d),
            Event::Binary(d) => self.bytes(EV_BINARY, 0, id, d),
            Event::Ping(d) => self.bytes(EV_PING, 0, id, d),
            Event::Pong(d) => self.bytes(EV_PONG, 0, id, d),
            Event::Close(code, reason) => self.bytes(EV_CLOSE_FRAME, code as u32, id, reason),
        }
    }

    /// The error travels as text: message, code, close code and class,
    /// one per line, so the Rust enum stays the one source of truth.
    pub fn error(&mut self, id: u32, e: &WsError) {
        let class = match e.class() {
            crate::core::error::ErrorClass::Error => "Error",
            crate::core::error::ErrorClass::RangeError => "RangeError",
        };
        let text = format!("{}\n{}\n{}\n{}", e, e.code(), e.close_code(), class);
        self.bytes(EV_ERROR, 0, id, text.as_bytes());
    }

    pub fn ack(&mut self, id: u32, ok: u32, failed: u32) {
        self.record(EV_ACK, 0, id, ok, failed);
    }

    pub fn eof(&mut self, id: u32) {
        self.record(EV_EOF, 0, id, 0, 0);
    }

    /// The write side is shut down: everything queued went out, then a FIN.
    pub fn finish(&mut self, id: u32) {
        self.record(EV_FINISH, 0, id, 0, 0);
    }

    pub fn closed(&mut self, id: u32, errno: i32) {
        self.record(EV_CLOSED, 0, id, errno.unsigned_abs(), 0);
    }

    /// Empties the batch, keeping moderate capacity for the next turn.
    pub fn clear(&mut self) {
        self.tape.clear();
        self.arena.clear();
        self.bigs.clear();
        if self.arena.capacity() > KEEP_CAPACITY {
            self.arena = Vec::new();
        }
        if self.tape.capacity() > KEEP_CAPACITY {
            self.tape = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_small_and_big_payloads() {
        let mut b = Batch::default();
        b.event(7, Event::Text(b"hi"));
        b.event(7, Event::Binary(&vec![1u8; BIG_PAYLOAD]));
        b.event(8, Event::Close(1000, b"bye"));
        b.ack(8, 2, 0);
        assert_eq!(&b.tape[..4], &[EV_TEXT, 7, 0, 2]);
        assert_eq!(&b.tape[4..8], &[EV_BINARY | EV_BIG, 7, 0, BIG_PAYLOAD as u32]);
        assert_eq!(&b.tape[8..12], &[EV_CLOSE_FRAME | (1000 << 8), 8, 2, 3]);
        assert_eq!(&b.tape[12..], &[EV_ACK, 8, 2, 0]);
        assert_eq!(&b.arena[..], b"hibye");
        b.clear();
        assert!(b.is_empty());
    }

    #[test]
    fn errors_carry_message_code_and_close_code() {
        let mut b = Batch::default();
        b.error(1, &WsError::InvalidOpcode(5));
        let text = String::from_utf8(b.arena.clone()).unwrap();
        assert_eq!(text, "Invalid WebSocket frame: invalid opcode 5\nWS_ERR_INVALID_OPCODE\n1002\nRangeError");
    }
}
