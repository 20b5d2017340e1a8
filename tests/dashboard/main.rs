//! The dashboard over real HTTP: every route, the log's bound, redaction, replays and
//! test deliveries here; the access rules in `access.rs`, the live event stream in
//! `live.rs`.

mod access;
#[path = "../common/mod.rs"]
mod common;
mod live;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{hub_sample, serve, Reply};
use hookserver::serde_json::{json, Value};
use hookserver::{HttpRequest, WebhookPayload, WebhooksServer};

const SECRET: &str = "dashboard-s3cret";

/// Sends a request (following no redirect).
fn call(method: &str, url: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
    common::send(method, url, body, headers)
}

fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    call("GET", url, b"", headers)
}

fn post_json(url: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    call("POST", url, body.to_string().as_bytes(), &all)
}

/// A server with a counting endpoint, an endpoint under a sub-path, and one that
/// echoes what it was sent.
fn start(secret: &str, log: Option<usize>) -> (hookserver::ServerHandle, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let mut app = WebhooksServer::empty().webhook_secret(secret);
    if let Some(log) = log {
        app = app.delivery_log(log);
    }
    app.add_webhook(
        "count",
        move |payload: WebhookPayload, request: HttpRequest| {
            let seen = Arc::clone(&seen);
            async move {
                let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                json!({
                    "n": n,
                    "repo": payload.repo.name,
                    "replay_of": request.header("x-hookserver-replay-of"),
                    "test": request.header("x-hookserver-test"),
                    "secret_seen": request.header("x-webhook-secret").map(|s| s == SECRET),
                })
            }
        },
    )
    .unwrap();
    app.add_webhook("team/deploy", |body: String| {
        format!("{} bytes", body.len())
    })
    .unwrap();
    (serve(app), count)
}

fn deliver(base: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    call("POST", &format!("{base}{path}"), body, &all)
}

fn list(base: &str, auth: &[(&str, &str)]) -> Vec<Value> {
    let answer = get(&format!("{base}/api/deliveries"), auth);
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.json()["deliveries"].as_array().unwrap().clone()
}

