//! `launch()` blocks until SIGTERM or SIGINT, lets in-flight deliveries finish, and
//! returns `Ok(())`. Signals are process-wide, so this binary holds one test.

mod common;

use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use common::free_port;
use hookserver::{webhook_endpoint, WebhooksServer};

static STARTED: Mutex<Option<mpsc::Sender<()>>> = Mutex::new(None);

/// Takes a while, so that a signal arrives while it runs.
#[webhook_endpoint]
async fn slow() -> &'static str {
    if let Some(started) = STARTED.lock().unwrap().as_ref() {
        let _ = started.send(());
    }
    hookserver::actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    "done"
}

fn signal_self(signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn stops_gracefully_on(signal: &str) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let server =
        std::thread::spawn(move || WebhooksServer::new().webhook_secret("").port(port).launch());
    // Wait until it serves.
    let mut up = false;
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(up, "the server did not start");

    let (started_tx, started_rx) = mpsc::channel();
    *STARTED.lock().unwrap() = Some(started_tx);
    let in_flight = std::thread::spawn({
        let url = url.clone();
        move || common::post(&format!("{url}/webhooks/slow"), b"", &[])
    });
    started_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the delivery reached its handler");
    signal_self(signal);

    // The delivery that was in flight is answered in full ...
    let reply = in_flight.join().unwrap();
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "done"),
        "{signal}"
    );
    // ... launch() returns Ok, and the port no longer accepts connections.
    let outcome = server.join().unwrap();
    assert!(outcome.is_ok(), "{signal}: {outcome:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn sigterm_and_sigint_drain_in_flight_deliveries_and_return() {
    stops_gracefully_on("TERM");
    stops_gracefully_on("INT");
}
