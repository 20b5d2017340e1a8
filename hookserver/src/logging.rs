//! The default log output of a launched server.

use std::io::BufWriter;
use std::sync::{Mutex, Once};

use tracing_appender::non_blocking::WorkerGuard;

/// Keeps the log writer's thread alive; dropping it flushes what is pending.
static GUARD: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG` (default:
/// `info` for hookserver and the bot, `warn` for actix's internals), unless the program
/// installed one already.
///
/// Lines are formatted on the worker that logs them and written by a thread of their own,
/// in batches, so that a delivery never waits for stderr. Should stderr fall far behind,
/// lines are dropped rather than deliveries slowed.
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,actix_server=warn,actix_web=warn")
        });
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .thread_name("hookserver-log")
            .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
        let installed = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
            .is_ok();
        if installed {
            *GUARD
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(guard);
        }
    });
}

/// Writes out every pending log line; called as the process ends. Lines logged after this
/// are dropped.
pub(crate) fn flush() {
    let guard = GUARD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    drop(guard);
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
