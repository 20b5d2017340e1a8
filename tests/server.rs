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

/// Sends raw HTTP/1.1 `requests` on one connection and returns the status lines answered.
fn statuses_on_one_connection(addr: std::net::SocketAddr, requests: &[String]) -> Vec<String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut statuses = Vec::new();
    for request in requests {
        if writer.write_all(request.as_bytes()).is_err() {
            break;
        }
        let mut status = String::new();
        if reader.read_line(&mut status).unwrap_or(0) == 0 {
            break;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        statuses.push(status.trim_end().to_owned());
    }
    statuses
}

#[test]
fn refused_deliveries_keep_the_connection_alive() {
    let mut app = WebhooksServer::empty().webhook_secret("right");
    app.add_webhook("hook", || async {}).unwrap();
    let server = serve(app);
    let body = String::from_utf8(hub_sample()).unwrap();
    let request = |secret: &str, path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {secret}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let requests = [
        request("wrong", "/webhooks/hook"),
        request("right", "/webhooks/nope"),
        request("right", "/webhooks/hook"),
        request("wrong", "/webhooks/hook"),
    ];
    let statuses = statuses_on_one_connection(server.addr(), &requests);
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 403 Forbidden",
            "HTTP/1.1 404 Not Found",
            "HTTP/1.1 200 OK",
            "HTTP/1.1 403 Forbidden"
        ]
    );
    server.stop();
}

#[test]
fn only_paths_below_webhooks_reach_the_endpoints() {
    let mut app = WebhooksServer::empty().webhook_secret("");
    app.add_webhook("hook", || async { "hooked" }).unwrap();
    let server = serve(app);
    let url = server.url();
    assert_eq!(
        post(&format!("{url}/webhooks/hook"), b"", &[]).body,
        "hooked"
    );
    for path in [
        "/webhooks",
        "/webhooks/",
        "/webhookshook",
        "/hook",
        "/webhooks/hook/x",
    ] {
        let reply = post(&format!("{url}{path}"), b"", &[]);
        assert_eq!(reply.status, 404, "{path}");
    }
    server.stop();
}

#[test]
fn a_refused_client_that_sends_expect_100_continue_keeps_its_connection() {
    let mut app = WebhooksServer::empty().webhook_secret("right");
    app.add_webhook("hook", || async {}).unwrap();
    let server = serve(app);
    let body = String::from_utf8(hub_sample()).unwrap();
    let request = |secret: &str| {
        format!(
            "POST /webhooks/hook HTTP/1.1\r\nHost: x\r\nX-Webhook-Secret: {secret}\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    // actix-web answers `100 Continue` before any handler runs (the secret is checked
    // after it); the body that follows is read off and dropped, and the connection stays
    // usable.
    let statuses = statuses_on_one_connection(
        server.addr(),
        &[
            request("wrong"),
            String::new(),
            request("right"),
            String::new(),
        ],
    );
    assert_eq!(
        statuses,
        [
            "HTTP/1.1 100 Continue",
            "HTTP/1.1 403 Forbidden",
            "HTTP/1.1 100 Continue",
            "HTTP/1.1 200 OK"
        ]
    );
    server.stop();
}

/// A body timeout too long for the clock to hold a deadline for (`Duration::MAX`, read as
/// "no limit") reads bodies as any other: a delivery and a dashboard test send both answer.
#[test]
fn a_body_timeout_past_the_clocks_range_means_no_limit() {
    let mut app = WebhooksServer::empty()
        .webhook_secret("")
        .body_timeout(std::time::Duration::MAX);
    app.add_webhook("hook", |payload: WebhookPayload| async move {
        payload.repo.name
    })
    .unwrap();
    let server = serve(app);
    let reply = post(
        &format!("{}/webhooks/hook", server.url()),
        &hub_sample(),
        &[],
    );
    assert_eq!((reply.status, reply.body.as_str()), (200, "gpt2"));
    let reply = post(
        &format!("{}/api/webhooks/hook/test", server.url()),
        br#"{"sample": "discussion.create (hub-docs)"}"#,
        &[],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    server.stop();
}
