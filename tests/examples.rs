//! The example bots, run as a user runs them: their real standard output, the Hub's
//! samples over HTTP, and their exit on SIGTERM and SIGINT.

mod common;

use std::time::Duration;

use common::bot::{launch_error, Bot};
use common::{fixtures, get, post};
use hookserver::serde_json::{json, Value};

#[test]
fn trigger_training_prints_the_instructions_and_answers_the_samples() {
    let bot = Bot::start("trigger_training", &[]);
    let instructions: Vec<&str> = bot.printed.iter().map(String::as_str).collect();
    let n = instructions.len();
    assert!(n >= 3, "{instructions:?}");
    assert_eq!(
        instructions[n - 3],
        "Webhooks are correctly setup and ready to use:"
    );
    let url = bot.url_of("/webhooks/trigger_training");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(
        instructions[n - 1],
        "Go to https://huggingface.co/settings/webhooks to setup your webhooks."
    );
    // Without a secret, the warning comes first.
    assert!(instructions[0].starts_with("Webhook secret is not defined."));

    for (name, bytes) in fixtures() {
        let reply = post(&url, &bytes, &[]);
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        assert_eq!(reply.json()["training"], "skipped", "{name}");
    }
    // A dataset update starts a training job.
    let mut update: Value =
        serde_json::from_slice(&common::fixture("repo.content.update.hfhub-tests.json")).unwrap();
    update["repo"]["type"] = json!("dataset");
    let reply = post(&url, update.to_string().as_bytes(), &[]);
    assert_eq!(
        reply.json(),
        json!({"training": "started", "dataset": "Wauplin/gradio-user-history"})
    );

    let (code, stderr) = bot.stop_with("TERM");
    assert_eq!(code, Some(0), "{stderr}");
    // One log line per delivery, with the scope and action.
    assert!(stderr.contains("scope=\"repo.content\""), "{stderr}");
    assert!(stderr.contains("status=200"), "{stderr}");
}

#[test]
fn the_log_line_of_a_delivery_shows_while_the_bot_runs() {
    let bot = Bot::start("trigger_training", &[]);
    let url = bot.url_of("/webhooks/trigger_training");
    assert_eq!(post(&url, &common::hub_sample(), &[]).status, 200);
    // Written by the flusher thread (every 100 ms), not only at exit; the bound is generous.
    let line = loop {
        match bot.stderr.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.contains("hookserver::delivery") => break line,
            Ok(_) => {}
            Err(_) => panic!("no delivery line on stderr while the bot runs"),
        }
    };
    assert!(line.contains("status=200"), "{line}");
    assert!(line.contains("scope=\"discussion\""), "{line}");
    let (code, _) = bot.stop_with("TERM");
    assert_eq!(code, Some(0));
}

/// The workers (one per core) each write their lines into a buffer of their own; the log
/// still reads top to bottom in time order.
#[test]
fn log_lines_leave_in_time_order_across_workers() {
    let bot = Bot::start("trigger_training", &[]);
    let url = bot.url_of("/webhooks/trigger_training");
    let sample = common::hub_sample();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..150 {
                    assert_eq!(post(&url, &sample, &[]).status, 200);
                }
            });
        }
    });
    let (code, stderr) = bot.stop_with("TERM");
    assert_eq!(code, Some(0));
    let times: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("hookserver::delivery"))
        .map(|line| line.split(' ').next().unwrap())
        .collect();
    assert_eq!(times.len(), 1200, "{stderr}");
    for pair in times.windows(2) {
        assert!(pair[0] <= pair[1], "{} came after {}", pair[1], pair[0]);
    }
}

#[test]
fn trigger_training_with_a_secret_from_the_environment() {
    let bot = Bot::start("trigger_training", &[("WEBHOOK_SECRET", "s3cret value")]);
    assert_eq!(bot.printed[0], "Webhook secret is correctly defined.");
    let url = bot.url_of("/webhooks/trigger_training");
    let sample = common::hub_sample();
    assert_eq!(post(&url, &sample, &[]).status, 401);
    assert_eq!(
        post(&url, &sample, &[("x-webhook-secret", "nope")]).status,
        403
    );
    assert_eq!(
        post(&url, &sample, &[("x-webhook-secret", "s3cret value")]).status,
        200
    );
    assert_eq!(
        post(&format!("{url}?secret=s3cret%20value"), &sample, &[]).status,
        200
    );
    let (code, stderr) = bot.stop_with("INT");
    assert_eq!(code, Some(0));
    assert!(
        !stderr.contains("s3cret"),
        "the secret was logged: {stderr}"
    );
}

#[test]
fn trigger_training_on_a_space() {
    let bot = Bot::start(
        "trigger_training",
        &[
            ("SPACE_ID", "me/training-bot"),
            ("SPACE_HOST", "me-training-bot.hf.space"),
            ("HOOKSERVER_HOST", ""),
        ],
    );
    assert_eq!(
        bot.urls(),
        ["https://me-training-bot.hf.space/webhooks/trigger_training"]
    );
    let (code, _) = bot.stop_with("TERM");
    assert_eq!(code, Some(0));
}

#[test]
fn a_bad_configuration_exits_with_an_error() {
    let stderr = launch_error("trigger_training", &[("HOOKSERVER_PORT", "eighty")]);
    assert!(
        stderr.contains("error: invalid configuration: HOOKSERVER_PORT"),
        "{stderr}"
    );
}

