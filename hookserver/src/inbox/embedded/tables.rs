//! What the inbox file holds: its tables, a delivery's row, and how the file is opened,
//! checked and resumed after a stop, and compacted when mostly free.
//!
//! A delivery is acknowledged by one append to the arrivals' log beside the file (see
//! `wal`): the commit's new deliveries are one record there, and the redb commit beside it
//! needs no fsync. A delivery gets a row of its own in `DELIVERIES` ("is written out") when
//! its first attempt ends, or earlier when anything else happens to it; one done at its
//! first attempt never has its request written twice. At open, the arrivals the log holds
//! without a row are written out as queued (and those of `ARRIVALS`, where files of format
//! 3 kept them). The dedupe keys are not a table: the index is built from the rows at open
//! (see `keys`).

use std::cmp::Reverse;
use std::sync::atomic::Ordering;
use std::time::Instant;

use redb::{Database, ReadableTable, TableDefinition};

use super::keys::{KeyIndex, Named};
use super::{lock, Inner, Live, INTERRUPTED};
use crate::inbox::{now_ms, Entry, Failed, State};

/// redb's page cache (its default is 1 GiB).
const REDB_CACHE_BYTES: usize = 32 * 1024 * 1024;
/// Files smaller than this are never compacted (see `compact_if_sparse`); 1 MiB in the
/// unit tests, which write a few MiB.
pub(super) const COMPACT_ABOVE: u64 = if cfg!(test) { 1 } else { 16 } * 1024 * 1024;
/// What the file is: checked at open, so that another redb file is not taken for an inbox.
pub(super) const META: TableDefinition<'_, &str, &str> = TableDefinition::new("hookserver_meta");
/// Where files of format 3 kept each acknowledging commit's deliveries (by the id of the
/// first): written out at open, then empty.
pub(super) const ARRIVALS: TableDefinition<'_, u64, Vec<ArrivalRow<'static>>> =
    TableDefinition::new("arrivals");
/// Each written-out delivery's record and status, by id.
pub(super) const DELIVERIES: TableDefinition<'_, u64, DeliveryRow<'static>> =
    TableDefinition::new("deliveries");
/// Each failed attempt's end time and error, by (id, attempt number).
pub(super) const ERRORS: TableDefinition<'_, (u64, u32), (u64, &str)> =
    TableDefinition::new("errors");
/// The request and body (see `request`) of each written-out delivery not done, by id.
pub(super) const REQUESTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("requests");
/// Deliveries discarded since the log last started over: it may still hold them, and
/// reading it at the next open skips them. Emptied whenever the log starts over.
pub(super) const FORGOTTEN: TableDefinition<'_, u64, ()> = TableDefinition::new("forgotten");
/// The dedupe keys of format 2 (`endpoint\nkey` to an id, and when): removed when such a
/// file is opened, as the index is now built from the rows (see `keys`).
const KEYS_2: TableDefinition<'_, &str, (u64, u64)> = TableDefinition::new("keys");

pub(super) const FORMAT_KEY: &str = "format";
/// A number drawn when the file is made, which its log's segments carry: a log left beside
/// another file (the file removed and made again, say) is not read into it.
const LOG_KEY: &str = "log";
pub(super) const FORMAT: &str = "hookserver-inbox/4";
/// The formats before, upgraded at open. Format 3 kept arrivals in `ARRIVALS` and had no
/// log beside it (an older build must not open a file whose arrivals are in the log);
/// format 2 had the same tables, and `KEYS_2`.
pub(super) const FORMAT_3: &str = "hookserver-inbox/3";
pub(super) const FORMAT_2: &str = "hookserver-inbox/2";

/// A stored arrival: id, received (ms), endpoint, `Webhook-Id`, dedupe key, request blob (a
/// record of the log holds some: see [`encode_arrivals`]).
pub(super) type ArrivalRow<'a> = (u64, u64, &'a str, Option<&'a str>, &'a str, &'a [u8]);
/// A delivery's row: state, tries, round, next due, finished (0: not), received, then its
/// endpoint, `Webhook-Id` and dedupe key.
pub(super) type DeliveryRow<'a> = (
    u8,
    u32,
    u32,
    u64,
    u64,
    u64,
    &'a str,
    Option<&'a str>,
    &'a str,
);

/// What is kept of a delivery from its arrival on.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub(super) endpoint: String,
    pub(super) webhook_id: Option<String>,
    pub(super) key: String,
    pub(super) received: u64,
}

/// A delivery's status.
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
    /// A new delivery's.
    pub(super) fn queued(now: u64) -> Self {
        Status {
            state: State::Queued,
            tries: 0,
            round: 0,
            next: now,
            finished: 0,
        }
    }
}

