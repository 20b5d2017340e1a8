//! The embedded inbox: one redb file (crash-safe) and the arrivals' log beside it, written
//! by one thread that commits every waiting write in one transaction (group commit:
//! concurrent deliveries share one append to the log and its fsync: see `tables` and
//! `wal`), and a schedule in memory of what is due when.
//!
//! `tables` is what the file holds (and how it is opened, checked and resumed); `wal` is
//! the arrivals' log; `keys` is the dedupe index the writer keeps in memory; `writer` is
//! the thread that writes both files; this module is the [`Store`] the server calls.

mod keys;
mod tables;
mod wal;
mod writer;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use actix_web::web::Bytes;
use futures_util::future::BoxFuture;
use redb::{Database, ReadableDatabase, ReadableTable};
use tokio::sync::{oneshot, Notify};

use super::request::StoredRequest;
use super::{
    now_ms, time_of, Accepted, ActionError, Arrival, Counts, Entry, Job, Outcome, Refused,
    Settings, State, Store,
};
use crate::payload::WebhookPayload;
use tables::{compact_if_sparse, delivery_of, open_file, DELIVERIES, REQUESTS};
use wal::Wal;
use writer::Op;

/// The most request bytes of deliveries not yet written out kept in memory: past it, an
/// arrival is written out at once (its request read back from the file when its turn comes).
const UNWRITTEN_BYTES: usize = 32 * 1024 * 1024;
/// Why a running attempt ended when the process stopped during it.
const INTERRUPTED: &str = "interrupted: the process stopped during this attempt";

/// The inbox in a redb file.
#[derive(Debug)]
pub(crate) struct Embedded {
    inner: Arc<Inner>,
    writes: Mutex<Option<mpsc::Sender<Op>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Inner {
    /// The open file; `None` while it is being reopened after an I/O error.
    db: std::sync::RwLock<Option<Arc<Database>>>,
    path: PathBuf,
    schedule: Mutex<Schedule>,
    wake: Notify,
    next_id: AtomicU64,
    limit: usize,
    window_ms: u64,
}

/// What is due when, and the state of every delivery not done (in memory: the file is
/// the truth at open, this is the truth while running).
#[derive(Debug, Default)]
struct Schedule {
    due: BinaryHeap<Reverse<(u64, u64)>>,
    live: HashMap<u64, Live>,
    counts: Counts,
    /// Arrivals being stored now (they count towards the limit).
    reserved: usize,
    /// Deliveries stored only in the log so far, with their requests: what the API shows
    /// of them, and what an attempt reads, comes from here.
    unwritten: BTreeMap<u64, Arc<Unwritten>>,
    unwritten_bytes: usize,
}

/// A delivery not yet written out: its arrival is in the log (and here) only.
#[derive(Debug)]
struct Unwritten {
    arrival: Arrival,
    /// The payload the arrival's check parsed, until its first attempt takes it.
    parsed: Mutex<Option<Box<WebhookPayload>>>,
    /// What it counts in [`Schedule::unwritten_bytes`].
    bytes: usize,
    /// When it was accepted (ms since the epoch).
    received: u64,
    /// The segment of the log its arrival is in.
    segment: usize,
}

/// What [`Embedded::request_of`] finds of a delivery: what a [`Job`] needs.
struct Found {
    endpoint: String,
    webhook_id: Option<String>,
    request: StoredRequest,
    parsed: Option<Box<WebhookPayload>>,
}

#[derive(Debug, Clone, Copy)]
struct Live {
    state: State,
    tries: u32,
    round: u32,
}

impl Schedule {
    fn set(&mut self, id: u64, state: State) {
        let Some(live) = self.live.get_mut(&id) else {
            return;
        };
        self.counts.remove(live.state);
        live.state = state;
        self.counts.add(state);
        if state == State::Done {
            self.live.remove(&id);
        }
    }

    /// Forgets a delivery that is no longer stored.
    fn forget(&mut self, id: u64) {
        if let Some(live) = self.live.remove(&id) {
            self.counts.remove(live.state);
        }
        self.written_out(id);
    }