/// A `WEBHOOK_SECRET` set to bytes that are not UTF-8 stops the launch with an error
/// naming it: read as unset, it ran the endpoints open to everyone.
#[test]
fn a_secret_that_is_not_utf8_is_an_error_not_no_secret() {
    use std::os::unix::ffi::OsStrExt;
    let mut command = std::process::Command::new(common::bot::example_binary("trigger_training"));
    command
        .env("WEBHOOK_SECRET", std::ffi::OsStr::from_bytes(b"s3cret\xff"))
        .env("HOOKSERVER_PORT", common::free_port().to_string());
    let stderr = common::bot::launch_error_of("trigger_training", command);
    assert!(
        stderr.contains("invalid configuration: WEBHOOK_SECRET is set, but not to UTF-8 text"),
        "{stderr}"
    );
}

/// A secret with whitespace at an end (a newline from a file, say) cannot travel in a
/// header, which sheds it: the bot warns at launch, and the header with the visible part
/// is refused.
#[test]
fn a_secret_with_whitespace_at_an_end_is_warned_about() {
    let secret = "a-long-enough-secret-value-42";
    let bot = Bot::start(
        "trigger_training",
        &[("WEBHOOK_SECRET", &format!("{secret}\n"))],
    );
    let url = bot.url_of("/webhooks/trigger_training");
    let sent = post(&url, &common::hub_sample(), &[("x-webhook-secret", secret)]);
    assert_eq!(sent.status, 403, "{}", sent.body);
    let (code, stderr) = bot.stop_with("TERM");
    assert_eq!(code, Some(0));
    assert!(
        stderr.contains("warning: the webhook secret begins or ends with whitespace"),
        "{stderr}"
    );
}

#[test]
fn custom_server_uses_its_ui_secret_and_explicit_paths() {
    let bot = Bot::start("custom_server", &[]);
    assert_eq!(bot.printed[0], "Webhook secret is correctly defined.");
    let mut paths: Vec<String> = bot
        .urls()
        .iter()
        .map(|url| url[url.find("/webhooks/").unwrap()..].to_owned())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/webhooks/count_refs",
            "/webhooks/discussion_opened",
            "/webhooks/say_hello"
        ]
    );
    let page = get(&format!("{}/", bot.base()));
    assert!(page.body.contains("<h1>My bot</h1>"));
    let secret = [("x-webhook-secret", "my_secret_key")];
    for (name, bytes) in fixtures() {
        for url in bot.urls() {
            assert_eq!(post(&url, &bytes, &[]).status, 401, "{name} {url}");
            let reply = post(&url, &bytes, &secret);
            assert_eq!(reply.status, 200, "{name} {url}: {}", reply.body);
        }
    }
    let hello = post(&bot.url_of("/say_hello"), &common::hub_sample(), &secret);
    assert_eq!(hello.json(), json!({"message": "hello gpt2"}));
    let refs = post(
        &bot.url_of("/count_refs"),
        &common::fixture("repo.content.update.hfhub-tests.json"),
        &secret,
    );
    assert_eq!(
        refs.json(),
        json!({"scope": "repo.content", "updated_refs": 1})
    );
    let opened = post(
        &bot.url_of("/discussion_opened"),
        &common::hub_sample(),
        &secret,
    );
    assert_eq!(opened.json()["title"], "Update co2 emissions");
    let (code, _) = bot.stop_with("TERM");
    assert_eq!(code, Some(0));
}

#[test]
fn multiple_endpoints_answers_on_every_endpoint() {
    let bot = Bot::start("multiple_endpoints", &[]);
    assert!(
        bot.printed[0].starts_with("multiple_endpoints:"),
        "main's body ran first"
    );
    assert_eq!(bot.urls().len(), 4, "{:?}", bot.printed);
    for (name, bytes) in fixtures() {
        for url in bot.urls() {
            let reply = post(&url, &bytes, &[]);
            assert_eq!(reply.status, 200, "{name} {url}: {}", reply.body);
        }
    }
    let discussion = post(
        &bot.url_of("/on_discussion"),
        &common::fixture("discussion.update.hfhub-tests.json"),
        &[],
    );
    assert_eq!(
        discussion.json(),
        json!({"discussion": 4, "status": "closed", "pr": true})
    );
    let hello = post(&bot.url_of("/say_hello"), &common::hub_sample(), &[]);
    assert_eq!(hello.body, "hello gpt2 from /webhooks/say_hello");
    let name = post(&bot.url_of("/repos/name"), &common::hub_sample(), &[]);
    assert_eq!(name.json(), json!({"name": "gpt2"}));
    let (code, _) = bot.stop_with("TERM");
    assert_eq!(code, Some(0));
}

#[test]
fn queued_mirror_answers_202_and_mirrors_in_the_background() {
    let dir =
        std::env::temp_dir().join(format!("hookserver-example-queued-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inbox = dir.join("inbox.redb").display().to_string();
    let bot = Bot::start("queued_mirror", &[("HOOKSERVER_INBOX", &inbox)]);
    assert!(
        bot.printed.iter().any(|l| l.ends_with("/webhooks/mirror")),
        "{:?}",
        bot.printed
    );
    let reply = common::post(
        &bot.url_of("/webhooks/mirror"),
        &common::hub_sample(),
        &[("webhook-id", "ex-1")],
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let line = loop {
        match bot.stdout.recv_timeout(Duration::from_secs(15)) {
            Ok(line) if line.starts_with("mirroring") => break line,
            Ok(_) => {}
            Err(_) => panic!("the handler did not run"),
        }
    };
    assert_eq!(line, "mirroring gpt2 (Webhook-Id ex-1, attempt 1)");
    drop(bot);
    let _ = std::fs::remove_dir_all(&dir);
}
