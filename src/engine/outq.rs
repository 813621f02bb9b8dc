//! A connection's write queue: frame bytes in a pooled buffer, plus big
//! payloads written straight from JS memory (kept alive by a token the
//! caller releases once they are written). One sendmsg per flush.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::ffi::c_int;
use std::rc::Rc;

/// Write buffers shared by all connections: a connection takes one when it
/// has something to write and gives it back once it is written, so an idle
/// connection holds none and a busy engine does not allocate per write.
#[derive(Default)]
pub struct BufPool {
    free: Vec<Vec<u8>>,
    /// Capacity of the buffers in `free`.
    bytes: usize,
}

/// Enough for a publish to every connection of a big topic to reuse buffers.
const POOL_MAX: usize = 16 * 1024;
const POOL_BUF_MAX: usize = 1 << 20;
/// Bytes the pool may hold in all; past it, returned buffers are freed.
const POOL_BYTES_MAX: usize = 8 << 20;

impl BufPool {
    pub fn take(&mut self) -> Vec<u8> {
        let v = self.free.pop().unwrap_or_default();
        self.bytes -= v.capacity();
        v
    }

    pub fn give(&mut self, mut v: Vec<u8>) {
        let cap = v.capacity();
        if cap > 0 && cap <= POOL_BUF_MAX && self.free.len() < POOL_MAX && self.bytes + cap <= POOL_BYTES_MAX {
            v.clear();
            self.bytes += cap;
            self.free.push(v);
        }
    }
}

/// Frames that many queues share (publishes), one after another in one
/// buffer: the frames of one loop turn's publishes that a connection gets
/// are then one run of bytes, one segment and one iovec in its queue. The
/// buffer's capacity is fixed, so appending never moves the frames queues
/// point into; it lives while any queue holds a frame of it.
pub struct Chunk {
    bytes: UnsafeCell<Vec<u8>>,
}

/// A chunk's size; a bigger frame takes a chunk of its own size. A queue
/// that holds one frame of a chunk keeps the whole chunk alive: with frames
/// of at least 1 KiB shared (topics.rs), a slow subscriber pins at most 8
/// times what it is owed, while a burst of publishes to a connection still
/// goes out as a few segments.
const CHUNK_BYTES: usize = 8 * 1024;

impl Chunk {
    /// Appends a frame, written as `parts` one after another, to `current`,
    /// or to a new chunk that becomes current when it does not fit (a frame
    /// bigger than a chunk gets one of its own size, which stays out of
    /// `current`).
    pub fn share(current: &mut Option<Rc<Chunk>>, parts: &[&[u8]]) -> SharedFrame {
        let len = parts.iter().map(|p| p.len()).sum();
        if let Some(chunk) = current.as_ref() {
            if let Some(at) = chunk.append(parts, len) {
                return SharedFrame { chunk: Rc::clone(chunk), at, len };
            }
        }
        let chunk = Rc::new(Chunk { bytes: UnsafeCell::new(Vec::with_capacity(len.max(CHUNK_BYTES))) });
        let at = chunk.append(parts, len).unwrap_or(0);
        if len < CHUNK_BYTES {
            *current = Some(Rc::clone(&chunk));
        }
        SharedFrame { chunk, at, len }
    }

    /// Where the `len` bytes of `parts` now start, or None when the capacity
    /// left is short.
    fn append(&self, parts: &[&[u8]], len: usize) -> Option<usize> {
        // SAFETY: an Rc'd chunk stays on its thread, and no reference into
        // the Vec outlives this call; queues hold pointers to bytes below
        // its length, which an append within the capacity does not move.
        let bytes = unsafe { &mut *self.bytes.get() };
        if bytes.capacity() - bytes.len() < len {
            return None;
        }
        let at = bytes.len();
        for p in parts {
            bytes.extend_from_slice(p);
        }
        Some(at)
    }

    fn ptr(&self, at: usize) -> *const u8 {
        // SAFETY: as in `append`; only the pointer is taken.
        unsafe { (*self.bytes.get()).as_ptr().wrapping_add(at) }
    }
}

/// One frame in a chunk.
pub struct SharedFrame {
    chunk: Rc<Chunk>,
    at: usize,
    len: usize,
}

impl SharedFrame {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the frame's bytes were appended and are never written again.
        unsafe { std::slice::from_raw_parts(self.chunk.ptr(self.at), self.len) }
    }
}

/// Who keeps a segment's bytes alive.
enum Keep {
    /// JS memory, held by the caller until its token comes back.
    Token(usize),
    /// Frames in a chunk shared with other connections' queues (publishes).
    Shared(Rc<Chunk>),
}

/// A payload in memory the queue does not own.
struct Seg {
    /// Position in `buf` the payload goes after.
    at: usize,
    ptr: *const u8,
    len: usize,
    done: usize,
    keep: Keep,
}

impl Seg {
    /// Hands the segment's JS token, if any, to `released`.
    fn release(self, released: &mut Vec<usize>) {
        if let Keep::Token(t) = self.keep {
            released.push(t);
        }
    }
}

