//! Entering JS: one `napi_make_callback` per loop turn with the whole batch,
//! inside a handle scope, so that `process.nextTick` and microtasks run as
//! they do after a `net` socket's events. Also the environment teardown.

use std::ffi::c_void;
use std::ptr::null_mut;

use napi::sys;

use super::batch::{Batch, ARENA_ROOM};
use super::syscall;
use super::uv;
use super::Engine;

const OK: sys::napi_status = sys::Status::napi_ok;

/// # Safety
/// Call on the JS thread of `env`.
pub unsafe fn async_context(env: sys::napi_env) -> sys::napi_async_context {
    let mut resource = null_mut();
    let mut name = null_mut();
    let mut ctx = null_mut();
    sys::napi_create_object(env, &mut resource);
    sys::napi_create_string_utf8(env, c"ws-native".as_ptr(), 9, &mut name);
    sys::napi_async_init(env, resource, name, &mut ctx);
    ctx
}

/// Lets go of a JS value the engine held (a payload written from JS memory);
/// `token` is the napi reference the bindings made for it.
// `env` is an opaque handle that only N-API reads.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn release_js(env: sys::napi_env, token: usize) {
    // SAFETY: each token is a reference made by the bindings, deleted once.
    unsafe { sys::napi_delete_reference(env, token as sys::napi_ref) };
}

