//! The security review's findings, each over real HTTP on loopback: private deliveries
//! without a secret, real sessions, throttled guessing, cross-site requests to the
//! endpoints, the dashboard's memory bound, and the smaller points (Origin's scheme, a
//! proxy's Basic auth, nosniff).

mod common;

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

fn cookie_of(answer: &common::Raw) -> String {
    let set = answer
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no cookie: {answer:?}"));
    set.split(';').next().unwrap().to_owned()
}

#[test]
fn a_login_is_a_random_session_that_expires_and_ends_at_logout() {
    let app = WebhooksServer::empty()
        .webhook_secret(SECRET)
        .session_ttl(Duration::from_secs(2));
    let (server, _) = counting(app);
    let addr = server.addr();
    let host = local(addr);
    let deliveries = |cookie: &str| {
        raw(
            addr,
            "GET",
            "/api/deliveries",
            &[("Host", &host), ("Cookie", cookie)],
            b"",
        )
        .status
    };
    let first = login(addr, &host, SECRET, &[]);
    assert_eq!(first.status, 303);
    let set = first.header("set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(set.contains("Max-Age=2"), "{set}");
    let a = cookie_of(&first);
    let b = cookie_of(&login(addr, &host, SECRET, &[]));
    // Random, not derived from the secret: two logins, two sessions.
    assert_ne!(a, b);
    let value = a.strip_prefix("hookserver_session=").unwrap();
    assert_eq!(value.len(), 64);
    assert!(value.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(deliveries(&a), 200);
    assert_eq!(deliveries(&b), 200);
    // Logout ends that session on the server, not only in the browser.
    let out = raw(
        addr,
        "POST",
        "/logout",
        &[("Host", &host), ("Cookie", &a)],
        b"next=%2F",
    );
    assert_eq!(out.status, 303);
    assert_eq!(deliveries(&a), 401);
    assert_eq!(deliveries(&b), 200);
    // And every session expires.
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(deliveries(&b), 401);

    // Over HTTPS (behind a proxy) the cookie is `__Host-` and Secure.
    let https = login(addr, &host, SECRET, &[("X-Forwarded-Proto", "https")]);
    let set = https.header("set-cookie").unwrap();
    assert!(set.starts_with("__Host-hookserver_session="), "{set}");
    assert!(set.contains("Secure") && set.contains("Path=/"), "{set}");
    assert!(!set.contains("Domain"), "{set}");
    // Over plain HTTP to another host (a tunnel), no login: the secret would travel in
    // clear. The page says so and offers the bearer.
    let tunnel = login(addr, "bore.pub:40123", SECRET, &[]);
    assert_eq!(tunnel.status, 403);
    assert!(tunnel.header("set-cookie").is_none());
    assert!(tunnel.body.contains("in clear"), "{}", tunnel.body);
    assert!(tunnel.body.contains("Authorization: Bearer"));
    let page = raw(addr, "GET", "/", &[("Host", "bore.pub:40123")], b"");
    assert!(!page.body.contains("action=\"/login\""));
    assert!(page.body.contains("in clear"));
    // The bearer works from anywhere.
    let bearer = format!("Bearer {SECRET}");
    let from_tunnel = raw(
        addr,
        "GET",
        "/api/deliveries",
        &[("Host", "bore.pub:40123"), ("Authorization", &bearer)],
        b"",
    );
    assert_eq!(from_tunnel.status, 200);
    server.stop();
}

#[test]
fn wrong_secrets_are_throttled_per_address_and_the_right_one_is_never_held() {
    // 127.0.0.1 is named a proxy, so that X-Forwarded-For says who each client is.
    let app = WebhooksServer::empty()
        .webhook_secret(SECRET)
        .trusted_proxies(["127.0.0.1".parse().unwrap()]);
    let (server, count) = counting(app);
    let addr = server.addr();
    let guesser = [("X-Forwarded-For", "198.51.100.1")];
    let hub = [("X-Forwarded-For", "198.51.100.2")];
    let with = |client: &[(&'static str, &'static str)], secret: &'static str| {
        let mut headers = client.to_vec();
        headers.push(("X-Webhook-Secret", secret));
        deliver(addr, &headers)
    };
    let mut refused = 0;
    let mut throttled = None;
    for n in 0..40 {
        let answer = with(&guesser, "guess");
        match answer.status {
            403 => refused += 1,
            429 => {
                throttled = Some(answer);
                assert!(n >= 15, "throttled after {n}");
                break;
            }
            other => panic!("{other}: {}", answer.body),
        }
    }
    let throttled = throttled.expect("the guesser is throttled");
    let retry: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3).contains(&retry), "{retry}");
    assert!(throttled.json()["error"]
        .as_str()
        .unwrap()
        .starts_with("too many wrong secrets"));
    // Throttled, the guesser's secrets are not even compared: the right one is refused
    // too, so a right guess tells nothing.
    assert_eq!(with(&guesser, SECRET).status, 429);
    // Another address with the right secret passes at once, and the guesser's wrong
    // secrets on the dashboard (bearer, login) are refused the same way.
    let started = Instant::now();
    assert_eq!(with(&hub, SECRET).status, 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    let host = local(addr);
    let bearer = raw(
        addr,
        "GET",
        "/api/deliveries",
        &[
            ("Host", &host),
            ("X-Forwarded-For", "198.51.100.1"),
            ("Authorization", "Bearer guess"),
        ],
        b"",
    );
    assert_eq!(bearer.status, 429);
    assert!(bearer.header("retry-after").is_some());
    let form = login(
        addr,
        &host,
        "guess",
        &[
            ("X-Forwarded-For", "198.51.100.1"),
            ("X-Forwarded-Proto", "https"),
        ],
    );
    assert_eq!(form.status, 429);
    assert!(form.body.contains("Too many wrong secrets"));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(refused >= 15);

    // The budget refills: one more guess after a few seconds.
    std::thread::sleep(Duration::from_secs(retry));
    assert_eq!(with(&guesser, "guess").status, 403);
    assert_eq!(with(&guesser, "guess").status, 429);

    // A login's and a bearer's wrong secrets count as well.
    let other = [("X-Forwarded-For", "198.51.100.3")];
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let mut headers = vec![("Host", host.as_str()), ("Authorization", "Bearer guess")];
        headers.extend_from_slice(&other);
        statuses.push(raw(addr, "GET", "/api/deliveries", &headers, b"").status);
    }
    assert!(
        statuses.contains(&403) && statuses.ends_with(&[429]),
        "{statuses:?}"
    );
    server.stop();
}

