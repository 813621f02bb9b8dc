//! The native engine: adopted sockets polled by Node's own libuv loop,
//! parsed and written on the JS thread, with one JS call per loop turn.

pub mod batch;
pub mod connection;
pub mod dispatch;
pub mod http;
pub mod idmap;
pub mod outq;
pub mod pool;
pub mod syscall;
pub mod topics;
pub mod uv;

use std::collections::HashMap;
use std::ffi::{c_int, c_void};

use napi::sys;

use crate::core::deflate::{Deflater, Inflater, Params};
use crate::core::error::WsError;
use crate::core::mask::MaskPool;
use crate::core::receiver::{Receiver, ReceiverConfig};
use crate::core::sender::{DataFrame, Encoder};
use batch::Batch;
use idmap::IdMap;
use connection::{Conn, Io, PendingHead};
use topics::{Frames, Topics};
use outq::BufPool;
use pool::{Done, Job, Pool};
use uv::{Api, Handle, Loop};

/// permessage-deflate parameters as negotiated, seen from this endpoint.
#[derive(Debug, Clone, Copy)]
pub struct DeflateConfig {
    pub inflate_window_bits: u8,
    pub inflate_no_context_takeover: bool,
    pub deflate_no_context_takeover: bool,
    pub deflate_params: Params,
    pub threshold: usize,
}

pub struct ConnConfig {
    pub receiver: ReceiverConfig,
    pub deflate: Option<DeflateConfig>,
    /// `Conn::high_water` and `Conn::max_buffered`.
    pub high_water: usize,
    pub max_buffered: usize,
}

impl ConnConfig {
    fn apply_marks(&self, c: &mut Conn) {
        c.high_water = self.high_water;
        c.max_buffered = self.max_buffered;
    }

    /// The parser and encoder of a connection with this configuration.
    pub fn codec(&self) -> (Receiver, Encoder) {
        match self.deflate {
            Some(d) => (
                Receiver::new(self.receiver, Some(Inflater::new(d.inflate_window_bits, d.inflate_no_context_takeover))),
                Encoder::new(
                    Some(Deflater::new(d.deflate_params, d.deflate_no_context_takeover)),
                    d.deflate_no_context_takeover.then_some(d.threshold),
                ),
            ),
            None => (Receiver::new(self.receiver, None), Encoder::new(None, None)),
        }
    }
}

/// What became of a send.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Sent {
    /// The connection is gone; nothing was queued.
    Gone,
    /// Not taken (an external payload that is to be compressed).
    NotQueued,
    /// Queued; an acknowledgement comes in a batch when it was asked for.
    Queued,
    /// Written to the kernel at once; no acknowledgement comes, the caller
    /// runs the send's callback itself (as Node does, on the next tick).
    Written,
    /// Queued, and `bufferedAmount` is now above the connection's high-water
    /// mark (acknowledged as `Queued`).
    Full,
}

/// Bytes queued in one batch past which they are written at once.
const FLUSH_EARLY: usize = 64 * 1024;

/// `sent`, or `Sent::Full` when `c`'s `bufferedAmount` is above its mark.
fn full_or(c: &Conn, sent: Sent) -> Sent {
    if c.buffered_amount() > c.high_water {
        Sent::Full
    } else {
        sent
    }
}

/// Whether a send wants its callback, and whether that may be run by the
/// caller when the frame is written at once (no earlier callback waits).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Ack {
    No,
    Later,
    NowOrLater,
}

/// How a frame is masked.
#[derive(Debug, Clone, Copy)]
pub enum Masking {
    None,
    Random,
    Key([u8; 4]),
}

impl Masking {
    pub fn key(self, pool: &mut MaskPool) -> Option<[u8; 4]> {
        match self {
            Masking::None => None,
            Masking::Random => Some(pool.next_key()),
            Masking::Key(k) => Some(k),
        }
    }
}

pub struct Engine {
    api: &'static Api,
    env: sys::napi_env,
    lp: *mut Loop,
    check: *mut Handle,
    idle: *mut Handle,
    idle_on: bool,
    conns: IdMap<*mut Conn>,
    /// Byte counts of closed connections, until JS takes them.
    finals: HashMap<u32, (u64, u64)>,
    next_id: u32,
    batch: Batch,
    /// The JS memory small batches are copied into (see `dispatch::JsPool`).
    js_pool: dispatch::JsPool,
    bufs: BufPool,
    dirty: Vec<u32>,
    dispatching: bool,
    callback: sys::napi_ref,
    /// Called with a connection's id when its handle has closed, for the
    /// connections a listener accepted (JS emits their 'close' then, as a
    /// net.Socket does from its handle's close callback).
    closed_callback: sys::napi_ref,
    async_ctx: sys::napi_async_context,
    masks: MaskPool,
    /// Handles closing whose callbacks have not run yet.
    closing: usize,
    cleanup: sys::napi_async_cleanup_hook_handle,
    torn_down: bool,
    /// Big deflate and inflate work, made when a connection first
    /// negotiates permessage-deflate; None also when it could not start.
    pool: Option<Pool>,
    pool_tried: bool,
    listeners: HashMap<u32, Box<Listener>>,
    next_listener: u32,
    topics: Topics,
    /// Connections a publish left above their `max_buffered`, for JS.
    overflowed: Vec<u32>,
    /// The epoll instance the connections' sockets are watched in (-1 while
    /// it could not be made), behind one libuv poll on its fd, active while any
    /// connection wants events: a connection costs one epoll_ctl to watch
    /// and one to let go, where a poll handle of its own cost five and an
    /// ioctl, and no handle.
    epfd: c_int,
    ep_poll: *mut Handle,
    watched: usize,
    /// Connections closed in this loop turn: freed (and a listener's
    /// announced to JS) in the turn's close phase, where a socket handle's
    /// close callback runs; `closer` is the handle that gets it there.
    closed_conns: Vec<*mut Conn>,
    closer: bool,
}