thread_local! {
    /// Arenas JS has let go of, ready for the next batches of this thread's
    /// environment.
    static ARENAS: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

const ARENAS_KEPT: usize = 4;
const SMALL_ARENA: usize = 16 * 1024;
const ARENA_KEEP_MAX: usize = ARENA_ROOM;

pub fn recycled_arena() -> Vec<u8> {
    ARENAS.try_with(|a| a.try_borrow_mut().ok().and_then(|mut a| a.pop())).ok().flatten().unwrap_or_default()
}

fn recycle(mut v: Vec<u8>) {
    if v.capacity() == 0 || v.capacity() > ARENA_KEEP_MAX {
        return;
    }
    v.clear();
    // A finalizer may run while the thread's locals are being torn down:
    // then the arena is simply freed.
    let _ = ARENAS.try_with(|a| {
        if let Ok(mut a) = a.try_borrow_mut() {
            if a.len() < ARENAS_KEPT {
                a.push(v);
            }
        }
    });
}

unsafe extern "C" fn free_arena(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    recycle(*Box::from_raw(hint as *mut Vec<u8>));
}

unsafe extern "C" fn free_big(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    drop(Box::from_raw(hint as *mut Vec<u8>));
}

/// Hands `v` to JS as a Buffer of its own, without copying.
///
/// # Safety
/// Call on the JS thread of `env`.
pub unsafe fn give_buffer(env: sys::napi_env, v: Vec<u8>) -> sys::napi_value {
    give_to_js(env, v, Some(free_big))
}

/// Hands `v` to JS as a Buffer without copying; `free` gets it back when
/// the Buffer is collected.
unsafe fn give_to_js(env: sys::napi_env, v: Vec<u8>, free: sys::napi_finalize) -> sys::napi_value {
    let mut out = null_mut();
    if v.is_empty() {
        sys::napi_create_buffer(env, 0, null_mut(), &mut out);
        recycle(v);
        return out;
    }
    let len = v.len();
    let boxed = Box::into_raw(Box::new(v));
    let data = (*boxed).as_mut_ptr() as *mut c_void;
    if sys::napi_create_external_buffer(env, len, data, free, boxed as *mut c_void, &mut out) != OK {
        // No external buffers in this runtime: copy instead.
        let v = Box::from_raw(boxed);
        sys::napi_create_buffer_copy(env, len, v.as_ptr() as *const c_void, null_mut(), &mut out);
        recycle(*v);
    }
    out
}

/// A Buffer of JS memory that small batches are copied into one after
/// another, so that a batch costs JS two views (its tape and its arena), not
/// two ArrayBuffers of their own (an allocation each, zeroed and counted as
/// external memory: 2.5-3 us a batch, where two views cost 0.1). Bytes
/// copied in are never written again: the payloads JS keeps are views of
/// them. A new pool is made when the batch does not fit; the old one lives
/// while JS holds a view of it, as Node's own Buffer pool does.
pub struct JsPool {
    buf: sys::napi_ref,
    data: *mut u8,
    cap: usize,
    used: usize,
}

impl Default for JsPool {
    fn default() -> Self {
        JsPool { buf: null_mut(), data: null_mut(), cap: 0, used: 0 }
    }
}

/// A pool's size, Node's own Buffer pool's: a message the application
/// keeps keeps at most this much alive beside it (or its batch, when that
/// was bigger and got a pool of its own size).
const POOL_BYTES: usize = 8 * 1024;

impl JsPool {
    /// Room for `need` bytes: a Buffer, where in it the room starts (8-byte
    /// aligned) and a pointer to it; with `alone`, a Buffer of its own.
    /// None when JS memory could not be had.
    ///
    /// # Safety
    /// Call on the JS thread of `env`, inside a handle scope.
    unsafe fn reserve(&mut self, env: sys::napi_env, need: usize, alone: bool) -> Option<(sys::napi_value, usize, *mut u8)> {
        let at = (self.used + 7) & !7;
        let mut buf = null_mut();
        if alone || self.buf.is_null() || at + need > self.cap {
            let size = if alone { need } else { need.max(POOL_BYTES) };
            let mut data = null_mut();
            if sys::napi_create_buffer(env, size, &mut data, &mut buf) != OK || (data.is_null() && size > 0) {
                return None;
            }
            if !alone {
                if !self.buf.is_null() {
                    sys::napi_delete_reference(env, self.buf);
                }
                sys::napi_create_reference(env, buf, 1, &mut self.buf);
                (self.data, self.cap, self.used) = (data as *mut u8, size, need);
            }
            return Some((buf, 0, data as *mut u8));
        }
        sys::napi_get_reference_value(env, self.buf, &mut buf);
        self.used = at + need;
        Some((buf, at, self.data.add(at)))
    }
}

/// `(pool: Buffer, at, words, arenaLength, arena: Buffer | undefined,
/// bigs: Buffer[] | undefined, clean: boolean, pending: Buffer | undefined)`:
/// the tape is `words` u32 at `at` in `pool`, and the arena follows it
/// there, `arenaLength` bytes, then the pending bytes (`Batch::pending`);
/// an arena or pending bytes too big to copy move to JS as `arena` or
/// `pending` instead (then `arenaLength` is 0, or no pending bytes follow).
/// The big payloads move to JS too. `clean`: no connection waits for the
/// kernel to take a write (`Batch::blocked`).
///
/// The pending bytes (messages inflated while the arena was parsed) stay
/// apart from the arena: appending them to it cost a copy of each, and of
/// the arena whenever that outgrew its room.
///
/// A batch that hands JS memory of the engine's own (a big arena, big
/// payloads) gets a Buffer of its own for its tape: V8 starts a young
/// collection for memory outside its heap only when it allocates an
/// ArrayBuffer itself, so without one the payloads JS let go of would
/// wait for full collections (a 1 MiB echo made 103 of them in 3 s, and
/// lost a third of its throughput).
/// # Safety
/// Call on the JS thread of `env`.
unsafe fn batch_args(env: sys::napi_env, pool: &mut JsPool, batch: &mut Batch) -> [sys::napi_value; 8] {
    let words = batch.tape.len();
    let tape_bytes = words * 4;
    // A small arena is cheaper to copy than to hand over with a finalizer.
    let arena_small = batch.arena.len() < SMALL_ARENA;
    let copied = if arena_small { batch.arena.len() } else { 0 };
    let pending_small = copied + batch.pending.len() < SMALL_ARENA;
    let pending = if pending_small { batch.pending.len() } else { 0 };
    let mut undefined = null_mut();
    sys::napi_get_undefined(env, &mut undefined);
    let alone = !arena_small || !pending_small || !batch.bigs.is_empty();
    let (buf, at) = match pool.reserve(env, tape_bytes + copied + pending, alone) {
        Some((buf, at, dst)) => {
            std::ptr::copy_nonoverlapping(batch.tape.as_ptr() as *const u8, dst, tape_bytes);
            std::ptr::copy_nonoverlapping(batch.arena.as_ptr(), dst.add(tape_bytes), copied);
            std::ptr::copy_nonoverlapping(batch.pending.as_ptr(), dst.add(tape_bytes + copied), pending);
            (buf, at)
        }
        None => (undefined, 0),
    };
    let arena = if arena_small { undefined } else { hand_over(env, &mut batch.arena) };
    let pending = if pending_small { undefined } else { hand_over(env, &mut batch.pending) };
    let mut bigs = undefined;
    if !batch.bigs.is_empty() {
        sys::napi_create_array_with_length(env, batch.bigs.len(), &mut bigs);
        for (i, b) in batch.bigs.drain(..).enumerate() {
            sys::napi_set_element(env, bigs, i as u32, give_to_js(env, b, Some(free_big)));
        }
    }
    let num = |n: usize| {
        let mut v = null_mut();
        sys::napi_create_uint32(env, u32::try_from(n).unwrap_or(u32::MAX), &mut v);
        v
    };
    let mut clean = null_mut();
    sys::napi_get_boolean(env, batch.blocked == 0, &mut clean);
    [buf, num(at), num(words), num(copied), arena, bigs, clean, pending]
}

/// Rounds of delivery in one check phase; what is left waits for the next turn.
const ROUNDS: usize = 16;
/// Exceptions reported in one delivery before the rest waits for the next turn.
const MAX_THROWS: usize = 10_000;

/// Delivers the pending batch (the check handle's callback). Records made
/// while a batch is handled (the send callbacks of the writes it flushed,
/// closes, finishes) are delivered in the same check phase, as Node runs a
/// write's callback in the turn its data reached the kernel.
///
/// # Safety
/// `eng` is a live engine, on its JS thread.
pub unsafe fn dispatch(eng: *mut Engine) {
    if (*eng).torn_down || (*eng).dispatching {
        return;
    }
    // Frames held behind a compression go out now.
    (*eng).flush_dirty();
    for _ in 0..ROUNDS {
        if (*eng).batch.is_empty() || (*eng).torn_down {
            break;
        }
        deliver(eng);
    }
    if (*eng).batch.is_empty() {
        // Partial frames were read but nothing is complete yet.
        (*eng).batch.arena.clear();
        if (*eng).dirty.is_empty() {
            stop_idle(&mut *eng);
        }
    }
}

unsafe fn deliver(eng: *mut Engine) {
    let env = (*eng).env;
    let mut scope = null_mut();
    if sys::napi_open_handle_scope(env, &mut scope) != OK {
        return;
    }
    let args = batch_args(env, &mut (*eng).js_pool, &mut (*eng).batch);
    (*eng).batch.clear();
    (*eng).dispatching = true;
    let mut cb = null_mut();
    let mut recv = null_mut();
    sys::napi_get_reference_value(env, (*eng).callback, &mut cb);
    sys::napi_get_global(env, &mut recv);
    // A listener that throws is reported like one on a `net` socket would be
    // ('uncaughtException'); then JS is called again without arguments to go
    // on with the rest of the batch. The throw may also come from a
    // nextTick or a microtask run after the batch; JS then has nothing left
    // and the call only lets Node run the remaining ticks.
    let mut argc = args.len();
    for _ in 0..MAX_THROWS {
        let mut result = null_mut();
        let st = sys::napi_make_callback(env, (*eng).async_ctx, recv, cb, argc, args.as_ptr(), &mut result);
        if st != sys::Status::napi_pending_exception {
            break;
        }
        let mut exc = null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut exc);
        if sys::napi_fatal_exception(env, exc) != OK {
            break;
        }
        argc = 0;
    }
    (*eng).dispatching = false;
    (*eng).flush_dirty();
    sys::napi_close_handle_scope(env, scope);
}

