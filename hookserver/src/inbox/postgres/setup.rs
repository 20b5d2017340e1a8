//! The PostgreSQL inbox's setup: opening it, the schema and its migration (under an
//! advisory lock), the connection pool, and the background tasks (listening for new
//! deliveries, reading the counts, purging old deliveries).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::Notify;
use tokio_postgres::NoTls;

use super::{db_error, state_of, Postgres, CHANNEL, NOW};
use crate::inbox::{Counts, Settings};

/// The schema this version creates and reads.
const SCHEMA: i32 = 1;
/// The advisory lock that serializes migrations of replicas starting together.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_0001;
/// How often the counts (for the waiting limit) and the purge run.
const HOUSEKEEPING: Duration = Duration::from_millis(500);
const PURGE_EVERY: Duration = Duration::from_secs(600);

const MIGRATION_1: &str = "
CREATE TABLE hookserver_deliveries (
    id bigserial PRIMARY KEY,
    endpoint text NOT NULL,
    key text NOT NULL,
    webhook_id text,
    received bigint NOT NULL,
    state smallint NOT NULL,
    tries integer NOT NULL DEFAULT 0,
    round integer NOT NULL DEFAULT 0,
    next_at bigint NOT NULL,
    finished bigint,
    lease_until bigint,
    leased_by text,
    request bytea
);
CREATE INDEX hookserver_deliveries_due ON hookserver_deliveries (next_at) WHERE state IN (0, 2);
CREATE INDEX hookserver_deliveries_leased ON hookserver_deliveries (lease_until) WHERE state = 1;
CREATE INDEX hookserver_deliveries_done ON hookserver_deliveries (finished) WHERE state = 3;
CREATE TABLE hookserver_keys (
    endpoint text NOT NULL,
    key text NOT NULL,
    id bigint NOT NULL,
    received bigint NOT NULL,
    PRIMARY KEY (endpoint, key)
);
CREATE TABLE hookserver_errors (
    id bigint NOT NULL,
    attempt integer NOT NULL,
    at bigint NOT NULL,
    error text NOT NULL,
    PRIMARY KEY (id, attempt)
);
";

/// A pool of connections to the database.
pub(super) fn pool_of(config: tokio_postgres::Config) -> Result<Pool, String> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(32)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|err| err.to_string())
}

/// Creates or migrates the schema, under an advisory lock (one replica at a time).
pub(super) async fn migrate(pool: &Pool) -> Result<(), String> {
    let mut client = pool
        .get()
        .await
        .map_err(|err| format!("cannot connect: {err}"))?;
    let txn = client.transaction().await.map_err(|e| db_error(&e))?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| db_error(&e))?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS hookserver_meta (key text PRIMARY KEY, value text NOT NULL)",
    )
    .await
    .map_err(|e| db_error(&e))?;
    let row = txn
        .query_opt(
            "SELECT value FROM hookserver_meta WHERE key = 'schema'",
            &[],
        )
        .await
        .map_err(|e| db_error(&e))?;
    let version: i32 = match row {
        Some(row) => row
            .get::<_, String>(0)
            .parse()
            .map_err(|_| "its hookserver_meta table is not hookserver's".to_owned())?,
        None => 0,
    };
    if version > SCHEMA {
        return Err(format!(
            "its schema is version {version}, made by a newer hookserver (this one reads {SCHEMA})"
        ));
    }
    if version < 1 {
        txn.batch_execute(MIGRATION_1)
            .await
            .map_err(|e| db_error(&e))?;
        txn.execute(
            "INSERT INTO hookserver_meta (key, value) VALUES ('schema', $1)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&SCHEMA.to_string()],
        )
        .await
        .map_err(|e| db_error(&e))?;
    }
    txn.commit().await.map_err(|e| db_error(&e))
}

