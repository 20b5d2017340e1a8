//! The writer thread: every waiting write in one transaction, committed once, then each
//! answered and the schedule updated.
//!
//! The commit's new deliveries are made durable by one record of the arrivals' log (one
//! append, one fsync: see `wal`); the redb commit beside it is fsync'd only when the batch
//! acknowledges something the log does not hold (an action, a purge, a delivery written
//! out with its request). Each delivery is written out to a row of its own by the first
//! write that concerns it (see `tables`). The writes it takes are `op`'s.

mod op;

use std::cmp::Reverse;
use std::collections::HashSet;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use redb::Durability;

use super::keys::{KeyChanges, KeyIndex, Named};
use super::tables::{encode_arrivals, row_of, ArrivalRow, RecordRef, Status, Tables};
use super::wal::{Wal, MAX_RECORD};
use super::{lock, size_in_memory, Inner, Live, Unwritten, UNWRITTEN_BYTES};
use crate::inbox::{now_ms, Accepted, ActionError, Arrival, Outcome, Refused, State};
use op::drop_covered_starts;
pub(super) use op::Op;

/// The most writes one transaction takes.
const MAX_BATCH: usize = 4096;
/// Commits without fsync at most in a row, and the longest a commit stays without one
/// (the next durable commit, empty if need be, syncs them all): what a crash can lose of
/// the attempts' records, whose deliveries then run again.
const MAX_UNSYNCED: u32 = 64;
pub(super) const SYNC_WITHIN: Duration = Duration::from_millis(20);
/// How long a write that acknowledges nothing (an attempt's start or end) may wait for
/// the next commit: it then shares that commit instead of making one of its own.
pub(super) const HOLD: Duration = Duration::from_millis(50);

/// How often done deliveries past the dedupe window are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// An arrival's record, borrowed.
fn record_of(arrival: &Arrival, received: u64) -> RecordRef<'_> {
    RecordRef {
        endpoint: &arrival.endpoint,
        webhook_id: arrival.webhook_id.as_deref(),
        key: &arrival.key,
        received,
    }
}

/// What an applied write changes in memory once committed.
enum Effect {
    None,
    /// An arrival stored (or found a duplicate); when stored in the log only (kept in
    /// memory until written out), when it was received.
    Accepted(Accepted, Option<u64>),
    Retried,
    Discarded(State),
    Purged(usize),
    Refused(ActionError),
}

/// What one transaction changes besides its effects: its arrivals and what it wrote out.
#[derive(Default)]
struct Staged<'b> {
    /// This commit's arrivals kept unwritten (one record of the log).
    arrivals: Vec<ArrivalRow<'b>>,
    /// Their size in memory (towards `UNWRITTEN_BYTES`), and about their size in the log.
    bytes: usize,
    logged: usize,
    /// The deliveries it wrote out.
    out: HashSet<u64>,
    /// Its changes to the dedupe index.
    keys: KeyChanges,
    /// A delivery was written out with its request (to be run again later): the commit is
    /// made durable. Were it not, an I/O error before the next durable commit would roll it
    /// back at the reopen while memory counts it written out, and the retry would find
    /// neither its row nor its request.
    must_sync: bool,
}

/// Why a commit failed.
enum CommitError {
    /// The redb file's (an I/O error there has it reopened).
    File(redb::Error),
    /// The log's: its append or flush failed (nothing of the batch counts as stored).
    Log(std::io::Error),
}

impl From<redb::Error> for CommitError {
    fn from(err: redb::Error) -> Self {
        CommitError::File(err)
    }
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommitError::File(err) => err.fmt(f),
            CommitError::Log(err) => write!(f, "the arrivals' log: {err}"),
        }
    }
}

/// About what an arrival adds to a record of the log.
fn logged_size(arrival: &Arrival) -> usize {
    let webhook_id = arrival.webhook_id.as_ref().map_or(0, String::len);
    arrival.request.blob().len() + arrival.endpoint.len() + arrival.key.len() + webhook_id + 64
}

