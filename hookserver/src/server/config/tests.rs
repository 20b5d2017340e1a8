//! `Config::resolve`: the builder's settings over the environment's, the defaults, and a
//! clear error for each value that cannot be read.

use super::*;
use std::collections::HashMap;

fn resolve(server: &WebhooksServer, vars: &[(&str, &str)]) -> Result<Config> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::resolve(server, |name| vars.get(name).cloned())
}

#[test]
fn defaults_are_local_and_port_unchosen() {
    let c = resolve(&WebhooksServer::empty(), &[]).unwrap();
    assert_eq!(c.host, "127.0.0.1");
    assert_eq!(c.port, None);
    assert!(!c.on_space);
    assert_eq!(c.base_url(7860), "http://127.0.0.1:7860");
}

#[test]
fn a_space_listens_everywhere_and_prints_its_https_url() {
    for vars in [&[("SPACE_ID", "me/bot")][..], &[("SYSTEM", "spaces")][..]] {
        let c = resolve(&WebhooksServer::empty(), vars).unwrap();
        assert_eq!(c.host, "0.0.0.0");
        assert!(c.on_space);
        // Its proxy sends to 7860 only: a port taken there is an error, not another port.
        assert_eq!(c.port, Some(7860));
    }
    let c = resolve(
        &WebhooksServer::empty(),
        &[("SPACE_ID", "me/bot"), ("SPACE_HOST", "me-bot.hf.space")],
    )
    .unwrap();
    assert_eq!(c.base_url(7860), "https://me-bot.hf.space");
    let c = resolve(&WebhooksServer::empty(), &[("SPACE_ID", "me/bot")]).unwrap();
    assert_eq!(c.base_url(7860), "http://127.0.0.1:7860");
}

#[test]
fn environment_then_builder() {
    let env = [("HOOKSERVER_HOST", "::1"), ("HOOKSERVER_PORT", "9000")];
    let c = resolve(&WebhooksServer::empty(), &env).unwrap();
    assert_eq!((c.host.as_str(), c.port), ("::1", Some(9000)));
    assert_eq!(c.base_url(9000), "http://[::1]:9000");
    let c = resolve(&WebhooksServer::empty().host("0.0.0.0").port(0), &env).unwrap();
    assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", Some(0)));
    // Spaces around it, and an IPv6 address in brackets (as in a URL), are read through.
    for written in [" 127.0.0.1 ", "[::1]", " [::1]\n"] {
        let c = resolve(&WebhooksServer::empty(), &[("HOOKSERVER_HOST", written)]).unwrap();
        assert!(
            matches!(c.host.as_str(), "127.0.0.1" | "::1"),
            "{written:?}: {}",
            c.host
        );
    }
    let c = resolve(&WebhooksServer::empty().host("[::1]"), &[]).unwrap();
    assert_eq!(c.host, "::1");
}

#[test]
fn a_bad_port_is_a_clear_error() {
    let err = resolve(&WebhooksServer::empty(), &[("HOOKSERVER_PORT", "abc")]).unwrap_err();
    assert!(err.to_string().contains("HOOKSERVER_PORT"), "{err}");
    let err = resolve(&WebhooksServer::empty(), &[("HOOKSERVER_PORT", "70000")]).unwrap_err();
    assert!(err.to_string().contains("70000"), "{err}");
}

