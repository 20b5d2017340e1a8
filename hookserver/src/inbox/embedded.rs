//! The embedded inbox: one redb file (crash-safe), written by one thread that commits
//! every waiting write in one transaction (group commit: concurrent deliveries share an
//! fsync), and a schedule in memory of what is due when.
//!
//! What is written per delivery is small and fixed where it changes: the request once,
//! its record (endpoint, `Webhook-Id`, key) once, then a fixed-width status row per step
//! and an error row per failed attempt. A commit that acknowledges something (a new
//! delivery, a retry, a discard) is fsync'd; one that only records attempts is not (it is
//! made durable by the next), since losing it only runs an attempt again.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use actix_web::web::Bytes;
use futures_util::future::BoxFuture;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, Notify};

use super::request::RequestHead;
use super::{
    now_ms, time_of, Accepted, ActionError, Arrival, Counts, Entry, Failed, Job, Outcome, Refused,
    Settings, State, Store,
};

/// What the file is: checked at open, so that another redb file is not taken for an inbox.
const META: TableDefinition<'_, &str, &str> = TableDefinition::new("hookserver_meta");
/// Each delivery's [`Record`] (JSON), by id: written once.
const RECORDS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("records");
/// Each delivery's status: state, attempts, round start, next due, finished (ms; 0: not).
const STATUS: TableDefinition<'_, u64, StatusRow> = TableDefinition::new("status");
/// Each failed attempt's end time and error, by (id, attempt number).
const ERRORS: TableDefinition<'_, (u64, u32), (u64, &str)> = TableDefinition::new("errors");
/// Each delivery's request and body (see `request`), by id; dropped once done.
const REQUESTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("requests");
/// The dedupe keys: `endpoint\nkey` to the id accepted with it, and when.
const KEYS: TableDefinition<'_, &str, (u64, u64)> = TableDefinition::new("keys");
/// Done deliveries by (finish time, id): purged past the dedupe window.
const FINISHED: TableDefinition<'_, (u64, u64), ()> = TableDefinition::new("finished");

const FORMAT_KEY: &str = "format";
const FORMAT: &str = "hookserver-inbox/1";

type StatusRow = (u8, u32, u32, u64, u64);

/// The most writes one transaction takes.
const MAX_BATCH: usize = 4096;
/// Commits without fsync at most in a row (the next one syncs them all).
const MAX_UNSYNCED: u32 = 64;
/// How often done deliveries past the dedupe window are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);
/// The most request bytes kept in memory for deliveries waiting for their first attempt
/// (the rest are read back from the file).
const CACHE_BYTES: usize = 32 * 1024 * 1024;
/// redb's page cache (its default is 1 GiB).
const REDB_CACHE_BYTES: usize = 32 * 1024 * 1024;
/// Why a running attempt ended when the process stopped during it.
const INTERRUPTED: &str = "interrupted: the process stopped during this attempt";

/// What is kept of a delivery once, at its arrival.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    endpoint: String,
    webhook_id: Option<String>,
    key: String,
    received: u64,
}

/// A delivery's status row.
#[derive(Debug, Clone, Copy)]
struct Status {
    state: State,
    tries: u32,
    /// Attempts before the last "retry now": the limit counts from there.
    round: u32,
    next: u64,
    finished: u64,
}

impl Status {
    fn row(self) -> StatusRow {
        let state = match self.state {
            State::Queued => 0,
            State::Running => 1,
            State::Retrying => 2,
            State::Done => 3,
            State::Dead => 4,
        };
        (state, self.tries, self.round, self.next, self.finished)
    }

    fn of(id: u64, (state, tries, round, next, finished): StatusRow) -> Result<Self, redb::Error> {
        let state = match state {
            0 => State::Queued,
            1 => State::Running,
            2 => State::Retrying,
            3 => State::Done,
            4 => State::Dead,
            other => {
                return Err(redb::Error::Corrupted(format!(
                    "delivery {id} has an unknown state {other}"
                )))
            }
        };
        Ok(Status {
            state,
            tries,
            round,
            next,
            finished,
        })
    }
}

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
    /// Requests of deliveries waiting for their first attempt: no read back from the file.
    cache: HashMap<u64, Arrival>,
    cache_bytes: usize,
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
        self.uncache(id);
    }

    fn uncache(&mut self, id: u64) -> Option<Arrival> {
        let arrival = self.cache.remove(&id)?;
        self.cache_bytes -= cached_size(&arrival);
        Some(arrival)
    }
}

