//! Shutdown under load: with 64 deliveries in flight to a handler that takes 200 ms,
//! SIGTERM stops new connections, lets every in-flight delivery finish, and `launch()`
//! returns `Ok(())` (a generated `main` then exits 0: tests/examples.rs) within the drain
//! bound. Every delivery answered 2xx was fully handled. Signals are process-wide, so this
//! binary holds one test.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hookserver::{webhook_endpoint, WebhookPayload, WebhooksServer};

const IN_FLIGHT: usize = 64;
const DRAIN_BOUND: Duration = Duration::from_secs(10);

static STARTED: AtomicUsize = AtomicUsize::new(0);
static HANDLED: AtomicUsize = AtomicUsize::new(0);

/// Takes 200 ms; counts the deliveries it saw through.
#[webhook_endpoint]
async fn slow(payload: WebhookPayload) -> String {
    STARTED.fetch_add(1, Ordering::SeqCst);
    hookserver::actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    HANDLED.fetch_add(1, Ordering::SeqCst);
    format!("handled {}", payload.repo.name)
}

/// Sends one delivery and returns the status, if an answer came.
fn deliver(port: u16) -> Option<u16> {
    let body = common::hub_sample();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .ok()?;
    write!(
        stream,
        "POST /webhooks/slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .ok()?;
    stream.write_all(&body).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split(' ').nth(1)?.parse().ok()
}

#[test]
fn sigterm_under_load_loses_no_acknowledged_delivery() {
    let port = common::free_port();
    let server = std::thread::spawn(move || {
        WebhooksServer::new()
            .webhook_secret("")
            .host("127.0.0.1")
            .port(port)
            .workers(2)
            .shutdown_timeout(DRAIN_BOUND)
            .launch()
    });
    let up = (0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(10));
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "the server did not start");

    let clients: Vec<_> = (0..IN_FLIGHT)
        .map(|_| std::thread::spawn(move || deliver(port)))
        .collect();
    // All 64 in their handler.
    let deadline = Instant::now() + Duration::from_secs(10);
    while STARTED.load(Ordering::SeqCst) < IN_FLIGHT && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        STARTED.load(Ordering::SeqCst),
        IN_FLIGHT,
        "not all in flight"
    );
    assert_eq!(
        HANDLED.load(Ordering::SeqCst),
        0,
        "the handlers take 200 ms"
    );

    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    // New connections are refused while the in-flight deliveries finish.
    let refused = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(5));
        TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    assert!(refused, "still accepting new connections after SIGTERM");

    let statuses: Vec<Option<u16>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let result = server.join().unwrap();
    let drained_in = signalled.elapsed();
    assert!(result.is_ok(), "{result:?}");
    assert!(drained_in < DRAIN_BOUND, "took {drained_in:?}");

    let acknowledged = statuses
        .iter()
        .filter(|s| s.is_some_and(|s| (200..300).contains(&s)))
        .count();
    assert_eq!(
        HANDLED.load(Ordering::SeqCst),
        acknowledged,
        "every 2xx was fully handled: {statuses:?}"
    );
    assert_eq!(
        acknowledged, IN_FLIGHT,
        "every in-flight delivery finished: {statuses:?}"
    );
}
