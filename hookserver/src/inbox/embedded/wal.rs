//! The arrivals' log, beside the redb file (`<inbox>-wal`): a commit's new deliveries are
//! made durable by one append and one `fdatasync` here, so that the redb commit beside it
//! needs no fsync of its own. A flush then writes one run of bytes instead of the dozen
//! places a redb commit touches (BENCHMARKS.md, thirteenth session).
//!
//! The file holds two segments. Each starts with a header naming the inbox file's log
//! number (a log left beside another file is not read) and its epoch; each record
//! carries the epoch of its segment, its length and a CRC-32. Reading a segment stops at
//! the first record that does not check (a torn write at the moment of a crash, or the
//! records of an earlier epoch after the end). Appends go to the active segment; when it
//! is full the writer writes out what the other one still holds and makes that durable,
//! then the other one starts over under a new epoch. At open, what both hold is read back
//! (the writer gives each arrival its row), then the log starts over.
//!
//! The file grows by zeroed chunks ahead of the appends: an append then overwrites blocks
//! the file system has already allocated, which its flush writes without a journal commit.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One segment's bytes (in the unit tests, small enough to fill).
const SEGMENT: u64 = if cfg!(test) { 64 } else { 16 * 1024 } * 1024;
/// A segment's header: the magic, the log's number, the epoch and a CRC-32, in the first
/// block.
const HEADER: u64 = 4096;
const HEADER_LEN: usize = 36;
const SEGMENT_MAGIC: &[u8; 16] = b"hookserver-wal/1";
/// A record's head: magic, payload length, epoch, CRC-32 of the length, epoch and payload.
const RECORD_HEAD: usize = 20;
const RECORD_MAGIC: u32 = 0x4857_4c52;
/// How much the file grows at a time, in zeros: by 64 KiB up to 1 MiB (a small inbox
/// keeps a small log), then by 1 MiB.
const SMALL_CHUNK: u64 = 64 * 1024;
const CHUNK: u64 = 1024 * 1024;

/// The largest payload one record takes (a commit's arrivals past it get rows of their
/// own in the redb file instead).
pub(super) const MAX_RECORD: usize = (SEGMENT / 4) as usize;

/// The log file, open.
#[derive(Debug)]
pub(super) struct Wal {
    file: File,
    /// The number the inbox file gave its log (in each segment's header).
    number: u64,
    /// The file's length: everything before it is written (zeros at least).
    len: u64,
    /// The segment appended to (0 or 1), and where its next record goes (from its start).
    active: usize,
    pos: u64,
    /// Each segment's epoch, and the next one to give.
    epochs: [u64; 2],
    next_epoch: u64,
    /// Whether each segment holds a record since it started.
    holds: [bool; 2],
    /// Starting a segment failed: what the file holds is unknown until the log starts
    /// over, and nothing is appended until then.
    broken: bool,
}

