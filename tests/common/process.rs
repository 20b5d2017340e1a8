//! Child processes that end with their test, and the rule for optional external programs.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// A child process in a process group of its own. Dropping the guard kills the whole group
/// (the child and anything it started) and reaps the child, so a failing assertion or a
/// panic in the test still ends it: nothing outlives the test run.
#[derive(Debug)]
pub struct Guard {
    child: Child,
}

impl Guard {
    /// Spawns `command` as the leader of a new process group.
    pub fn spawn(command: &mut Command) -> std::io::Result<Guard> {
        use std::os::unix::process::CommandExt;
        let child = command.process_group(0).spawn()?;
        Ok(Guard { child })
    }

    /// The child, to take its pipes, signal it or wait for it.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The child's process id (also its process group's).
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let group = Pid::from_raw(self.child.id() as i32);
        // The group outlives its leader while a member runs: kill it even if the child
        // has exited already.
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `program` is: a file in one of `PATH`'s folders (or, given as a
/// path, that file if it exists).
pub fn on_path(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The rule for a test that needs an optional external program: when `present`, go on;
/// otherwise print `skipped: <missing>` and return `false` (the test passes), unless
/// `HOOKSERVER_REQUIRE_<what>=1` is set (`.ci/run` sets them all), which makes the
/// missing program a failure.
pub fn optional(what: &str, present: bool, missing: &str) -> bool {
    if present {
        return true;
    }
    let variable = format!("HOOKSERVER_REQUIRE_{what}");
    assert!(
        std::env::var_os(&variable).as_deref() != Some(OsStr::new("1")),
        "{variable}=1 but {missing}"
    );
    // Straight to stderr, past the test harness's capture: a skip is seen in every run.
    let _ = writeln!(std::io::stderr(), "skipped: {missing}");
    false
}
