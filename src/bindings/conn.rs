//! What JS asks of one connection on the engine, as plain N-API functions
//! (`raw_call`): no receiver and no napi-rs wrapper, which would cost each
//! call several times its work, since every connection makes these calls
//! (a handshake several of them, a message one). Each finds this thread's
//! engine itself. lib/native-transport.js calls them, after the send tape.

use std::ffi::CStr;

use napi::bindgen_prelude::*;
use napi::sys;

use super::args::{
    ack, bool_arg, boolean, conn_config, f64_array_mut, f64s_arg, js_err, masking, number, raw_call, sent_code, u32_arg, undefined, with_bytes,
    F_COMPRESS, F_FIN,
};
use crate::core::sender::DataFrame;
use crate::engine::{Ack, Engine, Masking, Sent};

/// Buffers at least this big are sent from JS memory without a copy.
const EXTERNAL_MIN: usize = 64 * 1024;

/// The functions, by their JS names.
pub const FUNCTIONS: [(&CStr, sys::napi_callback); 12] = [
    (c"engineAdopt", Some(adopt)),
    (c"engineSend", Some(send)),
    (c"engineSendTape", Some(send_tape)),
    (c"engineControl", Some(control)),
    (c"engineSendRaw", Some(send_raw)),
    (c"engineEnd", Some(end)),
    (c"engineDestroy", Some(destroy)),
    (c"engineSetPaused", Some(set_paused)),
    (c"engineArmDrain", Some(arm_drain)),
    (c"engineCounters", Some(counters)),
    (c"engineBufferedAmount", Some(buffered_amount)),
    (c"engineCompressing", Some(compressing)),
];

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn engine() -> Result<&'static mut Engine> {
    crate::engine::current().ok_or_else(|| js_err("the engine is shut down"))
}

/// The body of a call whose first argument is a connection's id: `body`
/// gets the engine, the id and the other arguments.
///
/// # Safety
/// Call from an N-API callback with its `env` and `info`.
unsafe fn on_conn<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    what: &CStr,
    body: impl FnOnce(&mut Engine, u32, [sys::napi_value; N]) -> Result<sys::napi_value>,
) -> sys::napi_value {
    raw_call(env, info, what, |args: [sys::napi_value; N]| {
        let id = args.first().and_then(|&v| u32_arg(env, v));
        let id = id.ok_or_else(|| js_err(format!("{}: the id is a number", what.to_string_lossy())))?;
        body(engine()?, id, args)
    })
}

/// `engineAdopt(fd, isServer, limits, deflate?, head?, initial?)`: the
/// engine takes over a connected socket's fd (see `conn_config` for
/// `limits` and `deflate`), parses `head` first and writes `initial` first.
/// Returns the connection's id.
unsafe extern "C" fn adopt(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    raw_call(env, info, c"engineAdopt", |[fd, is_server, limits, deflate, head, initial]| {
        let Some(fd) = u32_arg(env, fd).and_then(|fd| i32::try_from(fd).ok()) else {
            return Err(js_err("engineAdopt: fd is a number"));
        };
        let limits = f64s_arg(env, limits).unwrap_or_default();
        let deflate = f64s_arg(env, deflate);
        let config = conn_config(bool_arg(env, is_server), &limits, deflate.as_deref());
        let bytes = |v| buffer_view(env, v).map_or(&[][..], |(ptr, len)| if len == 0 { &[] } else { std::slice::from_raw_parts(ptr, len) });
        let id = engine()?.adopt(fd, config, bytes(head), bytes(initial)).map_err(js_err)?;
        Ok(number(env, id as f64))
    })
}

/// `engineControl(id, opcode, data, flags, maskKey)`: queues a close (8),
/// ping (9) or pong (10) frame.
unsafe extern "C" fn control(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    on_conn(env, info, c"engineControl", |eng, id, [_, opcode, data, flags, mask_key]| {
        let (opcode, flags) = (u32_arg(env, opcode).unwrap_or(0) as u8, u32_arg(env, flags).unwrap_or(0));
        let mask = masking(flags, u32_arg(env, mask_key).unwrap_or(0));
        let data = Unknown::from_napi_value(env, data)?;
        let sent = SCRATCH.with(|s| with_bytes(&Env::from_raw(env), &data, &mut s.borrow_mut(), |bytes| eng.send_control(id, opcode, bytes, mask, ack(flags))))?;
        Ok(number(env, sent_code(sent) as f64))
    })
}