#[test]
fn each_burst_of_wrong_secrets_is_logged_once_with_the_address() {
    let bot = Bot::start(
        "trigger_training",
        &[
            ("WEBHOOK_SECRET", "short"),
            ("HOOKSERVER_TRUSTED_PROXIES", "127.0.0.1"),
        ],
    );
    let url = bot.url_of("/webhooks/trigger_training");
    for _ in 0..30 {
        let answer = common::post(
            &url,
            &hub_sample(),
            &[
                ("x-webhook-secret", "guess"),
                ("x-forwarded-for", "198.51.100.9"),
            ],
        );
        assert!(matches!(answer.status, 403 | 429), "{}", answer.status);
    }
    let (code, stderr) = bot.stop_with("TERM");
    assert_eq!(code, Some(0));
    assert!(
        stderr.contains("warning: the webhook secret is shorter than 16 characters"),
        "{stderr}"
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("client=198.51.100.9"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].contains("wrong secret") && lines[0].contains("webhook secret"));
    assert!(lines[1].contains("too many wrong secrets"));
    assert!(!stderr.contains("wrong-Value-7f3a"));
}

#[test]
fn a_web_page_cannot_fire_a_webhook_with_or_without_a_secret() {
    for secret in ["", SECRET] {
        let (server, count) = counting(WebhooksServer::empty().webhook_secret(secret));
        let addr = server.addr();
        let with_secret = |extra: (&'static str, &'static str)| {
            let mut headers = vec![extra];
            if !secret.is_empty() {
                headers.push(("X-Webhook-Secret", SECRET));
            }
            deliver(addr, &headers)
        };
        for header in [
            ("Origin", "https://evil.example"),
            ("Origin", "null"),
            ("Origin", "http://127.0.0.1:9"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Sec-Fetch-Site", "same-site"),
        ] {
            let answer = with_secret(header);
            assert_eq!(answer.status, 403, "{header:?}");
            assert!(answer.json()["error"]
                .as_str()
                .unwrap()
                .starts_with("cross-site request refused"));
        }
        assert_eq!(count.load(Ordering::SeqCst), 0);
        // What the Hub sends, and what a browser says of a typed URL, pass.
        assert_eq!(with_secret(("Sec-Fetch-Site", "none")).status, 200);
        assert_eq!(with_secret(("User-Agent", "huggingface-hub")).status, 200);
        assert_eq!(count.load(Ordering::SeqCst), 2);
        server.stop();
    }
}

/// Opens `GET /api/events`; the connection, and the status it was answered.
fn open_stream(addr: SocketAddr) -> (TcpStream, u16) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {}\r\n\r\n",
        local(addr)
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut line)
        .unwrap();
    let status = line[9..12].parse().unwrap();
    (stream, status)
}

