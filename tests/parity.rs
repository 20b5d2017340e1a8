//! huggingface_hub's own test suite for `WebhooksServer` (tests/test_webhooks_server.py),
//! case by case, plus the secret cases on async and sync handlers, with and without the
//! request parameter.

mod common;

use common::{hub_sample, post, serve};
use hookserver::serde_json::{json, Value};
use hookserver::{webhook_endpoint, HttpRequest, WebhookPayload, WebhooksServer};

// `TestWebhooksServerDontRun` -------------------------------------------------------

#[test]
fn test_add_webhook_implicit_path() {
    async fn handler() {}
    let mut app = WebhooksServer::empty();
    app.add_webhook_fn(handler).unwrap();
    assert!(app.webhook_paths().contains(&"/webhooks/handler"));
}

#[test]
fn test_add_webhook_explicit_path() {
    async fn handler() {}
    let mut app = WebhooksServer::empty();
    app.add_webhook("/test_webhook", handler).unwrap();
    // still registered under /webhooks
    assert!(app.webhook_paths().contains(&"/webhooks/test_webhook"));
}

#[test]
fn test_add_webhook_twice_should_fail() {
    async fn test_webhook() {}
    async fn test_webhook_2() {}
    let mut app = WebhooksServer::empty();
    app.add_webhook("my_webhook", test_webhook).unwrap();
    let err = app.add_webhook("my_webhook", test_webhook_2).unwrap_err();
    assert!(matches!(err, hookserver::Error::DuplicatePath { .. }));
    assert_eq!(
        err.to_string(),
        "Webhook /webhooks/my_webhook already exists."
    );
}

// `TestWebhooksServerRun` -----------------------------------------------------------

async fn test_webhook(payload: WebhookPayload) -> Value {
    json!({ "scope": payload.event.scope })
}

fn app() -> WebhooksServer {
    let mut app = WebhooksServer::empty()
        .ui("<p>Hello World!</p>")
        .webhook_secret("my_webhook_secret");
    app.add_webhook_fn(test_webhook).unwrap();
    app
}

#[test]
fn test_run_print_instructions() {
    // What `launch()` prints is kept on the handle; `tests/examples.rs` reads a bot's
    // real standard output too.
    let handle = serve(app());
    let instructions = handle.instructions();
    assert!(instructions.contains("Webhooks are correctly setup and ready to use:"));
    let line = format!("- POST {}/webhooks/test_webhook", handle.url());
    assert!(instructions.contains(&line), "{instructions}");
    assert!(handle.url().starts_with("http://127.0.0.1:"));
    handle.stop();
}

#[test]
fn test_run_parse_payload() {
    let server = serve(app());
    let reply = post(
        &format!("{}/webhooks/test_webhook", server.url()),
        &hub_sample(),
        &[("x-webhook-secret", "my_webhook_secret")],
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"scope": "discussion"}));
    server.stop();
}

#[test]
fn test_no_webhook_secret_should_fail() {
    let server = serve(app());
    let reply = post(&format!("{}/webhooks/test_webhook", server.url()), b"", &[]);
    assert_eq!(reply.status, 401);
    server.stop();
}

// The secret, on every kind of handler ------------------------------------------------

#[webhook_endpoint]
async fn async_plain(payload: WebhookPayload) -> Value {
    json!({ "scope": payload.event.scope })
}

#[webhook_endpoint]
async fn async_with_request(payload: WebhookPayload, request: HttpRequest) -> Value {
    json!({ "scope": payload.event.scope, "path": request.path() })
}

#[webhook_endpoint]
fn sync_plain(payload: WebhookPayload) -> Value {
    json!({ "scope": payload.event.scope })
}

#[webhook_endpoint]
fn sync_with_request(request: HttpRequest, payload: WebhookPayload) -> Value {
    json!({ "scope": payload.event.scope, "path": request.path() })
}

const HANDLERS: [&str; 4] = [
    "async_plain",
    "async_with_request",
    "sync_plain",
    "sync_with_request",
];

#[test]
fn secret_valid_missing_and_wrong_on_every_handler_kind() {
    let server = serve(WebhooksServer::new().webhook_secret("my_webhook_secret"));
    let url = server.url();
    for name in HANDLERS {
        let endpoint = format!("{url}/webhooks/{name}");
        let valid = post(
            &endpoint,
            &hub_sample(),
            &[("X-Webhook-Secret", "my_webhook_secret")],
        );
        assert_eq!(valid.status, 200, "{name}");
        assert_eq!(valid.json()["scope"], "discussion", "{name}");

        let missing = post(&endpoint, &hub_sample(), &[]);
        assert_eq!(missing.status, 401, "{name}");
        assert_eq!(
            missing.json(),
            json!({"error": "x-webhook-secret header not set."})
        );

        let wrong = post(&endpoint, &hub_sample(), &[("x-webhook-secret", "nope")]);
        assert_eq!(wrong.status, 403, "{name}");
        assert_eq!(wrong.json(), json!({"error": "Invalid webhook secret."}));

        // The Hub may put the secret in the URL instead.
        let query = post(
            &format!("{endpoint}?secret=my_webhook_secret"),
            &hub_sample(),
            &[],
        );
        assert_eq!(query.status, 200, "{name}");
        let wrong_query = post(&format!("{endpoint}?secret=nope"), &hub_sample(), &[]);
        assert_eq!(wrong_query.status, 403, "{name}");
    }
    server.stop();
}

#[test]
fn the_secret_is_checked_before_the_body_is_parsed() {
    let server = serve(WebhooksServer::new().webhook_secret("my_webhook_secret"));
    let endpoint = format!("{}/webhooks/async_plain", server.url());
    // Not JSON, but the answer is about the secret.
    assert_eq!(post(&endpoint, b"{{{", &[]).status, 401);
    assert_eq!(
        post(&endpoint, b"{{{", &[("x-webhook-secret", "x")]).status,
        403
    );
    // Over the body limit, but the answer is still about the secret.
    let big = vec![b' '; 2 * 1024 * 1024];
    assert_eq!(
        post(&endpoint, &big, &[("x-webhook-secret", "x")]).status,
        403
    );
    // With the secret, the body is read and refused.
    let right = [("x-webhook-secret", "my_webhook_secret")];
    assert_eq!(post(&endpoint, b"{{{", &right).status, 400);
    server.stop();
}

#[test]
fn without_a_secret_every_handler_is_open() {
    let server = serve(WebhooksServer::new().webhook_secret(""));
    for name in HANDLERS {
        let reply = post(
            &format!("{}/webhooks/{name}", server.url()),
            &hub_sample(),
            &[],
        );
        assert_eq!(reply.status, 200, "{name}");
    }
    server.stop();
}

#[test]
fn the_landing_page_is_not_guarded_and_never_shows_the_secret() {
    let server = serve(WebhooksServer::new().webhook_secret("my_webhook_secret"));
    let page = common::get(&format!("{}/", server.url()));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("A secret is set"));
    assert!(!page.body.contains("my_webhook_secret"));
    assert_eq!(
        common::get(&format!("{}/healthz", server.url())).status,
        200
    );
    server.stop();
}
