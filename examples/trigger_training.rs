//! The first example of `huggingface_hub`'s webhooks guide, in Rust: one endpoint that
//! reacts when a dataset is updated, and a generated `main`.
//!
//! Run with `cargo run --example trigger_training`, then configure a webhook at
//! <https://huggingface.co/settings/webhooks> with the URL it prints.

use hookserver::serde_json::{json, Value};
use hookserver::{webhook_endpoint, Action, RepoType, WebhookPayload};

/// `POST /webhooks/trigger_training`: starts a training job when a dataset is updated.
#[webhook_endpoint]
async fn trigger_training(payload: WebhookPayload) -> Value {
    if payload.repo.r#type == RepoType::Dataset && payload.event.action == Action::Update {
        // A real bot would start a training job here (for instance through the Hub's
        // Jobs API); this one says what it would train on.
        println!(
            "training a model on the new revision of {}",
            payload.repo.name
        );
        return json!({ "training": "started", "dataset": payload.repo.name });
    }
    json!({ "training": "skipped", "scope": payload.event.scope })
}

hookserver::main!();
