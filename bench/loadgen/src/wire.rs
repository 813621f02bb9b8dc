//! A minimal WebSocket client codec, written for the load generator alone:
//! handshake, masked frames out, unmasked frames in, and the client side of
//! permessage-deflate with context takeover.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::rustls;

/// The connection under the codec: plain TCP, or TLS over it (`--tls`).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

static TLS: OnceLock<tokio_rustls::TlsConnector> = OnceLock::new();

/// From now on, connections speak TLS (wss://). The bench servers use a
/// self-signed test certificate, so it is not verified.
pub fn use_tls() {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let _ = TLS.set(tokio_rustls::TlsConnector::from(Arc::new(config)));
}

#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        msg: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(msg, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        msg: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(msg, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub struct Client {
    pub stream: Box<dyn Io>,
    pub rbuf: Vec<u8>,
    pub deflate: Option<Deflate>,
    mask_state: u32,
    /// Uncompressed frames are not buffered: (opcode, length, bytes still to skip).
    skipping: Option<(u8, usize, usize)>,
}

pub struct Deflate {
    z: Compress,
    inf: Decompress,
    scratch: Vec<u8>,
    /// The server asked for a fresh compressor per message (Bun.serve does).
    client_no_context: bool,
    server_no_context: bool,
}

/// A TCP connection to `addr`. To an IPv4 loopback address, connections
/// come from 127.0.0.2 to 127.0.0.251 in turn: from one source address, the
/// kernel's search for a free port among those still in TIME_WAIT becomes
/// the load generator's main cost when connections open and close at a high
/// rate (which end holds TIME_WAIT depends on which one closes first, so
/// the cost differed from one server to the next).
async fn open(addr: &str) -> io::Result<TcpStream> {
    static NEXT: AtomicU8 = AtomicU8::new(0);
    let target = match addr.parse::<SocketAddr>() {
        Ok(SocketAddr::V4(v4)) if v4.ip().is_loopback() => v4,
        _ => return TcpStream::connect(addr).await,
    };
    let socket = TcpSocket::new_v4()?;
    // The port is chosen at connect(), for the whole 4-tuple, not at bind().
    let one: libc::c_int = 1;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    unsafe { libc::setsockopt(socket.as_raw_fd(), libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, (&one as *const libc::c_int).cast(), len) };
    socket.bind(SocketAddr::from(([127, 0, 0, 2 + NEXT.fetch_add(1, Relaxed) % 250], 0)))?;
    socket.connect(target.into()).await
}

