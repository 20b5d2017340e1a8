//! The embedded inbox: one redb file (crash-safe, every commit fsync'd), written by one
//! thread that commits every waiting write in one transaction (group commit: concurrent
//! deliveries share an fsync), and a schedule in memory of what is due when.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use actix_web::web::Bytes;
use futures_util::future::BoxFuture;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{oneshot, Notify};

use super::request::RequestHead;
use super::{
    now_ms, time_of, Accepted, ActionError, Arrival, Counts, Entry, Job, Outcome, Refused,
    Settings, State, Store, Try,
};

/// What the file is: checked at open, so that another redb file is not taken for an inbox.
const META: TableDefinition<'_, &str, &str> = TableDefinition::new("hookserver_meta");
/// Each delivery's [`Entry`], as JSON, by id.
const ENTRIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("entries");
/// Each delivery's request and body (see `request`), by id; dropped once done.
const REQUESTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("requests");
/// The dedupe keys: `endpoint\nkey` to the id that was accepted with it.
const KEYS: TableDefinition<'_, &str, u64> = TableDefinition::new("keys");
/// Done deliveries by (finish time, id): purged past the dedupe window.
const FINISHED: TableDefinition<'_, (u64, u64), ()> = TableDefinition::new("finished");

const FORMAT_KEY: &str = "format";
const FORMAT: &str = "hookserver-inbox/1";

/// The most writes one transaction takes.
const MAX_BATCH: usize = 4096;
/// How often done deliveries past the dedupe window are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);
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
    db: Database,
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
}

