//! `NativeEngine`: the engine of this Node environment, as a JS class.

use std::ptr::null_mut;

use napi::bindgen_prelude::*;
use napi::{sys, JsValue};
use napi_derive::napi;

use crate::core::receiver::ReceiverConfig;
use crate::engine::{ConnConfig, DeflateConfig, Engine, Masking};

/// Send flags, as in `lib/native-transport.js`.
const F_FIN: u32 = 1;
const F_COMPRESS: u32 = 2;
const F_MASK: u32 = 4;
const F_ACK: u32 = 8;
const F_MASK_KEY: u32 = 16;

#[napi]
pub struct NativeEngine {
    eng: *mut Engine,
    scratch: Vec<u8>,
}

fn js_err(msg: impl Into<String>) -> Error {
    Error::from_reason(msg.into())
}

/// Copies a JS string's UTF-8 bytes into `scratch`, or borrows a view's bytes.
unsafe fn payload<'a>(env: sys::napi_env, v: sys::napi_value, scratch: &'a mut Vec<u8>) -> Result<&'a [u8]> {
    let mut t = 0;
    sys::napi_typeof(env, v, &mut t);
    if t == sys::ValueType::napi_string {
        let mut len = 0usize;
        sys::napi_get_value_string_utf8(env, v, null_mut(), 0, &mut len);
        scratch.clear();
        scratch.reserve(len + 1);
        let mut got = 0usize;
        sys::napi_get_value_string_utf8(env, v, scratch.as_mut_ptr() as *mut _, len + 1, &mut got);
        scratch.set_len(got);
        return Ok(&scratch[..]);
    }
    if t == sys::ValueType::napi_undefined || t == sys::ValueType::napi_null {
        return Ok(&[]);
    }
    let mut data = null_mut();
    let mut len = 0usize;
    if sys::napi_get_buffer_info(env, v, &mut data, &mut len) != sys::Status::napi_ok {
        return Err(js_err("data must be a string or an ArrayBufferView"));
    }
    Ok(if len == 0 { &[] } else { std::slice::from_raw_parts(data as *const u8, len) })
}

fn masking(flags: u32, key: u32) -> Masking {
    if flags & F_MASK_KEY != 0 {
        Masking::Key(key.to_be_bytes())
    } else if flags & F_MASK != 0 {
        Masking::Random
    } else {
        Masking::None
    }
}

#[napi]
impl NativeEngine {
    /// `onBatch(tape, arena, bigs)` receives every loop turn's events.
    #[napi(constructor)]
    pub fn new(env: Env, on_batch: Unknown) -> Result<Self> {
        let eng = unsafe { Engine::create(env.raw(), on_batch.raw()) }.map_err(js_err)?;
        Ok(NativeEngine { eng, scratch: Vec::new() })
    }

    fn engine(&self) -> &mut Engine {
        // The engine lives until the environment's cleanup hook frees it,
        // after which JS can no longer call in.
        unsafe { &mut *self.eng }
    }

    /// Adopts a connected socket's fd. `limits` is
    /// `[maxPayload, maxFragments, maxBufferedChunks, skipUTF8Validation]`;
    /// `deflate`, when negotiated, is `[inflateBits, inflateNoContext,
    /// deflateBits, deflateNoContext, level, threshold]`.
    #[napi]
    pub fn adopt(
        &mut self,
        fd: i32,
        is_server: bool,
        limits: Vec<f64>,
        deflate: Option<Vec<f64>>,
        head: Option<BufferSlice>,
        initial: Option<BufferSlice>,
    ) -> Result<u32> {
        let num = |v: &Vec<f64>, i: usize| v.get(i).copied().unwrap_or(0.0);
        let receiver = ReceiverConfig {
            is_server,
            max_payload: num(&limits, 0).max(0.0) as u64,
            max_fragments: num(&limits, 1).max(0.0) as u32,
            max_buffered_chunks: num(&limits, 2).max(0.0) as u32,
            skip_utf8_validation: num(&limits, 3) != 0.0,
        };
        let deflate = deflate.map(|d| DeflateConfig {
            inflate_window_bits: num(&d, 0) as u8,
            inflate_no_context_takeover: num(&d, 1) != 0.0,
            deflate_window_bits: num(&d, 2) as u8,
            deflate_no_context_takeover: num(&d, 3) != 0.0,
            level: num(&d, 4) as i32,
            threshold: num(&d, 5).max(0.0) as usize,
        });
        let head = head.as_deref().unwrap_or(&[]);
        let initial = initial.as_deref().unwrap_or(&[]);
        unsafe { self.engine().adopt(fd, ConnConfig { receiver, deflate }, head, initial) }.map_err(js_err)
    }

    /// Queues a data frame (`opcode` 1 or 2). False when the socket is gone.
    #[napi]
    pub fn send(&mut self, env: Env, id: u32, data: Unknown, opcode: u32, flags: u32, mask_key: Option<u32>) -> Result<bool> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let bytes = unsafe { payload(env.raw(), data.raw(), &mut scratch) }?;
        let ok = self.engine().send_data(
            id,
            bytes,
            opcode as u8,
            flags & F_FIN != 0,
            flags & F_COMPRESS != 0,
            masking(flags, mask_key.unwrap_or(0)),
            flags & F_ACK != 0,
        );
        self.scratch = scratch;
        Ok(ok)
    }

    /// Queues a close (8), ping (9) or pong (10) frame.
    #[napi]
    pub fn control(&mut self, env: Env, id: u32, opcode: u32, data: Unknown, flags: u32, mask_key: Option<u32>) -> Result<bool> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let bytes = unsafe { payload(env.raw(), data.raw(), &mut scratch) }?;
        let ok = self.engine().send_control(id, opcode as u8, bytes, masking(flags, mask_key.unwrap_or(0)), flags & F_ACK != 0);
        self.scratch = scratch;
        Ok(ok)
    }

    #[napi]
    pub fn end(&mut self, id: u32) {
        self.engine().end(id);
    }

    #[napi]
    pub fn destroy(&mut self, id: u32) {
        self.engine().destroy(id);
    }

    #[napi]
    pub fn pause(&mut self, id: u32) {
        self.engine().set_paused(id, true);
    }

    #[napi]
    pub fn resume(&mut self, id: u32) {
        self.engine().set_paused(id, false);
    }

    #[napi]
    pub fn buffered_amount(&self, id: u32) -> f64 {
        self.engine().buffered_amount(id) as f64
    }

    /// `[connections, heap bytes they hold]`, for tests and benchmarks.
    #[napi]
    pub fn stats(&self) -> Vec<f64> {
        let e = self.engine();
        vec![e.connection_count() as f64, e.held_bytes() as f64]
    }
}
