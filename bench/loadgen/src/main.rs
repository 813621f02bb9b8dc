//! ws-loadgen: drives a WebSocket server and prints one JSON line of
//! results. It prints `mark start` and `mark end` around the measured window
//! so that the caller can sample the server's CPU time at the same moments.
//!
//! ws-loadgen echo|latency|handshakes|idle|broadcast --addr HOST:PORT [options]
//! (`--tls`: wss://, the server's certificate not verified)

mod wire;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Opts {
    scenario: String,
    addr: String,
    conns: usize,
    inflight: usize,
    size: usize,
    binary: bool,
    json: bool,
    deflate: bool,
    secs: f64,
    samples: usize,
    tls: bool,
    probe: bool,
}

fn parse_args() -> Opts {
    let mut a = std::env::args().skip(1);
    let mut o = Opts {
        scenario: a.next().unwrap_or_else(|| "echo".into()),
        addr: "127.0.0.1:8080".into(),
        conns: 50,
        inflight: 16,
        size: 32,
        binary: false,
        json: false,
        deflate: false,
        secs: 3.0,
        samples: 20000,
        tls: false,
        probe: false,
    };
    while let Some(k) = a.next() {
        let mut v = || a.next().unwrap_or_default();
        match k.as_str() {
            "--addr" => o.addr = v(),
            "--conns" => o.conns = v().parse().unwrap_or(o.conns),
            "--inflight" => o.inflight = v().parse().unwrap_or(o.inflight),
            "--size" => o.size = v().parse().unwrap_or(o.size),
            "--secs" => o.secs = v().parse().unwrap_or(o.secs),
            "--samples" => o.samples = v().parse().unwrap_or(o.samples),
            "--binary" => o.binary = true,
            "--json" => o.json = true,
            "--deflate" => o.deflate = true,
            "--tls" => o.tls = true,
            "--probe" => o.probe = true,
            other => eprintln!("ws-loadgen: unknown option {other}"),
        }
    }
    o
}

/// CPU time (user + system) this process has used, in milliseconds.
fn cpu_ms() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 * 1000.0 + tv.tv_usec as f64 / 1000.0;
    t(u.ru_utime) + t(u.ru_stime)
}

fn mark(what: &str) {
    println!("mark {what}");
    let _ = std::io::stdout().flush();
}

/// A payload of `size` bytes: random bytes, ASCII text, or JSON-like text.
fn payload(o: &Opts) -> Vec<u8> {
    if o.binary {
        let mut x = 0x1234_5678u32;
        return (0..o.size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
    }
    if o.json {
        let mut s = String::from("[");
        let mut i = 0;
        while s.len() + 80 < o.size {
            s.push_str(&format!(
                "{{\"id\":{i},\"user\":\"user{}\",\"status\":\"online\",\"score\":{}}},",
                i % 97,
                i * 37 % 1000
            ));
            i += 1;
        }
        s.push_str("{\"end\":true}]");
        while s.len() < o.size {
            s.push(' ');
        }
        return s.into_bytes();
    }
    vec![b'x'; o.size]
}

/// Measures over a window: returns (events in window, seconds, our CPU ms).
async fn window(counter: &AtomicU64, secs: f64) -> (f64, f64, f64) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    mark("start");
    let (c0, t0, cpu0) = (counter.load(Relaxed), Instant::now(), cpu_ms());
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let (c1, el, cpu1) = (counter.load(Relaxed), t0.elapsed().as_secs_f64(), cpu_ms());
    mark("end");
    ((c1 - c0) as f64, el, cpu1 - cpu0)
}

