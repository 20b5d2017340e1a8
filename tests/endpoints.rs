//! Every parameter kind and return kind of `#[webhook_endpoint]`, over real HTTP.

mod common;

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use common::{get, hub_sample, post, send, serve};
use hookserver::actix_web::{self, HttpResponse, Responder};
use hookserver::serde_json::{json, Value};
use hookserver::{webhook_endpoint, Bytes, HttpRequest, Json, WebhookPayload, WebhooksServer};
use serde::{Deserialize, Serialize};

#[webhook_endpoint]
async fn implicit_path(payload: WebhookPayload) -> Value {
    json!({ "scope": payload.event.scope })
}

#[webhook_endpoint("named")]
async fn named_fn() {}

#[webhook_endpoint(path = "/nested/path/")]
fn sync_nested(payload: WebhookPayload) -> Value {
    json!({ "repo": payload.repo.name, "sync": true })
}

#[webhook_endpoint]
async fn with_request(request: HttpRequest, payload: WebhookPayload) -> Value {
    json!({
        "path": request.path(),
        "method": request.method().as_str(),
        "tag": request.query("tag"),
        "agent": request.header("x-test-agent"),
        "num": payload.discussion.map(|d| d.num),
    })
}

#[webhook_endpoint]
fn sync_with_request(payload: WebhookPayload, request: HttpRequest) -> String {
    format!("{} {}", request.path(), payload.event.action)
}

#[webhook_endpoint]
async fn raw_bytes(body: Bytes) -> String {
    body.len().to_string()
}

#[webhook_endpoint]
fn raw_string(body: String) -> String {
    body.chars().rev().collect()
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Custom {
    name: String,
    count: u32,
}

#[webhook_endpoint]
async fn typed_json(Json(mut custom): Json<Custom>) -> Json<Custom> {
    custom.count += 1;
    Json(custom)
}

#[webhook_endpoint]
async fn actix_extractors(
    query: actix_web::web::Query<HashMap<String, String>>,
    request: actix_web::HttpRequest,
) -> HttpResponse {
    HttpResponse::Created().json(json!({
        "q": query.get("q"),
        "path": request.path(),
    }))
}

#[derive(Debug)]
struct DisplayOnly;

impl std::fmt::Display for DisplayOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the repo is not a dataset")
    }
}

#[webhook_endpoint]
async fn result_display(request: HttpRequest) -> Result<Value, DisplayOnly> {
    if request.query("fail").is_some() {
        Err(DisplayOnly)
    } else {
        Ok(json!({ "ok": true }))
    }
}

#[webhook_endpoint]
async fn result_response_error() -> Result<Value, actix_web::Error> {
    Err(actix_web::error::ErrorConflict("already training"))
}

#[webhook_endpoint]
fn result_boxed_error(body: String) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let number: u32 = body.trim().parse()?;
    Ok((number * 2).to_string())
}

#[webhook_endpoint]
async fn panics() -> Value {
    panic!("boom in an async handler")
}

#[webhook_endpoint]
fn sync_panics() {
    panic!("boom in a sync handler")
}

#[webhook_endpoint]
async fn responder_impl() -> impl Responder {
    HttpResponse::Accepted().body("accepted")
}

struct Teapot;

impl Responder for Teapot {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &actix_web::HttpRequest) -> HttpResponse {
        HttpResponse::build(actix_web::http::StatusCode::IM_A_TEAPOT).body("short and stout")
    }
}

#[webhook_endpoint]
async fn user_responder() -> Teapot {
    Teapot
}

#[webhook_endpoint]
async fn status_only() -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::NO_CONTENT
}

#[webhook_endpoint]
fn no_params() -> &'static str {
    "nothing needed"
}

/// A sync handler that blocks until `releaser` runs: with one worker, it can only be
/// released if it does not block that worker.
static RELEASE: Mutex<Option<mpsc::Sender<()>>> = Mutex::new(None);
static WAIT: Mutex<Option<mpsc::Receiver<()>>> = Mutex::new(None);

#[webhook_endpoint]
fn blocker() -> &'static str {
    let receiver = WAIT.lock().unwrap().take().expect("one blocker at a time");
    match receiver.recv_timeout(Duration::from_secs(15)) {
        Ok(()) => "released",
        Err(_) => "never released",
    }
}

