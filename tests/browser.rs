//! The dashboard in a real headless Chromium, driven through chromedriver (WebDriver):
//! login, a test delivery from the form, a delivery arriving live, the detail view with
//! the secret redacted, a replay, and a hostile payload that stays text.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them
//! the tests say so and pass, unless `HOOKSERVER_REQUIRE_BROWSER=1` (set by `.ci/run`).
//! Screenshots of the landing page and of the detail view are written to
//! `target/browser-artifacts/`.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::{optional, Guard};
use common::{hub_sample, post};
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use hookserver::serde_json::{json, Value};
use hookserver::{WebhookPayload, WebhooksServer};

const SECRET: &str = "browser-s3cret";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(20);

/// Whether the browser is here; if not, skip (said on stderr), or fail in CI.
fn browser_available() -> bool {
    let here = Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists();
    optional(
        "BROWSER",
        here,
        &format!("no {CHROMEDRIVER} / {CHROMIUM} (apt-get install chromium chromium-driver)"),
    )
}

/// chromedriver on a free loopback port, owned by a guard: when dropped, its whole process
/// group is killed, the Chromium it started included (even when a test failed before
/// closing its session).
struct Driver {
    _process: Guard,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = common::free_port();
        let process = Guard::spawn(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            _process: process,
            url,
        }
    }
}

/// The browser's console, as chromedriver keeps it (`goog:loggingPrefs`).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}

/// Console messages of level SEVERE (errors, CSP violations, failed loads) since the
/// last call.
async fn console_errors(client: &Client) -> Vec<String> {
    let log = client.issue_cmd(BrowserLog).await.expect("the browser log");
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn browser(driver: &Driver) -> Client {
    browser_with(driver, &[]).await
}

/// A Chromium session with these arguments added.
async fn browser_with(driver: &Driver, extra: &[&str]) -> Client {
    let mut args = vec![
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1400",
        "--no-first-run",
        "--disable-extensions",
    ];
    args.extend_from_slice(extra);
    let mut caps = Capabilities::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({ "binary": CHROMIUM, "args": args }),
    );
    caps.insert("goog:loggingPrefs".to_owned(), json!({ "browser": "ALL" }));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    let path = artifacts().join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

async fn css(client: &Client, selector: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|err| panic!("{selector}: {err}"))
}