#[test]
fn the_dashboard_s_settings_come_from_the_environment_or_say_what_is_wrong() {
    let c = resolve(
        &WebhooksServer::empty(),
        &[
            ("HOOKSERVER_SESSION_TTL", "30m"),
            ("HOOKSERVER_EVENT_STREAMS", "4"),
            ("HOOKSERVER_TRUSTED_PROXIES", " 10.0.0.2, ::1 "),
        ],
    )
    .unwrap();
    assert_eq!(c.session_ttl, Duration::from_secs(1800));
    assert_eq!(c.event_streams, 4);
    assert_eq!(c.proxies.list.len(), 2);
    assert!(!c.proxies.any);
    let c = resolve(&WebhooksServer::empty(), &[("SPACE_ID", "me/bot")]).unwrap();
    assert!(c.proxies.any, "on a Space every peer is the Hub's proxy");
    for (name, value) in [
        ("HOOKSERVER_SESSION_TTL", "forever"),
        ("HOOKSERVER_SESSION_TTL", "0s"),
        ("HOOKSERVER_EVENT_STREAMS", "-1"),
        ("HOOKSERVER_TRUSTED_PROXIES", "10.0.0.2, proxy.example"),
    ] {
        let err = resolve(&WebhooksServer::empty(), &[(name, value)]).unwrap_err();
        let err = err.to_string();
        assert!(err.contains(name), "{err}");
    }
    let err = resolve(&WebhooksServer::empty().session_ttl(Duration::ZERO), &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains(".session_ttl must be more than zero"),
        "{err}"
    );
    // The builder wins.
    let built = WebhooksServer::empty()
        .session_ttl(Duration::from_secs(5))
        .event_streams(1)
        .trusted_proxies(["10.9.9.9".parse().unwrap()]);
    let c = resolve(&built, &[("HOOKSERVER_EVENT_STREAMS", "9")]).unwrap();
    assert_eq!(
        (c.session_ttl, c.event_streams),
        (Duration::from_secs(5), 1)
    );
    assert_eq!(
        c.proxies.list,
        ["10.9.9.9".parse::<std::net::IpAddr>().unwrap()]
    );
}

