//! The embedded inbox's arrivals' log: what is in it is written out into the file, at its
//! first write and at the next open, and never comes back once discarded or purged.

use super::*;

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
