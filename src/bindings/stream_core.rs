//! The stream core: the protocol core driven from JS, for connections the
//! engine cannot adopt (TLS sockets, arbitrary Duplex streams). One core
//! is an External; its functions are plain N-API callbacks, since the
//! stream transport calls them once per chunk and once per send:
//!
//! - `streamCore(isServer, limits, deflate?)` makes a core;
//! - `streamFeed(core, chunk, tape)`, `streamTakeTape(core, tape)`,
//!   `streamTakeBigs(core)` parse;
//! - `streamEncodeInto(core, data, opcode, flags, maskKey, target, offset)`,
//!   `streamTakeFrame(core, target, offset)`, `streamEncode(...)`,
//!   `streamEncodeHeader(core, len, opcode, flags)` and
//!   `streamEncodeControl(core, opcode, data, flags, maskKey)` frame.

use std::ffi::c_void;
use std::ptr::null_mut;

use napi::bindgen_prelude::*;
use napi::sys;

use super::args::{
    bool_arg, conn_config, f64_arg, f64s_arg, js_err, masking, number, payload, raw_call, u32_arg, u32_array_mut, undefined, view_mut, F_COMPRESS, F_FIN,
};
use crate::core::mask::MaskPool;
use crate::core::receiver::Receiver;
use crate::core::sender::Encoder;
use crate::engine::batch::Batch;
use crate::engine::dispatch::give_buffer;

pub struct StreamCore {
    receiver: Receiver,
    encoder: Encoder,
    masks: MaskPool,
    batch: Batch,
    scratch: Vec<u8>,
    /// A frame `encodeInto` could not fit, until `takeFrame`.
    out: Vec<u8>,
}

/// Frames and tapes kept between calls keep at most this much capacity.
const KEEP: usize = 1 << 20;

/// Marks the Externals that are stream cores, so that no other value is
/// taken for one.
const TAG: sys::napi_type_tag = sys::napi_type_tag { lower: 0x7773_2d6e_6174_6976, upper: 0x6573_7472_6561_6d31 };

/// The functions, by their JS names.
pub const FUNCTIONS: [(&std::ffi::CStr, sys::napi_callback); 9] = [
    (c"streamCore", Some(new_core)),
    (c"streamFeed", Some(feed)),
    (c"streamTakeTape", Some(take_tape)),
    (c"streamTakeBigs", Some(take_bigs)),
    (c"streamEncodeInto", Some(encode_into)),
    (c"streamTakeFrame", Some(take_frame)),
    (c"streamEncode", Some(encode)),
    (c"streamEncodeHeader", Some(encode_header)),
    (c"streamEncodeControl", Some(encode_control)),
];

unsafe extern "C" fn drop_core(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    drop(Box::from_raw(data as *mut StreamCore));
}

/// The core behind an External made by `streamCore`.
unsafe fn core_of<'a>(env: sys::napi_env, v: sys::napi_value) -> Result<&'a mut StreamCore> {
    let mut tagged = false;
    let mut data = null_mut();
    if sys::napi_check_object_type_tag(env, v, &TAG, &mut tagged) != sys::Status::napi_ok
        || !tagged
        || sys::napi_get_value_external(env, v, &mut data) != sys::Status::napi_ok
        || data.is_null()
    {
        return Err(js_err("expected a stream core"));
    }
    Ok(&mut *(data as *mut StreamCore))
}

unsafe extern "C" fn new_core(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    raw_call(env, info, c"streamCore", |[is_server, limits, deflate]| {
        let server = bool_arg(env, is_server);
        let limits = f64s_arg(env, limits).unwrap_or_default();
        let deflate = f64s_arg(env, deflate);
        let (receiver, encoder) = conn_config(server, &limits, deflate.as_deref()).codec();
        let core = Box::new(StreamCore { receiver, encoder, masks: MaskPool::default(), batch: Batch::default(), scratch: Vec::new(), out: Vec::new() });
        let raw = Box::into_raw(core);
        let mut out = null_mut();
        if sys::napi_create_external(env, raw as *mut c_void, Some(drop_core), null_mut(), &mut out) != sys::Status::napi_ok {
            drop(Box::from_raw(raw));
            return Err(js_err("could not make a stream core"));
        }
        sys::napi_type_tag_object(env, out, &TAG);
        Ok(out)
    })
}

/// Parses a chunk read from the stream in place (unmasking it there),
/// and writes the event records (the engine's format, connection id 0)
/// into `tape`. Payload offsets are into `chunk`; records flagged big
/// index `streamTakeBigs()`. Returns twice the number of words, plus 1 when
/// there are bigs; negative when `tape` is too small: the records wait
/// for `streamTakeTape()` with a tape that large.
unsafe extern "C" fn feed(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    raw_call(env, info, c"streamFeed", |[core, chunk, tape]| {
        let core = core_of(env, core)?;
        let input = view_mut(env, chunk)?;
        core.batch.feed_external(0, &mut core.receiver, input);
        let words = core.batch.tape.len();
        let code = (words * 2 + usize::from(!core.batch.bigs.is_empty())) as f64;
        let dst = u32_array_mut(env, tape)?;
        Ok(number(
            env,
            match dst.get_mut(..words) {
                Some(dst) => {
                    dst.copy_from_slice(&core.batch.tape);
                    core.batch.tape.clear();
                    code
                }
                None => -code,
            },
        ))
    })
}

/// The records `streamFeed` could not fit, into `tape`.
unsafe extern "C" fn take_tape(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    raw_call(env, info, c"streamTakeTape", |[core, tape]| {
        let core = core_of(env, core)?;
        let dst = u32_array_mut(env, tape)?;
        let n = core.batch.tape.len().min(dst.len());
        if let (Some(d), Some(src)) = (dst.get_mut(..n), core.batch.tape.get(..n)) {
            d.copy_from_slice(src);
        }
        core.batch.tape.clear();
        if core.batch.tape.capacity() > KEEP {
            core.batch.tape = Vec::new();
        }
        Ok(undefined(env))
    })
}

