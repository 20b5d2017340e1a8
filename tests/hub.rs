//! Registration on the Hub (`register_on_hub`), against a stand-in of the Hub's webhook
//! settings API on loopback (`common/hub.rs`): every request it receives is checked, and
//! deliveries are sent to the URL that was registered, with the secret that was registered.

mod common;
#[path = "common/hub.rs"]
mod stand_in;

use common::{free_port, hub_sample, post};
use hookserver::serde_json::{json, Value};
use hookserver::{
    Error, HubDomain, HubRegistration, OnExit, ServerHandle, Watched, WebhookPayload,
    WebhooksServer,
};
use stand_in::{Call, StandInHub};

const TOKEN: &str = "hf_standin_token_0123456789";
const SECRET: &str = "a-long-webhook-secret-0123456789";

/// A server with the endpoints `a` and `b` on `port`, whose public URL is its own
/// loopback address (given explicitly, as behind a reverse proxy).
fn bot(port: u16, registration: HubRegistration) -> WebhooksServer {
    let mut app = WebhooksServer::empty()
        .host("127.0.0.1")
        .port(port)
        .webhook_secret(SECRET)
        .public_url(format!("http://127.0.0.1:{port}"))
        .register_on_hub(registration);
    for name in ["a", "b"] {
        app.add_webhook(name, move |payload: WebhookPayload| async move {
            json!({ "endpoint": name, "repo": payload.repo.name })
        })
        .unwrap();
    }
    app
}

fn watching(hub: &StandInHub) -> HubRegistration {
    HubRegistration::new()
        .watch(Watched::dataset("me/data"))
        .watch(Watched::user("me"))
        .token(TOKEN)
        .hub_url(&hub.url)
}

/// Every call carried the token, and JSON when it had a body.
fn assert_well_formed(calls: &[Call]) {
    for call in calls {
        assert_eq!(
            call.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{call:?}"
        );
        if call.body.is_some() {
            assert_eq!(call.content_type.as_deref(), Some("application/json"));
        }
    }
}

fn lines(calls: &[Call]) -> Vec<String> {
    calls.iter().map(Call::line).collect()
}

/// The body `update_webhook` and `create_webhook` send for the endpoint `name`.
fn spec(port: u16, name: &str) -> Value {
    json!({
        "watched": [{"type": "dataset", "name": "me/data"}, {"type": "user", "name": "me"}],
        "url": format!("http://127.0.0.1:{port}/webhooks/{name}"),
        "domains": ["repo", "discussion"],
        "secret": SECRET,
    })
}

/// The Hub delivers to the registered webhook: its URL, its secret.
fn deliver(hub: &StandInHub, id: &str) -> common::Reply {
    let webhook = hub
        .webhooks()
        .into_iter()
        .find(|w| w["id"] == id)
        .expect("the webhook is on the Hub");
    assert_eq!(webhook["disabled"], false, "{webhook}");
    post(
        webhook["url"].as_str().unwrap(),
        &hub_sample(),
        &[("x-webhook-secret", webhook["secret"].as_str().unwrap())],
    )
}

fn ids(handle: &ServerHandle) -> Vec<String> {
    handle
        .hub_webhooks()
        .iter()
        .map(|w| w.id().to_owned())
        .collect()
}

