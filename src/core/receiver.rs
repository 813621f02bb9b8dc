//! Sans-IO frame parser: bytes in, messages and control frames out, with the
//! checks and limits of ws's receiver, in the order ws applies them.

use std::borrow::Cow;

use super::close::is_valid_status_code;
use super::deflate::{InflateJob, Inflater};
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
    /// A big compressed message to inflate elsewhere (see `set_offload`);
    /// the receiver waits for `resume` before it parses anything more.
    Inflate(InflateJob),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Payload,
    /// An `Inflate` event is out; input waits for `resume`.
    Inflating,
    Closed,
    Failed,
}

const MAX_HEADER: usize = 14;
/// Upper bound of the up-front reservation for a frame's payload.
const MAX_RESERVE: u64 = 1 << 20;
/// An assembled (or inflated) message smaller than this is lent to the
/// sink, and its buffer serves the next message of the same `feed()`: one
/// allocation a read, not one a message. A bigger one is given away.
const LEND_MAX: usize = 64 * 1024;

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
    /// Single-frame compressed messages at least this long (0: none) are
    /// handed out whole as `Event::Inflate` instead of inflated here.
    offload_min: u64,
    /// The frame being read is such a message: `msg` holds it compressed.
    offloading: bool,
    /// Input bytes left unparsed by the last `feed` (it stopped for an
    /// `Inflate`), for the caller to feed again after `resume`.
    unconsumed: usize,
    /// The next `feed` is the rest of the read that stopped for an
    /// `Inflate`: not a read of its own for `max_buffered_chunks`.
    continuing: bool,
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
            offload_min: 0,
            offloading: false,
            unconsumed: 0,
            continuing: false,
        }
    }

    /// Hands whole compressed messages of at least `min` bytes out as
    /// `Event::Inflate` (0: never).
    pub fn set_offload(&mut self, min: usize) {
        self.offload_min = min as u64;
    }

    /// An `Inflate` event is out and `resume` has not been called yet.
    pub fn is_inflating(&self) -> bool {
        self.state == State::Inflating
    }

    /// How many bytes at the end of the last `feed`'s input it left for
    /// later (only after it stopped for an `Inflate`).
    pub fn take_unconsumed(&mut self) -> usize {
        std::mem::take(&mut self.unconsumed)
    }

    /// Takes the inflater back after an `Inflate` event; `ok` false (the
    /// message was refused) leaves the receiver failed, as any error does.
    pub fn resume(&mut self, inflater: Box<Inflater>, ok: bool) {
        self.inflater = Some(inflater);
        self.continuing = true;
        if self.state == State::Inflating {
            self.state = if ok { State::Header } else { State::Failed };
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
        self.msg.capacity().saturating_add(self.ctrl.capacity())
    }

    /// While a large uncompressed data frame is being read: the message
    /// buffer, with room for the rest of the frame, and how many bytes may
    /// be read straight into it. Saves a copy for big messages.
    pub fn direct_room(&mut self, min: u64) -> Option<(&mut Vec<u8>, usize)> {
        if self.state != State::Payload || is_control(self.opcode) || self.compressed {
            return None;
        }
        let rest = self.frame_len.saturating_sub(self.frame_pos);
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
        let start = self.msg.len().saturating_sub(n);
        if let (Some(m), Some(read)) = (self.mask, self.msg.get_mut(start..)) {
            apply_mask(read, m, self.frame_pos as usize);
        }
        let first = self.frame_pos == 0;
        self.frame_pos = self.frame_pos.saturating_add(n as u64);
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
        if self.state == State::Inflating {
            self.unconsumed = self.unconsumed.saturating_add(input.len());
            return Ok(());
        }
        panic_injection::check();
        if self.mid_frame() && self.cfg.max_buffered_chunks > 0 && self.pending_chunks >= self.cfg.max_buffered_chunks {
            return self.fail(WsError::TooManyBufferedChunks);
        }
        let continuing = std::mem::take(&mut self.continuing);
        let r = self.feed_inner(input, sink);
        if r.is_err() {
            self.state = State::Failed;
            self.msg = Vec::new();
            self.ctrl = Vec::new();
        } else if self.mid_frame() && !continuing {
            self.pending_chunks = self.pending_chunks.saturating_add(1);
        }
        if self.msg.is_empty() {
            // Between messages a connection holds no buffer.
            self.msg = Vec::new();
        }
        r
    }

    fn fail(&mut self, e: WsError) -> Result<(), WsError> {
        self.state = State::Failed;
        Err(e)
    }

    fn feed_inner<F: FnMut(Event<'_>)>(&mut self, input: &mut [u8], sink: &mut F) -> Result<(), WsError> {
        let mut rest = input;
        while !rest.is_empty() {
            match self.state {
                State::Closed | State::Failed => return Ok(()),
                State::Inflating => break,
                State::Header => {
                    let used = self.read_header(rest)?;
                    take_front(&mut rest, used);
                    if self.state != State::Payload {
                        continue;
                    }
                    if self.frame_len <= rest.len() as u64 && self.can_deliver_in_place() {
                        let payload = take_front(&mut rest, self.frame_len as usize);
                        self.deliver_in_place(payload, sink)?;
                    } else if self.frame_len == 0 {
                        self.finish_frame(sink)?;
                    } else if !is_control(self.opcode) && (!self.compressed || self.offloading) {
                        // Assembled across reads: room for the frame, taken
                        // only now so that frames delivered in place leave
                        // no buffer behind.
                        self.msg.reserve(self.frame_len.min(MAX_RESERVE) as usize);
                    }
                }
                State::Payload => {
                    let left = self.frame_len.saturating_sub(self.frame_pos);
                    let n = (rest.len() as u64).min(left) as usize;
                    let chunk = take_front(&mut rest, n);
                    if let Some(m) = self.mask {
                        apply_mask(chunk, m, self.frame_pos as usize);
                    }
                    self.frame_pos = self.frame_pos.saturating_add(n as u64);
                    self.take_payload(chunk)?;
                    if self.frame_pos == self.frame_len {
                        self.finish_frame(sink)?;
                    }
                }
            }
        }
        if self.state == State::Inflating {
            self.unconsumed = rest.len();
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
            used = self.fill_header(input, 2);
            if self.hdr_have < 2 {
                return Ok(used);
            }
            self.check_base(BaseHeader::parse(self.hdr[0], self.hdr[1]))?;
        }
        let base = BaseHeader::parse(self.hdr[0], self.hdr[1]);
        let total = base.rest_len().saturating_add(2);
        used = used.saturating_add(self.fill_header(input.get(used..).unwrap_or_default(), total));
        if self.hdr_have < total {
            return Ok(used);
        }
        self.hdr_have = 0;
        let h = &self.hdr;
        let (len, mask_at) = match base.len7 {
            126 => (u16::from_be_bytes([h[2], h[3]]) as u64, 4),
            127 => {
                let len = u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]);
                if len >> 53 != 0 {
                    return Err(WsError::UnsupportedDataPayloadLength);
                }
                (len, 10)
            }
            n => (n as u64, 2),
        };
        if len > 0 && !is_control(self.opcode) {
            self.total_payload = self.total_payload.saturating_add(len);
            if self.cfg.max_payload > 0 && self.total_payload > self.cfg.max_payload {
                return Err(WsError::MaxPayloadExceeded);
            }
        }
        self.mask = if base.masked { self.hdr.get(mask_at..).and_then(<[u8]>::first_chunk::<4>).copied() } else { None };
        self.frame_len = len;
        self.frame_pos = 0;
        self.state = State::Payload;
        self.offloading = self.offload_min > 0 && self.compressed && self.fin && self.fragmented == 0 && !is_control(self.opcode) && len >= self.offload_min;
        Ok(used)
    }

    /// Copies bytes of `input` into the header until it holds `want`;
    /// returns how many it took.
    fn fill_header(&mut self, input: &[u8], want: usize) -> usize {
        let room = self.hdr.get_mut(self.hdr_have..want).unwrap_or_default();
        let n = room.len().min(input.len());
        if let (Some(dst), Some(src)) = (room.get_mut(..n), input.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.hdr_have = self.hdr_have.saturating_add(n);
        n
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
        self.num_fragments = self.num_fragments.saturating_add(1);
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
        if self.offloading {
            self.msg.extend_from_slice(chunk);
            return Ok(());
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
        if self.offloading {
            self.offloading = false;
            let inflater = self.inflater.take().ok_or(WsError::Internal)?;
            let job = InflateJob {
                inflater,
                input: std::mem::take(&mut self.msg),
                text: self.opcode == OP_TEXT,
                limit: self.cfg.max_payload as usize,
                check_utf8: !self.cfg.skip_utf8_validation,
            };
            self.end_message();
            self.state = State::Inflating;
            sink(Event::Inflate(job));
            return Ok(());
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
        self.end_message();
        if self.msg.len() >= LEND_MAX {
            let msg = Cow::Owned(std::mem::take(&mut self.msg));
            sink(if text { Event::Text(msg) } else { Event::Binary(msg) });
        } else {
            let msg = Cow::Borrowed(&self.msg[..]);
            sink(if text { Event::Text(msg) } else { Event::Binary(msg) });
            self.msg.clear();
        }
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
                let (code, reason) = match payload {
                    [] => {
                        self.state = State::Closed;
                        sink(Event::Close(1005, &[]));
                        return Ok(());
                    }
                    // check_base refuses a 1-byte close frame before its payload.
                    [_] => return Err(WsError::InvalidControlPayloadLength(1)),
                    [hi, lo, reason @ ..] => (u16::from_be_bytes([*hi, *lo]), reason),
                };
                if !is_valid_status_code(code) {
                    return Err(WsError::InvalidCloseCode(code));
                }
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

/// Takes the first `n` bytes (all, when there are fewer) off the front of `buf`.
fn take_front<'a>(buf: &mut &'a mut [u8], n: usize) -> &'a mut [u8] {
    let whole = std::mem::take(buf);
    match whole.split_at_mut_checked(n.min(whole.len())) {
        Some((front, back)) => {
            *buf = back;
            front
        }
        None => &mut [],
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

    /// Arms only where the environment asks for test hooks
    /// (`WS_NATIVE_TEST_HOOKS=1`): elsewhere no call from JS reaches the
    /// panic. Returns whether it armed.
    pub fn arm() -> bool {
        let allowed = std::env::var_os("WS_NATIVE_TEST_HOOKS").is_some_and(|v| v == "1");
        ARMED.with(|a| a.set(allowed));
        allowed
    }

    /// Reachable only after `arm()` (the `injectPanic()` export, with test
    /// hooks on); every
    /// parse runs inside `catch_unwind` (engine/batch.rs `contain`), so the
    /// panic closes that one connection with 1011.
    #[allow(clippy::panic)]
    pub fn check() {
        if ARMED.with(|a| a.replace(false)) {
            panic!("injected by a test");
        }
    }
}