/// A delivery's row with its parts borrowed from `record`.
pub(super) fn row_of<'a>(status: Status, record: RecordRef<'a>) -> DeliveryRow<'a> {
    (
        code_of(status.state),
        status.tries,
        status.round,
        status.next,
        status.finished,
        record.received,
        record.endpoint,
        record.webhook_id,
        record.key,
    )
}

/// A state as a row stores it.
fn code_of(state: State) -> u8 {
    match state {
        State::Queued => 0,
        State::Running => 1,
        State::Retrying => 2,
        State::Done => 3,
        State::Dead => 4,
    }
}

/// A record's parts, borrowed (from a [`Record`] or from an arrival in memory).
#[derive(Debug, Clone, Copy)]
pub(super) struct RecordRef<'a> {
    pub(super) endpoint: &'a str,
    pub(super) webhook_id: Option<&'a str>,
    pub(super) key: &'a str,
    pub(super) received: u64,
}

impl Record {
    pub(super) fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            endpoint: &self.endpoint,
            webhook_id: self.webhook_id.as_deref(),
            key: &self.key,
            received: self.received,
        }
    }
}

/// A row read back: its status and record.
pub(super) fn delivery_of(id: u64, row: DeliveryRow<'_>) -> Result<(Status, Record), redb::Error> {
    let (state, tries, round, next, finished, received, endpoint, webhook_id, key) = row;
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
    let status = Status {
        state,
        tries,
        round,
        next,
        finished,
    };
    let record = Record {
        endpoint: endpoint.to_owned(),
        webhook_id: webhook_id.map(str::to_owned),
        key: key.to_owned(),
        received,
    };
    Ok((status, record))
}

