//! Notebooks (evcxr): there `launch()` returns at once and leaves the server running, and
//! calling it again serves the new set of endpoints on the same address.
//!
//! evcxr compiles each cell into a new library and loads it into one long-lived process
//! (the runtime, where it sets `EVCXR_IS_RUNTIME=1`). The registry a cell's `launch()`
//! sees holds every endpoint defined so far (a redefinition replacing the old item), but
//! a cell's library may carry its own copy of hookserver's statics, where the server an
//! earlier cell started cannot be found. So a launched notebook server listens, beside
//! its HTTP port, on a Unix socket named after the process, in a folder of its user's
//! alone (`$TMPDIR/hookserver-UID/notebook-PID.sock`): the next `launch()`, from whatever
//! copy, asks it there to stop, learns its address, and serves the new endpoints on that
//! address. Elsewhere than Unix the running server is kept in a static, which covers one
//! copy.

use std::net::SocketAddr;

use crate::error::Result;
use crate::logging::say;
use crate::server::{ServerHandle, WebhooksServer};

/// Whether this process is an evcxr runtime.
pub(crate) fn active() -> bool {
    std::env::var_os("EVCXR_IS_RUNTIME").is_some_and(|value| value == "1")
}

/// Starts `server` in the background after stopping the notebook's previous server, on
/// the previous server's address unless a port is chosen, and returns at once.
pub(crate) fn launch(server: &WebhooksServer) -> Result<()> {
    // Refuse a bad configuration before stopping what runs.
    server.check_launch()?;
    let mut server = server.clone();
    if let Some(previous) = stop_previous() {
        if server.chosen_port().is_none_or(|port| port == 0) {
            server = server.host(previous.ip().to_string()).port(previous.port());
        }
    }
    let handle = server.launch_background()?;
    say(
        "The server runs in the background; call launch() again to serve new or changed endpoints.",
    );
    keep(handle);
    Ok(())
}

#[cfg(unix)]
mod control {
    use std::io::{BufRead, BufReader, Write};
    use std::net::SocketAddr;
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::server::ServerHandle;

    /// The control socket of this process's notebook server, in this user's own folder
    /// (`$TMPDIR/hookserver-UID`, mode 0700), created if missing. A folder there that is
    /// not a folder of this user's alone is refused: another user could have put a socket
    /// of theirs in it (answering with an address of their choice, a public one, say) or
    /// connect to this one.
    fn path() -> std::io::Result<PathBuf> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        let uid = nix::unistd::getuid().as_raw();
        let dir = std::env::temp_dir().join(format!("hookserver-{uid}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => return Err(err),
            _ => {}
        }
        let meta = std::fs::symlink_metadata(&dir)?;
        if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{} is not a folder of this user's alone (mode 0700): remove it",
                    dir.display()
                ),
            ));
        }
        Ok(dir.join(format!("notebook-{}.sock", std::process::id())))
    }

    /// Asks the running notebook server, if any, to stop; returns its address.
    pub(super) fn stop_previous() -> Option<SocketAddr> {
        let path = match path() {
            Ok(path) => path,
            Err(err) => {
                tracing::warn!(error = %err, "no control socket: a server launched earlier in this notebook is not stopped");
                return None;
            }
        };
        let Ok(mut stream) = UnixStream::connect(&path) else {
            // Nothing listens: a file left by a process that had this id, or none.
            let _ = std::fs::remove_file(&path);
            return None;
        };
        // A graceful stop waits for in-flight deliveries (the shutdown timeout).
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        stream.write_all(b"stop\n").ok()?;
        let mut answer = String::new();
        BufReader::new(stream).read_line(&mut answer).ok()?;
        answer.trim().strip_prefix("stopped ")?.parse().ok()
    }

    /// Serves the control socket for `handle` on a thread of its own.
    pub(super) fn keep(handle: ServerHandle) {
        let listener = path().and_then(|path| {
            let _ = std::fs::remove_file(&path);
            Ok((bind_private(&path)?, path))
        });
        let (listener, path) = match listener {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "no control socket: the next launch() cannot stop this server");
                std::mem::forget(handle);
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("hookserver-notebook".to_owned())
            .spawn(move || serve(listener, path, handle));
        if let Err(err) = spawned {
            tracing::warn!(error = %err, "no control thread: the next launch() cannot stop this server");
        }
    }

    /// Binds `path` so that only this user can connect.
    fn bind_private(path: &PathBuf) -> std::io::Result<UnixListener> {
        use std::os::unix::fs::PermissionsExt;
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(listener)
    }

    /// Answers `stop` by stopping the server and saying where it listened.
    fn serve(listener: UnixListener, path: PathBuf, handle: ServerHandle) {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut line = String::new();
            let Ok(reader) = stream.try_clone() else {
                continue;
            };
            if BufReader::new(reader).read_line(&mut line).is_err() || line.trim() != "stop" {
                let _ = stream.write_all(b"unknown command\n");
                continue;
            }
            let addr = handle.addr();
            handle.stop();
            let _ = std::fs::remove_file(&path);
            let _ = writeln!(stream, "stopped {addr}");
            return;
        }
    }
}

#[cfg(not(unix))]
mod control {
    use std::net::SocketAddr;
    use std::sync::{Mutex, PoisonError};

    use crate::server::ServerHandle;

    static RUNNING: Mutex<Option<ServerHandle>> = Mutex::new(None);

    pub(super) fn stop_previous() -> Option<SocketAddr> {
        let handle = RUNNING
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        let addr = handle.addr();
        handle.stop();
        Some(addr)
    }

    pub(super) fn keep(handle: ServerHandle) {
        *RUNNING.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
    }
}

fn stop_previous() -> Option<SocketAddr> {
    control::stop_previous()
}

fn keep(handle: ServerHandle) {
    control::keep(handle);
}
