//! One adopted socket: its fd and the events it is watched for, its parser and encoder, and
//! the bytes waiting to be written. Nothing here calls into JS.

use std::collections::VecDeque;
use std::ffi::c_int;

use super::batch::Batch;
use super::outq::{BufPool, OutQueue, SharedFrame, Wrote};
use super::syscall::{self, errno};
use super::uv;
use crate::core::deflate::{DeflateJob, Deflated};
use crate::core::frame::write_frame;
use crate::core::receiver::Receiver;
use crate::core::sender::{DataFrame, Encoder};

/// The request head a listener's connection is reading (boxed: most
/// connections are past it).
pub struct PendingHead {
    pub buf: Vec<u8>,
    /// When the listener accepted the connection (for the headers timeout).
    pub accepted: std::time::Instant,
}

/// What was queued since a compressed frame, until the next write attempt.
/// ws compresses on a thread pool, so until then a compressed message and
/// everything sent after it are not on the socket yet: `bufferedAmount`
/// counts their payload bytes, and a destroy drops them.
#[derive(Clone, Copy)]
pub struct Deferred {
    /// Where the compressed frame starts in the queue: (bytes, segments).
    pub mark: (usize, usize),
    /// Payload bytes of the messages from there on.
    pub payload: u64,
    /// Frame bytes queued from there on.
    pub frames: u64,
}

/// A send made while a message compresses on the pool: it waits, in order,
/// and is made again once the compressed frame is queued.
enum Held {
    Data { payload: Vec<u8>, frame: DataFrame, mask: Option<[u8; 4]> },
    Control { opcode: u8, payload: Vec<u8>, mask: Option<[u8; 4]> },
    Raw(Vec<u8>),
    Ack,
    End,
}

/// A data frame compressing on the pool, and the sends behind it.
struct Offloaded {
    opcode: u8,
    rsv1: bool,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes of the frame and of the held sends (`bufferedAmount`).
    payload: u64,
    held: VecDeque<Held>,
    acks: u32,
}

/// A frame built once for many connections (a publish): small ones are
/// copied into each queue, bigger ones shared.
pub enum Published {
    Copied(Vec<u8>),
    Shared(SharedFrame),
}

/// Why queued sends failed, for their callbacks' error.
pub const FAILED_CLOSED: u32 = 0;
pub const FAILED_COMPRESSING: u32 = 1;

pub struct Conn {
    pub id: u32,
    pub fd: c_int,
    pub receiver: Receiver,
    pub encoder: Encoder,
    out: OutQueue,
    /// Tokens of external payloads written out, for the engine to release.
    pub released: Vec<usize>,
    /// Bytes read from and written to the socket by the engine.
    pub read: u64,
    pub written: u64,
    acks: VecDeque<u64>,
    pub deferred: Option<Box<Deferred>>,
    /// Data frames at least this long compress on the pool (0: never).
    pub deflate_min: usize,
    offload: Option<Box<Offloaded>>,
    /// Input the receiver left while a message inflates on the pool.
    pub stash: Vec<u8>,
    /// The socket's errno when it failed while a message inflated.
    pub failed: i32,
    /// The native listener that accepted this connection (0: adopted).
    pub listener: u32,
    /// Accepted by a listener and not upgraded yet: bytes read go to
    /// `head` while the request is read, then to `stash`.
    pub handshaking: bool,
    pub head: Option<Box<PendingHead>>,
    /// Close once the write side is shut (a refused handshake).
    pub close_on_finish: bool,
    /// Tell JS when the handle has closed (see `Engine::closed_callback`).
    pub notify_closed: bool,
    /// A net.Socket has the fd too (`Engine::share_fd`) and closes it.
    pub fd_shared: bool,
    /// The last write attempt left bytes the kernel did not take.
    pub blocked: bool,
    /// A send leaving `bufferedAmount` above this is reported (`Sent::Full`).
    pub high_water: usize,
    /// A publish leaving `bufferedAmount` above this (0: no limit) reports
    /// the connection, which JS closes (`maxBufferedAmount`).
    pub max_buffered: usize,
    /// JS waits for `bufferedAmount` to reach 0 ('drain').
    pub need_drain: bool,
    /// The topics this connection is subscribed to (src/engine/topics.rs).
    pub topics: Vec<u32>,
    /// A close frame is queued: publishes pass this connection by.
    pub close_sent: bool,
    pub poll_events: c_int,
    pub paused: bool,
    pub eof: bool,
    pub ending: bool,
    pub shut: bool,
    pub closed: bool,
    pub dirty: bool,
}

