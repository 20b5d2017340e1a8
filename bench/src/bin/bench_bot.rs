//! The bot of the load benchmark, as users write it: one `#[webhook_endpoint]` taking
//! `WebhookPayload` and answering `{"scope": ...}`, a generated `main`, the secret from
//! `WEBHOOK_SECRET`, every default left on.
//!
//! Run with `scripts/bench.sh` (which builds it in release).

use hookserver::serde_json::{json, Value};
use hookserver::{webhook_endpoint, WebhookPayload};

/// `POST /webhooks/test_webhook`.
#[webhook_endpoint]
async fn test_webhook(payload: WebhookPayload) -> Value {
    json!({ "scope": payload.event.scope })
}

hookserver::main!();
