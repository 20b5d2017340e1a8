//! The pages in the browser: a hostile payload stays text, the dark colour scheme, a page
//! elsewhere cannot fire the bot, and logout ends the session.

use super::*;

#[test]
fn a_script_in_a_payload_stays_text() {
    if !browser_available() {
        return;
    }
    let server = bot();
    let base = server.url().to_owned();
    let driver = Driver::start();
    let mut payload: Value = hookserver::serde_json::from_slice(&hub_sample()).unwrap();
    let hostile = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">";
    payload["discussion"]["title"] = json!(hostile);
    payload["repo"]["name"] = json!("<b id=\"injected\">bold</b>");
    run(async {
        let client = browser(&driver).await;
        // Log in with the bearer's equivalent: the form.
        client.goto(&format!("{base}/dashboard")).await.unwrap();
        log_in(&client, SECRET).await;
        until(&client, "the live stream", "document.querySelector('#live') && document.querySelector('#live').dataset.state === 'live'").await;
        let sent = post(
            &format!("{base}/webhooks/trigger_training"),
            payload.to_string().as_bytes(),
            &[("x-webhook-secret", SECRET)],
        );
        assert_eq!(sent.status, 200);
        until(
            &client,
            "the hostile delivery",
            "document.querySelector('#delivery-list tbody tr')",
        )
        .await;
        click(&client, "#delivery-list tbody tr").await;
        until(
            &client,
            "the detail view",
            "document.querySelector('#detail-body').textContent.includes('__pwned')",
        )
        .await;
        // Give an injected script or image handler the time to run, if there were one.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let pwned = client
            .execute("return typeof window.__pwned;", vec![])
            .await
            .unwrap();
        assert_eq!(pwned, "undefined", "a payload's script ran");
        let injected = client
            .execute(
                "return document.getElementById('injected') === null;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(injected, true, "a payload's markup became an element");
        let body = text(&client, "#detail-body").await;
        assert!(
            body.contains("<script>window.__pwned = 1</script>"),
            "{body}"
        );
        let row = text(&client, "#delivery-list tbody tr").await;
        assert!(
            row.contains("<b id=\"injected\">bold</b>"),
            "shown as text: {row}"
        );
        close_without_errors(client).await;
    });
    drop(driver);
    server.stop();
}

#[test]
fn the_page_follows_a_dark_color_scheme() {
    if !browser_available() {
        return;
    }
    let server = bot();
    let base = server.url().to_owned();
    let driver = Driver::start();
    run(async {
        // What a system set to dark asks for (0: dark, in Blink's settings).
        let client = browser_with(&driver, &["--blink-settings=preferredColorScheme=0"]).await;
        client.goto(&format!("{base}/")).await.unwrap();
        css(&client, "li.endpoint").await;
        let dark = client
            .execute(
                "return matchMedia('(prefers-color-scheme: dark)').matches;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(dark, true, "the browser did not ask for dark");
        let background = client
            .execute(
                "return getComputedStyle(document.body).backgroundColor;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(background, "rgb(13, 17, 23)", "the page stayed light");
        screenshot(&client, "dark.png").await;
        close_without_errors(client).await;
    });
    drop(driver);
    server.stop();
}

/// A page on another origin (another port) fires `fetch(..., {mode: 'no-cors'})` at the
/// bot's endpoint, as any site a user visits could: the handler must not run. And the
/// login's cookie is a random session that logout ends on the server.
#[test]
fn a_page_elsewhere_cannot_fire_the_bot_and_the_session_ends_at_logout() {
    if !browser_available() {
        return;
    }
    let ran = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&ran);
    let mut app = WebhooksServer::empty()
        .webhook_secret("")
        .host("127.0.0.1")
        .port(0);
    app.add_webhook("trigger_training", move |_: WebhookPayload| {
        seen.fetch_add(1, Ordering::SeqCst);
        async {}
    })
    .unwrap();
    let open_bot = app.launch_background().expect("the bot starts");
    let target = format!("{}/webhooks/trigger_training", open_bot.url());
    let sample = String::from_utf8(hub_sample()).unwrap();
    // The other origin: a custom page served by a second server on another port.
    let evil_page = format!(
        "<!doctype html><title>evil</title><script>\
         fetch({target:?}, {{method: 'POST', mode: 'no-cors', body: {sample:?}}})\
         .then(() => {{ document.title = 'sent'; }}, () => {{ document.title = 'failed'; }});\
         </script>"
    );
    let evil = WebhooksServer::empty()
        .webhook_secret("")
        .host("127.0.0.1")
        .port(0)
        .ui(evil_page)
        .launch_background()
        .expect("the other origin starts");
    let secured = bot();
    let base = secured.url().to_owned();
    let driver = Driver::start();
    run(async {
        let client = browser(&driver).await;
        client.goto(&format!("{}/", evil.url())).await.unwrap();
        until(
            &client,
            "the page's request",
            "['sent', 'failed'].includes(document.title)",
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "a page elsewhere ran the bot"
        );
        // The bot saw it, and refused it.
        let deliveries = post_free_get(&format!("{}/api/deliveries", open_bot.url()));
        let first = &deliveries["deliveries"][0];
        assert_eq!(first["status"], 403, "{deliveries}");

        // The session cookie: random, HttpOnly, gone from the server at logout.
        client.goto(&format!("{base}/")).await.unwrap();
        log_in(&client, SECRET).await;
        css(&client, "#delivery-list").await;
        let cookie = client
            .get_named_cookie(hookserver::SESSION_COOKIE)
            .await
            .expect("the session cookie");
        let id = cookie.value().to_owned();
        assert_eq!(id.len(), 64);
        assert_eq!(cookie.http_only(), Some(true));
        assert!(!id.contains(SECRET));
        let with_id = || {
            let cookie = format!("{}={id}", hookserver::SESSION_COOKIE);
            common::send(
                "GET",
                &format!("{base}/api/deliveries"),
                b"",
                &[("cookie", &cookie)],
            )
            .status
        };
        assert_eq!(with_id(), 200);
        click(&client, "form.logout button").await;
        css(&client, "#login-secret").await;
        // The same id, sent again (as a copy of the cookie would be), opens nothing.
        assert_eq!(with_id(), 401);
        client.close().await.unwrap();
    });
    open_bot.stop();
    evil.stop();
    secured.stop();
}
