//! Several replicas, one inbox: drill bots on three ports sharing one PostgreSQL database
//! (a real server the test starts), one of them SIGKILLed mid-run; two replicas launched
//! at once on an empty database; the database restarted under a running bot; a database
//! that stops answering (SIGSTOP) under a bot that is then stopped.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::bot::Bot;
use common::postgres::PgServer;

struct Journal(PathBuf);

impl Journal {
    fn new(name: &str) -> Journal {
        Journal(std::env::temp_dir().join(format!(
            "hookserver-replicas-{name}-{}.txt",
            std::process::id()
        )))
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }

    /// (webhook id, pid) of each run.
    fn runs(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.0)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let parts: Vec<&str> = l.split(' ').collect();
                (parts[1].to_owned(), parts[4].to_owned())
            })
            .collect()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn replica(url: &str, journal: &Journal) -> Bot {
    Bot::start(
        "queue_drill",
        &[
            ("HOOKSERVER_INBOX", url),
            ("DRILL_JOURNAL", &journal.path()),
            ("HOOKSERVER_QUEUE_BACKOFF", "50ms"),
            // A lease of 2 s (twice the handler timeout): a dead replica's work is taken
            // over soon.
            ("DRILL_HANDLER_TIMEOUT_MS", "1000"),
        ],
    )
}

