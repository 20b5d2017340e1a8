//! The example bots run as a user runs them: built once per test run, their standard
//! output read up to the instructions, their standard error kept, stopped by a signal.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The example's binary, beside the test binaries; built (or found up to date) by
/// `cargo build --example` once per run, so that `cargo test --test examples` alone never
/// runs a stale bot.
pub fn example_binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let deps = std::env::current_exe().unwrap();
    let path = deps
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !built.iter().any(|n| n == name) {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --example {name} failed");
        built.push(name.to_owned());
    }
    path
}

/// Runs the example with `env` where it must fail at launch: checks it exits with 1,
/// and gives its standard error.
pub fn launch_error(name: &str, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(example_binary(name));
    command.envs(env.iter().copied());
    launch_error_of(name, command)
}

/// [`launch_error`] for a command made ready (with variables that are not UTF-8, say).
/// A bot that launches instead is killed after 30 s and fails the test.
pub fn launch_error_of(name: &str, mut command: Command) -> String {
    let mut child = Guard::spawn(command.stdout(Stdio::null()).stderr(Stdio::piped())).unwrap();
    let stderr = child.child().stderr.take().unwrap();
    let read = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.child().try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} launched where it must not"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = read.join().unwrap();
    assert_eq!(status.code(), Some(1), "{name}: {stderr}");
    stderr
}

use super::process::Guard;

/// A running example and what it printed up to the instructions' last line. It runs in a
/// process group of its own, killed when the `Bot` is dropped (a failed test included).
pub struct Bot {
    pub child: Guard,
    pub printed: Vec<String>,
    /// Standard error, line by line.
    pub stderr: mpsc::Receiver<String>,
    /// Keeps the reader of standard output alive, so that the bot never writes to a
    /// closed pipe.
    pub stdout: mpsc::Receiver<String>,
}

impl Bot {
    pub fn start(name: &str, env: &[(&str, &str)]) -> Bot {
        Bot::start_command(name, Command::new(example_binary(name)), env)
    }

    /// Starts `command` (the example `name`, perhaps behind a wrapper such as a shell that
    /// sets a limit first) as [`Bot::start`] does.
    pub fn start_command(name: &str, mut command: Command, env: &[(&str, &str)]) -> Bot {
        command
            .env_remove("WEBHOOK_SECRET")
            .env_remove("SPACE_ID")
            .env_remove("SPACE_HOST")
            .env_remove("SYSTEM")
            .env("HOOKSERVER_HOST", "127.0.0.1")
            .env("HOOKSERVER_PORT", "0")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = Guard::spawn(&mut command).unwrap();
        let stdout = child.child().stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.child().stderr.take().unwrap();
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if err_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut printed = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    let done = line.starts_with("Go to https://huggingface.co/settings/webhooks");
                    printed.push(line);
                    if done {
                        break;
                    }
                }
                Err(_) => {
                    // Dropping the guard kills the bot.
                    panic!("{name} printed no instructions: {printed:?}");
                }
            }
        }
        Bot {
            child,
            printed,
            stderr: err_rx,
            stdout: rx,
        }
    }

    /// The bot's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The URLs of the `  - POST URL` lines.
    pub fn urls(&self) -> Vec<String> {
        self.printed
            .iter()
            .filter_map(|line| line.strip_prefix("  - POST "))
            .map(str::to_owned)
            .collect()
    }

    pub fn url_of(&self, path: &str) -> String {
        self.urls()
            .into_iter()
            .find(|url| url.ends_with(path))
            .unwrap_or_else(|| panic!("{path} not in {:?}", self.printed))
    }

    pub fn base(&self) -> String {
        let url = &self.urls()[0];
        url[..url.find("/webhooks/").unwrap()].to_owned()
    }

    /// Sends `signal` (`TERM`, `INT`, ...) to the bot.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Sends `signal`; the exit code once the bot has exited, or `None` when it is still
    /// running after `limit` (the bot is killed when dropped).
    pub fn exits_within(&mut self, signal: &str, limit: Duration) -> Option<Option<i32>> {
        self.signal(signal);
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.child().try_wait().unwrap() {
                return Some(status.code());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Sends `signal` and returns the exit code and standard error.
    pub fn stop_with(self, signal: &str) -> (Option<i32>, String) {
        let (code, _, stderr) = self.stop_with_output(signal);
        (code, stderr)
    }

    /// Sends `signal` and returns the exit code, all of standard output (the
    /// instructions included) and standard error.
    pub fn stop_with_output(mut self, signal: &str) -> (Option<i32>, String, String) {
        self.signal(signal);
        let code = self.child.child().wait().unwrap().code();
        // The child has exited: its output ends, and the readers with it.
        let stderr: Vec<String> = self.stderr.iter().collect();
        let mut stdout = std::mem::take(&mut self.printed);
        stdout.extend(self.stdout.iter());
        (code, stdout.join("\n"), stderr.join("\n"))
    }
}
