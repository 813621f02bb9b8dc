//! Inflate of arbitrary (and bomb-like) data with a size limit, every
//! window size and both context-takeover modes: an error or output within
//! the limit, never a panic or more memory than the limit allows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_native::core::deflate::Inflater;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let bits = 8 + data[0] % 8;
    let limit = [1usize, 64, 4096, 1 << 20][(data[1] & 3) as usize];
    let mut inf = Inflater::new(bits, data[1] & 4 != 0);
    let mut out = Vec::new();
    // Several messages through one inflater (context takeover).
    for msg in data[2..].split(|&b| b == 0xff) {
        out.clear();
        if inf.inflate(msg, true, &mut out, limit).is_ok() {
            assert!(out.len() <= limit);
        }
    }
});