/// Opens a connection and performs the opening handshake on `path`.
pub async fn connect(addr: &str, path: &str, deflate: bool) -> io::Result<Client> {
    let tcp = open(addr).await?;
    tcp.set_nodelay(true)?;
    let mut stream: Box<dyn Io> = match TLS.get() {
        Some(tls) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("server name");
            Box::new(tls.connect(name, tcp).await?)
        }
        None => Box::new(tcp),
    };
    let ext = if deflate { "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" } else { "" };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    let mut rbuf = Vec::with_capacity(64 * 1024);
    let end = loop {
        if let Some(i) = find(&rbuf, b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed during handshake"));
        }
        rbuf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&rbuf[..end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 101") {
        return Err(io::Error::other(format!("handshake refused: {}", head.lines().next().unwrap_or(""))));
    }
    let negotiated = head.contains("permessage-deflate");
    rbuf.drain(..end);
    Ok(Client {
        stream,
        rbuf,
        deflate: (deflate && negotiated).then(|| Deflate {
            z: Compress::new_with_window_bits(Compression::new(6), false, 15),
            inf: Decompress::new_with_window_bits(false, 15),
            scratch: Vec::new(),
            client_no_context: head.contains("client_no_context_takeover"),
            server_no_context: head.contains("server_no_context_takeover"),
        }),
        mask_state: 0x9e37_79b9,
        skipping: None,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Client {
    fn next_mask(&mut self) -> [u8; 4] {
        // xorshift: a fresh non-zero key per frame, as browsers send.
        let mut x = self.mask_state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.mask_state = x;
        (x | 1).to_be_bytes()
    }

    /// Appends a masked frame for `payload` to `out`, compressing it when
    /// permessage-deflate was negotiated.
    pub fn encode(&mut self, out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
        let mask = self.next_mask();
        let (rsv1, body): (bool, &[u8]) = match self.deflate.as_mut() {
            Some(d) if opcode < 8 => {
                d.scratch.clear();
                d.scratch.reserve(payload.len() / 2 + 64);
                let mut input = payload;
                loop {
                    if d.scratch.capacity() - d.scratch.len() < 64 {
                        d.scratch.reserve(4096);
                    }
                    let before = d.z.total_in();
                    d.z.compress_vec(input, &mut d.scratch, FlushCompress::Sync).expect("deflate");
                    input = &input[(d.z.total_in() - before) as usize..];
                    if input.is_empty() && d.scratch.len() < d.scratch.capacity() {
                        break;
                    }
                }
                let n = d.scratch.len().saturating_sub(4);
                d.scratch.truncate(n);
                if d.client_no_context {
                    d.z.reset();
                }
                (true, &d.scratch[..])
            }
            _ => (false, payload),
        };
        header(out, opcode, rsv1, body.len(), Some(mask));
        let start = out.len();
        out.extend_from_slice(body);
        for (i, b) in out[start..].iter_mut().enumerate() {
            *b ^= mask[i & 3];
        }
    }

    /// Reads until at least one frame is buffered; returns false on EOF.
    pub async fn fill(&mut self) -> io::Result<bool> {
        if self.rbuf.capacity() - self.rbuf.len() < 16 * 1024 {
            self.rbuf.reserve(64 * 1024);
        }
        let n = self.stream.read_buf(&mut self.rbuf).await?;
        Ok(n > 0)
    }

    /// Takes complete frames off the read buffer; returns (opcode, payload
    /// length after inflating) of each.
    pub fn frames(&mut self, seen: &mut Vec<(u8, usize)>) {
        let mut pos = 0;
        loop {
            if let Some((op, len, rest)) = self.skipping {
                let take = rest.min(self.rbuf.len() - pos);
                pos += take;
                if take < rest {
                    self.skipping = Some((op, len, rest - take));
                    break;
                }
                self.skipping = None;
                seen.push((op, len));
            }
            let b = &self.rbuf[pos..];
            if b.len() < 2 {
                break;
            }
            let (len, hl) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
                127 if b.len() >= 10 => {
                    let mut x = [0u8; 8];
                    x.copy_from_slice(&b[2..10]);
                    (u64::from_be_bytes(x) as usize, 10)
                }
                126 | 127 => break,
                n => (n as usize, 2),
            };
            let opcode = b[0] & 0x0f;
            let compressed = b[0] & 0x40 != 0;
            if !compressed && b.len() < hl + len {
                // Count it once its payload has gone by, without keeping it.
                self.skipping = Some((opcode, len, len));
                pos += hl;
                continue;
            }
            if b.len() < hl + len {
                break;
            }
            let mut size = len;
            if compressed {
                if let Some(d) = self.deflate.as_mut() {
                    size = inflate(d, &self.rbuf[pos + hl..pos + hl + len]);
                }
            }
            seen.push((opcode, size));
            pos += hl + len;
        }
        self.rbuf.drain(..pos);
    }

    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }
}

fn inflate(d: &mut Deflate, body: &[u8]) -> usize {
    let mut out = Vec::with_capacity(body.len() * 4 + 64);
    let before = d.inf.total_out();
    for input in [body, &[0, 0, 0xff, 0xff][..]] {
        let mut input = input;
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(out.capacity().max(4096));
            }
            let in0 = d.inf.total_in();
            if d.inf.decompress_vec(input, &mut out, FlushDecompress::Sync).is_err() {
                return 0;
            }
            input = &input[(d.inf.total_in() - in0) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
    }
    let n = (d.inf.total_out() - before) as usize;
    if d.server_no_context {
        d.inf.reset(false);
    }
    n
}

pub fn header(out: &mut Vec<u8>, opcode: u8, rsv1: bool, len: usize, mask: Option<[u8; 4]>) {
    out.push(0x80 | if rsv1 { 0x40 } else { 0 } | opcode);
    let m = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(m | len as u8);
    } else if len < 65536 {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(k) = mask {
        out.extend_from_slice(&k);
    }
}
