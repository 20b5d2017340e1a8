//! Queued endpoints, end to end: the drill bot (`tests/bots/queue_drill.rs`) runs as a
//! real process on a real inbox (a redb file; and a PostgreSQL database that the test
//! starts, each case run on both from one body); deliveries go over HTTP; the journal the
//! handlers write and the inbox's API say what ran.
//!
//! Here: the helpers and the delivery's life (stored, run, deduplicated, retried, dead,
//! refused, full); the dashboard's part in `dashboard.rs`; launching and the settings in
//! `settings.rs`.

#[path = "../common/mod.rs"]
mod common;
mod dashboard;
mod settings;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::bot::Bot;
use common::postgres::PgServer;
use common::{get, post, send};
use serde_json::Value;

/// A folder of its own for one test's journal (and its inbox file, unless the inbox is a
/// database), removed at the end.
struct Scratch(PathBuf, Option<String>);

impl Scratch {
    /// On a database instead of a file.
    fn on(name: &str, database: String) -> Scratch {
        let mut scratch = Scratch::new(name);
        scratch.1 = Some(database);
        scratch
    }

    fn new(name: &str) -> Scratch {
        Scratch(common::scratch_dir(&format!("queue-{name}")), None)
    }

    fn inbox(&self) -> String {
        match &self.1 {
            Some(url) => url.clone(),
            None => self.0.join("inbox.redb").display().to_string(),
        }
    }

    fn journal(&self) -> String {
        self.0.join("journal.txt").display().to_string()
    }