    /// A delivery has its own row now: its arrival leaves memory.
    fn written_out(&mut self, id: u64) -> Option<Arc<Unwritten>> {
        let unwritten = self.unwritten.remove(&id)?;
        self.unwritten_bytes -= unwritten.bytes;
        Some(unwritten)
    }
}

fn size_in_memory(arrival: &Arrival) -> usize {
    // A parsed payload holds about as much as the body it was parsed from.
    let parsed = if arrival.parsed.is_some() {
        arrival.request.len()
    } else {
        0
    };
    arrival.request.len() + parsed + 512
}

/// The inboxes open in this process, by file: a relaunch (in a notebook, in a test)
/// reuses the open one instead of failing on redb's lock. A store leaves it once its file
/// is closed, so an open of a file whose last store is still closing waits for it.
static OPEN: Mutex<Vec<(PathBuf, Weak<Embedded>)>> = Mutex::new(Vec::new());
/// How long an open waits for the previous store of the same file to close.
const CLOSING_WAIT: Duration = Duration::from_secs(10);

impl Embedded {
    /// Opens or creates the file; resumes what was not done when it was last closed.
    pub(crate) fn open(file: &std::path::Path, settings: &Settings) -> Result<Arc<Self>, String> {
        let path = std::path::absolute(file).map_err(|err| err.to_string())?;
        let closing_until = Instant::now() + CLOSING_WAIT;
        let mut open = loop {
            let open = lock(&OPEN);
            let Some((_, weak)) = open.iter().find(|(p, _)| *p == path) else {
                break open;
            };
            if let Some(store) = weak.upgrade() {
                return Ok(store);
            }
            if Instant::now() >= closing_until {
                break open;
            }
            // Its last store is closing (on another thread): wait for the file.
            drop(open);
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut db = open_file(&path).map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen => {
                "another process has it open (one process serves an inbox file)".to_owned()
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(io))
                if io.kind() == std::io::ErrorKind::NotFound =>
            {
                "its folder does not exist".to_owned()
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(io))
                if io.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                "permission denied".to_owned()
            }
            other => format!("{other} (is it an inbox file?)"),
        })?;
        compact_if_sparse(&mut db, &path);
        let inner = Inner {
            db: std::sync::RwLock::new(Some(Arc::new(db))),
            path: path.clone(),
            schedule: Mutex::new(Schedule::default()),
            wake: Notify::new(),
            next_id: AtomicU64::new(1),
            limit: settings.limit,
            window_ms: u64::try_from(settings.dedupe_window.as_millis()).unwrap_or(u64::MAX),
        };
        let number = inner.check_format()?;
        let log_error = |err| format!("its arrivals' log {}: {err}", wal::path_of(&path).display());
        let (mut log, records) = Wal::open(&path, number).map_err(log_error)?;
        let keys = inner
            .resume(settings.attempts, &records)
            .map_err(|err| format!("{err} (the file may be damaged)"))?;
        drop(records);
        // What the log held is in the file now, durably: it starts over, and nothing it
        // held can come back.
        log.restart().map_err(log_error)?;
        inner.clear_forgotten().map_err(|err| err.to_string())?;
        let inner = Arc::new(inner);
        let (tx, rx) = mpsc::channel();
        let writer_inner = Arc::clone(&inner);
        let writer = std::thread::Builder::new()
            .name("hookserver-inbox".to_owned())
            .spawn(move || writer_inner.write_loop(&rx, keys, log))
            .map_err(|err| err.to_string())?;
        let _ = tx.send(Op::Purge);
        open.retain(|(p, _)| *p != path);
        let store = Arc::new(Embedded {
            inner,
            writes: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        });
        open.push((path, Arc::downgrade(&store)));
        Ok(store)
    }

    fn send(&self, op: Op) {
        if let Some(tx) = lock(&self.writes).as_ref() {
            let _ = tx.send(op);
        }
    }

    /// A delivery's endpoint, `Webhook-Id` and request: from memory while it is not
    /// written out (it leaves memory only once its row is committed), with the payload its
    /// check parsed if no attempt took it yet; else from the file.
    fn request_of(&self, id: u64) -> Result<Option<Found>, redb::Error> {
        let unwritten = lock(&self.inner.schedule).unwritten.get(&id).cloned();
        if let Some(unwritten) = unwritten {
            let arrival = &unwritten.arrival;
            return Ok(Some(Found {
                endpoint: arrival.endpoint.to_string(),
                webhook_id: arrival.webhook_id.clone(),
                request: arrival.request.clone(),
                parsed: lock(&unwritten.parsed).take(),
            }));
        }
        let txn = self.inner.db()?.begin_read()?;
        let deliveries = txn.open_table(DELIVERIES)?;
        let requests = txn.open_table(REQUESTS)?;
        let (Some(row), Some(blob)) = (deliveries.get(id)?, requests.get(id)?) else {
            return Ok(None);
        };
        let (_, record) = delivery_of(id, row.value())?;
        let request = StoredRequest::from_blob(Bytes::copy_from_slice(blob.value()))
            .map_err(redb::Error::Corrupted)?;
        Ok(Some(Found {
            endpoint: record.endpoint,
            webhook_id: record.webhook_id,
            request,
            parsed: None,
        }))
    }

    /// The newest `limit` deliveries not yet written out, as the API shows them.
    fn unwritten_entries(&self, limit: usize) -> Vec<Entry> {
        let schedule = lock(&self.inner.schedule);
        let newest = schedule.unwritten.iter().rev().take(limit);
        newest
            .map(|(&id, unwritten)| {
                // Not live any more: done, its end not yet written. A failed attempt writes
                // a delivery out once committed, so this is its first attempt (or, for at
                // most `HOLD`, a retry that succeeded before the failure was committed).
                let (state, tries) = schedule
                    .live
                    .get(&id)
                    .map_or((State::Done, 1), |l| (l.state, l.tries));
                Entry {
                    id,
                    endpoint: unwritten.arrival.endpoint.to_string(),
                    webhook_id: unwritten.arrival.webhook_id.clone(),
                    received: unwritten.received,
                    state,
                    tries,
                    errors: Vec::new(),
                    next: unwritten.received,
                    finished: None,
                }
            })
            .collect()
    }
}

