//! The few libuv calls the engine needs. Node exports libuv's symbols to
//! addons; they are looked up at run time (dlsym) so that the crate also
//! links into plain `cargo test` binaries, where no Node is around.

use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

pub type Loop = napi::sys::uv_loop_s;
/// Any libuv handle; only ever used behind a pointer.
pub type Handle = c_void;

pub const READABLE: c_int = 1;
pub const WRITABLE: c_int = 2;

// uv_handle_type values from uv.h.
const UV_ASYNC: c_int = 1;
const UV_CHECK: c_int = 2;
const UV_IDLE: c_int = 6;
const UV_POLL: c_int = 8;

pub type PollCb = unsafe extern "C" fn(*mut Handle, c_int, c_int);
pub type HandleCb = unsafe extern "C" fn(*mut Handle);

#[allow(clippy::type_complexity)]
pub struct Api {
    handle_size: unsafe extern "C" fn(c_int) -> usize,
    poll_init: unsafe extern "C" fn(*mut Loop, *mut Handle, c_int) -> c_int,
    poll_start: unsafe extern "C" fn(*mut Handle, c_int, PollCb) -> c_int,
    poll_stop: unsafe extern "C" fn(*mut Handle) -> c_int,
    check_init: unsafe extern "C" fn(*mut Loop, *mut Handle) -> c_int,
    check_start: unsafe extern "C" fn(*mut Handle, HandleCb) -> c_int,
    idle_init: unsafe extern "C" fn(*mut Loop, *mut Handle) -> c_int,
    idle_start: unsafe extern "C" fn(*mut Handle, HandleCb) -> c_int,
    idle_stop: unsafe extern "C" fn(*mut Handle) -> c_int,
    async_init: unsafe extern "C" fn(*mut Loop, *mut Handle, HandleCb) -> c_int,
    async_send: unsafe extern "C" fn(*mut Handle) -> c_int,
    close: unsafe extern "C" fn(*mut Handle, Option<HandleCb>),
    ref_: unsafe extern "C" fn(*mut Handle),
    unref: unsafe extern "C" fn(*mut Handle),
    set_data: unsafe extern "C" fn(*mut Handle, *mut c_void),
    get_data: unsafe extern "C" fn(*const Handle) -> *mut c_void,
}

unsafe fn sym<T: Copy>(name: &CStr) -> Option<T> {
    let p = libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
    if p.is_null() {
        None
    } else {
        Some(std::mem::transmute_copy::<*mut c_void, T>(&p))
    }
}

fn load() -> Option<Api> {
    unsafe {
        Some(Api {
            handle_size: sym(c"uv_handle_size")?,
            poll_init: sym(c"uv_poll_init")?,
            poll_start: sym(c"uv_poll_start")?,
            poll_stop: sym(c"uv_poll_stop")?,
            check_init: sym(c"uv_check_init")?,
            check_start: sym(c"uv_check_start")?,
            idle_init: sym(c"uv_idle_init")?,
            idle_start: sym(c"uv_idle_start")?,
            idle_stop: sym(c"uv_idle_stop")?,
            async_init: sym(c"uv_async_init")?,
            async_send: sym(c"uv_async_send")?,
            close: sym(c"uv_close")?,
            ref_: sym(c"uv_ref")?,
            unref: sym(c"uv_unref")?,
            set_data: sym(c"uv_handle_set_data")?,
            get_data: sym(c"uv_handle_get_data")?,
        })
    }
}

/// libuv's functions, or None when the process does not export them.
pub fn api() -> Option<&'static Api> {
    static API: OnceLock<Option<Api>> = OnceLock::new();
    API.get_or_init(load).as_ref()
}

/// Handle memory, sized by `uv_handle_size`. It must not move or be freed
/// before libuv's close callback for the handle has run.
unsafe fn alloc_handle(api: &Api, kind: c_int) -> *mut Handle {
    let size = (api.handle_size)(kind).max(8);
    libc::calloc(1, size) as *mut Handle
}

/// Frees memory of a handle whose close callback has run.
///
/// # Safety
/// `h` came from `alloc_handle` and libuv no longer knows it.
pub unsafe fn free_handle(h: *mut Handle) {
    libc::free(h.cast());
}

/// A close callback that only frees the handle (one with nothing to tell).
///
/// # Safety
/// Called by libuv with a handle from `alloc_handle`.
pub unsafe extern "C" fn free_handle_cb(h: *mut Handle) {
    free_handle(h);
}

