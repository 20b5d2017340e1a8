//! The hostile-input catalogue, over real TCP: each case asserts the exact answer and
//! that the server still serves a good delivery right after.
//!
//! Choices it pins down (README, "Bad input"): no Content-Type check (the Hub sends
//! `application/json`; any type is parsed as JSON); a UTF-8 BOM is not JSON (400); paths
//! match exactly, byte for byte (no dot-segment resolution, no percent-decoding, no
//! trailing-slash or case folding); a repeated secret header is refused (403); the header
//! wins over the `secret` query parameter.
//!
//! Here: the helpers, the body (1) and sizes (2); the secret, paths and methods in
//! `requests.rs` (3, 4); the protocol and handler isolation in `connections.rs` (5, 6).

#[path = "../common/mod.rs"]
mod common;
mod connections;
mod requests;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::hub_sample;
use hookserver::serde_json::{json, Value};
use hookserver::{webhook_endpoint, Bytes, Json, ServerHandle, WebhookPayload, WebhooksServer};

const SECRET: &str = "s3cret";
const LIMIT: usize = 1024 * 1024; // the default

/// `POST /webhooks/hub`: the Hub's payload.
#[webhook_endpoint]
async fn hub(payload: WebhookPayload) -> Value {
    json!({ "repo": payload.repo.name })
}

/// `POST /webhooks/json`: any JSON.
#[webhook_endpoint]
async fn json(value: Json<Value>) -> Value {
    json!({ "kind": if value.0.is_object() { "object" } else { "other" } })
}

/// `POST /webhooks/bytes`: the raw body.
#[webhook_endpoint]
async fn bytes(body: Bytes) -> String {
    body.len().to_string()
}

/// `POST /webhooks/text`: the body as text.
#[webhook_endpoint]
fn text(body: String) -> String {
    body.chars().count().to_string()
}

/// `POST /webhooks/panics`.
#[webhook_endpoint]
async fn panics() -> &'static str {
    panic!("boom")
}

/// `POST /webhooks/errs`: an error without a response of its own.
#[webhook_endpoint]
async fn errs() -> Result<&'static str, String> {
    Err("no luck".to_owned())
}

/// `POST /webhooks/hangs`: never answers.
#[webhook_endpoint]
async fn hangs() {
    std::future::pending::<()>().await;
}

/// One server for the whole catalogue, as users build it (every `#[webhook_endpoint]`
/// above): its state is shared on purpose, since every case checks it still serves.
fn server() -> SocketAddr {
    static SERVER: OnceLock<ServerHandle> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            WebhooksServer::new()
                .host("127.0.0.1")
                .port(0)
                .webhook_secret(SECRET)
                .body_limit(LIMIT)
                .body_timeout(Duration::from_secs(1))
                .request_timeout(Duration::from_secs(1))
                .handler_timeout(Some(Duration::from_secs(1)))
                .workers(2)
                .launch_background()
                .unwrap()
        })
        .addr()
}

/// An HTTP answer read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        hookserver::serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {self:?}"))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Parses every complete answer in `bytes`.
fn answers(bytes: &[u8]) -> Vec<Answer> {
    let mut all = Vec::new();
    let mut rest = bytes;
    while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not HTTP: {head:?}"));
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        let body_start = end + 4;
        let body_end = (body_start + length).min(rest.len());
        all.push(Answer {
            status,
            head,
            body: String::from_utf8_lossy(&rest[body_start..body_end]).into_owned(),
        });
        rest = &rest[body_end..];
    }
    all
}

/// Sends `request` (writing what the server lets through) and reads until the server
/// closes the connection or `wait` passes.
fn exchange(request: &[u8], wait: Duration) -> Vec<Answer> {
    let mut stream = TcpStream::connect(server()).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    // The server may answer and close before taking everything: that is allowed.
    let _ = stream.write_all(request);
    read_all(&mut stream)
}

fn read_all(stream: &mut TcpStream) -> Vec<Answer> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
    answers(&bytes)
}

/// One request, answered once; `Connection: close` so the server ends the exchange.
fn one(request: &[u8]) -> Answer {
    let mut all = exchange(request, Duration::from_secs(10));
    assert!(
        !all.is_empty(),
        "no answer to {:?}",
        String::from_utf8_lossy(&request[..request.len().min(300)])
    );
    all.remove(0)
}

/// A POST with `headers` (each line without CRLF) and `body`.
fn post_raw(path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut request = format!("POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A delivery with the right secret and a JSON content type.
fn deliver(path: &str, body: &[u8]) -> Answer {
    one(&post_raw(
        path,
        &["X-Webhook-Secret: s3cret", "Content-Type: application/json"],
        body,
    ))
}

/// The server still serves: a good delivery answers 200 with the handler's answer.
fn still_serves() {
    let answer = deliver("/webhooks/hub", &hub_sample());
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["repo"], "gpt2");
}

/// Asserts `answer` has `status` and a JSON error, then that the server still serves.
fn refused(answer: &Answer, status: u16) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert!(answer.json()["error"].is_string(), "{answer:?}");
    still_serves();
}

