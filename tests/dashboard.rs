//! The dashboard over real HTTP: every route, the access rules, the log's bound,
//! redaction, replays, test deliveries and the live event stream.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    assert!(d["received"].as_str().unwrap().ends_with('Z'));
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
fn with_a_secret_the_dashboard_asks_for_it() {
    let (server, _) = start(SECRET, None);
    let base = server.url().to_owned();

    // The public page: the endpoint list and a login form, no deliveries.
    let page = get(&format!("{base}/"), &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&format!("{base}/webhooks/count")));
    assert!(page.body.contains("action=\"/login\""));
    assert!(!page.body.contains("delivery-list"));
    assert!(!page.body.contains("Send a test delivery"));
    assert!(!page.body.contains(SECRET));

    // The API refuses without the secret, and with a wrong one.
    for path in [
        "/api/webhooks",
        "/api/samples",
        "/api/deliveries",
        "/api/deliveries/1",
        "/api/events",
    ] {
        let missing = get(&format!("{base}{path}"), &[]);
        assert_eq!(missing.status, 401, "{path}");
        assert!(missing.header("www-authenticate").is_some());
        let wrong = get(
            &format!("{base}{path}"),
            &[("authorization", "Bearer nope")],
        );
        assert_eq!(wrong.status, 403, "{path}");
        assert_eq!(wrong.json()["error"], "Invalid webhook secret.");
    }
    for path in ["/api/deliveries/1/redeliver", "/api/webhooks/count/test"] {
        let missing = post_json(&format!("{base}{path}"), &json!({"body": "{}"}), &[]);
        assert_eq!(missing.status, 401, "{path}");
    }
    let bearer = format!("Bearer {SECRET}");
    assert_eq!(
        get(
            &format!("{base}/api/deliveries"),
            &[("authorization", &bearer)]
        )
        .status,
        200
    );

    // The login form: a wrong secret, then the right one, then the cookie.
    let form = |secret: &str| format!("secret={secret}&next=%2Fdashboard");
    let wrong = call(
        "POST",
        &format!("{base}/login"),
        form("nope").as_bytes(),
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(wrong.status, 403);
    assert!(wrong.body.contains("Wrong secret."));
    assert!(wrong.header("set-cookie").is_none());
    let right = call(
        "POST",
        &format!("{base}/login"),
        form(SECRET).as_bytes(),
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(right.status, 303);
    assert_eq!(right.header("location"), Some("/dashboard"));
    let set_cookie = right.header("set-cookie").unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");
    assert!(
        !set_cookie.contains(SECRET),
        "the cookie holds a token, not the secret"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("hookserver_session="));
    let with_cookie = [("cookie", cookie.as_str())];
    let full = get(&format!("{base}/dashboard"), &with_cookie);
    assert!(full.body.contains("delivery-list"));
    assert!(full.body.contains("action=\"/logout\""));
    assert_eq!(
        get(&format!("{base}/api/deliveries"), &with_cookie).status,
        200
    );
    // A forged or stale token is no session.
    let forged = [("cookie", "hookserver_session=0000")];
    assert_eq!(get(&format!("{base}/api/deliveries"), &forged).status, 401);
    assert!(!get(&format!("{base}/"), &forged)
        .body
        .contains("delivery-list"));

    // Logging out removes the cookie.
    let out = call("POST", &format!("{base}/logout"), b"next=%2F", &with_cookie);
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/"));
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    // An open redirect is not possible.
    let away = call(
        "POST",
        &format!("{base}/login"),
        format!("secret={SECRET}&next=https%3A%2F%2Fevil.example%2F").as_bytes(),
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(away.header("location"), Some("/"));
    // A login form far too large is refused, in JSON.
    let flood = format!("secret={}", "x".repeat(64 * 1024));
    let flood = call(
        "POST",
        &format!("{base}/login"),
        flood.as_bytes(),
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(flood.status, 413);
    assert!(flood.json()["error"].is_string());
    server.stop();
}

#[test]
fn cross_site_requests_are_refused() {
    let (server, count) = start("", None);
    let base = server.url().to_owned();
    deliver(&base, "/webhooks/count", &hub_sample(), &[]);
    let host = base.trim_start_matches("http://").to_owned();
    let own_origin = format!("http://{host}");
    let body = json!({"sample": "discussion.create (hub-docs)"});
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        for path in ["/api/deliveries/1/redeliver", "/api/webhooks/count/test"] {
            let answer = post_json(&format!("{base}{path}"), &body, &[(name, value)]);
            assert_eq!(answer.status, 403, "{path} with {name}: {value}");
            assert!(answer.json()["error"]
                .as_str()
                .unwrap()
                .starts_with("cross-site request refused"));
        }
        let login = call(
            "POST",
            &format!("{base}/login"),
            b"secret=x",
            &[(name, value)],
        );
        assert_eq!(login.status, 403, "login with {name}: {value}");
    }
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "no cross-site send reached the handler"
    );
    // The page's own requests pass.
    let own = post_json(
        &format!("{base}/api/deliveries/1/redeliver"),
        &body,
        &[("origin", &own_origin), ("sec-fetch-site", "same-origin")],
    );
    assert_eq!(own.status, 200, "{own:?}");
    assert_eq!(count.load(Ordering::SeqCst), 2);
    server.stop();
}

#[test]
fn live_events_bring_each_delivery_and_end_when_the_server_stops() {
    let mut app = WebhooksServer::empty()
        .webhook_secret(SECRET)
        // Were the stream left open, a stop would wait this long for it.
        .shutdown_timeout(Duration::from_secs(300));
    app.add_webhook("count", |_: WebhookPayload| async {})
        .unwrap();
    let server = serve(app);
    let base = server.url().to_owned();
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {SECRET}\r\n\r\n",
        server.addr()
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let mut head = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    // Read until the stream's greeting, so the subscription is in place.
    let mut seen = String::new();
    while !seen.contains(": live") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0);
        seen.push_str(&line);
    }
    for _ in 0..2 {
        deliver(
            &base,
            "/webhooks/count",
            &hub_sample(),
            &[("x-webhook-secret", SECRET)],
        );
    }
    let mut events = Vec::new();
    while events.len() < 2 {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended");
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            events.push(serde_json::from_str::<Value>(data).unwrap());
        }
    }
    assert_eq!(events[0]["id"], 1);
    assert_eq!(events[1]["id"], 2);
    assert_eq!(events[1]["scope"], "discussion");
    assert!(!seen.contains(SECRET));
    // Stopping ends the stream, and the stop does not wait for it (the bound is far
    // below the 300 s shutdown timeout, far above a stop's usual milliseconds).
    let (stopped_tx, stopped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        server.stop();
        let _ = stopped_tx.send(());
    });
    assert!(
        stopped.recv_timeout(Duration::from_secs(60)).is_ok(),
        "the stop waited for the open event stream"
    );
    let mut rest = Vec::new();
    let end = std::io::Read::read_to_end(&mut reader, &mut rest);
    assert!(end.is_ok(), "the stream did not end: {end:?}");
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

