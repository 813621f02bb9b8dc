//! The frame parser on arbitrary bytes, with every limit configuration,
//! both roles, with and without permessage-deflate, fed in arbitrary
//! chunks. It must never panic, and never deliver more than maxPayload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_native::core::deflate::Inflater;
use ws_native::core::receiver::{Event, Receiver, ReceiverConfig};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, wire) = data.split_at(4);
    let max_payload = [0u64, 1, 125, 126, 65536, 1 << 20][head[0] as usize % 6];
    let cfg = ReceiverConfig {
        is_server: head[1] & 1 != 0,
        max_payload,
        max_fragments: [0u32, 1, 3, 16][(head[1] >> 1) as usize % 4],
        max_buffered_chunks: [0u32, 1, 4, 64][(head[1] >> 3) as usize % 4],
        skip_utf8_validation: head[1] & 0x20 != 0,
    };
    let inflater = (head[2] & 1 != 0).then(|| Inflater::new(8 + (head[2] >> 1) % 8, head[2] & 0x10 != 0));
    let mut r = Receiver::new(cfg, inflater);
    let step = 1 + head[3] as usize;
    let mut buf = wire.to_vec();
    for chunk in buf.chunks_mut(step) {
        let result = r.feed(chunk, &mut |ev| {
            if let Event::Text(m) | Event::Binary(m) = ev {
                assert!(max_payload == 0 || m.len() as u64 <= max_payload);
            }
        });
        if result.is_err() {
            break;
        }
    }
});
