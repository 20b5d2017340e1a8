//! The default log output of a launched server.

use std::sync::Once;

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG`
/// (default: `info` for hookserver and the bot, `warn` for actix's internals), unless the
/// program installed one already.
pub(crate) fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,actix_server=warn,actix_web=warn")
        });
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init();
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