impl Drop for Embedded {
    /// Lets the writer commit what is waiting, closes the file, then leaves `OPEN`.
    fn drop(&mut self) {
        lock(&self.writes).take();
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.join();
        }
        // (A reader that holds the database now closes it when done.)
        self.inner
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let this: *const Embedded = self;
        lock(&OPEN).retain(|(_, weak)| weak.as_ptr() != this);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    /// The open file.
    fn db(&self) -> Result<Arc<Database>, redb::Error> {
        let db = self
            .db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        db.clone().ok_or(redb::Error::PreviousIo)
    }

    /// [`compact_if_sparse`] on the open file (after a purge), unless a reader holds it at
    /// the moment: then at the next purge, or the next launch.
    fn compact(&self) {
        let mut db = self
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(db) = db.as_mut().and_then(Arc::get_mut) {
            compact_if_sparse(db, &self.path);
        }
    }

    /// After an I/O error (a full disk, say) redb takes no more writes until the file is
    /// reopened: close it and open it again (redb repairs it to its last commit). If that
    /// fails, the next write tries again; meanwhile deliveries are answered 503.
    fn reopen(&self) {
        let mut db = self
            .db
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The old handle must be closed first (redb locks the file); a reader still
        // holding it makes the open fail, and the next write tries again.
        *db = None;
        match open_file(&self.path) {
            Ok(reopened) => {
                tracing::warn!(file = %self.path.display(), "the inbox file was reopened after an I/O error");
                *db = Some(Arc::new(reopened));
            }
            Err(err) => {
                tracing::error!(file = %self.path.display(), error = %err, "the inbox file cannot be reopened yet");
            }
        }
    }
}