fn cached_size(arrival: &Arrival) -> usize {
    arrival.body.len() + 512
}

/// A write for the writer thread.
enum Op {
    Accept {
        id: u64,
        arrival: Arrival,
        reply: oneshot::Sender<Result<Accepted, Refused>>,
    },
    Start {
        id: u64,
    },
    Finish {
        id: u64,
        number: u32,
        outcome: Outcome,
    },
    Release {
        id: u64,
    },
    Retry {
        id: u64,
        reply: oneshot::Sender<Result<(), ActionError>>,
    },
    Discard {
        id: u64,
        reply: oneshot::Sender<Result<(), ActionError>>,
    },
    Purge,
}

impl Op {
    /// Whether committing it acknowledges something to someone: then it is fsync'd.
    fn acknowledges(&self) -> bool {
        matches!(
            self,
            Op::Accept { .. } | Op::Retry { .. } | Op::Discard { .. } | Op::Purge
        )
    }
}

/// Drops the start of an attempt whose end is in the same batch: the end records the
/// attempt's number too (one write instead of two, under load the common case).
fn drop_covered_starts(batch: &mut Vec<Op>) {
    let finished: std::collections::HashSet<u64> = batch
        .iter()
        .filter_map(|op| match op {
            Op::Finish { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    if !finished.is_empty() {
        batch.retain(|op| !matches!(op, Op::Start { id } if finished.contains(id)));
    }
}

/// What an applied write changes in memory once committed.
enum Effect {
    None,
    Accepted(Accepted),
    Retried,
    Discarded(State),
    Purged(usize),
    Refused(ActionError),
}

/// The inboxes open in this process, by file: a relaunch (in a notebook, in a test)
/// reuses the open one instead of failing on redb's lock.
static OPEN: Mutex<Vec<(PathBuf, Weak<Embedded>)>> = Mutex::new(Vec::new());

impl Embedded {
    /// Opens or creates the file; resumes what was not done when it was last closed.
    pub(crate) fn open(file: &std::path::Path, settings: &Settings) -> Result<Arc<Self>, String> {
        let path = std::path::absolute(file).map_err(|err| err.to_string())?;
        let mut open = lock(&OPEN);
        open.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(store) = open
            .iter()
            .find(|(p, _)| *p == path)
            .and_then(|(_, weak)| weak.upgrade())
        {
            return Ok(store);
        }
        let db = open_file(&path).map_err(|err| match err {
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
        let inner = Inner {
            db: std::sync::RwLock::new(Some(Arc::new(db))),
            path: path.clone(),
            schedule: Mutex::new(Schedule::default()),
            wake: Notify::new(),
            next_id: AtomicU64::new(1),
            limit: settings.limit,
            window_ms: u64::try_from(settings.dedupe_window.as_millis()).unwrap_or(u64::MAX),
        };
        inner.check_format()?;
        inner
            .resume(settings.attempts)
            .map_err(|err| format!("{err} (the file may be damaged)"))?;
        let inner = Arc::new(inner);
        let (tx, rx) = mpsc::channel();
        let writer_inner = Arc::clone(&inner);
        let writer = std::thread::Builder::new()
            .name("hookserver-inbox".to_owned())
            .spawn(move || writer_inner.write_loop(&rx))
            .map_err(|err| err.to_string())?;
        let _ = tx.send(Op::Purge);
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

    /// A delivery's request, from memory or from the file.
    fn request_of(&self, id: u64) -> Result<Option<Arrival>, redb::Error> {
        if let Some(arrival) = lock(&self.inner.schedule).uncache(id) {
            return Ok(Some(arrival));
        }
        let txn = self.inner.db()?.begin_read()?;
        let records = txn.open_table(RECORDS)?;
        let requests = txn.open_table(REQUESTS)?;
        let (Some(record), Some(blob)) = (records.get(id)?, requests.get(id)?) else {
            return Ok(None);
        };
        let record = record_of(id, record.value())?;
        let (head, body) = RequestHead::decode(blob.value()).map_err(redb::Error::Corrupted)?;
        Ok(Some(Arrival {
            endpoint: record.endpoint.into(),
            webhook_id: record.webhook_id,
            key: record.key,
            head,
            body: Bytes::copy_from_slice(body),
        }))
    }
}

impl Drop for Embedded {
    /// Lets the writer commit what is waiting, then closes the file.
    fn drop(&mut self) {
        lock(&self.writes).take();
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.join();
        }
    }
}

/// Opens (or creates) the file with a bounded page cache: the inbox's working set is the
/// deliveries waiting now, not the whole file.
fn open_file(path: &std::path::Path) -> Result<Database, redb::DatabaseError> {
    Database::builder()
        .set_cache_size(REDB_CACHE_BYTES)
        .create(path)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn record_of(id: u64, bytes: &[u8]) -> Result<Record, redb::Error> {
    serde_json::from_slice(bytes).map_err(|err| {
        redb::Error::Corrupted(format!("the record of delivery {id} is damaged: {err}"))
    })
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

    /// A new file becomes an inbox; an existing one must be one.
    fn check_format(&self) -> Result<(), String> {
        let fail = |err: &dyn std::fmt::Display| err.to_string();
        let txn = self
            .db()
            .map_err(|e| fail(&e))?
            .begin_write()
            .map_err(|e| fail(&e))?;
        let has_tables = txn.list_tables().map_err(|e| fail(&e))?.next().is_some();
        {
            let mut meta = txn.open_table(META).map_err(|e| fail(&e))?;
            let format = meta
                .get(FORMAT_KEY)
                .map_err(|e| fail(&e))?
                .map(|v| v.value().to_owned());
            match format {
                Some(format) if format == FORMAT => {}
                Some(other) => {
                    return Err(format!(
                        "its format is {other:?}, and this version of hookserver reads {FORMAT:?}"
                    ))
                }
                None if has_tables => {
                    return Err("it is a redb database, but not a hookserver inbox".to_owned())
                }
                None => {
                    meta.insert(FORMAT_KEY, FORMAT).map_err(|e| fail(&e))?;
                }
            }
            txn.open_table(RECORDS).map_err(|e| fail(&e))?;
            txn.open_table(STATUS).map_err(|e| fail(&e))?;
            txn.open_table(ERRORS).map_err(|e| fail(&e))?;
            txn.open_table(REQUESTS).map_err(|e| fail(&e))?;
            txn.open_table(KEYS).map_err(|e| fail(&e))?;
            txn.open_table(FINISHED).map_err(|e| fail(&e))?;
        }
        txn.commit().map_err(|e| fail(&e))
    }

    /// Reads every status: waiting deliveries are scheduled; one that was running when the
    /// process stopped counts a failed attempt and runs again (or is dead, if that was its
    /// last).
    fn resume(&self, attempts: u32) -> Result<(), redb::Error> {
        let now = now_ms();
        let txn = self.db()?.begin_write()?;
        {
            let mut statuses = txn.open_table(STATUS)?;
            let mut errors = txn.open_table(ERRORS)?;
            let mut interrupted = Vec::new();
            let mut schedule = lock(&self.schedule);
            let mut last = 0;
            for item in statuses.iter()? {
                let (id, row) = item?;
                let id = id.value();
                last = id;
                let mut status = Status::of(id, row.value())?;
                if status.state == State::Running {
                    status.state = if status.tries.saturating_sub(status.round) >= attempts {
                        status.finished = now;
                        State::Dead
                    } else {
                        status.next = now;
                        State::Retrying
                    };
                    interrupted.push((id, status));
                }
                schedule.counts.add(status.state);
                if status.state != State::Done {
                    let live = Live {
                        state: status.state,
                        tries: status.tries,
                        round: status.round,
                    };
                    schedule.live.insert(id, live);
                }
                if matches!(status.state, State::Queued | State::Retrying) {
                    schedule.due.push(Reverse((status.next, id)));
                }
            }
            for (id, status) in interrupted {
                statuses.insert(id, status.row())?;
                errors.insert((id, status.tries), (now, INTERRUPTED))?;
            }
            self.next_id.store(last + 1, Ordering::SeqCst);
        }
        txn.commit()?;
        Ok(())
    }

    fn write_loop(&self, ops: &mpsc::Receiver<Op>) {
        let mut last_purge = SystemTime::now();
        let mut unsynced = 0;
        loop {
            let first = match ops.recv_timeout(PURGE_EVERY) {
                Ok(op) => op,
                Err(mpsc::RecvTimeoutError::Timeout) => Op::Purge,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match ops.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            if last_purge.elapsed().unwrap_or_default() >= PURGE_EVERY {
                last_purge = SystemTime::now();
                batch.push(Op::Purge);
            }
            drop_covered_starts(&mut batch);
            let sync = unsynced >= MAX_UNSYNCED || batch.iter().any(Op::acknowledges);
            unsynced = if sync { 0 } else { unsynced + 1 };
            self.commit(batch, sync);
        }
    }

    /// Applies a batch of writes in one transaction, commits it (one fsync when `sync`),
    /// then answers each and updates the schedule.
    fn commit(&self, batch: Vec<Op>, sync: bool) {
        let applied = (|| -> Result<Vec<Effect>, redb::Error> {
            let mut txn = self.db()?.begin_write()?;
            if !sync {
                txn.set_durability(Durability::None)
                    .map_err(|err| redb::Error::Corrupted(err.to_string()))?;
            }
            let mut effects = Vec::with_capacity(batch.len());
            {
                let mut tables = Tables {
                    records: txn.open_table(RECORDS)?,
                    status: txn.open_table(STATUS)?,
                    errors: txn.open_table(ERRORS)?,
                    requests: txn.open_table(REQUESTS)?,
                    keys: txn.open_table(KEYS)?,
                    finished: txn.open_table(FINISHED)?,
                };
                let now = now_ms();
                for op in &batch {
                    effects.push(self.apply(&mut tables, op, now)?);
                }
            }
            txn.commit()?;
            Ok(effects)
        })();
        match applied {
            Ok(effects) => self.committed(batch, effects),
            Err(err) => {
                self.failed(batch, &err);
                if matches!(err, redb::Error::PreviousIo | redb::Error::Io(_)) {
                    self.reopen();
                }
            }
        }
    }

    fn apply(&self, t: &mut Tables<'_>, op: &Op, now: u64) -> Result<Effect, redb::Error> {
        Ok(match op {
            Op::Accept { id, arrival, .. } => {
                let key = format!("{}\n{}", arrival.endpoint, arrival.key);
                let first = t.keys.get(key.as_str())?.map(|v| v.value());
                if let Some((first, received)) = first {
                    if now.saturating_sub(received) < self.window_ms {
                        return Ok(Effect::Accepted(Accepted::Duplicate(first)));
                    }
                }
                let record = Record {
                    endpoint: arrival.endpoint.to_string(),
                    webhook_id: arrival.webhook_id.clone(),
                    key: arrival.key.clone(),
                    received: now,
                };
                let record = serde_json::to_vec(&record).expect("a record serializes");
                t.records.insert(*id, record.as_slice())?;
                let status = Status {
                    state: State::Queued,
                    tries: 0,
                    round: 0,
                    next: now,
                    finished: 0,
                };
                t.status.insert(*id, status.row())?;
                let blob = arrival.head.encode(&arrival.body);
                t.requests.insert(*id, blob.as_slice())?;
                t.keys.insert(key.as_str(), (*id, now))?;
                Effect::Accepted(Accepted::Queued(*id))
            }
            Op::Start { id } => {
                if let Some(mut status) = t.status(*id)? {
                    status.state = State::Running;
                    status.tries += 1;
                    t.status.insert(*id, status.row())?;
                }
                Effect::None
            }
            Op::Finish {
                id,
                number,
                outcome,
            } => {
                if let Some(mut status) = t.status(*id)? {
                    status.tries = status.tries.max(*number);
                    match outcome {
                        Outcome::Done => {
                            status.state = State::Done;
                            status.finished = now;
                            // Only the record stays, for dedupe and the dashboard.
                            t.requests.remove(*id)?;
                            t.finished.insert((now, *id), ())?;
                        }
                        Outcome::Retry { error, at } => {
                            status.state = State::Retrying;
                            status.next = *at;
                            t.errors.insert((*id, *number), (now, error.as_str()))?;
                        }
                        Outcome::Dead { error } => {
                            status.state = State::Dead;
                            status.finished = now;
                            t.errors.insert((*id, *number), (now, error.as_str()))?;
                        }
                    }
                    t.status.insert(*id, status.row())?;
                }
                Effect::None
            }
            Op::Release { id } => {
                if let Some(mut status) = t.status(*id)? {
                    status.tries = status.tries.saturating_sub(1);
                    status.state = if status.tries == 0 {
                        State::Queued
                    } else {
                        State::Retrying
                    };
                    status.next = now;
                    t.status.insert(*id, status.row())?;
                }
                Effect::None
            }
            Op::Retry { id, .. } => match t.status(*id)? {
                None => Effect::Refused(ActionError::NotFound(*id)),
                Some(status) if status.state != State::Dead => Effect::Refused(
                    ActionError::Conflict(*id, status.state, "only a dead letter is retried"),
                ),
                Some(mut status) => {
                    status.state = State::Queued;
                    status.next = now;
                    status.finished = 0;
                    status.round = status.tries;
                    t.status.insert(*id, status.row())?;
                    Effect::Retried
                }
            },
            Op::Discard { id, .. } => match t.status(*id)? {
                None => Effect::Refused(ActionError::NotFound(*id)),
                Some(status) if status.state == State::Running => {
                    Effect::Refused(ActionError::Conflict(
                        *id,
                        status.state,
                        "an attempt is running; discard it after",
                    ))
                }
                Some(status) => {
                    t.forget(*id, status)?;
                    Effect::Discarded(status.state)
                }
            },
            Op::Purge => {
                let cutoff = now.saturating_sub(self.window_ms);
                let old: Vec<u64> = t
                    .finished
                    .range(..(cutoff, 0))?
                    .map(|item| item.map(|(k, _)| k.value().1))
                    .collect::<Result<_, _>>()?;
                let mut purged = 0;
                for id in old {
                    if let Some(status) = t.status(id)? {
                        t.forget(id, status)?;
                        purged += 1;
                    }
                }
                Effect::Purged(purged)
            }
        })
    }

    fn committed(&self, batch: Vec<Op>, effects: Vec<Effect>) {
        let now = now_ms();
        let mut woke = false;
        for (op, effect) in batch.into_iter().zip(effects) {
            match (op, effect) {
                (Op::Accept { id, arrival, reply }, Effect::Accepted(accepted)) => {
                    {
                        let mut schedule = lock(&self.schedule);
                        schedule.reserved -= 1;
                        if accepted == Accepted::Queued(id) {
                            let live = Live {
                                state: State::Queued,
                                tries: 0,
                                round: 0,
                            };
                            schedule.live.insert(id, live);
                            schedule.counts.add(State::Queued);
                            schedule.due.push(Reverse((now, id)));
                            let size = cached_size(&arrival);
                            if schedule.cache_bytes + size <= CACHE_BYTES {
                                schedule.cache_bytes += size;
                                schedule.cache.insert(id, arrival);
                            }
                            woke = true;
                        }
                    }
                    let _ = reply.send(Ok(accepted));
                }
                (Op::Purge, Effect::Purged(purged)) => {
                    let mut schedule = lock(&self.schedule);
                    schedule.counts.done = schedule.counts.done.saturating_sub(purged);
                }
                (Op::Retry { id, reply }, effect) => {
                    let result = match effect {
                        Effect::Refused(err) => Err(err),
                        _ => {
                            let mut schedule = lock(&self.schedule);
                            schedule.set(id, State::Queued);
                            if let Some(live) = schedule.live.get_mut(&id) {
                                live.round = live.tries;
                            }
                            schedule.due.push(Reverse((now, id)));
                            woke = true;
                            Ok(())
                        }
                    };
                    let _ = reply.send(result);
                }
                (Op::Discard { id, reply }, effect) => {
                    let result = match effect {
                        Effect::Refused(err) => Err(err),
                        Effect::Discarded(State::Done) => {
                            lock(&self.schedule).counts.remove(State::Done);
                            Ok(())
                        }
                        _ => {
                            lock(&self.schedule).forget(id);
                            Ok(())
                        }
                    };
                    let _ = reply.send(result);
                }
                _ => {}
            }
        }
        if woke {
            self.wake.notify_one();
        }
    }

    /// Nothing of the batch was stored: arrivals are refused (the Hub will retry them),
    /// actions answer the error; attempts' records stay as they were (at worst an attempt
    /// runs again after a restart).
    fn failed(&self, batch: Vec<Op>, err: &redb::Error) {
        tracing::error!(error = %err, "the inbox could not commit a write");
        let message = err.to_string();
        for op in batch {
            match op {
                Op::Accept { reply, .. } => {
                    lock(&self.schedule).reserved -= 1;
                    let _ = reply.send(Err(Refused::Write(message.clone())));
                }
                Op::Retry { reply, .. } | Op::Discard { reply, .. } => {
                    let _ = reply.send(Err(ActionError::Write(message.clone())));
                }
                Op::Start { .. } | Op::Finish { .. } | Op::Release { .. } | Op::Purge => {}
            }
        }
    }

    /// One delivery as the API shows it.
    fn entry(&self, txn: &redb::ReadTransaction, id: u64) -> Result<Option<Entry>, redb::Error> {
        let records = txn.open_table(RECORDS)?;
        let statuses = txn.open_table(STATUS)?;
        let errors = txn.open_table(ERRORS)?;
        let (Some(record), Some(status)) = (records.get(id)?, statuses.get(id)?) else {
            return Ok(None);
        };
        let record = record_of(id, record.value())?;
        let status = Status::of(id, status.value())?;
        let mut failed = Vec::new();
        for item in errors.range((id, 0)..=(id, u32::MAX))? {
            let (key, value) = item?;
            let (at, error) = value.value();
            failed.push(Failed {
                number: key.value().1,
                at,
                error: error.to_owned(),
            });
        }
        Ok(Some(Entry {
            id,
            endpoint: record.endpoint,
            webhook_id: record.webhook_id,
            received: record.received,
            state: status.state,
            tries: status.tries,
            errors: failed,
            next: status.next,
            finished: (status.finished > 0).then_some(status.finished),
        }))
    }
}

struct Tables<'t> {
    records: redb::Table<'t, u64, &'static [u8]>,
    status: redb::Table<'t, u64, StatusRow>,
    errors: redb::Table<'t, (u64, u32), (u64, &'static str)>,
    requests: redb::Table<'t, u64, &'static [u8]>,
    keys: redb::Table<'t, &'static str, (u64, u64)>,
    finished: redb::Table<'t, (u64, u64), ()>,
}

impl Tables<'_> {
    fn status(&self, id: u64) -> Result<Option<Status>, redb::Error> {
        match self.status.get(id)? {
            Some(row) => Ok(Some(Status::of(id, row.value())?)),
            None => Ok(None),
        }
    }

    /// Removes a delivery, its errors and its key (when the key still names it).
    fn forget(&mut self, id: u64, status: Status) -> Result<(), redb::Error> {
        if let Some(record) = self.records.remove(id)? {
            let record = record_of(id, record.value())?;
            let key = format!("{}\n{}", record.endpoint, record.key);
            let current = self.keys.get(key.as_str())?.map(|v| v.value().0);
            if current == Some(id) {
                self.keys.remove(key.as_str())?;
            }
        }
        self.status.remove(id)?;
        self.requests.remove(id)?;
        self.errors
            .retain_in((id, 0)..=(id, u32::MAX), |_, _| false)?;
        if status.finished > 0 {
            self.finished.remove((status.finished, id))?;
        }
        Ok(())
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
            self.send(Op::Start { id });
            match self.request_of(id) {
                Ok(Some(arrival)) => Ok(Some(Job {
                    id,
                    endpoint: arrival.endpoint.to_string(),
                    webhook_id: arrival.webhook_id,
                    attempt,
                    in_round,
                    head: arrival.head,
                    body: arrival.body,
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
                let statuses = txn.open_table(STATUS)?;
                let newest = statuses.iter()?.rev().take(limit);
                newest
                    .map(|item| item.map(|(id, _)| id.value()))
                    .collect::<Result<_, _>>()?
            };
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(entry) = self.inner.entry(&txn, id)? {
                    found.push(entry);
                }
            }
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
