//! A server configured by hand, as `huggingface_hub`'s `WebhooksServer(ui=..., webhook_secret=...)`:
//! a custom landing page, an explicit secret, endpoints added with an explicit path and
//! with the path taken from the fn's name, and an explicit `launch()`.
//!
//! Run with `cargo run --example custom_server`, then send a delivery:
//!
//! ```text
//! curl -X POST -H 'X-Webhook-Secret: my_secret_key' -H 'Content-Type: application/json' \
//!      --data @payload.json http://127.0.0.1:7860/webhooks/say_hello
//! ```

use hookserver::serde_json::{json, Value};
use hookserver::{HttpRequest, WebhookPayload, WebhooksServer};

/// Answers with a greeting for the repository.
async fn hello(payload: WebhookPayload) -> Value {
    json!({ "message": format!("hello {}", payload.repo.name) })
}

/// Counts the git references a push changed. A plain fn: it runs on the blocking pool.
fn count_refs(payload: WebhookPayload) -> Value {
    let refs = payload.updated_refs.as_ref().map_or(0, Vec::len);
    json!({ "scope": payload.event.scope, "updated_refs": refs })
}

/// Says who sent the delivery and what it was about.
async fn discussion_opened(payload: WebhookPayload, request: HttpRequest) -> Value {
    let title = payload.discussion.as_ref().map(|d| d.title.clone());
    json!({
        "title": title,
        "user_agent": request.header("user-agent"),
    })
}

const UI: &str = "<!doctype html><title>My bot</title><h1>My bot</h1>\
<p>It greets repositories at <code>/webhooks/say_hello</code>.</p>";

fn main() -> hookserver::Result<()> {
    let mut app = WebhooksServer::empty()
        .webhook_secret("my_secret_key")
        .ui(UI);
    app.add_webhook("/say_hello", hello)?; // POST /webhooks/say_hello
    app.add_webhook("count_refs", count_refs)?; // POST /webhooks/count_refs
    app.add_webhook_fn(discussion_opened)?; // POST /webhooks/discussion_opened
    app.launch() // blocks until Ctrl-C or SIGTERM
}