impl Inner {
    pub(super) fn write_loop(&self, ops: &mpsc::Receiver<Op>, mut keys: KeyIndex, mut log: Wal) {
        let mut last_purge = SystemTime::now();
        let mut unsynced = 0;
        let mut last_sync = Instant::now();
        // Writes that acknowledge nothing wait (at most `HOLD`) for the next commit.
        let mut held: Vec<Op> = Vec::new();
        let mut held_since = Instant::now();
        loop {
            let sync_due = (unsynced > 0).then(|| SYNC_WITHIN.saturating_sub(last_sync.elapsed()));
            let hold_due = (!held.is_empty()).then(|| HOLD.saturating_sub(held_since.elapsed()));
            let wait = sync_due
                .into_iter()
                .chain(hold_due)
                .min()
                .unwrap_or(PURGE_EVERY);
            let first = match ops.recv_timeout(wait) {
                Ok(op) => Some(op),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    (held.is_empty() && unsynced == 0).then_some(Op::Purge)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Stopping: what is held is written, and made durable.
                    if !held.is_empty() {
                        self.commit(held, true, &mut keys, &mut log);
                    }
                    return;
                }
            };
            if first.as_ref().is_some_and(Op::acknowledges) {
                // Its commit waits for the disk: let the threads sharing this CPU (the HTTP
                // workers, busy with more deliveries) hand theirs in first, so that one
                // fsync acknowledges more (BENCHMARKS.md, tenth session).
                std::thread::yield_now();
            }
            if held.is_empty() {
                held_since = Instant::now();
            }
            let mut batch = std::mem::take(&mut held);
            batch.extend(first);
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
            let acknowledges = batch.iter().any(Op::acknowledges);
            let sync_now = unsynced > 0 && last_sync.elapsed() >= SYNC_WITHIN;
            if !acknowledges && !sync_now && batch.len() < MAX_BATCH && held_since.elapsed() < HOLD
            {
                held = batch;
                continue;
            }
            drop_covered_starts(&mut batch);
            let sync = sync_now || unsynced >= MAX_UNSYNCED || batch.iter().any(Op::needs_sync);
            if self.commit(batch, sync, &mut keys, &mut log) {
                unsynced = 0;
                last_sync = Instant::now();
            } else {
                unsynced += 1;
            }
        }
    }

    /// Applies a batch of writes in one transaction; appends its arrivals to the log (one
    /// record, flushed) and commits the transaction (with an fsync when `sync`, or when it
    /// writes a delivery out with its request); then answers each and updates the schedule
    /// and the dedupe index. Returns whether the commit was durable.
    fn commit(&self, batch: Vec<Op>, sync: bool, keys: &mut KeyIndex, log: &mut Wal) -> bool {
        type Applied = (Vec<Effect>, HashSet<u64>, KeyChanges, bool);
        let applied = (|| -> Result<Applied, CommitError> {
            let restarted = self.make_room(log, &batch)?;
            let mut txn = self.db()?.begin_write().map_err(redb::Error::from)?;
            let mut effects = Vec::with_capacity(batch.len());
            let mut staged = Staged::default();
            {
                let mut tables = Tables::open(&txn)?;
                if restarted {
                    // Nothing the log held can come back now.
                    tables
                        .forgotten
                        .retain(|_, _| false)
                        .map_err(redb::Error::from)?;
                }
                let now = now_ms();
                for op in &batch {
                    let effect = self.apply(&mut tables, &mut staged, keys, op, now)?;
                    effects.push(effect);
                }
            }
            if !staged.arrivals.is_empty() {
                log.append(&encode_arrivals(&staged.arrivals))
                    .map_err(CommitError::Log)?;
            }
            let durable = sync || staged.must_sync;
            if !durable {
                txn.set_durability(Durability::None)
                    .map_err(|err| redb::Error::Corrupted(err.to_string()))?;
            }
            txn.commit().map_err(redb::Error::from)?;
            Ok((effects, staged.out, staged.keys, durable))
        })();
        match applied {
            Ok((effects, out, changes, durable)) => {
                keys.apply(changes);
                self.committed(batch, effects, log.active());
                let mut schedule = lock(&self.schedule);
                for id in out {
                    schedule.written_out(id);
                }
                durable
            }
            Err(err) => {
                self.failed(batch, &err);
                if let CommitError::File(redb::Error::PreviousIo | redb::Error::Io(_)) = err {
                    self.reopen();
                }
                false
            }
        }
    }

    /// Before a commit: before a purge (every 10 minutes), or when the log failed to start
    /// a segment, every delivery still in memory is written out (durably) and the log
    /// starts over, so that it holds nothing a purge removes. Before arrivals, when the
    /// log's active segment may not hold their record, the other segment's deliveries
    /// still in memory are written out (durably) and the log switches to it. Returns
    /// whether the log started over.
    fn make_room(&self, log: &mut Wal, batch: &[Op]) -> Result<bool, CommitError> {
        let purge = batch.iter().any(|op| matches!(op, Op::Purge));
        let arrivals = batch.iter().any(|op| matches!(op, Op::Accept { .. }));
        if log.broken() || (purge && log.holds_records()) {
            self.write_out_unwritten(None)?;
            log.restart().map_err(CommitError::Log)?;
            return Ok(true);
        }
        if arrivals && !log.fits(MAX_RECORD) {
            self.write_out_unwritten(Some(1 - log.active()))?;
            log.switch().map_err(CommitError::Log)?;
        }
        Ok(false)
    }

    /// Writes out (queued, with their requests) the deliveries in memory whose arrivals
    /// are in `segment` of the log (or in either), in one durable commit.
    fn write_out_unwritten(&self, segment: Option<usize>) -> Result<(), redb::Error> {
        let leaving: Vec<(u64, Arc<Unwritten>)> = lock(&self.schedule)
            .unwritten
            .iter()
            .filter(|(_, u)| segment.is_none_or(|s| u.segment == s))
            .map(|(id, u)| (*id, Arc::clone(u)))
            .collect();
        let txn = self.db()?.begin_write()?;
        {
            let mut tables = Tables::open(&txn)?;
            for (id, unwritten) in &leaving {
                let record = record_of(&unwritten.arrival, unwritten.received);
                tables.write_out(*id, record, unwritten.arrival.request.blob())?;
            }
        }
        txn.commit()?;
        let mut schedule = lock(&self.schedule);
        for (id, _) in leaving {
            schedule.written_out(id);
        }
        Ok(())
    }

    /// Applies one write; a delivery not yet written out is written out first.
    fn apply<'b>(
        &self,
        t: &mut Tables<'_>,
        staged: &mut Staged<'b>,
        keys: &KeyIndex,
        op: &'b Op,
        now: u64,
    ) -> Result<Effect, redb::Error> {
        if let Some(id) = op.delivery() {
            if self.write_out(t, staged, op, id, now)? {
                return Ok(Effect::None);
            }
        }
        Ok(match op {
            Op::Accept { id, arrival, .. } => {
                let key = keys.digest(&arrival.endpoint, &arrival.key);
                if let Some(first) = staged.keys.get(keys, key) {
                    if now.saturating_sub(first.received) < self.window_ms {
                        return Ok(Effect::Accepted(Accepted::Duplicate(first.id), None));
                    }
                }
                staged.keys.name(
                    key,
                    Named {
                        id: *id,
                        received: now,
                    },
                );
                let size = size_in_memory(arrival);
                let logged = logged_size(arrival);
                let in_memory = lock(&self.schedule).unwritten_bytes + staged.bytes;
                if in_memory + size <= UNWRITTEN_BYTES && staged.logged + logged <= MAX_RECORD {
                    staged.bytes += size;
                    staged.logged += logged;
                    staged.arrivals.push((
                        *id,
                        now,
                        &arrival.endpoint,
                        arrival.webhook_id.as_deref(),
                        &arrival.key,
                        arrival.request.blob(),
                    ));
                    Effect::Accepted(Accepted::Queued(*id), Some(now))
                } else {
                    // Past memory's bound, or the record's: a row of its own, durably.
                    t.write_out(*id, record_of(arrival, now), arrival.request.blob())?;
                    staged.must_sync = true;
                    Effect::Accepted(Accepted::Queued(*id), None)
                }
            }
            Op::Start { id } => {
                if let Some((mut status, record)) = t.delivery(*id)? {
                    status.state = State::Running;
                    status.tries += 1;
                    t.set_status(*id, status, &record)?;
                }
                Effect::None
            }
            Op::Finish {
                id,
                number,
                outcome,
            } => {
                if let Some((mut status, record)) = t.delivery(*id)? {
                    status.tries = status.tries.max(*number);
                    match outcome {
                        Outcome::Done => {
                            status.state = State::Done;
                            status.finished = now;
                            // Only the row stays, for dedupe and the dashboard.
                            t.requests.remove(*id)?;
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
                    t.set_status(*id, status, &record)?;
                }
                Effect::None
            }
            Op::Release { id } => {
                if let Some((mut status, record)) = t.delivery(*id)? {
                    status.tries = status.tries.saturating_sub(1);
                    status.state = if status.tries == 0 {
                        State::Queued
                    } else {
                        State::Retrying
                    };
                    status.next = now;
                    t.set_status(*id, status, &record)?;
                }
                Effect::None
            }
            Op::Retry { id, .. } => match t.delivery(*id)? {
                None => Effect::Refused(ActionError::NotFound(*id)),
                Some((status, _)) if status.state != State::Dead => Effect::Refused(
                    ActionError::Conflict(*id, status.state, "only a dead letter is retried"),
                ),
                Some((mut status, record)) => {
                    status.state = State::Queued;
                    status.next = now;
                    status.finished = 0;
                    status.round = status.tries;
                    t.set_status(*id, status, &record)?;
                    Effect::Retried
                }
            },
            Op::Discard { id, .. } => match t.delivery(*id)? {
                None => Effect::Refused(ActionError::NotFound(*id)),
                Some((status, _)) if status.state == State::Running => {
                    Effect::Refused(ActionError::Conflict(
                        *id,
                        status.state,
                        "an attempt is running; discard it after",
                    ))
                }
                Some((status, record)) => {
                    t.forget(*id, true)?;
                    let key = keys.digest(&record.endpoint, &record.key);
                    staged.keys.forget(keys, key, *id);
                    Effect::Discarded(status.state)
                }
            },
            Op::Purge => {
                let old = t.done_before(now.saturating_sub(self.window_ms))?;
                let mut purged = 0;
                for id in old {
                    if let Some((_, record)) = t.delivery(id)? {
                        t.forget(id, false)?;
                        let key = keys.digest(&record.endpoint, &record.key);
                        staged.keys.forget(keys, key, id);
                        purged += 1;
                    }
                }
                Effect::Purged(purged)
            }
        })
    }

    /// Gives a delivery not yet written out its own row, in this transaction: done (when
    /// `op` is its first attempt's success: its request is never written again; returns
    /// true, nothing is left to apply) or queued with its request, for `op` to apply to.
    fn write_out(
        &self,
        t: &mut Tables<'_>,
        staged: &mut Staged<'_>,
        op: &Op,
        id: u64,
        now: u64,
    ) -> Result<bool, redb::Error> {
        if staged.out.contains(&id) {
            return Ok(false);
        }
        let Some(unwritten) = lock(&self.schedule).unwritten.get(&id).map(Arc::clone) else {
            return Ok(false);
        };
        staged.out.insert(id);
        let record = record_of(&unwritten.arrival, unwritten.received);
        if let Op::Finish {
            number,
            outcome: Outcome::Done,
            ..
        } = op
        {
            let status = Status {
                state: State::Done,
                tries: *number,
                round: 0,
                next: unwritten.received,
                finished: now,
            };
            t.deliveries.insert(id, row_of(status, record))?;
            return Ok(true);
        }
        t.write_out(id, record, unwritten.arrival.request.blob())?;
        staged.must_sync = true;
        Ok(false)
    }

    /// Answers each write of a committed batch (whose arrivals are in `segment` of the log).
    fn committed(&self, batch: Vec<Op>, effects: Vec<Effect>, segment: usize) {
        let now = now_ms();
        let mut woke = false;
        let mut compact = false;
        for (op, effect) in batch.into_iter().zip(effects) {
            match (op, effect) {
                (Op::Accept { id, arrival, reply }, Effect::Accepted(accepted, unwritten)) => {
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
                            woke = true;
                        }
                        if let Some(received) = unwritten {
                            let bytes = size_in_memory(&arrival);
                            schedule.unwritten_bytes += bytes;
                            let mut arrival = arrival;
                            let unwritten = Unwritten {
                                parsed: Mutex::new(arrival.parsed.take()),
                                arrival,
                                bytes,
                                received,
                                segment,
                            };
                            schedule.unwritten.insert(id, Arc::new(unwritten));
                        }
                    }
                    let _ = reply.send(Ok(accepted));
                }
                (Op::Purge, Effect::Purged(purged)) => {
                    let mut schedule = lock(&self.schedule);
                    schedule.counts.done = schedule.counts.done.saturating_sub(purged);
                    let counts = &schedule.counts;
                    // Most of what the file held is gone: it may be mostly free pages.
                    compact = purged > 0 && purged >= counts.waiting() + counts.done + counts.dead;
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
        if compact {
            self.compact();
        }
    }

    /// Nothing of the batch was stored: arrivals are refused (the Hub will retry them),
    /// actions answer the error; attempts' records stay as they were (at worst an attempt
    /// runs again after a restart).
    fn failed(&self, batch: Vec<Op>, err: &CommitError) {
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
}