/// A listening socket of a `{ port }` WebSocketServer.
pub struct Listener {
    id: u32,
    fd: c_int,
    poll: *mut Handle,
    owner: *mut Engine,
    /// Connections it accepted that the engine still holds.
    live: usize,
    closed: bool,
    /// Given up to accept (and drop) a connection when out of fds.
    reserve: c_int,
}

thread_local! {
    /// The engine of the environment on this thread (one per thread), for
    /// the bindings' hot functions, which take no receiver.
    static CURRENT: std::cell::Cell<*mut Engine> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// Teardown has begun: `current()` no longer hands out `eng`.
fn forget(eng: *mut Engine) {
    CURRENT.with(|c| {
        if c.get() == eng {
            c.set(std::ptr::null_mut());
        }
    });
}

/// This thread's engine, until its environment tears it down.
pub fn current() -> Option<&'static mut Engine> {
    let e = CURRENT.with(|c| c.get());
    // SAFETY: set by `create` to the engine's box, cleared by teardown
    // before the box is freed; only this thread reads it.
    unsafe { e.as_mut() }.filter(|e| !e.torn_down)
}

impl Engine {
    /// Creates the engine of one Node environment and registers its libuv
    /// handles. `callback` receives every batch.
    ///
    /// # Safety
    /// Call on the JS thread of `env`, with `callback` a function of it.
    pub unsafe fn create(env: sys::napi_env, callback: sys::napi_value, closed_callback: sys::napi_value) -> Result<*mut Engine, String> {
        let api = uv::api().ok_or("this Node.js does not export libuv to addons")?;
        let mut lp: *mut Loop = std::ptr::null_mut();
        if sys::napi_get_uv_event_loop(env, &mut lp) != sys::Status::napi_ok || lp.is_null() {
            return Err("napi_get_uv_event_loop failed".into());
        }
        let mut cb_ref = std::ptr::null_mut();
        sys::napi_create_reference(env, callback, 1, &mut cb_ref);
        let async_ctx = dispatch::async_context(env);
        let eng = Box::into_raw(Box::new(Engine {
            api,
            env,
            lp,
            check: std::ptr::null_mut(),
            idle: std::ptr::null_mut(),
            idle_on: false,
            conns: IdMap::default(),
            finals: HashMap::new(),
            next_id: 1,
            batch: Batch::default(),
            js_pool: dispatch::JsPool::default(),
            bufs: BufPool::default(),
            dirty: Vec::new(),
            dispatching: false,
            callback: cb_ref,
            closed_callback: {
                let mut r = std::ptr::null_mut();
                sys::napi_create_reference(env, closed_callback, 1, &mut r);
                r
            },
            async_ctx,
            masks: MaskPool::default(),
            closing: 0,
            cleanup: std::ptr::null_mut(),
            torn_down: false,
            pool: None,
            pool_tried: false,
            listeners: HashMap::new(),
            next_listener: 1,
            topics: Topics::default(),
            overflowed: Vec::new(),
            epfd: -1,
            ep_poll: std::ptr::null_mut(),
            watched: 0,
            closed_conns: Vec::new(),
            closer: false,
        }));
        (*eng).check = api.new_check(lp, eng as *mut c_void, on_check);
        // Its fd from the start, so that it is not the fd found missing
        // when the process runs out of them.
        let _ = (*eng).reactor();
        (*eng).idle = api.new_idle(lp, eng as *mut c_void);
        sys::napi_add_async_cleanup_hook(env, Some(on_env_cleanup), eng as *mut c_void, &mut (*eng).cleanup);
        // One engine per environment (native-transport.js makes it); were
        // there a second, the first keeps serving the receiver-less calls.
        CURRENT.with(|c| {
            if c.get().is_null() {
                c.set(eng);
            }
        });
        Ok(eng)
    }

    /// Takes over a connected socket's fd, shared with the Node handle that
    /// has stopped reading it (and never reads or writes it again; the
    /// handle closes the fd once the engine has let go of it). Feeds `head`
    /// to the parser and writes `initial` first.
    ///
    /// # Safety
    /// `fd` is an open, connected socket; call on the engine's JS thread.
    pub unsafe fn adopt(&mut self, fd: c_int, cfg: ConnConfig, head: &[u8], initial: &[u8]) -> Result<u32, String> {
        if self.torn_down {
            return Err("the engine is shut down".into());
        }
        let c = self.register(fd, &cfg, |c| c.fd_shared = true).map_err(|rc| format!("the engine could not watch the socket: {rc}"))?;
        let id = c.id;
        if !initial.is_empty() {
            c.out(&mut self.bufs).extend_from_slice(initial);
            self.after_io(c, |c, b, p| c.flush(b, p));
        }
        if !head.is_empty() && !c.closed {
            c.stash = self.batch.feed_copy(id, &mut c.receiver, head);
            self.submit_inflates();
        }
        self.update_poll(c);
        self.wake();
        Ok(id)
    }

