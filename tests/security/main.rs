//! The security review's findings, each over real HTTP on loopback: private deliveries
//! without a secret, real sessions, throttled guessing, cross-site requests to the
//! endpoints, the dashboard's memory bound, and the smaller points (Origin's scheme, a
//! proxy's Basic auth, nosniff).
//!
//! Here: private deliveries without a secret; sessions and throttled guessing in
//! `guessing.rs`; cross-site requests, the dashboard's bounds and the smaller points in
//! `bounds.rs`.

mod bounds;
#[path = "../common/mod.rs"]
mod common;
mod guessing;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::bot::Bot;
use common::{hub_sample, raw, serve};
use hookserver::serde_json::{json, Value};
use hookserver::{WebhookPayload, WebhooksServer};

const SECRET: &str = "security-s3cret-0123456789";

/// A server with a counting endpoint `hook`.
fn counting(app: WebhooksServer) -> (hookserver::ServerHandle, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let mut app = app;
    app.add_webhook("hook", move |_: WebhookPayload| {
        let seen = Arc::clone(&seen);
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            json!({"ok": true})
        }
    })
    .unwrap();
    (serve(app), count)
}

fn local(addr: SocketAddr) -> String {
    format!("127.0.0.1:{}", addr.port())
}

fn deliver(addr: SocketAddr, extra: &[(&str, &str)]) -> common::Raw {
    let host = local(addr);
    let mut headers = vec![
        ("Host", host.as_str()),
        ("Content-Type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    raw(addr, "POST", "/webhooks/hook", &headers, &hub_sample())
}

const DASHBOARD_READS: [&str; 4] = [
    "/api/deliveries",
    "/api/deliveries/1",
    "/api/webhooks",
    "/api/samples",
];

#[test]
fn without_a_secret_the_deliveries_stay_on_this_machine() {
    let (server, count) = counting(WebhooksServer::empty().webhook_secret(""));
    let addr = server.addr();
    assert_eq!(deliver(addr, &[]).status, 200);
    let port = addr.port();
    // A Space's host, a tunnel's, any IP address, a rebinding name; or a proxy in between.
    let elsewhere = [
        vec![("Host", "me-bot.hf.space".to_owned())],
        vec![("Host", format!("203.0.113.7:{port}"))],
        vec![("Host", "bore.pub:40123".to_owned())],
        vec![("Host", "evil.example".to_owned())],
        vec![
            ("Host", format!("127.0.0.1:{port}")),
            ("X-Forwarded-For", "203.0.113.7".to_owned()),
        ],
    ];
    for headers in &elsewhere {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        for path in DASHBOARD_READS.iter().chain(&["/api/events"]) {
            let answer = raw(addr, "GET", path, &headers, b"");
            assert_eq!(answer.status, 403, "{path} {headers:?}");
            let error = answer.json()["error"].as_str().unwrap().to_owned();
            assert!(error.contains("set WEBHOOK_SECRET"), "{error}");
            assert!(!answer.body.contains("gpt2"));
        }
        for path in ["/api/deliveries/1/redeliver", "/api/webhooks/hook/test"] {
            let mut with_json = headers.clone();
            with_json.push(("Content-Type", "application/json"));
            let body = br#"{"sample": "discussion.create (hub-docs)"}"#;
            assert_eq!(
                raw(addr, "POST", path, &with_json, body).status,
                403,
                "{path}"
            );
        }
        // The page lists the endpoints and says how to see the deliveries.
        let page = raw(addr, "GET", "/", &headers, b"");
        assert_eq!(page.status, 200);
        assert!(page.body.contains("/webhooks/hook"));
        assert!(page
            .body
            .contains("shown only on the machine the bot runs on"));
        assert!(!page.body.contains("delivery-list"));
    }
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "no send reached the handler"
    );
    // On this machine, by its loopback names, everything answers.
    for host in [local(addr), format!("localhost:{port}"), "[::1]".to_owned()] {
        for path in DASHBOARD_READS {
            assert_eq!(
                raw(addr, "GET", path, &[("Host", &host)], b"").status,
                200,
                "{host}{path}"
            );
        }
    }
    server.stop();
}

#[test]
fn on_a_space_without_a_secret_the_deliveries_are_not_public() {
    // The bot as it runs on a Space (its proxy in front), reached on loopback.
    let port = common::free_port();
    let bot = Bot::start(
        "trigger_training",
        &[
            ("SPACE_ID", "me/bot"),
            ("SPACE_HOST", "me-bot.hf.space"),
            ("HOOKSERVER_PORT", &port.to_string()),
        ],
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let space = [
        ("Host", "me-bot.hf.space"),
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-Proto", "https"),
    ];
    let mut headers = space.to_vec();
    headers.push(("Content-Type", "application/json"));
    assert_eq!(
        raw(
            addr,
            "POST",
            "/webhooks/trigger_training",
            &headers,
            &hub_sample()
        )
        .status,
        200
    );
    for path in DASHBOARD_READS {
        assert_eq!(raw(addr, "GET", path, &space, b"").status, 403, "{path}");
    }
    let body = br#"{"sample": "discussion.create (hub-docs)"}"#;
    assert_eq!(
        raw(
            addr,
            "POST",
            "/api/webhooks/trigger_training/test",
            &headers,
            body
        )
        .status,
        403
    );
    let (code, _) = bot.stop_with("TERM");
    assert_eq!(code, Some(0));
}

/// Logs in with `secret` (as if over `scheme`); the answer.
fn login(addr: SocketAddr, host: &str, secret: &str, extra: &[(&str, &str)]) -> common::Raw {
    let mut headers = vec![
        ("Host", host),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    headers.extend_from_slice(extra);
    raw(
        addr,
        "POST",
        "/login",
        &headers,
        format!("secret={secret}&next=%2F").as_bytes(),
    )
}

/// The session cookie an answer sets (`name=value`).
fn cookie_of(answer: &common::Raw) -> String {
    let set = answer
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no cookie: {answer:?}"));
    set.split(';').next().unwrap().to_owned()
}
