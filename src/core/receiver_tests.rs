use super::*;
use crate::core::deflate::{Deflater, Params};
use crate::core::frame::{write_frame, OP_BINARY, OP_PONG};

#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, Vec<u8>),
}

fn cfg(is_server: bool) -> ReceiverConfig {
    ReceiverConfig { is_server, max_payload: 0, max_fragments: 0, max_buffered_chunks: 0, skip_utf8_validation: false }
}

const MASK: Option<[u8; 4]> = Some([0xa1, 0xb2, 0xc3, 0xd4]);

fn frame(fin: bool, rsv1: bool, op: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![];
    write_frame(&mut out, fin, rsv1, op, payload, mask);
    out
}

/// Feeds `wire` in pieces of `step` bytes; returns the events and the error.
fn run(r: &mut Receiver, wire: &[u8], step: usize) -> (Vec<Ev>, Option<WsError>) {
    let mut evs = vec![];
    let mut buf = wire.to_vec();
    for chunk in buf.chunks_mut(step.max(1)) {
        let res = r.feed(chunk, &mut |e| {
            evs.push(match e {
                Event::Text(d) => Ev::Text(d.to_vec()),
                Event::Binary(d) => Ev::Binary(d.to_vec()),
                Event::Ping(d) => Ev::Ping(d.to_vec()),
                Event::Pong(d) => Ev::Pong(d.to_vec()),
                Event::Close(c, d) => Ev::Close(c, d.to_vec()),
                Event::Inflate(_) => panic!("no offload configured"),
            })
        });
        if let Err(e) = res {
            return (evs, Some(e));
        }
    }
    (evs, None)
}

/// `run`, with big compressed messages handed out as jobs: each job runs
/// at once, then the input the receiver left is fed again.
fn run_offloaded(r: &mut Receiver, wire: &[u8], step: usize) -> (Vec<Ev>, Option<WsError>, usize) {
    let (mut evs, mut jobs) = (vec![], 0);
    let mut buf = wire.to_vec();
    for chunk in buf.chunks_mut(step.max(1)) {
        let mut input = &mut chunk[..];
        loop {
            let mut job = None;
            let res = r.feed(input, &mut |e| match e {
                Event::Text(d) => evs.push(Ev::Text(d.to_vec())),
                Event::Binary(d) => evs.push(Ev::Binary(d.to_vec())),
                Event::Ping(d) => evs.push(Ev::Ping(d.to_vec())),
                Event::Pong(d) => evs.push(Ev::Pong(d.to_vec())),
                Event::Close(c, d) => evs.push(Ev::Close(c, d.to_vec())),
                Event::Inflate(j) => job = Some(j),
            });
            if let Err(e) = res {
                return (evs, Some(e), jobs);
            }
            let Some(job) = job else { break };
            jobs += 1;
            let done = job.run();
            let ok = done.result.is_ok();
            match done.result {
                Ok(v) if done.text => evs.push(Ev::Text(v)),
                Ok(v) => evs.push(Ev::Binary(v)),
                Err(e) => return (evs, Some(e), jobs),
            }
            r.resume(done.inflater, ok);
            let left = r.take_unconsumed();
            let len = input.len();
            input = &mut input[len - left..];
        }
    }
    (evs, None, jobs)
}