#[test]
fn a_launch_creates_then_finds_updates_and_enables_its_webhooks() {
    let hub = StandInHub::start(TOKEN);
    let port = free_port();

    // 1. None yet: one listing, then one webhook per endpoint, created.
    let handle = bot(port, watching(&hub)).launch_background().unwrap();
    let calls = hub.take_calls();
    assert_well_formed(&calls);
    assert_eq!(lines(&calls), ["GET ", "POST ", "POST "]);
    assert_eq!(calls[1].body.as_ref(), Some(&spec(port, "a")));
    assert_eq!(calls[2].body.as_ref(), Some(&spec(port, "b")));
    let first = ids(&handle);
    assert_eq!(first.len(), 2);
    assert!(handle.hub_webhooks().iter().all(|w| w.created()));
    assert_eq!(
        handle.hub_webhooks()[0].url(),
        format!("http://127.0.0.1:{port}/webhooks/a")
    );
    // The Hub's deliveries to what was registered reach the handlers.
    for (id, name) in first.iter().zip(["a", "b"]) {
        let reply = deliver(&hub, id);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.json()["endpoint"], name);
    }
    // A given URL outlives a restart: nothing happens at exit.
    handle.stop();
    assert_eq!(lines(&hub.take_calls()), Vec::<String>::new());

    // 2. Relaunched: found by URL and updated, not created again.
    let handle = bot(port, watching(&hub)).launch_background().unwrap();
    let calls = hub.take_calls();
    assert_well_formed(&calls);
    assert_eq!(
        lines(&calls),
        [
            "GET ".to_owned(),
            format!("POST /{}", first[0]),
            format!("POST /{}", first[1])
        ]
    );
    assert_eq!(calls[1].body.as_ref(), Some(&spec(port, "a")));
    assert_eq!(ids(&handle), first);
    assert!(handle.hub_webhooks().iter().all(|w| !w.created()));
    handle.stop();

    // 3. The Hub suspended one after failures: the next launch enables it again.
    hub.suspend(&first[1]);
    let handle = bot(port, watching(&hub)).launch_background().unwrap();
    assert_eq!(
        lines(&hub.take_calls()),
        [
            "GET ".to_owned(),
            format!("POST /{}", first[0]),
            format!("POST /{}", first[1]),
            format!("POST /{}/enable", first[1]),
        ]
    );
    assert_eq!(deliver(&hub, &first[1]).status, 200);
    handle.stop();
    assert_eq!(hub.webhooks().len(), 2, "never a second webhook per URL");
}

#[test]
fn an_existing_webhook_for_the_url_is_taken_over_with_this_server_s_settings() {
    let hub = StandInHub::start(TOKEN);
    let port = free_port();
    let other = hub.insert("https://elsewhere.example/webhooks/a", false);
    let mine = hub.insert(&format!("http://127.0.0.1:{port}/webhooks/b"), true);
    let registration = watching(&hub)
        .endpoint("b")
        .domain(HubDomain::Repo)
        .on_exit(OnExit::Disable);
    let handle = bot(port, registration).launch_background().unwrap();
    let calls = hub.take_calls();
    assert_well_formed(&calls);
    assert_eq!(
        lines(&calls),
        [
            "GET ".to_owned(),
            format!("POST /{mine}"),
            format!("POST /{mine}/enable")
        ]
    );
    let mut expected = spec(port, "b");
    expected["domains"] = json!(["repo"]);
    assert_eq!(calls[1].body.as_ref(), Some(&expected));
    assert_eq!(calls[2].body, None);
    assert_eq!(ids(&handle), std::slice::from_ref(&mine));
    let held = hub.webhooks();
    assert_eq!(held[1]["secret"], SECRET, "the old secret is replaced");
    assert_eq!(held[1]["watched"], expected["watched"]);
    assert_eq!(deliver(&hub, &mine).json()["endpoint"], "b");
    // Disabled at exit, as chosen; the other webhook is never touched.
    handle.stop();
    assert_eq!(lines(&hub.take_calls()), [format!("POST /{mine}/disable")]);
    let held = hub.webhooks();
    assert_eq!(held[1]["disabled"], true);
    assert_eq!(held[0]["id"], other);
    assert_eq!(held[0]["disabled"], false);
}

#[test]
fn delete_at_exit_removes_the_webhooks() {
    let hub = StandInHub::start(TOKEN);
    let port = free_port();
    let handle = bot(port, watching(&hub).on_exit(OnExit::Delete))
        .launch_background()
        .unwrap();
    let created = ids(&handle);
    hub.take_calls();
    handle.stop();
    let calls = hub.take_calls();
    assert_well_formed(&calls);
    assert_eq!(
        lines(&calls),
        [
            format!("DELETE /{}", created[0]),
            format!("DELETE /{}", created[1])
        ]
    );
    assert!(hub.webhooks().is_empty());
}