/// What a read or a write found out about the socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Io {
    Open,
    /// Both directions are finished: close the connection cleanly.
    Done,
    /// The socket failed with this errno.
    Failed(i32),
}


impl Conn {
    pub fn new(id: u32, fd: c_int, receiver: Receiver, encoder: Encoder) -> Self {
        Conn {
            id,
            fd,
            receiver,
            encoder,
            out: OutQueue::default(),
            released: Vec::new(),
            read: 0,
            written: 0,
            acks: VecDeque::new(),
            deferred: None,
            deflate_min: 0,
            offload: None,
            stash: Vec::new(),
            failed: 0,
            listener: 0,
            handshaking: false,
            head: None,
            close_on_finish: false,
            notify_closed: false,
            fd_shared: false,
            blocked: false,
            high_water: usize::MAX,
            max_buffered: 0,
            need_drain: false,
            topics: Vec::new(),
            close_sent: false,
            poll_events: 0,
            paused: false,
            eof: false,
            ending: false,
            shut: false,
            closed: false,
            dirty: false,
        }
    }

    /// Big messages compress and inflate on the pool from now on.
    pub fn use_pool(&mut self) {
        self.deflate_min = super::pool::DEFLATE_MIN;
        self.receiver.set_offload(super::pool::INFLATE_MIN);
    }

    /// The write queue's byte buffer, for raw bytes (the 101 response).
    pub fn out(&mut self, pool: &mut BufPool) -> &mut Vec<u8> {
        self.out.bytes(pool)
    }

    /// Queues a data frame, or returns the job that compresses it on the
    /// pool (sends after it wait until `finish_deflate`).
    pub fn encode_data(&mut self, pool: &mut BufPool, payload: &[u8], frame: DataFrame, mask: Option<[u8; 4]>) -> Option<DeflateJob> {
        let DataFrame { opcode, fin, compress } = frame;
        if let Some(o) = self.offload.as_mut() {
            o.payload += payload.len() as u64;
            o.held.push_back(Held::Data { payload: payload.to_vec(), frame, mask });
            return None;
        }
        if self.deflate_min > 0 && payload.len() >= self.deflate_min {
            if let Some((op, rsv1, deflater)) = self.encoder.take_deflater(payload.len(), opcode, fin, compress) {
                let payload_len = payload.len() as u64;
                self.offload = Some(Box::new(Offloaded { opcode: op, rsv1, fin, mask, payload: payload_len, held: VecDeque::new(), acks: 0 }));
                return Some(DeflateJob { deflater, input: payload.to_vec(), fin });
            }
        }
        let mark = self.out.mark();
        let before = self.pending();
        if self.encoder.data(self.out.bytes(pool), payload, opcode, fin, compress, mask) && self.deferred.is_none() {
            self.deferred = Some(Box::new(Deferred { mark, payload: 0, frames: 0 }));
        }
        self.count_deferred(payload.len(), before);
        None
    }

    /// Queues the frame compressed on the pool, then makes the sends held
    /// behind it again; returns the next job when one of them compresses on
    /// the pool too.
    pub fn finish_deflate(&mut self, pool: &mut BufPool, done: Deflated) -> Option<DeflateJob> {
        let o = self.offload.take()?;
        self.encoder.put_deflater(done.deflater);
        write_frame(self.out.bytes(pool), o.fin, o.rsv1, o.opcode, &done.output, o.mask);
        let mut next = None;
        for h in o.held {
            let job = match h {
                Held::Data { payload, frame, mask } => self.encode_data(pool, &payload, frame, mask),
                Held::Control { opcode, payload, mask } => {
                    self.encode_control(pool, opcode, &payload, mask);
                    None
                }
                Held::Raw(bytes) => {
                    self.push_raw(pool, &bytes);
                    None
                }
                Held::Ack => {
                    self.want_ack();
                    None
                }
                Held::End => {
                    self.end();
                    None
                }
            };
            next = next.or(job);
        }
        next
    }

    /// Whether a data frame compresses on the pool (and how many acks wait
    /// behind it).
    pub fn offloading(&self) -> bool {
        self.offload.is_some()
    }

    /// Queues bytes that already form frames.
    pub fn push_raw(&mut self, pool: &mut BufPool, bytes: &[u8]) {
        if let Some(o) = self.offload.as_mut() {
            o.held.push_back(Held::Raw(bytes.to_vec()));
            return;
        }
        let before = self.pending();
        self.out(pool).extend_from_slice(bytes);
        self.count_deferred(0, before);
    }

