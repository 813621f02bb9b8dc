//! Sans-IO frame parser: bytes in, messages and control frames out, with the
//! checks and limits of ws's receiver, in the order ws applies them.

use std::borrow::Cow;

use super::close::is_valid_status_code;
use super::deflate::Inflater;
use super::error::WsError;
use super::frame::{is_control, BaseHeader, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_TEXT};
use super::mask::apply_mask;
use super::utf8::{is_valid, Utf8Stream};

#[derive(Debug, Clone, Copy)]
pub struct ReceiverConfig {
    pub is_server: bool,
    /// Largest message, in bytes; 0 means no limit.
    pub max_payload: u64,
    /// Most data frames in one message; 0 means no limit.
    pub max_fragments: u32,
    /// Most reads one incomplete frame may span; 0 means no limit.
    pub max_buffered_chunks: u32,
    pub skip_utf8_validation: bool,
}

/// A message payload: a slice of the input when the frame was whole there,
/// else the buffer it was assembled in, handed over.
pub type Payload<'a> = Cow<'a, [u8]>;

#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    Text(Payload<'a>),
    Binary(Payload<'a>),
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// A close frame: 1005 with an empty reason when it had no body.
    Close(u16, &'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Payload,
    Closed,
    Failed,
}

const MAX_HEADER: usize = 14;
/// Upper bound of the up-front reservation for a frame's payload.
const MAX_RESERVE: u64 = 1 << 20;

pub struct Receiver {
    cfg: ReceiverConfig,
    inflater: Option<Box<Inflater>>,
    state: State,
    hdr: [u8; MAX_HEADER],
    hdr_have: usize,
    // The frame being read.
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    frame_len: u64,
    frame_pos: u64,
    // The message being assembled.
    fragmented: u8,
    compressed: bool,
    total_payload: u64,
    num_fragments: u32,
    msg: Vec<u8>,
    ctrl: Vec<u8>,
    utf8: Utf8Stream,
    pending_chunks: u32,
}

impl Receiver {
    pub fn new(cfg: ReceiverConfig, inflater: Option<Inflater>) -> Self {
        Receiver {
            cfg,
            inflater: inflater.map(Box::new),
            state: State::Header,
            hdr: [0; MAX_HEADER],
            hdr_have: 0,
            fin: false,
            opcode: 0,
            mask: None,
            frame_len: 0,
            frame_pos: 0,
            fragmented: 0,
            compressed: false,
            total_payload: 0,
            num_fragments: 0,
            msg: Vec::new(),
            ctrl: Vec::new(),
            utf8: Utf8Stream::default(),
            pending_chunks: 0,
        }
    }

    /// True once a close frame arrived; later bytes are ignored.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// True while a frame has started but not finished.
    pub fn mid_frame(&self) -> bool {
        self.state == State::Payload || (self.state == State::Header && self.hdr_have > 0)
    }

    /// Heap bytes this receiver holds (for idle-memory accounting).
    pub fn held_bytes(&self) -> usize {
        self.msg.capacity() + self.ctrl.capacity()
    }

    /// While a large uncompressed data frame is being read: the message
    /// buffer, with room for the rest of the frame, and how many bytes may
    /// be read straight into it. Saves a copy for big messages.
    pub fn direct_room(&mut self, min: u64) -> Option<(&mut Vec<u8>, usize)> {
        if self.state != State::Payload || is_control(self.opcode) || self.compressed {
            return None;
        }
        let rest = self.frame_len - self.frame_pos;
        if rest < min {
            return None;
        }
        let rest = rest as usize;
        self.msg.reserve(rest);
        Some((&mut self.msg, rest))
    }

    /// Takes the `n` bytes just read into the message buffer (see
    /// `direct_room`), like `feed` would have.
    pub fn commit_direct<F: FnMut(Event<'_>)>(&mut self, n: usize, sink: &mut F) -> Result<(), WsError> {
        let start = self.msg.len() - n;
        if let Some(m) = self.mask {
            apply_mask(&mut self.msg[start..], m, self.frame_pos as usize);
        }
        let first = self.frame_pos == 0;
        self.frame_pos += n as u64;
        let r = (|| {
            if first {
                self.count_fragment()?;
            }
            if self.opcode == OP_TEXT && !self.cfg.skip_utf8_validation && !self.utf8.check(&self.msg, false) {
                return Err(WsError::InvalidUtf8);
            }
            if self.frame_pos == self.frame_len {
                self.finish_frame(sink)?;
            }
            Ok(())
        })();
        if r.is_err() {
            self.state = State::Failed;
            self.msg = Vec::new();
        }
        r
    }

    /// After a panic in the middle of parsing: the state can't be trusted,
    /// so the receiver ignores all further input.
    pub fn poison(&mut self) {
        self.state = State::Failed;
        self.msg = Vec::new();
        self.ctrl = Vec::new();
    }

    /// Parses `input`, unmasking in place, and hands every complete message
    /// or control frame to `sink`. After an error or a close frame the
    /// receiver ignores further input.
    pub fn feed<F: FnMut(Event<'_>)>(&mut self, input: &mut [u8], sink: &mut F) -> Result<(), WsError> {
        if matches!(self.state, State::Closed | State::Failed) {
            return Ok(());
        }
        panic_injection::check();
        if self.mid_frame() && self.cfg.max_buffered_chunks > 0 && self.pending_chunks >= self.cfg.max_buffered_chunks {
            return self.fail(WsError::TooManyBufferedChunks);
        }
        let r = self.feed_inner(input, sink);
        if r.is_err() {
            self.state = State::Failed;
            self.msg = Vec::new();
            self.ctrl = Vec::new();
        } else if self.mid_frame() {
            self.pending_chunks += 1;
        }
        r
    }

    fn fail(&mut self, e: WsError) -> Result<(), WsError> {
        self.state = State::Failed;
        Err(e)
    }

    fn feed_inner<F: FnMut(Event<'_>)>(&mut self, input: &mut [u8], sink: &mut F) -> Result<(), WsError> {
        let mut pos = 0;
        while pos < input.len() {
            match self.state {
                State::Closed | State::Failed => return Ok(()),
                State::Header => {
                    pos += self.read_header(&input[pos..])?;
                    if self.state != State::Payload {
                        continue;
                    }
                    let avail = (input.len() - pos) as u64;
                    if self.frame_len <= avail && self.can_deliver_in_place() {
                        let end = pos + self.frame_len as usize;
                        let payload = &mut input[pos..end];
                        pos = end;
                        self.deliver_in_place(payload, sink)?;
                    } else if self.frame_len == 0 {
                        self.finish_frame(sink)?;
                    } else if !is_control(self.opcode) && !self.compressed {
                        // Assembled across reads: room for the frame, taken
                        // only now so that frames delivered in place leave
                        // no buffer behind.
                        self.msg.reserve(self.frame_len.min(MAX_RESERVE) as usize);
                    }
                }
                State::Payload => {
                    let n = ((input.len() - pos) as u64).min(self.frame_len - self.frame_pos) as usize;
                    let chunk = &mut input[pos..pos + n];
                    pos += n;
                    if let Some(m) = self.mask {
                        apply_mask(chunk, m, self.frame_pos as usize);
                    }
                    self.frame_pos += n as u64;
                    self.take_payload(chunk)?;
                    if self.frame_pos == self.frame_len {
                        self.finish_frame(sink)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Whole frames that need no assembly go straight from the read buffer.
    fn can_deliver_in_place(&self) -> bool {
        is_control(self.opcode) || (self.fin && self.fragmented == 0 && !self.compressed)
    }

    fn deliver_in_place<F: FnMut(Event<'_>)>(&mut self, payload: &mut [u8], sink: &mut F) -> Result<(), WsError> {
        if let Some(m) = self.mask {
            apply_mask(payload, m, 0);
        }
        self.state = State::Header;
        self.pending_chunks = 0;
        if is_control(self.opcode) {
            return self.control(payload, sink);
        }
        self.count_fragment()?;
        let text = self.opcode == OP_TEXT;
        if text && !self.cfg.skip_utf8_validation && !is_valid(payload) {
            return Err(WsError::InvalidUtf8);
        }
        self.end_message();
        let payload = Cow::Borrowed(&*payload);
        sink(if text { Event::Text(payload) } else { Event::Binary(payload) });
        Ok(())
    }

    /// Collects header bytes; returns how many of `input` it used. Validates
    /// the first two bytes as soon as they are there, as ws does.
    fn read_header(&mut self, input: &[u8]) -> Result<usize, WsError> {
        let mut used = 0;
        if self.hdr_have < 2 {
            let n = (2 - self.hdr_have).min(input.len());
            self.hdr[self.hdr_have..self.hdr_have + n].copy_from_slice(&input[..n]);
            self.hdr_have += n;
            used += n;
            if self.hdr_have < 2 {
                return Ok(used);
            }
            self.check_base(BaseHeader::parse(self.hdr[0], self.hdr[1]))?;
        }
        let base = BaseHeader::parse(self.hdr[0], self.hdr[1]);
        let total = 2 + base.rest_len();
        let n = (total - self.hdr_have).min(input.len() - used);
        self.hdr[self.hdr_have..self.hdr_have + n].copy_from_slice(&input[used..used + n]);
        self.hdr_have += n;
        used += n;
        if self.hdr_have < total {
            return Ok(used);
        }
        self.hdr_have = 0;
        let (len, mask_at) = match base.len7 {
            126 => (u16::from_be_bytes([self.hdr[2], self.hdr[3]]) as u64, 4),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.hdr[2..10]);
                let len = u64::from_be_bytes(b);
                if len >> 53 != 0 {
                    return Err(WsError::UnsupportedDataPayloadLength);
                }
                (len, 10)
            }
            n => (n as u64, 2),
        };
        if len > 0 && !is_control(self.opcode) {
            self.total_payload += len;
            if self.cfg.max_payload > 0 && self.total_payload > self.cfg.max_payload {
                return Err(WsError::MaxPayloadExceeded);
            }
        }
        self.mask = base.masked.then(|| [self.hdr[mask_at], self.hdr[mask_at + 1], self.hdr[mask_at + 2], self.hdr[mask_at + 3]]);
        self.frame_len = len;
        self.frame_pos = 0;
        self.state = State::Payload;
        Ok(used)
    }

    fn check_base(&mut self, h: BaseHeader) -> Result<(), WsError> {
        if h.rsv23 {
            return Err(WsError::UnexpectedRsv23);
        }
        if h.rsv1 && self.inflater.is_none() {
            return Err(WsError::UnexpectedRsv1);
        }
        match h.opcode {
            OP_CONTINUATION => {
                if h.rsv1 {
                    return Err(WsError::UnexpectedRsv1);
                }
                if self.fragmented == 0 {
                    return Err(WsError::InvalidOpcode(0));
                }
                self.opcode = self.fragmented;
            }
            1 | 2 => {
                if self.fragmented != 0 {
                    return Err(WsError::InvalidOpcode(h.opcode));
                }
                self.opcode = h.opcode;
                self.compressed = h.rsv1;
            }
            0x8..=0xa => {
                if !h.fin {
                    return Err(WsError::ExpectedFin);
                }
                if h.rsv1 {
                    return Err(WsError::UnexpectedRsv1);
                }
                if h.len7 > 125 || (h.opcode == OP_CLOSE && h.len7 == 1) {
                    return Err(WsError::InvalidControlPayloadLength(h.len7));
                }
                self.opcode = h.opcode;
            }
            op => return Err(WsError::InvalidOpcode(op)),
        }
        self.fin = h.fin;
        if !h.fin && self.fragmented == 0 {
            self.fragmented = self.opcode;
        }
        if self.cfg.is_server && !h.masked {
            return Err(WsError::ExpectedMask);
        }
        if !self.cfg.is_server && h.masked {
            return Err(WsError::UnexpectedMask);
        }
        Ok(())
    }

    fn count_fragment(&mut self) -> Result<(), WsError> {
        self.num_fragments += 1;
        if self.cfg.max_fragments > 0 && self.num_fragments > self.cfg.max_fragments {
            return Err(WsError::TooManyFragments);
        }
        Ok(())
    }

    /// Takes unmasked payload bytes of a frame that is read piecewise.
    fn take_payload(&mut self, chunk: &[u8]) -> Result<(), WsError> {
        if is_control(self.opcode) {
            self.ctrl.extend_from_slice(chunk);
            return Ok(());
        }
        if self.frame_pos == chunk.len() as u64 {
            self.count_fragment()?;
        }
        if self.compressed {
            let limit = self.cfg.max_payload as usize;
            let last = self.fin && self.frame_pos == self.frame_len;
            if let Some(inf) = self.inflater.as_mut() {
                inf.inflate(chunk, last, &mut self.msg, limit)?;
            }
        } else {
            self.msg.extend_from_slice(chunk);
        }
        if self.opcode == OP_TEXT && !self.cfg.skip_utf8_validation && !self.utf8.check(&self.msg, false) {
            return Err(WsError::InvalidUtf8);
        }
        Ok(())
    }

    fn finish_frame<F: FnMut(Event<'_>)>(&mut self, sink: &mut F) -> Result<(), WsError> {
        self.state = State::Header;
        self.pending_chunks = 0;
        if is_control(self.opcode) {
            let payload = std::mem::take(&mut self.ctrl);
            return self.control(&payload, sink);
        }
        if self.frame_len == 0 {
            // An empty frame still counts, and ends a compressed message.
            self.count_fragment()?;
            if self.compressed && self.fin {
                let limit = self.cfg.max_payload as usize;
                if let Some(inf) = self.inflater.as_mut() {
                    inf.inflate(&[], true, &mut self.msg, limit)?;
                }
            }
        }
        if !self.fin {
            return Ok(());
        }
        let text = self.opcode == OP_TEXT;
        if text && !self.cfg.skip_utf8_validation && !self.utf8.check(&self.msg, true) {
            return Err(WsError::InvalidUtf8);
        }
        let msg = Cow::Owned(std::mem::take(&mut self.msg));
        self.end_message();
        sink(if text { Event::Text(msg) } else { Event::Binary(msg) });
        Ok(())
    }

    fn end_message(&mut self) {
        self.fragmented = 0;
        self.compressed = false;
        self.total_payload = 0;
        self.num_fragments = 0;
        self.utf8.reset();
    }

    fn control<F: FnMut(Event<'_>)>(&mut self, payload: &[u8], sink: &mut F) -> Result<(), WsError> {
        match self.opcode {
            OP_CLOSE => {
                if payload.is_empty() {
                    self.state = State::Closed;
                    sink(Event::Close(1005, &[]));
                    return Ok(());
                }
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                if !is_valid_status_code(code) {
                    return Err(WsError::InvalidCloseCode(code));
                }
                let reason = &payload[2..];
                if !self.cfg.skip_utf8_validation && !is_valid(reason) {
                    return Err(WsError::InvalidUtf8);
                }
                self.state = State::Closed;
                self.msg = Vec::new();
                sink(Event::Close(code, reason));
            }
            OP_PING => sink(Event::Ping(payload)),
            _ => sink(Event::Pong(payload)),
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "receiver_tests.rs"]
mod tests;

/// A way for tests to make the next parse on this thread panic, so that the
/// containment of panics can be shown on both transports (`injectPanic()`
/// in the bindings). Costs one thread-local read per parse.
pub mod panic_injection {
    use std::cell::Cell;

    thread_local! {
        static ARMED: Cell<bool> = const { Cell::new(false) };
    }

    pub fn arm() {
        ARMED.with(|a| a.set(true));
    }

    pub fn check() {
        if ARMED.with(|a| a.replace(false)) {
            panic!("injected by a test");
        }
    }
}