#[test]
fn a_webhook_created_meanwhile_by_another_replica_is_updated_not_duplicated() {
    let hub = StandInHub::start(TOKEN);
    let port = free_port();
    hub.conflict_on_next_create();
    let handle = bot(port, watching(&hub).endpoint("a"))
        .launch_background()
        .unwrap();
    let calls = hub.take_calls();
    let id = hub.webhooks()[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        lines(&calls),
        ["GET ", "POST ", "GET ", &format!("POST /{id}")]
    );
    assert_eq!(ids(&handle), std::slice::from_ref(&id));
    assert_eq!(hub.webhooks().len(), 1);
    assert_eq!(deliver(&hub, &id).status, 200);
    handle.stop();
}

/// The launch's error when the registration is required, after checking that without
/// `required` the same failure leaves a serving server with no webhook.
fn failure(hub: &StandInHub, registration: impl Fn() -> HubRegistration) -> String {
    let port = free_port();
    let handle = bot(port, registration()).launch_background().unwrap();
    assert!(handle.hub_webhooks().is_empty());
    let reply = post(
        &format!("{}/webhooks/a", handle.url()),
        &hub_sample(),
        &[("x-webhook-secret", SECRET)],
    );
    assert_eq!(reply.status, 200, "the server runs on: {}", reply.body);
    handle.stop();
    let err = bot(port, registration().required(true))
        .launch_background()
        .unwrap_err();
    assert!(matches!(err, Error::Hub { .. }), "{err:?}");
    // The port is free again: the refused launch stopped its server.
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
    hub.take_calls();
    let message = err.to_string();
    assert!(!message.contains(TOKEN), "the token never shows: {message}");
    assert!(
        message.starts_with("cannot register on the Hub: "),
        "{message}"
    );
    message
}

#[test]
fn every_failure_is_a_clear_message_and_stops_nothing_unless_required() {
    let hub = StandInHub::start(TOKEN);
    let wrong = failure(&hub, || watching(&hub).token("hf_not_the_token"));
    assert!(
        wrong.contains("refused the token when asked to list the webhooks (401 Unauthorized: Invalid credentials in Authorization header); set HF_TOKEN"),
        "{wrong}"
    );
    for (status, says) in [
        (
            403,
            "may not list the webhooks (403 Forbidden: no); use a token with write access",
        ),
        (
            404,
            "found nothing to list the webhooks (404 Not Found: no); check that HF_ENDPOINT",
        ),
        (
            409,
            "refused to list the webhooks: a conflict (409 Conflict: no)",
        ),
        (500, "failed to list the webhooks (500: no)"),
        (503, "failed to list the webhooks (503: no)"),
    ] {
        hub.fail_with(Some((status, "no")));
        let message = failure(&hub, || watching(&hub));
        assert!(message.contains(says), "{status}: {message}");
    }
    hub.fail_with(None);
    hub.answer_garbage(true);
    let garbage = failure(&hub, || watching(&hub));
    assert!(
        garbage.contains("the Hub's answer to list the webhooks is not a webhook"),
        "{garbage}"
    );
    hub.answer_garbage(false);
    // An ID that would climb out of the route is refused, never put in a path.
    hub.hostile_ids(true);
    let hostile = failure(&hub, || watching(&hub));
    assert!(hostile.contains("is not letters and digits"), "{hostile}");
    hub.hostile_ids(false);

    // Unreachable: a port where nothing listens.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let unreachable = failure(&hub, || watching(&hub).hub_url(&closed));
    assert!(
        unreachable.contains(&format!("cannot reach the Hub at {closed} (")),
        "{unreachable}"
    );
    assert!(unreachable.ends_with("check HF_ENDPOINT and the network"));

    // A local address cannot be called by the Hub: nothing is sent.
    let mut local = WebhooksServer::empty()
        .host("127.0.0.1")
        .port(0)
        .register_on_hub(watching(&hub).required(true));
    local.add_webhook("a", || async {}).unwrap();
    let err = local.launch_background().unwrap_err().to_string();
    assert!(err.contains("is this machine's own address"), "{err}");
    assert!(err.contains(".share(true)"), "{err}");
    assert_eq!(hub.take_calls(), Vec::new());
}

