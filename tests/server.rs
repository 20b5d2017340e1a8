//! The server builder, explicit registration, the landing page and the handle.

mod common;

use common::{get, hub_sample, post, serve};
use hookserver::serde_json::{json, Value};
use hookserver::{Error, Json, WebhookPayload, WebhooksServer};

#[test]
fn explicit_registration_without_the_registry() {
    let mut app = WebhooksServer::empty().webhook_secret("");
    app.add_webhook("/say_hello/", |payload: WebhookPayload| async move {
        format!("hello {}", payload.repo.name)
    })
    .unwrap();
    app.add_webhook("sync/len", |body: String| body.len().to_string())
        .unwrap();
    app.add_webhook("json", |Json(value): Json<Value>| async move {
        Json(json!({ "got": value }))
    })
    .unwrap();
    assert_eq!(
        app.webhook_paths(),
        [
            "/webhooks/say_hello",
            "/webhooks/sync/len",
            "/webhooks/json"
        ]
    );
    let server = serve(app);
    let reply = post(
        &format!("{}/webhooks/say_hello", server.url()),
        &hub_sample(),
        &[],
    );
    assert_eq!((reply.status, reply.body.as_str()), (200, "hello gpt2"));
    let reply = post(
        &format!("{}/webhooks/sync/len", server.url()),
        b"12345",
        &[],
    );
    assert_eq!(reply.body, "5");
    // The explicit handler's payload errors are the same as the macro's.
    let reply = post(&format!("{}/webhooks/say_hello", server.url()), b"{}", &[]);
    assert_eq!(reply.status, 422);
    assert_eq!(reply.json()["path"], "event");
    let reply = post(&format!("{}/webhooks/json", server.url()), b"[1]", &[]);
    assert_eq!(reply.json(), json!({"got": [1]}));
    let reply = post(&format!("{}/webhooks/json", server.url()), b"[1", &[]);
    assert_eq!(reply.status, 400);
    server.stop();
}

#[test]
fn explicit_paths_are_checked() {
    let mut app = WebhooksServer::empty();
    for bad in ["", "/", "a b", "{id}", "a//b"] {
        let err = app.add_webhook(bad, || async {}).unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{bad:?}: {err}");
    }
    let err = app.add_webhook_fn(|| async {}).unwrap_err();
    assert!(matches!(err, Error::UnnamedHandler { .. }), "{err}");
    assert!(app.webhook_paths().is_empty());
}

#[test]
fn a_custom_ui_replaces_the_landing_page() {
    let server = serve(WebhooksServer::empty().ui("<h1>My bot</h1>"));
    let reply = get(&format!("{}/", server.url()));
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "<h1>My bot</h1>")
    );
    assert!(reply.content_type.unwrap().starts_with("text/html"));
    server.stop();
}

#[test]
fn the_landing_page_escapes_what_it_shows() {
    let mut app = WebhooksServer::empty().webhook_secret("");
    app.add_webhook("a<b", || async {}).unwrap();
    let server = serve(app);
    let page = get(&format!("{}/", server.url())).body;
    assert!(page.contains("/webhooks/a&lt;b"), "{page}");
    assert!(!page.contains("a<b"));
    assert!(page.contains("1 webhook(s) are registered"));
    assert!(page.contains("running locally"));
    server.stop();
}

#[test]
fn an_empty_server_still_serves_its_landing_page_and_health() {
    let server = serve(WebhooksServer::empty());
    let page = get(&format!("{}/", server.url()));
    assert!(page.body.contains("0 webhook(s) are registered"));
    assert!(page.body.contains("No webhook endpoint is registered"));
    let health = get(&format!("{}/healthz", server.url()));
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    assert!(server.instructions().contains("ready to use"));
    server.stop();
}

#[test]
fn stop_returns_once_stopped_and_new_connections_are_refused() {
    let server = serve(WebhooksServer::empty());
    let addr = server.addr();
    assert_eq!(server.url(), format!("http://{addr}"));
    assert_eq!(server.public_url(), server.url());
    server.stop();
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn several_servers_in_one_process() {
    let mut first = WebhooksServer::empty().webhook_secret("one");
    first.add_webhook("who", || async { "first" }).unwrap();
    let mut second = WebhooksServer::empty().webhook_secret("two");
    second.add_webhook("who", || async { "second" }).unwrap();
    let (a, b) = (serve(first), serve(second));
    let ask = |server: &hookserver::ServerHandle, secret| {
        post(
            &format!("{}/webhooks/who", server.url()),
            b"",
            &[("x-webhook-secret", secret)],
        )
    };
    assert_eq!(ask(&a, "one").body, "first");
    assert_eq!(ask(&b, "two").body, "second");
    assert_eq!(ask(&a, "two").status, 403);
    a.stop();
    b.stop();
}

#[test]
fn debug_never_shows_the_secret() {
    let app = WebhooksServer::empty().webhook_secret("hunter2");
    assert!(!format!("{app:?}").contains("hunter2"));
    let server = serve(app);
    assert!(!format!("{server:?}").contains("hunter2"));
    server.stop();
}