    /// Queues a published frame; a shared one without a copy.
    pub fn push_published(&mut self, pool: &mut BufPool, frame: &Published, payload: usize) {
        if let Some(o) = self.offload.as_mut() {
            let bytes = match frame {
                Published::Copied(v) => v,
                Published::Shared(f) => f.bytes(),
            };
            o.payload += payload as u64;
            o.held.push_back(Held::Raw(bytes.to_vec()));
            return;
        }
        let before = self.pending();
        match frame {
            Published::Copied(v) => self.out(pool).extend_from_slice(v),
            Published::Shared(f) => self.out.push_shared(f),
        }
        self.count_deferred(payload, before);
    }

    /// Whether a publish reaches this connection: open, and no close or
    /// end queued.
    pub fn takes_publish(&self) -> bool {
        !self.closed && !self.handshaking && !self.ending && !self.close_sent && self.failed == 0
    }

    /// Half-closes once everything queued is written.
    pub fn end(&mut self) {
        match self.offload.as_mut() {
            Some(o) => o.held.push_back(Held::End),
            None => self.ending = true,
        }
    }

    /// Adds a frame queued after `before` bytes to what waits behind a
    /// compressed one.
    pub fn count_deferred(&mut self, payload: usize, before: usize) {
        let after = self.pending();
        if let Some(d) = self.deferred.as_mut() {
            d.payload += payload as u64;
            d.frames += (after - before) as u64;
        }
    }

    /// Whether a write now would go out before a compressed frame is "ready".
    pub fn waits_for_compression(&self) -> bool {
        self.deferred.is_some() || self.offload.is_some()
    }

    /// ws's `bufferedAmount`: the payload of what waits behind a compression,
    /// plus the frame bytes the kernel refused.
    pub fn buffered_amount(&self) -> usize {
        let (payload, frames) = self.deferred.as_ref().map_or((0, 0), |d| (d.payload as usize, d.frames as usize));
        let offloaded = self.offload.as_ref().map_or(0, |o| o.payload as usize);
        payload + offloaded + if self.blocked { self.pending().saturating_sub(frames) } else { 0 }
    }

    /// Drops what waits behind a compression (the socket is being destroyed).
    pub fn drop_deferred(&mut self, pool: &mut BufPool) {
        if let Some(d) = self.deferred.take() {
            self.out.truncate(d.mark, &mut self.released, pool);
        }
    }

    /// Queues an unmasked, uncompressed data frame whose payload is written
    /// from `ptr` without a copy; false (nothing queued) if it would be
    /// compressed.
    pub fn queue_external(&mut self, pool: &mut BufPool, ptr: *const u8, len: usize, token: usize, frame: DataFrame) -> bool {
        if self.offload.is_some() {
            return false;
        }
        let before = self.pending();
        if !self.encoder.data_header(self.out.bytes(pool), len, frame.opcode, frame.fin, frame.compress) {
            return false;
        }
        self.out.push_external(ptr, len, token);
        self.count_deferred(len, before);
        true
    }

    pub fn encode_control(&mut self, pool: &mut BufPool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
        if let Some(o) = self.offload.as_mut() {
            o.payload += payload.len() as u64;
            o.held.push_back(Held::Control { opcode, payload: payload.to_vec(), mask });
            return;
        }
        let before = self.pending();
        self.encoder.control(self.out.bytes(pool), opcode, payload, mask);
        self.count_deferred(payload.len(), before);
    }

    pub fn pending(&self) -> usize {
        self.out.pending()
    }

    pub fn awaits_acks(&self) -> bool {
        !self.acks.is_empty() || self.offload.as_ref().is_some_and(|o| o.acks > 0)
    }

    /// Asks for a send callback once everything queued so far is written.
    pub fn want_ack(&mut self) {
        if let Some(o) = self.offload.as_mut() {
            o.acks += 1;
            o.held.push_back(Held::Ack);
            return;
        }
        self.acks.push_back(self.written + self.pending() as u64);
    }

    /// Drops the write queue (the socket is closing).
    pub fn discard_output(&mut self, pool: &mut BufPool) {
        self.out.discard(&mut self.released, pool);
    }

    /// Why the sends still waiting fail, when the socket closes now.
    pub fn fail_reason(&self) -> u32 {
        if self.waits_for_compression() {
            FAILED_COMPRESSING
        } else {
            FAILED_CLOSED
        }
    }

    /// Send callbacks still waiting; they fail when the socket closes.
    pub fn take_unacked(&mut self) -> u32 {
        let held = self.offload.take().map_or(0, |o| o.acks);
        let n = self.acks.len() as u32 + held;
        self.acks.clear();
        n
    }

