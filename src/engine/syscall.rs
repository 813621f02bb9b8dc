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

/// A close-on-exec duplicate of `fd`, with TCP_NODELAY set (a no-op on
/// other sockets). It shares `fd`'s file status, O_NONBLOCK included.
pub fn dup_for_engine(fd: c_int) -> Result<c_int, i32> {
    // SAFETY: plain syscalls; `one` is valid for the call.
    unsafe {
        let dup = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0);
        if dup < 0 {
            return Err(errno());
        }
        let one: c_int = 1;
        libc::setsockopt(dup, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one as *const c_int as *const c_void, 4);
        Ok(dup)
    }
}

pub fn close(fd: c_int) {
    // SAFETY: the engine closes only the fds it duplicated, once.
    unsafe { libc::close(fd) };
}