#[test]
fn the_dashboard_stays_within_its_bounds() {
    let app = WebhooksServer::empty().webhook_secret("").event_streams(3);
    let (server, _) = counting(app.delivery_log(50));
    let addr = server.addr();
    let host = local(addr);
    // Refused requests with 120 KiB of headers each: kept as a summary.
    let big = "h".repeat(4000);
    let mut headers: Vec<(String, String)> = (0..30)
        .map(|n| (format!("X-Big-{n}"), big.clone()))
        .collect();
    headers.push(("Host".to_owned(), host.clone()));
    headers.push(("Origin".to_owned(), "https://evil.example".to_owned()));
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for _ in 0..80 {
        assert_eq!(
            raw(addr, "POST", "/webhooks/hook", &headers, &hub_sample()).status,
            403
        );
    }
    let list = raw(addr, "GET", "/api/deliveries", &[("Host", &host)], b"").json();
    assert_eq!(list["deliveries"].as_array().unwrap().len(), 50);
    let detail = raw(addr, "GET", "/api/deliveries/80", &[("Host", &host)], b"").json();
    assert_eq!(detail["client"], "127.0.0.1");
    assert_eq!(detail["request"]["headers_cut"], true);
    assert!(detail["request"]["body"].is_null());
    let kept: usize = detail["request"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_str().unwrap().len() + pair[1].as_str().unwrap().len())
        .sum();
    assert!(kept <= hookserver::KEPT_REFUSED_HEADERS, "{kept}");

    // Accepted deliveries with big headers and bodies, from 8 connections at once: the
    // log never holds more than its capacity, nor more memory than its bound.
    let body = format!(
        r#"{{"event":{{"action":"create","scope":"discussion"}},"repo":{{"type":"model","name":"x","id":"1","private":false,"url":{{"web":"w"}},"owner":{{"id":"o"}}}},"webhook":{{"id":"w","version":3}},"pad":"{}"}}"#,
        "p".repeat(100_000)
    );
    let mut accepted: Vec<(&str, &str)> = headers[..30].to_vec();
    accepted.push(("Host", &host));
    accepted.push(("Content-Type", "application/json"));
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..25 {
                    let answer = raw(addr, "POST", "/webhooks/hook", &accepted, body.as_bytes());
                    assert_eq!(answer.status, 200, "{}", answer.body);
                }
            });
        }
        scope.spawn(|| {
            for _ in 0..40 {
                let list = raw(addr, "GET", "/api/deliveries", &[("Host", &host)], b"").json();
                assert!(list["deliveries"].as_array().unwrap().len() <= 50);
            }
        });
    });
    let list = raw(addr, "GET", "/api/deliveries", &[("Host", &host)], b"").json();
    let memory = &list["memory"];
    let (bytes, bound) = (
        memory["bytes"].as_u64().unwrap(),
        memory["bound"].as_u64().unwrap(),
    );
    assert!(bytes <= bound, "{bytes} > {bound}");
    assert_eq!(bound, (50 + 16 + 4) * hookserver::RECORD_BOUND as u64);
    assert!(bytes > 50 * 70 * 1024, "the records were kept: {bytes}");

    // A body nested 120 deep comes back about its own size, not as megabytes.
    let nested = format!("{}{}", "[".repeat(120), "]".repeat(120)).repeat(250);
    let deep = format!(
        r#"{{"event":{{"action":"create","scope":"x"}},"n":[{}]}}"#,
        nested.replace("][", "],[")
    );
    let answer = raw(
        addr,
        "POST",
        "/webhooks/hook",
        &[("Host", &host), ("Content-Type", "application/json")],
        deep.as_bytes(),
    );
    assert_eq!(answer.status, 422);
    let newest = list_newest(addr, &host);
    let detail = raw(
        addr,
        "GET",
        &format!("/api/deliveries/{newest}"),
        &[("Host", &host)],
        b"",
    );
    assert!(
        detail.body.len() < 2 * deep.len() + 4096,
        "{} for {}",
        detail.body.len(),
        deep.len()
    );

    // Live event streams are capped; a closed one is noticed within seconds.
    let (first, status) = open_stream(addr);
    assert_eq!(status, 200);
    let (_second, _) = open_stream(addr);
    let (_third, _) = open_stream(addr);
    let refused = raw(addr, "GET", "/api/events", &[("Host", &host)], b"");
    assert_eq!(refused.status, 503);
    assert!(refused.header("retry-after").is_some());
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_stream, status) = open_stream(addr);
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream was never noticed"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    server.stop();
}