    pub fn held_bytes(&self) -> usize {
        self.out.capacity() + self.receiver.held_bytes() + self.stash.capacity()
    }

    /// Before the upgrade: reads the request's head (or, once it is in,
    /// whatever comes before the 101) without parsing frames. Returns the
    /// head once it can be judged.
    pub fn read_handshake(&mut self) -> (Io, Option<Vec<u8>>) {
        let reading_head = self.head.is_some();
        let buf = match self.head.as_mut() {
            Some(h) => &mut h.buf,
            None => &mut self.stash,
        };
        let room = if reading_head { super::http::MAX_HEAD + 1 - buf.len().min(super::http::MAX_HEAD) } else { 64 * 1024 };
        buf.reserve(room);
        let n = syscall::read_into(self.fd, buf, room);
        if n > 0 {
            self.read += n as u64;
            return (Io::Open, if reading_head { self.head.take().map(|h| h.buf) } else { None });
        }
        if n == 0 {
            self.eof = true;
            // Gone before the head was in: nothing to tell anyone.
            return (if reading_head { Io::Done } else { Io::Open }, None);
        }
        let e = errno();
        if buf.is_empty() {
            // Nothing yet: no buffer held while waiting.
            *buf = Vec::new();
        }
        match e {
            libc::EAGAIN | libc::EINTR => (Io::Open, None),
            e => (Io::Failed(e), None),
        }
    }

    /// Reads what the kernel has into the batch's arena and parses it there.
    pub fn on_readable(&mut self, batch: &mut Batch) -> Io {
        for _ in 0..4 {
            let start = batch.arena.len();
            let (n, full) = match batch.read_direct(self.id, self.fd, &mut self.receiver) {
                Some(r) => r,
                None => {
                    let Some(n) = batch.read_from(self.fd) else { break };
                    if n > 0 {
                        let left = batch.feed_arena(self.id, &mut self.receiver, start);
                        self.stash.extend_from_slice(&left);
                    }
                    (n, n as usize >= 64 * 1024)
                }
            };
            if self.receiver.is_inflating() {
                if n > 0 {
                    self.read += n as u64;
                }
                break;
            }
            if n > 0 {
                self.read += n as u64;
                if !full {
                    break;
                }
            } else if n == 0 {
                self.eof = true;
                batch.eof(self.id);
                return if self.shut { Io::Done } else { Io::Open };
            } else {
                match errno() {
                    libc::EAGAIN => break,
                    libc::EINTR => continue,
                    e => return Io::Failed(e),
                }
            }
        }
        Io::Open
    }

    /// Whether the kernel took all of the last write, counted in `batch`.
    pub fn set_blocked(&mut self, batch: &mut Batch, blocked: bool) {
        if self.blocked != blocked {
            self.blocked = blocked;
            if blocked {
                batch.blocked += 1;
            } else {
                batch.blocked -= 1;
            }
        }
    }

    /// Writes as much of the queue as the kernel takes, acknowledges sends
    /// that are fully written and, once the queue is empty after `end()`,
    /// shuts down the write side.
    pub fn flush(&mut self, batch: &mut Batch, pool: &mut BufPool) -> Io {
        self.deferred = None;
        match self.out.write_to(self.fd, &mut self.written, &mut self.released, pool) {
            Wrote::Failed(e) => return Io::Failed(e),
            Wrote::Blocked => self.set_blocked(batch, true),
            Wrote::All => self.set_blocked(batch, false),
        }
        let mut acked = 0;
        while self.acks.front().is_some_and(|&end| end <= self.written) {
            self.acks.pop_front();
            acked += 1;
        }
        if acked > 0 {
            batch.ack(self.id, acked, 0);
        }
        if self.need_drain && self.buffered_amount() == 0 {
            self.need_drain = false;
            batch.drain(self.id);
        }
        if self.ending && !self.shut && self.pending() == 0 {
            self.shut = true;
            syscall::shutdown_write(self.fd);
            batch.finish(self.id);
            if self.eof || self.close_on_finish {
                return Io::Done;
            }
        }
        Io::Open
    }

    /// The poll events this connection needs now.
    pub fn wanted_events(&self) -> c_int {
        let mut ev = 0;
        if !self.paused && !self.eof && !self.closed && !self.receiver.is_inflating() && self.failed == 0 {
            ev |= uv::READABLE;
        }
        if self.pending() > 0 && !self.closed && self.failed == 0 {
            ev |= uv::WRITABLE;
        }
        ev
    }
}