fn sample_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = hookserver::serde_json::from_slice(&hub_sample()).unwrap();
    edit(&mut value);
    hookserver::serde_json::to_vec(&value).unwrap()
}

// --- 1. Bodies -----------------------------------------------------------------------

#[test]
fn malformed_json() {
    refused(
        &deliver("/webhooks/hub", br#"{"event": {"action": "create",,}}"#),
        400,
    );
}

#[test]
fn truncated_json() {
    let sample = hub_sample();
    refused(&deliver("/webhooks/hub", &sample[..sample.len() / 2]), 400);
}

#[test]
fn json_that_is_not_an_object() {
    for body in [&b"[1, 2, 3]"[..], b"\"a string\"", b"42", b"null", b"true"] {
        let answer = deliver("/webhooks/hub", body);
        assert_eq!(answer.status, 422, "{body:?}: {answer:?}");
        assert_eq!(answer.json()["path"], ".", "{answer:?}");
    }
    // A handler taking any JSON gets it.
    let answer = deliver("/webhooks/json", b"[1, 2, 3]");
    assert_eq!(
        (answer.status, answer.json()["kind"].clone()),
        (200, json!("other"))
    );
    still_serves();
}

#[test]
fn non_utf8_bytes() {
    let mut body = b"{\"event\": \"".to_vec();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    body.extend_from_slice(b"\"}");
    refused(&deliver("/webhooks/hub", &body), 400);
    refused(&deliver("/webhooks/text", &[0xff, 0xfe, 0xfd]), 400);
    // Raw bytes are the handler's business.
    let answer = deliver("/webhooks/bytes", &[0xff, 0xfe, 0xfd]);
    assert_eq!((answer.status, answer.body.as_str()), (200, "3"));
}

#[test]
fn a_utf8_bom_is_not_json() {
    let mut body = b"\xef\xbb\xbf".to_vec();
    body.extend_from_slice(&hub_sample());
    refused(&deliver("/webhooks/hub", &body), 400);
}

#[test]
fn json_nested_100_000_levels_deep() {
    let depth = 100_000;
    // Valid JSON, just deep: the payload is not an array (422); a handler taking any
    // JSON meets serde_json's recursion limit (400), with no stack overflow.
    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    refused(&deliver("/webhooks/hub", arrays.as_bytes()), 422);
    refused(&deliver("/webhooks/json", arrays.as_bytes()), 400);
    let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    refused(&deliver("/webhooks/hub", objects.as_bytes()), 422);
    refused(&deliver("/webhooks/json", objects.as_bytes()), 400);
    // Deep inside a field the payload has: unknown fields are skipped (iteratively), and
    // what is missing is named.
    let nested = format!(
        r#"{{"event": {{"action": "create", "scope": "repo"}}, "repo": {}1{}}}"#,
        r#"{"a":"#.repeat(depth),
        "}".repeat(depth)
    );
    let answer = deliver("/webhooks/hub", nested.as_bytes());
    assert_eq!(answer.json()["path"], "repo.id", "{answer:?}");
    refused(&answer, 422);
}

#[test]
fn numbers_out_of_range() {
    // Too large for any float: not JSON serde_json accepts.
    let body = String::from_utf8(hub_sample())
        .unwrap()
        .replace("\"num\": 1", "\"num\": 1e400");
    let body = if body.contains("1e400") {
        body
    } else {
        panic!("sample changed")
    };
    refused(&deliver("/webhooks/hub", body.as_bytes()), 400);
    // Too large for `discussion.num` (i64), or not a whole number: does not fit.
    for num in [
        json!(-1),
        json!(-1.5),
        json!(1e300),
        json!(u64::MAX as f64 * 2.0),
    ] {
        let body = sample_with(|v| v["discussion"]["num"] = num.clone());
        let answer = deliver("/webhooks/hub", &body);
        assert_eq!(answer.status, 422, "{num}: {answer:?}");
        assert_eq!(answer.json()["path"], "discussion.num");
    }
    still_serves();
}

#[test]
fn duplicate_keys() {
    let sample = String::from_utf8(hub_sample()).unwrap();
    let body = sample.replacen('{', r#"{"webhook": {"id": "x", "version": 3}, "#, 1);
    let answer = deliver("/webhooks/hub", body.as_bytes());
    assert_eq!(answer.status, 422, "{answer:?}");
    assert!(answer.json()["error"]
        .as_str()
        .unwrap()
        .contains("duplicate field"));
    still_serves();
}

#[test]
fn very_long_strings_in_every_field() {
    let long = "x".repeat(8 * 1024);
    fn lengthen(value: &mut Value, long: &str) {
        match value {
            Value::String(s) => *s = format!("{s}{long}"),
            Value::Array(items) => items.iter_mut().for_each(|v| lengthen(v, long)),
            Value::Object(map) => map.values_mut().for_each(|v| lengthen(v, long)),
            _ => {}
        }
    }
    // Every string but the enums' (which would then be unknown values, kept as such).
    let body = sample_with(|v| lengthen(v, &long));
    assert!(body.len() < LIMIT, "{}", body.len());
    let answer = deliver("/webhooks/hub", &body);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json()["repo"].as_str().unwrap().len(),
        "gpt2".len() + long.len()
    );
    still_serves();
}

#[test]
fn an_empty_body() {
    refused(&deliver("/webhooks/hub", b""), 400);
    let answer = deliver("/webhooks/bytes", b"");
    assert_eq!((answer.status, answer.body.as_str()), (200, "0"));
}

#[test]
fn content_types_are_not_checked() {
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("garbage;;"),
    ] {
        let mut headers = vec!["X-Webhook-Secret: s3cret".to_owned()];
        if let Some(ct) = content_type {
            headers.push(format!("Content-Type: {ct}"));
        }
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let answer = one(&post_raw("/webhooks/hub", &headers, &hub_sample()));
        assert_eq!(answer.status, 200, "{content_type:?}: {answer:?}");
    }
}

