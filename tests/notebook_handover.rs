//! Notebook mode in one process (what evcxr's runtime does, without evcxr): with
//! `EVCXR_IS_RUNTIME=1`, `launch()` returns at once and the server keeps running, and the
//! next `launch()` stops it (through its control socket) and serves the new set on the
//! same address. The real evcxr session is tests/notebook_evcxr.rs.

mod common;

use common::{get, hub_sample, post};
use hookserver::WebhooksServer;

fn server(paths: &[&'static str]) -> WebhooksServer {
    let mut app = WebhooksServer::empty();
    for &path in paths {
        app.add_webhook(path, move || async move { format!("from {path}") })
            .unwrap();
    }
    app
}

#[test]
fn launch_returns_and_a_relaunch_takes_over_the_address() {
    // This test binary holds this one test: nothing else reads the environment meanwhile.
    std::env::set_var("EVCXR_IS_RUNTIME", "1");
    std::env::remove_var("WEBHOOK_SECRET");
    std::env::set_var("HOOKSERVER_HOST", "127.0.0.1");
    let port = common::free_port();
    // A chosen port: a relaunch would fail with "address in use" if the previous server
    // were still listening.
    std::env::set_var("HOOKSERVER_PORT", port.to_string());
    let base = format!("http://127.0.0.1:{port}/webhooks");

    server(&["a"]).launch().expect("returns at once");
    let reply = post(&format!("{base}/a"), &hub_sample(), &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "from a"));

    // More endpoints: served on the same address, the first one still there.
    server(&["a", "b"])
        .launch()
        .expect("takes over the address");
    assert_eq!(post(&format!("{base}/a"), &hub_sample(), &[]).status, 200);
    let reply = post(&format!("{base}/b"), &hub_sample(), &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "from b"));

    // A new set replaces the old one: what is gone answers 404.
    server(&["c"]).launch().unwrap();
    assert_eq!(post(&format!("{base}/a"), &hub_sample(), &[]).status, 404);
    assert_eq!(post(&format!("{base}/c"), &hub_sample(), &[]).status, 200);
    assert!(get(&format!("http://127.0.0.1:{port}/"))
        .body
        .contains("/webhooks/c"));

    // No port chosen: the relaunch takes the running server's address (not 7860).
    std::env::remove_var("HOOKSERVER_PORT");
    server(&["e"]).launch().unwrap();
    let reply = post(&format!("{base}/e"), &hub_sample(), &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "from e"));

    // A bad configuration is refused before the running server is stopped.
    std::env::set_var("HOOKSERVER_PORT", "not a port");
    assert!(server(&["d"]).launch().is_err());
    std::env::set_var("HOOKSERVER_PORT", port.to_string());
    assert_eq!(post(&format!("{base}/e"), &hub_sample(), &[]).status, 200);

    // Queued endpoints: a relaunch reopens the same inbox (no "already open"), with what
    // the previous server stored.
    let dir = std::env::temp_dir().join(format!("hookserver-handover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::env::set_var("HOOKSERVER_INBOX", dir.join("inbox.redb"));
    let queued = || {
        let mut app = WebhooksServer::empty();
        app.add_queued_webhook("q", || async {}).unwrap();
        app
    };
    queued().launch().unwrap();
    let reply = post(
        &format!("{base}/q"),
        &hub_sample(),
        &[("webhook-id", "nb-1")],
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    queued().launch().expect("a relaunch reopens the inbox");
    let again = post(
        &format!("{base}/q"),
        &hub_sample(),
        &[("webhook-id", "nb-1")],
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body.contains("duplicate"), "{}", again.body);
    std::env::remove_var("HOOKSERVER_INBOX");
    let _ = std::fs::remove_dir_all(&dir);

    another_user_s_folder_is_never_asked(port);
}

/// The control socket sits in a folder of this user's alone; a folder at that place that
/// others could write into is refused, so a socket put there (by another user: here an
/// impostor answering with a public address) is never asked, and the relaunch does not
/// listen where it says.
fn another_user_s_folder_is_never_asked(port: u16) {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    let mine = std::env::temp_dir().join(format!("hookserver-mine-{}", std::process::id()));
    std::fs::write(&mine, b"").unwrap();
    let uid = std::fs::metadata(&mine).unwrap().uid();
    std::fs::remove_file(&mine).unwrap();
    let folder = std::env::temp_dir().join(format!("hookserver-{uid}"));
    let meta = std::fs::symlink_metadata(&folder).unwrap();
    assert!(meta.is_dir());
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o700, uid));
    let socket = folder.join(format!("notebook-{}.sock", std::process::id()));
    assert!(socket.exists(), "the running server's control socket");

    // The folder opened to everyone (closed again at the end, a failure included), and
    // the socket taken over by an impostor.
    struct Reclose(std::path::PathBuf);
    impl Drop for Reclose {
        fn drop(&mut self) {
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
        }
    }
    let _reclose = Reclose(folder.clone());
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::remove_file(&socket).unwrap();
    let impostor = UnixListener::bind(&socket).unwrap();
    impostor.set_nonblocking(true).unwrap();
    let public_port = common::free_port();
    let asked = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (counted, ended) = (Arc::clone(&asked), Arc::clone(&done));
    let answering = std::thread::spawn(move || {
        while !ended.load(Ordering::SeqCst) {
            let Ok((stream, _)) = impostor.accept() else {
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            stream.set_nonblocking(false).unwrap();
            let mut line = String::new();
            let _ = BufReader::new(&stream).read_line(&mut line);
            let _ = writeln!(&stream, "stopped 0.0.0.0:{public_port}");
        }
    });
    std::env::remove_var("HOOKSERVER_PORT");
    server(&["f"])
        .launch()
        .expect("launches without the handover");
    assert_eq!(asked.load(Ordering::SeqCst), 0, "the impostor was asked");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", public_port)).is_err(),
        "the relaunch listens where the impostor said"
    );
    // The earlier server was not stopped (it cannot be found): it still answers.
    assert_eq!(get(&format!("http://127.0.0.1:{port}/")).status, 200);
    done.store(true, Ordering::SeqCst);
    answering.join().unwrap();
}