    /// Listens on `ip:port` for a `{ port }` server: connections are accepted
    /// and their upgrade requests read here (see `http.rs`). Returns the
    /// listener's id and the address it is bound to.
    pub fn listen(&mut self, ip: std::net::IpAddr, port: u16, backlog: i32) -> Result<(u32, std::net::SocketAddr), (i32, &'static str)> {
        if self.torn_down {
            return Err((libc::EINVAL, "listen"));
        }
        let fd = syscall::listen_tcp(ip, port, backlog)?;
        let addr = syscall::local_addr(fd).ok_or((libc::EINVAL, "listen"))?;
        let id = self.next_listener;
        self.next_listener += 1;
        let mut l = Box::new(Listener { id, fd, poll: std::ptr::null_mut(), owner: self, live: 0, closed: false, reserve: syscall::reserve_fd() });
        let data = &mut *l as *mut Listener as *mut c_void;
        // SAFETY: on the loop's thread; the fd stays open until the handle is closed.
        match unsafe { self.api.new_poll(self.lp, fd, data) } {
            Ok(h) => l.poll = h,
            Err(rc) => {
                syscall::close(fd);
                syscall::close(l.reserve);
                return Err((-rc, "listen"));
            }
        }
        unsafe { self.api.poll_start(l.poll, uv::READABLE, on_listener_poll) };
        self.listeners.insert(id, l);
        Ok((id, addr))
    }

    /// Stops listening; accepted connections stay. JS hears `drained` once
    /// the last of them is gone.
    pub fn close_listener(&mut self, id: u32) {
        let eng = self as *mut Engine as *mut c_void;
        let Some(l) = self.listeners.get_mut(&id) else { return };
        if l.closed {
            return;
        }
        l.closed = true;
        let (poll, fd, reserve) = (l.poll, l.fd, l.reserve);
        self.closing += 1;
        // The close callback outlives the listener: it gets the engine.
        unsafe {
            self.api.set_handle_data(poll, eng);
            self.api.close(poll, dispatch::on_engine_handle_closed);
        }
        syscall::close(fd);
        syscall::close(reserve);
        self.listener_gone(id, 0);
    }

    /// Answers 408 and closes the listener's connections that have not sent
    /// a whole request head within `max_ms`, as Node's `headersTimeout`
    /// does. Returns how many.
    pub fn sweep(&mut self, lid: u32, max_ms: u64) -> usize {
        let now = std::time::Instant::now();
        let late: Vec<u32> = self
            .conns
            .values()
            .map(|&c| unsafe { &*c })
            .filter(|c| c.listener == lid && c.head.as_ref().is_some_and(|h| now.duration_since(h.accepted).as_millis() as u64 >= max_ms))
            .map(|c| c.id)
            .collect();
        for &id in &late {
            self.refuse(id, b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n");
        }
        late.len()
    }

    /// Connections a listener accepted that the engine holds.
    pub fn listener_connections(&self, id: u32) -> usize {
        self.listeners.get(&id).map_or(0, |l| l.live)
    }

    /// `lost` of the listener's connections left the engine; a closed
    /// listener with none left is done.
    fn listener_gone(&mut self, id: u32, lost: usize) {
        let Some(l) = self.listeners.get_mut(&id) else { return };
        l.live = l.live.saturating_sub(lost);
        if l.closed && l.live == 0 {
            self.listeners.remove(&id);
            self.batch.drained(id);
            self.wake();
        }
    }

    /// Takes the connections waiting on a listener.
    fn accept_all(&mut self, lid: u32) {
        for _ in 0..128 {
            let Some(l) = self.listeners.get(&lid).filter(|l| !l.closed) else { return };
            let (fd, reserve) = (l.fd, l.reserve);
            match syscall::accept(fd) {
                Ok(c) => self.accept_conn(lid, c),
                Err(libc::EINTR | libc::ECONNABORTED) => continue,
                Err(libc::EMFILE | libc::ENFILE) if reserve >= 0 => {
                    // Out of fds: make room, take the connection and drop
                    // it (its client sees a reset), as libuv does.
                    syscall::close(reserve);
                    while let Ok(c) = syscall::accept(fd) {
                        syscall::close(c);
                    }
                    if let Some(l) = self.listeners.get_mut(&lid) {
                        l.reserve = syscall::reserve_fd();
                    }
                    return;
                }
                Err(_) => return,
            }
        }
    }

    fn accept_conn(&mut self, lid: u32, fd: c_int) {
        // Its codec is set at the upgrade.
        let cfg = ConnConfig { receiver: ReceiverConfig { is_server: true, max_payload: 0, max_fragments: 0, max_buffered_chunks: 0, skip_utf8_validation: false }, deflate: None, high_water: usize::MAX, max_buffered: 0 };
        let registered = self.register(fd, &cfg, |c| {
            c.listener = lid;
            c.handshaking = true;
            c.notify_closed = true;
            c.head = Some(Box::new(PendingHead { buf: Vec::new(), accepted: std::time::Instant::now() }));
        });
        let Ok(c) = registered else {
            syscall::close(fd);
            return;
        };
        if let Some(l) = self.listeners.get_mut(&lid) {
            l.live += 1;
        }
        self.update_poll(c);
        // A client writes its request as soon as it is connected: it is
        // often here already, and JS can have it in this loop turn.
        self.handshake_readable(c);
    }

    /// Makes a connection on `fd` with `cfg`'s codec (set up further by
    /// `init`), watched in the engine's epoll; Err(libuv's code) when it can't be.
    fn register(&mut self, fd: c_int, cfg: &ConnConfig, init: impl FnOnce(&mut Conn)) -> Result<&'static mut Conn, c_int> {
        let (receiver, encoder) = cfg.codec();
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let mut conn = Box::new(Conn::new(id, fd, receiver, encoder));
        if cfg.deflate.is_some() && self.start_pool() {
            conn.use_pool();
        }
        cfg.apply_marks(&mut conn);
        init(&mut conn);
        let conn = Box::into_raw(conn);
        // SAFETY: the box is freed in the close phase after the connection
        // closes (`on_conns_closed`), or here.
        let events = unsafe { (*conn).wanted_events() };
        if let Err(rc) = self.watch(unsafe { &mut *conn }, events) {
            drop(unsafe { Box::from_raw(conn) });
            return Err(rc);
        }
        self.conns.insert(id, conn);
        Ok(unsafe { &mut *conn })
    }