/// `engineSendRaw(id, data, flags)`: queues bytes that already form frames.
unsafe extern "C" fn send_raw(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    on_conn(env, info, c"engineSendRaw", |eng, id, [_, data, flags]| {
        let flags = u32_arg(env, flags).unwrap_or(0);
        let data = Unknown::from_napi_value(env, data)?;
        let sent = SCRATCH.with(|s| with_bytes(&Env::from_raw(env), &data, &mut s.borrow_mut(), |bytes| eng.send_raw(id, bytes, ack(flags))))?;
        Ok(number(env, sent_code(sent) as f64))
    })
}

/// The body of a call that asks `act` of a connection and returns nothing.
///
/// # Safety
/// As `on_conn`.
unsafe fn act_on(env: sys::napi_env, info: sys::napi_callback_info, what: &CStr, act: impl FnOnce(&mut Engine, u32)) -> sys::napi_value {
    on_conn(env, info, what, |eng, id, [_]| {
        act(eng, id);
        Ok(undefined(env))
    })
}

/// `engineEnd(id)`: half-closes once the queue is written.
unsafe extern "C" fn end(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    act_on(env, info, c"engineEnd", Engine::end)
}

/// `engineDestroy(id)`: closes at once (see `Engine::destroy`).
unsafe extern "C" fn destroy(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    act_on(env, info, c"engineDestroy", Engine::destroy)
}

/// `engineSetPaused(id, paused)`.
unsafe extern "C" fn set_paused(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    on_conn(env, info, c"engineSetPaused", |eng, id, [_, paused]| {
        eng.set_paused(id, bool_arg(env, paused));
        Ok(undefined(env))
    })
}

/// `engineArmDrain(id)`: a drain record once `bufferedAmount` is back to 0.
unsafe extern "C" fn arm_drain(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    act_on(env, info, c"engineArmDrain", Engine::arm_drain)
}

/// `engineCounters(id, out)`: the bytes read and written by the engine's own
/// I/O on `id` into a Float64Array's first two elements; for a closed
/// connection its final counts, given once.
unsafe extern "C" fn counters(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    on_conn(env, info, c"engineCounters", |eng, id, [_, out]| {
        let out = f64_array_mut(env, out)?;
        let (read, written) = eng.counters(id);
        if let [r, w, ..] = out {
            (*r, *w) = (read as f64, written as f64);
        }
        Ok(undefined(env))
    })
}

unsafe extern "C" fn buffered_amount(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    on_conn(env, info, c"engineBufferedAmount", |eng, id, [_]| Ok(number(env, eng.buffered_amount(id) as f64)))
}

/// `engineCompressing(id)`: whether frames of `id` wait behind a compression.
unsafe extern "C" fn compressing(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    on_conn(env, info, c"engineCompressing", |eng, id, [_]| Ok(boolean(env, eng.compressing(id))))
}

/// `engineSend(id, data, opcode, flags, maskKey)`: queues a data frame.
unsafe extern "C" fn send(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    on_conn(env, info, c"engineSend", |eng, id, [_, data, opcode, flags, mask_key]| {
        let (Some(opcode), Some(flags)) = (u32_arg(env, opcode), u32_arg(env, flags)) else {
            return Err(js_err("engineSend: opcode and flags are numbers"));
        };
        let data = Unknown::from_napi_value(env, data)?;
        let code = SCRATCH.with(|s| send_on(eng, &Env::from_raw(env), &mut s.borrow_mut(), id, &data, opcode, flags, u32_arg(env, mask_key)))?;
        Ok(number(env, code as f64))
    })
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
/// ids written over the tape's first words.
unsafe extern "C" fn send_tape(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    raw_call(env, info, c"engineSendTape", |[tape, area, count]| {
        let (Some((tape, tape_len)), Some((area, area_len)), Some(count)) = (buffer_view(env, tape), buffer_view(env, area), u32_arg(env, count)) else {
            return Err(js_err("engineSendTape: two Buffers and a count"));
        };
        let eng = engine()?;
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
