//! Sessions and guessing: a login is a random session that expires and ends at logout;
//! wrong secrets are throttled per address, and each burst is logged once.

use super::*;

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