    /// The epoll fd, made (with its libuv poll) with the engine, or when
    /// that failed, on first use; Err(libuv's code) when there is none.
    fn reactor(&mut self) -> Result<c_int, c_int> {
        if self.epfd >= 0 {
            return Ok(self.epfd);
        }
        let ep = syscall::epoll_create().map_err(|e| -e)?;
        // SAFETY: on the loop's thread; the epoll fd stays open until the
        // handle is closed (teardown).
        let h = match unsafe { self.api.new_poll(self.lp, ep, self as *mut Engine as *mut c_void) } {
            Ok(h) => h,
            Err(rc) => {
                syscall::close(ep);
                return Err(rc);
            }
        };
        // The poll runs from now to teardown, referenced only while a
        // connection is watched (`watch`): starting and stopping it would
        // cost libuv three epoll_ctl calls each time the engine's last
        // connection goes and the next one comes.
        // SAFETY: `h` is open; on failure it is closed with the fd.
        unsafe {
            let rc = self.api.poll_start(h, uv::READABLE, on_epoll);
            if rc < 0 {
                self.api.close(h, uv::free_handle_cb);
                syscall::close(ep);
                return Err(rc);
            }
            self.api.set_ref(h, false);
        }
        self.ep_poll = h;
        self.epfd = ep;
        Ok(ep)
    }

    /// Watches `c`'s socket for `events` (READABLE | WRITABLE; 0: not at all).
    fn watch(&mut self, c: &mut Conn, events: c_int) -> Result<(), c_int> {
        if events == c.poll_events {
            return Ok(());
        }
        let ep = self.reactor()?;
        let op = match (c.poll_events, events) {
            (0, _) => libc::EPOLL_CTL_ADD,
            (_, 0) => libc::EPOLL_CTL_DEL,
            _ => libc::EPOLL_CTL_MOD,
        };
        let mut bits = 0;
        if events & uv::READABLE != 0 {
            bits |= libc::EPOLLIN as u32;
        }
        if events & uv::WRITABLE != 0 {
            bits |= libc::EPOLLOUT as u32;
        }
        let done = syscall::epoll_ctl(ep, op, c.fd, bits, c as *mut Conn as u64);
        // A watch that can't be removed is not there (the fd is gone): the
        // connection counts as unwatched all the same, or the engine's poll
        // would keep the loop alive for it.
        if op != libc::EPOLL_CTL_DEL {
            done.map_err(|e| -e)?;
        }
        let before = self.watched;
        if c.poll_events == 0 {
            self.watched += 1;
        } else if events == 0 {
            self.watched -= 1;
        }
        c.poll_events = events;
        if (before == 0) != (self.watched == 0) {
            // SAFETY: the handle is open until teardown.
            unsafe { self.api.set_ref(self.ep_poll, self.watched > 0) };
        }
        Ok(())
    }

    /// A handshaking connection is readable: its request's head, or bytes
    /// sent before the 101 (kept for the parser).
    fn handshake_readable(&mut self, c: &mut Conn) {
        let (io, head) = c.read_handshake();
        match io {
            Io::Open => {}
            Io::Done => return self.close_conn(c, 0),
            Io::Failed(e) => return self.close_conn(c, e),
        }
        let Some(head) = head else {
            // Waiting for JS; reading stops at the peer's FIN.
            self.update_poll(c);
            return;
        };
        match http::parse(&head) {
            http::Head::Upgrade { record, rest } => {
                c.stash = rest;
                self.batch.request(c.id, c.listener, &record);
                self.wake();
            }
            http::Head::Handoff => {
                self.batch.handoff(c.id, c.listener, c.fd, &head);
                self.release_fd(c);
            }
        }
    }

    /// Lets go of a connection without closing its fd, which JS now owns.
    fn release_fd(&mut self, c: &mut Conn) {
        let lid = c.listener;
        let _ = self.watch(c, 0);
        c.fd = -1;
        c.listener = 0;
        self.close_conn(c, 0);
        self.listener_gone(lid, 1);
    }

    /// Completes the upgrade of a listener's connection: the connection gets
    /// its codec, `response` (the 101) goes out, and what the client sent
    /// after its request is parsed. False when the connection is gone.
    pub fn upgrade(&mut self, id: u32, cfg: ConnConfig, response: &[u8]) -> bool {
        let Some(c) = self.conn(id) else { return false };
        if !c.handshaking || c.head.is_some() {
            return false;
        }
        if c.eof {
            self.close_conn(c, 0);
            return false;
        }
        let (receiver, encoder) = cfg.codec();
        c.receiver = receiver;
        c.encoder = encoder;
        cfg.apply_marks(c);
        c.handshaking = false;
        if cfg.deflate.is_some() && self.start_pool() {
            c.use_pool();
        }
        c.out(&mut self.bufs).extend_from_slice(response);
        self.after_io(c, |c, b, p| c.flush(b, p));
        let stash = std::mem::take(&mut c.stash);
        if !stash.is_empty() && !c.closed {
            c.stash = self.batch.feed_copy(id, &mut c.receiver, &stash);
            self.submit_inflates();
        }
        self.update_poll(c);
        self.wake();
        true
    }

