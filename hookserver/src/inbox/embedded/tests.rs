//! The embedded inbox on a real file: a delivery's row through its life, the purge of old
//! done deliveries, the dedupe index, the compaction of a file left mostly free, and files
//! of other formats.

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
fn a_file_of_another_format_is_refused_with_what_to_do() {
    let file = TempFile::new("format");
    write_format(&file, "hookserver-inbox/0", |_| {});
    let err = Embedded::open(&file.0, &settings(&file, DEFAULT_DEDUPE_WINDOW)).unwrap_err();
    assert!(
        err.contains("\"hookserver-inbox/0\"") && err.contains(FORMAT),
        "{err}"
    );
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

#[test]
fn a_file_of_format_2_is_upgraded_and_keeps_its_keys() {
    let file = TempFile::new("format-2");
    let settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        store.accept(arrival("old", "{}")).await.unwrap();
    });
    // As format 2 left it: its keys in a table of their own.
    let keys: redb::TableDefinition<'_, &str, (u64, u64)> = redb::TableDefinition::new("keys");
    write_format(&file, FORMAT_2, |txn| {
        txn.open_table(keys)
            .unwrap()
            .insert("/webhooks/a\nid:old", (1, 0))
            .unwrap();
    });

    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        assert_eq!(
            store.accept(arrival("old", "{}")).await,
            Ok(Accepted::Duplicate(1))
        );
    });
    let db = open_file(&file.0).unwrap();
    let txn = db.begin_read().unwrap();
    let format = txn.open_table(META).unwrap();
    assert_eq!(format.get(FORMAT_KEY).unwrap().unwrap().value(), FORMAT);
    let tables: Vec<String> = txn
        .list_tables()
        .unwrap()
        .map(|t| redb::TableHandle::name(&t).to_owned())
        .collect();
    assert!(!tables.contains(&"keys".to_owned()), "{tables:?}");
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
fn arrivals_are_written_out_by_their_first_write_and_at_the_next_open() {
    use super::tables::{DELIVERIES, REQUESTS};
    // The arrivals the closed file's log holds: the first id of each.
    let logged = |file: &TempFile| -> Vec<u64> {
        let number = log_number(file);
        let (_, records) = Wal::open(&file.0, number).unwrap();
        records
            .iter()
            .flat_map(|r| tables::decode_arrivals(r).unwrap())
            .map(|row| row.0)
            .collect()
    };
    let file = TempFile::new("arrivals");
    let settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        let accepted = futures_util::future::join_all([
            store.accept(arrival("w1", "{\"n\":1}")),
            store.accept(arrival("w2", "{\"n\":2}")),
            store.accept(arrival("w3", "{\"n\":3}")),
        ])
        .await;
        assert!(accepted
            .iter()
            .all(|a| matches!(a, Ok(Accepted::Queued(_)))));
        // Not written out yet, yet listed (from memory).
        let listed = store.list(false, 10).await.unwrap();
        let shown: Vec<_> = listed.iter().map(|e| (e.id, e.state)).collect();
        assert_eq!(
            shown,
            [(3, State::Queued), (2, State::Queued), (1, State::Queued)]
        );
        assert_eq!(listed[0].webhook_id.as_deref(), Some("w3"));
        claim(&store, 1).await;
        store.finish(1, 1, Outcome::Done).await;
        claim(&store, 2).await;
        let error = Outcome::Retry {
            error: "later".to_owned(),
            at: now_ms() + 60_000,
        };
        store.finish(2, 1, error).await;
        drop(store);
    });
    // 1 is done without its request ever written again; 2 waits with its request; 3 is
    // only in the log (the log holds all three, its record of them one).
    assert_eq!(ids_in(&file, DELIVERIES), [1, 2]);
    assert_eq!(ids_in(&file, REQUESTS), [2]);
    assert_eq!(logged(&file), [1, 2, 3]);
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.done, counts.retrying, counts.queued), (1, 1, 1));
        let third = claim(&store, 3).await;
        assert_eq!(&third.request.body()[..], b"{\"n\":3}");
        assert_eq!(third.webhook_id.as_deref(), Some("w3"));
        // A duplicate of a delivery written out at open is still one.
        assert_eq!(
            store.accept(arrival("w3", "{}")).await,
            Ok(Accepted::Duplicate(3))
        );
        // The log started over at the open: it holds what arrived since.
        // (The duplicate took id 4.)
        assert_eq!(
            store.accept(arrival("w5", "{}")).await,
            Ok(Accepted::Queued(5))
        );
        claim(&store, 5).await;
        store.finish(5, 1, Outcome::Done).await;
        drop(store);
    });
    assert_eq!(logged(&file), [5]);
    assert_eq!(ids_in(&file, DELIVERIES), [1, 2, 3, 5]);
    assert_eq!(ids_in(&file, REQUESTS), [2, 3]);
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

