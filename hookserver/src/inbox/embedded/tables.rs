//! What the inbox file holds: its tables, a delivery's record and status row, and how the
//! file is checked at open and resumed after a stop.

use std::cmp::Reverse;
use std::sync::atomic::Ordering;

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{lock, Inner, Live, INTERRUPTED};
use crate::inbox::{now_ms, Entry, Failed, State};

/// What the file is: checked at open, so that another redb file is not taken for an inbox.
pub(super) const META: TableDefinition<'_, &str, &str> = TableDefinition::new("hookserver_meta");
/// Each delivery's [`Record`] (JSON), by id: written once.
pub(super) const RECORDS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("records");
/// Each delivery's status: state, attempts, round start, next due, finished (ms; 0: not).
pub(super) const STATUS: TableDefinition<'_, u64, StatusRow> = TableDefinition::new("status");
/// Each failed attempt's end time and error, by (id, attempt number).
pub(super) const ERRORS: TableDefinition<'_, (u64, u32), (u64, &str)> =
    TableDefinition::new("errors");
/// Each delivery's request and body (see `request`), by id; dropped once done.
pub(super) const REQUESTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("requests");
/// The dedupe keys: `endpoint\nkey` to the id accepted with it, and when.
pub(super) const KEYS: TableDefinition<'_, &str, (u64, u64)> = TableDefinition::new("keys");
/// Done deliveries by (finish time, id): purged past the dedupe window.
pub(super) const FINISHED: TableDefinition<'_, (u64, u64), ()> = TableDefinition::new("finished");

pub(super) const FORMAT_KEY: &str = "format";
pub(super) const FORMAT: &str = "hookserver-inbox/1";

pub(super) type StatusRow = (u8, u32, u32, u64, u64);

/// What is kept of a delivery once, at its arrival.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) endpoint: String,
    pub(super) webhook_id: Option<String>,
    pub(super) key: String,
    pub(super) received: u64,
}

/// A delivery's status row.
#[derive(Debug, Clone, Copy)]
pub(super) struct Status {
    pub(super) state: State,
    pub(super) tries: u32,
    /// Attempts before the last "retry now": the limit counts from there.
    pub(super) round: u32,
    pub(super) next: u64,
    pub(super) finished: u64,
}

impl Status {
    pub(super) fn row(self) -> StatusRow {
        let state = match self.state {
            State::Queued => 0,
            State::Running => 1,
            State::Retrying => 2,
            State::Done => 3,
            State::Dead => 4,
        };
        (state, self.tries, self.round, self.next, self.finished)
    }

    pub(super) fn of(
        id: u64,
        (state, tries, round, next, finished): StatusRow,
    ) -> Result<Self, redb::Error> {
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

pub(super) fn record_of(id: u64, bytes: &[u8]) -> Result<Record, redb::Error> {
    serde_json::from_slice(bytes).map_err(|err| {
        redb::Error::Corrupted(format!("the record of delivery {id} is damaged: {err}"))
    })
}
impl Inner {
    /// A new file becomes an inbox; an existing one must be one.
    pub(super) fn check_format(&self) -> Result<(), String> {
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
    pub(super) fn resume(&self, attempts: u32) -> Result<(), redb::Error> {
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

    /// One delivery as the API shows it.
    pub(super) fn entry(
        &self,
        txn: &redb::ReadTransaction,
        id: u64,
    ) -> Result<Option<Entry>, redb::Error> {
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

pub(super) struct Tables<'t> {
    pub(super) records: redb::Table<'t, u64, &'static [u8]>,
    pub(super) status: redb::Table<'t, u64, StatusRow>,
    pub(super) errors: redb::Table<'t, (u64, u32), (u64, &'static str)>,
    pub(super) requests: redb::Table<'t, u64, &'static [u8]>,
    pub(super) keys: redb::Table<'t, &'static str, (u64, u64)>,
    pub(super) finished: redb::Table<'t, (u64, u64), ()>,
}

impl Tables<'_> {
    pub(super) fn status(&self, id: u64) -> Result<Option<Status>, redb::Error> {
        match self.status.get(id)? {
            Some(row) => Ok(Some(Status::of(id, row.value())?)),
            None => Ok(None),
        }
    }

    /// Removes a delivery, its errors and its key (when the key still names it).
    pub(super) fn forget(&mut self, id: u64, status: Status) -> Result<(), redb::Error> {
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