    /// Refuses a listener's connection: `response` goes out, then the FIN,
    /// then the connection closes.
    pub fn refuse(&mut self, id: u32, response: &[u8]) {
        let Some(c) = self.conn(id) else { return };
        c.handshaking = false;
        c.head = None;
        c.out(&mut self.bufs).extend_from_slice(response);
        c.close_on_finish = true;
        c.end();
        self.schedule_flush(c);
    }

    /// Hands a listener's connection over to JS: its fd, and what it sent
    /// after its request. None when it is gone.
    pub fn hand_over(&mut self, id: u32) -> Option<(c_int, Vec<u8>)> {
        let c = self.conn(id)?;
        let fd = c.fd;
        let rest = std::mem::take(&mut c.stash);
        self.release_fd(c);
        Some((fd, rest))
    }

    /// Lends a connection's fd for a `net.Socket` over it, which never
    /// reads or writes it (adopted-socket.js) and closes it once the engine
    /// has let go of it. libuv refuses a second handle on an fd it polls, so
    /// the poll stops until `resume_poll`.
    pub fn share_fd(&mut self, id: u32) -> Result<c_int, i32> {
        let c = self.conn(id).ok_or(libc::EBADF)?;
        let _ = self.watch(c, 0);
        c.fd_shared = true;
        Ok(c.fd)
    }

    /// Polls a connection again after `share_fd`.
    pub fn resume_poll(&mut self, id: u32) {
        if let Some(c) = self.conn(id) {
            self.update_poll(c);
        }
    }