#[webhook_endpoint]
async fn releaser() -> &'static str {
    RELEASE.lock().unwrap().take().unwrap().send(()).unwrap();
    "sent"
}

fn server() -> hookserver::ServerHandle {
    serve(WebhooksServer::new().webhook_secret(""))
}

#[test]
fn every_form_of_the_attribute_registers_its_path() {
    let app = WebhooksServer::new();
    let paths = app.webhook_paths();
    for path in [
        "/webhooks/implicit_path",
        "/webhooks/named",
        "/webhooks/nested/path",
        "/webhooks/sync_with_request",
    ] {
        assert!(paths.contains(&path), "{path} missing from {paths:?}");
    }
    assert!(!paths.contains(&"/webhooks/named_fn"));
    // Sorted by path, whatever order inventory gives.
    let mut sorted = paths.clone();
    sorted.sort_unstable();
    assert_eq!(paths, sorted);
}

#[test]
fn payload_parameter_async_and_sync() {
    let server = server();
    let url = server.url();
    let reply = post(&format!("{url}/webhooks/implicit_path"), &hub_sample(), &[]);
    assert_eq!(
        (reply.status, reply.json()),
        (200, json!({"scope": "discussion"}))
    );
    let reply = post(&format!("{url}/webhooks/nested/path"), &hub_sample(), &[]);
    assert_eq!(reply.json(), json!({"repo": "gpt2", "sync": true}));
    let reply = post(&format!("{url}/webhooks/named"), &hub_sample(), &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
    server.stop();
}

#[test]
fn request_parameter_in_any_order_async_and_sync() {
    let server = server();
    let url = server.url();
    let reply = post(
        &format!("{url}/webhooks/with_request?tag=v1"),
        &hub_sample(),
        &[("x-test-agent", "tests")],
    );
    assert_eq!(
        reply.json(),
        json!({"path": "/webhooks/with_request", "method": "POST", "tag": "v1", "agent": "tests", "num": 19})
    );
    let reply = post(
        &format!("{url}/webhooks/sync_with_request"),
        &hub_sample(),
        &[],
    );
    assert_eq!(reply.body, "/webhooks/sync_with_request create");
    server.stop();
}

#[test]
fn raw_body_as_bytes_and_string() {
    let server = server();
    let url = server.url();
    let reply = post(&format!("{url}/webhooks/raw_bytes"), b"\xff\x00abc", &[]);
    assert_eq!(reply.body, "5");
    let reply = post(
        &format!("{url}/webhooks/raw_string"),
        "héllo".as_bytes(),
        &[],
    );
    assert_eq!(reply.body, "olléh");
    let reply = post(&format!("{url}/webhooks/raw_string"), b"\xff\xfe", &[]);
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"].as_str().unwrap().contains("UTF-8"));
    server.stop();
}

#[test]
fn typed_json_in_and_out() {
    let server = server();
    let url = server.url();
    let reply = post(
        &format!("{url}/webhooks/typed_json"),
        br#"{"name": "x", "count": 1}"#,
        &[],
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert_eq!(reply.json(), json!({"name": "x", "count": 2}));
    let reply = post(
        &format!("{url}/webhooks/typed_json"),
        br#"{"name": "x", "count": -1}"#,
        &[],
    );
    assert_eq!(reply.status, 422);
    assert_eq!(reply.json()["path"], "count");
    let reply = post(&format!("{url}/webhooks/typed_json"), b"not json", &[]);
    assert_eq!(reply.status, 400);
    server.stop();
}

#[test]
fn any_actix_extractor_and_responder() {
    let server = server();
    let url = server.url();
    let reply = post(
        &format!("{url}/webhooks/actix_extractors?q=search"),
        b"{}",
        &[],
    );
    assert_eq!(reply.status, 201);
    assert_eq!(
        reply.json(),
        json!({"q": "search", "path": "/webhooks/actix_extractors"})
    );
    let reply = post(&format!("{url}/webhooks/responder_impl"), b"", &[]);
    assert_eq!((reply.status, reply.body.as_str()), (202, "accepted"));
    let reply = post(&format!("{url}/webhooks/user_responder"), b"", &[]);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (418, "short and stout")
    );
    let reply = post(&format!("{url}/webhooks/status_only"), b"", &[]);
    assert_eq!(reply.status, 204);
    let reply = post(&format!("{url}/webhooks/no_params"), b"", &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "nothing needed"));
    server.stop();
}

