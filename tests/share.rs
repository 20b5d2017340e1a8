//! The public tunnel (`.share(true)`, `HOOKSERVER_SHARE=1`), end to end without the
//! internet: a real bore server (bore-cli's own) on loopback, and Hub deliveries sent to
//! the tunnel's public port reaching the handler.
//!
//! bore's control port is fixed (7835), so everything that needs the bore server runs in
//! this one test, in order.

mod common;
#[path = "common/hub.rs"]
mod stand_in;

use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::bot::Bot;
use common::{get, hub_sample, post};
use hookserver::{Error, WebhookPayload, WebhooksServer, BORE_CONTROL_PORT};

const TUNNEL_SECRET: &str = "tunnel-team-secret";
const HOOK_SECRET: &str = "hook-secret";
const HUB_TOKEN: &str = "hf_tunnel_test_token_0123456789";

/// Starts bore's server on loopback (control port 7835, tunnels on 40000..=49999); it runs
/// until the test process ends.
fn start_bore_server() {
    std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut server = bore_cli::server::Server::new(40000..=49999, Some(TUNNEL_SECRET));
        server.set_bind_addr([127, 0, 0, 1].into());
        server.set_bind_tunnels([127, 0, 0, 1].into());
        let result = runtime.block_on(server.listen());
        panic!("the bore server stopped: {result:?}");
    });
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", BORE_CONTROL_PORT)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the bore server did not start");
}

