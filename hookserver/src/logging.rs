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
//! Lines leave in time order: each flush merges the threads' lines by their timestamps, and
//! holds back those stamped after the moment it started (a thread may still be writing one
//! stamped earlier) for the next flush. When one thread wrote all of them (one busy
//! worker), they are in order already and are written as they are. A flush gives each
//! thread that wrote lines an emptied buffer of the last flush (at most 512 KiB each), so
//! that a busy thread's buffer does not grow again from nothing.
//!
//! The lines are `tracing-subscriber`'s default (full) format. The delivery line, the only
//! one written per request, takes a fast path ([`delivery`]) that writes the same bytes.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once, OnceLock, PoisonError};
use std::time::Duration;

use std::time::SystemTime;

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

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

/// How long a line's timestamp is: `2026-11-28T03:45:55.123456Z`.
const TIME_LEN: usize = 27;

/// The timestamp a log line starts with (past a colour code), or `None` for a line that
/// continues the one before it (it does not start with a digit).
fn line_time(line: &[u8]) -> Option<&[u8]> {
    let mut rest = line;
    if rest.first() == Some(&0x1b) {
        let end = rest.iter().take(16).position(|b| *b == b'm')?;
        rest = &rest[end + 1..];
    }
    if !rest.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some(&rest[..rest.len().min(TIME_LEN)])
}

/// The length of the entry `chunk` starts with: its first line and the lines that
/// continue it (those without a timestamp of their own).
fn entry_len(chunk: &[u8]) -> usize {
    let mut end = memchr::memchr(b'\n', chunk).map_or(chunk.len(), |at| at + 1);
    while end < chunk.len() && !matches!(chunk[end], b'0'..=b'9' | 0x1b) {
        end = memchr::memchr(b'\n', &chunk[end..]).map_or(chunk.len(), |at| end + at + 1);
    }
    end
}

/// The lines of `chunks` (each in order already) merged by timestamp, stably; with a
/// `cut`, the lines stamped after it come back apart, still in order. One pass over the
/// lines: a merge, not a sort.
fn ordered(chunks: &[Vec<u8>], cut: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
    let mut rests: Vec<&[u8]> = chunks
        .iter()
        .filter(|chunk| !chunk.is_empty())
        .map(Vec::as_slice)
        .collect();
    let later_than_cut = |entry: &[u8]| match (cut, line_time(entry)) {
        (Some(cut), Some(time)) => time > cut,
        _ => false,
    };
    let mut ready = Vec::new();
    let mut later = Vec::new();
    // A merge: each time, the entry with the earliest time among the chunks' next ones.
    while !rests.is_empty() {
        let earliest = (0..rests.len())
            .min_by_key(|&i| line_time(rests[i]).unwrap_or_default())
            .unwrap_or(0);
        let rest = rests[earliest];
        let len = entry_len(rest);
        let out = if later_than_cut(rest) {
            &mut later
        } else {
            &mut ready
        };
        out.extend_from_slice(&rest[..len]);
        if len == rest.len() {
            rests.swap_remove(earliest);
        } else {
            rests[earliest] = &rest[len..];
        }
    }
    (ready, later)
}

/// The timestamp of the last line of `chunk` that has one.
fn last_time(chunk: &[u8]) -> Option<&[u8]> {
    let mut end = chunk.len();
    while end > 0 {
        let line = &chunk[..end];
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let start = memchr::memrchr(b'\n', line).map_or(0, |at| at + 1);
        if let Some(time) = line_time(&chunk[start..end]) {
            return Some(time);
        }
        end = start;
    }
    None
}

/// [`ordered`], taking the chunks: when one thread's lines are all there is (one busy
/// worker) and none is stamped after `cut`, they are in order already and come back as
/// they are, not copied.
fn take_ordered(chunks: &mut [Vec<u8>], cut: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
    let mut filled = (0..chunks.len()).filter(|&i| !chunks[i].is_empty());
    if let (Some(only), None) = (filled.next(), filled.next()) {
        let in_time = match (cut, last_time(&chunks[only])) {
            (Some(cut), Some(time)) => time <= cut,
            _ => true,
        };
        if in_time {
            return (std::mem::take(&mut chunks[only]), Vec::new());
        }
    }
    ordered(chunks, cut)
}

/// The writer `tracing-subscriber` formats into: the current thread's buffer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BatchedStderr;

