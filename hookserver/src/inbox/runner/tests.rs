//! The queue's supervision, on a real inbox file: a failure of the queue's own (a panic
//! outside any handler, as a bug would make) leaves no stored delivery unrun.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use futures_util::future::BoxFuture;
use tokio::sync::Notify;

use super::*;
use crate::endpoint::handler::HandlerFuture;
use crate::endpoint::{Endpoint, Endpoints, SharedHandler};
use crate::inbox::request::StoredRequest;
use crate::inbox::{
    Accepted, ActionError, Arrival, Counts, Entry, Inbox, Location, Refused, DEFAULT_DEDUPE_WINDOW,
};

/// The embedded store, with a panic planted once in `claim` or in `finish`.
#[derive(Debug)]
struct Faulty {
    inner: Arc<dyn Store>,
    panic_in_claim: AtomicBool,
    panic_in_finish: AtomicBool,
}

impl Store for Faulty {
    fn accept(&self, arrival: Arrival) -> BoxFuture<'_, Result<Accepted, Refused>> {
        self.inner.accept(arrival)
    }
    fn claim(&self) -> BoxFuture<'_, Result<Option<Job>, String>> {
        assert!(
            !self.panic_in_claim.swap(false, Ordering::SeqCst),
            "planted in claim"
        );
        self.inner.claim()
    }
    fn next_due(&self) -> Option<SystemTime> {
        self.inner.next_due()
    }
    fn finish(&self, id: u64, number: u32, outcome: Outcome) -> BoxFuture<'_, ()> {
        assert!(
            !self.panic_in_finish.swap(false, Ordering::SeqCst),
            "planted in finish"
        );
        self.inner.finish(id, number, outcome)
    }
    fn release(&self, id: u64) {
        self.inner.release(id);
    }
    fn wake(&self) -> &Notify {
        self.inner.wake()
    }
    fn counts(&self) -> BoxFuture<'_, Result<Counts, String>> {
        self.inner.counts()
    }
    fn list(&self, dead_only: bool, limit: usize) -> BoxFuture<'_, Result<Vec<Entry>, String>> {
        self.inner.list(dead_only, limit)
    }
    fn retry(&self, id: u64) -> BoxFuture<'_, Result<(), ActionError>> {
        self.inner.retry(id)
    }
    fn discard(&self, id: u64) -> BoxFuture<'_, Result<(), ActionError>> {
        self.inner.discard(id)
    }
}

/// A queued endpoint's check that takes any delivery.
#[allow(clippy::result_large_err)] // The `CheckFn` signature.
fn takes_any(_: &Delivery) -> Result<(), HttpResponse> {
    Ok(())
}

/// One queued endpoint, `/webhooks/q`, whose handler counts its runs.
fn table(runs: &Arc<AtomicUsize>) -> Table {
    let runs = Arc::clone(runs);
    let handler: SharedHandler = Arc::new(move |_: &Delivery| -> HandlerFuture<'_> {
        runs.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { HttpResponse::Ok().finish() })
    });
    let mut endpoints = Endpoints::default();
    endpoints
        .add(Endpoint {
            path: "/webhooks/q".into(),
            name: "q".to_owned(),
            origin: "q".to_owned(),
            handler,
            queue: Some(takes_any),
            filter: None,
        })
        .unwrap();
    endpoints.table()
}

/// Runs the queue on a fresh inbox with the fault planted, stores one delivery, and
/// gives how many times its handler ran once it is done (at most 10 s).
fn runs_until_done(in_claim: bool, in_finish: bool) -> usize {
    let file = std::env::temp_dir().join(format!(
        "hookserver-runner-{}-{in_claim}-{in_finish}.redb",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&file);
    let settings = Settings {
        location: Location::File(file.clone()),
        attempts: 3,
        backoff: Duration::from_millis(10),
        workers: 2,
        limit: 100,
        dedupe_window: DEFAULT_DEDUPE_WINDOW,
        lease: Duration::from_secs(60),
    };
    let opened = Inbox::open(settings.clone()).unwrap();
    let faulty = Arc::new(Faulty {
        inner: opened.store,
        panic_in_claim: AtomicBool::new(in_claim),
        panic_in_finish: AtomicBool::new(in_finish),
    });
    let inbox = Inbox {
        store: faulty.clone(),
        settings,
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let req = actix_web::test::TestRequest::post()
        .uri("/webhooks/q")
        .to_http_request();
    let accepted = runtime.block_on(faulty.accept(Arrival {
        endpoint: "/webhooks/q".into(),
        webhook_id: Some("w".to_owned()),
        key: "id:w".to_owned(),
        request: StoredRequest::of(&req, b"{}"),
        parsed: None,
    }));
    assert!(matches!(accepted, Ok(Accepted::Queued(_))), "{accepted:?}");
    let metrics = Arc::new(Metrics::new(std::iter::empty()));
    let runner = Runner::start(&inbox, table(&runs), None, metrics).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while runtime.block_on(faulty.counts()).unwrap().done < 1 {
        assert!(Instant::now() < deadline, "the delivery was never done");
        std::thread::sleep(Duration::from_millis(20));
    }
    runner.stop(Duration::from_secs(1));
    drop(inbox);
    drop(faulty);
    let _ = std::fs::remove_file(&file);
    runs.load(Ordering::SeqCst)
}

#[test]
fn a_panic_of_the_queue_s_own_sends_the_delivery_back_and_it_runs_again() {
    assert_eq!(runs_until_done(false, false), 1, "no fault: one run");
    // Its attempt ran, then the queue failed recording it: a second run ends it.
    assert_eq!(runs_until_done(false, true), 2);
    // The queue failed looking for work: it starts again, and the delivery runs.
    assert_eq!(runs_until_done(true, false), 1);
}