#[derive(Default)]
pub struct OutQueue {
    buf: Vec<u8>,
    head: usize,
    segs: VecDeque<Seg>,
    seg_bytes: usize,
}

const MAX_IOV: usize = 64;

pub enum Wrote {
    /// Everything is written.
    All,
    /// The kernel's buffer is full.
    Blocked,
    Failed(i32),
}

impl OutQueue {
    /// The byte buffer, taking one from `pool` when there is none.
    pub fn bytes(&mut self, pool: &mut BufPool) -> &mut Vec<u8> {
        if self.buf.capacity() == 0 {
            self.buf = pool.take();
        }
        &mut self.buf
    }

    /// Queues `len` bytes at `ptr`, to be written after what is queued now.
    /// The memory must stay valid until `token` comes back from `write_to`.
    pub fn push_external(&mut self, ptr: *const u8, len: usize, token: usize) {
        self.segs.push_back(Seg { at: self.buf.len(), ptr, len, done: 0, keep: Keep::Token(token) });
        self.seg_bytes += len;
    }

    /// Queues a frame other queues share, without a copy. Right behind the
    /// frame queued last, in the same chunk, it joins that segment.
    pub fn push_shared(&mut self, frame: &SharedFrame) {
        let (ptr, len) = (frame.chunk.ptr(frame.at), frame.len);
        self.seg_bytes += len;
        if let Some(last) = self.segs.back_mut() {
            if let Keep::Shared(chunk) = &last.keep {
                if last.at == self.buf.len() && Rc::ptr_eq(chunk, &frame.chunk) && last.ptr.wrapping_add(last.len) == ptr {
                    last.len += len;
                    return;
                }
            }
        }
        self.segs.push_back(Seg { at: self.buf.len(), ptr, len, done: 0, keep: Keep::Shared(Rc::clone(&frame.chunk)) });
    }

    /// The current end of the queue, for `truncate`.
    pub fn mark(&self) -> (usize, usize) {
        (self.buf.len(), self.segs.len())
    }

    /// Drops everything queued after `mark` (taken with no write since);
    /// the tokens of dropped external payloads go to `released`.
    pub fn truncate(&mut self, mark: (usize, usize), released: &mut Vec<usize>, pool: &mut BufPool) {
        let (bytes, segs) = mark;
        for s in self.segs.drain(segs.min(self.segs.len())..) {
            self.seg_bytes -= s.len - s.done;
            s.release(released);
        }
        self.buf.truncate(bytes.max(self.head));
        if self.pending() == 0 {
            self.head = 0;
            pool.give(std::mem::take(&mut self.buf));
        }
    }

    pub fn pending(&self) -> usize {
        self.buf.len() - self.head + self.seg_bytes
    }

    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Writes what the kernel takes; `written` grows by the bytes written and
    /// `released` gets the tokens of external payloads fully written.
    pub fn write_to(&mut self, fd: c_int, written: &mut u64, released: &mut Vec<usize>, pool: &mut BufPool) -> Wrote {
        let result = loop {
            if self.pending() == 0 {
                break Wrote::All;
            }
            let mut iov: [libc::iovec; MAX_IOV] = unsafe { std::mem::zeroed() };
            let (count, total) = self.gather(&mut iov);
            // SAFETY: `gather` points every entry at queued bytes: the pooled
            // buffer, or external payloads kept alive until released.
            let n = unsafe { super::syscall::send_iov(fd, &mut iov[..count]) };
            if n < 0 {
                match super::syscall::errno() {
                    libc::EINTR => continue,
                    libc::EAGAIN => break Wrote::Blocked,
                    e => break Wrote::Failed(e),
                }
            }
            *written += n as u64;
            self.advance(n as usize, released);
            if (n as usize) < total {
                break Wrote::Blocked;
            }
        };
        if self.pending() == 0 {
            self.head = 0;
            pool.give(std::mem::take(&mut self.buf));
        }
        result
    }

    /// Fills `iov` with the queue in order; returns (entries, bytes).
    fn gather(&self, iov: &mut [libc::iovec; MAX_IOV]) -> (usize, usize) {
        let mut count = 0;
        let mut total = 0;
        let mut pos = self.head;
        let mut push = |ptr: *const u8, len: usize, count: &mut usize| {
            if len > 0 && *count < MAX_IOV {
                iov[*count] = libc::iovec { iov_base: ptr as *mut _, iov_len: len };
                *count += 1;
                total += len;
            }
        };
        for s in &self.segs {
            if count >= MAX_IOV - 1 {
                break;
            }
            push(unsafe { self.buf.as_ptr().add(pos) }, s.at - pos, &mut count);
            push(unsafe { s.ptr.add(s.done) }, s.len - s.done, &mut count);
            pos = s.at;
        }
        push(unsafe { self.buf.as_ptr().add(pos) }, self.buf.len() - pos, &mut count);
        (count, total)
    }

