//! The inbox panel in the browser: a dead letter, "Retry now" and "Discard".

use super::*;

/// The inbox panel: a queued delivery that always fails shows as a dead letter with its
/// Webhook-Id and its error; "Retry now" gives it a new round, "Discard" removes it.
#[test]
fn the_inbox_panel_shows_a_dead_letter_and_retries_then_discards_it() {
    if !browser_available() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("hookserver-browser-inbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&attempts);
    let mut app = WebhooksServer::empty()
        .inbox(dir.join("inbox.redb").display().to_string())
        .queue_attempts(2)
        .queue_backoff(Duration::from_millis(50));
    app.add_queued_webhook("mirror", move |_: WebhookPayload| {
        let counted = Arc::clone(&counted);
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>("the mirror is down")
        }
    })
    .unwrap();
    let server = common::serve(app);
    let base = server.url().to_owned();
    let reply = post(
        &format!("{base}/webhooks/mirror"),
        &hub_sample(),
        &[("webhook-id", "wh-dead-1")],
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let driver = Driver::start();
    run(async {
        let client = browser(&driver).await;
        client.goto(&format!("{base}/dashboard")).await.unwrap();
        until(
            &client,
            "a dead letter",
            "document.querySelector('#inbox-list tr.inbox-dead')",
        )
        .await;
        let row = text(&client, "#inbox-list tr.inbox-dead").await;
        assert!(row.contains("wh-dead-1"), "{row}");
        assert!(row.contains("the mirror is down"), "{row}");
        assert!(text(&client, "#inbox-counts").await.contains("1 dead"));
        screenshot(&client, "inbox.png").await;
        click(&client, "#inbox-list tr.inbox-dead button").await; // Retry now
        until(
            &client,
            "a second round",
            "document.querySelector('#inbox-list tr.inbox-dead td.num')?.textContent === '4'",
        )
        .await;
        assert_eq!(attempts.load(Ordering::SeqCst), 4);
        click(&client, "#inbox-list tr.inbox-dead button + button").await; // Discard
        until(
            &client,
            "an empty inbox",
            "document.querySelectorAll('#inbox-list tbody tr').length === 0",
        )
        .await;
        assert!(text(&client, "#inbox-counts").await.contains("0 dead"));
        close_without_errors(client).await;
    });
    drop(driver);
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