// --- 2. Sizes and lengths -----------------------------------------------------------

fn chunked(path: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nX-Webhook-Secret: s3cret\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for piece in body.chunks(chunk) {
        request.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend_from_slice(piece);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

#[test]
fn one_byte_over_the_limit() {
    let body = vec![b' '; LIMIT + 1];
    refused(&deliver("/webhooks/bytes", &body), 413);
    refused(&one(&chunked("/webhooks/bytes", &body, 16 * 1024)), 413);
    // At the limit exactly: accepted.
    let answer = deliver("/webhooks/bytes", &vec![b' '; LIMIT]);
    assert_eq!((answer.status, answer.body), (200, LIMIT.to_string()));
}

#[test]
fn far_over_the_limit() {
    let body = vec![b' '; 8 * LIMIT];
    refused(&deliver("/webhooks/bytes", &body), 413);
    refused(&one(&chunked("/webhooks/bytes", &body, 64 * 1024)), 413);
    // Declared far over, nothing sent: answered at once from the header.
    let request = b"POST /webhooks/bytes HTTP/1.1\r\nHost: t\r\nX-Webhook-Secret: s3cret\r\nContent-Length: 1000000000\r\n\r\n";
    refused(&exchange(request, Duration::from_secs(10)).remove(0), 413);
}

#[test]
fn a_content_length_that_lies() {
    // Says more than it sends, then waits: the body timeout answers 408 and closes.
    /// Sends `request`, whose body never all comes: one 408, and the server closes.
    fn answered_408_and_closed(request: &[u8]) {
        let started = Instant::now();
        let answers = exchange(request, Duration::from_secs(10));
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert_eq!(answers[0].status, 408, "{answers:?}");
        assert!(
            started.elapsed() < Duration::from_secs(9),
            "closed by the server, not the client"
        );
        still_serves();
    }
    let mut request = post_raw(
        "/webhooks/hub",
        &["X-Webhook-Secret: s3cret"],
        &hub_sample(),
    );
    request.truncate(request.len() - 10);
    answered_408_and_closed(&request);
    // Says it has a body and sends none of it: the same 408, though no body byte ever
    // wakes the handler (its body timer is armed at its second poll).
    answered_408_and_closed(b"POST /webhooks/hub HTTP/1.1\r\nHost: t\r\nX-Webhook-Secret: s3cret\r\nContent-Length: 100\r\n\r\n");
    // Says less than it sends: the body is cut short (400), the rest is not a request.
    let sample = hub_sample();
    let mut request = format!(
        "POST /webhooks/hub HTTP/1.1\r\nHost: t\r\nX-Webhook-Secret: s3cret\r\nContent-Length: {}\r\n\r\n",
        sample.len() / 2
    )
    .into_bytes();
    request.extend_from_slice(&sample);
    let answers = exchange(&request, Duration::from_secs(5));
    assert_eq!(answers[0].status, 400, "{answers:?}");
    assert!(
        answers.iter().skip(1).all(|a| a.status == 400),
        "{answers:?}"
    );
    still_serves();
}

#[test]
fn headers_too_large_and_too_many() {
    let big = format!("X-Big: {}", "a".repeat(200 * 1024));
    let answer = one(&post_raw(
        "/webhooks/hub",
        &["X-Webhook-Secret: s3cret", &big],
        &hub_sample(),
    ));
    assert_eq!(answer.status, 431, "{answer:?}");
    still_serves();
    let many: Vec<String> = (0..200).map(|i| format!("X-Header-{i}: {i}")).collect();
    let mut headers: Vec<&str> = many.iter().map(String::as_str).collect();
    headers.push("X-Webhook-Secret: s3cret");
    let answer = one(&post_raw("/webhooks/hub", &headers, &hub_sample()));
    assert_eq!(
        answer.status, 431,
        "more than actix-web's 96 headers: {answer:?}"
    );
    still_serves();
}