#[derive(Debug, Clone, Copy)]
struct Live {
    state: State,
    /// Attempts so far, and since the last "retry now".
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
    }
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
        at: u64,
    },
    Finish {
        id: u64,
        outcome: Outcome,
        reply: oneshot::Sender<()>,
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
    pub(crate) fn open(settings: &Settings) -> Result<Arc<Self>, String> {
        let path = absolute(&settings.location)?;
        let mut open = lock(&OPEN);
        open.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(store) = open
            .iter()
            .find(|(p, _)| *p == path)
            .and_then(|(_, weak)| weak.upgrade())
        {
            return Ok(store);
        }
        let db = Database::create(&path).map_err(|err| match err {
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
            db,
            schedule: Mutex::new(Schedule::default()),
            wake: Notify::new(),
            next_id: AtomicU64::new(1),
            limit: settings.limit,
            window_ms: u64::try_from(settings.dedupe_window.as_millis()).unwrap_or(u64::MAX),
        };
        inner.check_format().map_err(|err| err.to_string())?;
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

/// The file's absolute path (the file itself may not exist yet).
fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::path::absolute(path).map_err(|err| err.to_string())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn to_json(entry: &Entry) -> Vec<u8> {
    serde_json::to_vec(entry).expect("an entry serializes")
}

fn from_json(id: u64, bytes: &[u8]) -> Result<Entry, redb::Error> {
    serde_json::from_slice(bytes).map_err(|err| {
        redb::Error::Corrupted(format!("the record of delivery {id} is damaged: {err}"))
    })
}

impl Inner {
    /// A new file becomes an inbox; an existing one must be one.
    fn check_format(&self) -> Result<(), String> {
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        let has_tables = txn
            .list_tables()
            .map_err(|e| e.to_string())?
            .next()
            .is_some();
        {
            let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
            let format = meta
                .get(FORMAT_KEY)
                .map_err(|e| e.to_string())?
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
                    meta.insert(FORMAT_KEY, FORMAT).map_err(|e| e.to_string())?;
                }
            }
            txn.open_table(ENTRIES).map_err(|e| e.to_string())?;
            txn.open_table(REQUESTS).map_err(|e| e.to_string())?;
            txn.open_table(KEYS).map_err(|e| e.to_string())?;
            txn.open_table(FINISHED).map_err(|e| e.to_string())?;
        }
        txn.commit().map_err(|e| e.to_string())
    }

    /// Reads every delivery: waiting ones are scheduled; one that was running when the
    /// process stopped counts a failed attempt and runs again (or is dead, if that was
    /// its last).
    fn resume(&self, attempts: u32) -> Result<(), redb::Error> {
        let now = now_ms();
        let txn = self.db.begin_write()?;
        {
            let mut entries = txn.open_table(ENTRIES)?;
            let mut interrupted = Vec::new();
            let mut schedule = lock(&self.schedule);
            let mut last = 0;
            for item in entries.iter()? {
                let (id, bytes) = item?;
                let id = id.value();
                last = id;
                let mut entry = from_json(id, bytes.value())?;
                let tries = u32::try_from(entry.attempts.len()).unwrap_or(u32::MAX);
                if entry.state == State::Running {
                    if let Some(last) = entry.attempts.last_mut() {
                        last.error = Some(INTERRUPTED.to_owned());
                    }
                    entry.state = if tries.saturating_sub(entry.round) >= attempts {
                        entry.finished = Some(now);
                        State::Dead
                    } else {
                        entry.next = now;
                        State::Retrying
                    };
                    interrupted.push((id, entry.clone()));
                }
                schedule.counts.add(entry.state);
                if entry.state != State::Done {
                    schedule.live.insert(
                        id,
                        Live {
                            state: entry.state,
                            tries,
                            round: entry.round,
                        },
                    );
                }
                if matches!(entry.state, State::Queued | State::Retrying) {
                    schedule.due.push(Reverse((entry.next, id)));
                }
            }
            for (id, entry) in interrupted {
                entries.insert(id, to_json(&entry).as_slice())?;
            }
            self.next_id.store(last + 1, Ordering::SeqCst);
        }
        txn.commit()?;
        Ok(())
    }

    fn write_loop(&self, ops: &mpsc::Receiver<Op>) {
        let mut last_purge = SystemTime::now();
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
            self.commit(batch);
        }
    }

    /// Applies a batch of writes in one transaction, commits it (one fsync), then answers
    /// each and updates the schedule.
    fn commit(&self, batch: Vec<Op>) {
        let applied = (|| -> Result<Vec<Effect>, redb::Error> {
            let txn = self.db.begin_write()?;
            let mut effects = Vec::with_capacity(batch.len());
            {
                let mut tables = Tables {
                    entries: txn.open_table(ENTRIES)?,
                    requests: txn.open_table(REQUESTS)?,
                    keys: txn.open_table(KEYS)?,
                    finished: txn.open_table(FINISHED)?,
                };
                for op in &batch {
                    effects.push(self.apply(&mut tables, op)?);
                }
            }
            txn.commit()?;
            Ok(effects)
        })();
        match applied {
            Ok(effects) => self.committed(batch, effects),
            Err(err) => self.failed(batch, &err),
        }
    }

    fn apply(&self, t: &mut Tables<'_>, op: &Op) -> Result<Effect, redb::Error> {
        let now = now_ms();
        Ok(match op {
            Op::Accept { id, arrival, .. } => {
                let key = format!("{}\n{}", arrival.endpoint, arrival.key);
                let first = t.keys.get(key.as_str())?.map(|v| v.value());
                if let Some(first) = first {
                    let received = match t.entries.get(first)? {
                        Some(bytes) => Some(from_json(first, bytes.value())?.received),
                        None => None,
                    };
                    if received.is_some_and(|at| now.saturating_sub(at) < self.window_ms) {
                        return Ok(Effect::Accepted(Accepted::Duplicate(first)));
                    }
                }
                let entry = Entry {
                    id: *id,
                    endpoint: arrival.endpoint.to_string(),
                    webhook_id: arrival.webhook_id.clone(),
                    key: arrival.key.clone(),
                    received: now,
                    state: State::Queued,
                    attempts: Vec::new(),
                    next: now,
                    finished: None,
                    round: 0,
                };
                t.entries.insert(*id, to_json(&entry).as_slice())?;
                t.requests
                    .insert(*id, arrival.head.encode(&arrival.body).as_slice())?;
                t.keys.insert(key.as_str(), *id)?;
                Effect::Accepted(Accepted::Queued(*id))
            }
            Op::Start { id, at } => {
                if let Some(mut entry) = t.entry(*id)? {
                    entry.state = State::Running;
                    entry.attempts.push(Try {
                        at: *at,
                        error: None,
                    });
                    t.entries.insert(*id, to_json(&entry).as_slice())?;
                }
                Effect::None
            }
            Op::Finish { id, outcome, .. } => {
                if let Some(mut entry) = t.entry(*id)? {
                    let error = match outcome {
                        Outcome::Done => {
                            entry.state = State::Done;
                            entry.finished = Some(now);
                            // Only the record stays, for dedupe and the dashboard.
                            t.requests.remove(*id)?;
                            t.finished.insert((now, *id), ())?;
                            None
                        }
                        Outcome::Retry { error, at } => {
                            entry.state = State::Retrying;
                            entry.next = *at;
                            Some(error.clone())
                        }
                        Outcome::Dead { error } => {
                            entry.state = State::Dead;
                            entry.finished = Some(now);
                            Some(error.clone())
                        }
                    };
                    if let Some(last) = entry.attempts.last_mut() {
                        last.error = error;
                    }
                    t.entries.insert(*id, to_json(&entry).as_slice())?;
                }
                Effect::None
            }
            Op::Release { id } => {
                if let Some(mut entry) = t.entry(*id)? {
                    entry.attempts.pop();
                    entry.state = if entry.attempts.is_empty() {
                        State::Queued
                    } else {
                        State::Retrying
                    };
                    entry.next = now;
                    t.entries.insert(*id, to_json(&entry).as_slice())?;
                }
                Effect::None
            }
            Op::Retry { id, .. } => match t.entry(*id)? {
                None => Effect::Refused(ActionError::NotFound(*id)),
                Some(entry) if entry.state != State::Dead => Effect::Refused(
                    ActionError::Conflict(*id, entry.state, "only a dead letter is retried"),
                ),
                Some(mut entry) => {
                    entry.state = State::Queued;
                    entry.next = now;
                    entry.finished = None;
                    entry.round = u32::try_from(entry.attempts.len()).unwrap_or(u32::MAX);
                    t.entries.insert(*id, to_json(&entry).as_slice())?;
                    Effect::Retried
                }
            },
            Op::Discard { id, .. } => match t.entry(*id)? {
                None => Effect::Refused(ActionError::NotFound(*id)),
                Some(entry) if entry.state == State::Running => {
                    Effect::Refused(ActionError::Conflict(
                        *id,
                        entry.state,
                        "an attempt is running; discard it after",
                    ))
                }
                Some(entry) => {
                    t.forget(&entry)?;
                    Effect::Discarded(entry.state)
                }
            },
            Op::Purge => {
                let cutoff = now.saturating_sub(self.window_ms);
                let old: Vec<(u64, u64)> = t
                    .finished
                    .range(..(cutoff, 0))?
                    .map(|item| item.map(|(k, _)| k.value()))
                    .collect::<Result<_, _>>()?;
                let mut purged = 0;
                for (_, id) in old {
                    if let Some(entry) = t.entry(id)? {
                        t.forget(&entry)?;
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
                (Op::Accept { id, reply, .. }, Effect::Accepted(accepted)) => {
                    {
                        let mut schedule = lock(&self.schedule);
                        schedule.reserved -= 1;
                        if accepted == Accepted::Queued(id) {
                            schedule.live.insert(
                                id,
                                Live {
                                    state: State::Queued,
                                    tries: 0,
                                    round: 0,
                                },
                            );
                            schedule.counts.add(State::Queued);
                            schedule.due.push(Reverse((now, id)));
                            woke = true;
                        }
                    }
                    let _ = reply.send(Ok(accepted));
                }
                (Op::Purge, Effect::Purged(purged)) => {
                    let mut schedule = lock(&self.schedule);
                    schedule.counts.done = schedule.counts.done.saturating_sub(purged);
                }
                (Op::Finish { reply, .. }, _) => {
                    let _ = reply.send(());
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
                        Effect::Discarded(state) => {
                            let mut schedule = lock(&self.schedule);
                            if state == State::Done {
                                schedule.counts.remove(State::Done);
                            } else {
                                schedule.forget(id);
                            }
                            Ok(())
                        }
                        _ => Ok(()),
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
                Op::Finish { reply, .. } => {
                    let _ = reply.send(());
                }
                Op::Retry { reply, .. } | Op::Discard { reply, .. } => {
                    let _ = reply.send(Err(ActionError::Write(message.clone())));
                }
                Op::Start { .. } | Op::Release { .. } | Op::Purge => {}
            }
        }
    }
}

struct Tables<'t> {
    entries: redb::Table<'t, u64, &'static [u8]>,
    requests: redb::Table<'t, u64, &'static [u8]>,
    keys: redb::Table<'t, &'static str, u64>,
    finished: redb::Table<'t, (u64, u64), ()>,
}

impl Tables<'_> {
    fn entry(&self, id: u64) -> Result<Option<Entry>, redb::Error> {
        match self.entries.get(id)? {
            Some(bytes) => Ok(Some(from_json(id, bytes.value())?)),
            None => Ok(None),
        }
    }

    /// Removes a delivery and its key (when the key still names it).
    fn forget(&mut self, entry: &Entry) -> Result<(), redb::Error> {
        let key = format!("{}\n{}", entry.endpoint, entry.key);
        let current = self.keys.get(key.as_str())?.map(|v| v.value());
        if current == Some(entry.id) {
            self.keys.remove(key.as_str())?;
        }
        self.entries.remove(entry.id)?;
        self.requests.remove(entry.id)?;
        if let Some(at) = entry.finished {
            self.finished.remove((at, entry.id))?;
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
            self.send(Op::Start { id, at: now });
            let read = (|| -> Result<Option<(Entry, Vec<u8>)>, redb::Error> {
                let txn = self.inner.db.begin_read()?;
                let entries = txn.open_table(ENTRIES)?;
                let requests = txn.open_table(REQUESTS)?;
                let Some(entry) = entries.get(id)? else {
                    return Ok(None);
                };
                let entry = from_json(id, entry.value())?;
                let Some(blob) = requests.get(id)? else {
                    return Ok(None);
                };
                Ok(Some((entry, blob.value().to_vec())))
            })();
            let (entry, blob) = match read {
                Ok(Some(found)) => found,
                Ok(None) => {
                    // Discarded meanwhile.
                    lock(&self.inner.schedule).forget(id);
                    return Ok(None);
                }
                Err(err) => {
                    self.release(id);
                    return Err(err.to_string());
                }
            };
            let (head, body) = match RequestHead::decode(&blob) {
                Ok((head, body)) => (head, Bytes::copy_from_slice(body)),
                Err(error) => {
                    self.finish(id, Outcome::Dead { error }).await;
                    return Ok(None);
                }
            };
            Ok(Some(Job {
                id,
                endpoint: entry.endpoint,
                webhook_id: entry.webhook_id,
                attempt,
                in_round,
                head,
                body,
            }))
        })
    }

    fn next_due(&self) -> Option<SystemTime> {
        let schedule = lock(&self.inner.schedule);
        schedule.due.peek().map(|Reverse((due, _))| time_of(*due))
    }

    fn finish(&self, id: u64, outcome: Outcome) -> BoxFuture<'_, ()> {
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
            let (reply, done) = oneshot::channel();
            self.send(Op::Finish { id, outcome, reply });
            let _ = done.await;
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

    fn counts(&self) -> Counts {
        lock(&self.inner.schedule).counts
    }

    fn list(&self, dead_only: bool, limit: usize) -> Result<Vec<Entry>, String> {
        let read = || -> Result<Vec<Entry>, redb::Error> {
            let txn = self.inner.db.begin_read()?;
            let entries = txn.open_table(ENTRIES)?;
            let mut found = Vec::new();
            if dead_only {
                let mut ids: Vec<u64> = lock(&self.inner.schedule)
                    .live
                    .iter()
                    .filter(|(_, l)| l.state == State::Dead)
                    .map(|(id, _)| *id)
                    .collect();
                ids.sort_unstable_by(|a, b| b.cmp(a));
                for id in ids.into_iter().take(limit) {
                    if let Some(bytes) = entries.get(id)? {
                        found.push(from_json(id, bytes.value())?);
                    }
                }
            } else {
                for item in entries.iter()?.rev().take(limit) {
                    let (id, bytes) = item?;
                    found.push(from_json(id.value(), bytes.value())?);
                }
            }
            Ok(found)
        };
        read().map_err(|err| err.to_string())
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
