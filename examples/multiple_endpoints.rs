//! Several `#[webhook_endpoint]` fns in one bot, in every form the attribute takes, with
//! the parameters and answers a handler may use, and `#[hookserver::launch]` on the
//! bot's own `main`.
//!
//! Run with `cargo run --example multiple_endpoints`.

use hookserver::serde_json::{json, Value};
use hookserver::{webhook_endpoint, Bytes, DiscussionStatus, HttpRequest, Json, WebhookPayload};
use serde::Deserialize;

/// `POST /webhooks/on_discussion`: the fn's name is the path.
#[webhook_endpoint]
async fn on_discussion(payload: WebhookPayload) -> Value {
    let Some(discussion) = payload.discussion else {
        return json!({ "ignored": payload.event.scope });
    };
    let verb = match discussion.status {
        DiscussionStatus::Open => "opened",
        DiscussionStatus::Closed => "closed",
        DiscussionStatus::Merged => "merged",
        _ => "changed",
    };
    json!({ "discussion": discussion.num, "status": verb, "pr": discussion.is_pull_request })
}

/// `POST /webhooks/say_hello`: a name given in the attribute.
#[webhook_endpoint("say_hello")]
fn hello(payload: WebhookPayload, request: HttpRequest) -> String {
    // A plain fn runs on the blocking pool: it may block without delaying other deliveries.
    format!("hello {} from {}", payload.repo.name, request.path())
}

/// Only the fields this endpoint needs.
#[derive(Deserialize)]
struct RepoOnly {
    repo: RepoName,
}

#[derive(Deserialize)]
struct RepoName {
    name: String,
}

/// `POST /webhooks/repos/name`: a path with `/`, and a payload of the bot's own type.
#[webhook_endpoint(path = "/repos/name/")]
async fn repo_name(Json(body): Json<RepoOnly>) -> Json<Value> {
    Json(json!({ "name": body.repo.name }))
}

/// `POST /webhooks/archive`: the raw body, and an error answered as 500 `{"error": ...}`.
#[webhook_endpoint]
async fn archive(body: Bytes) -> Result<Value, std::io::Error> {
    let dir = std::env::temp_dir().join("hookserver-archive");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(format!("{}.json", std::process::id()));
    std::fs::write(&file, &body)?;
    Ok(json!({ "stored_bytes": body.len() }))
}

fn main_body() {
    println!("multiple_endpoints: 4 endpoints, see the landing page for their URLs");
}

#[hookserver::launch]
fn main() {
    main_body();
}
