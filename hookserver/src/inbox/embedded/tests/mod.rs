//! The embedded inbox on a real file: a delivery's row through its life, the purge of old
//! done deliveries and the dedupe index here; files of other formats and compaction in
//! `files`; the arrivals' log in `log`. The helpers here serve all three.

mod files;
mod log;

use std::path::PathBuf;
use std::time::Duration;

use super::tables::{FORMAT, FORMAT_2, FORMAT_KEY, META};
use super::writer::{HOLD, SYNC_WITHIN};
use super::*;
use crate::inbox::{Location, DEFAULT_DEDUPE_WINDOW, DEFAULT_QUEUE_ATTEMPTS};

/// A file of its own under the temporary folder, removed at the end.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "hookserver-{name}-{}-{nanos}.redb",
            std::process::id()
        ));
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(wal::path_of(&self.0));
    }
}

fn settings(file: &TempFile, window: Duration) -> Settings {
    Settings {
        location: Location::File(file.0.clone()),
        attempts: DEFAULT_QUEUE_ATTEMPTS,
        backoff: Duration::from_millis(10),
        workers: 1,
        limit: 100,
        dedupe_window: window,
        lease: Duration::from_secs(60),
    }
}

fn arrival(key: &str, body: &'static str) -> Arrival {
    let req = actix_web::test::TestRequest::post()
        .uri("/webhooks/a?x=1")
        .insert_header(("webhook-id", key))
        .to_http_request();
    Arrival {
        endpoint: "/webhooks/a".into(),
        webhook_id: Some(key.to_owned()),
        key: format!("id:{key}"),
        request: StoredRequest::of(&req, body.as_bytes()),
        parsed: None,
    }
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Claims the next delivery, which must be `id`.
async fn claim(store: &Embedded, id: u64) -> Job {
    let job = store.claim().await.unwrap().expect("a delivery is due");
    assert_eq!(job.id, id);
    job
}

#[test]
fn a_row_keeps_its_request_until_done_and_survives_a_reopen() {
    let file = TempFile::new("row");
    let settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        assert_eq!(
            store.accept(arrival("w1", "{\"a\":1}")).await,
            Ok(Accepted::Queued(1))
        );
        assert_eq!(
            store.accept(arrival("w2", "{\"b\":2}")).await,
            Ok(Accepted::Queued(2))
        );
        assert_eq!(
            store.accept(arrival("w1", "{}")).await,
            Ok(Accepted::Duplicate(1))
        );
        let error = Outcome::Retry {
            error: "boom".to_owned(),
            at: now_ms() + 30,
        };
        claim(&store, 1).await;
        store.finish(1, 1, error).await;
        // Read from the file, not the cache: the request outlives a failed attempt.
        let again = claim(&store, 2).await;
        store.finish(2, 1, Outcome::Done).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
        let retried = claim(&store, 1).await;
        assert_eq!(
            (retried.attempt, &retried.request.body()[..]),
            (2, &b"{\"a\":1}"[..])
        );
        assert_eq!(retried.request.head().uri, "/webhooks/a?x=1");
        assert_eq!(again.webhook_id.as_deref(), Some("w2"));
        let dead = Outcome::Dead {
            error: "gone".to_owned(),
        };
        store.finish(1, 2, dead).await;
        drop(store);

        let store = Embedded::open(&file.0, &settings).unwrap();
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.done, counts.dead, counts.waiting()), (1, 1, 0));
        let listed = store.list(false, 10).await.unwrap();
        assert_eq!(listed.iter().map(|e| e.id).collect::<Vec<_>>(), [2, 1]);
        let dead = &listed[1];
        assert_eq!(
            (dead.state, dead.tries, dead.webhook_id.as_deref()),
            (State::Dead, 2, Some("w1"))
        );
        let errors: Vec<_> = dead
            .errors
            .iter()
            .map(|f| (f.number, f.error.as_str()))
            .collect();
        assert_eq!(errors, [(1, "boom"), (2, "gone")]);
        // The done delivery's request is gone; the dead letter's is kept for a retry.
        assert!(store.request_of(2).unwrap().is_none());
        store.retry(1).await.unwrap();
        let third = claim(&store, 1).await;
        let body = third.request.body();
        assert_eq!(
            (third.attempt, third.in_round, &body[..]),
            (3, 1, &b"{\"a\":1}"[..])
        );
        store.finish(1, 3, Outcome::Done).await;
    });
}

