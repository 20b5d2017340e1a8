//! The floor of a durable acknowledgement in redb: the CPU that storing deliveries costs
//! redb alone, with none of hookserver's work around it, so that the queued bot's figures
//! can be read against what the storage itself needs.
//!
//! Stores 100,000 bodies the size of the bench payload, `BATCH` per transaction, each
//! transaction committed with fsync (redb's default durability, as the inbox commits), and
//! each delivery also written to 0–3 more small tables (as the inbox writes a status, a
//! dedupe key and a record beside the request), with the delivery `2 × BATCH` before
//! removed (as the inbox drops a done delivery's request). Prints the CPU (user + system,
//! this process) per delivery and per commit, and the wall time per delivery.
//!
//! Then the inbox's own layout (format 2): per commit, the new deliveries in one
//! `arrivals` value and a dedupe key each; each delivery of the commit two before written
//! out as a done row (no request) and that commit's value removed.
//!
//! Usage: `cargo run --release -p hookserver-bench --bin redb_floor -- [FILE]`
//! (default `target/redb_floor.redb`, removed at the end).

use std::time::Instant;

use redb::{Database, TableDefinition};

const REQUESTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("requests");
const STATUS: TableDefinition<'_, u64, (u8, u32, u64)> = TableDefinition::new("status");
const KEYS: TableDefinition<'_, &str, (u64, u64)> = TableDefinition::new("keys");
const RECORDS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("records");

/// The inbox's tables of format 2 (`hookserver/src/inbox/embedded/tables.rs`).
type ArrivalRow<'a> = (u64, u64, &'a str, Option<&'a str>, &'a str, &'a [u8]);
type DeliveryRow<'a> = (
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
const ARRIVALS: TableDefinition<'_, u64, Vec<ArrivalRow<'static>>> =
    TableDefinition::new("arrivals");
const ROWS: TableDefinition<'_, u64, DeliveryRow<'static>> = TableDefinition::new("deliveries");

const DELIVERIES: u64 = 100_000;
/// The bench payload's size (`hookserver/samples/discussion.create.hub-docs.json`) plus
/// its stored request line and headers.
const BODY: usize = 1_500;

/// This process's CPU time so far (user + system), in seconds, from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    // The fields after the command name (which may hold spaces) start after its `)`.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a stat line") + 2..]
        .split(' ')
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // The kernel's clock ticks are 100 per second on every Linux this runs on.
    ticks / 100.0
}

fn run(path: &std::path::Path, batch: u64, extra_tables: u32) -> Result<(), redb::Error> {
    let _ = std::fs::remove_file(path);
    let db = Database::builder()
        .set_cache_size(32 * 1024 * 1024)
        .create(path)?;
    let body = vec![b'x'; BODY];
    let record =
        br#"{"endpoint":"/webhooks/test_webhook","webhook_id":"w-1","key":"id:w-1","received":1}"#;
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let mut id = 0;
    while id < DELIVERIES {
        let txn = db.begin_write()?;
        {
            let mut requests = txn.open_table(REQUESTS)?;
            let mut status = (extra_tables >= 1)
                .then(|| txn.open_table(STATUS))
                .transpose()?;
            let mut keys = (extra_tables >= 2)
                .then(|| txn.open_table(KEYS))
                .transpose()?;
            let mut records = (extra_tables >= 3)
                .then(|| txn.open_table(RECORDS))
                .transpose()?;
            for _ in 0..batch {
                id += 1;
                requests.insert(id, body.as_slice())?;
                if let Some(status) = status.as_mut() {
                    status.insert(id, (0, 0, id))?;
                }
                if let Some(keys) = keys.as_mut() {
                    keys.insert(
                        format!("/webhooks/test_webhook\nid:w-{id}").as_str(),
                        (id, id),
                    )?;
                }
                if let Some(records) = records.as_mut() {
                    records.insert(id, record.as_slice())?;
                }
                if id > 2 * batch {
                    requests.remove(id - 2 * batch)?;
                    if let Some(status) = status.as_mut() {
                        status.insert(id - 2 * batch, (3, 1, id))?;
                    }
                }
            }
        }
        txn.commit()?;
    }
    report(
        batch,
        &(1 + extra_tables).to_string(),
        cpu_seconds() - cpu,
        started,
    );
    drop(db);
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// One row of the table: CPU per delivery and per commit, wall time per delivery.
fn report(batch: u64, tables: &str, cpu: f64, started: Instant) {
    let commits = DELIVERIES.div_ceil(batch);
    println!(
        "| {batch} | {tables} | {:.1} | {:.0} | {:.1} |",
        cpu * 1e6 / DELIVERIES as f64,
        cpu * 1e6 / commits as f64,
        started.elapsed().as_secs_f64() * 1e6 / DELIVERIES as f64,
    );
}

/// The inbox's layout: one value per commit, a key and (two commits later) a row each.
fn run_layout(path: &std::path::Path, batch: u64) -> Result<(), redb::Error> {
    let _ = std::fs::remove_file(path);
    let db = Database::builder()
        .set_cache_size(32 * 1024 * 1024)
        .create(path)?;
    let body = vec![b'x'; BODY];
    let endpoint = "/webhooks/test_webhook";
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let mut first = 1;
    while first <= DELIVERIES {
        let txn = db.begin_write()?;
        {
            let mut arrivals = txn.open_table(ARRIVALS)?;
            let mut keys = txn.open_table(KEYS)?;
            let mut rows = txn.open_table(ROWS)?;
            let names: Vec<String> = (first..first + batch).map(|id| format!("w-{id}")).collect();
            let value: Vec<ArrivalRow<'_>> = (first..first + batch)
                .zip(&names)
                .map(|(id, name)| {
                    (
                        id,
                        id,
                        endpoint,
                        Some(name.as_str()),
                        name.as_str(),
                        &body[..],
                    )
                })
                .collect();
            arrivals.insert(first, &value)?;
            for (id, name) in (first..).zip(&names) {
                keys.insert(format!("{endpoint}\n{name}").as_str(), (id, id))?;
            }
            if first > 2 * batch {
                let old = first - 2 * batch;
                for id in old..old + batch {
                    rows.insert(id, (3, 1, 0, id, id, id, endpoint, Some("w-1"), "w-1"))?;
                }
                arrivals.remove(old)?;
            }
        }
        txn.commit()?;
        first += batch;
    }
    let tables = "format 2: 1 value per commit + 2 rows each";
    report(batch, tables, cpu_seconds() - cpu, started);
    drop(db);
    let _ = std::fs::remove_file(path);
    Ok(())
}

fn main() -> Result<(), redb::Error> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/redb_floor.redb".to_owned());
    let path = std::path::Path::new(&path);
    println!("| deliveries per commit | tables written | CPU µs per delivery | CPU µs per commit | wall µs per delivery |");
    println!("|---|---|---|---|---|");
    for batch in [27, 64] {
        for extra in [0, 1, 3] {
            run(path, batch, extra)?;
        }
        run_layout(path, batch)?;
    }
    Ok(())
}