/// Waits until `script` (a JS expression) is true in the page.
async fn until(client: &Client, what: &str, script: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let value = client
            .execute(&format!("return Boolean({script});"), vec![])
            .await
            .unwrap_or(Value::Bool(false));
        if value == Value::Bool(true) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks that the console shows no error since the last look, and ends the session.
async fn close_without_errors(client: Client) {
    let errors = console_errors(&client).await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    client.close().await.unwrap();
}

/// Types `secret` into the login form and sends it.
async fn log_in(client: &Client, secret: &str) {
    css(client, "#login-secret")
        .await
        .send_keys(secret)
        .await
        .unwrap();
    click(client, "form.login button").await;
}

async fn click(client: &Client, selector: &str) {
    css(client, selector).await.click().await.unwrap();
}

async fn text(client: &Client, selector: &str) -> String {
    css(client, selector).await.text().await.unwrap()
}

fn run(test: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
}

fn bot() -> hookserver::ServerHandle {
    let mut app = WebhooksServer::empty()
        .webhook_secret(SECRET)
        .host("127.0.0.1")
        .port(0);
    app.add_webhook("trigger_training", |payload: WebhookPayload| async move {
        json!({ "training": payload.repo.name })
    })
    .unwrap();
    app.launch_background().expect("the server starts")
}

#[test]
fn a_new_user_logs_in_sends_a_test_watches_it_arrive_inspects_and_replays_it() {
    if !browser_available() {
        return;
    }
    let server = bot();
    let base = server.url().to_owned();
    let driver = Driver::start();
    run(async {
        let client = browser(&driver).await;

        // The public page lists the endpoints, and asks for the secret.
        client.goto(&format!("{base}/")).await.unwrap();
        let url = text(&client, "li.endpoint code.url").await;
        assert_eq!(url, format!("POST {base}/webhooks/trigger_training"));
        assert!(client.find(Locator::Css("#delivery-list")).await.is_err());
        let login = css(&client, "#login").await;
        assert!(login
            .text()
            .await
            .unwrap()
            .contains("enter the webhook secret"));

        // A wrong secret is refused.
        log_in(&client, "not-it").await;
        let alert = text(&client, "#login [role=alert]").await;
        assert_eq!(alert, "Wrong secret.");
        assert!(client.find(Locator::Css("#delivery-list")).await.is_err());
        // The refusal is a 403, which the console reports; nothing else is there.
        let errors = console_errors(&client).await;
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].contains("/login") && errors[0].contains("403"),
            "{errors:#?}"
        );

        // The right one opens the dashboard, which goes live.
        log_in(&client, SECRET).await;
        css(&client, "#delivery-list").await;
        until(
            &client,
            "the live stream",
            "document.querySelector('#live').dataset.state === 'live'",
        )
        .await;
        // The copy button copies the URL, or (where the clipboard is refused) selects it.
        click(&client, "button.copy").await;
        until(
            &client,
            "the copy button's answer",
            "['Copied', 'Press Ctrl+C'].includes(document.querySelector('button.copy').textContent)",
        )
        .await;
        let copied = client
            .execute(
                "const b = document.querySelector('button.copy'); \
                 return b.textContent === 'Copied' || window.getSelection().toString() === b.dataset.copy;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(copied, true, "the URL was neither copied nor selected");
        let source = client.source().await.unwrap();
        assert!(!source.contains(SECRET), "the page never shows the secret");

        // A test delivery from the form.
        click(&client, "details.test summary").await;
        until(
            &client,
            "the sample in the form",
            "document.querySelector('textarea.body').value.includes('\"event\"')",
        )
        .await;
        click(&client, "form.test-form button[type=submit]").await;
        until(
            &client,
            "the test delivery's answer",
            "document.querySelector('output.answer').textContent.includes('answered 200')",
        )
        .await;
        until(
            &client,
            "the test delivery in the list",
            "document.querySelector('#delivery-list tbody tr[data-kind=test]')",
        )
        .await;

        // A delivery from outside (as the Hub sends it) shows up live, with no reload.
        client
            .execute("window.__still_the_same_page = true;", vec![])
            .await
            .unwrap();
        let sent = post(
            &format!("{base}/webhooks/trigger_training"),
            &hub_sample(),
            &[("x-webhook-secret", SECRET)],
        );
        assert_eq!(sent.status, 200);
        until(
            &client,
            "the Hub's delivery in the list",
            "document.querySelector('#delivery-list tbody tr[data-kind=hub]')",
        )
        .await;
        until(
            &client,
            "no reload",
            "window.__still_the_same_page === true",
        )
        .await;
        let row = text(&client, "#delivery-list tbody tr[data-kind=hub]").await;
        assert!(row.contains("/webhooks/trigger_training"), "{row}");
        assert!(row.contains("discussion · create"), "{row}");
        assert!(row.contains("gpt2"), "{row}");
        assert!(row.contains("200"), "{row}");
        screenshot(&client, "landing.png").await;

        // Its detail: the payload, the headers with the secret redacted, the answer.
        click(&client, "#delivery-list tbody tr[data-kind=hub]").await;
        until(&client, "the detail view", "!document.querySelector('#detail').hidden && document.querySelector('#detail-body').textContent.includes('\"scope\"')").await;
        let body = text(&client, "#detail-body").await;
        assert!(body.contains("\"scope\": \"discussion\""), "{body}");
        let headers = text(&client, "#detail-headers").await;
        assert!(headers.contains("x-webhook-secret <redacted>"), "{headers}");
        assert!(!headers.contains(SECRET));
        let answer = text(&client, "#detail-answer").await;
        assert!(answer.contains("HTTP 200"), "{answer}");
        assert!(answer.contains("\"training\": \"gpt2\""), "{answer}");
        screenshot(&client, "detail.png").await;

        // Redeliver: a replay appears, marked as one.
        let replayed = text(&client, "#detail-title").await;
        let id = replayed.trim_start_matches("Delivery #").to_owned();
        click(&client, "#redeliver").await;
        until(
            &client,
            "the replay in the list",
            "document.querySelector('#delivery-list tbody tr[data-kind=replay]')",
        )
        .await;
        let replay = text(&client, "#delivery-list tbody tr[data-kind=replay]").await;
        assert!(replay.contains(&format!("replay of #{id}")), "{replay}");
        until(
            &client,
            "the replay's detail",
            "document.querySelector('#detail-title').textContent.includes('replay of')",
        )
        .await;

        // On a phone's width, nothing runs off the side.
        client.set_window_size(390, 844).await.unwrap();
        until(&client, "the narrow layout", "window.innerWidth <= 400").await;
        until(
            &client,
            "no horizontal scrolling",
            "document.documentElement.scrollWidth <= window.innerWidth",
        )
        .await;
        client
            .execute("window.scrollTo(0, 0);", vec![])
            .await
            .unwrap();
        screenshot(&client, "phone.png").await;

        close_without_errors(client).await;
    });
    drop(driver);
    server.stop();
}

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

/// `GET url` from this machine, as JSON.
fn post_free_get(url: &str) -> Value {
    common::get(url).json()
}

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
