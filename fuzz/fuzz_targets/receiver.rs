//! The frame parser on arbitrary bytes, with every limit configuration,
//! both roles, with and without permessage-deflate, fed in arbitrary
//! chunks. It must never panic, and never deliver more than maxPayload.
//! With deflate, a second receiver hands big messages out to inflate
//! elsewhere (as the engine's pool does): it must deliver the same events
//! and fail on the same input, except that, like ws, it finds a bad
//! compressed frame only once the frame is whole, where the inline
//! receiver inflates (and fails) as bytes arrive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_native::core::deflate::Inflater;
use ws_native::core::receiver::{Event, Receiver, ReceiverConfig};

#[derive(Debug, PartialEq)]
enum Ev {
    Msg(bool, Vec<u8>),
    Ctrl(Vec<u8>),
    Close(u16, Vec<u8>),
}

/// Feeds `wire` in `step`-byte chunks; with `offload`, runs each inflate
/// job at once and feeds what the receiver left again.
fn run(r: &mut Receiver, wire: &[u8], step: usize, max_payload: u64) -> (Vec<Ev>, bool) {
    let mut evs = Vec::new();
    let mut buf = wire.to_vec();
    for chunk in buf.chunks_mut(step) {
        let mut input = &mut chunk[..];
        loop {
            let mut job = None;
            let result = r.feed(input, &mut |ev| match ev {
                Event::Text(m) | Event::Binary(m) => {
                    assert!(max_payload == 0 || m.len() as u64 <= max_payload);
                    evs.push(Ev::Msg(true, m.into_owned()));
                }
                Event::Ping(d) | Event::Pong(d) => evs.push(Ev::Ctrl(d.to_vec())),
                Event::Close(c, d) => evs.push(Ev::Close(c, d.to_vec())),
                Event::Inflate(j) => job = Some(j),
            });
            if result.is_err() {
                return (evs, true);
            }
            let Some(job) = job else { break };
            let done = job.run();
            let ok = done.result.is_ok();
            match done.result {
                Ok(m) => {
                    assert!(max_payload == 0 || m.len() as u64 <= max_payload);
                    evs.push(Ev::Msg(true, m));
                }
                Err(_) => return (evs, true),
            }
            r.resume(done.inflater, ok);
            let left = r.take_unconsumed();
            let len = input.len();
            input = &mut input[len - left..];
        }
    }
    (evs, false)
}

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
    let deflate = head[2] & 1 != 0;
    let inflater = || deflate.then(|| Inflater::new(8 + (head[2] >> 1) % 8, head[2] & 0x10 != 0));
    let step = 1 + head[3] as usize;
    let inline = run(&mut Receiver::new(cfg, inflater()), wire, step, max_payload);
    if deflate {
        let mut r = Receiver::new(cfg, inflater());
        r.set_offload(1 + (head[2] >> 5) as usize * 8);
        let offloaded = run(&mut r, wire, step, max_payload);
        assert_eq!(offloaded.0, inline.0);
        assert!(offloaded.1 == inline.1 || (inline.1 && r.mid_frame()), "{offloaded:?} {inline:?}");
    }
});
