//! `StreamCore`: the protocol core driven from JS, for connections the
//! engine cannot adopt (TLS sockets, arbitrary Duplex streams).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::args::{conn_config, masking, u32_array_mut, view_mut, with_bytes, F_COMPRESS, F_FIN};
use crate::core::mask::MaskPool;
use crate::core::receiver::Receiver;
use crate::core::sender::Encoder;
use crate::engine::batch::Batch;

#[napi]
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

#[napi]
impl StreamCore {
    #[napi(constructor, catch_unwind)]
    pub fn new(is_server: bool, limits: Vec<f64>, deflate: Option<Vec<f64>>) -> Self {
        let (receiver, encoder) = conn_config(is_server, &limits, deflate.as_deref()).codec();
        StreamCore { receiver, encoder, masks: MaskPool::default(), batch: Batch::default(), scratch: Vec::new(), out: Vec::new() }
    }

    /// Parses a chunk read from the stream in place (unmasking it there),
    /// and writes the event records (the engine's format, connection id 0)
    /// into `tape`. Payload offsets are into `chunk`; records flagged big
    /// index `takeBigs()`. Returns twice the number of words, plus 1 when
    /// there are bigs; negative when `tape` is too small: the records wait
    /// for `takeTape()` with a tape that large.
    #[napi(catch_unwind)]
    pub fn feed_in_place(&mut self, env: Env, chunk: Unknown, tape: Unknown) -> Result<f64> {
        let raw = env.raw();
        let input = unsafe { view_mut(raw, chunk.raw()) }?;
        self.batch.feed_external(0, &mut self.receiver, input);
        let words = self.batch.tape.len();
        let code = (words * 2 + usize::from(!self.batch.bigs.is_empty())) as f64;
        let dst = unsafe { u32_array_mut(raw, tape.raw()) }?;
        match dst.get_mut(..words) {
            Some(dst) => {
                dst.copy_from_slice(&self.batch.tape);
                self.batch.tape.clear();
                Ok(code)
            }
            None => Ok(-code),
        }
    }

    /// The records `feedInPlace` could not fit, into `tape`.
    #[napi(catch_unwind)]
    pub fn take_tape(&mut self, env: Env, tape: Unknown) -> Result<()> {
        let dst = unsafe { u32_array_mut(env.raw(), tape.raw()) }?;
        let n = self.batch.tape.len().min(dst.len());
        if let (Some(d), Some(src)) = (dst.get_mut(..n), self.batch.tape.get(..n)) {
            d.copy_from_slice(src);
        }
        self.batch.tape.clear();
        if self.batch.tape.capacity() > KEEP {
            self.batch.tape = Vec::new();
        }
        Ok(())
    }

    /// The payloads of the last `feedInPlace` that are not in its chunk.
    #[napi(catch_unwind)]
    pub fn take_bigs(&mut self) -> Vec<Buffer> {
        self.batch.bigs.drain(..).map(Buffer::from).collect()
    }

    /// Frames a data message into `target` at `offset`, as `encode` does
    /// (its arguments are those of the JS call).
    /// Returns the frame's length; negative when it does not fit there: the
    /// frame waits for `takeFrame()`.
    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn encode_into(&mut self, env: Env, data: Unknown, opcode: u32, flags: u32, mask_key: Option<u32>, target: Unknown, offset: f64) -> Result<f64> {
        let key = masking(flags, mask_key.unwrap_or(0)).key(&mut self.masks);
        let (encoder, out) = (&mut self.encoder, &mut self.out);
        out.clear();
        with_bytes(&env, &data, &mut self.scratch, |bytes| {
            encoder.data(out, bytes, opcode as u8, flags & F_FIN != 0, flags & F_COMPRESS != 0, key)
        })?;
        let n = self.out.len();
        let dst = unsafe { view_mut(env.raw(), target.raw()) }?;
        let at = offset as usize;
        match dst.get_mut(at..).and_then(|d| d.get_mut(..n)) {
            Some(d) => {
                d.copy_from_slice(&self.out);
                self.out.clear();
                Ok(n as f64)
            }
            None => Ok(-(n as f64)),
        }
    }

    /// The frame `encodeInto` could not fit, into `target` at `offset`.
    #[napi(catch_unwind)]
    pub fn take_frame(&mut self, env: Env, target: Unknown, offset: f64) -> Result<()> {
        let dst = unsafe { view_mut(env.raw(), target.raw()) }?;
        let n = self.out.len();
        match dst.get_mut(offset as usize..).and_then(|d| d.get_mut(..n)) {
            Some(d) => d.copy_from_slice(&self.out),
            None => return Err(super::args::js_err("takeFrame: the target is too small")),
        }
        self.out.clear();
        if self.out.capacity() > KEEP {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Frames a data message (`opcode` 1 or 2) and returns the bytes to write.
    #[napi(catch_unwind)]
    pub fn encode(&mut self, env: Env, data: Unknown, opcode: u32, flags: u32, mask_key: Option<u32>) -> Result<Buffer> {
        self.frame(&env, &data, flags, mask_key, |enc, out, bytes, key| {
            enc.data(out, bytes, opcode as u8, flags & F_FIN != 0, flags & F_COMPRESS != 0, key);
        })
    }

    /// Only the header of an unmasked data frame of `len` bytes whose payload
    /// the caller writes itself (so a big payload is not copied); undefined,
    /// with nothing framed, when the frame is to be compressed.
    #[napi(catch_unwind)]
    pub fn encode_header(&mut self, len: f64, opcode: u32, flags: u32) -> Option<Buffer> {
        let mut out = Vec::with_capacity(10);
        self.encoder
            .data_header(&mut out, len as usize, opcode as u8, flags & F_FIN != 0, flags & F_COMPRESS != 0)
            .then(|| out.into())
    }

    /// Frames a close (8), ping (9) or pong (10) frame.
    #[napi(catch_unwind)]
    pub fn encode_control(&mut self, env: Env, opcode: u32, data: Unknown, flags: u32, mask_key: Option<u32>) -> Result<Buffer> {
        self.frame(&env, &data, flags, mask_key, |enc, out, bytes, key| enc.control(out, opcode as u8, bytes, key))
    }
}

impl StreamCore {
    fn frame(
        &mut self,
        env: &Env,
        data: &Unknown,
        flags: u32,
        mask_key: Option<u32>,
        write: impl FnOnce(&mut Encoder, &mut Vec<u8>, &[u8], Option<[u8; 4]>),
    ) -> Result<Buffer> {
        let key = masking(flags, mask_key.unwrap_or(0)).key(&mut self.masks);
        let encoder = &mut self.encoder;
        let mut out = Vec::new();
        with_bytes(env, data, &mut self.scratch, |bytes| write(encoder, &mut out, bytes, key))?;
        Ok(out.into())
    }
}
