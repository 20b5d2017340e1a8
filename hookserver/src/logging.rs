//! The default log output of a launched server.
//!
//! A log line per delivery must not slow deliveries down. `tracing-subscriber` formats
//! each line on the worker that logs it, into a buffer of that thread's own; nothing
//! wakes another thread and nothing calls the kernel per line. A flusher thread writes
//! every buffer to stderr ten times a second (sooner when one passes 256 KiB), so a line
//! shows within 100 ms, and a worker never waits for stderr. Should stderr stall (a full
//! disk, a pipe nobody reads), a thread's buffer stops growing at 4 MiB: later lines are
//! dropped and counted, and the count is logged once stderr flows again.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once, OnceLock, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How often pending lines are written out.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// A buffer this large wakes the flusher early.
const FLUSH_AT: usize = 256 * 1024;
/// A buffer this large takes no more lines until flushed.
const DROP_AT: usize = 4 * 1024 * 1024;

/// Lines dropped because stderr did not keep up.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Wakes the flusher before its next tick.
static WAKE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// One thread's pending log lines.
type Buffer = Arc<Mutex<Vec<u8>>>;

/// Every thread's buffer, for the flusher.
static BUFFERS: Mutex<Vec<Buffer>> = Mutex::new(Vec::new());

thread_local! {
    static MINE: Buffer = {
        let buffer = Buffer::default();
        BUFFERS.lock().unwrap_or_else(PoisonError::into_inner).push(buffer.clone());
        buffer
    };
}

/// Writes `bytes` to stderr, ignoring failures (a log line is not worth a panic).
fn write_stderr(bytes: &[u8]) {
    let _ = io::stderr().lock().write_all(bytes);
}

/// Writes out and empties `buffer`.
fn drain(buffer: &Mutex<Vec<u8>>) {
    let pending = std::mem::take(&mut *buffer.lock().unwrap_or_else(PoisonError::into_inner));
    if !pending.is_empty() {
        write_stderr(&pending);
    }
}

/// The writer `tracing-subscriber` formats into: the current thread's buffer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BatchedStderr;

impl Write for BatchedStderr {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let wake = MINE.with(|buffer| {
            let mut pending = buffer.lock().unwrap_or_else(PoisonError::into_inner);
            if pending.len() + bytes.len() > DROP_AT {
                DROPPED.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            let before = pending.len();
            pending.extend_from_slice(bytes);
            before < FLUSH_AT && pending.len() >= FLUSH_AT
        });
        if wake {
            let (flag, condvar) = &WAKE;
            *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
            condvar.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = BatchedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Writes out every thread's pending lines, and forgets the buffers of threads that ended.
pub(crate) fn flush() {
    let mut buffers = BUFFERS.lock().unwrap_or_else(PoisonError::into_inner);
    for buffer in buffers.iter() {
        drain(buffer);
    }
    // A thread that ended dropped its handle: only this list holds the buffer now.
    buffers.retain(|buffer| Arc::strong_count(buffer) > 1);
    drop(buffers);
    let dropped = DROPPED.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        write_stderr(
            format!("hookserver: {dropped} log line(s) dropped: stderr did not keep up\n")
                .as_bytes(),
        );
    }
}

/// Flushes every tick, or sooner when a buffer fills up.
fn flusher() {
    let (flag, condvar) = &WAKE;
    loop {
        let woken = flag.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut woken, _) = condvar
            .wait_timeout_while(woken, FLUSH_EVERY, |woken| !*woken)
            .unwrap_or_else(PoisonError::into_inner);
        *woken = false;
        drop(woken);
        flush();
    }
}

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG` (default:
/// `info` for hookserver and the bot, `warn` for actix's internals), unless the program
/// installed one already.
pub(crate) fn init() {
    static INIT: Once = Once::new();
    static FLUSHER: OnceLock<()> = OnceLock::new();
    INIT.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,actix_server=warn,actix_web=warn")
        });
        let installed = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(BatchedStderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
            .is_ok();
        if installed {
            FLUSHER.get_or_init(|| {
                let _ = std::thread::Builder::new()
                    .name("hookserver-log".to_owned())
                    .spawn(flusher);
            });
        }
    });
}

/// Prints a line on standard output; a closed or full stdout is no reason to fail.
pub(crate) fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Prints a line on standard error, never failing.
pub(crate) fn say_err(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
