//! Files the embedded inbox did not write as it writes now: of other formats (refused, or
//! upgraded), and files left mostly free (compacted).

use super::*;
use crate::inbox::embedded::tables::COMPACT_ABOVE;

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