/// Listens on its own connection for new deliveries, reconnecting when it drops.
pub(super) async fn listen(config: tokio_postgres::Config, wake: Arc<Notify>) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let notified = Arc::clone(&wake);
                // The connection's messages: the notifications, until it closes.
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                                notified.notify_one();
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                    .is_ok()
                {
                    // What arrived while not listening is due now.
                    wake.notify_one();
                    let _ = driver.await;
                } else {
                    driver.abort();
                }
                drop(client);
            }
            Err(err) => {
                tracing::warn!(error = %err, "the inbox cannot listen for new deliveries yet");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Reads the counts twice a second, and purges done deliveries past the dedupe window.
pub(super) async fn housekeeping(pool: Pool, counts: Arc<Mutex<Counts>>, window_ms: i64) {
    let mut last_purge: Option<std::time::Instant> = None;
    loop {
        if let Ok(read) = read_counts(&pool).await {
            *counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = read;
        }
        if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            last_purge = Some(std::time::Instant::now());
            if let Err(err) = purge(&pool, window_ms).await {
                tracing::warn!(error = %err, "the inbox could not purge old deliveries");
            }
        }
        tokio::time::sleep(HOUSEKEEPING).await;
    }
}

pub(super) async fn read_counts(pool: &Pool) -> Result<Counts, String> {
    let client = pool.get().await.map_err(|e| db_error(&e))?;
    let rows = client
        .query(
            "SELECT state, count(*) FROM hookserver_deliveries GROUP BY state",
            &[],
        )
        .await
        .map_err(|e| db_error(&e))?;
    let mut counts = Counts::default();
    for row in rows {
        let n = usize::try_from(row.get::<_, i64>(1)).unwrap_or(0);
        *counts.of(state_of(row.get(0))) = n;
    }
    Ok(counts)
}

async fn purge(pool: &Pool, window_ms: i64) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| db_error(&e))?;
    let sql = format!(
        "WITH old AS (
            DELETE FROM hookserver_deliveries WHERE state = 3 AND finished < {NOW} - $1 RETURNING id
        ), errors AS (
            DELETE FROM hookserver_errors WHERE id IN (SELECT id FROM old)
        )
        DELETE FROM hookserver_keys WHERE received < {NOW} - $1
            AND id NOT IN (SELECT id FROM hookserver_deliveries WHERE state <> 3)"
    );
    client
        .execute(&sql, &[&window_ms])
        .await
        .map_err(|e| db_error(&e))?;
    Ok(())
}

impl Postgres {
    /// Connects, creates or migrates the schema (safe when replicas start together), and
    /// starts listening for new deliveries.
    pub(crate) fn open(url: &str, settings: &Settings) -> Result<Arc<Self>, String> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|err| format!("not a PostgreSQL URL: {err}"))?;
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("hookserver");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hookserver-postgres")
            .enable_all()
            .build()
            .map_err(|err| err.to_string())?;
        let pool = pool_of(config.clone())?;
        // Attempts' progress (claims, outcomes) commits without waiting for the disk: a
        // record lost in a database crash only runs an attempt again.
        let mut unsynced = config.clone();
        unsynced.options("-c synchronous_commit=off");
        let progress = pool_of(unsynced)?;
        let migrating = pool.clone();
        // Not on the caller's thread: it may be inside another runtime.
        std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(migrate(&migrating)))
                .join()
                .unwrap_or_else(|_| Err("the migration panicked".to_owned()))
        })?;
        let me: Arc<str> = format!(
            "{}-{}-{:08x}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "replica".to_owned()),
            std::process::id(),
            getrandom::u32().unwrap_or(0)
        )
        .into();
        let wake = Arc::new(Notify::new());
        let counts = Arc::new(Mutex::new(Counts::default()));
        let handle = runtime.handle().clone();
        handle.spawn(listen(config, Arc::clone(&wake)));
        let window_ms = i64::try_from(settings.dedupe_window.as_millis()).unwrap_or(i64::MAX);
        handle.spawn(housekeeping(pool.clone(), Arc::clone(&counts), window_ms));
        Ok(Arc::new(Postgres {
            runtime: Some(runtime),
            handle,
            pool,
            progress,
            wake,
            me,
            counts,
            next_due: Mutex::new(None),
            limit: settings.limit,
            window_ms,
            // At most half of bigint's range: the SQL adds it to the clock's milliseconds.
            lease_ms: i64::try_from(settings.lease.as_millis())
                .unwrap_or(i64::MAX)
                .min(i64::MAX / 2),
            unanswered: AtomicBool::new(false),
        }))
    }
}