impl Api {
    /// # Safety
    /// Call on the thread of the loop `lp`; `fd` stays open until the handle is closed.
    pub unsafe fn new_poll(&self, lp: *mut Loop, fd: c_int, data: *mut c_void) -> Result<*mut Handle, c_int> {
        let h = alloc_handle(self, UV_POLL);
        if h.is_null() {
            return Err(-libc::ENOMEM);
        }
        let rc = (self.poll_init)(lp, h, fd);
        if rc != 0 {
            free_handle(h);
            return Err(rc);
        }
        (self.set_data)(h, data);
        Ok(h)
    }

    /// # Safety
    /// Call on the thread of the loop `lp`.
    pub unsafe fn new_check(&self, lp: *mut Loop, data: *mut c_void, cb: HandleCb) -> *mut Handle {
        let h = alloc_handle(self, UV_CHECK);
        (self.check_init)(lp, h);
        (self.set_data)(h, data);
        (self.check_start)(h, cb);
        (self.unref)(h);
        h
    }

    /// Calls `cb` in the loop's close phase (with `data` as the handle's
    /// data; `cb` frees the handle with `free_handle`): the point in a loop
    /// turn where a socket's close callback runs.
    ///
    /// # Safety
    /// Call on the thread of the loop `lp`.
    pub unsafe fn in_close_phase(&self, lp: *mut Loop, data: *mut c_void, cb: HandleCb) -> bool {
        let h = alloc_handle(self, UV_CHECK);
        if h.is_null() {
            return false;
        }
        (self.check_init)(lp, h);
        (self.set_data)(h, data);
        (self.close)(h, Some(cb));
        true
    }

    /// # Safety
    /// Call on the thread of the loop `lp`.
    pub unsafe fn new_idle(&self, lp: *mut Loop, data: *mut c_void) -> *mut Handle {
        let h = alloc_handle(self, UV_IDLE);
        (self.idle_init)(lp, h);
        (self.set_data)(h, data);
        h
    }

    /// An async handle (a doorbell other threads ring), not keeping the
    /// loop alive until `set_ref(true)`.
    ///
    /// # Safety
    /// Call on the thread of the loop `lp`.
    pub unsafe fn new_async(&self, lp: *mut Loop, data: *mut c_void, cb: HandleCb) -> Result<*mut Handle, c_int> {
        let h = alloc_handle(self, UV_ASYNC);
        if h.is_null() {
            return Err(-libc::ENOMEM);
        }
        let rc = (self.async_init)(lp, h, cb);
        if rc != 0 {
            free_handle(h);
            return Err(rc);
        }
        (self.set_data)(h, data);
        (self.unref)(h);
        Ok(h)
    }

    /// Wakes the loop of an async handle; callable from any thread.
    ///
    /// # Safety
    /// `h` is an async handle this `Api` made that is not closed yet.
    pub unsafe fn async_send(&self, h: *mut Handle) {
        (self.async_send)(h);
    }

    /// Whether the handle keeps its loop alive.
    ///
    /// # Safety
    /// Call on the loop's thread with a handle this `Api` made that is not closed yet.
    pub unsafe fn set_ref(&self, h: *mut Handle, on: bool) {
        if on {
            (self.ref_)(h)
        } else {
            (self.unref)(h)
        }
    }

    /// # Safety
    /// Call on the loop's thread with a handle this `Api` made that is not closed yet.
    pub unsafe fn poll_start(&self, h: *mut Handle, events: c_int, cb: PollCb) -> c_int {
        (self.poll_start)(h, events, cb)
    }

    /// # Safety
    /// Call on the loop's thread with a handle this `Api` made that is not closed yet.
    pub unsafe fn poll_stop(&self, h: *mut Handle) {
        (self.poll_stop)(h);
    }

    /// # Safety
    /// Call on the loop's thread with a handle this `Api` made that is not closed yet.
    pub unsafe fn idle_start(&self, h: *mut Handle, cb: HandleCb) {
        (self.idle_start)(h, cb);
    }

    /// # Safety
    /// Call on the loop's thread with a handle this `Api` made that is not closed yet.
    pub unsafe fn idle_stop(&self, h: *mut Handle) {
        (self.idle_stop)(h);
    }

    /// # Safety
    /// Call on the loop's thread with a handle this `Api` made that is not closed yet.
    pub unsafe fn close(&self, h: *mut Handle, cb: HandleCb) {
        (self.close)(h, Some(cb));
    }

    /// # Safety
    /// Call on the loop's thread with a handle this `Api` made.
    pub unsafe fn set_handle_data(&self, h: *mut Handle, data: *mut c_void) {
        (self.set_data)(h, data);
    }

    /// # Safety
    /// Call on the loop's thread with a handle this `Api` made that is not closed yet.
    pub unsafe fn data(&self, h: *const Handle) -> *mut c_void {
        (self.get_data)(h)
    }
}
