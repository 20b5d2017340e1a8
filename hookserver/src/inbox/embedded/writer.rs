//! The writer thread: every waiting write in one transaction, committed once (one fsync
//! when the batch acknowledges something), then each answered and the schedule updated.

use std::cmp::Reverse;
use std::collections::HashSet;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use redb::{Durability, ReadableTable};
use tokio::sync::oneshot;

use super::tables::{Record, Status, Tables, ERRORS, FINISHED, KEYS, RECORDS, REQUESTS, STATUS};
use super::{cached_size, lock, Inner, Live, CACHE_BYTES};
use crate::inbox::{now_ms, Accepted, ActionError, Arrival, Outcome, Refused, State};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 4096;
/// Commits without fsync at most in a row (the next one syncs them all).
const MAX_UNSYNCED: u32 = 64;
/// How often done deliveries past the dedupe window are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// A write for the writer thread.
pub(super) enum Op {
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
    pub(super) fn acknowledges(&self) -> bool {
        matches!(
            self,
            Op::Accept { .. } | Op::Retry { .. } | Op::Discard { .. } | Op::Purge
        )
    }
}

/// Drops the start of an attempt whose end is in the same batch: the end records the
/// attempt's number too (one write instead of two, under load the common case).
fn drop_covered_starts(batch: &mut Vec<Op>) {
    let finished: HashSet<u64> = batch
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

impl Inner {
    pub(super) fn write_loop(&self, ops: &mpsc::Receiver<Op>) {
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
                t.requests.insert(*id, arrival.request.blob())?;
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
}
