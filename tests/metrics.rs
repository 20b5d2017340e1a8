//! `GET /metrics` over HTTP: the dashboard's access rules, and the series a delivery,
//! an ignored one, a duplicate and a queued attempt leave.

mod common;

use std::time::{Duration, Instant};

use common::{fixture, get, post, send};
use hookserver::{Filter, WebhooksServer};

const SECRET: &str = "metrics-secret-0123456789";

#[test]
fn metrics_count_deliveries_ignored_duplicates_attempts_and_the_inbox() {
    let dir = std::env::temp_dir().join(format!("hookserver-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut app = WebhooksServer::empty()
        .webhook_secret(SECRET)
        .inbox(dir.join("inbox.redb").display().to_string());
    app.add_webhook("hello", || async { "hi" }).unwrap();
    app.filter("hello", Filter::new().scope(["discussion"]))
        .unwrap();
    app.add_queued_webhook("later", || async {}).unwrap();
    let server = common::serve(app);
    let base = server.url().to_owned();
    let auth = [("x-webhook-secret", SECRET)];
    let discussion = fixture("discussion.create.hub-docs.json");
    assert_eq!(
        post(&format!("{base}/webhooks/hello"), &discussion, &auth).status,
        200
    );
    let ignored = post(
        &format!("{base}/webhooks/hello"),
        &fixture("repo.content.update.hfhub-tests.json"),
        &auth,
    );
    assert!(ignored.body.contains("ignored"), "{}", ignored.body);
    assert_eq!(
        post(&format!("{base}/webhooks/nope"), &discussion, &auth).status,
        404
    );
    let with_id = [auth[0], ("webhook-id", "m-1")];
    assert_eq!(
        post(&format!("{base}/webhooks/later"), &discussion, &with_id).status,
        202
    );
    assert_eq!(
        post(&format!("{base}/webhooks/later"), &discussion, &with_id).status,
        200
    );

    // The dashboard's rules: the secret as a bearer token (a scraper's way).
    let url = format!("{base}/metrics");
    assert_eq!(get(&url).status, 401);
    let bearer = [("authorization", format!("Bearer {SECRET}"))];
    let bearer: Vec<(&str, &str)> = bearer.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let reply = send("GET", &url, b"", &bearer);
        assert_eq!(reply.status, 200);
        assert!(reply
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("application/openmetrics-text"));
        if reply.body.contains(r#"outcome="done""#) || Instant::now() > deadline {
            break reply.body;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for line in [
        r#"hookserver_deliveries_total{endpoint="/webhooks/hello",status="200"} 2"#,
        r#"hookserver_deliveries_total{endpoint="-",status="404"} 1"#,
        r#"hookserver_deliveries_total{endpoint="/webhooks/later",status="202"} 1"#,
        r#"hookserver_ignored_total{endpoint="/webhooks/hello"} 1"#,
        r#"hookserver_duplicates_total{endpoint="/webhooks/later"} 1"#,
        r#"hookserver_queue_attempts_total{endpoint="/webhooks/later",outcome="done"} 1"#,
        r#"hookserver_inbox_deliveries{state="done"} 1"#,
        r#"hookserver_delivery_seconds_count{endpoint="/webhooks/hello"} 2"#,
    ] {
        assert!(text.contains(line), "no {line} in:\n{text}");
    }
    // The unknown path is not a label.
    assert!(!text.contains("/webhooks/nope"), "{text}");
    server.stop();
    let _ = std::fs::remove_dir_all(dir);
}
