//! The dashboard in a real headless Chromium, driven through chromedriver (WebDriver):
//! login, a test delivery from the form, a delivery arriving live, the detail view with
//! the secret redacted, a replay, and a hostile payload that stays text.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them
//! the tests say so and pass, unless `HOOKSERVER_REQUIRE_BROWSER=1` (set by `.ci/run`).
//! Screenshots of the landing page and of the detail view are written to
//! `target/browser-artifacts/`.
//!
//! Here: the driver, the helpers and the new user's whole path; the pages' other
//! guarantees in `pages.rs`; the inbox panel in `inbox.rs`.
#![cfg(unix)]

#[path = "../common/mod.rs"]
mod common;
mod inbox;
mod pages;

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

/// `GET url` from this machine, as JSON.
fn post_free_get(url: &str) -> Value {
    common::get(url).json()
}
