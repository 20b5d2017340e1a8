//! Queued endpoints' launch and settings: no inbox without a queued endpoint, a clear
//! error for an inbox that cannot be opened, and every setting at its type's maximum.

use super::*;

#[test]
fn a_server_without_a_queued_endpoint_has_no_inbox() {
    let bot = Bot::start("trigger_training", &[]);
    let reply = get(&format!("{}/api/inbox", bot.base()));
    assert_eq!(reply.status, 404);
    assert!(reply.json()["error"].as_str().unwrap().contains("no inbox"));
}

#[test]
fn an_inbox_that_cannot_be_opened_is_a_clear_launch_error() {
    let scratch = Scratch::new("bad-file");
    let garbage = scratch.0.join("garbage.redb");
    std::fs::write(
        &garbage,
        b"this is not a database, and a redb file starts otherwise",
    )
    .unwrap();
    let missing_dir = scratch.0.join("no/such/dir/inbox.redb");
    for (file, says) in [
        (garbage.display().to_string(), "garbage.redb"),
        (
            missing_dir.display().to_string(),
            "its folder does not exist",
        ),
    ] {
        let env = [
            ("HOOKSERVER_PORT", "0"),
            ("HOOKSERVER_INBOX", file.as_str()),
        ];
        let stderr = common::bot::launch_error("queue_drill", &env);
        assert!(stderr.contains("cannot open the inbox"), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A database that cannot be reached is an error of the launch too.
    let port = common::free_port();
    let unreachable = format!("postgres://bot:pw@127.0.0.1:{port}/hooks");
    let env = [
        ("HOOKSERVER_PORT", "0"),
        ("HOOKSERVER_INBOX", unreachable.as_str()),
    ];
    let stderr = common::bot::launch_error("queue_drill", &env);
    assert!(
        stderr.contains("cannot open the inbox postgres://bot:***@127.0.0.1"),
        "{stderr}"
    );
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(!stderr.contains(":pw@"), "the password was shown: {stderr}");
    // The garbage was left as it was.
    assert!(std::fs::read(&garbage)
        .unwrap()
        .starts_with(b"this is not a database"));
}

/// Every duration and count setting at its type's maximum (read as "no limit") still
/// serves: an inline delivery answers, a queued one is stored, run and done, and the
/// inbox's API shows the settings. (Each of these once broke: a handler timeout that long
/// panicked at launch, as the replicas' lease is twice it; on PostgreSQL that lease
/// overflowed the clock in SQL on every claim; `usize::MAX` workers panicked the queue's
/// thread, so deliveries were acknowledged and never run; a backoff past `u64::MAX` ms
/// panicked `GET /api/inbox`; a request timeout that long panicked every connection.)
pub(super) fn every_setting_at_its_maximum_means_no_limit(scratch: &Scratch) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let mut app = hookserver::WebhooksServer::empty()
        .webhook_secret("")
        .inbox(scratch.inbox())
        .handler_timeout(Some(Duration::MAX))
        .body_timeout(Duration::MAX)
        .request_timeout(Duration::MAX)
        .shutdown_timeout(Duration::MAX)
        .queue_backoff(Duration::MAX)
        .dedupe_window(Duration::MAX)
        .session_ttl(Duration::MAX)
        .queue_workers(usize::MAX)
        .queue_attempts(u32::MAX)
        .queue_limit(usize::MAX)
        .delivery_log(usize::MAX)
        .event_streams(usize::MAX);
    app.add_webhook("now", |payload: hookserver::WebhookPayload| async move {
        payload.repo.name
    })
    .unwrap();
    app.add_queued_webhook("later", move || {
        let counted = Arc::clone(&counted);
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    })
    .unwrap();
    let server = common::serve(app);
    let reply = post(
        &format!("{}/webhooks/now", server.url()),
        &common::hub_sample(),
        &[],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = post(
        &format!("{}/webhooks/later", server.url()),
        &common::hub_sample(),
        &[("webhook-id", "at-the-maximum")],
    );
    assert_eq!(reply.status, 202, "{reply:?}");
    common::wait_until("the queued delivery ran", 10, || {
        runs.load(Ordering::SeqCst) == 1
    });
    common::wait_until("the inbox counts it done", 10, || {
        get(&format!("{}/api/inbox", server.url())).json()["counts"]["done"] == 1
    });
    let settings = get(&format!("{}/api/inbox", server.url())).json()["settings"].clone();
    assert_eq!(settings["workers"], u64::from(u32::MAX), "{settings}");
    assert_eq!(settings["backoff_ms"], u64::MAX, "{settings}");
    server.stop();
}

#[test]
fn every_setting_at_its_maximum_means_no_limit_on_redb() {
    every_setting_at_its_maximum_means_no_limit(&Scratch::new("maximum"));
}