#[test]
fn offloaded_inflate_matches_inline_at_every_split() {
    let big = "{\"k\": \"välue\"}".repeat(400);
    let bin: Vec<u8> = (0..5000u32).map(|i| (i * i % 251) as u8).collect();
    let mut d = Deflater::new(Params::new(15, -1, -1, -1), false);
    let mut wire = vec![];
    for (op, payload) in [(OP_TEXT, big.as_bytes()), (OP_PING, &b"p"[..]), (OP_TEXT, b"small"), (OP_BINARY, &bin)] {
        if op == OP_PING {
            wire.extend(frame(true, false, op, payload, MASK));
        } else {
            let mut z = vec![];
            d.deflate(payload, true, &mut z);
            wire.extend(frame(true, true, op, &z, MASK));
        }
    }
    wire.extend(frame(true, false, OP_CLOSE, &[0x03, 0xe8], MASK));
    let inflater = || Some(Inflater::new(15, false));
    let (want, err) = run(&mut Receiver::new(cfg(true), inflater()), &wire, wire.len());
    assert_eq!(err, None);
    assert_eq!(want.len(), 5);
    let steps: &[usize] = if cfg!(miri) { &[100, 65536] } else { &[1, 7, 100, 1000, 65536] };
    for &step in steps {
        let mut r = Receiver::new(cfg(true), inflater());
        r.set_offload(64);
        let (got, err, jobs) = run_offloaded(&mut r, &wire, step);
        assert_eq!((err, jobs), (None, 2), "step {step}");
        assert_eq!(got, want, "step {step}");
    }
    // A refused message fails the receiver: nothing after it is parsed.
    let mut cut = wire.clone();
    let at = cut.iter().position(|&b| b == 0xc1).unwrap() + 8;
    cut[at] ^= 0xff;
    let mut r = Receiver::new(cfg(true), inflater());
    r.set_offload(64);
    let (got, err, jobs) = run_offloaded(&mut r, &cut, cut.len());
    assert!(err.is_some() && got.is_empty() && jobs == 1, "{got:?} {err:?}");
    assert_eq!(r.feed(&mut frame(true, false, OP_PING, b"x", MASK), &mut |_| panic!()), Ok(()));
}

fn error_of(is_server: bool, wire: &[u8]) -> WsError {
    run(&mut Receiver::new(cfg(is_server), None), wire, wire.len()).1.expect("an error")
}

#[test]
fn messages_at_every_split() {
    let mut wire = frame(true, false, OP_TEXT, "héllo".as_bytes(), MASK);
    wire.extend(frame(false, false, OP_BINARY, &[1, 2], MASK));
    wire.extend(frame(true, false, OP_PING, b"p", MASK));
    wire.extend(frame(true, false, OP_CONTINUATION, &[3], MASK));
    wire.extend(frame(true, false, OP_BINARY, &vec![7u8; 70_000], MASK));
    wire.extend(frame(true, false, OP_TEXT, b"", MASK));
    wire.extend(frame(true, false, OP_CLOSE, &[0x03, 0xe8, b'o', b'k'], MASK));
    wire.extend(frame(true, false, OP_TEXT, b"ignored", MASK));
    let want = vec![
        Ev::Text("héllo".as_bytes().to_vec()),
        Ev::Ping(b"p".to_vec()),
        Ev::Binary(vec![1, 2, 3]),
        Ev::Binary(vec![7u8; 70_000]),
        Ev::Text(vec![]),
        Ev::Close(1000, b"ok".to_vec()),
    ];
    // Miri interprets every instruction: fewer splits there.
    let steps: &[usize] = if cfg!(miri) { &[7, 1000, 65536] } else { &[1, 2, 3, 5, 7, 13, 1000, 65536] };
    for &step in steps.iter().chain([wire.len()].iter()) {
        let mut r = Receiver::new(cfg(true), None);
        let (evs, err) = run(&mut r, &wire, step);
        assert_eq!(err, None, "step {step}");
        assert_eq!(evs, want, "step {step}");
        assert!(r.is_closed());
    }
}

#[test]
fn client_side_reads_unmasked_frames() {
    let mut wire = frame(true, false, OP_PONG, b"", None);
    wire.extend(frame(true, false, OP_CLOSE, b"", None));
    let (evs, err) = run(&mut Receiver::new(cfg(false), None), &wire, 1);
    assert_eq!(err, None);
    assert_eq!(evs, vec![Ev::Pong(vec![]), Ev::Close(1005, vec![])]);
}

#[test]
fn header_errors_in_ws_order() {
    assert_eq!(error_of(true, &[0xb1, 0x80]), WsError::UnexpectedRsv23);
    assert_eq!(error_of(true, &[0xc1, 0x80]), WsError::UnexpectedRsv1);
    assert_eq!(error_of(true, &[0x83, 0x80]), WsError::InvalidOpcode(3));
    assert_eq!(error_of(true, &[0x8b, 0x80]), WsError::InvalidOpcode(11));
    assert_eq!(error_of(true, &[0x80, 0x80]), WsError::InvalidOpcode(0));
    assert_eq!(error_of(true, &[0x09, 0x80]), WsError::ExpectedFin);
    assert_eq!(error_of(true, &[0x89, 0xfe]), WsError::InvalidControlPayloadLength(126));
    assert_eq!(error_of(true, &[0x88, 0x81]), WsError::InvalidControlPayloadLength(1));
    assert_eq!(error_of(true, &[0x81, 0x00]), WsError::ExpectedMask);
    assert_eq!(error_of(false, &[0x81, 0x80]), WsError::UnexpectedMask);
    let mut big = vec![0x82, 0x7f];
    big.extend_from_slice(&(1u64 << 53).to_be_bytes());
    assert_eq!(error_of(false, &big), WsError::UnsupportedDataPayloadLength);
    let mut wire = frame(false, false, OP_TEXT, b"a", None);
    wire.extend(frame(true, false, OP_BINARY, b"b", None));
    assert_eq!(error_of(false, &wire), WsError::InvalidOpcode(2));
}

