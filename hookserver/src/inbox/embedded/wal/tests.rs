//! The log on a real file: records read back at open in order, a torn or damaged record
//! ends the reading, and records of an earlier epoch never count again.

use std::path::PathBuf;

use super::*;

/// An inbox path of its own under the temporary folder; its log is removed at the end.
struct TempLog(PathBuf);

impl TempLog {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        TempLog(std::env::temp_dir().join(format!(
            "hookserver-wal-{name}-{}-{nanos}.redb",
            std::process::id()
        )))
    }

    /// Opens the log, as the inbox does, and starts it over.
    fn open(&self) -> (Wal, Vec<Vec<u8>>) {
        let (mut wal, records) = Wal::open(&self.0, NUMBER).unwrap();
        wal.restart().unwrap();
        (wal, records)
    }

    fn read(&self) -> Vec<Vec<u8>> {
        Wal::open(&self.0, NUMBER).unwrap().1
    }
}

impl Drop for TempLog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(path_of(&self.0));
    }
}

/// The number of the logs of these tests.
const NUMBER: u64 = 7;

fn payload(n: u8, len: usize) -> Vec<u8> {
    vec![n; len]
}

#[test]
fn records_are_read_back_in_order_across_a_switch() {
    let log = TempLog::new("order");
    let (mut wal, records) = log.open();
    assert!(records.is_empty());
    assert!(!wal.holds_records());
    wal.append(&payload(1, 100)).unwrap();
    wal.append(&payload(2, 5000)).unwrap();
    assert!(wal.holds_records());
    wal.switch().unwrap();
    assert_eq!(wal.active(), 1);
    wal.append(&payload(3, 10)).unwrap();
    drop(wal);
    assert_eq!(
        log.read(),
        [payload(1, 100), payload(2, 5000), payload(3, 10)]
    );
}

#[test]
fn the_log_is_named_after_the_inbox_file() {
    assert_eq!(
        path_of(Path::new("/data/hookserver-inbox.redb")),
        Path::new("/data/hookserver-inbox.redb-wal")
    );
}

#[test]
fn a_segment_started_again_no_longer_holds_its_old_records() {
    let log = TempLog::new("epochs");
    let (mut wal, _) = log.open();
    wal.append(&payload(1, 300)).unwrap();
    wal.append(&payload(2, 300)).unwrap();
    wal.switch().unwrap();
    wal.append(&payload(3, 300)).unwrap();
    // Back to the first segment: its two records are behind the new, shorter one.
    wal.switch().unwrap();
    wal.append(&payload(4, 10)).unwrap();
    assert!(wal.holds_records());
    drop(wal);
    assert_eq!(log.read(), [payload(3, 300), payload(4, 10)]);
    // Started over at an open: nothing it held counts.
    let (mut wal, records) = log.open();
    assert_eq!(records.len(), 2);
    assert!(!wal.holds_records());
    assert_eq!(log.read(), Vec::<Vec<u8>>::new());
    wal.append(&payload(5, 1)).unwrap();
    drop(wal);
    assert_eq!(log.read(), [payload(5, 1)]);
}

#[test]
fn a_log_of_another_number_holds_nothing() {
    let log = TempLog::new("number");
    let (mut wal, _) = log.open();
    wal.append(&payload(1, 10)).unwrap();
    drop(wal);
    assert_eq!(
        Wal::open(&log.0, NUMBER + 1).unwrap().1,
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(log.read(), [payload(1, 10)]);
}

#[test]
fn a_torn_or_damaged_record_ends_the_reading() {
    let log = TempLog::new("torn");
    let (mut wal, _) = log.open();
    wal.append(&payload(1, 1000)).unwrap();
    wal.append(&payload(2, 1000)).unwrap();
    wal.append(&payload(3, 1000)).unwrap();
    drop(wal);
    let file = OpenOptions::new()
        .write(true)
        .open(path_of(&log.0))
        .unwrap();
    // The third record's last bytes, as a crash in the middle of its write leaves them.
    let third = HEADER + 2 * (RECORD_HEAD as u64 + 1000);
    write_at(&file, &[0; 500], third + RECORD_HEAD as u64 + 500).unwrap();
    assert_eq!(log.read(), [payload(1, 1000), payload(2, 1000)]);
    // One byte of the first record changed: nothing after it is trusted either.
    write_at(&file, &[9], HEADER + RECORD_HEAD as u64 + 10).unwrap();
    assert_eq!(log.read(), Vec::<Vec<u8>>::new());
    // A damaged header: the segment holds nothing.
    write_at(&file, &[0], 3).unwrap();
    assert_eq!(log.read(), Vec::<Vec<u8>>::new());
}

#[test]
fn a_record_fits_only_within_its_segment_and_a_failed_append_counts_nothing() {
    let log = TempLog::new("fits");
    let (mut wal, _) = log.open();
    assert!(wal.fits(MAX_RECORD));
    let mut appended = 0;
    while wal.fits(MAX_RECORD) {
        wal.append(&payload(1, MAX_RECORD)).unwrap();
        appended += 1;
    }
    assert!(appended >= 3, "{appended} records of the largest size");
    assert!(wal.append(&payload(2, MAX_RECORD)).is_err());
    // The refused append wrote nothing: the records before it are intact.
    drop(wal);
    assert_eq!(log.read().len(), appended);
}

#[test]
fn the_file_grows_by_small_chunks_while_small() {
    let log = TempLog::new("grow");
    let (mut wal, _) = log.open();
    let len = || std::fs::metadata(path_of(&log.0)).unwrap().len();
    assert_eq!(len(), SMALL_CHUNK);
    wal.append(&payload(1, 10_000)).unwrap();
    assert_eq!(len(), SMALL_CHUNK);
    // The second segment starts past the first one.
    wal.switch().unwrap();
    wal.append(&payload(2, 10_000)).unwrap();
    assert_eq!(len(), SEGMENT + SMALL_CHUNK);
}
