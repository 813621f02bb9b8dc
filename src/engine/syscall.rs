//! The system calls the engine makes on sockets, as safe functions: the
//! only place in the engine that calls libc on an fd. (libuv is in `uv.rs`,
//! N-API in `dispatch.rs`.)

use std::ffi::{c_int, c_void};

/// The errno of the last failed call.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// Reads from `fd` into `buf`'s spare capacity, at most `max` bytes, and
/// grows its length by what was read. Returns what read(2) returned.
#[inline]
pub fn read_into(fd: c_int, buf: &mut Vec<u8>, max: usize) -> isize {
    let start = buf.len();
    let room = (buf.capacity() - start).min(max);
    // SAFETY: the kernel writes at most `room` bytes into the spare capacity
    // just past the length, and the length grows only by what it wrote.
    unsafe {
        let n = libc::read(fd, buf.as_mut_ptr().add(start) as *mut c_void, room);
        if n > 0 {
            buf.set_len(start + n as usize);
        }
        n
    }
}

/// sendmsg(2) of `iov` with MSG_NOSIGNAL. Returns what it returned.
///
/// # Safety
/// Every entry of `iov` must point at `iov_len` readable bytes.
#[inline]
pub unsafe fn send_iov(fd: c_int, iov: &mut [libc::iovec]) -> isize {
    // One buffer (the usual case): send(2) skips sendmsg's copy of the
    // header and the vector.
    if let [one] = iov {
        return libc::send(fd, one.iov_base, one.iov_len, libc::MSG_NOSIGNAL);
    }
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len() as _;
    libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL)
}

/// Shuts down the write side (sends the FIN once the queue is out).
pub fn shutdown_write(fd: c_int) {
    // SAFETY: plain syscall on an fd; errors are of no use here.
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}

/// The pending error of socket `fd` (SO_ERROR), if any.
pub fn socket_error(fd: c_int) -> Option<i32> {
    let mut err: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for the call.
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, &mut err as *mut c_int as *mut c_void, &mut len) };
    (rc == 0 && err != 0).then_some(err)
}

pub fn close(fd: c_int) {
    // SAFETY: the engine closes only the fds it owns (accepted ones), once.
    unsafe { libc::close(fd) };
}

/// A listening TCP socket on `ip:port` (non-blocking, close-on-exec,
/// SO_REUSEADDR, as Node's `listen` sets it); `::` also takes IPv4, as
/// Node's default host does. Returns the fd, or the errno and the call
/// that failed.
pub fn listen_tcp(ip: std::net::IpAddr, port: u16, backlog: i32) -> Result<c_int, (i32, &'static str)> {
    let addr = std::net::SocketAddr::new(ip, port);
    let (storage, len) = sockaddr_of(&addr);
    let family = if ip.is_ipv6() { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain syscalls on an fd this function owns; every pointer is
    // to a local valid for the call.
    unsafe {
        let fd = libc::socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err((errno(), "listen"));
        }
        let one: c_int = 1;
        let zero: c_int = 0;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one as *const c_int as *const c_void, 4);
        if ip.is_ipv6() && ip.is_unspecified() {
            libc::setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &zero as *const c_int as *const c_void, 4);
        }
        if libc::bind(fd, &storage as *const libc::sockaddr_storage as *const libc::sockaddr, len) != 0 {
            let e = errno();
            libc::close(fd);
            return Err((e, "listen"));
        }
        if libc::listen(fd, backlog) != 0 {
            let e = errno();
            libc::close(fd);
            return Err((e, "listen"));
        }
        Ok(fd)
    }
}

fn sockaddr_of(addr: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            unsafe { std::ptr::write(&mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write(&mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The address a socket is bound to.
pub fn local_addr(fd: c_int) -> Option<std::net::SocketAddr> {
    // SAFETY: an all-zero sockaddr_storage is valid; `len` tells the kernel its size.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let rc = unsafe { libc::getsockname(fd, &mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr, &mut len) };
    if rc != 0 {
        return None;
    }
    match storage.ss_family as c_int {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in.
            let a = unsafe { &*(&storage as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes());
            Some(std::net::SocketAddr::new(ip.into(), u16::from_be(a.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6.
            let a = unsafe { &*(&storage as *const libc::sockaddr_storage as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(std::net::SocketAddr::new(ip.into(), u16::from_be(a.sin6_port)))
        }
        _ => None,
    }
}

/// Takes one connection off a listening socket: non-blocking, close-on-exec,
/// TCP_NODELAY (as Node's http server sets it). Err(errno) when there is none
/// or it failed.
pub fn accept(fd: c_int) -> Result<c_int, i32> {
    // SAFETY: plain syscalls; null address pointers are allowed.
    unsafe {
        let c = libc::accept4(fd, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
        if c < 0 {
            return Err(errno());
        }
        let one: c_int = 1;
        libc::setsockopt(c, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one as *const c_int as *const c_void, 4);
        Ok(c)
    }
}

/// An fd kept open to be given up when accept() fails with EMFILE: closing
/// it makes room to accept and drop the waiting connection (as libuv does),
/// so that the listener does not spin on a connection it can't take.
pub fn reserve_fd() -> c_int {
    // SAFETY: plain syscall on a constant path.
    unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }
}

/// A new epoll instance: the engine watches its sockets there, behind one
/// libuv poll on the epoll fd.
pub fn epoll_create() -> Result<c_int, i32> {
    // SAFETY: plain syscall.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        Err(errno())
    } else {
        Ok(fd)
    }
}

/// Adds, changes or removes (`op`) `fd`'s watch in `ep`, with `data` given
/// back with its events.
pub fn epoll_ctl(ep: c_int, op: c_int, fd: c_int, events: u32, data: u64) -> Result<(), i32> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` is a valid event for the call's duration.
    if unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// The events ready in `ep` now, into `out`; how many.
pub fn epoll_ready(ep: c_int, out: &mut [libc::epoll_event]) -> usize {
    // SAFETY: the kernel writes at most `out.len()` events into `out`.
    let n = unsafe { libc::epoll_wait(ep, out.as_mut_ptr(), out.len() as c_int, 0) };
    n.max(0) as usize
}
