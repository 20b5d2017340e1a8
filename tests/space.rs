//! The Space recipe (examples/space/): the Dockerfile and the Space header say what a
//! Space needs, prepare.sh lays out a Space repository, and the bot run with a Space's
//! environment listens on every address and prints the Space's URLs. (No Docker engine
//! runs here; .ci/run lints the Dockerfile with hadolint.)

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::bot::Bot;
use common::{free_port, get, hub_sample, post};

fn space_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/space")
}

#[test]
fn the_dockerfile_builds_the_bot_in_two_stages_and_runs_it_unprivileged_on_7860() {
    let dockerfile = std::fs::read_to_string(space_dir().join("Dockerfile")).unwrap();
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let froms: Vec<&&str> = instructions
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "multi-stage: {froms:?}");
    assert!(froms[0].starts_with("FROM rust:") && froms[0].ends_with(" AS build"));
    assert!(froms[1].contains("-slim"), "a slim run image: {}", froms[1]);
    assert!(dockerfile.contains("cargo build --release --example trigger_training"));
    assert!(instructions.contains(&"USER 1000"), "non-root");
    assert!(instructions.contains(&"EXPOSE 7860"));
    assert!(instructions.contains(&"ENV HOOKSERVER_PORT=7860"));
    assert_eq!(instructions.last(), Some(&r#"CMD ["trigger_training"]"#));
}

#[test]
fn the_space_readme_declares_a_docker_space_on_7860() {
    let readme = std::fs::read_to_string(space_dir().join("README.md")).unwrap();
    let header = readme
        .strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n"))
        .map(|(header, _)| header)
        .expect("a YAML header between --- lines");
    let lines: Vec<&str> = header.lines().collect();
    assert!(lines.contains(&"sdk: docker"), "{header}");
    assert!(lines.contains(&"app_port: 7860"), "{header}");
    assert!(lines.iter().any(|l| l.starts_with("title: ")), "{header}");
}

#[test]
fn prepare_lays_out_a_space_repository() {
    let dest = std::env::temp_dir().join(format!("hookserver-space-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dest);
    let output = Command::new("bash")
        .arg(space_dir().join("prepare.sh"))
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "Dockerfile",
        "README.md",
        ".dockerignore",
        "Cargo.toml",
        "hookserver/Cargo.toml",
        "hookserver-macros/Cargo.toml",
        "examples/trigger_training.rs",
    ] {
        assert!(dest.join(file).is_file(), "{file} missing");
    }
    assert_eq!(
        std::fs::read(dest.join("Dockerfile")).unwrap(),
        std::fs::read(space_dir().join("Dockerfile")).unwrap()
    );
    assert!(std::fs::read_to_string(dest.join("README.md"))
        .unwrap()
        .contains("sdk: docker"));
    assert!(!dest.join("target").exists(), "build output is not copied");
    std::fs::remove_dir_all(&dest).unwrap();
}

/// A port that was free a moment ago.
/// Whether something answers on `127.0.0.2:port`: only a server listening on every
/// address (0.0.0.0) does; one on 127.0.0.1 does not.
fn answers_on_another_address(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 2], port)),
        Duration::from_secs(2),
    )
    .is_ok()
}

#[test]
fn on_a_space_the_bot_listens_everywhere_and_prints_the_space_urls() {
    let port = free_port().to_string();
    let bot = Bot::start(
        "trigger_training",
        &[
            ("SPACE_ID", "me/training-bot"),
            ("SPACE_HOST", "me-training-bot.hf.space"),
            ("HOOKSERVER_HOST", ""),
            ("HOOKSERVER_PORT", &port),
        ],
    );
    assert_eq!(
        bot.urls(),
        ["https://me-training-bot.hf.space/webhooks/trigger_training"]
    );
    let port: u16 = port.parse().unwrap();
    assert!(answers_on_another_address(port), "bound to 0.0.0.0");
    let local = format!("http://127.0.0.2:{port}");
    assert_eq!(get(&format!("{local}/healthz")).status, 200);
    let landing = get(&format!("{local}/"));
    assert!(landing
        .body
        .contains("https://me-training-bot.hf.space/webhooks/trigger_training"));
    let reply = post(
        &format!("{local}/webhooks/trigger_training"),
        &hub_sample(),
        &[],
    );
    assert_eq!(reply.status, 200);
    let (code, _) = bot.stop_with("TERM");
    assert_eq!(code, Some(0));

    // The control: off a Space, the bot listens on loopback only.
    let port = free_port().to_string();
    let bot = Bot::start(
        "trigger_training",
        &[("HOOKSERVER_HOST", ""), ("HOOKSERVER_PORT", &port)],
    );
    assert_eq!(
        bot.urls(),
        [format!("http://127.0.0.1:{port}/webhooks/trigger_training")]
    );
    assert!(!answers_on_another_address(port.parse().unwrap()));
    let (code, _) = bot.stop_with("TERM");
    assert_eq!(code, Some(0));
}