    /// The journal's lines: `ENDPOINT WEBHOOK_ID DELIVERY_ID ATTEMPT` (without the PID).
    fn lines(&self) -> Vec<Vec<String>> {
        read_journal(Path::new(&self.journal()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_journal(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').take(4).map(str::to_owned).collect())
        .collect()
}

/// The drill bot on `scratch`'s inbox and journal, with a fast backoff.
fn drill(scratch: &Scratch, env: &[(&str, &str)]) -> Bot {
    let inbox = scratch.inbox();
    let journal = scratch.journal();
    let mut all = vec![
        ("HOOKSERVER_INBOX", inbox.as_str()),
        ("DRILL_JOURNAL", journal.as_str()),
        ("HOOKSERVER_QUEUE_BACKOFF", "50ms"),
        ("HOOKSERVER_QUEUE_ATTEMPTS", "3"),
    ];
    all.extend_from_slice(env);
    Bot::start("queue_drill", &all)
}

fn inbox(bot: &Bot) -> Value {
    let reply = get(&format!("{}/api/inbox", bot.base()));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

fn entry(bot: &Bot, id: &str) -> Value {
    inbox(bot)["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no delivery {id} in {}", inbox(bot)))
}

fn deliver(bot: &Bot, endpoint: &str, webhook_id: Option<&str>) -> common::Reply {
    let body = common::hub_sample();
    let headers: Vec<(&str, &str)> = webhook_id
        .map(|id| ("webhook-id", id))
        .into_iter()
        .collect();
    post(
        &bot.url_of(&format!("/webhooks/{endpoint}")),
        &body,
        &headers,
    )
}

fn queued_id(reply: &common::Reply) -> String {
    assert_eq!(reply.status, 202, "{}", reply.body);
    reply.json()["queued"].as_str().unwrap().to_owned()
}

fn a_queued_delivery_is_answered_202_once_stored_then_run_with_its_ids(scratch: &Scratch) {
    let bot = drill(scratch, &[]);
    let reply = deliver(&bot, "record", Some("hub-1"));
    let id = queued_id(&reply);
    assert!(reply.content_type.unwrap().starts_with("application/json"));
    common::wait_until("the handler", 15, || !scratch.lines().is_empty());
    assert_eq!(scratch.lines(), [["record", "hub-1", &id, "1"]]);
    common::wait_until("done", 15, || entry(&bot, &id)["state"] == "done");
    let summary = inbox(&bot);
    assert_eq!(summary["counts"]["done"], 1);
    assert_eq!(entry(&bot, &id)["webhook_id"], "hub-1");
    // The builder's queued endpoint too.
    let id = queued_id(&deliver(&bot, "builder_record", Some("hub-2")));
    common::wait_until("the builder's handler", 15, || scratch.lines().len() == 2);
    assert_eq!(scratch.lines()[1], ["builder_record", "hub-2", &id, "1"]);
}

fn a_queued_handler_reads_the_recorded_request(scratch: &Scratch) {
    let secret = "drill-secret-0123456789";
    let bot = drill(scratch, &[("WEBHOOK_SECRET", secret)]);
    let url = format!("{}?room=7&secret={secret}", bot.url_of("/webhooks/request"));
    let headers = [("webhook-id", "req-1"), ("x-drill", "drilled")];
    let id = queued_id(&post(&url, &common::hub_sample(), &headers));
    common::wait_until("the handler", 15, || !scratch.lines().is_empty());
    // The secret (here in the query, as the Hub may send it) is never stored.
    let seen = "request:POST:/webhooks/request?room=7:drilled";
    assert_eq!(scratch.lines(), [[seen, "req-1", &id, "1"]]);
}

/// Deliveries sent at once, each naming its own repository: every handler gets its own.
fn each_handler_gets_its_own_delivery_s_payload(scratch: &Scratch) {
    let bot = drill(scratch, &[]);
    let sample: Value = serde_json::from_slice(&common::hub_sample()).unwrap();
    let url = bot.url_of("/webhooks/repo");
    std::thread::scope(|threads| {
        for sender in 0..4 {
            let (sample, url) = (&sample, &url);
            threads.spawn(move || {
                for n in (sender..24).step_by(4) {
                    let mut body = sample.clone();
                    body["repo"]["name"] = Value::from(format!("org/repo-{n}"));
                    let body = serde_json::to_vec(&body).unwrap();
                    let id = format!("w-{n}");
                    queued_id(&post(url, &body, &[("webhook-id", id.as_str())]));
                }
            });
        }
    });
    common::wait_until("every handler", 15, || scratch.lines().len() == 24);
    let mut seen: Vec<(String, String)> = scratch
        .lines()
        .into_iter()
        .map(|line| (line[0].clone(), line[1].clone()))
        .collect();
    seen.sort();
    let mut sent: Vec<(String, String)> = (0..24)
        .map(|n| (format!("repo:org/repo-{n}"), format!("w-{n}")))
        .collect();
    sent.sort();
    assert_eq!(seen, sent);
}

fn a_repeated_webhook_id_runs_once_and_answers_the_first_id(scratch: &Scratch) {
    let bot = drill(scratch, &[]);
    let first = queued_id(&deliver(&bot, "record", Some("same")));
    for _ in 0..2 {
        let again = deliver(&bot, "record", Some("same"));
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(again.json(), serde_json::json!({ "duplicate": first }));
    }
    // Per endpoint: the same id at another endpoint is another delivery.
    queued_id(&deliver(&bot, "builder_record", Some("same")));
    // Without a Webhook-Id, the body's hash is the key.
    let url = bot.url_of("/webhooks/record");
    let body = common::hub_sample();
    let hashed = queued_id(&post(&url, &body, &[]));
    let again = post(&url, &body, &[]);
    assert_eq!(again.json(), serde_json::json!({ "duplicate": hashed }));
    let mut other = body.clone();
    other.extend_from_slice(b"\n");
    queued_id(&post(&url, &other, &[]));
    common::wait_until("four runs", 15, || scratch.lines().len() == 4);
    std::thread::sleep(Duration::from_millis(300));
    let record_runs = scratch.lines().iter().filter(|l| l[0] == "record").count();
    assert_eq!(record_runs, 3, "{:?}", scratch.lines());
}

fn a_failing_attempt_is_retried_and_the_third_succeeds(scratch: &Scratch) {
    let bot = drill(scratch, &[]);
    let id = queued_id(&deliver(&bot, "flaky", Some("f")));
    common::wait_until("done", 15, || entry(&bot, &id)["state"] == "done");
    assert_eq!(scratch.lines(), [["flaky", "f", &id, "3"]]);
    let entry = entry(&bot, &id);
    assert_eq!(entry["attempts"], 3);
    let errors: Vec<&str> = entry["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["error"].as_str().unwrap())
        .collect();
    assert_eq!(errors, ["flaky attempt 1", "flaky attempt 2"]);
}

fn a_delivery_that_always_fails_is_a_dead_letter_then_retried_and_discarded_from_the_api(
    scratch: &Scratch,
) {
    let bot = drill(scratch, &[]);
    let id = queued_id(&deliver(&bot, "always_fails", Some("d")));
    common::wait_until("dead", 15, || entry(&bot, &id)["state"] == "dead");
    assert_eq!(scratch.lines().len(), 3);
    let dead = get(&format!("{}/api/inbox/dead", bot.base())).json();
    let letter = &dead["dead"][0];
    assert_eq!(letter["id"], id.as_str());
    assert_eq!(letter["webhook_id"], "d");
    assert_eq!(letter["errors"].as_array().unwrap().len(), 3);
    assert_eq!(letter["errors"][2]["error"], "always fails (attempt 3)");
    assert_eq!(inbox(&bot)["counts"]["dead"], 1);

    // "Retry now": a new round of three attempts.
    let url = format!("{}/api/inbox/{id}/retry", bot.base());
    let retried = send("POST", &url, b"", &[]);
    assert_eq!(retried.status, 200, "{}", retried.body);
    common::wait_until("six attempts", 15, || scratch.lines().len() == 6);
    common::wait_until("dead again", 15, || entry(&bot, &id)["state"] == "dead");
    assert_eq!(scratch.lines()[5][3], "6");
    // Only a dead letter is retried.
    let done = queued_id(&deliver(&bot, "record", Some("ok")));
    common::wait_until("done", 15, || entry(&bot, &done)["state"] == "done");
    let refused = send(
        "POST",
        &format!("{}/api/inbox/{done}/retry", bot.base()),
        b"",
        &[],
    );
    assert_eq!(refused.status, 409, "{}", refused.body);

    // Discard.
    let url = format!("{}/api/inbox/{id}", bot.base());
    assert_eq!(send("DELETE", &url, b"", &[]).status, 200);
    assert_eq!(send("DELETE", &url, b"", &[]).status, 404);
    assert_eq!(inbox(&bot)["counts"]["dead"], 0);
    let get_on_it = send("GET", &url, b"", &[]);
    assert_eq!(get_on_it.status, 405);
    assert_eq!(get_on_it.allow.as_deref(), Some("DELETE"));
    assert_eq!(
        send("DELETE", &format!("{}/api/inbox/x", bot.base()), b"", &[]).status,
        404
    );
}

fn a_permanent_failure_a_panic_and_a_timeout_are_failed_attempts(scratch: &Scratch) {
    let bot = drill(
        scratch,
        &[
            ("DRILL_HANDLER_TIMEOUT_MS", "200"),
            ("DRILL_SLOW_MS", "1000"),
        ],
    );
    let permanent = queued_id(&deliver(&bot, "permanent", None));
    let panics = queued_id(&deliver(&bot, "panics", None));
    let slow = queued_id(&deliver(&bot, "slow", None));
    for id in [&permanent, &panics, &slow] {
        common::wait_until("dead", 15, || entry(&bot, id)["state"] == "dead");
    }
    let errors = |id: &str| -> Vec<String> {
        entry(&bot, id)["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["error"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        errors(&permanent),
        ["permanent failure: this repo is not mirrored"]
    );
    let panicked = errors(&panics);
    assert_eq!(panicked.len(), 3);
    assert_eq!(panicked[0], "the handler panicked: boom on attempt 1");
    let timed_out = errors(&slow);
    assert_eq!(timed_out.len(), 3);
    assert!(
        timed_out[0].contains("did not answer within 200ms"),
        "{timed_out:?}"
    );
    // The server still serves.
    queued_id(&deliver(&bot, "record", None));
}

fn a_body_the_handler_would_refuse_is_refused_and_not_stored(scratch: &Scratch) {
    let bot = drill(scratch, &[]);
    let url = bot.url_of("/webhooks/typed");
    let not_json = post(&url, b"{not json", &[]);
    assert_eq!(not_json.status, 400, "{}", not_json.body);
    let wrong = post(&url, br#"{"zen": 1}"#, &[]);
    assert_eq!(wrong.status, 422);
    assert_eq!(wrong.json()["path"], "zen");
    let not_payload = post(&bot.url_of("/webhooks/record"), br#"{"a": 1}"#, &[]);
    assert_eq!(not_payload.status, 422);
    let counts = inbox(&bot)["counts"].clone();
    assert_eq!(
        counts,
        serde_json::json!({"queued": 0, "running": 0, "retrying": 0, "done": 0, "dead": 0})
    );
    queued_id(&post(&url, br#"{"zen": "ok"}"#, &[]));
    common::wait_until("typed", 15, || scratch.lines().len() == 1);
}

#[test]
fn every_handler_reads_the_webhook_id_inline_too() {
    let scratch = Scratch::new("inline");
    let bot = drill(&scratch, &[]);
    let reply = post(
        &bot.url_of("/webhooks/inline_id"),
        b"{}",
        &[("webhook-id", "w-9")],
    );
    assert_eq!((reply.status, reply.body.as_str()), (200, "w-9 1 false"));
    let reply = post(&bot.url_of("/webhooks/inline_id"), b"{}", &[]);
    assert_eq!(reply.body, "- 1 false");
}

fn a_full_inbox_answers_503_with_retry_after_and_stores_nothing_more(scratch: &Scratch) {
    let bot = drill(
        scratch,
        &[
            ("HOOKSERVER_QUEUE_LIMIT", "2"),
            ("HOOKSERVER_QUEUE_WORKERS", "1"),
            ("DRILL_SLOW_MS", "1500"),
        ],
    );
    queued_id(&deliver(&bot, "slow", Some("1")));
    queued_id(&deliver(&bot, "slow", Some("2")));
    let full = deliver(&bot, "slow", Some("3"));
    assert_eq!(full.status, 503, "{}", full.body);
    assert_eq!(full.header("retry-after"), Some("30"));
    assert!(full.json()["error"]
        .as_str()
        .unwrap()
        .contains("inbox is full"));
    // The refused one was not acknowledged; once the queue drains it is taken.
    common::wait_until("room", 15, || inbox(&bot)["counts"]["done"] == 1);
    let retried = deliver(&bot, "slow", Some("3"));
    queued_id(&retried);
}

#[test]
fn a_queued_delivery_is_answered_202_once_stored_then_run_with_its_ids_on_redb() {
    a_queued_delivery_is_answered_202_once_stored_then_run_with_its_ids(&Scratch::new("run"));
}

#[test]
fn a_queued_handler_reads_the_recorded_request_on_redb() {
    a_queued_handler_reads_the_recorded_request(&Scratch::new("request"));
}

#[test]
fn each_handler_gets_its_own_delivery_s_payload_on_redb() {
    each_handler_gets_its_own_delivery_s_payload(&Scratch::new("own"));
}

#[test]
fn a_repeated_webhook_id_runs_once_and_answers_the_first_id_on_redb() {
    a_repeated_webhook_id_runs_once_and_answers_the_first_id(&Scratch::new("dedupe"));
}

#[test]
fn a_failing_attempt_is_retried_and_the_third_succeeds_on_redb() {
    a_failing_attempt_is_retried_and_the_third_succeeds(&Scratch::new("retry"));
}

#[test]
fn a_delivery_that_always_fails_is_a_dead_letter_then_retried_and_discarded_from_the_api_on_redb() {
    a_delivery_that_always_fails_is_a_dead_letter_then_retried_and_discarded_from_the_api(
        &Scratch::new("dead"),
    );
}

#[test]
fn a_permanent_failure_a_panic_and_a_timeout_are_failed_attempts_on_redb() {
    a_permanent_failure_a_panic_and_a_timeout_are_failed_attempts(&Scratch::new("failures"));
}

#[test]
fn a_body_the_handler_would_refuse_is_refused_and_not_stored_on_redb() {
    a_body_the_handler_would_refuse_is_refused_and_not_stored(&Scratch::new("refused"));
}

#[test]
fn a_full_inbox_answers_503_with_retry_after_and_stores_nothing_more_on_redb() {
    a_full_inbox_answers_503_with_retry_after_and_stores_nothing_more(&Scratch::new("full"));
}

/// A case that runs on either backend.
type Case = fn(&Scratch);

/// Every case above, on PostgreSQL: one server for them all, a database each.
#[test]
fn every_case_on_postgres() {
    let Some(pg) = PgServer::start() else { return };
    let cases: [(&str, Case); 11] = [
        ("own", each_handler_gets_its_own_delivery_s_payload),
        (
            "dead",
            a_delivery_that_always_fails_is_a_dead_letter_then_retried_and_discarded_from_the_api,
        ),
        (
            "run",
            a_queued_delivery_is_answered_202_once_stored_then_run_with_its_ids,
        ),
        (
            "dedupe",
            a_repeated_webhook_id_runs_once_and_answers_the_first_id,
        ),
        ("retry", a_failing_attempt_is_retried_and_the_third_succeeds),
        ("request", a_queued_handler_reads_the_recorded_request),
        (
            "failures",
            a_permanent_failure_a_panic_and_a_timeout_are_failed_attempts,
        ),
        (
            "refused",
            a_body_the_handler_would_refuse_is_refused_and_not_stored,
        ),
        (
            "full",
            a_full_inbox_answers_503_with_retry_after_and_stores_nothing_more,
        ),
        (
            "maximum",
            settings::every_setting_at_its_maximum_means_no_limit,
        ),
        (
            "dashboard",
            dashboard::the_dashboard_s_sends_are_never_duplicates,
        ),
    ];
    for (name, case) in cases {
        eprintln!("postgres: {name}");
        case(&Scratch::on(name, pg.database()));
    }
}
