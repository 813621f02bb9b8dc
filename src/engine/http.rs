//! The opening request of a connection a native listener accepted: read
//! until the head is complete, then parsed (httparse). Only a plain
//! upgrade request is handled here; anything else goes to Node's own HTTP
//! server (see `Head::Handoff`), so that its answers stay Node's.

/// Node's default limit for a request's head (`--max-http-header-size`).
pub const MAX_HEAD: usize = 16 * 1024;
/// Headers read here; a request with more goes to Node.
const MAX_HEADERS: usize = 64;

/// What the bytes read so far make.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// An upgrade request: its record for JS (see `encode`) and the bytes
    /// after its head.
    Upgrade { record: Vec<u8>, rest: Vec<u8> },
    /// Anything else (incomplete after the first read, not an upgrade,
    /// malformed, too large): Node's HTTP server takes the connection.
    Handoff,
}

/// Looks at the first bytes a connection sent.
pub fn parse(buf: &[u8]) -> Head {
    let Some(end) = find_end(buf) else { return Head::Handoff };
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(n)) = req.parse(buf.get(..end).unwrap_or_default()) else { return Head::Handoff };
    if n != end || req.version != Some(1) {
        return Head::Handoff;
    }
    let (Some(method), Some(path)) = (req.method, req.path) else { return Head::Handoff };
    let mut upgrade = false;
    let mut connection_upgrade = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        } else if h.name.eq_ignore_ascii_case("connection") {
            connection_upgrade |= h.value.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"));
        } else if h.name.eq_ignore_ascii_case("content-length") || h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Head::Handoff;
        }
    }
    if !upgrade || !connection_upgrade {
        return Head::Handoff;
    }
    let mut record = Vec::with_capacity(end);
    for part in [method.as_bytes(), path.as_bytes()] {
        record.extend_from_slice(part);
        record.push(0);
    }
    for h in req.headers.iter() {
        record.extend_from_slice(h.name.as_bytes());
        record.push(0);
        record.extend_from_slice(h.value);
        record.push(0);
    }
    record.pop();
    Head::Upgrade { record, rest: buf.get(end..).unwrap_or_default().to_vec() }
}

/// Where the head ends (just past its blank line).
fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i.saturating_add(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_requests_and_the_rest() {
        let req = b"GET /chat?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nX: \xe9\r\n\r\nleft";
        let Head::Upgrade { record, rest } = parse(req) else { panic!() };
        assert_eq!(record, b"GET\0/chat?x=1\0Host\0a\0Upgrade\0websocket\0Connection\0keep-alive, Upgrade\0X\0\xe9");
        assert_eq!(rest, b"left");
        let handoff = [
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n",
            b"GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"POST / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nContent-Length: 1\r\n\r\nx",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: close\r\n\r\n",
            b"G\x01T / HTTP/1.1\r\n\r\n",
        ];
        for h in handoff {
            assert_eq!(parse(h), Head::Handoff, "{:?}", String::from_utf8_lossy(h));
        }
    }

    #[test]
    fn any_bytes_and_every_prefix_are_judged_without_panicking() {
        let good = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nrest";
        for n in 0..good.len() {
            let head = parse(&good[..n]);
            assert_eq!(matches!(head, Head::Upgrade { .. }), n >= good.len() - 4, "prefix {n}");
        }
        // A cheap xorshift: the same inputs on every run.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut input = good.to_vec();
            for _ in 0..(next() % 8) {
                let at = (next() as usize) % input.len();
                match next() % 3 {
                    0 => input[at] = next() as u8,
                    1 => {
                        input.remove(at);
                    }
                    _ => input.insert(at, [b'\r', b'\n', b':', b' ', b',', 0, 0xff][(next() % 7) as usize]),
                }
            }
            if let Head::Upgrade { record, rest } = parse(&input) {
                assert!(record.len() + rest.len() <= input.len() * 2);
            }
        }
        let huge = [b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n".as_slice(), &b"X: y\r\n".repeat(MAX_HEADERS), b"\r\n"].concat();
        assert_eq!(parse(&huge), Head::Handoff, "too many headers go to Node");
    }
}
