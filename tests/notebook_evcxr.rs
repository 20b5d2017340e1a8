//! A real, scripted evcxr session (evcxr reads cells from standard input, one per line):
//! endpoints defined in cells are served after `hookserver::launch()`, which returns at
//! once; after more endpoints and a redefinition, `launch()` again serves the new set on
//! the same address. Asserts on what evcxr printed.
//!
//! Needs `evcxr` (`cargo install evcxr_repl --version 0.22.0 --locked`; .ci/run installs
//! it). Without it the test says `skipped: ...` and passes, unless
//! `HOOKSERVER_REQUIRE_EVCXR=1` (set by `.ci/run`) makes that a failure.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::process::{on_path, optional, Guard};
use std::time::{Duration, Instant};

/// evcxr builds hookserver and its dependencies first: about two minutes on 2 cores.
const SESSION_LIMIT: Duration = Duration::from_secs(15 * 60);

fn cells(port: u16) -> String {
    let hookserver = concat!(env!("CARGO_MANIFEST_DIR"), "/hookserver");
    let sample = common::fixtures_dir().join("discussion.create.hfhub-tests.json");
    let sample = sample.display();
    // One cell per line.
    [
        // 1. The workspace's hookserver (no tunnel: a quicker build).
        format!(r#":dep hookserver = {{ path = "{hookserver}", default-features = false }}"#),
        // 2. Endpoint A.
        r#"#[hookserver::webhook_endpoint] async fn alpha(payload: hookserver::WebhookPayload) -> String { format!("alpha saw {}", payload.repo.name) }"#.to_owned(),
        // 3. Serve: returns at once.
        r#"hookserver::launch().unwrap(); println!("cell 3 returned");"#.to_owned(),
        // 4. A Hub sample posted to A from Rust code in the cell.
        format!(
            r#"fn post(path: &str) -> String {{ use std::io::{{Read, Write}}; let body = std::fs::read("{sample}").unwrap(); let mut s = std::net::TcpStream::connect(("127.0.0.1", {port})).unwrap(); write!(s, "POST {{path}} HTTP/1.1\r\nHost: notebook\r\nContent-Type: application/json\r\nContent-Length: {{}}\r\nConnection: close\r\n\r\n", body.len()).unwrap(); s.write_all(&body).unwrap(); let mut out = String::new(); s.read_to_string(&mut out).unwrap(); let status = out.lines().next().unwrap_or("").to_owned(); let reply = out.split("\r\n\r\n").nth(1).unwrap_or("").to_owned(); format!("{{status}} | {{reply}}") }}"#
        ),
        r#"println!("cell 4 A: {}", post("/webhooks/alpha"));"#.to_owned(),
        // 5. Endpoint B, a plain fn, queued (on the inbox file the test names).
        r#"#[hookserver::webhook_endpoint(queue)] fn beta() {}"#.to_owned(),
        // 6. Relaunch.
        r#"hookserver::launch().unwrap(); println!("cell 6 returned");"#.to_owned(),
        // 7. A and B both answer.
        r#"println!("cell 7 A: {}", post("/webhooks/alpha")); println!("cell 7 B: {}", post("/webhooks/beta"));"#.to_owned(),
        // 8. A redefined, relaunched: the new A answers, no duplicate-path error.
        r#"#[hookserver::webhook_endpoint] async fn alpha(payload: hookserver::WebhookPayload) -> String { format!("alpha v2 saw {}", payload.event.scope) }"#.to_owned(),
        r#"hookserver::launch().unwrap(); println!("cell 9 returned");"#.to_owned(),
        r#"println!("cell 10 A: {}", post("/webhooks/alpha")); println!("cell 10 B: {}", post("/webhooks/beta"));"#.to_owned(),
    ]
    .join("\n")
        + "\n"
}

#[test]
fn endpoints_from_cells_are_served_and_relaunch_serves_the_new_set() {
    let present = on_path("evcxr").is_some();
    let missing = "evcxr is not installed (cargo install evcxr_repl --version 0.22.0 --locked)";
    if !optional("EVCXR", present, missing) {
        return;
    }
    let port = common::free_port();
    let inbox = std::env::temp_dir().join(format!("hookserver-evcxr-{}.redb", std::process::id()));
    let _ = std::fs::remove_file(&inbox);
    let _ = std::fs::remove_file(inbox.with_extension("redb-wal"));
    // evcxr and the runtime process it starts share the guard's process group.
    let mut guard = Guard::spawn(
        Command::new("evcxr")
            .env_remove("WEBHOOK_SECRET")
            .env_remove("EVCXR_IS_RUNTIME")
            .env_remove("SPACE_ID")
            .env_remove("SPACE_HOST")
            .env("HOOKSERVER_HOST", "127.0.0.1")
            .env("HOOKSERVER_PORT", port.to_string())
            .env("HOOKSERVER_INBOX", &inbox)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap_or_else(|err| panic!("cannot run evcxr: {err}"));
    let evcxr = guard.child();
    evcxr
        .stdin
        .take()
        .unwrap()
        .write_all(cells(port).as_bytes())
        .unwrap();
    // Standard input closes here: evcxr ends after the last cell.
    let stdout = evcxr.stdout.take().unwrap();
    let stderr = evcxr.stderr.take().unwrap();
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let started = Instant::now();
    while evcxr.try_wait().unwrap().is_none() {
        if started.elapsed() > SESSION_LIMIT {
            panic!("the evcxr session ran past {SESSION_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = out.join().unwrap();
    let err = err.join().unwrap();
    let printed: Vec<&str> = out.lines().collect();
    let context = format!(
        "stdout:\n{out}\nstderr (last 3000 bytes):\n{}",
        tail(&err, 3000)
    );

    let position = |wanted: &str| {
        printed
            .iter()
            .position(|line| *line == wanted)
            .unwrap_or_else(|| panic!("{wanted:?} not printed\n{context}"))
    };
    let url = |path: &str| format!("  - POST http://127.0.0.1:{port}/webhooks/{path}");
    // Cells 2-3: A served, launch() returned.
    let first = position(&url("alpha"));
    assert!(position("cell 3 returned") > first, "{context}");
    // Cell 4: the Hub sample reached A.
    assert!(
        printed.contains(&"cell 4 A: HTTP/1.1 200 OK | alpha saw gpt2"),
        "{context}"
    );
    // Cells 5-7: the relaunch serves A and B on the same address.
    assert!(printed.contains(&url("beta").as_str()), "{context}");
    assert!(printed.contains(&"cell 6 returned"), "{context}");
    assert!(
        printed.contains(&"cell 7 A: HTTP/1.1 200 OK | alpha saw gpt2"),
        "{context}"
    );
    assert!(
        printed.contains(&"cell 7 B: HTTP/1.1 202 Accepted | {\"queued\":\"1\"}"),
        "{context}"
    );
    // Cells 8-10: the redefinition replaced A.
    assert!(printed.contains(&"cell 9 returned"), "{context}");
    assert!(
        printed.contains(&"cell 10 A: HTTP/1.1 200 OK | alpha v2 saw discussion"),
        "{context}"
    );
    // The relaunch reopened the same inbox: the same body is a duplicate of the first.
    assert!(
        printed.contains(&"cell 10 B: HTTP/1.1 200 OK | {\"duplicate\":\"1\"}"),
        "{context}"
    );
    // Three launches, each printing the instructions, and no error.
    let launches = printed
        .iter()
        .filter(|line| line.starts_with("Webhooks are correctly setup"))
        .count();
    assert_eq!(launches, 3, "{context}");
    assert!(!out.contains("already exists"), "{context}");
    assert!(
        !err.contains("error["),
        "a cell failed to compile\n{context}"
    );
    let _ = std::fs::remove_file(&inbox);
    let _ = std::fs::remove_file(inbox.with_extension("redb-wal"));
}

fn tail(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
