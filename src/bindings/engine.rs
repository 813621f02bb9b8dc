//! `NativeEngine`: the engine of this Node environment, as a JS class: its
//! making, its listeners, topics and figures. What JS asks of one
//! connection goes through the plain functions of `conn.rs`.

use napi::bindgen_prelude::*;
use napi::JsValue;
use napi_derive::napi;

use super::args::{conn_config, js_err, with_bytes};
use crate::engine::Engine;

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
