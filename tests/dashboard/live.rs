//! The live event stream: each delivery as it is recorded, and its end when the server
//! stops.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use hookserver::serde_json::Value;
use hookserver::{WebhookPayload, WebhooksServer};

use crate::common::{hub_sample, serve};
use crate::{deliver, SECRET};

#[test]
fn live_events_bring_each_delivery_and_end_when_the_server_stops() {
    let mut app = WebhooksServer::empty()
        .webhook_secret(SECRET)
        // Were the stream left open, a stop would wait this long for it.
        .shutdown_timeout(Duration::from_secs(300));
    app.add_webhook("count", |_: WebhookPayload| async {})
        .unwrap();
    let server = serve(app);
    let base = server.url().to_owned();
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {SECRET}\r\n\r\n",
        server.addr()
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let mut head = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    // Read until the stream's greeting, so the subscription is in place.
    let mut seen = String::new();
    while !seen.contains(": live") {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0);
        seen.push_str(&line);
    }
    for _ in 0..2 {
        deliver(
            &base,
            "/webhooks/count",
            &hub_sample(),
            &[("x-webhook-secret", SECRET)],
        );
    }
    let mut events = Vec::new();
    while events.len() < 2 {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended");
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            events.push(serde_json::from_str::<Value>(data).unwrap());
        }
    }
    assert_eq!(events[0]["id"], 1);
    assert_eq!(events[1]["id"], 2);
    assert_eq!(events[1]["scope"], "discussion");
    assert!(!seen.contains(SECRET));
    // Stopping ends the stream, and the stop does not wait for it (the bound is far
    // below the 300 s shutdown timeout, far above a stop's usual milliseconds).
    let (stopped_tx, stopped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        server.stop();
        let _ = stopped_tx.send(());
    });
    assert!(
        stopped.recv_timeout(Duration::from_secs(60)).is_ok(),
        "the stop waited for the open event stream"
    );
    let mut rest = Vec::new();
    let end = std::io::Read::read_to_end(&mut reader, &mut rest);
    assert!(end.is_ok(), "the stream did not end: {end:?}");
}