#[test]
fn the_inbox_s_settings_come_from_the_builder_the_environment_or_the_defaults() {
    let c = resolve(&WebhooksServer::empty(), &[]).unwrap().inbox;
    assert_eq!(
        c.location,
        Location::File(PathBuf::from(DEFAULT_INBOX_FILE))
    );
    assert_eq!(
        (c.attempts, c.backoff, c.workers),
        (8, Duration::from_secs(1), 4)
    );
    assert_eq!(c.dedupe_window, Duration::from_secs(7 * 24 * 3600));
    let env = [
        ("HOOKSERVER_INBOX", "/tmp/x.redb"),
        ("HOOKSERVER_QUEUE_ATTEMPTS", "3"),
        ("HOOKSERVER_QUEUE_BACKOFF", "200ms"),
        ("HOOKSERVER_QUEUE_WORKERS", "2"),
        ("HOOKSERVER_QUEUE_LIMIT", "10"),
        ("HOOKSERVER_DEDUPE_WINDOW", "1h"),
    ];
    let c = resolve(&WebhooksServer::empty(), &env).unwrap().inbox;
    assert_eq!(c.location, Location::File(PathBuf::from("/tmp/x.redb")));
    assert_eq!((c.attempts, c.workers, c.limit), (3, 2, 10));
    assert_eq!(
        (c.backoff, c.dedupe_window),
        (Duration::from_millis(200), Duration::from_secs(3600))
    );
    let built = WebhooksServer::empty()
        .inbox("/tmp/y.redb")
        .queue_attempts(5)
        .queue_backoff(Duration::from_secs(2))
        .queue_workers(1)
        .queue_limit(7)
        .dedupe_window(Duration::from_secs(60));
    let c = resolve(&built, &env).unwrap().inbox;
    assert_eq!(c.location, Location::File(PathBuf::from("/tmp/y.redb")));
    let c = resolve(&built.clone().inbox("postgres://bot@db/hooks"), &[])
        .unwrap()
        .inbox;
    assert_eq!(
        c.location,
        Location::Postgres("postgres://bot@db/hooks".to_owned())
    );
    assert_eq!((c.attempts, c.workers, c.limit), (5, 1, 7));
    assert_eq!(
        (c.backoff, c.dedupe_window),
        (Duration::from_secs(2), Duration::from_secs(60))
    );
    for (name, value) in [
        ("HOOKSERVER_QUEUE_ATTEMPTS", "0"),
        ("HOOKSERVER_QUEUE_ATTEMPTS", "many"),
        ("HOOKSERVER_QUEUE_BACKOFF", "soon"),
        ("HOOKSERVER_QUEUE_WORKERS", "-2"),
        ("HOOKSERVER_QUEUE_LIMIT", "1.5"),
        ("HOOKSERVER_DEDUPE_WINDOW", "0s"),
        ("HOOKSERVER_INBOX", "mysql://me@db/hooks"),
    ] {
        let err = resolve(&WebhooksServer::empty(), &[(name, value)])
            .unwrap_err()
            .to_string();
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn debug_redacts_the_secret() {
    let app = WebhooksServer::empty().webhook_secret("hunter2");
    assert!(!format!("{app:?}").contains("hunter2"));
}

#[test]
fn previous_secrets_are_accepted_beside_the_new_one() {
    let env = [
        ("WEBHOOK_SECRET", "new"),
        ("HOOKSERVER_PREVIOUS_SECRETS", "old, older,"),
    ];
    let c = resolve(&WebhooksServer::empty(), &env).unwrap();
    let secret = c.secret.unwrap();
    assert_eq!((secret.expose(), secret.accepted()), (&b"new"[..], 3));
    assert!(secret.matches(b"older"));
    let built = WebhooksServer::empty().previous_secrets(["b4"]);
    let secret = resolve(&built, &env).unwrap().secret.unwrap();
    assert_eq!(secret.accepted(), 2);
    assert!(secret.matches(b"b4") && !secret.matches(b"old"));
    let err = resolve(
        &WebhooksServer::empty(),
        &[("HOOKSERVER_PREVIOUS_SECRETS", "old")],
    )
    .unwrap_err();
    assert!(err.to_string().contains("without a secret"), "{err}");
}

#[test]
fn the_secret_is_the_builder_s_else_the_environment_s() {
    let env = [("WEBHOOK_SECRET", "from-env")];
    let c = resolve(&WebhooksServer::empty(), &env).unwrap();
    assert_eq!(c.secret.unwrap().expose(), b"from-env");
    let c = resolve(&WebhooksServer::empty().webhook_secret("mine"), &env).unwrap();
    assert_eq!(c.secret.unwrap().expose(), b"mine");
    // An empty one, from either, is none.
    assert!(resolve(&WebhooksServer::empty().webhook_secret(""), &env)
        .unwrap()
        .secret
        .is_none());
    assert!(resolve(&WebhooksServer::empty(), &[("WEBHOOK_SECRET", "")])
        .unwrap()
        .secret
        .is_none());
}

#[test]
fn a_given_public_url_is_the_base_of_every_url() {
    let c = resolve(
        &WebhooksServer::empty(),
        &[
            ("HOOKSERVER_PUBLIC_URL", "https://bot.example.com/"),
            ("SPACE_ID", "me/bot"),
            ("SPACE_HOST", "me-bot.hf.space"),
        ],
    )
    .unwrap();
    assert_eq!(c.base_url(7860), "https://bot.example.com");
    let c = resolve(
        &WebhooksServer::empty().public_url("http://10.0.0.5:8080/bot"),
        &[("HOOKSERVER_PUBLIC_URL", "https://other.example")],
    )
    .unwrap();
    assert_eq!(c.base_url(7860), "http://10.0.0.5:8080/bot");
    assert_eq!(c.url_kind(false), UrlKind::Given);
    let local = resolve(&WebhooksServer::empty(), &[]).unwrap();
    assert_eq!(local.url_kind(false), UrlKind::Local);
    assert_eq!(local.url_kind(true), UrlKind::Tunnel);
    let space = resolve(
        &WebhooksServer::empty(),
        &[("SPACE_HOST", "me-bot.hf.space")],
    )
    .unwrap();
    assert_eq!(space.url_kind(false), UrlKind::Space);
    for bad in [
        "bot.example.com",
        "ftp://x",
        "https://",
        "https://x/?a=1",
        "https://a b",
    ] {
        let err = resolve(&WebhooksServer::empty().public_url(bad), &[]).unwrap_err();
        assert!(
            err.to_string().contains("http:// or https:// URL"),
            "{bad}: {err}"
        );
    }
    let err = resolve(
        &WebhooksServer::empty()
            .public_url("https://x.example")
            .share(true),
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("choose one"), "{err}");
}

#[test]
fn a_registration_resolves_its_hub_token_and_endpoints() {
    use crate::hub::{HubDomain, HubRegistration, Watched};
    let mut server = WebhooksServer::empty();
    server.add_webhook("a", || async {}).unwrap();
    server.add_webhook("b", || async {}).unwrap();
    let watching = HubRegistration::new().watch(Watched::dataset("me/data"));
    let c = resolve(
        &server.clone().register_on_hub(watching.clone()),
        &[
            ("HF_TOKEN", "hf_env"),
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
        ],
    )
    .unwrap();
    let plan = c.hub.unwrap();
    assert_eq!(plan.hub_url, "http://127.0.0.1:9");
    assert_eq!(plan.token.unwrap().expose(), "hf_env");
    assert_eq!(plan.paths, ["/webhooks/a", "/webhooks/b"]);
    assert_eq!(plan.domains, ["repo", "discussion"]);
    // The builder's settings come first.
    let c = resolve(
        &server.clone().register_on_hub(
            watching
                .clone()
                .token("hf_mine")
                .hub_url("https://hub.example")
                .endpoint("/webhooks/b")
                .domain(HubDomain::Discussion),
        ),
        &[
            ("HF_TOKEN", "hf_env"),
            ("HF_ENDPOINT", "http://127.0.0.1:9"),
        ],
    )
    .unwrap();
    let plan = c.hub.unwrap();
    assert_eq!(plan.hub_url, "https://hub.example");
    assert_eq!(plan.token.unwrap().expose(), "hf_mine");
    assert_eq!(plan.paths, ["/webhooks/b"]);
    assert_eq!(plan.domains, ["discussion"]);
    assert_eq!(
        resolve(&server.clone(), &[]).unwrap().hub,
        None,
        "no registration unless asked for"
    );
    // Mistakes are configuration errors, at launch.
    for (registration, env, says) in [
        (HubRegistration::new(), vec![], "needs something to watch"),
        (
            HubRegistration::new().watch(Watched::user("a b")),
            vec![],
            "cannot watch the user \"a b\"",
        ),
        (
            watching.clone().endpoint("c"),
            vec![],
            "not one of this server's: /webhooks/a, /webhooks/b",
        ),
        (
            watching.clone(),
            vec![("HF_ENDPOINT", "huggingface.co")],
            "HF_ENDPOINT must be an http:// or https:// URL",
        ),
    ] {
        let err = resolve(&server.clone().register_on_hub(registration), &env).unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
}

#[test]
fn settings_at_their_type_s_ends_resolve_within_range() {
    let built = WebhooksServer::empty()
        .handler_timeout(Some(Duration::MAX))
        .queue_workers(usize::MAX);
    let c = resolve(&built, &[]).unwrap().inbox;
    assert_eq!(
        c.lease,
        Duration::MAX,
        "twice the handler timeout, saturated"
    );
    assert_eq!(
        c.workers,
        u32::MAX as usize,
        "what the runner's semaphore can hold"
    );
    let c = resolve(&WebhooksServer::empty().dedupe_window(Duration::ZERO), &[])
        .unwrap()
        .inbox;
    assert_eq!(
        c.dedupe_window,
        Duration::from_millis(1),
        "as the environment's"
    );
    let c = resolve(
        &WebhooksServer::empty(),
        &[("HOOKSERVER_QUEUE_WORKERS", "18446744073709551615")],
    )
    .unwrap()
    .inbox;
    assert_eq!(c.workers, u32::MAX as usize);
}