impl Inner {
    /// A new file becomes an inbox; an existing one must be one (one of format 3 is
    /// upgraded; one of format 2 too, its keys table dropped). Returns the number its log
    /// carries (drawn now for a file that has none).
    pub(super) fn check_format(&self) -> Result<u64, String> {
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
                Some(format) if format == FORMAT_3 => {
                    meta.insert(FORMAT_KEY, FORMAT).map_err(|e| fail(&e))?;
                }
                Some(format) if format == FORMAT_2 => {
                    txn.delete_table(KEYS_2).map_err(|e| fail(&e))?;
                    meta.insert(FORMAT_KEY, FORMAT).map_err(|e| fail(&e))?;
                }
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
            txn.open_table(ARRIVALS).map_err(|e| fail(&e))?;
            txn.open_table(DELIVERIES).map_err(|e| fail(&e))?;
            txn.open_table(ERRORS).map_err(|e| fail(&e))?;
            txn.open_table(REQUESTS).map_err(|e| fail(&e))?;
            txn.open_table(FORGOTTEN).map_err(|e| fail(&e))?;
            let log = meta
                .get(LOG_KEY)
                .map_err(|e| fail(&e))?
                .and_then(|v| v.value().parse().ok());
            let log = match log {
                Some(log) => log,
                None => {
                    let log = getrandom::u64().map_err(|e| fail(&e))?;
                    meta.insert(LOG_KEY, log.to_string().as_str())
                        .map_err(|e| fail(&e))?;
                    log
                }
            };
            drop(meta);
            txn.commit().map_err(|e| fail(&e))?;
            Ok(log)
        }
    }

    /// Writes out (as queued) the arrivals the log's `records` hold and those left in
    /// `ARRIVALS`, unless they have a row or were discarded; then reads every row: waiting
    /// deliveries are scheduled; one that was running when the process stopped counts a
    /// failed attempt and runs again (or is dead, if that was its last). Returns the dedupe
    /// index, built from the rows (in id order: a key names its latest delivery). The
    /// commit is durable: the log can then start over.
    pub(super) fn resume(
        &self,
        attempts: u32,
        records: &[Vec<u8>],
    ) -> Result<KeyIndex, redb::Error> {
        let now = now_ms();
        let mut keys = KeyIndex::new();
        let txn = self.db()?.begin_write()?;
        {
            let mut t = Tables::open(&txn)?;
            let mut arrivals = txn.open_table(ARRIVALS)?;
            let mut left = Vec::new();
            for item in arrivals.iter()? {
                let (batch, rows) = item?;
                left.push(batch.value());
                t.write_out_arrivals(rows.value())?;
            }
            for batch in left {
                arrivals.remove(batch)?;
            }
            for record in records {
                t.write_out_arrivals(decode_arrivals(record)?)?;
            }
            let mut interrupted = Vec::new();
            let mut schedule = lock(&self.schedule);
            let mut last = 0;
            for item in t.deliveries.iter()? {
                let (id, row) = item?;
                let id = id.value();
                last = id;
                let (mut status, record) = delivery_of(id, row.value())?;
                let named = Named {
                    id,
                    received: record.received,
                };
                keys.name(keys.digest(&record.endpoint, &record.key), named);
                if status.state == State::Running {
                    status.state = if status.tries.saturating_sub(status.round) >= attempts {
                        status.finished = now;
                        State::Dead
                    } else {
                        status.next = now;
                        State::Retrying
                    };
                    interrupted.push((id, status, record));
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
            for (id, status, record) in interrupted {
                t.deliveries.insert(id, row_of(status, record.as_ref()))?;
                t.errors.insert((id, status.tries), (now, INTERRUPTED))?;
            }
            self.next_id.store(last + 1, Ordering::SeqCst);
        }
        txn.commit()?;
        Ok(keys)
    }

    /// Empties `FORGOTTEN`, once the log has started over (nothing it held can come back).
    pub(super) fn clear_forgotten(&self) -> Result<(), redb::Error> {
        let txn = self.db()?.begin_write()?;
        txn.open_table(FORGOTTEN)?.retain(|_, _| false)?;
        txn.commit()?;
        Ok(())
    }

    /// One written-out delivery as the API shows it.
    pub(super) fn entry(
        &self,
        txn: &redb::ReadTransaction,
        id: u64,
    ) -> Result<Option<Entry>, redb::Error> {
        let deliveries = txn.open_table(DELIVERIES)?;
        let errors = txn.open_table(ERRORS)?;
        let Some(row) = deliveries.get(id)? else {
            return Ok(None);
        };
        let (status, record) = delivery_of(id, row.value())?;
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

/// One record of the log: its arrivals, each as its id and when it was received (u64 LE),
/// then its endpoint, `Webhook-Id`, key and request blob, each as a length (u32 LE;
/// `u32::MAX`: no `Webhook-Id`) and its bytes.
pub(super) fn encode_arrivals(arrivals: &[ArrivalRow<'_>]) -> Vec<u8> {
    let size = arrivals
        .iter()
        .map(|(_, _, endpoint, webhook_id, key, blob)| {
            32 + endpoint.len() + webhook_id.map_or(0, str::len) + key.len() + blob.len()
        })
        .sum();
    let mut record = Vec::with_capacity(size);
    for (id, received, endpoint, webhook_id, key, blob) in arrivals {
        record.extend_from_slice(&id.to_le_bytes());
        record.extend_from_slice(&received.to_le_bytes());
        for part in [
            Some(endpoint.as_bytes()),
            webhook_id.map(str::as_bytes),
            Some(key.as_bytes()),
            Some(blob),
        ] {
            match part {
                Some(bytes) => {
                    // A record holds at most `wal::MAX_RECORD` bytes.
                    let len =
                        u32::try_from(bytes.len()).expect("a part of a record is under 4 GiB");
                    record.extend_from_slice(&len.to_le_bytes());
                    record.extend_from_slice(bytes);
                }
                None => record.extend_from_slice(&u32::MAX.to_le_bytes()),
            }
        }
    }
    record
}

/// The arrivals of one record of the log ([`encode_arrivals`]'s form). A record's CRC-32
/// checks, so an inbox wrote it; one that still does not read (a log made by hand, say) is
/// an error of the open.
pub(super) fn decode_arrivals(mut record: &[u8]) -> Result<Vec<ArrivalRow<'_>>, redb::Error> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = bytes.split_at_checked(n)?;
        *bytes = rest;
        Some(head)
    }
    fn number(bytes: &mut &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(take(bytes, 8)?.try_into().ok()?))
    }
    fn part<'a>(bytes: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
        let len = u32::from_le_bytes(take(bytes, 4)?.try_into().ok()?);
        if len == u32::MAX {
            return Some(None);
        }
        take(bytes, usize::try_from(len).ok()?).map(Some)
    }
    fn text<'a>(bytes: &mut &'a [u8]) -> Option<&'a str> {
        std::str::from_utf8(part(bytes)??).ok()
    }
    let mut arrivals = Vec::new();
    while !record.is_empty() {
        let arrival = (|| {
            let id = number(&mut record)?;
            let received = number(&mut record)?;
            let endpoint = text(&mut record)?;
            let webhook_id = match part(&mut record)? {
                Some(bytes) => Some(std::str::from_utf8(bytes).ok()?),
                None => None,
            };
            let key = text(&mut record)?;
            let blob = part(&mut record)??;
            Some((id, received, endpoint, webhook_id, key, blob))
        })();
        let arrival = arrival.ok_or_else(|| {
            redb::Error::Corrupted(
                "its arrivals' log holds a record that cannot be read".to_owned(),
            )
        })?;
        arrivals.push(arrival);
    }
    Ok(arrivals)
}

/// The tables a write opens.
pub(super) struct Tables<'t> {
    pub(super) deliveries: redb::Table<'t, u64, DeliveryRow<'static>>,
    pub(super) errors: redb::Table<'t, (u64, u32), (u64, &'static str)>,
    pub(super) requests: redb::Table<'t, u64, &'static [u8]>,
    pub(super) forgotten: redb::Table<'t, u64, ()>,
}