#[test]
fn after_the_hub_was_down_the_registration_happens_in_the_background() {
    let hub = StandInHub::start(TOKEN);
    let port = free_port();
    hub.fail_with(Some((503, "down for maintenance")));
    let handle = bot(port, watching(&hub).endpoint("a"))
        .launch_background()
        .unwrap();
    assert!(handle.hub_webhooks().is_empty());
    hub.fail_with(None);
    common::wait_until("the registration in the background", 20, || {
        !handle.hub_webhooks().is_empty()
    });
    let id = handle.hub_webhooks()[0].id().to_owned();
    assert_eq!(deliver(&hub, &id).json()["endpoint"], "a");
    let calls = hub.take_calls();
    assert_well_formed(&calls);
    let tail: Vec<String> = lines(&calls).into_iter().rev().take(2).collect();
    assert_eq!(tail, ["POST ", "GET "], "{calls:?}");
    // A refusal that will not pass is not tried again.
    hub.fail_with(Some((401, "no")));
    handle.stop();
    let handle = bot(port, watching(&hub).endpoint("a").token("hf_wrong"))
        .launch_background()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(lines(&hub.take_calls()), ["GET "], "one try only");
    handle.stop();
}

/// The example bot, with the environment a user gives it: `HF_ENDPOINT`, the token in
/// `HF_TOKEN_PATH`'s file (as `hf auth login` leaves it), `HOOKSERVER_PUBLIC_URL`.
fn start_example(hub: &StandInHub, port: u16, token_file: &std::path::Path) -> common::bot::Bot {
    let mut command = std::process::Command::new(common::bot::example_binary("hub_registered"));
    command
        .arg("me/data")
        .env_remove("HF_TOKEN")
        .env_remove("HUGGING_FACE_HUB_TOKEN");
    let public = format!("http://127.0.0.1:{port}");
    common::bot::Bot::start_command(
        "hub_registered",
        command,
        &[
            ("HOOKSERVER_PORT", &port.to_string()),
            ("HOOKSERVER_PUBLIC_URL", &public),
            ("HF_ENDPOINT", &hub.url),
            ("HF_TOKEN_PATH", token_file.to_str().unwrap()),
            ("WEBHOOK_SECRET", SECRET),
            ("RUST_LOG", "trace"),
        ],
    )
}

