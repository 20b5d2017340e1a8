//! The Hub's sample payloads (`hookserver/samples/`) and the payload's error
//! answers, over real HTTP.

mod common;

use common::{fixtures, hub_sample, post, serve};
use hookserver::serde_json::{self, json, Value};
use hookserver::{webhook_endpoint, Json, WebhookPayload, WebhooksServer};

/// Answers the payload as it parsed it, serialized back.
#[webhook_endpoint]
async fn echo(payload: WebhookPayload) -> Json<WebhookPayload> {
    Json(payload)
}

fn server() -> hookserver::ServerHandle {
    serve(WebhooksServer::new().webhook_secret(""))
}

#[test]
fn every_sample_parses_and_serializes_back_to_the_same_json() {
    for (name, bytes) in fixtures() {
        let original: Value = serde_json::from_slice(&bytes).unwrap();
        let payload: WebhookPayload = serde_json::from_slice(&bytes)
            .unwrap_or_else(|err| panic!("{name} does not parse: {err}"));
        assert_eq!(payload.webhook.version, 3, "{name}");
        let back = serde_json::to_value(&payload).unwrap();
        assert_eq!(
            back, original,
            "{name} does not serialize back to the same JSON"
        );
    }
}

#[test]
fn every_sample_is_answered_over_http() {
    let server = server();
    for (name, bytes) in fixtures() {
        let reply = post(&format!("{}/webhooks/echo", server.url()), &bytes, &[]);
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        let original: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(reply.json(), original, "{name}");
    }
    server.stop();
}

fn sample() -> Value {
    serde_json::from_slice(&hub_sample()).unwrap()
}

fn post_value(server: &hookserver::ServerHandle, value: &Value) -> common::Reply {
    post(
        &format!("{}/webhooks/echo", server.url()),
        value.to_string().as_bytes(),
        &[],
    )
}

#[test]
fn json_that_does_not_fit_is_422_naming_the_field() {
    let server = server();
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "discussion.num",
            Box::new(|v| v["discussion"]["num"] = json!("nineteen")),
        ),
        (
            "discussion.num",
            Box::new(|v| v["discussion"]["num"] = json!(-1)),
        ),
        (
            "repo.private",
            Box::new(|v| v["repo"]["private"] = json!("no")),
        ),
        (
            "repo.name",
            Box::new(|v| drop(v["repo"].as_object_mut().unwrap().remove("name"))),
        ),
        (
            "event",
            Box::new(|v| drop(v.as_object_mut().unwrap().remove("event"))),
        ),
        (
            "comment.hidden",
            Box::new(|v| v["comment"]["hidden"] = Value::Null),
        ),
        (
            "webhook.version",
            Box::new(|v| v["webhook"]["version"] = json!(2)),
        ),
        (
            "webhook.version",
            Box::new(|v| v["webhook"]["version"] = json!(4)),
        ),
        ("repo.type", Box::new(|v| v["repo"]["type"] = json!(7))),
    ];
    for (path, change) in cases {
        let mut value = sample();
        change(&mut value);
        let reply = post_value(&server, &value);
        assert_eq!(reply.status, 422, "{path}: {}", reply.body);
        let body = reply.json();
        assert_eq!(body["path"], path, "{}", reply.body);
        assert!(
            body["error"].as_str().unwrap().contains(path),
            "{}",
            reply.body
        );
    }
    // A body that is JSON but not an object.
    let reply = post(&format!("{}/webhooks/echo", server.url()), b"[1, 2]", &[]);
    assert_eq!(reply.status, 422);
    server.stop();
}

#[test]
fn a_body_that_is_not_json_is_400() {
    let server = server();
    for body in [&b"not json"[..], b"{\"event\": ", b"", b"{} trailing"] {
        let reply = post(&format!("{}/webhooks/echo", server.url()), body, &[]);
        assert_eq!(reply.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert!(reply.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("the body is not valid JSON"));
    }
    server.stop();
}

#[test]
fn version_3_only_and_future_values_kept() {
    let server = server();
    let mut value = sample();
    value["event"]["action"] = json!("archive");
    value["repo"]["type"] = json!("kernel");
    value["discussion"]["status"] = json!("locked");
    value["brandNewField"] = json!({"x": 1});
    value["repo"]["head_sha"] = json!("abc");
    let reply = post_value(&server, &value);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let echoed = reply.json();
    assert_eq!(echoed["event"]["action"], "archive");
    assert_eq!(echoed["repo"]["type"], "kernel");
    assert_eq!(echoed["discussion"]["status"], "locked");
    assert_eq!(echoed["repo"]["headSha"], "abc");
    assert!(echoed.get("brandNewField").is_none());
    server.stop();
}

#[test]
fn bodies_over_the_limit_are_413() {
    let server = serve(WebhooksServer::new().webhook_secret("").body_limit(1024));
    let url = format!("{}/webhooks/echo", server.url());
    // The sample is under 2 KiB: over this server's limit.
    let reply = post(&url, &hub_sample(), &[]);
    assert_eq!(reply.status, 413);
    assert!(reply.json()["error"].as_str().unwrap().contains("1024"));
    let mut small = sample();
    small.as_object_mut().unwrap().remove("comment");
    small.as_object_mut().unwrap().remove("discussion");
    let reply = post_value(&server, &small);
    assert_eq!(reply.status, 200, "{}", reply.body);
    server.stop();

    // The default limit is 1 MiB.
    let server = server_with_default_limit();
    let url = format!("{}/webhooks/echo", server.url());
    let mut padded = sample();
    padded["padding"] = json!("x".repeat(1024 * 1024));
    assert_eq!(post_value(&server, &padded).status, 413);
    padded["padding"] = json!("x".repeat(1000 * 1024));
    assert_eq!(post(&url, padded.to_string().as_bytes(), &[]).status, 200);
    server.stop();
}

fn server_with_default_limit() -> hookserver::ServerHandle {
    server()
}