#[test]
fn every_route_answers_without_a_secret() {
    let (server, _) = start("", None);
    let base = server.url().to_owned();

    // The page, at / and at /dashboard, with its CSP and its assets.
    for path in ["/", "/dashboard"] {
        let page = get(&format!("{base}{path}"), &[]);
        assert_eq!(page.status, 200);
        assert!(page
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(page.body.contains(&format!("{base}/webhooks/count")));
        assert!(page.body.contains("data-copy="), "a copy button");
        assert!(page.body.contains("id=\"delivery-list\""));
        assert!(page.body.contains("Send a test delivery"));
        assert!(!page.body.contains("<style>"), "nothing inline");
    }
    let css = get(&format!("{base}/assets/hookserver.css"), &[]);
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert!(css.body.contains("prefers-color-scheme: dark"));
    let js = get(&format!("{base}/assets/hookserver.js"), &[]);
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.body.contains("EventSource"));

    // The JSON API.
    let webhooks = get(&format!("{base}/api/webhooks"), &[]).json();
    assert_eq!(webhooks["secret_set"], false);
    assert_eq!(webhooks["delivery_log"], 200);
    assert_eq!(webhooks["webhooks"][0]["path"], "/webhooks/count");
    assert_eq!(
        webhooks["webhooks"][0]["url"],
        format!("{base}/webhooks/count")
    );
    let samples = get(&format!("{base}/api/samples"), &[]).json();
    let samples = samples["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 4);
    for sample in samples {
        let body = sample["body"].as_str().unwrap();
        let parsed = WebhookPayload::from_slice(body.as_bytes());
        assert!(parsed.is_ok(), "{}: {parsed:?}", sample["name"]);
    }
    assert!(list(&base, &[]).is_empty());

    // A delivery shows up with its summary, then in detail.
    let answer = deliver(&base, "/webhooks/count", &hub_sample(), &[]);
    assert_eq!(answer.status, 200);
    let deliveries = list(&base, &[]);
    assert_eq!(deliveries.len(), 1);
    let d = &deliveries[0];
    assert_eq!(d["id"], 1);
    assert_eq!(d["endpoint"], "/webhooks/count");
    assert_eq!(d["scope"], "discussion");
    assert_eq!(d["action"], "create");
    assert_eq!(d["repo"], "gpt2");
    assert_eq!(d["status"], 200);
    assert_eq!(d["kind"], "hub");
    assert!(d["duration_ms"].as_f64().unwrap() >= 0.0);
    // When it arrived, within the test's run (not the epoch, nor a clock read elsewhere).
    let received = humantime::parse_rfc3339(d["received"].as_str().unwrap()).unwrap();
    let ago = std::time::SystemTime::now()
        .duration_since(received)
        .unwrap();
    assert!(
        ago < std::time::Duration::from_secs(120),
        "received {ago:?} ago"
    );
    let detail = get(&format!("{base}/api/deliveries/1"), &[]).json();
    assert_eq!(detail["request"]["method"], "POST");
    assert_eq!(detail["request"]["path"], "/webhooks/count");
    let body = detail["request"]["body"].as_str().unwrap();
    assert!(body.contains("\n  \"event\""), "pretty JSON: {body}");
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap(),
        serde_json::from_slice::<Value>(&hub_sample()).unwrap()
    );
    assert_eq!(detail["answer"]["status"], 200);
    assert!(detail["answer"]["body"].as_str().unwrap().contains("\"n\""));
    assert_eq!(detail["redeliverable"], true);
    let headers = detail["request"]["headers"].as_array().unwrap();
    assert!(headers
        .iter()
        .any(|h| h[0] == "content-type" && h[1] == "application/json"));

    // Bad ids, unknown routes and wrong methods.
    for (path, status) in [
        ("/api/deliveries/99", 404),
        ("/api/deliveries/abc", 404),
        ("/api/deliveries/-1", 404),
        ("/api/nothing", 404),
    ] {
        let answer = get(&format!("{base}{path}"), &[]);
        assert_eq!(answer.status, status, "{path}");
        assert!(answer.json()["error"].is_string(), "{path}");
    }
    for (method, path, allow) in [
        ("POST", "/api/deliveries", "GET, HEAD"),
        ("DELETE", "/api/deliveries/1", "GET, HEAD"),
        ("PUT", "/dashboard", "GET, HEAD"),
        ("GET", "/api/deliveries/1/redeliver", "POST"),
        ("GET", "/api/webhooks/count/test", "POST"),
        ("GET", "/login", "POST"),
    ] {
        let answer = call(method, &format!("{base}{path}"), b"", &[]);
        assert_eq!(answer.status, 405, "{method} {path}");
        assert_eq!(answer.header("allow"), Some(allow), "{method} {path}");
        assert!(answer.json()["error"].is_string());
    }
    let head = call("HEAD", &format!("{base}/api/deliveries"), b"", &[]);
    assert_eq!(head.status, 200);
    server.stop();
}

#[test]
fn the_log_keeps_the_last_n_and_zero_turns_it_off() {
    let (server, _) = start("", Some(3));
    let base = server.url().to_owned();
    for _ in 0..5 {
        assert_eq!(
            deliver(&base, "/webhooks/count", &hub_sample(), &[]).status,
            200
        );
    }
    let ids: Vec<u64> = list(&base, &[])
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [5, 4, 3]);
    let gone = get(&format!("{base}/api/deliveries/2"), &[]);
    assert_eq!(gone.status, 404);
    assert!(gone.json()["error"].as_str().unwrap().contains("last 3"));
    server.stop();

    let (server, count) = start("", Some(0));
    let base = server.url().to_owned();
    assert_eq!(
        deliver(&base, "/webhooks/count", &hub_sample(), &[]).status,
        200
    );
    assert!(list(&base, &[]).is_empty());
    let sent = post_json(
        &format!("{base}/api/webhooks/count/test"),
        &json!({"sample": "discussion.create (hub-docs)"}),
        &[],
    );
    assert_eq!(sent.status, 200, "{sent:?}");
    assert_eq!(sent.json()["kept"], false);
    assert_eq!(sent.json()["delivery"]["status"], 200);
    assert!(list(&base, &[]).is_empty());
    assert_eq!(count.load(Ordering::SeqCst), 2);
    server.stop();
}

