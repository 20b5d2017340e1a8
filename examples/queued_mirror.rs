//! A queued endpoint: each delivery is stored in the inbox and answered 202 at once, then
//! mirrored on the queue's own pool, with retries and dead letters (see the README's
//! "Queued endpoints").
//!
//! Run with `cargo run --example queued_mirror`; the inbox is `hookserver-inbox.redb` in the
//! working directory unless `HOOKSERVER_INBOX` names another file. Watch it on the
//! dashboard (`/dashboard`) or at `/api/inbox`.

use hookserver::{webhook_endpoint, Attempt, Failure, WebhookPayload};

/// `POST /webhooks/mirror`: "mirrors" the repository that changed (here: says so).
#[webhook_endpoint(queue)]
async fn mirror(payload: WebhookPayload, attempt: Attempt) -> Result<(), Failure> {
    if payload.repo.private {
        // No attempt will change that: straight to the dead letters.
        return Err(Failure::permanent("private repos are not mirrored"));
    }
    // A real bot would copy the repository here; an error from `?` would be retried.
    println!(
        "mirroring {} (Webhook-Id {}, attempt {})",
        payload.repo.name,
        attempt.webhook_id().unwrap_or("-"),
        attempt.number()
    );
    Ok(())
}

hookserver::main!();