fn list_newest(addr: SocketAddr, host: &str) -> u64 {
    let list = raw(addr, "GET", "/api/deliveries", &[("Host", host)], b"").json();
    list["deliveries"][0]["id"].as_u64().unwrap()
}

#[test]
fn the_smaller_points_hold() {
    let (server, _) = counting(WebhooksServer::empty().webhook_secret(SECRET));
    let addr = server.addr();
    let host = local(addr);
    let secret = [("X-Webhook-Secret", SECRET)];
    assert_eq!(deliver(addr, &secret).status, 200);
    let session = cookie_of(&login(addr, &host, SECRET, &[]));

    // An HTTPS page is not this plain-HTTP server, whatever its host.
    let body = b"{}";
    for origin in [format!("https://{host}"), format!("http://{host}")] {
        let answer = raw(
            addr,
            "POST",
            "/api/deliveries/1/redeliver",
            &[("Host", &host), ("Cookie", &session), ("Origin", &origin)],
            body,
        );
        let expected = if origin.starts_with("https") {
            403
        } else {
            200
        };
        assert_eq!(answer.status, expected, "{origin}: {}", answer.body);
    }
    // A proxy's Basic auth beside a valid session cookie: the cookie decides.
    let basic = raw(
        addr,
        "GET",
        "/api/deliveries",
        &[
            ("Host", &host),
            ("Cookie", &session),
            ("Authorization", "Basic dXNlcjpwYXNz"),
        ],
        b"",
    );
    assert_eq!(basic.status, 200, "{}", basic.body);
    // Every JSON answer says nosniff: the API, its errors, a refused delivery, health.
    for (method, path, headers) in [
        (
            "GET",
            "/api/deliveries",
            vec![("Host", host.as_str()), ("Cookie", session.as_str())],
        ),
        ("GET", "/api/deliveries", vec![("Host", host.as_str())]),
        ("GET", "/api/nowhere", vec![("Host", host.as_str())]),
        ("POST", "/webhooks/hook", vec![("Host", host.as_str())]),
        ("GET", "/healthz", vec![("Host", host.as_str())]),
    ] {
        let answer = raw(addr, method, path, &headers, b"");
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{method} {path}"
        );
        let _: Value = answer.json();
    }
    server.stop();
}