#[test]
fn rejected_deliveries_are_recorded_too_and_the_secret_never_shows() {
    let (server, _) = start(SECRET, None);
    let base = server.url().to_owned();
    let auth = format!("Bearer {SECRET}");
    let auth = [("authorization", auth.as_str())];
    // Right secret in the header; right secret in the query; wrong; missing; unknown path.
    assert_eq!(
        deliver(
            &base,
            "/webhooks/count",
            &hub_sample(),
            &[("x-webhook-secret", SECRET)]
        )
        .status,
        200
    );
    let query = format!("/webhooks/count?secret={SECRET}&x=1");
    assert_eq!(deliver(&base, &query, &hub_sample(), &[]).status, 200);
    assert_eq!(
        deliver(
            &base,
            "/webhooks/count",
            &hub_sample(),
            &[("x-webhook-secret", "nope")]
        )
        .status,
        403
    );
    assert_eq!(
        deliver(&base, "/webhooks/count", &hub_sample(), &[]).status,
        401
    );
    assert_eq!(
        deliver(
            &base,
            "/webhooks/nowhere",
            b"{}",
            &[("x-webhook-secret", SECRET)]
        )
        .status,
        404
    );
    let statuses: Vec<u64> = list(&base, &auth)
        .iter()
        .map(|d| d["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [404, 401, 403, 200, 200]);

    let mut everything = get(&format!("{base}/api/deliveries"), &auth).body;
    for id in 1..=5 {
        let detail = get(&format!("{base}/api/deliveries/{id}"), &auth);
        assert_eq!(detail.status, 200);
        everything.push_str(&detail.body);
    }
    assert!(!everything.contains(SECRET), "{everything}");
    let first = get(&format!("{base}/api/deliveries/1"), &auth).json();
    let headers = first["request"]["headers"].as_array().unwrap();
    assert!(headers
        .iter()
        .any(|h| h[0] == "x-webhook-secret" && h[1] == "<redacted>"));
    let second = get(&format!("{base}/api/deliveries/2"), &auth).json();
    assert_eq!(second["request"]["query"], "secret=%3Credacted%3E&x=1");
    // Refused before the body: the body was not read, and cannot be sent again.
    let refused = get(&format!("{base}/api/deliveries/3"), &auth).json();
    assert_eq!(refused["request"]["body"], Value::Null);
    assert_eq!(refused["redeliverable"], false);
    let unknown = get(&format!("{base}/api/deliveries/5"), &auth).json();
    assert_eq!(unknown["endpoint"], "/webhooks/nowhere");
    assert_eq!(unknown["redeliverable"], false);
    server.stop();
}

#[test]
fn redeliver_replays_through_the_same_handler() {
    let (server, count) = start(SECRET, None);
    let base = server.url().to_owned();
    let auth = format!("Bearer {SECRET}");
    let auth = [("authorization", auth.as_str())];
    deliver(
        &base,
        "/webhooks/count",
        &hub_sample(),
        &[("x-webhook-secret", SECRET)],
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);

    let replay = call(
        "POST",
        &format!("{base}/api/deliveries/1/redeliver"),
        b"",
        &auth,
    );
    assert_eq!(replay.status, 200, "{replay:?}");
    let replay = replay.json()["delivery"].clone();
    assert_eq!(replay["id"], 2);
    assert_eq!(replay["kind"], "replay");
    assert_eq!(replay["replay_of"], 1);
    assert_eq!(replay["status"], 200);
    assert_eq!(count.load(Ordering::SeqCst), 2, "the handler ran again");
    let answer: Value = serde_json::from_str(replay["answer"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["n"], 2);
    assert_eq!(answer["repo"], "gpt2");
    assert_eq!(answer["replay_of"], "1");
    assert_eq!(
        answer["secret_seen"], true,
        "the handler sees what the Hub sends"
    );
    assert!(!replay.to_string().contains(SECRET));
    // The replay is in the list, newest first, and can itself be replayed.
    let ids: Vec<u64> = list(&base, &auth)
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [2, 1]);
    let again = call(
        "POST",
        &format!("{base}/api/deliveries/2/redeliver"),
        b"",
        &auth,
    );
    assert_eq!(again.json()["delivery"]["replay_of"], 2);

    // What cannot be replayed: an unknown id, a delivery to no endpoint, a body too long
    // to keep, a delivery whose body was never read.
    assert_eq!(
        call(
            "POST",
            &format!("{base}/api/deliveries/77/redeliver"),
            b"",
            &auth
        )
        .status,
        404
    );
    deliver(
        &base,
        "/webhooks/nowhere",
        b"{}",
        &[("x-webhook-secret", SECRET)],
    );
    let mut long: Value = serde_json::from_slice(&hub_sample()).unwrap();
    long["padding"] = json!("x".repeat(hookserver::KEPT_BODY));
    let long = long.to_string();
    assert_eq!(
        deliver(
            &base,
            "/webhooks/count",
            long.as_bytes(),
            &[("x-webhook-secret", SECRET)]
        )
        .status,
        200
    );
    deliver(&base, "/webhooks/count", &hub_sample(), &[]);
    let cut = get(&format!("{base}/api/deliveries/5"), &auth).json();
    assert_eq!(cut["request"]["body_cut"], true);
    assert_eq!(cut["request"]["body_size"], long.len());
    for id in [4, 5, 6] {
        let refused = call(
            "POST",
            &format!("{base}/api/deliveries/{id}/redeliver"),
            b"",
            &auth,
        );
        assert_eq!(refused.status, 409, "{id}: {refused:?}");
        assert!(refused.json()["error"].is_string());
    }
    server.stop();
}

#[test]
fn test_deliveries_send_samples_or_pasted_json() {
    let (server, count) = start("", None);
    let base = server.url().to_owned();
    let test = |path: &str, body: &Value| post_json(&format!("{base}{path}"), body, &[]);

    let sent = test(
        "/api/webhooks/count/test",
        &json!({"sample": "repo.content.update (hfhub-tests)"}),
    );
    assert_eq!(sent.status, 200, "{sent:?}");
    let d = &sent.json()["delivery"];
    assert_eq!(d["kind"], "test");
    assert_eq!(d["status"], 200);
    assert_eq!(d["scope"], "repo.content");
    let answer: Value = serde_json::from_str(d["answer"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["test"], "1");
    assert_eq!(count.load(Ordering::SeqCst), 1);

    // Pasted text goes as it is: here, not JSON, so the handler's parameter refuses it.
    let bad = test("/api/webhooks/count/test", &json!({"body": "{not json"}));
    assert_eq!(bad.status, 200);
    assert_eq!(bad.json()["delivery"]["status"], 400);
    // An endpoint under a sub-path.
    let deploy = test("/api/webhooks/team/deploy/test", &json!({"body": "12345"}));
    assert_eq!(deploy.json()["delivery"]["answer"]["body"], "5 bytes");
    assert_eq!(
        deploy.json()["delivery"]["endpoint"],
        "/webhooks/team/deploy"
    );

    for (path, body, status) in [
        ("/api/webhooks/nowhere/test", json!({"body": "{}"}), 404),
        ("/api/webhooks/count/test", json!({"sample": "nope"}), 404),
        ("/api/webhooks/count/test", json!({}), 400),
        (
            "/api/webhooks/count/test",
            json!({"sample": "x", "body": "{}"}),
            400,
        ),
        ("/api/webhooks/count/test", json!({"other": 1}), 400),
        ("/api/webhooks/count/test", json!([1, 2]), 400),
    ] {
        let answer = test(path, &body);
        assert_eq!(answer.status, status, "{path} {body}");
        assert!(answer.json()["error"].is_string());
    }
    // Over the body limit (1 MiB here), in JSON like every error.
    let big = "x".repeat(1024 * 1024 + 1);
    let too_big = test("/api/webhooks/count/test", &json!({ "body": big }));
    assert_eq!(too_big.status, 413);
    assert!(too_big.json()["error"]
        .as_str()
        .unwrap()
        .contains("body limit"));
    let huge = test(
        "/api/webhooks/count/test",
        &json!({ "body": big.repeat(3) }),
    );
    assert_eq!(huge.status, 413);
    assert!(huge.json()["error"].is_string());
    let form = call(
        "POST",
        &format!("{base}/api/webhooks/count/test"),
        b"body=x",
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(form.status, 415);
    let ids: Vec<u64> = list(&base, &[])
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [3, 2, 1]);
    server.stop();
}

#[test]
fn a_custom_ui_replaces_the_landing_page_but_not_the_dashboard() {
    let mut app = WebhooksServer::empty()
        .webhook_secret("")
        .ui("<h1>My bot</h1>");
    app.add_webhook("ping", || async { "pong" }).unwrap();
    let server = serve(app);
    let base = server.url().to_owned();
    let landing = get(&format!("{base}/"), &[]);
    assert_eq!(landing.body, "<h1>My bot</h1>");
    assert!(landing.header("content-security-policy").is_none());
    let dashboard = get(&format!("{base}/dashboard"), &[]);
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.body.contains("delivery-list"));
    assert!(dashboard.body.contains("/webhooks/ping"));
    server.stop();
}

#[test]
fn configure_brings_the_dashboard_to_an_app_of_ones_own() {
    use hookserver::actix_web::{test, App};
    let mut app = WebhooksServer::empty().webhook_secret("");
    app.add_webhook("ping", || async { "pong" }).unwrap();
    let configure = app.configure().unwrap();
    hookserver::actix_web::rt::System::new().block_on(async move {
        let service = test::init_service(App::new().configure(configure)).await;
        let request = test::TestRequest::post().uri("/webhooks/ping").to_request();
        assert_eq!(test::call_and_read_body(&service, request).await, "pong");
        let request = test::TestRequest::get().uri("/api/deliveries").to_request();
        let body: Value = test::call_and_read_body_json(&service, request).await;
        assert_eq!(body["deliveries"][0]["endpoint"], "/webhooks/ping");
        let request = test::TestRequest::post()
            .uri("/api/deliveries/1/redeliver")
            .to_request();
        let body: Value = test::call_and_read_body_json(&service, request).await;
        assert_eq!(body["delivery"]["answer"]["body"], "pong");
    });
}

#[test]
fn the_samples_api_serves_every_sample_file() {
    let server = serve(WebhooksServer::empty());
    let base = server.url().to_owned();
    let served = get(&format!("{base}/api/samples"), &[]).json();
    let mut served: Vec<String> = served["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sample| sample["body"].as_str().unwrap().to_owned())
        .collect();
    served.sort();
    let mut files: Vec<String> = common::fixtures()
        .into_iter()
        .map(|(_, bytes)| String::from_utf8(bytes).unwrap())
        .collect();
    files.sort();
    assert_eq!(served, files, "hookserver/samples/ and /api/samples differ");
}
