//! A throwaway PostgreSQL server for the tests: `initdb` into a temporary folder, then
//! `postgres` on a free loopback port under a [`Guard`] (killed with its process group when
//! dropped, a failed test included). Needs Debian's `postgresql` package; without it the
//! tests say `skipped: ...` and pass, unless `HOOKSERVER_REQUIRE_POSTGRES=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{optional, Guard};

/// A running PostgreSQL server and its folder.
pub struct PgServer {
    process: Option<Guard>,
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    databases: std::sync::atomic::AtomicUsize,
}

/// Where the server programs are: `initdb` on `PATH`'s folder, or Debian's folder.
fn bin_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    if let Some(initdb) = super::process::on_path("initdb") {
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        candidates.insert(0, real.parent()?.to_path_buf());
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args`, as the `postgres` user when this is root (PostgreSQL refuses root).
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl PgServer {
    /// A fresh server, or `None` (the test passes, having said `skipped: ...`).
    pub fn start() -> Option<PgServer> {
        let bin = bin_dir();
        let missing = "PostgreSQL's server programs are not installed (apt-get install postgresql)";
        if !optional("POSTGRES", bin.is_some(), missing) {
            return None;
        }
        let bin = bin.unwrap();
        let dir = super::scratch_dir("postgres");
        if is_root() {
            let chown = Command::new("chown")
                .args(["postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(chown.success());
        }
        let initdb = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-U",
                "hookserver",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let mut server = PgServer {
            process: None,
            bin,
            dir,
            port: super::free_port(),
            databases: std::sync::atomic::AtomicUsize::new(0),
        };
        server.run();
        Some(server)
    }

    /// Starts `postgres` on the folder and waits until it takes connections (trying again
    /// while the previous server's processes are still going away).
    fn run(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.try_run() {
            assert!(Instant::now() < deadline, "postgres did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn try_run(&mut self) -> bool {
        let mut process = Guard::spawn(
            as_server_user(&self.bin.join("postgres"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-p", &self.port.to_string(), "-k"])
                .arg(&self.dir)
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "max_connections=200",
                    // Dynamic shared memory as files in the data folder, removed with it:
                    // the default (POSIX, in /dev/shm) outlives a killed server.
                    "-c",
                    "dynamic_shared_memory_type=mmap",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("postgres starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if process.child().try_wait().ok().flatten().is_some() {
                return false;
            }
            let ready = self
                .client("pg_isready")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                self.process = Some(process);
                return true;
            }
            assert!(Instant::now() < deadline, "postgres did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server at once (SIGKILL on its process group) and starts it again on the
    /// same folder and port: what a database crash and restart look like to its clients.
    pub fn restart_after(&mut self, down: Duration) {
        self.process.take();
        std::thread::sleep(down);
        self.run();
    }

    /// Freezes every process of the server (SIGSTOP on its process group, and on the
    /// backends, which PostgreSQL puts in sessions of their own) until the returned value
    /// is dropped (SIGCONT): a database that stops answering, its connections still open.
    pub fn freeze(&self) -> Frozen {
        use nix::sys::signal::{kill, killpg, Signal};
        use nix::unistd::Pid;
        let group = self.process.as_ref().expect("postgres runs").id();
        let group = Pid::from_raw(group as i32);
        killpg(group, Signal::SIGSTOP).unwrap();
        // The postmaster is stopped: it forks no new backend while the tree is read.
        let members = descendants(group.as_raw());
        for &pid in &members {
            let _ = kill(Pid::from_raw(pid), Signal::SIGSTOP);
        }
        Frozen { group, members }
    }

    /// A new empty database's URL.
    pub fn database(&self) -> String {
        let n = self
            .databases
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("hooks_{n}");
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// A client program (`psql`, `pg_isready`) pointed at this server as `hookserver`.
    fn client(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "hookserver",
        ]);
        command
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://hookserver@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs `sql` in `database` with psql; its output.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        let output = self
            .client("psql")
            .args(["-d", database])
            .args(["-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

/// The processes under `root` (its children, theirs, ...), from `/proc`.
fn descendants(root: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`: the name may hold spaces; read after its `)`.
            let ppid = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// A frozen server: thawed (SIGCONT) when dropped, a failed test included.
pub struct Frozen {
    group: nix::unistd::Pid,
    members: Vec<i32>,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, killpg, Signal};
        for &pid in &self.members {
            let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGCONT);
        }
        let _ = killpg(self.group, Signal::SIGCONT);
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.process.take();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
