//! What `main!()` and `#[hookserver::launch]` call.

use std::future::Future;
use std::process::ExitCode;

use crate::error::Error;

/// The body of the `fn main` that `main!()` generates.
pub fn main_launch() -> ExitCode {
    // `launch()` writes out the last log lines before it returns.
    match crate::launch() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            crate::logging::say_err(&format!("error: {err}"));
            ExitCode::FAILURE
        }
    }
}

/// What a `main` marked `#[hookserver::launch]` may return.
#[diagnostic::on_unimplemented(
    message = "`#[hookserver::launch]` needs `fn main` to return `()` or `Result<(), E>` where `E: From<hookserver::Error>`",
    label = "this return type"
)]
pub trait MainOutput {
    /// Whether the body succeeded, so that serving should follow.
    fn succeeded(&self) -> bool;
    /// The value `main` returns when serving fails.
    fn from_error(err: Error) -> Self;
}

impl MainOutput for () {
    fn succeeded(&self) -> bool {
        true
    }

    fn from_error(err: Error) -> Self {
        crate::logging::say_err(&format!("error: {err}"));
        std::process::exit(1);
    }
}

impl<E: From<Error>> MainOutput for Result<(), E> {
    fn succeeded(&self) -> bool {
        self.is_ok()
    }

    fn from_error(err: Error) -> Self {
        Err(E::from(err))
    }
}

/// Serves after a sync `main` body, unless it failed or launched a server itself.
pub fn serve_after_main<R: MainOutput>(outcome: R) -> R {
    if !outcome.succeeded() || crate::server::launched() {
        crate::logging::flush();
        return outcome;
    }
    match crate::launch() {
        Ok(()) => outcome,
        Err(err) => R::from_error(err),
    }
}

/// Runs an `async fn main` body on an actix-web runtime, then serves (unless it failed or
/// launched a server) while that runtime keeps running the tasks the body spawned.
pub fn serve_after_async_main<F, Fut, R>(body: F) -> R
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
    R: MainOutput,
{
    actix_web::rt::System::new().block_on(async move {
        let outcome = body().await;
        if !outcome.succeeded() || crate::server::launched() {
            crate::logging::flush();
            return outcome;
        }
        match tokio::task::spawn_blocking(crate::launch).await {
            Ok(Ok(())) => outcome,
            Ok(Err(err)) => R::from_error(err),
            Err(err) => std::panic::resume_unwind(err.into_panic()),
        }
    })
}