/// Runs `write` on this thread's buffer (unless stderr stalled and the buffer is full:
/// then the line is dropped and counted), and wakes the flusher when the buffer is large.
fn append(write: impl FnOnce(&mut Vec<u8>)) {
    let wake = MINE.with(|buffer| {
        let mut pending = buffer.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() >= DROP_AT {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let before = pending.len();
        write(&mut pending);
        before < FLUSH_AT && pending.len() >= FLUSH_AT
    });
    if wake {
        let (flag, condvar) = &WAKE;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        condvar.notify_one();
    }
}

impl Write for BatchedStderr {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        append(|pending| pending.extend_from_slice(bytes));
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

/// Lines stamped after the last flush began, held for the next one.
static HELD: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Buffers a flush emptied, given at the next to the threads that wrote lines: a busy
/// thread's buffer then does not grow again from nothing after each flush. At most one per
/// thread, each of at most `KEEP_AT` bytes (a burst's larger ones are freed).
static SPARE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
const KEEP_AT: usize = 2 * FLUSH_AT;

/// Keeps emptied buffers in `spare` for the next flush, at most `threads` of them.
fn recycle(spare: &mut Vec<Vec<u8>>, used: impl IntoIterator<Item = Vec<u8>>, threads: usize) {
    for mut buffer in used {
        if spare.len() >= threads {
            break;
        }
        if buffer.capacity() > 0 && buffer.capacity() <= KEEP_AT {
            buffer.clear();
            spare.push(buffer);
        }
    }
}

/// Writes out every thread's pending lines, in time order (at exit: all of them).
pub(crate) fn flush() {
    flush_until(None);
}

/// Writes out, in time order, every pending line stamped up to `cut` (all when `None`),
/// holds back the later ones, and forgets the buffers of threads that ended.
fn flush_until(cut: Option<SystemTime>) {
    // Stamped before the buffers are taken: a line stamped up to `cut` is in them
    // (a delivery line is stamped while its thread holds its buffer).
    let mut cut_key = Vec::new();
    if let Some(cut) = cut {
        timestamp(&mut cut_key, cut);
    }
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    let mut chunks = vec![std::mem::take(&mut *held)];
    let mut buffers = BUFFERS.lock().unwrap_or_else(PoisonError::into_inner);
    {
        let mut spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner);
        for buffer in buffers.iter() {
            let mut pending = buffer.lock().unwrap_or_else(PoisonError::into_inner);
            // An idle thread keeps its empty buffer: spares go to the threads that write.
            if !pending.is_empty() {
                let fresh = spare.pop().unwrap_or_default();
                chunks.push(std::mem::replace(&mut *pending, fresh));
            }
        }
    }
    // A thread that ended dropped its handle: only this list holds the buffer now.
    buffers.retain(|buffer| Arc::strong_count(buffer) > 1);
    let threads = buffers.len();
    drop(buffers);
    let (ready, later) = take_ordered(&mut chunks, cut.map(|_| cut_key.as_slice()));
    *held = later;
    drop(held);
    if !ready.is_empty() {
        write_stderr(&ready);
    }
    let mut spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner);
    recycle(&mut spare, std::iter::once(ready).chain(chunks), threads);
    let dropped = DROPPED.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        write_stderr(
            format!("hookserver: {dropped} log line(s) dropped: stderr did not keep up\n")
                .as_bytes(),
        );
    }
}

/// One delivery's log line.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryLine<'a> {
    /// The request's path (never its query, where a secret may be).
    pub path: &'a str,
    /// The answer's status code.
    pub status: u16,
    /// Time from the request's arrival to the answer, in microseconds.
    pub latency_us: u64,
    /// `event.scope`, or `-`.
    pub scope: &'a str,
    /// `event.action`, or `-`.
    pub action: &'a str,
}

/// A delivery line's level: INFO for an answer below 400, WARN below 500, ERROR from 500.
fn level_of(status: u16) -> Level {
    match status {
        0..=399 => Level::INFO,
        400..=499 => Level::WARN,
        _ => Level::ERROR,
    }
}

/// Whether the line of a delivery answered `status` would be written.
pub(crate) fn delivery_enabled_for(status: u16) -> bool {
    let level = level_of(status);
    if DIRECT.load(Ordering::Relaxed) {
        return DIRECT_LEVELS.load(Ordering::Relaxed) & level_bit(level) != 0;
    }
    delivery_enabled(level)
}

impl DeliveryLine<'_> {
    fn level(&self) -> Level {
        level_of(self.status)
    }

    /// Everything before the path: the level, the target, the message and `path=`, as
    /// the full format writes them (one copy instead of five).
    fn head(&self) -> &'static [u8] {
        match self.level() {
            Level::INFO => b"  INFO hookserver::delivery: delivery path=",
            Level::WARN => b"  WARN hookserver::delivery: delivery refused path=",
            _ => b" ERROR hookserver::delivery: delivery failed path=",
        }
    }
}

/// The target of the queue's lines.
pub(crate) const INBOX_TARGET: &str = "hookserver::inbox";

