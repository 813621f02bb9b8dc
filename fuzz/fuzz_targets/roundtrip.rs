//! Encode any message with any options (fragmented, masked, compressed)
//! and parse it back: the same message comes out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_native::core::deflate::{Deflater, Inflater, Params};
use ws_native::core::receiver::{Event, Receiver, ReceiverConfig};
use ws_native::core::sender::Encoder;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (opts, payload) = data.split_at(3);
    let binary = opts[0] & 1 != 0;
    let deflate = opts[0] & 2 != 0;
    let masked = opts[0] & 4 != 0;
    let no_context = opts[0] & 8 != 0;
    let bits = 8 + (opts[1] % 8);
    let mem_level = 1 + i32::from(opts[1] >> 3) % 9;
    let pieces = 1 + (opts[2] % 8) as usize;
    if !binary && std::str::from_utf8(payload).is_err() {
        return;
    }
    let mut enc = Encoder::new(deflate.then(|| Deflater::new(Params::new(bits.max(9), 6, mem_level, -1), no_context)), None);
    let mut wire = Vec::new();
    let size = payload.len().div_ceil(pieces).max(1);
    let chunks: Vec<&[u8]> = if payload.is_empty() { vec![&[]] } else { payload.chunks(size).collect() };
    for (i, c) in chunks.iter().enumerate() {
        enc.data(&mut wire, c, if binary { 2 } else { 1 }, i + 1 == chunks.len(), true, masked.then_some([1, 2, 3, 4]));
    }
    let cfg = ReceiverConfig { is_server: masked, max_payload: 0, max_fragments: 0, max_buffered_chunks: 0, skip_utf8_validation: false };
    let mut r = Receiver::new(cfg, deflate.then(|| Inflater::new(bits.max(9), no_context)));
    let mut got = Vec::new();
    r.feed(&mut wire, &mut |ev| match ev {
        Event::Text(m) | Event::Binary(m) => got.push(m.into_owned()),
        _ => {}
    })
    .expect("a frame we encoded parses");
    assert_eq!(got, vec![payload.to_vec()]);
});