impl Store for Embedded {
    fn accept(&self, arrival: Arrival) -> BoxFuture<'_, Result<Accepted, Refused>> {
        Box::pin(async move {
            {
                let mut schedule = lock(&self.inner.schedule);
                let waiting = schedule.counts.waiting() + schedule.reserved;
                if waiting >= self.inner.limit {
                    return Err(Refused::Full(waiting));
                }
                schedule.reserved += 1;
            }
            let id = self.inner.next_id.fetch_add(1, Ordering::SeqCst);
            let (reply, answer) = oneshot::channel();
            self.send(Op::Accept { id, arrival, reply });
            answer
                .await
                .unwrap_or_else(|_| Err(Refused::Write("the inbox is closing".to_owned())))
        })
    }

    fn claim(&self) -> BoxFuture<'_, Result<Option<Job>, String>> {
        Box::pin(async move {
            let now = now_ms();
            let claimed = {
                let mut schedule = lock(&self.inner.schedule);
                let mut claimed = None;
                while let Some(&Reverse((due, id))) = schedule.due.peek() {
                    if due > now {
                        break;
                    }
                    schedule.due.pop();
                    // A delivery retried or discarded since it was scheduled is skipped.
                    let waiting = schedule
                        .live
                        .get(&id)
                        .is_some_and(|l| matches!(l.state, State::Queued | State::Retrying));
                    if waiting {
                        schedule.set(id, State::Running);
                        let live = schedule.live.get_mut(&id).expect("live");
                        live.tries += 1;
                        claimed = Some((id, live.tries, live.tries - live.round));
                        break;
                    }
                }
                claimed
            };
            let Some((id, attempt, in_round)) = claimed else {
                return Ok(None);
            };
            // Read before the start is written: that write takes the arrival (and the
            // payload its check parsed) out of memory.
            let found = self.request_of(id);
            self.send(Op::Start { id });
            match found {
                Ok(Some(found)) => Ok(Some(Job {
                    id,
                    endpoint: found.endpoint,
                    webhook_id: found.webhook_id,
                    attempt,
                    in_round,
                    request: found.request,
                    parsed: found.parsed,
                })),
                Ok(None) => {
                    // Discarded meanwhile.
                    lock(&self.inner.schedule).forget(id);
                    Ok(None)
                }
                Err(redb::Error::Corrupted(error)) => {
                    self.finish(id, attempt, Outcome::Dead { error }).await;
                    Ok(None)
                }
                Err(err) => {
                    self.release(id);
                    Err(err.to_string())
                }
            }
        })
    }

    fn next_due(&self) -> Option<SystemTime> {
        let schedule = lock(&self.inner.schedule);
        schedule.due.peek().map(|Reverse((due, _))| time_of(*due))
    }

    fn finish(&self, id: u64, number: u32, outcome: Outcome) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            {
                let mut schedule = lock(&self.inner.schedule);
                match &outcome {
                    Outcome::Done => schedule.set(id, State::Done),
                    Outcome::Dead { .. } => schedule.set(id, State::Dead),
                    Outcome::Retry { at, .. } => {
                        schedule.set(id, State::Retrying);
                        schedule.due.push(Reverse((*at, id)));
                    }
                }
            }
            if matches!(outcome, Outcome::Retry { .. }) {
                self.inner.wake.notify_one();
            }
            self.send(Op::Finish {
                id,
                number,
                outcome,
            });
        })
    }

    fn release(&self, id: u64) {
        {
            let mut schedule = lock(&self.inner.schedule);
            let Some(live) = schedule.live.get_mut(&id) else {
                return;
            };
            live.tries = live.tries.saturating_sub(1);
            let state = if live.tries == 0 {
                State::Queued
            } else {
                State::Retrying
            };
            schedule.set(id, state);
            schedule.due.push(Reverse((now_ms(), id)));
        }
        self.send(Op::Release { id });
    }

    fn wake(&self) -> &Notify {
        &self.inner.wake
    }

    fn counts(&self) -> BoxFuture<'_, Result<Counts, String>> {
        let counts = lock(&self.inner.schedule).counts;
        Box::pin(async move { Ok(counts) })
    }

    fn list(&self, dead_only: bool, limit: usize) -> BoxFuture<'_, Result<Vec<Entry>, String>> {
        let read = || -> Result<Vec<Entry>, redb::Error> {
            // Memory first: a delivery written out meanwhile is then in the file.
            let unwritten = if dead_only {
                Vec::new()
            } else {
                self.unwritten_entries(limit)
            };
            let txn = self.inner.db()?.begin_read()?;
            let ids: Vec<u64> = if dead_only {
                let mut ids: Vec<u64> = lock(&self.inner.schedule)
                    .live
                    .iter()
                    .filter(|(_, l)| l.state == State::Dead)
                    .map(|(id, _)| *id)
                    .collect();
                ids.sort_unstable_by(|a, b| b.cmp(a));
                ids.truncate(limit);
                ids
            } else {
                let deliveries = txn.open_table(DELIVERIES)?;
                let newest = deliveries.iter()?.rev().take(limit);
                newest
                    .map(|item| item.map(|(id, _)| id.value()))
                    .collect::<Result<_, _>>()?
            };
            let mut found = Vec::with_capacity(ids.len() + unwritten.len());
            for id in ids {
                if let Some(entry) = self.inner.entry(&txn, id)? {
                    found.push(entry);
                }
            }
            found.extend(unwritten);
            found.sort_by_key(|e| Reverse(e.id));
            found.dedup_by_key(|e| e.id);
            found.truncate(limit);
            Ok(found)
        };
        let listed = read().map_err(|err| err.to_string());
        Box::pin(async move { listed })
    }

    fn retry(&self, id: u64) -> BoxFuture<'_, Result<(), ActionError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.send(Op::Retry { id, reply });
            answer
                .await
                .unwrap_or_else(|_| Err(ActionError::Write("the inbox is closing".to_owned())))
        })
    }

    fn discard(&self, id: u64) -> BoxFuture<'_, Result<(), ActionError>> {
        Box::pin(async move {
            let running = lock(&self.inner.schedule)
                .live
                .get(&id)
                .is_some_and(|l| l.state == State::Running);
            if running {
                return Err(ActionError::Conflict(
                    id,
                    State::Running,
                    "an attempt is running; discard it after",
                ));
            }
            let (reply, answer) = oneshot::channel();
            self.send(Op::Discard { id, reply });
            answer
                .await
                .unwrap_or_else(|_| Err(ActionError::Write("the inbox is closing".to_owned())))
        })
    }
}

#[cfg(test)]
mod tests;