/// Set once [`init`] installed hookserver's own subscriber (colours off).
static DIRECT: AtomicBool = AtomicBool::new(false);
/// With hookserver's own subscriber, whose filter never changes: which delivery levels
/// `RUST_LOG` lets through (bits: 1 INFO, 2 WARN, 4 ERROR), found once at [`init`].
static DIRECT_LEVELS: AtomicU8 = AtomicU8::new(0);
/// With hookserver's own subscriber: whether `RUST_LOG` lets the queue's INFO lines through.
static DIRECT_INBOX_INFO: AtomicBool = AtomicBool::new(false);

/// The bit of `level` in [`DIRECT_LEVELS`].
fn level_bit(level: Level) -> u8 {
    match level {
        Level::INFO => 1,
        Level::WARN => 2,
        _ => 4,
    }
}

/// Whether the current subscriber takes a delivery line of `level`.
fn delivery_enabled(level: Level) -> bool {
    match level {
        Level::INFO => tracing::enabled!(target: DELIVERY_TARGET, Level::INFO),
        Level::WARN => tracing::enabled!(target: DELIVERY_TARGET, Level::WARN),
        _ => tracing::enabled!(target: DELIVERY_TARGET, Level::ERROR),
    }
}

/// Logs a delivery's line on the target `hookserver::delivery`.
///
/// With hookserver's own subscriber and colours off (a server's stderr is a pipe or a
/// file), the line is written straight into this thread's buffer by [`format_delivery`]:
/// the same bytes as `tracing-subscriber`'s full format, at a fraction of the cost (no
/// field visitor, no `fmt` for the timestamp, the level or the integers). `RUST_LOG` still
/// decides whether it is written. With any other subscriber, it is a `tracing` event.
///
/// Returns the time the line was stamped with, when it was written directly (the caller
/// may reuse it instead of reading the clock again).
pub(crate) fn delivery(line: &DeliveryLine<'_>) -> Option<SystemTime> {
    let level = line.level();
    if DIRECT.load(Ordering::Relaxed) {
        if DIRECT_LEVELS.load(Ordering::Relaxed) & level_bit(level) == 0 {
            return None;
        }
        let mut stamped = None;
        append(|buffer| {
            // Read while this thread holds its buffer: the flusher's cut relies on it.
            let now = SystemTime::now();
            stamped = Some(now);
            format_delivery(buffer, now, line);
        });
        return stamped;
    }
    if !delivery_enabled(level) {
        return None;
    }
    let DeliveryLine {
        path,
        status,
        latency_us,
        scope,
        action,
    } = *line;
    match level {
        Level::INFO => {
            tracing::info!(target: DELIVERY_TARGET, path = %path, status, latency_us, scope, action, "delivery")
        }
        Level::WARN => {
            tracing::warn!(target: DELIVERY_TARGET, path = %path, status, latency_us, scope, action, "delivery refused")
        }
        _ => {
            tracing::error!(target: DELIVERY_TARGET, path = %path, status, latency_us, scope, action, "delivery failed")
        }
    }
    None
}

/// Writes `line` as `tracing-subscriber`'s full format (colours off) writes the event
/// `delivery` logs: `TIME  INFO hookserver::delivery: delivery path=/webhooks/x status=200
/// latency_us=12 scope="repo" action="update"`.
pub fn format_delivery(out: &mut Vec<u8>, now: SystemTime, line: &DeliveryLine<'_>) {
    // One reservation for the whole line (the fixed parts take under 120 bytes).
    out.reserve(128 + line.path.len() + line.scope.len() + line.action.len());
    timestamp(out, now);
    out.extend_from_slice(line.head());
    out.extend_from_slice(line.path.as_bytes());
    out.extend_from_slice(b" status=");
    out.extend_from_slice(itoa::Buffer::new().format(line.status).as_bytes());
    out.extend_from_slice(b" latency_us=");
    out.extend_from_slice(itoa::Buffer::new().format(line.latency_us).as_bytes());
    quoted(out, b" scope=\"", line.scope);
    quoted(out, b" action=\"", line.action);
    out.push(b'\n');
}

/// Logs a queued delivery's successful attempt on `hookserver::inbox`: written straight
/// into this thread's buffer by [`format_attempt_done`] with hookserver's own subscriber
/// (as [`delivery`] writes its line), else a `tracing` event.
pub(crate) fn attempt_done(id: u64, endpoint: &str, attempt: u32) {
    if DIRECT.load(Ordering::Relaxed) {
        if DIRECT_INBOX_INFO.load(Ordering::Relaxed) {
            append(|buffer| format_attempt_done(buffer, SystemTime::now(), id, endpoint, attempt));
        }
        return;
    }
    tracing::info!(target: INBOX_TARGET, id, endpoint = %endpoint, attempt, "delivery done");
}