#[test]
fn close_frame_errors() {
    assert_eq!(error_of(false, &frame(true, false, OP_CLOSE, &[0x03, 0xed], None)), WsError::InvalidCloseCode(1005));
    assert_eq!(error_of(false, &frame(true, false, OP_CLOSE, &[0x03, 0xe8, 0xff], None)), WsError::InvalidUtf8);
}

#[test]
fn invalid_utf8_fails_on_the_fragment_that_carries_it() {
    let mut wire = frame(false, false, OP_TEXT, b"ok", None);
    wire.extend(frame(false, false, OP_CONTINUATION, &[0xff], None));
    let (evs, err) = run(&mut Receiver::new(cfg(false), None), &wire, wire.len());
    assert_eq!((evs, err), (vec![], Some(WsError::InvalidUtf8)));
    let mut c = cfg(false);
    c.skip_utf8_validation = true;
    let (evs, err) = run(&mut Receiver::new(c, None), &frame(true, false, OP_TEXT, &[0xff], None), 1);
    assert_eq!((evs, err), (vec![Ev::Text(vec![0xff])], None));
}

#[test]
fn max_payload_counts_all_fragments() {
    let mut c = cfg(false);
    c.max_payload = 4;
    let mut wire = frame(false, false, OP_TEXT, b"abc", None);
    wire.extend(frame(true, false, OP_CONTINUATION, b"de", None));
    assert_eq!(run(&mut Receiver::new(c, None), &wire, 1).1, Some(WsError::MaxPayloadExceeded));
    let (evs, err) = run(&mut Receiver::new(c, None), &frame(true, false, OP_BINARY, b"abcd", None), 1);
    assert_eq!((evs, err), (vec![Ev::Binary(b"abcd".to_vec())], None));
}

#[test]
fn max_fragments_and_buffered_chunks() {
    let mut c = cfg(false);
    c.max_fragments = 2;
    let mut wire = frame(false, false, OP_BINARY, b"a", None);
    wire.extend(frame(false, false, OP_CONTINUATION, b"b", None));
    wire.extend(frame(true, false, OP_CONTINUATION, b"c", None));
    assert_eq!(run(&mut Receiver::new(c, None), &wire, 100).1, Some(WsError::TooManyFragments));
    let mut c = cfg(false);
    c.max_buffered_chunks = 3;
    let wire = frame(true, false, OP_BINARY, &[0u8; 10], None);
    assert_eq!(run(&mut Receiver::new(c, None), &wire, 1).1, Some(WsError::TooManyBufferedChunks));
    assert_eq!(run(&mut Receiver::new(c, None), &wire, 4).1, None);
}

#[test]
fn compressed_messages_whole_and_fragmented() {
    let mut d = Deflater::new(Params::new(15, -1, -1, -1), false);
    let mut wire = vec![];
    let mut z = vec![];
    d.deflate(b"Hello compressed world", true, &mut z);
    wire.extend(frame(true, true, OP_TEXT, &z, MASK));
    let mut z1 = vec![];
    let mut z2 = vec![];
    d.deflate(b"part one, ", false, &mut z1);
    d.deflate(b"part two", true, &mut z2);
    wire.extend(frame(false, true, OP_TEXT, &z1, MASK));
    wire.extend(frame(true, false, OP_PING, b"", MASK));
    wire.extend(frame(true, false, OP_CONTINUATION, &z2, MASK));
    for step in [1, 3, wire.len()] {
        let mut r = Receiver::new(cfg(true), Some(Inflater::new(15, false)));
        let (evs, err) = run(&mut r, &wire, step);
        assert_eq!(err, None);
        assert_eq!(
            evs,
            vec![
                Ev::Text(b"Hello compressed world".to_vec()),
                Ev::Ping(vec![]),
                Ev::Text(b"part one, part two".to_vec())
            ]
        );
    }
}

