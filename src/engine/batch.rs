//! Events of one loop turn, for every connection, as a flat tape of u32
//! records plus one arena of payload bytes. JS gets the whole turn in one call.

use crate::core::deflate::InflateJob;
use crate::core::error::WsError;
use std::borrow::Cow;

use crate::core::receiver::{Event, Payload, Receiver};

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
/// A native listener's connection sent an upgrade request (extra: the
/// listener; payload: method, URL, then header names and values, NUL
/// between them).
pub const EV_REQUEST: u32 = 11;
/// A native listener's connection goes to Node's HTTP server (extra: its fd;
/// payload: the listener as 4 bytes LE, then the bytes read so far).
pub const EV_HANDOFF: u32 = 12;
/// A closed listener's last connection is gone (extra: the listener).
pub const EV_DRAINED: u32 = 13;
/// A connection's `bufferedAmount` is back to 0 after JS asked to hear it.
pub const EV_DRAIN: u32 = 14;
/// Set on a data record whose payload travels as its own Buffer.
pub const EV_BIG: u32 = 0x80;

/// Payloads at least this large get their own Buffer instead of a slice of
/// the arena, so that a retained big message pins only itself.
pub const BIG_PAYLOAD: usize = 64 * 1024;
const KEEP_CAPACITY: usize = 2 << 20;

/// Set on a record whose payload is in `pending`, not the arena: bytes made
/// while the arena was parsed in place (a message inflated or assembled
/// from fragments), which can't go after the arena's bytes then. JS finds
/// them after the arena in the pool, or in a Buffer of their own.
pub const EV_PENDING: u32 = 0x40;
/// Reads into the arena ask for at least this much room.
const READ_ROOM: usize = 64 * 1024;
const READ_MAX: usize = 256 * 1024;
/// What one turn reads into the arena: past it, what is left stays in the
/// kernel for the next turn, so the arena goes to JS as it is and never
/// grows by a reallocation (a copy of everything read so far).
const TURN_READ: usize = 1 << 20;
/// Room for one turn's reads.
pub const ARENA_ROOM: usize = TURN_READ + READ_MAX;

/// Runs a parse; a panic inside it poisons the receiver and becomes an
/// internal error (close code 1011) for that one connection, instead of
/// unwinding into libuv or V8.
fn contain(receiver: &mut Receiver, parse: impl FnOnce(&mut Receiver) -> Result<(), WsError>) -> Result<(), WsError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(receiver))) {
        Ok(r) => r,
        Err(_) => {
            receiver.poison();
            Err(WsError::Internal)
        }
    }
}