fn sharing(secret: &str) -> WebhooksServer {
    WebhooksServer::empty()
        .host("127.0.0.1")
        .port(0)
        .webhook_secret(HOOK_SECRET)
        .share(true)
        .share_server(format!("127.0.0.1:{BORE_CONTROL_PORT}"))
        .share_secret(secret)
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn deliveries_reach_the_handler_through_a_tunnel() {
    // 1. No tunnel server: a clear error, not a hang.
    let err = sharing(TUNNEL_SECRET).launch_background().unwrap_err();
    assert!(matches!(err, Error::Share { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("cannot open the public tunnel through 127.0.0.1:7835: "),
        "{message}"
    );

    start_bore_server();

    // 2. A wrong tunnel secret: refused, clearly.
    let err = sharing("not the secret").launch_background().unwrap_err();
    assert!(matches!(err, Error::Share { .. }), "{err:?}");

    // 3. Deliveries through the tunnel reach the handler; the secret is still checked.
    let handled = Arc::new(AtomicUsize::new(0));
    let mut app = sharing(TUNNEL_SECRET);
    let counter = handled.clone();
    app.add_webhook("trigger_training", move |payload: WebhookPayload| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            hookserver::serde_json::json!({ "repo": payload.repo.name })
        }
    })
    .unwrap();
    let handle = app.launch_background().unwrap();
    let public = handle.public_url().to_owned();
    assert!(public.starts_with("http://127.0.0.1:"), "{public}");
    assert_ne!(
        port_of(&public),
        handle.addr().port(),
        "the tunnel has its own port"
    );
    assert_eq!(handle.url(), format!("http://{}", handle.addr()));
    assert!(
        handle
            .instructions()
            .contains(&format!("  - POST {public}/webhooks/trigger_training")),
        "{}",
        handle.instructions()
    );
    let url = format!("{public}/webhooks/trigger_training");
    for _ in 0..3 {
        let reply = post(&url, &hub_sample(), &[("x-webhook-secret", HOOK_SECRET)]);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()["repo"], "gpt2");
    }
    assert_eq!(handled.load(Ordering::SeqCst), 3);
    let reply = post(&url, &hub_sample(), &[("x-webhook-secret", "wrong")]);
    assert_eq!(reply.status, 403);
    assert_eq!(handled.load(Ordering::SeqCst), 3);
    let landing = get(&format!("{public}/"));
    assert_eq!(landing.status, 200);
    assert!(
        landing.body.contains(&url),
        "the landing page names the tunnel URL"
    );
    handle.stop();

    // 4. A bot with HOOKSERVER_SHARE=1 prints the tunnel's URLs instead of its own.
    let bot = Bot::start(
        "trigger_training",
        &[
            ("HOOKSERVER_SHARE", "1"),
            ("HOOKSERVER_SHARE_SERVER", "127.0.0.1"),
            ("HOOKSERVER_SHARE_SECRET", TUNNEL_SECRET),
        ],
    );
    let url = bot.url_of("/webhooks/trigger_training");
    let tunnel_line = bot
        .stderr
        .recv_timeout(Duration::from_secs(10))
        .into_iter()
        .chain(bot.stderr.try_iter())
        .find(|line| line.contains("public tunnel open"))
        .expect("a log line names the tunnel");
    assert!(
        tunnel_line.contains(&format!("tunnel={}", bot.base())),
        "{tunnel_line}"
    );
    let reply = post(&url, &hub_sample(), &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["scope"], "discussion");
    let (code, _) = bot.stop_with("TERM");
    assert_eq!(code, Some(0));

    // 5. Never on a Space: its URL is public already.
    let bot = Bot::start(
        "trigger_training",
        &[
            ("HOOKSERVER_SHARE", "1"),
            ("HOOKSERVER_SHARE_SERVER", "127.0.0.1"),
            ("SPACE_ID", "me/bot"),
            ("SPACE_HOST", "me-bot.hf.space"),
        ],
    );
    assert_eq!(
        bot.urls(),
        ["https://me-bot.hf.space/webhooks/trigger_training"]
    );
    let (code, stderr) = bot.stop_with("TERM");
    assert_eq!(code, Some(0));
    assert!(stderr.contains("sharing is off on a Space"), "{stderr}");

    // 6. A bad setting is an error before anything listens.
    let bot = std::process::Command::new(common::bot::example_binary("trigger_training"))
        .env("HOOKSERVER_PORT", "0")
        .env("HOOKSERVER_SHARE", "1")
        .env("HOOKSERVER_SHARE_SERVER", "127.0.0.1:80")
        .output()
        .unwrap();
    assert_eq!(bot.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bot.stderr);
    assert!(stderr.contains("port 7835 only"), "{stderr}");

    // 7. Registration on the Hub through the tunnel (tests/hub.rs has the rest): the bot
    //    registers the tunnel's URL with its secret, the Hub's deliveries to that webhook
    //    arrive, and SIGTERM disables it again. The token shows nowhere, even at trace.
    let hub = stand_in::StandInHub::start(HUB_TOKEN);
    let mut command = std::process::Command::new(common::bot::example_binary("hub_registered"));
    command
        .arg("me/data")
        .env_remove("HF_TOKEN")
        .env_remove("HUGGING_FACE_HUB_TOKEN");
    let bot = Bot::start_command(
        "hub_registered",
        command,
        &[
            ("HOOKSERVER_SHARE", "1"),
            ("HOOKSERVER_SHARE_SERVER", "127.0.0.1"),
            ("HOOKSERVER_SHARE_SECRET", TUNNEL_SECRET),
            ("HF_TOKEN", HUB_TOKEN),
            ("HF_ENDPOINT", &hub.url),
            ("WEBHOOK_SECRET", HOOK_SECRET),
            ("RUST_LOG", "trace"),
        ],
    );
    let url = bot.url_of("/webhooks/dataset_changed");
    let registered = bot.stdout.recv_timeout(Duration::from_secs(30)).unwrap();
    let webhook = hub.webhooks()[0].clone();
    let id = webhook["id"].as_str().unwrap().to_owned();
    assert_eq!(
        registered,
        format!("Registered on the Hub: webhook {id} watching dataset me/data (repo) -> {url}")
    );
    assert_eq!(webhook["url"], url.as_str());
    assert_ne!(port_of(&url.replace("/webhooks/dataset_changed", "")), 0);
    assert_eq!(webhook["secret"], HOOK_SECRET);
    assert_eq!(webhook["domains"], hookserver::serde_json::json!(["repo"]));
    let reply = post(
        webhook["url"].as_str().unwrap(),
        &common::fixture("repo.content.update.hfhub-tests.json"),
        &[("x-webhook-secret", webhook["secret"].as_str().unwrap())],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (code, stdout, stderr) = bot.stop_with_output("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("Hub webhook {id} disabled (it called {url}).")),
        "{stdout}"
    );
    assert_eq!(hub.webhooks()[0]["disabled"], true);
    let calls = hub.take_calls();
    assert_eq!(
        calls.iter().map(stand_in::Call::line).collect::<Vec<_>>(),
        [
            "GET ".to_owned(),
            "POST ".to_owned(),
            format!("POST /{id}/disable")
        ]
    );
    assert!(calls
        .iter()
        .all(|c| c.authorization.as_deref() == Some(&format!("Bearer {HUB_TOKEN}"))));
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "logs at trace level"
    );
    for secret in [HUB_TOKEN, HOOK_SECRET] {
        let output = format!("{stdout}\n{stderr}");
        assert!(
            !common::shows_any_part_of(&output, secret),
            "{secret} leaked"
        );
    }
}
