//! Choosing the address: the 7860..=7959 fallback, a chosen port that is taken, and the
//! environment variables. These tests change the process's environment, so they run one
//! at a time, in this binary of their own.

mod common;

use std::net::TcpListener;
use std::sync::Mutex;

use hookserver::{Error, WebhooksServer, DEFAULT_PORT, LAST_FALLBACK_PORT};

static ENV: Mutex<()> = Mutex::new(());

fn with_env<T>(vars: &[(&str, &str)], f: impl FnOnce() -> T) -> T {
    let _guard = ENV
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let names = [
        "HOOKSERVER_HOST",
        "HOOKSERVER_PORT",
        "SPACE_ID",
        "SYSTEM",
        "SPACE_HOST",
    ];
    for name in names {
        std::env::remove_var(name);
    }
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
    let out = f();
    for name in names {
        std::env::remove_var(name);
    }
    out
}

#[test]
fn when_7860_is_taken_the_next_free_port_is_used() {
    with_env(&[], || {
        // Take 7860 and 7861 (if another program holds one, it is taken all the same).
        let held: Vec<_> = [DEFAULT_PORT, DEFAULT_PORT + 1]
            .iter()
            .filter_map(|port| TcpListener::bind(("127.0.0.1", *port)).ok())
            .collect();
        let server = WebhooksServer::empty().launch_background().unwrap();
        let port = server.addr().port();
        assert!(
            (DEFAULT_PORT + 2..=LAST_FALLBACK_PORT).contains(&port),
            "got port {port}"
        );
        assert_eq!(
            common::get(&format!("{}/healthz", server.url())).status,
            200
        );
        server.stop();
        drop(held);
    });
}

#[test]
fn a_chosen_port_that_is_taken_is_a_clear_error() {
    with_env(&[], || {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = WebhooksServer::empty()
            .port(port)
            .launch_background()
            .unwrap_err();
        assert!(matches!(err, Error::AddrInUse { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
        assert!(err.to_string().contains("already in use"), "{err}");
        // The same through the environment.
        let err = with_env_inner(&[("HOOKSERVER_PORT", &port.to_string())], || {
            WebhooksServer::empty().launch_background().unwrap_err()
        });
        assert!(matches!(err, Error::AddrInUse { .. }), "{err:?}");
    });
}

fn with_env_inner<T>(vars: &[(&str, &str)], f: impl FnOnce() -> T) -> T {
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
    let out = f();
    for (name, _) in vars {
        std::env::remove_var(name);
    }
    out
}

#[test]
fn host_and_port_from_the_environment() {
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    with_env(
        &[
            ("HOOKSERVER_HOST", "127.0.0.1"),
            ("HOOKSERVER_PORT", &free.to_string()),
        ],
        || {
            let server = WebhooksServer::empty().launch_background().unwrap();
            assert_eq!(server.addr().port(), free);
            server.stop();
        },
    );
    with_env(&[("HOOKSERVER_PORT", "not-a-port")], || {
        let err = WebhooksServer::empty().launch_background().unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(err.to_string().contains("HOOKSERVER_PORT"), "{err}");
    });
}

#[test]
fn on_a_space_it_listens_everywhere_and_prints_the_space_url() {
    with_env(
        &[
            ("SPACE_ID", "me/bot"),
            ("SPACE_HOST", "me-bot.hf.space"),
            ("HOOKSERVER_PORT", "0"),
        ],
        || {
            let mut app = WebhooksServer::empty();
            app.add_webhook("trigger_training", || async {}).unwrap();
            let server = app.launch_background().unwrap();
            assert!(server.addr().ip().is_unspecified(), "{}", server.addr());
            assert_eq!(server.public_url(), "https://me-bot.hf.space");
            assert!(server
                .instructions()
                .contains("  - POST https://me-bot.hf.space/webhooks/trigger_training"));
            // Reachable on loopback all the same.
            let page = common::get(&format!("{}/", server.url()));
            assert!(page.body.contains("running on a Space"));
            server.stop();
        },
    );
    with_env(&[("SYSTEM", "spaces"), ("HOOKSERVER_PORT", "0")], || {
        let server = WebhooksServer::empty().launch_background().unwrap();
        assert!(server.addr().ip().is_unspecified());
        server.stop();
    });
}