/// Every record is four words: kind (with an 8-bit-shifted extra), id, a, b.
/// Bytes read from sockets land in the arena and are parsed there, so that a
/// complete frame's payload reaches JS without being copied again.
#[derive(Default)]
pub struct Batch {
    pub tape: Vec<u32>,
    pub arena: Vec<u8>,
    pub bigs: Vec<Vec<u8>>,
    pub pending: Vec<u8>,
    /// Address range of the bytes being parsed in place.
    in_place: (usize, usize),
    /// While parsing memory that is not the arena (`feed_external`): its
    /// start, which offsets are taken from; 0 otherwise.
    external: usize,
    /// Messages to inflate on the pool, by connection, in order.
    pub jobs: Vec<(u32, InflateJob)>,
    /// Connections whose last write the kernel did not take all of: while
    /// there are none, no send JS makes in a batch takes a connection past
    /// its mark (JS then queues them on its send tape).
    pub blocked: u32,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.tape.is_empty()
    }

    fn record(&mut self, kind: u32, extra: u32, id: u32, a: u32, b: u32) {
        self.tape.extend_from_slice(&[kind | (extra << 8), id, a, b]);
    }

    fn bytes(&mut self, kind: u32, extra: u32, id: u32, data: &[u8]) {
        let addr = data.as_ptr() as usize;
        let (lo, hi) = self.in_place;
        if data.is_empty() {
            self.record(kind, extra, id, 0, 0);
        } else if addr >= lo && addr + data.len() <= hi {
            let base = if self.external != 0 { self.external } else { self.arena.as_ptr() as usize };
            self.record(kind, extra, id, (addr - base) as u32, data.len() as u32);
        } else if data.len() >= BIG_PAYLOAD || self.external != 0 {
            self.bigs.push(data.to_vec());
            self.record(kind | EV_BIG, extra, id, (self.bigs.len() - 1) as u32, data.len() as u32);
        } else if lo != 0 {
            let off = self.pending.len() as u32;
            self.pending.extend_from_slice(data);
            self.record(kind | EV_PENDING, extra, id, off, data.len() as u32);
        } else {
            let off = self.arena.len() as u32;
            self.arena.extend_from_slice(data);
            self.record(kind, extra, id, off, data.len() as u32);
        }
    }

    /// Reads from `fd` into the arena; returns what read(2) returned.
    /// None when this turn has read its share: the socket stays readable,
    /// and the next turn reads it.
    pub fn read_from(&mut self, fd: std::ffi::c_int) -> Option<isize> {
        // Messages inflated (or assembled) this turn count too.
        if self.pending.len() >= TURN_READ {
            return None;
        }
        if self.arena.capacity() - self.arena.len() < READ_ROOM {
            if self.arena.len() >= TURN_READ {
                return None;
            }
            self.arena.reserve(READ_MAX);
        }
        Some(super::syscall::read_into(fd, &mut self.arena, READ_MAX))
    }

    /// Parses `arena[start..]` in place with `receiver`; a protocol error
    /// becomes an error record. Returns the bytes the receiver left for
    /// after an inflate on the pool (taken out of the arena).
    pub fn feed_arena(&mut self, id: u32, receiver: &mut Receiver, start: usize) -> Vec<u8> {
        let len = self.arena.len();
        let base = self.arena.as_mut_ptr();
        // SAFETY: the arena is neither read nor resized while `input` lives:
        // events only append to `tape`, `pending` and `bigs`.
        let input = unsafe { std::slice::from_raw_parts_mut(base.add(start), len - start) };
        self.in_place = (base as usize + start, base as usize + len);
        let result = contain(receiver, |r| r.feed(input, &mut |ev| self.event(id, ev)));
        self.in_place = (0, 0);
        if let Err(e) = result {
            self.error(id, &e);
        }
        match receiver.take_unconsumed() {
            0 => Vec::new(),
            n => self.arena.split_off(len - n),
        }
    }

    /// Parses bytes the caller holds (a handshake's `head`, or input left
    /// while a message inflated), from the arena; returns what is left.
    pub fn feed_copy(&mut self, id: u32, receiver: &mut Receiver, input: &[u8]) -> Vec<u8> {
        let start = self.arena.len();
        self.arena.extend_from_slice(input);
        self.feed_arena(id, receiver, start)
    }

    /// A message inflated on the pool, or why it was refused.
    pub fn inflated(&mut self, id: u32, text: bool, result: &mut Result<Vec<u8>, WsError>) {
        match result {
            Ok(v) => self.message(if text { EV_TEXT } else { EV_BINARY }, id, Cow::Owned(std::mem::take(v))),
            Err(e) => self.error(id, e),
        }
    }

    /// Reads a big frame's payload from `fd` straight into the receiver's
    /// message buffer. Returns what read(2) returned and whether it filled
    /// the room it had, or None when the receiver is not reading such a frame.
    pub fn read_direct(&mut self, id: u32, fd: std::ffi::c_int, receiver: &mut Receiver) -> Option<(isize, bool)> {
        let (msg, rest) = receiver.direct_room(READ_ROOM as u64)?;
        let room = (msg.capacity() - msg.len()).min(rest);
        let n = super::syscall::read_into(fd, msg, room);
        if n > 0 {
            if let Err(e) = contain(receiver, |r| r.commit_direct(n as usize, &mut |ev| self.event(id, ev))) {
                self.error(id, &e);
            }
        }
        Some((n, n as usize == room))
    }

    /// Parses `input`, memory the caller owns (a chunk JS read), in place:
    /// payloads inside it are recorded as offsets into it; any other bytes
    /// (messages assembled across chunks, control payloads, error messages)
    /// travel in `bigs`.
    pub fn feed_external(&mut self, id: u32, receiver: &mut Receiver, input: &mut [u8]) {
        let base = input.as_ptr() as usize;
        self.in_place = (base, base + input.len());
        self.external = base;
        let result = contain(receiver, |r| r.feed(input, &mut |ev| self.event(id, ev)));
        if let Err(e) = result {
            self.error(id, &e);
        }
        self.in_place = (0, 0);
        self.external = 0;
    }

    /// A message payload: big assembled ones move here without a copy.
    fn message(&mut self, kind: u32, id: u32, data: Payload<'_>) {
        match data {
            Cow::Owned(v) if v.len() >= BIG_PAYLOAD => {
                let len = v.len() as u32;
                self.bigs.push(v);
                self.record(kind | EV_BIG, 0, id, (self.bigs.len() - 1) as u32, len);
            }
            d => self.bytes(kind, 0, id, &d),
        }
    }

    pub fn event(&mut self, id: u32, ev: Event<'_>) {
        match ev {
            Event::Text(d) => self.message(EV_TEXT, id, d),
            Event::Binary(d) => self.message(EV_BINARY, id, d),
            Event::Ping(d) => self.bytes(EV_PING, 0, id, d),
            Event::Pong(d) => self.bytes(EV_PONG, 0, id, d),
            Event::Close(code, reason) => self.bytes(EV_CLOSE_FRAME, code as u32, id, reason),
            Event::Inflate(job) => self.jobs.push((id, job)),
        }
    }

    /// An error record: the close code, the JS class and the index of the
    /// `code` in `error::CODES` in the record's extra bits
    /// (`close | class << 11 | code << 12`), the message as its bytes.
    pub fn error(&mut self, id: u32, e: &WsError) {
        let class = match e.class() {
            crate::core::error::ErrorClass::Error => 0,
            crate::core::error::ErrorClass::RangeError => 1,
        };
        let extra = (u32::from(e.close_code()) & 0x7ff) | (class << 11) | ((e.code_index() as u32) << 12);
        self.bytes(EV_ERROR, extra, id, e.to_string().as_bytes());
    }

    pub fn ack(&mut self, id: u32, ok: u32, failed: u32) {
        self.record(EV_ACK, 0, id, ok, failed);
    }

    /// `failed` sends will not go out; `reason` says why (connection.rs),
    /// `errno` is the socket's error, if it failed (`reason | errno << 2`).
    pub fn ack_failed(&mut self, id: u32, failed: u32, reason: u32, errno: i32) {
        self.record(EV_ACK, reason | (errno.unsigned_abs() << 2), id, 0, failed);
    }

    pub fn request(&mut self, id: u32, listener: u32, record: &[u8]) {
        self.bytes(EV_REQUEST, listener, id, record);
    }

    pub fn handoff(&mut self, id: u32, listener: u32, fd: i32, read: &[u8]) {
        let mut payload = Vec::with_capacity(4 + read.len());
        payload.extend_from_slice(&listener.to_le_bytes());
        payload.extend_from_slice(read);
        self.bytes(EV_HANDOFF, fd.unsigned_abs(), id, &payload);
    }

    /// Under connection id 0 (none has it): a listener's id may also be a
    /// live connection's.
    pub fn drained(&mut self, listener: u32) {
        self.record(EV_DRAINED, listener, 0, 0, 0);
    }

    pub fn eof(&mut self, id: u32) {
        self.record(EV_EOF, 0, id, 0, 0);
    }

    /// The write side is shut down: everything queued went out, then a FIN.
    pub fn finish(&mut self, id: u32) {
        self.record(EV_FINISH, 0, id, 0, 0);
    }

    pub fn drain(&mut self, id: u32) {
        self.record(EV_DRAIN, 0, id, 0, 0);
    }

    pub fn closed(&mut self, id: u32, errno: i32) {
        self.record(EV_CLOSED, 0, id, errno.unsigned_abs(), 0);
    }

    /// Empties the batch, keeping moderate capacity for the next turn.
    pub fn clear(&mut self) {
        self.tape.clear();
        self.arena.clear();
        self.pending.clear();
        self.bigs.clear();
        if self.arena.capacity() > KEEP_CAPACITY {
            self.arena = Vec::new();
        }
        if self.pending.capacity() > KEEP_CAPACITY {
            self.pending = Vec::new();
        }
        if self.tape.capacity() > KEEP_CAPACITY / 4 {
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
        b.event(7, Event::Text(Cow::Borrowed(b"hi")));
        b.event(7, Event::Binary(Cow::Borrowed(&vec![1u8; BIG_PAYLOAD])));
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
    fn parses_in_place_and_appends_copies_after() {
        use crate::core::frame::{write_frame, OP_CLOSE, OP_CONTINUATION, OP_TEXT};
        use crate::core::receiver::ReceiverConfig;
        let cfg = ReceiverConfig { is_server: false, max_payload: 0, max_fragments: 0, max_buffered_chunks: 0, skip_utf8_validation: false };
        let mut r = Receiver::new(cfg, None);
        let mut wire = vec![];
        write_frame(&mut wire, true, false, OP_TEXT, b"whole", None);
        write_frame(&mut wire, false, false, OP_TEXT, b"fra", None);
        write_frame(&mut wire, true, false, OP_CONTINUATION, b"gment", None);
        write_frame(&mut wire, true, false, OP_CLOSE, &[], None);
        let mut b = Batch::default();
        b.arena.extend_from_slice(b"junk");
        let start = b.arena.len();
        b.arena.extend_from_slice(&wire);
        b.feed_arena(3, &mut r, start);
        let recs: Vec<&[u32]> = b.tape.chunks(4).collect();
        assert_eq!(recs.len(), 3);
        let text = |rec: &[u32]| {
            let from = if rec[0] & EV_PENDING != 0 { &b.pending } else { &b.arena };
            &from[rec[2] as usize..(rec[2] + rec[3]) as usize]
        };
        assert_eq!(recs[0][0], EV_TEXT);
        assert_eq!(text(recs[0]), b"whole");
        assert_eq!(recs[0][2] as usize, start + 2, "delivered in place");
        assert_eq!(recs[1][0], EV_TEXT | EV_PENDING, "assembled: not in the arena being parsed");
        assert_eq!(text(recs[1]), b"fragment");
        assert_eq!(recs[2][0], EV_CLOSE_FRAME | (1005 << 8));
    }

    #[test]
    fn errors_carry_message_code_and_close_code() {
        let mut b = Batch::default();
        b.error(1, &WsError::InvalidOpcode(5));
        let extra = b.tape[0] >> 8;
        assert_eq!(b.tape[0] & 0xff, EV_ERROR);
        assert_eq!(extra & 0x7ff, 1002);
        assert_eq!((extra >> 11) & 1, 1, "RangeError");
        assert_eq!(crate::core::error::CODES[(extra >> 12) as usize], "WS_ERR_INVALID_OPCODE");
        assert_eq!(&b.arena[..], b"Invalid WebSocket frame: invalid opcode 5");
    }
}
