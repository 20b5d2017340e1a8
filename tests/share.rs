//! The public tunnel (`.share(true)`, `HOOKSERVER_SHARE=1`), end to end without the
//! internet: a real bore server (bore-cli's own) on loopback, and Hub deliveries sent to
//! the tunnel's public port reaching the handler.
//!
//! bore's control port is fixed (7835), so everything that needs the bore server runs in
//! this one test, in order.

mod common;

use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::bot::Bot;
use common::{get, hub_sample, post};
use hookserver::{Error, WebhookPayload, WebhooksServer, BORE_CONTROL_PORT};

const TUNNEL_SECRET: &str = "tunnel-team-secret";
const HOOK_SECRET: &str = "hook-secret";

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
}