/// The status of `GET path` sent with this `Host` header (raw, so nothing rewrites it).
fn status_with_host(addr: std::net::SocketAddr, path: &str, host: &str, extra: &str) -> u16 {
    let mut headers = vec![("Host", host)];
    headers.extend(extra.split("\r\n").filter_map(|line| line.split_once(": ")));
    common::raw(addr, "GET", path, &headers, b"").status
}

#[test]
fn without_a_secret_the_dashboard_answers_only_on_its_own_hosts() {
    let (server, _) = start("", None);
    let addr = server.addr();
    let port = addr.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "[::1]".to_owned(),
        "127.0.0.1".to_owned(),
    ] {
        assert_eq!(
            status_with_host(addr, "/api/deliveries", &host, ""),
            200,
            "{host}"
        );
    }
    // A name pointed at 127.0.0.1 by someone else's DNS (rebinding) gets nothing.
    for host in [
        "evil.example",
        "evil.example:7860",
        "localhost.evil.example",
    ] {
        assert_eq!(
            status_with_host(addr, "/api/deliveries", host, ""),
            403,
            "{host}"
        );
        assert_eq!(
            status_with_host(addr, "/api/events", host, ""),
            403,
            "{host}"
        );
    }
    // The webhooks themselves are not the dashboard's: they answer on any host.
    assert_eq!(status_with_host(addr, "/", "evil.example", ""), 200);
    server.stop();

    // With a secret, the secret decides, whatever the host.
    let (server, _) = start(SECRET, None);
    let bearer = format!("Authorization: Bearer {SECRET}\r\n");
    assert_eq!(
        status_with_host(server.addr(), "/api/deliveries", "bot.example.com", &bearer),
        200
    );
    assert_eq!(
        status_with_host(server.addr(), "/api/deliveries", "bot.example.com", ""),
        401
    );
    // Spaces around the bearer's secret do not matter; an empty one is wrong.
    let spaced = format!("Authorization: Bearer   {SECRET}  \r\n");
    assert_eq!(
        status_with_host(server.addr(), "/api/deliveries", "bot.example.com", &spaced),
        200
    );
    let empty = "Authorization: Bearer    \r\n";
    assert_eq!(
        status_with_host(server.addr(), "/api/deliveries", "bot.example.com", empty),
        403
    );
    server.stop();
}
