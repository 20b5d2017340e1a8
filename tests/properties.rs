//! Properties over real HTTP: whatever bytes a client sends to a webhook (any body, a
//! mutated Hub sample, any path, any secret header), the answer is 2xx or 4xx, never 5xx
//! (no handler here fails on its own), and it comes (the client's timeout would fail the
//! property otherwise).
//!
//! Each case comes from a client address of its own (`X-Forwarded-For`, from a trusted
//! proxy on loopback), so that the throttle on wrong secrets, which would answer a
//! guessing address 429 without looking further, leaves every case its full path.

mod common;

use std::sync::OnceLock;

use common::{fixtures, send};
use hookserver::serde_json::{json, Value};
use hookserver::{webhook_endpoint, Bytes, Json, ServerHandle, WebhookPayload, WebhooksServer};
use proptest::prelude::*;

/// `POST /webhooks/hub`.
#[webhook_endpoint]
async fn hub(payload: WebhookPayload) -> Value {
    json!({ "scope": payload.event.scope })
}

/// `POST /webhooks/any_json`.
#[webhook_endpoint]
fn any_json(value: Json<Value>) -> Value {
    json!({ "object": value.0.is_object() })
}

/// `POST /webhooks/text`.
#[webhook_endpoint]
async fn text(body: String) -> String {
    body.len().to_string()
}

/// `POST /webhooks/raw`.
#[webhook_endpoint]
async fn raw(body: Bytes) -> String {
    body.len().to_string()
}

const SECRET: &str = "prop-secret";

fn base() -> &'static str {
    static SERVER: OnceLock<(ServerHandle, String)> = OnceLock::new();
    &SERVER
        .get_or_init(|| {
            let handle = WebhooksServer::new()
                .host("127.0.0.1")
                .port(0)
                .webhook_secret(SECRET)
                .trusted_proxies(["127.0.0.1".parse().unwrap()])
                .body_limit(64 * 1024)
                .launch_background()
                .unwrap();
            let url = handle.url().to_owned();
            (handle, url)
        })
        .1
}

/// A Hub sample with a few bytes changed, cut short, or both.
fn mutated_sample() -> impl Strategy<Value = Vec<u8>> {
    let samples: Vec<Vec<u8>> = fixtures().into_iter().map(|(_, bytes)| bytes).collect();
    (
        proptest::sample::select(samples),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(mut sample, edits, cut, truncate)| {
            for (at, byte) in edits {
                let i = at.index(sample.len());
                sample[i] = byte;
            }
            if truncate {
                sample.truncate(cut.index(sample.len() + 1));
            }
            sample
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        mutated_sample(),
        // JSON-looking text.
        "[\\[\\]{}\",:0-9a-z \\\\]{0,200}".prop_map(String::into_bytes),
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(vec!["hub", "any_json", "text", "raw"]).prop_map(str::to_owned),
        1 => "[a-zA-Z0-9_%./-]{0,20}",
    ]
}

fn secret() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        6 => Just(Some(SECRET.to_owned())),
        1 => Just(None),
        1 => "[ -~]{0,20}".prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_request_gets_a_2xx_or_4xx_answer(
        body in body(),
        path in path(),
        secret in secret(),
        client in any::<u32>(),
    ) {
        let url = format!("{}/webhooks/{path}", base());
        let client = std::net::Ipv4Addr::from(client).to_string();
        let mut headers = vec![("content-type", "application/json"), ("x-forwarded-for", &client)];
        if let Some(secret) = secret.as_deref() {
            headers.push(("x-webhook-secret", secret));
        }
        let reply = send("POST", &url, &body, &headers);
        prop_assert!((200..500).contains(&reply.status), "{} {}: {}", reply.status, url, reply.body);
        if reply.status >= 400 {
            // Every refusal says why, in JSON.
            let error: Value = hookserver::serde_json::from_str(&reply.body)
                .map_err(|err| TestCaseError::fail(format!("{err}: {:?}", reply.body)))?;
            prop_assert!(error["error"].is_string());
        }
    }
}

/// A dashboard route that sends a delivery (a test, a replay), or any path under `/api/`.
fn dashboard_route() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(vec!["hub", "any_json", "text", "raw", "nope"])
            .prop_map(|name| format!("api/webhooks/{name}/test")),
        2 => (0u64..400).prop_map(|id| format!("api/deliveries/{id}/redeliver")),
        1 => "api/[a-zA-Z0-9_%./-]{0,20}",
    ]
}

/// A test delivery as the page sends it (any text as the payload), or any bytes at all.
fn dashboard_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => body().prop_map(|b| json!({ "body": String::from_utf8_lossy(&b) }).to_string().into_bytes()),
        1 => proptest::sample::select(vec!["discussion.create (hub-docs)", "nope"])
            .prop_map(|s| json!({ "sample": s }).to_string().into_bytes()),
        1 => body(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn any_dashboard_send_gets_a_2xx_or_4xx_answer(
        route in dashboard_route(),
        body in dashboard_body(),
        secret in secret(),
        client in any::<u32>(),
    ) {
        let url = format!("{}/{route}", base());
        let bearer = secret.as_deref().map(|s| format!("Bearer {s}"));
        let client = std::net::Ipv4Addr::from(client).to_string();
        let mut headers = vec![("content-type", "application/json"), ("x-forwarded-for", &client)];
        if let Some(bearer) = bearer.as_deref() {
            headers.push(("authorization", bearer));
        }
        let reply = send("POST", &url, &body, &headers);
        prop_assert!((200..500).contains(&reply.status), "{} {}: {}", reply.status, url, reply.body);
        let answer: Value = hookserver::serde_json::from_str(&reply.body)
            .map_err(|err| TestCaseError::fail(format!("{err}: {:?}", reply.body)))?;
        if reply.status >= 400 {
            prop_assert!(answer["error"].is_string());
        } else {
            // What the handler answered: never a failure of its own.
            let status = answer["delivery"]["status"].as_u64().unwrap_or(0);
            prop_assert!((200..500).contains(&status), "{}: {}", url, answer);
        }
    }
}