/// Writes what the full format writes for [`attempt_done`]'s event:
/// `TIME  INFO hookserver::inbox: delivery done id=7 endpoint=/webhooks/x attempt=1`.
fn format_attempt_done(out: &mut Vec<u8>, now: SystemTime, id: u64, endpoint: &str, attempt: u32) {
    out.reserve(128 + endpoint.len());
    timestamp(out, now);
    out.extend_from_slice(b"  INFO ");
    out.extend_from_slice(INBOX_TARGET.as_bytes());
    out.extend_from_slice(b": delivery done id=");
    out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    out.extend_from_slice(b" endpoint=");
    out.extend_from_slice(endpoint.as_bytes());
    out.extend_from_slice(b" attempt=");
    out.extend_from_slice(itoa::Buffer::new().format(attempt).as_bytes());
    out.push(b'\n');
}

/// `now` in RFC 3339 with microseconds, as the full format writes it
/// (`2026-11-28T03:45:55.123456Z`). The part up to the second is formatted by `humantime`
/// once a second per thread, and reused.
fn timestamp(out: &mut Vec<u8>, now: SystemTime) {
    use std::io::Write as _;
    thread_local! {
        /// The last second formatted: `(seconds since the epoch, "2026-11-28T03:45:55")`.
        static SECOND: std::cell::RefCell<(u64, Vec<u8>)> = const {
            std::cell::RefCell::new((u64::MAX, Vec::new()))
        };
    }
    let Ok(since_epoch) = now.duration_since(SystemTime::UNIX_EPOCH) else {
        // A clock before 1970 (humantime would panic): what the full format writes when
        // it cannot tell the time.
        out.extend_from_slice(b"<unknown time>");
        return;
    };
    let seconds = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(cached, prefix)| {
        if *cached != seconds {
            prefix.clear();
            let whole = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
            // "2026-11-28T03:45:55Z" without its "Z"; writing into a `Vec` cannot fail.
            let _ = write!(prefix, "{}", humantime::format_rfc3339_seconds(whole));
            prefix.pop();
            *cached = seconds;
        }
        out.extend_from_slice(prefix);
    });
    // ".123456Z": the micros with their leading zeros, from 1_123_456 without its "1".
    let micros = 1_000_000 + since_epoch.subsec_micros();
    let mut fraction = *b".000000Z";
    fraction[1..7].copy_from_slice(&itoa::Buffer::new().format(micros).as_bytes()[1..]);
    out.extend_from_slice(&fraction);
}

/// `name` (as ` scope="`: it ends with the opening quote), then `value` as `{:?}` writes
/// it: escaped where needed, and its closing quote.
fn quoted(out: &mut Vec<u8>, name: &[u8], value: &str) {
    // Printable ASCII but `"` and `\` is written as it is (a scope or an action always is).
    let plain = value
        .bytes()
        .all(|byte| matches!(byte, b' ' | b'!' | b'#'..=b'[' | b']'..=b'~'));
    if plain {
        out.extend_from_slice(name);
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        use std::io::Write as _;
        out.extend_from_slice(&name[..name.len() - 1]);
        let _ = write!(out, "{value:?}");
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
        flush_until(Some(SystemTime::now()));
    }
}

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG` (default:
/// `info` for hookserver and the bot, `warn` for actix's and bore's internals), unless the program
/// installed one already. Never `ureq_proto`'s records (see below).
pub(crate) fn init() {
    static INIT: Once = Once::new();
    static FLUSHER: OnceLock<()> = OnceLock::new();
    INIT.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "info,actix_server=warn,actix_web=warn,bore_cli=warn",
            )
        });
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(BatchedStderr)
            .with_ansi(ansi)
            .finish();
        let installed = tracing::subscriber::set_global_default(subscriber).is_ok();
        if installed {
            // Libraries that log through `log` (the Hub's HTTP client) reach the same
            // output, except `ureq_proto`, whose trace dumps a request's bytes: the token
            // and the webhook's secret with them.
            let _ = tracing_log::LogTracer::builder()
                .ignore_crate("ureq_proto")
                .init();
        }
        if installed {
            let levels = [Level::INFO, Level::WARN, Level::ERROR]
                .into_iter()
                .filter(|level| delivery_enabled(*level))
                .fold(0, |bits, level| bits | level_bit(level));
            DIRECT_LEVELS.store(levels, Ordering::Relaxed);
            let inbox_info = tracing::enabled!(target: INBOX_TARGET, Level::INFO);
            DIRECT_INBOX_INFO.store(inbox_info, Ordering::Relaxed);
            DIRECT.store(!ansi, Ordering::Relaxed);
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
mod tests;
