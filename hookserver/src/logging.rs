//! The default log output of a launched server.
//!
//! A log line per delivery must not slow deliveries down. `tracing-subscriber` formats
//! each line on the worker that logs it, into a buffer of that thread's own; nothing
//! wakes another thread and nothing calls the kernel per line. A flusher thread writes
//! every buffer to stderr ten times a second (sooner when one passes 256 KiB), so a line
//! shows within 100 ms, and a worker never waits for stderr. Should stderr stall (a full
//! disk, a pipe nobody reads), a thread's buffer stops growing at 4 MiB: later lines are
//! dropped and counted, and the count is logged once stderr flows again.
//!
//! The lines look like `tracing-subscriber`'s default (full) format. The delivery line,
//! the only one written per request, takes a fast path ([`LogFormat`]) that writes the
//! same bytes without going through `fmt` for its timestamp, level and integers.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once, OnceLock, PoisonError};
use std::time::Duration;

use std::fmt;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime as FullTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The target of the per-delivery log line.
pub(crate) const DELIVERY_TARGET: &str = "hookserver::delivery";

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

/// The event format of a launched server: `tracing-subscriber`'s full format, with the
/// per-delivery line written by a fast path giving the same bytes.
///
/// The fast path takes events of the `hookserver::delivery` target outside any span when
/// colours are off (a server's stderr is a pipe or a file); everything else goes to the
/// full format itself. It writes the timestamp with `humantime` (RFC 3339, microseconds,
/// as the full format does), integers with `itoa`, and plain strings as they are.
#[derive(Debug, Default)]
pub struct LogFormat {
    full: Format<Full, FullTime>,
}

impl<S, N> FormatEvent<S, N> for LogFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if meta.target() != DELIVERY_TARGET
            || writer.has_ansi_escapes()
            || ctx.event_scope().is_some()
        {
            return self.full.format_event(ctx, writer, event);
        }
        write!(
            writer,
            "{} ",
            humantime::format_rfc3339_micros(SystemTime::now())
        )?;
        writer.write_str(match *meta.level() {
            Level::TRACE => "TRACE ",
            Level::DEBUG => "DEBUG ",
            Level::INFO => " INFO ",
            Level::WARN => " WARN ",
            Level::ERROR => "ERROR ",
        })?;
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        let mut fields = FastFields {
            writer: &mut writer,
            first: true,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_char('\n')
    }
}

/// Writes an event's fields as the full format's default visitor does.
struct FastFields<'w, 'a> {
    writer: &'w mut Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl FastFields<'_, '_> {
    /// Starts a field: the space before it, and `name=` unless it is the message.
    fn start(&mut self, field: &Field) -> fmt::Result {
        if self.first {
            self.first = false;
        } else {
            self.writer.write_char(' ')?;
        }
        let name = field.name();
        if name != "message" {
            self.writer
                .write_str(name.strip_prefix("r#").unwrap_or(name))?;
            self.writer.write_char('=')?;
        }
        Ok(())
    }
}

/// Whether `{:?}` of `value` is `value` between double quotes.
fn quotes_as_is(value: &str) -> bool {
    value
        .bytes()
        .all(|byte| (b' '..=b'~').contains(&byte) && byte != b'"' && byte != b'\\')
}

impl Visit for FastFields<'_, '_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_ok() {
            self.result = self
                .start(field)
                .and_then(|()| self.writer.write_str(itoa::Buffer::new().format(value)));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if self.result.is_ok() {
            self.result = self
                .start(field)
                .and_then(|()| self.writer.write_str(itoa::Buffer::new().format(value)));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = self.start(field).and_then(|()| {
            if field.name() == "message" {
                // Only this crate logs on the delivery target, with constant messages.
                self.writer.write_str(value)
            } else if quotes_as_is(value) {
                self.writer.write_char('"')?;
                self.writer.write_str(value)?;
                self.writer.write_char('"')
            } else {
                write!(self.writer, "{value:?}")
            }
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.result = self
                .start(field)
                .and_then(|()| write!(self.writer, "{value:?}"));
        }
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
            .event_format(LogFormat::default())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects what a subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// Logs every kind of delivery line (and one inside a span), once through `format`.
    fn log_all<E>(format: E) -> String
    where
        E: FormatEvent<
                tracing_subscriber::Registry,
                tracing_subscriber::fmt::format::DefaultFields,
            > + Send
            + Sync
            + 'static,
    {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_writer(captured.clone())
            .with_ansi(false)
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let path = "/webhooks/a";
            for (scope, action) in [
                ("repo", "update"),
                ("-", "-"),
                ("say \"hi\"", "back\\slash"),
                ("\u{1b}[31mred", "tab\there"),
                ("ünïcödé", "日本"),
                ("", " "),
            ] {
                tracing::info!(target: DELIVERY_TARGET, path = %path, status = 200u16, latency_us = 12u64, scope, action, "delivery");
                tracing::warn!(target: DELIVERY_TARGET, path = %path, status = 403u16, latency_us = u64::MAX, scope, action, "delivery refused");
                tracing::error!(target: DELIVERY_TARGET, path = %path, status = 500u16, latency_us = 0u64, scope, action, "delivery failed");
            }
            tracing::debug!(target: DELIVERY_TARGET, r#type = "x", signed = -5i64, ok = true, "other");
            tracing::trace!(target: DELIVERY_TARGET, "trace");
            let span = tracing::info_span!("outer", id = 7);
            span.in_scope(|| tracing::info!(target: DELIVERY_TARGET, status = 200u16, "in a span"));
            tracing::info!(target: "elsewhere", status = 200u16, "not a delivery");
        });
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// Each line without its timestamp, after checking the timestamp parses.
    fn without_time(log: &str) -> Vec<String> {
        log.lines()
            .map(|line| {
                let (time, rest) = line.split_once(' ').unwrap();
                assert_eq!(time.len(), "2026-11-28T03:45:55.123456Z".len(), "{line}");
                humantime::parse_rfc3339(time).unwrap();
                rest.to_owned()
            })
            .collect()
    }

    #[test]
    fn the_fast_path_writes_what_the_full_format_writes() {
        let full = without_time(&log_all(tracing_subscriber::fmt::format()));
        let fast = without_time(&log_all(LogFormat::default()));
        assert_eq!(full.len(), 22);
        assert_eq!(fast, full);
        assert!(fast[0].starts_with(" INFO hookserver::delivery: delivery path=/webhooks/a status=200 latency_us=12 scope=\"repo\""), "{}", fast[0]);
    }
}