    /// A live connection. The reference points into a boxed `Conn` that is
    /// freed only by libuv's close callback, in a later loop phase.
    fn conn(&self, id: u32) -> Option<&'static mut Conn> {
        self.conns.get(&id).map(|&p| unsafe { &mut *p }).filter(|c| !c.closed)
    }

    /// Queues a data frame.
    pub fn send_data(&mut self, id: u32, payload: &[u8], frame: DataFrame, mask: Masking, ack: Ack) -> Sent {
        let Some(c) = self.conn(id) else { return Sent::Gone };
        let key = self.mask_key(mask);
        if let Some(job) = c.encode_data(&mut self.bufs, payload, frame, key) {
            self.submit(id, Job::Deflate(job));
        }
        self.queued(c, ack)
    }

    /// Queues a data frame whose payload is written from JS memory without a
    /// copy; `js_ref` (a napi reference keeping it alive) is released once
    /// written. On `Gone` or `NotQueued` the caller still owns `js_ref`.
    pub fn send_external(&mut self, id: u32, ptr: *const u8, len: usize, js_ref: sys::napi_ref, frame: DataFrame, ack: Ack) -> Sent {
        let Some(c) = self.conn(id) else { return Sent::Gone };
        if !c.queue_external(&mut self.bufs, ptr, len, js_ref as usize, frame) {
            return Sent::NotQueued;
        }
        self.queued(c, ack)
    }

    /// Queues bytes that are already a frame (`Sender.frame()` output).
    pub fn send_raw(&mut self, id: u32, bytes: &[u8], ack: Ack) -> Sent {
        let Some(c) = self.conn(id) else { return Sent::Gone };
        c.push_raw(&mut self.bufs, bytes);
        self.queued(c, ack)
    }

    /// Queues a close, ping or pong frame.
    pub fn send_control(&mut self, id: u32, opcode: u8, payload: &[u8], mask: Masking, ack: Ack) -> Sent {
        let Some(c) = self.conn(id) else { return Sent::Gone };
        let key = self.mask_key(mask);
        c.encode_control(&mut self.bufs, opcode, payload, key);
        c.close_sent |= opcode == crate::core::frame::OP_CLOSE;
        self.queued(c, ack)
    }

    fn mask_key(&mut self, mask: Masking) -> Option<[u8; 4]> {
        mask.key(&mut self.masks)
    }

    fn queued(&mut self, c: &mut Conn, ack: Ack) -> Sent {
        if ack == Ack::NowOrLater && !self.dispatching && !c.waits_for_compression() && !c.awaits_acks() {
            self.after_io(c, |c, b, p| c.flush(b, p));
            if c.closed {
                return Sent::Gone;
            }
            if c.pending() == 0 {
                return Sent::Written;
            }
            c.want_ack();
            return full_or(c, Sent::Queued);
        }
        if ack != Ack::No {
            c.want_ack();
        }
        self.schedule_flush(c);
        if c.closed {
            // Closed by that write: its failure comes in the batch, and its
            // queue (and so its bufferedAmount) is gone.
            return Sent::Queued;
        }
        full_or(c, Sent::Queued)
    }

    /// Asks for a drain record once `bufferedAmount` is 0 (at once when it is).
    pub fn arm_drain(&mut self, id: u32) {
        let Some(c) = self.conn(id) else { return };
        if c.buffered_amount() > 0 {
            c.need_drain = true;
        } else {
            self.batch.drain(id);
            self.wake();
        }
    }

    pub fn topic_join(&mut self, id: u32, topic: u32) {
        let Some(c) = self.conn(id) else { return };
        if self.topics.join(topic, id) {
            c.topics.push(topic);
        }
    }

    pub fn topic_leave(&mut self, id: u32, topic: u32) {
        let Some(c) = self.conn(id) else { return };
        if self.topics.leave(topic, id) {
            c.topics.retain(|&t| t != topic);
        }
    }

    /// Queues one message to every member of `topic` but `except`, each
    /// frame built once (see topics.rs); returns how many it reached. The
    /// writes go out at this turn's check phase, so that publishes made
    /// together reach each socket in one write.
    pub fn publish(&mut self, topic: u32, payload: &[u8], opcode: u8, compress: bool, except: u32) -> u32 {
        let Some(mut members) = self.topics.take(topic) else { return 0 };
        // A connection that fails while the set is out (an early write) has
        // left its topics without this one: it is taken out below.
        let closing = self.closing;
        let mut frames = Frames::new(payload, opcode);
        let mut count = 0;
        for &id in &members {
            let Some(c) = self.conn(id).filter(|c| id != except && c.takes_publish()) else { continue };
            count += 1;
            let kind = c.encoder.shared(payload.len(), compress);
            match frames.get(kind, &mut self.topics) {
                Some(frame) => c.push_published(&mut self.bufs, frame, payload.len()),
                None => {
                    let frame = DataFrame { opcode, fin: true, compress };
                    if let Some(job) = c.encode_data(&mut self.bufs, payload, frame, None) {
                        self.submit(id, Job::Deflate(job));
                    }
                }
            }
            self.defer_flush(c);
            if c.max_buffered > 0 && c.buffered_amount() > c.max_buffered {
                self.overflowed.push(id);
            }
        }
        if self.closing > closing {
            members.retain(|id| self.conns.contains_key(id));
        }
        self.topics.put_back(topic, members);
        count
    }

    pub fn has_overflowed(&self) -> bool {
        !self.overflowed.is_empty()
    }

    /// The connections publishes left above their `max_buffered`, once.
    pub fn take_overflowed(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.overflowed)
    }

    /// During a batch, writes wait for its end so that they go out as one;
    /// behind a compressed frame they wait for this turn's check phase (ws
    /// compresses on a thread pool); otherwise they go out now.
    fn schedule_flush(&mut self, c: &mut Conn) {
        if self.dispatching || c.waits_for_compression() {
            self.defer_flush(c);
        } else {
            self.after_io(c, |c, b, p| c.flush(b, p));
        }
    }

    /// Leaves the write to this turn's check phase, unless that much is
    /// queued that the kernel should have it now: `bufferedAmount` counts
    /// only what the kernel refused, and must not stay blind to a queue
    /// growing inside one batch.
    fn defer_flush(&mut self, c: &mut Conn) {
        if c.pending() >= FLUSH_EARLY && !c.waits_for_compression() {
            self.after_io(c, |c, b, p| c.flush(b, p));
        } else if !c.dirty {
            c.dirty = true;
            self.dirty.push(c.id);
            self.wake();
        }
    }

    /// Half-closes once the queue is written (`socket.end()`).
    pub fn end(&mut self, id: u32) {
        if let Some(c) = self.conn(id) {
            c.end();
            self.schedule_flush(c);
        }
    }

    /// Closes at once (`socket.destroy()`), after one non-blocking attempt
    /// to write what is queued: under Node, bytes written before a destroy
    /// have already reached the kernel, even when they were written inside
    /// this batch. JS hears `closed` in a batch.
    pub fn destroy(&mut self, id: u32) {
        if let Some(c) = self.conn(id) {
            let reason = c.fail_reason();
            c.drop_deferred(&mut self.bufs);
            let io = c.flush(&mut self.batch, &mut self.bufs);
            let errno = if let Io::Failed(e) = io { e } else { 0 };
            self.close_conn_as(c, errno, reason);
        }
    }

    /// `(bytes read, bytes written)` by the engine on connection `id`; for a
    /// closed one, its final counts, given once.
    pub fn counters(&mut self, id: u32) -> (u64, u64) {
        match self.conns.get(&id) {
            Some(&c) => unsafe { ((*c).read, (*c).written) },
            None => self.finals.remove(&id).unwrap_or((0, 0)),
        }
    }

    pub fn set_paused(&mut self, id: u32, paused: bool) {
        if let Some(c) = self.conn(id) {
            c.paused = paused;
            self.update_poll(c);
        }
    }

    /// Whether frames of `id` wait behind a compression (see `Deferred`).
    pub fn compressing(&self, id: u32) -> bool {
        self.conn(id).is_some_and(|c| c.waits_for_compression())
    }

    pub fn buffered_amount(&self, id: u32) -> usize {
        self.conn(id).map_or(0, |c| c.buffered_amount())
    }

    /// Heap bytes held by connections (for tests of idle memory).
    pub fn held_bytes(&self) -> usize {
        self.conns.values().map(|&c| unsafe { (*c).held_bytes() }).sum()
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Jobs sent to the compression pool so far.
    pub fn pool_jobs(&self) -> u64 {
        self.pool.as_ref().map_or(0, |p| p.sent)
    }

    /// Runs one socket operation and acts on what it found.
    fn after_io(&mut self, c: &mut Conn, op: impl FnOnce(&mut Conn, &mut Batch, &mut BufPool) -> Io) {
        match op(c, &mut self.batch, &mut self.bufs) {
            Io::Open => self.update_poll(c),
            Io::Done => self.close_conn(c, 0),
            Io::Failed(e) => self.fail_conn(c, e),
        }
        self.release(c);
        self.submit_inflates();
        self.wake();
    }

    /// The socket failed: close, unless a message read before the failure
    /// is inflating on the pool; then once it is delivered (see `pool_done`).
    fn fail_conn(&mut self, c: &mut Conn, errno: i32) {
        // The read that found the failure may have handed a message out.
        self.submit_inflates();
        if c.receiver.is_inflating() {
            if c.failed == 0 {
                c.failed = errno;
            }
            self.update_poll(c);
        } else {
            self.close_conn(c, errno);
        }
    }

    /// Makes the pool and its doorbell, once; false when there is none.
    fn start_pool(&mut self) -> bool {
        if !self.pool_tried {
            self.pool_tried = true;
            let data = self as *mut Engine as *mut c_void;
            if let Ok(bell) = unsafe { self.api.new_async(self.lp, data, on_pool_done) } {
                self.pool = Pool::new(bell);
                if self.pool.is_none() {
                    self.closing += 1;
                    unsafe { self.api.close(bell, dispatch::on_engine_handle_closed) };
                }
            }
        }
        self.pool.is_some()
    }

    fn submit(&mut self, id: u32, job: Job) {
        let Some(pool) = self.pool.as_mut() else { return };
        if pool.outstanding() == 0 {
            // A result on its way keeps the process alive, as zlib's
            // thread-pool work does for ws.
            unsafe { self.api.set_ref(pool.bell(), true) };
        }
        pool.submit(id, job);
    }

    /// Sends the messages the last parse handed out to the pool.
    fn submit_inflates(&mut self) {
        if self.batch.jobs.is_empty() {
            return;
        }
        for (id, job) in std::mem::take(&mut self.batch.jobs) {
            self.submit(id, Job::Inflate(job));
        }
    }

    /// Takes the pool's results in: frames compressed there are queued and
    /// written, messages inflated there are delivered, and the input that
    /// waited behind them is parsed.
    fn pool_done(&mut self) {
        let Some(pool) = self.pool.as_mut() else { return };
        let done = pool.take_done();
        if pool.outstanding() == 0 {
            unsafe { self.api.set_ref(pool.bell(), false) };
        }
        for (id, d) in done {
            let Some(c) = self.conn(id) else { continue };
            match d {
                Done::Deflated(d) => {
                    if let Some(job) = c.finish_deflate(&mut self.bufs, d) {
                        self.submit(id, Job::Deflate(job));
                    }
                    self.schedule_flush(c);
                }
                Done::Inflated(mut inf) if c.receiver.is_inflating() => {
                    let ok = inf.result.is_ok();
                    self.batch.inflated(id, inf.text, &mut inf.result);
                    c.receiver.resume(inf.inflater, ok);
                    let stash = std::mem::take(&mut c.stash);
                    if ok && !stash.is_empty() {
                        c.stash = self.batch.feed_copy(id, &mut c.receiver, &stash);
                    }
                    if c.failed != 0 && !c.receiver.is_inflating() {
                        let errno = std::mem::take(&mut c.failed);
                        self.close_conn(c, errno);
                    } else {
                        self.update_poll(c);
                    }
                }
                Done::Inflated(_) => {}
                Done::Panicked => {
                    self.batch.error(id, &WsError::Internal);
                    c.receiver.poison();
                    self.close_conn(c, libc::EIO);
                }
            }
        }
        self.submit_inflates();
        self.wake();
    }

    /// Lets go of the JS buffers whose bytes are written (or dropped).
    fn release(&mut self, c: &mut Conn) {
        for token in c.released.drain(..) {
            dispatch::release_js(self.env, token);
        }
    }

    fn update_poll(&mut self, c: &mut Conn) {
        if c.closed {
            return;
        }
        if let Err(rc) = self.watch(c, c.wanted_events()) {
            self.close_conn(c, -rc);
        }
    }

    /// Closes the socket: its fd goes now, the connection in the loop
    /// turn's close phase (`on_conns_closed`).
    fn close_conn(&mut self, c: &mut Conn, errno: i32) {
        let reason = c.fail_reason();
        self.close_conn_as(c, errno, reason);
    }

    /// `close_conn`, with the reason the waiting sends fail for.
    fn close_conn_as(&mut self, c: &mut Conn, errno: i32, reason: u32) {
        if c.closed {
            return;
        }
        c.closed = true;
        c.set_blocked(&mut self.batch, false);
        self.conns.remove(&c.id);
        self.finals.insert(c.id, (c.read, c.written));
        for topic in std::mem::take(&mut c.topics) {
            self.topics.leave(topic, c.id);
        }
        c.discard_output(&mut self.bufs);
        self.release(c);
        let failed = c.take_unacked();
        if failed > 0 {
            self.batch.ack_failed(c.id, failed, reason, errno);
        }
        self.batch.closed(c.id, errno);
        // After the connection's own close, as a server hears of its last
        // connection after the socket's end.
        if c.listener != 0 {
            let lid = std::mem::take(&mut c.listener);
            self.listener_gone(lid, 1);
        }
        // Out of epoll first (a shared or handed-over fd stays open), so the
        // fd goes now: by the socket's 'close' it is free for the next
        // accept. A shared fd is the net.Socket's to close.
        let _ = self.watch(c, 0);
        if !c.fd_shared && c.fd >= 0 {
            syscall::close(c.fd);
        }
        if !self.closer {
            // SAFETY: on the loop's thread.
            self.closer = unsafe { self.api.in_close_phase(self.lp, self as *mut Engine as *mut c_void, on_conns_closed) };
            if self.closer {
                self.closing += 1;
            }
        }
        self.closed_conns.push(c);
        // Any later use fails with EBADF rather than reach a reused fd.
        c.fd = -1;
        self.wake();
    }

    /// Makes sure the next loop turn does not block while events wait.
    fn wake(&mut self) {
        if (!self.batch.is_empty() || !self.dirty.is_empty()) && !self.idle_on && !self.torn_down {
            self.idle_on = true;
            unsafe { self.api.idle_start(self.idle, on_idle) };
        }
    }

    fn flush_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for id in &dirty {
            if let Some(c) = self.conn(*id) {
                c.dirty = false;
                self.after_io(c, |c, b, p| c.flush(b, p));
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
    }
}

/// Runs a libuv callback body; a panic must not unwind into C (it would
/// abort Node), so it is caught here and reported.
fn guarded(what: &str, f: impl FnOnce()) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(()) => true,
        Err(_) => {
            eprintln!("ws-native: internal error in {what}; the connection is closed");
            false
        }
    }
}

