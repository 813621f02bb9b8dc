//! `NativeEngine`: the engine of this Node environment, as a JS class.

use napi::bindgen_prelude::*;
use napi::JsValue;
use napi_derive::napi;

use napi::sys;

use super::args::{ack, conn_config, js_err, masking, number, raw_call, sent_code, u32_arg, with_bytes, F_COMPRESS, F_FIN};
use crate::core::sender::DataFrame;
use crate::engine::{Ack, Engine, Masking, Sent};

/// Buffers at least this big are sent from JS memory without a copy.
const EXTERNAL_MIN: usize = 64 * 1024;

#[napi(object)]
pub struct HandedOver {
    pub fd: i32,
    pub rest: Buffer,
}

#[napi]
pub struct NativeEngine {
    eng: *mut Engine,
    scratch: Vec<u8>,
}

#[napi]
impl NativeEngine {
    /// `onBatch(tape, arena, bigs)` receives every loop turn's events;
    /// `onClosed(id)` hears when a listener's connection's handle closed.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, on_batch: Unknown, on_closed: Unknown) -> Result<Self> {
        let eng = unsafe { Engine::create(env.raw(), on_batch.raw(), on_closed.raw()) }.map_err(js_err)?;
        Ok(NativeEngine { eng, scratch: Vec::new() })
    }

    fn engine(&self) -> &'static mut Engine {
        // The engine lives until the environment's cleanup hook frees it,
        // after which JS can no longer call in.
        unsafe { &mut *self.eng }
    }

    /// Adopts a connected socket's fd; see `conn_config` for `limits` and `deflate`.
    #[napi(catch_unwind)]
    pub fn adopt(
        &mut self,
        fd: i32,
        is_server: bool,
        limits: Vec<f64>,
        deflate: Option<Vec<f64>>,
        head: Option<BufferSlice>,
        initial: Option<BufferSlice>,
    ) -> Result<u32> {
        let config = conn_config(is_server, &limits, deflate.as_deref());
        let head = head.as_deref().unwrap_or(&[]);
        let initial = initial.as_deref().unwrap_or(&[]);
        unsafe { self.engine().adopt(fd, config, head, initial) }.map_err(js_err)
    }

    // Data frames are queued by `engineSend` (below), a plain N-API
    // function without this class's per-call wrapper.

    /// Listens for a `{ port }` server on `ip` (an IP address; "" for
    /// every address, `::` with IPv4 too). `["ok", id, address, family,
    /// port]`, or `["error", errno, syscall]`.
    #[napi(catch_unwind)]
    pub fn listen(&mut self, ip: String, port: u32, backlog: i32) -> Vec<String> {
        let any: std::net::IpAddr = std::net::Ipv6Addr::UNSPECIFIED.into();
        let addr = if ip.is_empty() { Ok(any) } else { ip.parse::<std::net::IpAddr>() };
        let Ok(addr) = addr else { return vec!["error".into(), libc::EINVAL.to_string(), "listen".into()] };
        let backlog = if backlog > 0 { backlog } else { 511 };
        let mut result = self.engine().listen(addr, port as u16, backlog);
        if ip.is_empty() && matches!(result, Err((libc::EAFNOSUPPORT, _))) {
            // No IPv6 here: every IPv4 address, as Node falls back.
            result = self.engine().listen(std::net::Ipv4Addr::UNSPECIFIED.into(), port as u16, backlog);
        }
        match result {
            Ok((id, a)) => {
                let family = if a.is_ipv6() { "IPv6" } else { "IPv4" };
                vec!["ok".into(), id.to_string(), a.ip().to_string(), family.into(), a.port().to_string()]
            }
            Err((errno, syscall)) => vec!["error".into(), errno.to_string(), syscall.into()],
        }
    }

    #[napi(catch_unwind)]
    pub fn listener_connections(&self, id: u32) -> u32 {
        self.engine().listener_connections(id) as u32
    }

    /// See `Engine::sweep`.
    #[napi(catch_unwind)]
    pub fn sweep(&mut self, id: u32, max_ms: f64) -> u32 {
        self.engine().sweep(id, max_ms.max(0.0) as u64) as u32
    }

    #[napi(catch_unwind)]
    pub fn close_listener(&mut self, id: u32) {
        self.engine().close_listener(id);
    }

    /// Completes the upgrade of a listener's connection; see `conn_config`.
    #[napi(catch_unwind)]
    pub fn upgrade(&mut self, id: u32, response: BufferSlice, limits: Vec<f64>, deflate: Option<Vec<f64>>) -> bool {
        let config = conn_config(true, &limits, deflate.as_deref());
        self.engine().upgrade(id, config, &response)
    }

    /// Writes `response`, then ends and closes a listener's connection.
    #[napi(catch_unwind)]
    pub fn refuse(&mut self, id: u32, response: BufferSlice) {
        self.engine().refuse(id, &response);
    }

    /// Gives a listener's connection to JS: `{ fd, rest }`, or null when
    /// it is gone.
    #[napi(catch_unwind)]
    pub fn hand_over(&mut self, id: u32) -> Option<HandedOver> {
        self.engine().hand_over(id).map(|(fd, rest)| HandedOver { fd, rest: rest.into() })
    }

    /// A connection's fd, lent to a `net.Socket` (see `Engine::share_fd`);
    /// -1 when the connection is gone. Call `resumePoll` once the socket
    /// is made.
    #[napi(catch_unwind)]
    pub fn share_fd(&mut self, id: u32) -> i32 {
        self.engine().share_fd(id).unwrap_or(-1)
    }

    #[napi(catch_unwind)]
    pub fn resume_poll(&mut self, id: u32) {
        self.engine().resume_poll(id);
    }

    /// Queues a close (8), ping (9) or pong (10) frame.
    #[napi(catch_unwind)]
    pub fn control(&mut self, env: Env, id: u32, opcode: u32, data: Unknown, flags: u32, mask_key: Option<u32>) -> Result<u32> {
        let eng = self.engine();
        with_bytes(&env, &data, &mut self.scratch, |bytes| {
            eng.send_control(id, opcode as u8, bytes, masking(flags, mask_key.unwrap_or(0)), ack(flags))
        })
        .map(sent_code)
    }

    /// Queues bytes that already form frames.
    #[napi(catch_unwind)]
    pub fn send_raw(&mut self, env: Env, id: u32, data: Unknown, flags: u32) -> Result<u32> {
        let eng = self.engine();
        with_bytes(&env, &data, &mut self.scratch, |bytes| eng.send_raw(id, bytes, ack(flags))).map(sent_code)
    }

    #[napi(catch_unwind)]
    pub fn end(&mut self, id: u32) {
        self.engine().end(id);
    }

    #[napi(catch_unwind)]
    pub fn destroy(&mut self, id: u32) {
        self.engine().destroy(id);
    }

    #[napi(catch_unwind)]
    pub fn pause(&mut self, id: u32) {
        self.engine().set_paused(id, true);
    }

    #[napi(catch_unwind)]
    pub fn resume(&mut self, id: u32) {
        self.engine().set_paused(id, false);
    }

    /// `[bytesRead, bytesWritten]` of the engine's own I/O on `id`; for a
    /// closed connection its final counts, given once.
    #[napi(catch_unwind)]
    pub fn counters(&mut self, id: u32) -> Vec<f64> {
        let (read, written) = self.engine().counters(id);
        vec![read as f64, written as f64]
    }

    /// A drain record once `bufferedAmount` is back to 0.
    #[napi(catch_unwind)]
    pub fn arm_drain(&mut self, id: u32) {
        self.engine().arm_drain(id);
    }

    #[napi(catch_unwind)]
    pub fn topic_join(&mut self, id: u32, topic: u32) {
        self.engine().topic_join(id, topic);
    }

    #[napi(catch_unwind)]
    pub fn topic_leave(&mut self, id: u32, topic: u32) {
        self.engine().topic_leave(id, topic);
    }

    /// Queues a message to `topic`'s members but `except` (see
    /// `Engine::publish`); the count, negative (-count - 1) when some are
    /// left above their `maxBufferedAmount` (`takeOverflowed`).
    #[napi(catch_unwind)]
    pub fn publish(&mut self, env: Env, topic: u32, data: Unknown, opcode: u32, compress: bool, except: i32) -> Result<i32> {
        let eng = self.engine();
        let except = u32::try_from(except).unwrap_or(0);
        let count = with_bytes(&env, &data, &mut self.scratch, |bytes| eng.publish(topic, bytes, opcode as u8, compress, except))?;
        let count = i32::try_from(count).unwrap_or(i32::MAX);
        Ok(if eng.has_overflowed() { -count - 1 } else { count })
    }

    #[napi(catch_unwind)]
    pub fn take_overflowed(&mut self) -> Vec<u32> {
        self.engine().take_overflowed()
    }

    #[napi(catch_unwind)]
    pub fn compressing(&self, id: u32) -> bool {
        self.engine().compressing(id)
    }

    #[napi(catch_unwind)]
    pub fn buffered_amount(&self, id: u32) -> f64 {
        self.engine().buffered_amount(id) as f64
    }

    /// `[connections, heap bytes they hold, malloc in use, malloc total,
    /// jobs sent to the compression pool]`, for tests and benchmarks
    /// (malloc figures are 0 where glibc is absent).
    #[napi(catch_unwind)]
    pub fn stats(&self) -> Vec<f64> {
        let e = self.engine();
        let (used, total) = malloc_stats();
        vec![e.connection_count() as f64, e.held_bytes() as f64, used, total, e.pool_jobs() as f64]
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn malloc_stats() -> (f64, f64) {
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks as f64, (m.arena + m.hblkhd) as f64)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn malloc_stats() -> (f64, f64) {
    (0.0, 0.0)
}

/// `engineSend(id, data, opcode, flags, maskKey)`: a data frame queued on
/// this thread's engine. A plain N-API callback (`raw_call`), taking no
/// receiver.
///
/// # Safety
/// Called by N-API, as a function's callback.
pub(super) unsafe extern "C" fn engine_send(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    raw_call(env, info, c"engineSend", |[id, data, opcode, flags, mask_key]| {
        let (Some(id), Some(opcode), Some(flags)) = (u32_arg(env, id), u32_arg(env, opcode), u32_arg(env, flags)) else {
            return Err(js_err("engineSend: id, opcode and flags are numbers"));
        };
        let eng = crate::engine::current().ok_or_else(|| js_err("the engine is shut down"))?;
        let data = Unknown::from_napi_value(env, data)?;
        let env_ = Env::from_raw(env);
        let code = SCRATCH.with(|s| send_on(eng, &env_, &mut s.borrow_mut(), id, &data, opcode, flags, u32_arg(env, mask_key)))?;
        Ok(number(env, code as f64))
    })
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[allow(clippy::too_many_arguments)]
fn send_on(eng: &mut Engine, env: &Env, scratch: &mut Vec<u8>, id: u32, data: &Unknown, opcode: u32, flags: u32, mask_key: Option<u32>) -> Result<u32> {
    let frame = DataFrame { opcode: opcode as u8, fin: flags & F_FIN != 0, compress: flags & F_COMPRESS != 0 };
    let mask = masking(flags, mask_key.unwrap_or(0));
    let (raw, v) = (env.raw(), data.raw());
    // One look at the value: a string is copied as UTF-8; a view's bytes are
    // used where they are, and a big unmasked one is written from there.
    let view = unsafe { buffer_view(raw, v) };
    if let Some((ptr, len)) = view {
        if len >= EXTERNAL_MIN && matches!(mask, Masking::None) {
            if let Some(sent) = unsafe { send_external(eng, raw, id, v, ptr, len, frame, flags) } {
                return Ok(sent);
            }
        }
        let bytes = if len == 0 { &[][..] } else { unsafe { std::slice::from_raw_parts(ptr, len) } };
        return Ok(sent_code(eng.send_data(id, bytes, frame, mask, ack(flags))));
    }
    with_bytes(env, data, scratch, |bytes| eng.send_data(id, bytes, frame, mask, ack(flags))).map(sent_code)
}

/// The bytes of `v` when it is an object with a buffer (an ArrayBufferView).
unsafe fn buffer_view(env: sys::napi_env, v: sys::napi_value) -> Option<(*const u8, usize)> {
    let mut t = 0;
    sys::napi_typeof(env, v, &mut t);
    if t != sys::ValueType::napi_object {
        return None;
    }
    let mut data = std::ptr::null_mut();
    let mut len = 0usize;
    (sys::napi_get_buffer_info(env, v, &mut data, &mut len) == sys::Status::napi_ok).then_some((data as *const u8, len))
}

/// A big unmasked buffer is written from JS memory, held by a reference
/// until written. None when the frame is to be compressed.
#[allow(clippy::too_many_arguments)]
unsafe fn send_external(eng: &mut Engine, env: sys::napi_env, id: u32, v: sys::napi_value, data: *const u8, len: usize, frame: DataFrame, flags: u32) -> Option<u32> {
    let mut r = std::ptr::null_mut();
    if sys::napi_create_reference(env, v, 1, &mut r) != sys::Status::napi_ok {
        return None;
    }
    let sent = eng.send_external(id, data, len, r, frame, ack(flags));
    match sent {
        Sent::Queued | Sent::Written | Sent::Full => Some(sent_code(sent)),
        Sent::Gone | Sent::NotQueued => {
            sys::napi_delete_reference(env, r);
            (sent == Sent::Gone).then(|| sent_code(sent))
        }
    }
}

/// `engineSendTape(tape, area, count)`: queues the data frames JS put on its
/// send tape while it handled a batch (lib/send-tape.js): `count` records of
/// four u32 (id, opcode | flags << 8, offset and length of the payload in
/// `area`), unmasked, uncompressed, with no callback. Returns how many
/// connections were left above their mark (JS makes sure of none), their
/// ids written over the tape's first words. A plain N-API callback, as
/// `engineSend`, since it is called once a batch.
///
/// # Safety
/// Called by N-API, as a function's callback.
pub(super) unsafe extern "C" fn engine_send_tape(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    raw_call(env, info, c"engineSendTape", |[tape, area, count]| {
        let (Some((tape, tape_len)), Some((area, area_len)), Some(count)) = (buffer_view(env, tape), buffer_view(env, area), u32_arg(env, count)) else {
            return Err(js_err("engineSendTape: two Buffers and a count"));
        };
        let eng = crate::engine::current().ok_or_else(|| js_err("the engine is shut down"))?;
        let tape = tape as *mut u8;
        let word = |i: usize| u32::from_le_bytes(std::ptr::read_unaligned(tape.add(i * 4) as *const [u8; 4]));
        let records = (count as usize).min(tape_len / 16);
        let area = if area_len == 0 { &[][..] } else { std::slice::from_raw_parts(area, area_len) };
        let mut full = 0;
        for r in 0..records {
            let (id, op, at, len) = (word(r * 4), word(r * 4 + 1), word(r * 4 + 2) as usize, word(r * 4 + 3) as usize);
            let Some(payload) = area.get(at..at.saturating_add(len)) else { continue };
            let frame = DataFrame { opcode: (op & 0xff) as u8, fin: (op >> 8) & F_FIN != 0, compress: false };
            if eng.send_data(id, payload, frame, Masking::None, Ack::No) == Sent::Full {
                // Records before `r` are read already: the ids go over them.
                std::ptr::write_unaligned(tape.add(full * 4) as *mut [u8; 4], id.to_le_bytes());
                full += 1;
            }
        }
        Ok(number(env, full as f64))
    })
}