/// An arrival with a body of `len` bytes.
fn big_arrival(key: &str, len: usize) -> Arrival {
    let req = actix_web::test::TestRequest::post()
        .uri("/webhooks/a")
        .to_http_request();
    Arrival {
        endpoint: "/webhooks/a".into(),
        webhook_id: Some(key.to_owned()),
        key: format!("id:{key}"),
        request: StoredRequest::of(&req, &vec![b'x'; len]),
        parsed: None,
    }
}

/// Fills a fresh `store` with 40 deliveries of 512 KiB, runs them all, and waits past
/// the window: the file is then over 16 MiB, and its pages free once purged.
async fn fill_and_run(store: &Embedded) {
    for i in 0..40u64 {
        store
            .accept(big_arrival(&i.to_string(), 512 * 1024))
            .await
            .unwrap();
    }
    for id in 1..=40 {
        claim(store, id).await;
        store.finish(id, 1, Outcome::Done).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn size(file: &TempFile) -> u64 {
    std::fs::metadata(&file.0).unwrap().len()
}

/// Sends the writer's purge (every 10 minutes; here now) and waits until `left` done
/// deliveries are left.
async fn purge(store: &Embedded, left: usize) {
    store.send(Op::Purge);
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.counts().await.unwrap().done > left {
        assert!(Instant::now() < deadline, "the purge did not happen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_file_mostly_free_after_a_purge_is_compacted() {
    let file = TempFile::new("compact");
    let settings = settings(&file, Duration::from_millis(200));
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        fill_and_run(&store).await;
        let full = size(&file);
        assert!(full > COMPACT_ABOVE, "the file grew to {full} bytes only");
        purge(&store, 0).await;
        // Compacted by the writer after the purge that freed it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while size(&file) > COMPACT_ABOVE / 4 {
            assert!(
                Instant::now() < deadline,
                "not compacted: {} bytes",
                size(&file)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The inbox goes on: a new delivery is stored and found again after a reopen.
        store.accept(arrival("after", "{}")).await.unwrap();
        drop(store);
        let store = Embedded::open(&file.0, &settings).unwrap();
        assert_eq!(store.counts().await.unwrap().queued, 1);
    });
}

#[test]
fn a_file_left_mostly_free_is_compacted_at_launch() {
    let file = TempFile::new("compact-launch");
    let mut settings = settings(&file, Duration::from_millis(200));
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        // Many small deliveries, as a bot's burst: their rows and keys spread over the
        // file's pages, which redb cannot give back by cutting the file's end.
        let long_id = "w".repeat(200);
        for round in 0..30u64 {
            let accepts = (0..100u64).map(|i| {
                let key = format!("{long_id}{}", round * 100 + i);
                let mut arrival = arrival(&key, "{}");
                arrival.key = format!("id:{key}");
                store.accept(arrival)
            });
            futures_util::future::join_all(accepts).await;
            for _ in 0..100 {
                let job = store.claim().await.unwrap().expect("a delivery is due");
                store.finish(job.id, 1, Outcome::Done).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // A reader holds the file during the purge: the writer cannot compact it then.
        let held = store.inner.db().unwrap();
        purge(&store, 0).await;
        // The writer is past the purge's commit once a later write is answered.
        store.accept(arrival("after", "{}")).await.unwrap();
        drop(held);
    });
    let left = size(&file);
    assert!(left > COMPACT_ABOVE, "the file is {left} bytes only");
    // Reopened with a long window (its purge removes nothing): the open compacts.
    settings.dedupe_window = Duration::from_secs(3600);
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        assert!(size(&file) < COMPACT_ABOVE / 4, "{} bytes", size(&file));
        assert_eq!(store.counts().await.unwrap().queued, 1);
    });
}

#[test]
fn a_discarded_delivery_does_not_come_back_from_the_log() {
    use super::tables::FORGOTTEN;
    let file = TempFile::new("forgotten");
    let settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        store.accept(arrival("gone", "{}")).await.unwrap();
        store.accept(arrival("kept", "{}")).await.unwrap();
        // Both are in the log; the first is discarded before any attempt.
        store.discard(1).await.unwrap();
    });
    assert_eq!(ids_in(&file, FORGOTTEN), [1]);
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        assert_eq!(store.counts().await.unwrap().queued, 1);
        claim(&store, 2).await;
        // Another, discarded; then the purge, before which the log starts over.
        store.accept(arrival("gone too", "{}")).await.unwrap();
        store.discard(3).await.unwrap();
        store.send(Op::Purge);
        // Answered once the purge's commit is made (the writer takes writes in order).
        store.accept(arrival("after", "{}")).await.unwrap();
    });
    assert_eq!(ids_in(&file, FORGOTTEN), Vec::<u64>::new());
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        let counts = store.counts().await.unwrap();
        // 2 was running at the stop; 4 waits; 1 and 3 stay gone.
        assert_eq!((counts.queued, counts.retrying), (1, 1));
        claim(&store, 4).await;
    });
}

