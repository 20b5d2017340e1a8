//! One way from a delivery to a handler's parameters: a `#[webhook_endpoint]` fn and the
//! same fn given to `add_webhook` take the same parameters and answer the same JSON
//! errors, over real HTTP.

mod common;

use std::collections::HashMap;

use common::{hub_sample, post, send, serve};
use hookserver::actix_web::web::Query;
use hookserver::serde_json::{json, Value};
use hookserver::{webhook_endpoint, Bytes, HttpRequest, Json, WebhookPayload, WebhooksServer};

#[derive(serde::Deserialize, serde::Serialize)]
struct Ping {
    zen: String,
}

#[webhook_endpoint("attr/payload")]
async fn payload(payload: WebhookPayload) -> Value {
    json!({ "scope": payload.event.scope })
}

#[webhook_endpoint("attr/text")]
async fn text(body: String) -> Value {
    json!({ "len": body.len() })
}

#[webhook_endpoint("attr/bytes")]
async fn bytes(body: Bytes) -> Value {
    json!({ "len": body.len() })
}

#[webhook_endpoint("attr/json")]
async fn typed(Json(ping): Json<Ping>) -> Value {
    json!({ "zen": ping.zen })
}

#[webhook_endpoint("attr/request")]
fn request(request: HttpRequest) -> Value {
    json!({ "path": request.path() })
}

#[webhook_endpoint("attr/query")]
async fn query(query: Query<HashMap<String, u32>>) -> Value {
    json!({ "n": query.get("n") })
}

/// Every fn above, registered both ways: by the attribute under `/webhooks/attr/`, and by
/// `add_webhook` under `/webhooks/added/`.
fn server() -> hookserver::ServerHandle {
    let mut app = WebhooksServer::new().webhook_secret("");
    app.add_webhook("added/payload", payload).unwrap();
    app.add_webhook("added/text", text).unwrap();
    app.add_webhook("added/bytes", bytes).unwrap();
    app.add_webhook("added/json", typed).unwrap();
    app.add_webhook("added/request", request).unwrap();
    app.add_webhook("added/query", query).unwrap();
    serve(app)
}

/// `(status, JSON body)` of a POST to both registrations, checked equal.
fn both(base: &str, name: &str, query: &str, body: &[u8]) -> (u16, Value) {
    let answers: Vec<(u16, Value)> = ["attr", "added"]
        .iter()
        .map(|kind| {
            let reply = send(
                "POST",
                &format!("{base}/webhooks/{kind}/{name}{query}"),
                body,
                &[("content-type", "application/json")],
            );
            assert_eq!(
                reply.content_type.as_deref(),
                Some("application/json"),
                "{kind}/{name}: {}",
                reply.body
            );
            (reply.status, reply.json())
        })
        .collect();
    let mut attr = answers[0].clone();
    let mut added = answers[1].clone();
    // The paths differ; nothing else may.
    for value in [&mut attr.1, &mut added.1] {
        if let Some(path) = value.get_mut("path") {
            if path.as_str().is_some_and(|p| p.starts_with("/webhooks/")) {
                *path = json!("<path>");
            }
        }
    }
    assert_eq!(attr, added, "{name}{query}");
    attr
}

#[test]
fn both_registrations_take_the_same_parameters() {
    let server = server();
    let base = server.url();
    let sample = hub_sample();
    assert_eq!(
        both(base, "payload", "", &sample),
        (200, json!({"scope": "discussion"}))
    );
    assert_eq!(
        both(base, "text", "", &sample),
        (200, json!({"len": sample.len()}))
    );
    assert_eq!(
        both(base, "bytes", "", b"\xff\xfe"),
        (200, json!({"len": 2}))
    );
    assert_eq!(
        both(base, "json", "", br#"{"zen": "ok"}"#),
        (200, json!({"zen": "ok"}))
    );
    assert_eq!(
        both(base, "request", "", b"{}"),
        (200, json!({"path": "<path>"}))
    );
    assert_eq!(both(base, "query", "?n=7", b"{}"), (200, json!({"n": 7})));
    server.stop();
}

#[test]
fn both_registrations_answer_the_same_json_errors() {
    let server = server();
    let base = server.url();
    // A String body that is not UTF-8 (actix-web's own extractor answered text before).
    let (status, error) = both(base, "text", "", b"\xff\xfe");
    assert_eq!(status, 400);
    assert!(error["error"]
        .as_str()
        .unwrap()
        .starts_with("the body is not valid UTF-8"));
    // A payload that is a JSON array, not the Hub's object.
    let (status, error) = both(base, "payload", "", b"[1, 2]");
    assert_eq!(status, 422);
    assert_eq!(error["path"], ".");
    // Not JSON; JSON of the wrong shape, with the field's path.
    assert_eq!(both(base, "payload", "", b"{nope").0, 400);
    let (status, error) = both(base, "json", "", br#"{"zen": 1}"#);
    assert_eq!(status, 422);
    assert_eq!(error["path"], "zen");
    // An actix-web extractor's own failure, in JSON too.
    let (status, error) = both(base, "query", "?n=seven", b"{}");
    assert_eq!(status, 400);
    assert!(
        error["error"].as_str().unwrap().contains("Query"),
        "{error}"
    );
    server.stop();
}

#[test]
fn a_plain_post_still_works_for_both() {
    let server = server();
    for kind in ["attr", "added"] {
        let reply = post(
            &format!("{}/webhooks/{kind}/payload", server.url()),
            &hub_sample(),
            &[],
        );
        assert_eq!(reply.status, 200, "{kind}");
    }
    server.stop();
}
