//! Helpers shared by the integration tests: an HTTP client, the Hub's sample payloads,
//! servers on free loopback ports, child processes that end with their test, and the rule
//! for optional external programs.
#![allow(dead_code, unreachable_pub)]

pub mod bot;
pub mod postgres;
pub mod process;

use std::path::PathBuf;
use std::time::Duration;

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: Option<String>,
    pub allow: Option<String>,
    /// Every header, names lowercase.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.body))
    }

    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A client that follows no redirect and treats no status as an error.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// A new empty folder in the system's temporary folder, named for `what` and unique in
/// this run (the caller removes it).
pub fn scratch_dir(what: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("hookserver-{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `method url` with `body` and `headers`.
pub fn send(method: &str, url: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let agent = agent();
    let result = if body.is_empty() && matches!(method, "GET" | "HEAD" | "DELETE" | "OPTIONS") {
        agent.run(builder.body(()).unwrap())
    } else {
        agent.run(builder.body(body.to_vec()).unwrap())
    };
    let mut response = result.unwrap_or_else(|err| panic!("{method} {url}: {err}"));
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let content_type = header("content-type");
    let allow = header("allow");
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Reply {
        status: response.status().as_u16(),
        body: response.body_mut().read_to_string().unwrap_or_default(),
        content_type,
        allow,
        headers,
    }
}

/// `POST url` with a JSON body.
pub fn post(url: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send("POST", url, body, &all)
}

/// `GET url`.
pub fn get(url: &str) -> Reply {
    send("GET", url, b"", &[])
}

/// The folder of the Hub's sample payloads, `hookserver/samples/`: the one copy, built
/// into the crate (the dashboard's test sends) and read by the tests, scripts and benches.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hookserver/samples")
}

/// Every sample payload, by file name.
pub fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = fixtures_dir();
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    all.sort();
    assert!(!all.is_empty(), "no sample payloads in {}", dir.display());
    all
}

/// One sample payload.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap()
}

/// The Hub's documented sample (`huggingface_hub`'s `WEBHOOK_PAYLOAD_EXAMPLE`).
pub fn hub_sample() -> Vec<u8> {
    fixture("discussion.create.hfhub-tests.json")
}

/// Runs `server` on a free loopback port.
pub fn serve(server: hookserver::WebhooksServer) -> hookserver::ServerHandle {
    server
        .host("127.0.0.1")
        .port(0)
        .launch_background()
        .expect("the server starts")
}

/// An answer read off a raw connection: status, headers (names lowercase) and body.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.body))
    }
}

/// Sends `method path` to `addr` over a raw connection, with `headers` as given (`Host`
/// included: nothing is added but `Content-Length` and `Connection: close`).
pub fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Raw {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.get(9..12))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Whether `text` shows `secret` or any 10 characters in a row of it (a log that dumps
/// bytes 16 to a line splits a secret across lines).
pub fn shows_any_part_of(text: &str, secret: &str) -> bool {
    let width = secret.len().min(10);
    (0..=secret.len() - width).any(|at| text.contains(&secret[at..at + width]))
}

/// Waits up to `seconds` until `done` says yes (asking every 25 ms); fails naming `what`.
pub fn wait_until(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("timed out waiting for {what} ({:?})", started.elapsed());
}