/// The path of the log beside the inbox file `inbox`.
pub(crate) fn path_of(inbox: &Path) -> PathBuf {
    let mut name = inbox.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

impl Wal {
    /// Opens (or creates) the log beside `inbox`, whose number is `number`; gives back the
    /// payloads of the records both segments hold, in the order of their epochs. Call
    /// [`Wal::restart`] once what they hold is in the redb file, durably.
    pub(super) fn open(inbox: &Path, number: u64) -> io::Result<(Wal, Vec<Vec<u8>>)> {
        let path = path_of(inbox);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let len = file.metadata()?.len();
        let mut wal = Wal {
            file,
            number,
            len,
            active: 0,
            pos: HEADER,
            epochs: [0; 2],
            next_epoch: 1,
            holds: [false; 2],
            broken: false,
        };
        let mut segments = Vec::new();
        for segment in 0..2 {
            if let Some(epoch) = wal.read_header(segment)? {
                wal.epochs[segment] = epoch;
                wal.next_epoch = wal.next_epoch.max(epoch + 1);
                segments.push((epoch, segment));
            }
        }
        segments.sort_unstable();
        let mut records = Vec::new();
        for (epoch, segment) in segments {
            records.extend(wal.read_records(segment, epoch)?);
        }
        Ok((wal, records))
    }

    /// Empties both segments (each under a new epoch) and appends to the first again. What
    /// they held must be in the redb file, durably.
    pub(super) fn restart(&mut self) -> io::Result<()> {
        self.broken = true;
        for segment in 0..2 {
            if segment == 0 || self.len > SEGMENT {
                self.start_segment(segment)?;
            }
        }
        self.file.sync_data()?;
        self.active = 0;
        self.pos = HEADER;
        self.broken = false;
        Ok(())
    }

    /// Whether starting a segment failed (see [`Wal::restart`]).
    pub(super) fn broken(&self) -> bool {
        self.broken
    }

    /// The segment appended to.
    pub(super) fn active(&self) -> usize {
        self.active
    }

    /// Whether a record of `len` payload bytes fits in the active segment.
    pub(super) fn fits(&self, len: usize) -> bool {
        self.pos + (RECORD_HEAD + len) as u64 <= SEGMENT
    }

    /// Whether either segment holds a record.
    pub(super) fn holds_records(&self) -> bool {
        self.holds.contains(&true)
    }

    /// Appends to the other segment from now on, emptied under a new epoch: what it held
    /// must be in the redb file, durably. (Its header is flushed with the next append.)
    pub(super) fn switch(&mut self) -> io::Result<()> {
        let other = 1 - self.active;
        self.broken = true;
        self.start_segment(other)?;
        self.active = other;
        self.pos = HEADER;
        self.broken = false;
        Ok(())
    }

    /// Appends one record holding `payload` and flushes it. On an error nothing counts as
    /// appended: the next append writes over the same place.
    pub(super) fn append(&mut self, payload: &[u8]) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other("a segment could not be started"));
        }
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|_| self.fits(payload.len()))
            .ok_or_else(|| io::Error::other("a record larger than the log's segment"))?;
        let epoch = self.epochs[self.active];
        let mut record = Vec::with_capacity(RECORD_HEAD + payload.len());
        record.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&epoch.to_le_bytes());
        record.extend_from_slice(&checksum(len, epoch, payload).to_le_bytes());
        record.extend_from_slice(payload);
        let at = self.start() + self.pos;
        self.zero_up_to(at + record.len() as u64)?;
        write_at(&self.file, &record, at)?;
        self.file.sync_data()?;
        self.pos += record.len() as u64;
        self.holds[self.active] = true;
        Ok(())
    }

    fn start(&self) -> u64 {
        self.active as u64 * SEGMENT
    }

    /// Writes `segment`'s header under a new epoch: its records so far no longer count.
    fn start_segment(&mut self, segment: usize) -> io::Result<()> {
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        let mut header = [0u8; HEADER_LEN];
        header[..16].copy_from_slice(SEGMENT_MAGIC);
        header[16..24].copy_from_slice(&self.number.to_le_bytes());
        header[24..32].copy_from_slice(&epoch.to_le_bytes());
        let crc = crc32fast::hash(&header[..32]);
        header[32..].copy_from_slice(&crc.to_le_bytes());
        let at = segment as u64 * SEGMENT;
        self.zero_up_to(at + HEADER)?;
        write_at(&self.file, &header, at)?;
        self.epochs[segment] = epoch;
        self.holds[segment] = false;
        Ok(())
    }

    /// Grows the file with zeros, a chunk at a time, so that it is at least `end` long.
    /// (A write that fails leaves it as long as what was written.)
    fn zero_up_to(&mut self, end: u64) -> io::Result<()> {
        if end <= self.len {
            return Ok(());
        }
        let chunk = if end <= CHUNK { SMALL_CHUNK } else { CHUNK };
        let target = end.div_ceil(chunk) * chunk;
        let zeros = vec![0u8; 64 * 1024];
        while self.len < target {
            let n = (target - self.len).min(zeros.len() as u64) as usize;
            write_at(&self.file, &zeros[..n], self.len)?;
            self.len += n as u64;
        }
        Ok(())
    }

    /// `segment`'s epoch, when its header checks and names this log.
    fn read_header(&self, segment: usize) -> io::Result<Option<u64>> {
        let at = segment as u64 * SEGMENT;
        if self.len < at + HEADER_LEN as u64 {
            return Ok(None);
        }
        let mut header = [0u8; HEADER_LEN];
        read_at(&self.file, &mut header, at)?;
        let word = |range: std::ops::Range<usize>| {
            u64::from_le_bytes(header[range].try_into().expect("8 bytes"))
        };
        let crc = u32::from_le_bytes(header[32..].try_into().expect("4 bytes"));
        if &header[..16] != SEGMENT_MAGIC
            || crc32fast::hash(&header[..32]) != crc
            || word(16..24) != self.number
        {
            return Ok(None);
        }
        Ok(Some(word(24..32)))
    }

    /// The payloads of `segment`'s records of `epoch`, up to the first that does not check.
    fn read_records(&self, segment: usize, epoch: u64) -> io::Result<Vec<Vec<u8>>> {
        let start = segment as u64 * SEGMENT;
        let end = (start + SEGMENT).min(self.len);
        let mut bytes = vec![0u8; end.saturating_sub(start + HEADER) as usize];
        read_at(&self.file, &mut bytes, start + HEADER)?;
        let mut records = Vec::new();
        let mut rest = &bytes[..];
        while rest.len() >= RECORD_HEAD {
            let word = |at: usize| u32::from_le_bytes(rest[at..at + 4].try_into().expect("4"));
            let (magic, len, crc) = (word(0), word(4), word(16));
            let record_epoch = u64::from_le_bytes(rest[8..16].try_into().expect("8 bytes"));
            let Some(payload) = rest[RECORD_HEAD..].get(..len as usize) else {
                break;
            };
            if magic != RECORD_MAGIC
                || record_epoch != epoch
                || checksum(len, epoch, payload) != crc
            {
                break;
            }
            records.push(payload.to_vec());
            rest = &rest[RECORD_HEAD + payload.len()..];
        }
        Ok(records)
    }
}

fn write_at(mut file: &File, bytes: &[u8], at: u64) -> io::Result<()> {
    file.seek(SeekFrom::Start(at))?;
    file.write_all(bytes)
}

fn read_at(mut file: &File, bytes: &mut [u8], at: u64) -> io::Result<()> {
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(bytes)
}

/// A record's CRC-32: over its length, its epoch and its payload.
fn checksum(len: u32, epoch: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len.to_le_bytes());
    hasher.update(&epoch.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

#[cfg(test)]
mod tests;