/// The epoll fd is readable: the connections' events, as libuv's poll
/// would report them (an error as a status; a hang-up as what was asked
/// for, so that the read or write finds it).
unsafe extern "C" fn on_epoll(h: *mut Handle, _status: c_int, _events: c_int) {
    let Some(api) = uv::api() else { return };
    let eng = &mut *(api.data(h) as *mut Engine);
    if eng.torn_down {
        return;
    }
    let mut ready = [libc::epoll_event { events: 0, u64: 0 }; 128];
    let n = syscall::epoll_ready(eng.epfd, &mut ready);
    for ev in &ready[..n] {
        // SAFETY: a connection's box lives until the close phase after it
        // closed, and a closed connection's fd is out of epoll.
        let c = &mut *(ev.u64 as *mut Conn);
        if c.closed {
            continue;
        }
        let bits = ev.events;
        let (status, mut events) = (if bits & libc::EPOLLERR as u32 != 0 { -libc::EBADF } else { 0 }, 0);
        if bits & (libc::EPOLLIN | libc::EPOLLHUP) as u32 != 0 {
            events |= uv::READABLE;
        }
        if bits & (libc::EPOLLOUT | libc::EPOLLHUP) as u32 != 0 {
            events |= uv::WRITABLE;
        }
        events &= c.poll_events;
        let conn = c as *mut Conn;
        if !guarded("the socket poll callback", || poll_event(eng, &mut *conn, status, events)) {
            eng.close_conn(c, libc::EIO);
        }
    }
}

