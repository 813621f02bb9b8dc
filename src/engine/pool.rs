//! Work too heavy for the JS thread: big messages compress and inflate on a
//! small tokio pool. Each connection has at most one job of each kind out,
//! so its results come back in order; they all come back through one
//! doorbell (a uv_async handle) that the loop answers in its poll phase.

use std::sync::{Arc, Mutex, OnceLock};

use crate::core::deflate::{DeflateJob, Deflated, InflateJob, Inflated};

/// Compressed messages at least this long inflate on the pool.
pub const INFLATE_MIN: usize = 16 * 1024;
/// Messages at least this long compress on the pool.
pub const DEFLATE_MIN: usize = 32 * 1024;

pub enum Job {
    Inflate(InflateJob),
    Deflate(DeflateJob),
}

pub enum Done {
    Inflated(Inflated),
    Deflated(Deflated),
    /// The job panicked; its codec state is lost with it.
    Panicked,
}

impl Job {
    fn run(self) -> Done {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match self {
            Job::Inflate(j) => Done::Inflated(j.run()),
            Job::Deflate(j) => Done::Deflated(j.run()),
        })) {
            Ok(done) => done,
            Err(_) => Done::Panicked,
        }
    }
}

/// A pointer that may cross threads: only `uv_async_send` is called on it
/// there, which libuv allows from any thread.
struct Bell(*mut super::uv::Handle);
// SAFETY: see above; the handle is closed only after `Inbox::bell` is
// cleared under the lock every ringer takes.
unsafe impl Send for Bell {}

#[derive(Default)]
struct Inbox {
    done: Vec<(u32, Done)>,
    /// None once the doorbell is closing: results are then dropped.
    bell: Option<Bell>,
}

fn runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        // One thread fewer than the cores: the JS thread keeps one.
        let n = std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).clamp(1, 4));
        tokio::runtime::Builder::new_multi_thread().worker_threads(n).thread_name("ws-native-zlib").build().ok()
    })
    .as_ref()
}

/// The pool as one engine sees it.
pub struct Pool {
    inbox: Arc<Mutex<Inbox>>,
    bell: *mut super::uv::Handle,
    out: usize,
    /// Jobs sent in all (for tests).
    pub sent: u64,
}

impl Pool {
    /// `bell` is the engine's async handle; the pool rings it per result.
    pub fn new(bell: *mut super::uv::Handle) -> Option<Pool> {
        runtime()?;
        let inbox = Inbox { done: Vec::new(), bell: Some(Bell(bell)) };
        Some(Pool { inbox: Arc::new(Mutex::new(inbox)), bell, out: 0, sent: 0 })
    }

    /// Jobs sent and not yet taken back.
    pub fn outstanding(&self) -> usize {
        self.out
    }

    pub fn bell(&self) -> *mut super::uv::Handle {
        self.bell
    }

    /// Runs `job` for connection `id` on the pool.
    pub fn submit(&mut self, id: u32, job: Job) {
        let Some(rt) = runtime() else { return };
        self.out += 1;
        self.sent += 1;
        let inbox = Arc::clone(&self.inbox);
        rt.spawn(async move {
            let done = job.run();
            let Ok(mut inbox) = inbox.lock() else { return };
            if let Some(bell) = &inbox.bell {
                let first = inbox.done.is_empty();
                let bell = bell.0;
                inbox.done.push((id, done));
                if first {
                    if let Some(api) = super::uv::api() {
                        // SAFETY: the handle stays open while `bell` is set.
                        unsafe { api.async_send(bell) };
                    }
                }
            }
        });
    }

    /// The results that are in, in the order they finished.
    pub fn take_done(&mut self) -> Vec<(u32, Done)> {
        let done = self.inbox.lock().map(|mut i| std::mem::take(&mut i.done)).unwrap_or_default();
        self.out = self.out.saturating_sub(done.len());
        done
    }

    /// Stops results from coming in: call before closing the doorbell.
    pub fn close(&mut self) {
        if let Ok(mut i) = self.inbox.lock() {
            i.bell = None;
            i.done.clear();
        }
        self.out = 0;
    }
}
