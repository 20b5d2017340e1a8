//! Cross-site requests to the endpoints, the dashboard's memory and stream bounds, and
//! the smaller points (Origin's scheme, a proxy's Basic auth, nosniff).

use super::*;

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