#[test]
fn the_first_attempt_takes_the_payload_the_check_parsed_and_a_retry_parses_again() {
    let file = TempFile::new("parsed");
    let settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    let body = crate::samples::SAMPLES[0].1;
    let payload = WebhookPayload::from_slice(body.as_bytes()).unwrap();
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        let mut with_payload = arrival("p", body);
        with_payload.parsed = Some(Box::new(payload.clone()));
        store.accept(with_payload).await.unwrap();
        let first = claim(&store, 1).await;
        assert_eq!(first.parsed.as_deref(), Some(&payload));
        let error = Outcome::Retry {
            error: "again".to_owned(),
            at: now_ms(),
        };
        store.finish(1, 1, error).await;
        // Handed on once: the retry reads the stored body.
        let second = claim(&store, 1).await;
        assert_eq!(second.attempt, 2);
        assert!(second.parsed.is_none());
        assert_eq!(&second.request.body()[..], body.as_bytes());
    });
}

#[test]
fn a_delivery_done_at_its_first_attempt_is_listed_done_before_its_end_is_written() {
    let file = TempFile::new("held");
    let settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        store.accept(arrival("h", "{}")).await.unwrap();
        claim(&store, 1).await;
        store.finish(1, 1, Outcome::Done).await;
        // The end waits for the next commit (at most `HOLD`); the list says done meanwhile.
        let listed = store.list(false, 10).await.unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|e| (e.id, e.state, e.tries))
                .collect::<Vec<_>>(),
            [(1, State::Done, 1)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let listed = store.list(false, 10).await.unwrap();
        assert_eq!((listed[0].state, listed[0].tries), (State::Done, 1));
    });
}

#[test]
fn done_deliveries_older_than_the_window_are_purged_and_dead_letters_kept() {
    let file = TempFile::new("purge");
    let settings = settings(&file, Duration::from_millis(200));
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        store.accept(arrival("done", "{}")).await.unwrap();
        store.accept(arrival("dead", "{}")).await.unwrap();
        claim(&store, 1).await;
        store.finish(1, 1, Outcome::Done).await;
        claim(&store, 2).await;
        let dead = Outcome::Dead {
            error: "no".to_owned(),
        };
        store.finish(2, 1, dead).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(store);

        // Opening purges first; the accept after it is written after the purge.
        let store = Embedded::open(&file.0, &settings).unwrap();
        assert_eq!(
            store.accept(arrival("done", "{}")).await,
            Ok(Accepted::Queued(3))
        );
        let listed = store.list(false, 10).await.unwrap();
        assert_eq!(listed.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(store.counts().await.unwrap().done, 0);
        // Within the window, the key is remembered.
        assert_eq!(
            store.accept(arrival("done", "{}")).await,
            Ok(Accepted::Duplicate(3))
        );
    });
}

/// Marks the file (opened alone) as of `format`, with what `more` writes in the same
/// transaction.
fn write_format(file: &TempFile, format: &str, more: impl FnOnce(&redb::WriteTransaction)) {
    let db = open_file(&file.0).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(META)
        .unwrap()
        .insert(FORMAT_KEY, format)
        .unwrap();
    more(&txn);
    txn.commit().unwrap();
}

#[test]
fn the_dedupe_index_is_built_again_at_open_from_rows_and_arrivals() {
    let file = TempFile::new("keys-reopen");
    let settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        store.accept(arrival("done", "{}")).await.unwrap();
        claim(&store, 1).await;
        store.finish(1, 1, Outcome::Done).await;
        // Still queued at the stop: only in its commit's `ARRIVALS` value.
        store.accept(arrival("waiting", "{}")).await.unwrap();
        drop(store);

        let store = Embedded::open(&file.0, &settings).unwrap();
        assert_eq!(
            store.accept(arrival("done", "{}")).await,
            Ok(Accepted::Duplicate(1))
        );
        assert_eq!(
            store.accept(arrival("waiting", "{}")).await,
            Ok(Accepted::Duplicate(2))
        );
        // The same key at another endpoint is another delivery (duplicates use up ids).
        let mut elsewhere = arrival("done", "{}");
        elsewhere.endpoint = "/webhooks/b".into();
        assert_eq!(store.accept(elsewhere).await, Ok(Accepted::Queued(5)));
    });
}

#[test]
fn one_key_sent_at_once_is_stored_once() {
    let file = TempFile::new("keys-batch");
    let settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        let answers =
            futures_util::future::join_all((0..8).map(|_| store.accept(arrival("same", "{}"))))
                .await;
        let queued: Vec<_> = answers
            .iter()
            .filter_map(|a| match a {
                Ok(Accepted::Queued(id)) => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(queued.len(), 1, "{answers:?}");
        let duplicates = answers
            .iter()
            .filter(|a| **a == Ok(Accepted::Duplicate(queued[0])))
            .count();
        assert_eq!(duplicates, 7, "{answers:?}");
        assert_eq!(store.counts().await.unwrap().queued, 1);
    });
}