/// Hands a batch's big arena (or its pending bytes) to JS without copying,
/// and puts a recycled one in its place.
///
/// # Safety
/// Call on the JS thread of `env`.
unsafe fn hand_over(env: sys::napi_env, v: &mut Vec<u8>) -> sys::napi_value {
    // The next turn likely makes as much: room for twice that up front (at
    // most a turn's share), not a chain of reallocations, each a copy of
    // what was there so far.
    let want = (v.len() * 2).min(ARENA_ROOM);
    let next = recycled_arena();
    let next = if next.capacity() < want { Vec::with_capacity(want) } else { next };
    let mut given = std::mem::replace(v, next);
    // JS holds it until a collection, and V8 counts only its length: the
    // room it did not use goes back now (a shrink in place).
    if given.capacity() > given.len() + given.len() / 2 {
        given.shrink_to_fit();
    }
    give_to_js(env, given, Some(free_arena))
}

/// Tells JS that connection `id`'s handle has closed (libuv's close phase).
///
/// # Safety
/// `eng` is a live engine, on its JS thread.
pub unsafe fn notify_closed(eng: *mut Engine, id: u32) {
    let env = (*eng).env;
    let mut scope = null_mut();
    if sys::napi_open_handle_scope(env, &mut scope) != OK {
        return;
    }
    let (mut cb, mut recv, mut arg) = (null_mut(), null_mut(), null_mut());
    sys::napi_get_reference_value(env, (*eng).closed_callback, &mut cb);
    sys::napi_get_global(env, &mut recv);
    sys::napi_create_uint32(env, id, &mut arg);
    let mut result = null_mut();
    if sys::napi_make_callback(env, (*eng).async_ctx, recv, cb, 1, &arg, &mut result) == sys::Status::napi_pending_exception {
        let mut exc = null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut exc);
        sys::napi_fatal_exception(env, exc);
    }
    sys::napi_close_handle_scope(env, scope);
}