unsafe fn poll_event(eng: &mut Engine, c: &mut Conn, status: c_int, events: c_int) {
    if status < 0 {
        // libuv reports a socket error (POLLERR) without reading: take what
        // the kernel still holds first, so that data the peer sent before
        // resetting is delivered, and close with the error the read finds.
        let errno = match c.on_readable(&mut eng.batch) {
            Io::Failed(e) => e,
            _ => syscall::socket_error(c.fd).unwrap_or(-status),
        };
        eng.fail_conn(c, errno);
        return;
    }
    if events & uv::WRITABLE != 0 {
        eng.after_io(c, |c, b, p| c.flush(b, p));
    }
    if events & uv::READABLE != 0 && !c.closed {
        if c.handshaking {
            eng.handshake_readable(c);
        } else {
            eng.after_io(c, |c, b, _| c.on_readable(b));
        }
    }
}

unsafe extern "C" fn on_listener_poll(h: *mut Handle, _status: c_int, _events: c_int) {
    let Some(api) = uv::api() else { return };
    let l = &mut *(api.data(h) as *mut Listener);
    let (eng, id) = (&mut *l.owner, l.id);
    if !l.closed && !eng.torn_down {
        guarded("the listener's poll callback", || eng.accept_all(id));
    }
}

/// The close phase after connections closed: they are freed, and JS hears
/// of a listener's connections closing, as of a socket handle's close.
unsafe extern "C" fn on_conns_closed(h: *mut Handle) {
    let Some(api) = uv::api() else { return };
    let eng = api.data(h) as *mut Engine;
    uv::free_handle(h);
    (*eng).closer = false;
    for c in std::mem::take(&mut (*eng).closed_conns) {
        let c = Box::from_raw(c);
        let notify = c.notify_closed.then_some(c.id);
        drop(c);
        if let Some(id) = notify {
            if !(*eng).torn_down {
                guarded("a connection's close callback", || dispatch::notify_closed(eng, id));
            }
        }
    }
    dispatch::handle_closed(eng);
}

unsafe extern "C" fn on_idle(_h: *mut Handle) {}

unsafe extern "C" fn on_pool_done(h: *mut Handle) {
    let Some(api) = uv::api() else { return };
    let eng = api.data(h) as *mut Engine;
    if !(*eng).torn_down {
        guarded("the compression pool's results", || (*eng).pool_done());
    }
}

unsafe extern "C" fn on_check(h: *mut Handle) {
    let Some(api) = uv::api() else { return };
    let eng = api.data(h) as *mut Engine;
    if !guarded("event dispatch", || dispatch::dispatch(eng)) {
        (*eng).dispatching = false;
        (*eng).batch.clear();
    }
}

unsafe extern "C" fn on_env_cleanup(_handle: sys::napi_async_cleanup_hook_handle, arg: *mut c_void) {
    forget(arg as *mut Engine);
    guarded("environment teardown", || dispatch::teardown(arg as *mut Engine));
}