    fn advance(&mut self, mut n: usize, released: &mut Vec<usize>) {
        while n > 0 {
            match self.segs.front_mut() {
                Some(s) if s.at == self.head => {
                    let take = n.min(s.len - s.done);
                    s.done += take;
                    self.seg_bytes -= take;
                    n -= take;
                    if s.done == s.len {
                        if let Some(s) = self.segs.pop_front() {
                            s.release(released);
                        }
                    }
                }
                next => {
                    let limit = next.map_or(self.buf.len(), |s| s.at);
                    let take = n.min(limit - self.head);
                    self.head += take;
                    n -= take;
                }
            }
        }
        // Zero-length leftovers at the head (none are queued, but be safe).
        while self.segs.front().is_some_and(|s| s.at == self.head && s.done == s.len) {
            if let Some(s) = self.segs.pop_front() {
                s.release(released);
            }
        }
    }

    /// Drops everything queued; returns the tokens still held.
    pub fn discard(&mut self, released: &mut Vec<usize>, pool: &mut BufPool) {
        for s in self.segs.drain(..) {
            s.release(released);
        }
        self.seg_bytes = 0;
        self.head = 0;
        pool.give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socketpair() -> (c_int, c_int) {
        let mut fds = [0; 2];
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0, fds.as_mut_ptr()) };
        (fds[0], fds[1])
    }

    /// Writes `q` into `a` until it is empty, reading `b` as it goes:
    /// (bytes written, tokens released, bytes read).
    fn drain(q: &mut OutQueue, pool: &mut BufPool, a: c_int, b: c_int) -> (u64, Vec<usize>, Vec<u8>) {
        let (mut written, mut released, mut got) = (0u64, vec![], vec![]);
        while q.pending() > 0 {
            match q.write_to(a, &mut written, &mut released, pool) {
                Wrote::Failed(e) => panic!("errno {e}"),
                _ => got.extend(read_all(b)),
            }
        }
        got.extend(read_all(b));
        (written, released, got)
    }

    fn read_all(fd: c_int) -> Vec<u8> {
        let mut out = vec![];
        let mut buf = [0u8; 65536];
        loop {
            let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut _, buf.len()) };
            if n <= 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
    }

    #[test]
    fn shared_frames_in_a_row_are_one_segment() {
        let (a, b) = socketpair();
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        let mut current = None;
        let f1 = Chunk::share(&mut current, &[&[1u8; 1500]]);
        let f2 = Chunk::share(&mut current, &[&[2u8; 1500]]);
        // Bigger than a chunk: a chunk of its own, and the current one stays.
        let big = Chunk::share(&mut current, &[&vec![3u8; CHUNK_BYTES + 1]]);
        let f3 = Chunk::share(&mut current, &[&[4u8; 1500]]);
        q.push_shared(&f1);
        q.push_shared(&f2);
        assert_eq!(q.segs.len(), 1, "the second frame joins the first");
        q.push_shared(&big);
        q.push_shared(&f3);
        assert_eq!(q.segs.len(), 3, "another chunk, then a frame not right behind the last");
        q.bytes(&mut pool).extend_from_slice(b"raw");
        q.push_shared(&f1);
        assert_eq!(q.segs.len(), 4, "bytes queued in between");
        // The chunk fills up: a new one is made, and frames already there stay.
        while current.as_ref().is_some_and(|c| Rc::ptr_eq(c, &f1.chunk)) {
            Chunk::share(&mut current, &[&[5u8; 1500]]);
        }
        assert_eq!(f1.bytes(), &[1u8; 1500][..]);
        let want: Vec<u8> = [f1.bytes(), f2.bytes(), big.bytes(), f3.bytes(), b"raw", f1.bytes()].concat();
        assert_eq!(q.pending(), want.len());
        let (written, released, got) = drain(&mut q, &mut pool, a, b);
        assert_eq!(got, want);
        assert_eq!(written as usize, want.len());
        assert!(released.is_empty());
        unsafe {
            libc::close(a);
            libc::close(b);
        }
    }

    #[test]
    fn interleaves_bytes_and_external_payloads_in_order() {
        let (a, b) = socketpair();
        let mut pool = BufPool::default();
        let mut q = OutQueue::default();
        let big1 = vec![1u8; 300_000];
        let big2 = vec![2u8; 10];
        q.bytes(&mut pool).extend_from_slice(b"h1");
        q.push_external(big1.as_ptr(), big1.len(), 11);
        q.bytes(&mut pool).extend_from_slice(b"h2");
        q.push_external(big2.as_ptr(), big2.len(), 22);
        q.bytes(&mut pool).extend_from_slice(b"tail");
        let want: Vec<u8> = [&b"h1"[..], &big1, b"h2", &big2, b"tail"].concat();
        let (written, released, got) = drain(&mut q, &mut pool, a, b);
        assert_eq!(got, want);
        assert_eq!(written as usize, want.len());
        assert_eq!(released, vec![11, 22]);
        assert_eq!(q.capacity(), 0);
        unsafe {
            libc::close(a);
            libc::close(b);
        }
    }
}