fn stop_idle(eng: &mut Engine) {
    if eng.idle_on {
        eng.idle_on = false;
        unsafe { eng.api.idle_stop(eng.idle) };
    }
}

/// libuv's close callback for the engine's own handles.
///
/// # Safety
/// Called by libuv with a handle whose data is its engine.
pub unsafe extern "C" fn on_engine_handle_closed(h: *mut uv::Handle) {
    let Some(api) = uv::api() else { return };
    let eng = api.data(h) as *mut Engine;
    uv::free_handle(h);
    handle_closed(eng);
}

/// Called by every close callback; the last one after teardown frees the engine.
///
/// # Safety
/// `eng` is a live engine with a handle that just closed.
pub unsafe fn handle_closed(eng: *mut Engine) {
    (*eng).closing -= 1;
    if (*eng).torn_down && (*eng).closing == 0 {
        let e = Box::from_raw(eng);
        sys::napi_remove_async_cleanup_hook(e.cleanup);
        drop(e);
    }
}

/// The environment is going away (process exit or worker end): close every
/// socket and handle; libuv's callbacks finish the job.
///
/// # Safety
/// `eng` is a live engine, on its JS thread.
pub unsafe fn teardown(eng: *mut Engine) {
    let e = &mut *eng;
    e.torn_down = true;
    stop_idle(e);
    let ids: Vec<u32> = e.conns.keys().copied().collect();
    for id in ids {
        e.destroy(id);
    }
    let listeners: Vec<u32> = e.listeners.keys().copied().collect();
    for id in listeners {
        e.close_listener(id);
    }
    e.batch.clear();
    e.batch.jobs.clear();
    if let Some(pool) = e.pool.as_mut() {
        pool.close();
        e.closing += 1;
        e.api.close(pool.bell(), on_engine_handle_closed);
    }
    for h in [e.check, e.idle] {
        e.closing += 1;
        e.api.close(h, on_engine_handle_closed);
    }
    if !e.ep_poll.is_null() {
        // uv_close stops the poll at once: the epoll fd can go now.
        e.closing += 1;
        e.api.close(e.ep_poll, on_engine_handle_closed);
        syscall::close(e.epfd);
    }
}
