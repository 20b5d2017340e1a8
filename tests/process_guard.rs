//! No process outlives its test: a test that starts a bot and then fails still ends it.
//! The failing test runs in a child process (this test binary, run again on that one
//! ignored test); the bot it started must be gone once it has failed. Nor does what a
//! test's PostgreSQL server makes: its shared memory goes with its folder.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::bot::Bot;

const PID_FILE: &str = "HOOKSERVER_GUARD_TEST_PID_FILE";

#[test]
#[ignore = "run by a_test_that_fails_leaves_no_bot_behind, in a child process"]
fn starts_a_bot_then_fails() {
    let Some(pid_file) = std::env::var_os(PID_FILE) else {
        return;
    };
    let bot = Bot::start("trigger_training", &[]);
    std::fs::write(pid_file, bot.id().to_string()).unwrap();
    assert_eq!(1 + 1, 3, "a failing assertion while the bot runs");
}

/// Whether process `pid` still runs (a zombie, dead but not yet reaped, does not).
fn running(pid: &str) -> bool {
    match std::fs::read_to_string(Path::new("/proc").join(pid).join("stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn a_test_that_fails_leaves_no_bot_behind() {
    let pid_file = std::env::temp_dir().join(format!("hookserver-guard-{}", std::process::id()));
    let _ = std::fs::remove_file(&pid_file);
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "starts_a_bot_then_fails", "--ignored"])
        .env(PID_FILE, &pid_file)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "the inner test passed: {printed}");
    assert!(
        printed.contains("a failing assertion while the bot runs"),
        "{printed}"
    );
    let pid = std::fs::read_to_string(&pid_file).expect("the inner test started a bot");
    let _ = std::fs::remove_file(&pid_file);
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(&pid) {
        if Instant::now() > deadline {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("bot {pid} outlived the test that started it");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// PostgreSQL's shared memory segments in `/dev/shm`.
fn postgres_segments() -> std::collections::HashSet<String> {
    let Ok(entries) = std::fs::read_dir("/dev/shm") else {
        return Default::default();
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("PostgreSQL."))
        .collect()
}

/// A test's PostgreSQL server is killed with its process group, which gives it no time to
/// remove what it made: its dynamic shared memory lives in its data folder, removed with
/// it, not in `/dev/shm`, where each run left segments behind.
#[test]
fn a_test_s_postgres_server_leaves_no_shared_memory_behind() {
    let before = postgres_segments();
    {
        let Some(pg) = common::postgres::PgServer::start() else {
            return;
        };
        let database = pg.database();
        pg.sql(&database, "SELECT 1");
    }
    let left: Vec<String> = postgres_segments().difference(&before).cloned().collect();
    assert!(left.is_empty(), "left in /dev/shm: {left:?}");
}
