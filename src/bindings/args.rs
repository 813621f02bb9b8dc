//! Argument conversions shared by the napi classes.

use std::ptr::null_mut;

use napi::bindgen_prelude::*;
use napi::sys;

use crate::core::deflate::Params;
use crate::core::receiver::ReceiverConfig;
use crate::engine::{Ack, ConnConfig, DeflateConfig, Masking, Sent};

/// Send flags, as in `lib/native-transport.js`.
pub const F_FIN: u32 = 1;
pub const F_COMPRESS: u32 = 2;
pub const F_MASK: u32 = 4;
pub const F_ACK: u32 = 8;
pub const F_MASK_KEY: u32 = 16;
/// With F_ACK: no earlier callback waits, so a frame written at once may be
/// reported as written instead of acknowledged in a later batch.
pub const F_ACK_NOW: u32 = 32;

/// The acknowledgement `flags` ask for.
pub fn ack(flags: u32) -> Ack {
    match (flags & F_ACK != 0, flags & F_ACK_NOW != 0) {
        (false, _) => Ack::No,
        (true, false) => Ack::Later,
        (true, true) => Ack::NowOrLater,
    }
}

/// A send's outcome as JS sees it: 0 gone, 1 queued, 2 written (callback
/// now), 3 not taken.
pub fn sent_code(sent: Sent) -> u32 {
    match sent {
        Sent::Gone => 0,
        Sent::Queued => 1,
        Sent::Written => 2,
        Sent::NotQueued => 3,
        Sent::Full => 4,
    }
}

pub fn js_err(msg: impl Into<String>) -> Error {
    Error::from_reason(msg.into())
}

/// Copies a JS string's UTF-8 bytes into `scratch`, or borrows a view's bytes.
pub unsafe fn payload(env: sys::napi_env, v: sys::napi_value, scratch: &mut Vec<u8>) -> Result<&[u8]> {
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

/// The bytes of an ArrayBufferView (a Buffer), to read or write in place.
///
/// # Safety
/// Call on the JS thread of `env`; the slice must not outlive the call.
pub unsafe fn view_mut<'a>(env: sys::napi_env, v: sys::napi_value) -> Result<&'a mut [u8]> {
    let mut data = null_mut();
    let mut len = 0usize;
    if sys::napi_get_buffer_info(env, v, &mut data, &mut len) != sys::Status::napi_ok {
        return Err(js_err("expected a Buffer"));
    }
    Ok(if len == 0 { &mut [] } else { std::slice::from_raw_parts_mut(data as *mut u8, len) })
}

/// The elements of a Uint32Array, to write in place.
///
/// # Safety
/// Call on the JS thread of `env`; the slice must not outlive the call.
pub unsafe fn u32_array_mut<'a>(env: sys::napi_env, v: sys::napi_value) -> Result<&'a mut [u32]> {
    typed_array_mut(env, v, sys::TypedarrayType::uint32_array).ok_or_else(|| js_err("expected a Uint32Array"))
}

/// The elements of a Float64Array, to write in place.
///
/// # Safety
/// As `u32_array_mut`.
pub unsafe fn f64_array_mut<'a>(env: sys::napi_env, v: sys::napi_value) -> Result<&'a mut [f64]> {
    typed_array_mut(env, v, sys::TypedarrayType::float64_array).ok_or_else(|| js_err("expected a Float64Array"))
}

/// The elements of a typed array of `kind`, whose elements are `T`s.
unsafe fn typed_array_mut<'a, T>(env: sys::napi_env, v: sys::napi_value, kind: sys::napi_typedarray_type) -> Option<&'a mut [T]> {
    let mut got = 0;
    let mut len = 0usize;
    let mut data = null_mut();
    let ok = sys::napi_get_typedarray_info(env, v, &mut got, &mut len, &mut data, null_mut(), null_mut()) == sys::Status::napi_ok;
    if !ok || got != kind {
        return None;
    }
    Some(if len == 0 { &mut [] } else { std::slice::from_raw_parts_mut(data as *mut T, len) })
}

/// Runs `f` on the bytes of `data`: a string's UTF-8 (kept in `scratch`) or
/// an ArrayBufferView's own bytes.
pub fn with_bytes<R>(env: &Env, data: &Unknown, scratch: &mut Vec<u8>, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
    let bytes = unsafe { payload(env.raw(), napi::JsValue::raw(data), scratch) }?;
    Ok(f(bytes))
}

pub fn masking(flags: u32, key: u32) -> Masking {
    if flags & F_MASK_KEY != 0 {
        Masking::Key(key.to_be_bytes())
    } else if flags & F_MASK != 0 {
        Masking::Random
    } else {
        Masking::None
    }
}

/// `limits` is `[maxPayload, maxFragments, maxBufferedChunks,
/// skipUTF8Validation, sendHighWaterMark, maxBufferedAmount]`;
/// `deflate`, when negotiated, `[inflateBits, inflateNoContext, deflateBits,
/// deflateNoContext, level, threshold]`.
pub fn conn_config(is_server: bool, limits: &[f64], deflate: Option<&[f64]>) -> ConnConfig {
    let num = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(0.0);
    ConnConfig {
        receiver: ReceiverConfig {
            is_server,
            max_payload: num(limits, 0).max(0.0) as u64,
            max_fragments: num(limits, 1).max(0.0) as u32,
            max_buffered_chunks: num(limits, 2).max(0.0) as u32,
            skip_utf8_validation: num(limits, 3) != 0.0,
        },
        // Absent: no mark.
        high_water: limits.get(4).map_or(usize::MAX, |&m| m.max(0.0) as usize),
        max_buffered: num(limits, 5).max(0.0) as usize,
        deflate: deflate.map(|d| DeflateConfig {
            inflate_window_bits: num(d, 0) as u8,
            inflate_no_context_takeover: num(d, 1) != 0.0,
            deflate_no_context_takeover: num(d, 3) != 0.0,
            deflate_params: Params::new(num(d, 2) as u8, num(d, 4) as i32, num(d, 6) as i32, num(d, 7) as i32),
            threshold: num(d, 5).max(0.0) as usize,
        }),
    }
}

/// Runs the body of a plain N-API callback (one without napi-rs's per-call
/// wrapper, which costs a hot call a fifth of its time): its first `N`
/// arguments in, a value or a thrown error out, and a panic caught at the
/// boundary (it would abort Node if it unwound into V8).
///
/// # Safety
/// Call from an N-API callback with its `env` and `info`.
pub unsafe fn raw_call<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    what: &std::ffi::CStr,
    body: impl FnOnce([sys::napi_value; N]) -> Result<sys::napi_value>,
) -> sys::napi_value {
    let mut argc = N;
    let mut argv = [null_mut(); N];
    sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), null_mut(), null_mut());
    if argc < N {
        // Missing arguments read as undefined, as in a JS function.
        let mut undefined = null_mut();
        sys::napi_get_undefined(env, &mut undefined);
        for a in argv.iter_mut().skip(argc) {
            *a = undefined;
        }
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(argv))) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            let msg = std::ffi::CString::new(e.reason.replace('\0', " ")).unwrap_or_default();
            sys::napi_throw_error(env, null_mut(), msg.as_ptr());
            null_mut()
        }
        Err(_) => {
            let msg = format!("ws-native: internal error in {}", what.to_string_lossy());
            let msg = std::ffi::CString::new(msg).unwrap_or_default();
            sys::napi_throw_error(env, c"WS_NATIVE_ERR_INTERNAL".as_ptr(), msg.as_ptr());
            null_mut()
        }
    }
}

