//! A bot with queued endpoints that fail, panic, stall and succeed on demand: the tests of
//! the inbox run it as a real process (`tests/queue.rs`, `tests/queue_crash.rs`).
//!
//! Every attempt that reaches the end of a handler appends a line to `$DRILL_JOURNAL`:
//! `ENDPOINT WEBHOOK_ID DELIVERY_ID ATTEMPT PID`.

use std::io::Write;
use std::time::Duration;

use hookserver::{
    webhook_endpoint, Attempt, Failure, HttpRequest, Json, WebhookPayload, WebhooksServer,
};

fn journal(endpoint: &str, attempt: &Attempt) {
    let Ok(path) = std::env::var("DRILL_JOURNAL") else {
        return;
    };
    let line = format!(
        "{endpoint} {} {} {} {}\n",
        attempt.webhook_id().unwrap_or("-"),
        attempt.delivery_id().unwrap_or("-"),
        attempt.number(),
        std::process::id()
    );
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("the journal opens");
    // One write per line: lines of concurrent attempts never interleave.
    file.write_all(line.as_bytes())
        .expect("the journal is written");
}

/// Succeeds at once.
#[webhook_endpoint(queue)]
async fn record(_payload: WebhookPayload, attempt: Attempt) {
    journal("record", &attempt);
}

/// Journals the repository its payload names, as `repo:NAME` in the endpoint's place (the
/// first attempt gets the payload the check parsed: this shows it is the delivery's own).
#[webhook_endpoint(queue)]
async fn repo(payload: WebhookPayload, attempt: Attempt) {
    journal(&format!("repo:{}", payload.repo.name), &attempt);
}

/// Fails its first two attempts.
#[webhook_endpoint(queue)]
async fn flaky(attempt: Attempt) -> Result<(), Failure> {
    if attempt.number() < 3 {
        return Err(Failure::retry(format!(
            "flaky attempt {}",
            attempt.number()
        )));
    }
    journal("flaky", &attempt);
    Ok(())
}

/// Always fails (with an error that is only `Display`).
#[webhook_endpoint(queue)]
async fn always_fails(attempt: Attempt) -> Result<(), String> {
    journal("always_fails", &attempt);
    Err(format!("always fails (attempt {})", attempt.number()))
}

/// Fails for good.
#[webhook_endpoint(queue)]
async fn permanent(attempt: Attempt) -> Result<(), Failure> {
    journal("permanent", &attempt);
    Err(Failure::permanent("this repo is not mirrored"))
}

/// Panics.
#[webhook_endpoint(queue)]
async fn panics(attempt: Attempt) {
    journal("panics", &attempt);
    panic!("boom on attempt {}", attempt.number());
}

/// A plain fn (the blocking pool) that takes `$DRILL_SLOW_MS` (default 1500).
#[webhook_endpoint(queue)]
fn slow(attempt: Attempt) {
    let ms = std::env::var("DRILL_SLOW_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    std::thread::sleep(Duration::from_millis(ms));
    journal("slow", &attempt);
}

#[derive(serde::Deserialize)]
struct Ping {
    #[allow(dead_code)]
    zen: String,
}

/// Takes a typed body: a body that does not fit is refused before it is stored.
#[webhook_endpoint(queue)]
async fn typed(Json(_ping): Json<Ping>, attempt: Attempt) {
    journal("typed", &attempt);
}

/// Reads the recorded request: its method, path and query, and an `X-Drill` header
/// become the journal's "endpoint" (`request:METHOD:PATH?QUERY:HEADER`).
#[webhook_endpoint(queue)]
async fn request(req: HttpRequest, attempt: Attempt) {
    let header = req
        .headers()
        .get("x-drill")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let seen = format!(
        "request:{}:{}?{}:{header}",
        req.method(),
        req.path(),
        req.query_string()
    );
    journal(&seen, &attempt);
}

/// Inline: answers the delivery's `Webhook-Id`.
#[webhook_endpoint]
async fn inline_id(attempt: Attempt) -> String {
    format!(
        "{} {} {}",
        attempt.webhook_id().unwrap_or("-"),
        attempt.number(),
        attempt.is_queued()
    )
}

fn main() -> std::process::ExitCode {
    match serve() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve() -> hookserver::Result<()> {
    let mut app = WebhooksServer::new();
    if let Some(ms) = std::env::var("DRILL_HANDLER_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        app = app.handler_timeout(Some(Duration::from_millis(ms)));
    }
    if let Some(ms) = std::env::var("DRILL_SHUTDOWN_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        app = app.shutdown_timeout(Duration::from_millis(ms));
    }
    // The builder's way to a queued endpoint.
    app.add_queued_webhook("builder_record", |attempt: Attempt| async move {
        journal("builder_record", &attempt);
    })?;
    app.launch()
}
