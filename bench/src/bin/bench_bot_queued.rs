//! The queued bot of the load benchmark: the bench bot's endpoint made queued, so each
//! delivery is checked, stored in the inbox (fsync'd, group commit) and answered 202
//! before its handler runs on the queue's pool.
//!
//! Run with `scripts/bench.sh` (which builds it in release and gives it a fresh inbox
//! file through `HOOKSERVER_INBOX`).

use hookserver::{webhook_endpoint, WebhookPayload};

/// `POST /webhooks/test_webhook`, queued.
#[webhook_endpoint(queue)]
async fn test_webhook(payload: WebhookPayload) {
    std::hint::black_box(payload.event.scope);
}

hookserver::main!();