impl<'t> Tables<'t> {
    pub(super) fn open(txn: &'t redb::WriteTransaction) -> Result<Self, redb::Error> {
        Ok(Tables {
            deliveries: txn.open_table(DELIVERIES)?,
            errors: txn.open_table(ERRORS)?,
            requests: txn.open_table(REQUESTS)?,
            forgotten: txn.open_table(FORGOTTEN)?,
        })
    }

    pub(super) fn delivery(&self, id: u64) -> Result<Option<(Status, Record)>, redb::Error> {
        match self.deliveries.get(id)? {
            Some(row) => Ok(Some(delivery_of(id, row.value())?)),
            None => Ok(None),
        }
    }

    pub(super) fn set_status(
        &mut self,
        id: u64,
        status: Status,
        record: &Record,
    ) -> Result<(), redb::Error> {
        self.deliveries
            .insert(id, row_of(status, record.as_ref()))?;
        Ok(())
    }

    /// Gives each of `arrivals` its own row (queued) and request, unless it has one or was
    /// discarded.
    fn write_out_arrivals(&mut self, arrivals: Vec<ArrivalRow<'_>>) -> Result<(), redb::Error> {
        for (id, received, endpoint, webhook_id, key, blob) in arrivals {
            if self.deliveries.get(id)?.is_some() || self.forgotten.get(id)?.is_some() {
                continue;
            }
            let record = RecordRef {
                endpoint,
                webhook_id,
                key,
                received,
            };
            self.write_out(id, record, blob)?;
        }
        Ok(())
    }

    /// Writes out an arrival (kept in memory, or read back at open), queued, with its
    /// request.
    pub(super) fn write_out(
        &mut self,
        id: u64,
        record: RecordRef<'_>,
        blob: &[u8],
    ) -> Result<(), redb::Error> {
        self.deliveries
            .insert(id, row_of(Status::queued(record.received), record))?;
        self.requests.insert(id, blob)?;
        Ok(())
    }

    /// Removes a written-out delivery and its errors (its key is the writer's to forget).
    /// `discarded`: the log may still hold its arrival, which the next open then skips.
    pub(super) fn forget(&mut self, id: u64, discarded: bool) -> Result<(), redb::Error> {
        if discarded {
            self.forgotten.insert(id, ())?;
        }
        self.deliveries.remove(id)?;
        self.requests.remove(id)?;
        self.errors
            .retain_in((id, 0)..=(id, u32::MAX), |_, _| false)?;
        Ok(())
    }

    /// Done deliveries received before `cutoff` (in id order, which is arrival order).
    pub(super) fn done_before(&self, cutoff: u64) -> Result<Vec<u64>, redb::Error> {
        let mut old = Vec::new();
        for item in self.deliveries.iter()? {
            let (id, row) = item?;
            let (state, _, _, _, _, received, ..) = row.value();
            if received >= cutoff {
                break;
            }
            if state == code_of(State::Done) {
                old.push(id.value());
            }
        }
        Ok(old)
    }
}

/// Opens (or creates) the file with a bounded page cache: the inbox's working set is the
/// deliveries waiting now, not the whole file.
pub(super) fn open_file(path: &std::path::Path) -> Result<Database, redb::DatabaseError> {
    Database::builder()
        .set_cache_size(REDB_CACHE_BYTES)
        .create(path)
}

/// Gives the file's free pages back to the disk when most of it is free (a burst of
/// deliveries since purged, say): redb reuses free pages but keeps the file at its largest.
/// Done at launch and after a purge that removed most of what the file held (the writer
/// then holds the file: a 35 MiB file of free pages took 17 ms); a failure leaves the file
/// as it was (compaction is crash-safe) and is only a warning.
pub(super) fn compact_if_sparse(db: &mut Database, path: &std::path::Path) {
    let Ok(before) = std::fs::metadata(path).map(|m| m.len()) else {
        return;
    };
    if before < COMPACT_ABOVE {
        return;
    }
    let used = db.begin_write().and_then(|txn| {
        let stats = txn.stats().map_err(redb::TransactionError::from)?;
        txn.abort().map_err(redb::TransactionError::from)?;
        Ok(stats.allocated_pages() * stats.page_size() as u64)
    });
    let Ok(used) = used else { return };
    if used.saturating_mul(2) > before {
        return;
    }
    let started = Instant::now();
    match db.compact() {
        Ok(_) => {
            let after = std::fs::metadata(path).map_or(before, |m| m.len());
            tracing::info!(
                path = %path.display(),
                before_mib = before >> 20,
                after_mib = after >> 20,
                took = ?started.elapsed(),
                "the inbox file was mostly free pages: compacted"
            );
        }
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "the inbox file could not be compacted; it stays as it was")
        }
    }
}