#[test]
fn results_answer_ok_or_an_error() {
    let server = server();
    let url = server.url();
    let reply = post(&format!("{url}/webhooks/result_display"), b"", &[]);
    assert_eq!((reply.status, reply.json()), (200, json!({"ok": true})));
    let reply = post(&format!("{url}/webhooks/result_display?fail=1"), b"", &[]);
    assert_eq!(
        (reply.status, reply.json()),
        (500, json!({"error": "the repo is not a dataset"}))
    );
    // An actix-web error gives its own response.
    let reply = post(&format!("{url}/webhooks/result_response_error"), b"", &[]);
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (409, "already training")
    );
    let reply = post(&format!("{url}/webhooks/result_boxed_error"), b"21", &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "42"));
    let reply = post(&format!("{url}/webhooks/result_boxed_error"), b"x", &[]);
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.json(),
        json!({"error": "invalid digit found in string"})
    );
    server.stop();
}

#[test]
fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
    let server = serve(WebhooksServer::new().webhook_secret("").workers(1));
    let url = server.url();
    for _ in 0..3 {
        for path in ["panics", "sync_panics"] {
            let reply = post(&format!("{url}/webhooks/{path}"), b"", &[]);
            assert_eq!(reply.status, 500);
            assert_eq!(
                reply.json(),
                json!({"error": "the webhook handler panicked"})
            );
        }
        let reply = post(&format!("{url}/webhooks/implicit_path"), &hub_sample(), &[]);
        assert_eq!(reply.status, 200);
    }
    server.stop();
}

#[test]
fn a_blocking_sync_handler_does_not_hold_the_async_worker() {
    let (tx, rx) = mpsc::channel();
    *RELEASE.lock().unwrap() = Some(tx);
    *WAIT.lock().unwrap() = Some(rx);
    // One async worker: if `blocker` ran on it, `releaser` could never run.
    let server = serve(WebhooksServer::new().webhook_secret("").workers(1));
    let url = server.url().to_owned();
    let blocked = std::thread::spawn({
        let url = url.clone();
        move || post(&format!("{url}/webhooks/blocker"), b"", &[])
    });
    // `releaser` panics on a missing sender only if `blocker` has not started; retry
    // until the blocker is waiting (it takes the receiver when it starts).
    loop {
        if WAIT.lock().unwrap().is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let reply = post(&format!("{url}/webhooks/releaser"), b"", &[]);
    assert_eq!(reply.body, "sent");
    assert_eq!(blocked.join().unwrap().body, "released");
    server.stop();
}

#[test]
fn the_annotated_fns_stay_callable() {
    let payload: WebhookPayload = serde_json::from_slice(&hub_sample()).unwrap();
    assert_eq!(sync_nested(payload.clone())["repo"], "gpt2");
    assert_eq!(no_params(), "nothing needed");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let value = runtime.block_on(implicit_path(payload));
    assert_eq!(value, json!({"scope": "discussion"}));
    runtime.block_on(named_fn());
}

#[test]
fn landing_page_lists_every_endpoint() {
    let server = server();
    let reply = get(&format!("{}/", server.url()));
    assert_eq!(reply.status, 200);
    assert!(reply.content_type.unwrap().starts_with("text/html"));
    let count = WebhooksServer::new().webhook_paths().len();
    assert!(reply
        .body
        .contains(&format!("{count} webhook(s) are registered")));
    for path in WebhooksServer::new().webhook_paths() {
        assert!(
            // The full URL, alone in its element (the copy button copies it).
            reply.body.contains(&format!(">{}{path}<", server.url())),
            "{path} not listed"
        );
    }
    assert!(reply.body.contains("No secret is set"));
    server.stop();
}

#[test]
fn wrong_method_is_405_and_unknown_path_404() {
    let server = server();
    let url = server.url();
    for method in ["GET", "PUT", "DELETE", "PATCH"] {
        let reply = send(method, &format!("{url}/webhooks/implicit_path"), b"", &[]);
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.allow.as_deref(), Some("POST"));
    }
    let reply = post(&format!("{url}/webhooks/nope"), &hub_sample(), &[]);
    assert_eq!(reply.status, 404);
    assert!(reply.json()["error"]
        .as_str()
        .unwrap()
        .contains("/webhooks/nope"));
    let reply = get(&format!("{url}/elsewhere"));
    assert_eq!(reply.status, 404);
    server.stop();
}