/// The payloads of the last `streamFeed` that are not in its chunk.
unsafe extern "C" fn take_bigs(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    raw_call(env, info, c"streamTakeBigs", |[core]| {
        let core = core_of(env, core)?;
        let mut out = null_mut();
        sys::napi_create_array_with_length(env, core.batch.bigs.len(), &mut out);
        for (i, b) in core.batch.bigs.drain(..).enumerate() {
            sys::napi_set_element(env, out, i as u32, give_buffer(env, b));
        }
        Ok(out)
    })
}

/// Appends to `out` the frame `write` makes of `data` with the core's
/// encoder, the opcode, flags and mask key taken from the JS arguments
/// (`default_op` when the opcode is not a number).
#[allow(clippy::too_many_arguments)]
unsafe fn frame_into(
    env: sys::napi_env,
    core: &mut StreamCore,
    out: &mut Vec<u8>,
    data: sys::napi_value,
    opcode: sys::napi_value,
    default_op: u32,
    flags: sys::napi_value,
    key: sys::napi_value,
    write: impl FnOnce(&mut Encoder, &mut Vec<u8>, &[u8], u8, u32, Option<[u8; 4]>),
) -> Result<()> {
    let (opcode, flags) = (u32_arg(env, opcode).unwrap_or(default_op), u32_arg(env, flags).unwrap_or(0));
    let key = masking(flags, u32_arg(env, key).unwrap_or(0)).key(&mut core.masks);
    let bytes = payload(env, data, &mut core.scratch)?;
    write(&mut core.encoder, out, bytes, opcode as u8, flags, key);
    Ok(())
}

/// A data frame (`opcode` 1 or 2).
fn data_frame(enc: &mut Encoder, out: &mut Vec<u8>, bytes: &[u8], opcode: u8, flags: u32, key: Option<[u8; 4]>) {
    enc.data(out, bytes, opcode, flags & F_FIN != 0, flags & F_COMPRESS != 0, key);
}

/// Frames a data message into `target` at `offset`. Returns the frame's
/// length; negative when it does not fit there: the frame waits for
/// `streamTakeFrame()`.
unsafe extern "C" fn encode_into(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    raw_call(env, info, c"streamEncodeInto", |[core, data, opcode, flags, key, target, offset]| {
        let core = core_of(env, core)?;
        let mut out = std::mem::take(&mut core.out);
        out.clear();
        let framed = frame_into(env, core, &mut out, data, opcode, 1, flags, key, data_frame);
        core.out = out;
        framed?;
        let n = core.out.len();
        let dst = view_mut(env, target)?;
        let at = f64_arg(env, offset).unwrap_or(0.0) as usize;
        Ok(number(
            env,
            match dst.get_mut(at..).and_then(|d| d.get_mut(..n)) {
                Some(d) => {
                    d.copy_from_slice(&core.out);
                    core.out.clear();
                    n as f64
                }
                None => -(n as f64),
            },
        ))
    })
}

/// The frame `streamEncodeInto` could not fit, into `target` at `offset`.
unsafe extern "C" fn take_frame(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    raw_call(env, info, c"streamTakeFrame", |[core, target, offset]| {
        let core = core_of(env, core)?;
        let dst = view_mut(env, target)?;
        let n = core.out.len();
        let at = f64_arg(env, offset).unwrap_or(0.0) as usize;
        match dst.get_mut(at..).and_then(|d| d.get_mut(..n)) {
            Some(d) => d.copy_from_slice(&core.out),
            None => return Err(js_err("streamTakeFrame: the target is too small")),
        }
        core.out.clear();
        if core.out.capacity() > KEEP {
            core.out = Vec::new();
        }
        Ok(undefined(env))
    })
}

/// Frames a data message (`opcode` 1 or 2) and returns the bytes to write.
unsafe extern "C" fn encode(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    raw_call(env, info, c"streamEncode", |[core, data, opcode, flags, key]| {
        let mut out = Vec::new();
        frame_into(env, core_of(env, core)?, &mut out, data, opcode, 1, flags, key, data_frame)?;
        Ok(give_buffer(env, out))
    })
}

/// Only the header of an unmasked data frame of `len` bytes whose payload
/// the caller writes itself (so a big payload is not copied); undefined,
/// with nothing framed, when the frame is to be compressed.
unsafe extern "C" fn encode_header(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    raw_call(env, info, c"streamEncodeHeader", |[core, len, opcode, flags]| {
        let core = core_of(env, core)?;
        let (opcode, flags) = (u32_arg(env, opcode).unwrap_or(1), u32_arg(env, flags).unwrap_or(0));
        let len = f64_arg(env, len).unwrap_or(0.0) as usize;
        let mut out = Vec::with_capacity(10);
        if !core.encoder.data_header(&mut out, len, opcode as u8, flags & F_FIN != 0, flags & F_COMPRESS != 0) {
            return Ok(undefined(env));
        }
        Ok(give_buffer(env, out))
    })
}

/// Frames a close (8), ping (9) or pong (10) frame.
unsafe extern "C" fn encode_control(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    raw_call(env, info, c"streamEncodeControl", |[core, opcode, data, flags, key]| {
        let mut out = Vec::new();
        frame_into(env, core_of(env, core)?, &mut out, data, opcode, 9, flags, key, |enc, out, bytes, op, _, key| enc.control(out, op, bytes, key))?;
        Ok(give_buffer(env, out))
    })
}
