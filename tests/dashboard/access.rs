//! Who may use the dashboard: the secret (a login, then a session), cross-site requests,
//! and, without a secret, only the server's own host names.

use std::sync::atomic::Ordering;

use hookserver::serde_json::json;

use crate::common::{self, hub_sample};
use crate::{call, deliver, get, post_json, start, SECRET};

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