/// Adds plain N-API functions to `exports`.
pub fn export_raw(env: &Env, exports: &Object, fns: &[(&std::ffi::CStr, sys::napi_callback)]) -> Result<()> {
    for (name, cb) in fns {
        let mut f = null_mut();
        let ok = unsafe {
            sys::napi_create_function(env.raw(), name.as_ptr(), name.to_bytes().len() as isize, *cb, null_mut(), &mut f) == sys::Status::napi_ok
                && sys::napi_set_named_property(env.raw(), napi::JsValue::raw(exports), name.as_ptr(), f) == sys::Status::napi_ok
        };
        if !ok {
            return Err(js_err(format!("could not export {}", name.to_string_lossy())));
        }
    }
    Ok(())
}

/// A number argument as u32 (None when it is not a number).
///
/// # Safety
/// Call on the JS thread of `env`.
pub unsafe fn u32_arg(env: sys::napi_env, v: sys::napi_value) -> Option<u32> {
    let mut n = 0u32;
    (sys::napi_get_value_uint32(env, v, &mut n) == sys::Status::napi_ok).then_some(n)
}

/// A boolean argument (false when it is not a boolean).
///
/// # Safety
/// Call on the JS thread of `env`.
pub unsafe fn bool_arg(env: sys::napi_env, v: sys::napi_value) -> bool {
    let mut b = false;
    sys::napi_get_value_bool(env, v, &mut b);
    b
}

/// A number argument as f64 (None when it is not a number).
///
/// # Safety
/// Call on the JS thread of `env`.
pub unsafe fn f64_arg(env: sys::napi_env, v: sys::napi_value) -> Option<f64> {
    let mut n = 0f64;
    (sys::napi_get_value_double(env, v, &mut n) == sys::Status::napi_ok).then_some(n)
}

/// An array of numbers (None when `v` is not an array).
///
/// # Safety
/// Call on the JS thread of `env`.
pub unsafe fn f64s_arg(env: sys::napi_env, v: sys::napi_value) -> Option<Vec<f64>> {
    let mut len = 0u32;
    if sys::napi_get_array_length(env, v, &mut len) != sys::Status::napi_ok {
        return None;
    }
    (0..len)
        .map(|i| {
            let mut e = null_mut();
            sys::napi_get_element(env, v, i, &mut e);
            f64_arg(env, e)
        })
        .collect()
}

/// # Safety
/// Call on the JS thread of `env`.
pub unsafe fn number(env: sys::napi_env, n: f64) -> sys::napi_value {
    let mut out = null_mut();
    sys::napi_create_double(env, n, &mut out);
    out
}

/// # Safety
/// Call on the JS thread of `env`.
pub unsafe fn undefined(env: sys::napi_env) -> sys::napi_value {
    let mut out = null_mut();
    sys::napi_get_undefined(env, &mut out);
    out
}

/// # Safety
/// Call on the JS thread of `env`.
pub unsafe fn boolean(env: sys::napi_env, b: bool) -> sys::napi_value {
    let mut out = null_mut();
    sys::napi_get_boolean(env, b, &mut out);
    out
}