#[test]
fn a_full_segment_of_the_log_is_written_out_before_it_is_used_again() {
    use super::tables::{DELIVERIES, REQUESTS};
    let file = TempFile::new("segments");
    let mut settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    settings.limit = 1000;
    let body = |i: u64| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(4000));
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        for i in 1..=40u64 {
            let mut arrival = arrival(&format!("s{i}"), "{}");
            let req = actix_web::test::TestRequest::post()
                .uri("/webhooks/a")
                .to_http_request();
            arrival.request = StoredRequest::of(&req, body(i).as_bytes());
            assert_eq!(store.accept(arrival).await, Ok(Accepted::Queued(i)));
        }
        drop(store);
    });
    // The log's segments hold 64 KiB in the unit tests: the first deliveries were written
    // out (with their requests) when their segment was needed again; the last ones are
    // only in the log.
    let written = ids_in(&file, DELIVERIES);
    assert!(!written.is_empty() && written.len() < 40, "{written:?}");
    assert_eq!(written, (1..=written.len() as u64).collect::<Vec<_>>());
    assert_eq!(ids_in(&file, REQUESTS), written);
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        assert_eq!(store.counts().await.unwrap().queued, 40);
        for i in 1..=40u64 {
            let job = claim(&store, i).await;
            assert_eq!(&job.request.body()[..], body(i).as_bytes());
        }
    });
}

#[test]
fn a_log_left_beside_a_new_file_is_not_read_into_it() {
    let file = TempFile::new("other-log");
    let settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        store.accept(arrival("old", "{}")).await.unwrap();
    });
    // The file removed, its log left: a new file does not take the old deliveries.
    std::fs::remove_file(&file.0).unwrap();
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        assert_eq!(store.counts().await.unwrap().queued, 0);
        assert_eq!(
            store.accept(arrival("old", "{}")).await,
            Ok(Accepted::Queued(1))
        );
    });
}

#[test]
fn a_file_of_format_3_is_upgraded_and_its_arrivals_written_out() {
    use super::tables::{ArrivalRow, ARRIVALS, FORMAT_3};
    let file = TempFile::new("format-3");
    let settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    run(async {
        drop(Embedded::open(&file.0, &settings).unwrap());
    });
    // As format 3 left it: a delivery acknowledged in an `ARRIVALS` value.
    let old = arrival("old", "{\"n\":1}");
    write_format(&file, FORMAT_3, |txn| {
        let row: ArrivalRow<'_> = (
            1,
            now_ms(),
            "/webhooks/a",
            Some("old"),
            "id:old",
            old.request.blob(),
        );
        txn.open_table(ARRIVALS)
            .unwrap()
            .insert(1, vec![row])
            .unwrap();
    });
    run(async {
        let store = Embedded::open(&file.0, &settings).unwrap();
        let job = claim(&store, 1).await;
        assert_eq!(&job.request.body()[..], b"{\"n\":1}");
        assert_eq!(
            store.accept(arrival("old", "{}")).await,
            Ok(Accepted::Duplicate(1))
        );
    });
    assert!(ids_in(&file, ARRIVALS).is_empty());
    assert_eq!(meta(&file, FORMAT_KEY), FORMAT);
}

#[test]
fn a_log_record_that_checks_but_cannot_be_read_is_an_error_of_the_open() {
    let file = TempFile::new("unreadable-record");
    let settings = settings(&file, DEFAULT_DEDUPE_WINDOW);
    run(async {
        drop(Embedded::open(&file.0, &settings).unwrap());
    });
    // A record with a right CRC-32 whose bytes are no arrivals (a log made by hand).
    let (mut log, _) = Wal::open(&file.0, log_number(&file)).unwrap();
    log.append(&[0xff; 40]).unwrap();
    drop(log);
    let err = Embedded::open(&file.0, &settings).unwrap_err();
    assert!(
        err.contains("arrivals' log holds a record that cannot be read"),
        "{err}"
    );
    // The file and the log are left as they were: nothing was lost, the open says why.
    let (_, records) = Wal::open(&file.0, log_number(&file)).unwrap();
    assert_eq!(records, [vec![0xff; 40]]);
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

#[test]
fn a_record_of_the_log_reads_back_what_was_written_and_a_cut_one_is_an_error() {
    use super::tables::{decode_arrivals, encode_arrivals, ArrivalRow};
    let rows: Vec<ArrivalRow<'_>> = vec![
        (1, 10, "/webhooks/a", Some("w"), "id:w", b"blob"),
        (2, 11, "/webhooks/b", None, "sha256:x", b""),
    ];
    let record = encode_arrivals(&rows);
    assert_eq!(decode_arrivals(&record).unwrap(), rows);
    let first = encode_arrivals(&rows[..1]).len();
    for cut in 1..record.len() {
        match decode_arrivals(&record[..cut]) {
            Ok(read) => assert_eq!((cut, read), (first, rows[..1].to_vec())),
            Err(err) => assert!(err.to_string().contains("cannot be read"), "{err}"),
        }
    }
}