async fn echo(o: &Opts) -> String {
    let count = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let data = Arc::new(payload(o));
    let opcode = if o.binary { 2 } else { 1 };
    for _ in 0..o.conns {
        let mut c = wire::connect(&o.addr, "/", o.deflate).await.expect("connect");
        let (count, bytes, data, inflight) = (count.clone(), bytes.clone(), data.clone(), o.inflight);
        tokio::spawn(async move {
            let mut out = Vec::new();
            let prebuilt = if c.deflate.is_none() {
                let mut f = Vec::new();
                c.encode(&mut f, opcode, &data);
                Some(f)
            } else {
                None
            };
            let queue = |c: &mut wire::Client, out: &mut Vec<u8>, n: usize| {
                for _ in 0..n {
                    match &prebuilt {
                        Some(f) => out.extend_from_slice(f),
                        None => c.encode(out, opcode, &data),
                    }
                }
            };
            queue(&mut c, &mut out, inflight);
            let mut seen = Vec::new();
            loop {
                if !out.is_empty() {
                    if c.send(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
                if !matches!(c.fill().await, Ok(true)) {
                    return;
                }
                seen.clear();
                c.frames(&mut seen);
                let n = seen.iter().filter(|(op, _)| *op == 1 || *op == 2).count();
                count.fetch_add(n as u64, Relaxed);
                bytes.fetch_add(seen.iter().map(|s| s.1 as u64).sum(), Relaxed);
                queue(&mut c, &mut out, n);
            }
        });
    }
    let probe = if o.probe { Some(start_probe(&o.addr).await) } else { None };
    let b0 = bytes.load(Relaxed);
    let (n, secs, cpu) = window(&count, o.secs).await;
    let mb = (bytes.load(Relaxed) - b0) as f64 / secs / 1e6;
    let probe = match probe {
        Some((done, rtts)) => {
            done.store(true, Relaxed);
            let mut rtts = rtts.lock().map(|v| v.clone()).unwrap_or_default();
            rtts.sort_by(|a, b| a.total_cmp(b));
            let p99 = rtts.get(((rtts.len() as f64 * 0.99) as usize).min(rtts.len().saturating_sub(1))).copied().unwrap_or(f64::NAN);
            format!(",\"probe_p99_us\":{p99:.1},\"probe_samples\":{}", rtts.len())
        }
        None => String::new(),
    };
    format!(
        "{{\"msgs_per_s\":{:.1},\"mb_per_s\":{:.2},\"secs\":{secs:.3},\"msgs\":{n},\"client_cpu_ms\":{cpu:.1}{probe}}}",
        n / secs,
        mb
    )
}

/// A plain connection (no permessage-deflate) beside the load, sending one
/// 32-byte message at a time: its round trips, taken from the warm-up's
/// end to the window's, show how long the server's loop is held up.
async fn start_probe(addr: &str) -> (Arc<AtomicBool>, Arc<std::sync::Mutex<Vec<f64>>>) {
    let mut c = wire::connect(addr, "/", false).await.expect("connect");
    let done = Arc::new(AtomicBool::new(false));
    let rtts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (m, r) = (done.clone(), rtts.clone());
    tokio::spawn(async move {
        let mut frame = Vec::new();
        c.encode(&mut frame, 1, &[b'p'; 32]);
        let mut seen = Vec::new();
        let started = Instant::now();
        loop {
            let t = Instant::now();
            if c.send(&frame).await.is_err() {
                return;
            }
            loop {
                seen.clear();
                c.frames(&mut seen);
                if !seen.is_empty() {
                    break;
                }
                if !matches!(c.fill().await, Ok(true)) {
                    return;
                }
            }
            // `m` turns true at the window's end: from then on, nothing is kept.
            if started.elapsed() >= Duration::from_millis(500) && !m.load(Relaxed) {
                if let Ok(mut v) = r.lock() {
                    v.push(t.elapsed().as_nanos() as f64 / 1000.0);
                }
            }
        }
    });
    (done, rtts)
}

async fn latency(o: &Opts) -> String {
    let mut c = wire::connect(&o.addr, "/", o.deflate).await.expect("connect");
    let data = payload(o);
    let mut frame = Vec::new();
    c.encode(&mut frame, if o.binary { 2 } else { 1 }, &data);
    let mut rtts = Vec::with_capacity(o.samples);
    let mut seen = Vec::new();
    let warmup = o.samples / 10;
    mark("start");
    let cpu0 = cpu_ms();
    for i in 0..o.samples + warmup {
        let t = Instant::now();
        c.send(&frame).await.expect("send");
        loop {
            seen.clear();
            c.frames(&mut seen);
            if !seen.is_empty() {
                break;
            }
            if !c.fill().await.expect("read") {
                panic!("server closed");
            }
        }
        if i >= warmup {
            rtts.push(t.elapsed().as_nanos() as f64 / 1000.0);
        }
    }
    let cpu = cpu_ms() - cpu0;
    mark("end");
    rtts.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| rtts[((rtts.len() as f64 * q) as usize).min(rtts.len() - 1)];
    format!(
        "{{\"p50_us\":{:.1},\"p99_us\":{:.1},\"samples\":{},\"msgs\":{},\"client_cpu_ms\":{cpu:.1}}}",
        p(0.5),
        p(0.99),
        rtts.len(),
        rtts.len() + warmup
    )
}

/// Open, close handshake, close: as many as possible over the window.
async fn handshakes(o: &Opts) -> String {
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    for _ in 0..o.conns {
        let (count, stop, addr) = (count.clone(), stop.clone(), o.addr.clone());
        tokio::spawn(async move {
            while !stop.load(Relaxed) {
                let Ok(mut c) = wire::connect(&addr, "/", false).await else { continue };
                let mut f = Vec::new();
                c.encode(&mut f, 8, &1000u16.to_be_bytes());
                if c.send(&f).await.is_err() {
                    continue;
                }
                let mut seen = Vec::new();
                while seen.is_empty() {
                    if !matches!(c.fill().await, Ok(true)) {
                        break;
                    }
                    c.frames(&mut seen);
                }
                let _ = c.stream.shutdown().await;
                let mut sink = [0u8; 256];
                while matches!(c.stream.read(&mut sink).await, Ok(n) if n > 0) {}
                count.fetch_add(1, Relaxed);
            }
        });
    }
    let (n, secs, cpu) = window(&count, o.secs).await;
    stop.store(true, Relaxed);
    format!("{{\"conns_per_s\":{:.1},\"secs\":{secs:.3},\"conns\":{n},\"client_cpu_ms\":{cpu:.1}}}", n / secs)
}

/// Holds `conns` connections open until standard input closes.
async fn idle(o: &Opts) -> String {
    let mut held = Vec::with_capacity(o.conns);
    for chunk in 0..o.conns.div_ceil(100) {
        let mut batch = Vec::new();
        for _ in chunk * 100..((chunk + 1) * 100).min(o.conns) {
            batch.push(tokio::spawn({
                let addr = o.addr.clone();
                async move { wire::connect(&addr, "/", false).await }
            }));
        }
        for t in batch {
            held.push(t.await.expect("join").expect("connect"));
        }
    }
    println!("ready {}", held.len());
    let _ = std::io::stdout().flush();
    let mut stdin = tokio::io::stdin();
    let mut sink = [0u8; 64];
    while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {}
    format!("{{\"conns\":{}}}", held.len())
}

/// One sender, `conns` receivers; the server relays each message to every
/// receiver. Counts deliveries, keeping the sender at most `inflight`
/// messages ahead of the slowest receiver.
async fn broadcast(o: &Opts) -> String {
    let delivered = Arc::new(AtomicU64::new(0));
    let mins: Arc<Vec<AtomicU64>> = Arc::new((0..o.conns).map(|_| AtomicU64::new(0)).collect());
    for i in 0..o.conns {
        let mut c = wire::connect(&o.addr, "/broadcast/recv", false).await.expect("connect");
        let (delivered, mins) = (delivered.clone(), mins.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while matches!(c.fill().await, Ok(true)) {
                seen.clear();
                c.frames(&mut seen);
                delivered.fetch_add(seen.len() as u64, Relaxed);
                mins[i].fetch_add(seen.len() as u64, Relaxed);
            }
        });
    }
    let mut sender = wire::connect(&o.addr, "/broadcast/send", false).await.expect("connect");
    let data = payload(o);
    let mut frame = Vec::new();
    sender.encode(&mut frame, 1, &data);
    let window_size = o.inflight as u64;
    let sent = Arc::new(AtomicU64::new(0));
    let sent2 = sent.clone();
    let mins2 = mins.clone();
    tokio::spawn(async move {
        let mut burst = Vec::new();
        loop {
            let slowest = mins2.iter().map(|m| m.load(Relaxed)).min().unwrap_or(0);
            let s = sent2.load(Relaxed);
            if s < slowest + window_size {
                burst.clear();
                for _ in 0..(slowest + window_size - s) {
                    burst.extend_from_slice(&frame);
                }
                if sender.send(&burst).await.is_err() {
                    return;
                }
                sent2.store(slowest + window_size, Relaxed);
            } else {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
    });
    let (n, secs, cpu) = window(&delivered, o.secs).await;
    format!("{{\"deliveries_per_s\":{:.1},\"secs\":{secs:.3},\"deliveries\":{n},\"client_cpu_ms\":{cpu:.1}}}", n / secs)
}

fn main() {
    let o = parse_args();
    if o.tls {
        wire::use_tls();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let line = rt.block_on(async {
        match o.scenario.as_str() {
            "echo" => echo(&o).await,
            "latency" => latency(&o).await,
            "handshakes" => handshakes(&o).await,
            "idle" => idle(&o).await,
            "broadcast" => broadcast(&o).await,
            s => format!("{{\"error\":\"unknown scenario {s}\"}}"),
        }
    });
    println!("{line}");
    let _ = std::io::stdout().flush();
    std::process::exit(0);
}
