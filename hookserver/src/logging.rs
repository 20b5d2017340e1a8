//! The default log output of a launched server.
//!
//! A log line per delivery must not slow deliveries down. `tracing-subscriber` formats
//! each line on the worker that logs it, into a buffer of that thread's own; nothing
//! wakes another thread and nothing calls the kernel per line. A flusher thread writes
//! every buffer to stderr ten times a second (and a buffer that grows past 64 KiB is
//! written at once by its own thread), so a line shows within 100 ms.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, Once, OnceLock, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How often pending lines are written out.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// A buffer this large is written out by the thread that fills it.
const FLUSH_AT: usize = 64 * 1024;

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
        MINE.with(|buffer| {
            let mut pending = buffer.lock().unwrap_or_else(PoisonError::into_inner);
            pending.extend_from_slice(bytes);
            if pending.len() >= FLUSH_AT {
                write_stderr(&std::mem::take(&mut *pending));
            }
        });
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
                    .spawn(|| loop {
                        std::thread::sleep(FLUSH_EVERY);
                        flush();
                    });
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