#[test]
fn a_bot_finds_its_token_and_hub_in_the_environment_as_huggingface_hub_does() {
    let hub = StandInHub::start(TOKEN);
    let dir = common::scratch_dir("hub-token");
    let token_file = dir.join("token");

    // No token: a warning that says where one goes; the bot serves all the same.
    let port = free_port();
    let bot = start_example(&hub, port, &token_file);
    let url = bot.url_of("/webhooks/dataset_changed");
    let warning = bot
        .stderr
        .recv_timeout(std::time::Duration::from_secs(10))
        .into_iter()
        .chain(bot.stderr.try_iter())
        .find(|line| line.contains("not registered on the Hub"))
        .expect("a warning");
    assert!(
        warning.contains("no Hugging Face token: set HF_TOKEN"),
        "{warning}"
    );
    let reply = post(
        &url,
        &common::fixture("repo.content.update.hfhub-tests.json"),
        &[("x-webhook-secret", SECRET)],
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (code, _) = bot.stop_with("TERM");
    assert_eq!(code, Some(0));
    assert_eq!(hub.take_calls(), Vec::new());

    // The token file of `hf auth login`: registered, with the given public URL, and kept
    // at exit (a given URL outlives a restart).
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let bot = start_example(&hub, port, &token_file);
    let url = bot.url_of("/webhooks/dataset_changed");
    assert_eq!(
        url,
        format!("http://127.0.0.1:{port}/webhooks/dataset_changed")
    );
    let line = bot
        .stdout
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    let id = hub.webhooks()[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        line,
        format!("Registered on the Hub: webhook {id} watching dataset me/data (repo) -> {url}")
    );
    // A delivery the filter does not want is answered as ignored; one it wants runs.
    let reply = deliver(&hub, &id);
    assert_eq!(reply.status, 200);
    assert!(reply.json()["ignored"].is_string(), "{}", reply.body);
    let (code, stdout, stderr) = bot.stop_with_output("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    let calls = hub.take_calls();
    assert_well_formed(&calls);
    assert_eq!(lines(&calls), ["GET ", "POST "]);
    assert!(
        !stdout.contains("disabled") && !stdout.contains("deleted"),
        "{stdout}"
    );
    for secret in [TOKEN, SECRET] {
        let output = format!("{stdout}\n{stderr}");
        assert!(
            !common::shows_any_part_of(&output, secret),
            "{secret} leaked"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_main_bot_registers_from_the_environment_alone() {
    // `hookserver::main!()` has no builder: the environment says what to watch.
    let hub = StandInHub::start(TOKEN);
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let mut command = std::process::Command::new(common::bot::example_binary("trigger_training"));
    command
        .env_remove("HF_TOKEN")
        .env_remove("HUGGING_FACE_HUB_TOKEN");
    let bot = common::bot::Bot::start_command(
        "trigger_training",
        command,
        &[
            ("HOOKSERVER_PORT", &port.to_string()),
            ("HOOKSERVER_PUBLIC_URL", &public),
            ("HF_ENDPOINT", &hub.url),
            ("HF_TOKEN", TOKEN),
            ("WEBHOOK_SECRET", SECRET),
            ("HOOKSERVER_HUB_WATCH", "dataset:me/data, org:my-org"),
            ("HOOKSERVER_HUB_DOMAINS", "repo"),
            ("HOOKSERVER_HUB_ON_EXIT", "delete"),
        ],
    );
    let url = format!("{public}/webhooks/trigger_training");
    let line = bot
        .stdout
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    let webhook = hub.webhooks()[0].clone();
    let id = webhook["id"].as_str().unwrap().to_owned();
    assert_eq!(
        line,
        format!("Registered on the Hub: webhook {id} watching dataset me/data, org my-org (repo) -> {url}")
    );
    let calls = hub.take_calls();
    assert_well_formed(&calls);
    assert_eq!(lines(&calls), ["GET ", "POST "]);
    assert_eq!(
        calls[1].body.as_ref(),
        Some(&json!({
            "watched": [{"type": "dataset", "name": "me/data"}, {"type": "org", "name": "my-org"}],
            "url": url,
            "domains": ["repo"],
            "secret": SECRET,
        }))
    );
    let reply = deliver(&hub, &id);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (code, stdout, stderr) = bot.stop_with_output("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("Hub webhook {id} deleted (it called {url}).")),
        "{stdout}"
    );
    assert_eq!(lines(&hub.take_calls()), [format!("DELETE /{id}")]);
    assert!(hub.webhooks().is_empty());

    // A mistake in the environment is an error before anything listens.
    let stderr = common::bot::launch_error(
        "trigger_training",
        &[
            ("HOOKSERVER_PORT", "0"),
            ("HOOKSERVER_HUB_WATCH", "me/data"),
        ],
    );
    assert!(
        stderr.contains("HOOKSERVER_HUB_WATCH must be KIND:NAME"),
        "{stderr}"
    );
}