#[test]
fn a_discard_frees_a_key_only_when_the_key_still_names_that_delivery() {
    let file = TempFile::new("keys-discard");
    let settings = settings(&file, Duration::from_millis(200));
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        store.accept(arrival("k", "{}")).await.unwrap();
        claim(&store, 1).await;
        let dead = Outcome::Dead {
            error: "no".to_owned(),
        };
        store.finish(1, 1, dead).await;
        // Past the window, the key names the next delivery with it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            store.accept(arrival("k", "{}")).await,
            Ok(Accepted::Queued(2))
        );
        store.discard(1).await.unwrap();
        assert_eq!(
            store.accept(arrival("k", "{}")).await,
            Ok(Accepted::Duplicate(2))
        );
        // Discarding the delivery it names frees it.
        store.discard(2).await.unwrap();
        assert_eq!(
            store.accept(arrival("k", "{}")).await,
            Ok(Accepted::Queued(4))
        );
    });
}

/// The number of the closed file's log.
fn log_number(file: &TempFile) -> u64 {
    meta(file, "log").parse().unwrap()
}

/// A value of the closed file's `META` table.
fn meta(file: &TempFile, key: &str) -> String {
    let db = open_file(&file.0).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    let value = meta.get(key).unwrap().unwrap().value().to_owned();
    value
}

/// The ids with a row in `table` of the file (opened alone).
fn ids_in<V: redb::Value + 'static>(
    file: &TempFile,
    table: redb::TableDefinition<'_, u64, V>,
) -> Vec<u64> {
    let db = open_file(&file.0).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(table).unwrap();
    let ids = table
        .iter()
        .unwrap()
        .map(|item| item.unwrap().0.value())
        .collect();
    ids
}

#[test]
fn an_open_waits_for_the_last_store_of_its_file_to_close() {
    let file = TempFile::new("closing");
    let settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    for round in 0..5 {
        let store = Embedded::open(&file.0, &settings).unwrap();
        let weak = Arc::downgrade(&store);
        run(async {
            let accepted = store.accept(arrival(&format!("c{round}"), "{}")).await;
            assert!(matches!(accepted, Ok(Accepted::Queued(_))));
        });
        // The last store goes on another thread (as a stopped server's runner drops it);
        // an open from here as soon as it is no longer usable must wait for the file.
        let closing = std::thread::spawn(move || drop(store));
        while weak.strong_count() > 0 {
            std::hint::spin_loop();
        }
        let reopened = Embedded::open(&file.0, &settings);
        assert!(reopened.is_ok(), "round {round}: {:?}", reopened.err());
        closing.join().unwrap();
        drop(reopened);
    }
}

#[test]
fn a_delivery_done_before_a_clean_stop_does_not_run_again() {
    let file = TempFile::new("clean-stop");
    let settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        store.accept(arrival("first", "{}")).await.unwrap();
        claim(&store, 1).await;
        store.finish(1, 1, Outcome::Done).await;
        // Its end rides with this arrival's commit, which the log makes durable, not redb.
        store.accept(arrival("second", "{}")).await.unwrap();
        drop(store);
        let store = Embedded::open(&file.0, &settings).unwrap();
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.done, counts.queued), (1, 1));
        claim(&store, 2).await;
    });
}

#[test]
fn an_attempt_s_end_is_on_disk_within_a_tenth_of_a_second() {
    let file = TempFile::new("sync-within");
    let copy = TempFile::new("sync-within-copy");
    let first = settings(&file, DEFAULT_DEDUPE_WINDOW);
    run(async {
        let store = Embedded::open(&file.0, &first).unwrap();
        store.accept(arrival("a", "{}")).await.unwrap();
        claim(&store, 1).await;
        store.finish(1, 1, Outcome::Done).await;
        // Nothing else comes: the end waits for a commit of its own (`HOLD`), then a durable
        // one (`SYNC_WITHIN`).
        tokio::time::sleep(HOLD + SYNC_WITHIN + Duration::from_millis(250)).await;
        // What a crash now would leave: the files as they are on disk (a commit without
        // fsync is still in redb's memory).
        std::fs::copy(&file.0, &copy.0).unwrap();
        std::fs::copy(wal::path_of(&file.0), wal::path_of(&copy.0)).unwrap();
        drop(store);
    });
    run(async {
        let store = Embedded::open(&copy.0, &settings(&copy, DEFAULT_DEDUPE_WINDOW)).unwrap();
        let counts = store.counts().await.unwrap();
        assert_eq!(
            (counts.done, counts.queued),
            (1, 0),
            "the delivery would run again"
        );
    });
}