#[test]
fn compressed_bomb_is_stopped_at_max_payload() {
    let mut d = Deflater::new(Params::new(15, 9, -1, -1), false);
    let mut z = vec![];
    // Miri interprets every instruction: a smaller bomb there.
    let (size, limit) = if cfg!(miri) { (32 << 10, 8 << 10) } else { (5 << 20, 1 << 20) };
    d.deflate(&vec![0u8; size], true, &mut z);
    let mut c = cfg(false);
    c.max_payload = limit;
    let mut r = Receiver::new(c, Some(Inflater::new(15, false)));
    let (_, err) = run(&mut r, &frame(true, true, OP_BINARY, &z, None), 4096);
    assert_eq!(err, Some(WsError::MaxPayloadExceeded));
    assert!(r.held_bytes() == 0);
}

#[test]
fn idle_receiver_holds_no_buffers() {
    let mut r = Receiver::new(cfg(false), None);
    let mut wire = frame(false, false, OP_BINARY, &[1; 300], None);
    wire.extend(frame(true, false, OP_CONTINUATION, &[2; 300], None));
    run(&mut r, &wire, 50);
    assert_eq!(r.held_bytes(), 0);
}

/// Random bytes in random pieces never panic, on either side, with or
/// without permessage-deflate, and an error is final.
#[test]
fn random_input_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..if cfg!(miri) { 300 } else { 20000 } {
        let len = (next() % 300) as usize;
        let mut wire: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Often start with a plausible header so that deeper states are reached.
        if round % 2 == 0 && wire.len() > 2 {
            wire[0] = [0x81, 0x82, 0x01, 0x00, 0x88, 0x89, 0xc1, 0x41][(next() % 8) as usize];
            wire[1] = (next() % 128) as u8 | if round % 4 == 0 { 0x80 } else { 0 };
        }
        let mut c = cfg(round % 4 == 0);
        c.max_payload = if round % 3 == 0 { 64 } else { 0 };
        let inflater = (round % 5 == 0).then(|| Inflater::new(9 + (round % 7) as u8, round % 2 == 0));
        let mut r = Receiver::new(c, inflater);
        let step = 1 + (next() % 40) as usize;
        let mut buf = wire.clone();
        let mut failed = false;
        for chunk in buf.chunks_mut(step) {
            let res = r.feed(chunk, &mut |_| {});
            if failed {
                assert!(res.is_ok(), "after an error the receiver ignores input");
            }
            failed |= res.is_err();
        }
    }
}

#[test]
fn big_frames_can_be_read_straight_into_the_message_buffer() {
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let wire = frame(true, false, OP_BINARY, &payload, MASK);
    let mut r = Receiver::new(cfg(true), None);
    let mut evs = vec![];
    // The header and a little of the payload arrive through `feed`.
    let mut head = wire[..1000].to_vec();
    r.feed(&mut head, &mut |_| panic!("not complete yet")).unwrap();
    let mut at = 1000;
    while at < wire.len() {
        let (msg, rest) = r.direct_room(1).expect("reading a big frame");
        let n = rest.min(70_000);
        msg.extend_from_slice(&wire[at..at + n]);
        at += n;
        r.commit_direct(n, &mut |e| evs.push(matches!(e, Event::Binary(ref d) if **d == payload[..]))).unwrap();
    }
    assert_eq!(evs, vec![true]);
    assert!(r.direct_room(1).is_none());
    assert_eq!(r.held_bytes(), 0);
}

#[test]
fn frames_delivered_in_place_leave_no_buffer_behind() {
    let mut r = Receiver::new(cfg(true), None);
    let wire = frame(true, false, OP_BINARY, &vec![7u8; 60_000], MASK);
    let (evs, err) = run(&mut r, &wire, wire.len());
    assert!(err.is_none());
    assert_eq!(evs, vec![Ev::Binary(vec![7u8; 60_000])]);
    assert_eq!(r.held_bytes(), 0);
    // Assembled across reads, the buffer goes with the message.
    let (evs, _) = run(&mut r, &wire, 1000);
    assert_eq!(evs.len(), 1);
    assert_eq!(r.held_bytes(), 0);
}