fn waiting(bot: &Bot) -> u64 {
    let reply = common::get(&format!("{}/api/inbox", bot.base()));
    let c = &reply.json()["counts"];
    c["queued"].as_u64().unwrap() + c["running"].as_u64().unwrap() + c["retrying"].as_u64().unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// Sends one delivery; `Some((status, body))`, or `None` when the replica is gone.
fn send(agent: &ureq::Agent, url: &str, id: &str, body: &[u8]) -> Option<(u16, String)> {
    let mut response = agent
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .send(body)
        .ok()?;
    let status = response.status().as_u16();
    Some((
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    ))
}

#[test]
fn three_replicas_share_one_inbox_and_finish_a_dead_one_s_work() {
    const UNIQUE: usize = 4500;
    const REPEATS: usize = 500;
    const THREADS: usize = 12;
    let Some(pg) = PgServer::start() else { return };
    let url = pg.database();
    let journal = Journal::new("three");
    let mut bots: Vec<Bot> = (0..3).map(|_| replica(&url, &journal)).collect();
    let urls: Vec<String> = bots.iter().map(|b| b.url_of("/webhooks/record")).collect();
    let killed_pid = bots[2].id().to_string();
    let body = common::hub_sample();

    // Phase 1: 4,500 deliveries over the three; replica 2 is killed mid-way. A delivery its
    // death left unanswered is sent again to replica 0, as the Hub retries through a load
    // balancer.
    let first: Arc<Mutex<HashMap<String, (usize, String)>>> = Arc::default();
    let acked = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let (urls, body, first, acked) =
                (urls.clone(), body.clone(), first.clone(), acked.clone());
            std::thread::spawn(move || {
                let agent = agent();
                for i in (t..UNIQUE).step_by(THREADS) {
                    let id = format!("r-{i}");
                    let mut target = i % 3;
                    let answer = loop {
                        match send(&agent, &urls[target], &id, &body) {
                            Some(answer) => break answer,
                            None => target = 0,
                        }
                    };
                    let (status, text) = answer;
                    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let delivery = match status {
                        202 => json["queued"].as_str().unwrap().to_owned(),
                        // The dead replica stored it before it could answer.
                        200 => json["duplicate"].as_str().unwrap().to_owned(),
                        other => panic!("{id}: {other} {text}"),
                    };
                    first.lock().unwrap().insert(id, (target, delivery));
                    acked.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    common::wait_until("a third of the deliveries", 120, || {
        acked.load(Ordering::SeqCst) >= UNIQUE / 3
    });
    let status = std::process::Command::new("kill")
        .args(["-KILL", &killed_pid])
        .status()
        .unwrap();
    assert!(status.success());
    for sender in senders {
        sender.join().unwrap();
    }
    let first = first.lock().unwrap().clone();
    assert_eq!(first.len(), UNIQUE);

    // Phase 2: 500 repeats, each to a live replica other than the one that took it first.
    let agent = agent();
    for i in (0..UNIQUE).step_by(UNIQUE / REPEATS) {
        let id = format!("r-{i}");
        let (target, delivery) = &first[&id];
        let other = if *target == 0 { 1 } else { 0 };
        let (status, text) =
            send(&agent, &urls[other], &id, &body).expect("a live replica answers");
        assert_eq!(status, 200, "{id}: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["duplicate"].as_str(), Some(delivery.as_str()), "{id}");
    }

    // The two live replicas finish everything, the dead one's leased work included.
    common::wait_until("the shared inbox to drain", 120, || waiting(&bots[0]) == 0);
    let mut runs: HashMap<String, Vec<String>> = HashMap::new();
    for (id, pid) in journal.runs() {
        runs.entry(id).or_default().push(pid);
    }
    let lost: Vec<&String> = first.keys().filter(|id| !runs.contains_key(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged deliveries never ran: {lost:?}",
        lost.len()
    );
    // Twice only when the killed replica's attempt was cut (or its outcome not recorded).
    let twice: Vec<(&String, &Vec<String>)> =
        runs.iter().filter(|(_, pids)| pids.len() > 1).collect();
    for (id, pids) in &twice {
        assert!(
            pids.contains(&killed_pid),
            "{id} ran twice on live replicas: {pids:?}"
        );
    }
    let interrupted = pg.sql(
        url.rsplit('/').next().unwrap(),
        "SELECT count(*) FROM hookserver_errors WHERE error LIKE 'interrupted%'",
    );
    let by_others = runs
        .values()
        .filter(|pids| !pids.contains(&killed_pid))
        .count();
    eprintln!(
        "3 replicas, replica 2 killed after {} acknowledgements: {} unique acknowledged, {} repeats answered duplicate, {} ran twice (all involving the killed replica), {} leases taken over from it, {} run by the live replicas",
        UNIQUE / 3,
        first.len(),
        REPEATS,
        twice.len(),
        interrupted,
        by_others
    );
    drop(bots.pop());
}

#[test]
fn two_replicas_launched_together_on_an_empty_database_both_serve() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.database();
    let journal = Journal::new("together");
    let starts: Vec<_> = (0..2)
        .map(|_| {
            let (url, path) = (url.clone(), journal.path());
            std::thread::spawn(move || {
                Bot::start(
                    "queue_drill",
                    &[("HOOKSERVER_INBOX", &url), ("DRILL_JOURNAL", &path)],
                )
            })
        })
        .collect();
    let bots: Vec<Bot> = starts.into_iter().map(|s| s.join().unwrap()).collect();
    for (n, bot) in bots.iter().enumerate() {
        let reply = common::post(
            &bot.url_of("/webhooks/record"),
            &common::hub_sample(),
            &[("webhook-id", &format!("t-{n}"))],
        );
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    let database = url.rsplit('/').next().unwrap();
    assert_eq!(
        pg.sql(
            database,
            "SELECT value FROM hookserver_meta WHERE key = 'schema'"
        ),
        "1"
    );
    common::wait_until("both runs", 20, || journal.runs().len() == 2);
}

#[test]
fn a_database_restart_refuses_deliveries_meanwhile_and_loses_no_acknowledged_one() {
    let Some(mut pg) = PgServer::start() else {
        return;
    };
    let url = pg.database();
    let journal = Journal::new("restart");
    let bot = replica(&url, &journal);
    let target = bot.url_of("/webhooks/record");
    // Deliveries every 20 ms for 6 s, while the database goes away for a second and comes
    // back on the same data.
    let sender = std::thread::spawn(move || {
        let (agent, body) = (agent(), common::hub_sample());
        let (mut acked, mut refused) = (HashSet::new(), 0);
        let started = Instant::now();
        let mut i = 0;
        while started.elapsed() < Duration::from_secs(6) {
            let id = format!("db-{i}");
            i += 1;
            let (status, text) = send(&agent, &target, &id, &body).expect("the bot answers");
            match status {
                202 => {
                    acked.insert(id);
                }
                503 => refused += 1,
                other => panic!("{id}: {other} {text}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (acked, refused)
    });
    std::thread::sleep(Duration::from_secs(1));
    pg.restart_after(Duration::from_secs(1));
    let (acked, refused) = sender.join().unwrap();
    assert!(
        refused > 0,
        "nothing was refused while the database was down"
    );
    common::wait_until("the inbox to drain", 60, || waiting(&bot) == 0);
    let ran: HashSet<String> = journal.runs().into_iter().map(|(id, _)| id).collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !ran.contains(*id)).collect();
    assert!(lost.is_empty(), "lost after the database restart: {lost:?}");
    let after = acked
        .iter()
        .filter(|id| id.trim_start_matches("db-").parse::<u32>().unwrap() > 150)
        .count();
    assert!(after > 0, "nothing was acknowledged after the restart");
    eprintln!(
        "database restart: {} acknowledged ({after} near the end), {refused} answered 503 while it was down",
        acked.len()
    );
}

#[test]
fn a_frozen_database_refuses_deliveries_and_a_stop_meanwhile_ends_in_bounded_time() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    let url = pg.database();
    let journal = Journal::new("frozen");
    let env = [
        ("HOOKSERVER_INBOX", url.as_str()),
        ("DRILL_JOURNAL", &journal.path()),
        ("DRILL_SLOW_MS", "1500"),
        ("DRILL_SHUTDOWN_MS", "300"),
        ("DRILL_HANDLER_TIMEOUT_MS", "3000"),
    ];
    let mut bot = Bot::start("queue_drill", &env);
    let (status, text) = send(
        &agent(),
        &bot.url_of("/webhooks/slow"),
        "frozen-1",
        &common::hub_sample(),
    )
    .expect("the bot answers");
    assert_eq!(status, 202, "{text}");
    common::wait_until("the attempt to start", 10, || {
        common::get(&format!("{}/api/inbox", bot.base())).json()["counts"]["running"] == 1
    });
    // The database stops answering; the bot is told to stop while its attempt runs past
    // the shutdown timeout, so that it puts the attempt back, in a database that does
    // not answer.
    let frozen = pg.freeze();
    // A delivery meanwhile is refused in bounded time, for the Hub to retry.
    let asked = Instant::now();
    let mut response = agent()
        .post(&bot.url_of("/webhooks/record"))
        .header("webhook-id", "frozen-2")
        .send(&common::hub_sample()[..])
        .expect("the bot answers");
    let waited = asked.elapsed();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let text = response.body_mut().read_to_string().unwrap();
    assert!(text.contains("did not answer"), "{text}");
    eprintln!("a delivery with the database frozen: 503 after {waited:?}");
    let started = Instant::now();
    let exited = bot.exits_within("TERM", Duration::from_secs(20));
    assert!(
        exited.is_some(),
        "the bot was still running 20 s after SIGTERM, its database frozen"
    );
    eprintln!(
        "stopped in {:?} with the database frozen",
        started.elapsed()
    );
    drop(frozen);
    drop(bot);
    // Nothing acknowledged is lost: the next start runs the attempt (its lease expired).
    let bot = Bot::start("queue_drill", &env);
    common::wait_until("the attempt to run again", 30, || {
        journal.runs().iter().any(|(id, _)| id == "frozen-1")
    });
    common::wait_until("the inbox to drain", 30, || waiting(&bot) == 0);
}
