//! The PostgreSQL inbox: one database shared by every replica that names it. Dedupe is a
//! unique key inserted in the same statement as the delivery; a replica claims a due
//! delivery with `FOR UPDATE SKIP LOCKED` and a lease (another replica takes it over once
//! the lease expires); `LISTEN`/`NOTIFY` wakes idle replicas when a delivery arrives.
//! Every time is the database's clock, so replicas' clocks need not agree.
//!
//! The client (tokio-postgres, pooled by deadpool-postgres) runs on a runtime of its own:
//! the HTTP workers, the queue's runner and the dashboard all call it from theirs.
//!
//! `setup` opens it (the schema and its migration, the pool, and the background tasks:
//! listening, counts, purge); this module is the [`Store`] the server calls.

mod setup;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::web::Bytes;
use deadpool_postgres::Pool;
use futures_util::future::BoxFuture;
use tokio::sync::Notify;

use super::request::StoredRequest;
use super::{
    Accepted, ActionError, Arrival, Counts, Entry, Failed, Job, Outcome, Refused, State, Store,
};
use setup::read_counts;

/// The channel `NOTIFY` wakes idle replicas on.
const CHANNEL: &str = "hookserver_inbox";
/// The database's clock, in ms since the epoch.
const NOW: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
/// How close to the waiting limit the counts are read for each delivery.
const NEAR_LIMIT: usize = 100;
/// How long any work waits for the database's answer.
const ANSWER_LIMIT: Duration = Duration::from_secs(5);
/// The error of work the database did not answer within [`ANSWER_LIMIT`].
const NO_ANSWER: &str = "the database did not answer within 5 s";
/// How long a stop waits for the database to take back a running delivery.
const RELEASE_LIMIT: Duration = Duration::from_secs(1);

/// The inbox in a PostgreSQL database.
pub(crate) struct Postgres {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    /// Connections whose commits are durable (acknowledgements, actions).
    pool: Pool,
    /// Connections whose commits do not wait for the disk (attempts' progress).
    progress: Pool,
    wake: Arc<Notify>,
    /// This replica's name in leases.
    me: Arc<str>,
    /// The last counts read (the waiting limit is checked against them).
    counts: Arc<Mutex<Counts>>,
    next_due: Mutex<Option<SystemTime>>,
    limit: usize,
    window_ms: i64,
    lease_ms: i64,
    /// Set once the database left a release unanswered: the next ones are not waited for.
    unanswered: AtomicBool,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn state_of(code: i16) -> State {
    match code {
        0 => State::Queued,
        1 => State::Running,
        2 => State::Retrying,
        3 => State::Done,
        _ => State::Dead,
    }
}

fn ms(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// An error of the database's, with its causes: tokio-postgres says only "db error" and
/// keeps the server's own message (e.g. "bigint out of range") as the source.
fn db_error(err: &dyn std::error::Error) -> String {
    let mut text = format!("the database: {err}");
    let mut cause = err.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// `work`, or an error once the database has not answered for [`ANSWER_LIMIT`]: one that
/// stops answering (a frozen server, a cut network) must not hold a delivery's answer,
/// the queue or the dashboard forever. Work cut short this way may still have been
/// committed; at least once allows that (the Hub's retry of a 503 is then a duplicate).
async fn within_limit<T>(work: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(ANSWER_LIMIT, work)
        .await
        .unwrap_or_else(|_| Err(NO_ANSWER.to_owned()))
}

impl Postgres {
    /// Runs `work` on the client's runtime, whatever runtime the caller is on, within
    /// [`ANSWER_LIMIT`].
    fn run<T, F>(&self, work: impl FnOnce(Pool) -> F) -> impl Future<Output = Result<T, String>>
    where
        F: Future<Output = Result<T, String>> + Send + 'static,
        T: Send + 'static,
    {
        let task = self.handle.spawn(within_limit(work(self.pool.clone())));
        async move { task.await.map_err(|err| err.to_string())? }
    }

    /// [`run`](Self::run) on the connections whose commits do not wait for the disk.
    fn run_progress<T, F>(
        &self,
        work: impl FnOnce(Pool) -> F,
    ) -> impl Future<Output = Result<T, String>>
    where
        F: Future<Output = Result<T, String>> + Send + 'static,
        T: Send + 'static,
    {
        let task = self.handle.spawn(within_limit(work(self.progress.clone())));
        async move { task.await.map_err(|err| err.to_string())? }
    }
}

impl Store for Postgres {
    fn accept(&self, arrival: Arrival) -> BoxFuture<'_, Result<Accepted, Refused>> {
        let waiting = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .waiting();
        let window_ms = self.window_ms;
        let limit = self.limit;
        // The counts are read twice a second; near the limit, read them now.
        let near = waiting.saturating_add(NEAR_LIMIT) >= limit;
        let work = self.run(move |pool| async move {
            let client = pool.get().await.map_err(|e| db_error(&e))?;
            if near {
                let waiting = read_counts(&pool).await?.waiting();
                if waiting >= limit {
                    return Ok(Err(waiting));
                }
            }
            let blob = arrival.request.blob();
            let endpoint: &str = &arrival.endpoint;
            // The key and the delivery in one statement (one transaction): of two replicas
            // given the same key at once, one inserts and the other finds it.
            let sql = format!(
                "WITH k AS (
                    INSERT INTO hookserver_keys (endpoint, key, id, received)
                    VALUES ($1, $2, nextval(pg_get_serial_sequence('hookserver_deliveries', 'id')), {NOW})
                    ON CONFLICT (endpoint, key) DO UPDATE
                        SET id = EXCLUDED.id, received = EXCLUDED.received
                        WHERE hookserver_keys.received < {NOW} - $3
                    RETURNING id, received
                ), d AS (
                    INSERT INTO hookserver_deliveries
                        (id, endpoint, key, webhook_id, received, state, next_at, request)
                    SELECT id, $1, $2, $4, received, 0, received, $5 FROM k
                    RETURNING id
                )
                SELECT d.id, pg_notify('{CHANNEL}', '') IS NULL FROM d"
            );
            let row = client
                .query_opt(
                    &sql,
                    &[&endpoint, &arrival.key, &window_ms, &arrival.webhook_id, &blob],
                )
                .await
                .map_err(|e| db_error(&e))?;
            if let Some(row) = row {
                return Ok(Ok(Accepted::Queued(ms(row.get(0)))));
            }
            let first = client
                .query_one(
                    "SELECT id FROM hookserver_keys WHERE endpoint = $1 AND key = $2",
                    &[&endpoint, &arrival.key],
                )
                .await
                .map_err(|e| db_error(&e))?;
            Ok(Ok(Accepted::Duplicate(ms(first.get(0)))))
        });
        Box::pin(async move {
            match work.await {
                Ok(Ok(accepted)) => Ok(accepted),
                Ok(Err(waiting)) => Err(Refused::Full(waiting)),
                Err(err) => Err(Refused::Write(err)),
            }
        })
    }

    fn claim(&self) -> BoxFuture<'_, Result<Option<Job>, String>> {
        let me = Arc::clone(&self.me);
        let lease = self.lease_ms;
        let work = self.run_progress(move |pool| async move {
            let client = pool.get().await.map_err(|e| db_error(&e))?;
            let me: &str = &me;
            // A due delivery first, then one whose lease expired: each through its own
            // partial index (an `OR` of the two would scan the table).
            let mut row = None;
            for (pick, was) in [
                ("state IN (0, 2) AND next_at <= {NOW} ORDER BY next_at", 0),
                ("state = 1 AND lease_until < {NOW} ORDER BY lease_until", 1),
            ] {
                let sql = format!(
                    "WITH c AS (
                        SELECT id FROM hookserver_deliveries
                        WHERE {pick} LIMIT 1
                        FOR UPDATE SKIP LOCKED
                    )
                    UPDATE hookserver_deliveries d
                    SET state = 1, tries = d.tries + 1, lease_until = {NOW} + $1, leased_by = $2
                    FROM c WHERE d.id = c.id
                    RETURNING d.id, d.endpoint, d.webhook_id, d.tries, d.round, d.request, {was}::smallint"
                )
                .replace("{NOW}", NOW);
                row = client
                    .query_opt(&sql, &[&lease, &me])
                    .await
                    .map_err(|e| db_error(&e))?;
                if row.is_some() {
                    break;
                }
            }
            let Some(row) = row else {
                let due = client
                    .query_one(
                        &format!(
                            "SELECT least(
                                (SELECT min(next_at) FROM hookserver_deliveries WHERE state IN (0, 2)),
                                (SELECT min(lease_until) FROM hookserver_deliveries WHERE state = 1)
                            ) - {NOW}"
                        ),
                        &[],
                    )
                    .await
                    .map_err(|e| db_error(&e))?;
                return Ok(Err(due.get::<_, Option<i64>>(0)));
            };
            let id: i64 = row.get(0);
            let tries: i32 = row.get(3);
            let round: i32 = row.get(4);
            let was: i16 = row.get(6);
            if was == 1 {
                // The replica that held it stopped during its attempt.
                client
                    .execute(
                        &format!(
                            "INSERT INTO hookserver_errors (id, attempt, at, error)
                             VALUES ($1, $2, {NOW}, 'interrupted: the replica running it stopped (its lease expired)')
                             ON CONFLICT DO NOTHING"
                        ),
                        &[&id, &(tries - 1)],
                    )
                    .await
                    .map_err(|e| db_error(&e))?;
            }
            let blob: Option<Vec<u8>> = row.get(5);
            Ok(Ok((
                id,
                row.get::<_, String>(1),
                row.get::<_, Option<String>>(2),
                tries,
                round,
                blob,
            )))
        });
        Box::pin(async move {
            match work.await? {
                Err(due_in) => {
                    let due = due_in.map(|ms| {
                        SystemTime::now()
                            + Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0))
                    });
                    *self
                        .next_due
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = due;
                    Ok(None)
                }
                Ok((id, endpoint, webhook_id, tries, round, blob)) => {
                    let id = ms(id);
                    let attempt = u32::try_from(tries).unwrap_or(0);
                    let in_round = u32::try_from(tries - round).unwrap_or(0);
                    let Some(blob) = blob else {
                        self.finish(
                            id,
                            attempt,
                            Outcome::Dead {
                                error: "its stored request is missing".to_owned(),
                            },
                        )
                        .await;
                        return Ok(None);
                    };
                    match StoredRequest::from_blob(Bytes::from(blob)) {
                        Ok(request) => Ok(Some(Job {
                            id,
                            endpoint,
                            webhook_id,
                            attempt,
                            in_round,
                            request,
                            parsed: None,
                        })),
                        Err(error) => {
                            self.finish(id, attempt, Outcome::Dead { error }).await;
                            Ok(None)
                        }
                    }
                }
            }
        })
    }

    fn next_due(&self) -> Option<SystemTime> {
        *self
            .next_due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn finish(&self, id: u64, number: u32, outcome: Outcome) -> BoxFuture<'_, ()> {
        let retried = matches!(outcome, Outcome::Retry { .. });
        let me = Arc::clone(&self.me);
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        let number = i32::try_from(number).unwrap_or(i32::MAX);
        let work = self.run_progress(move |pool| async move {
            let client = pool.get().await.map_err(|e| db_error(&e))?;
            let me: &str = &me;
            // Only while this replica holds the lease: after it expired, another may run it.
            let (sql, error, delay): (String, Option<String>, i64) = match outcome {
                Outcome::Done => (
                    format!(
                        "UPDATE hookserver_deliveries
                         SET state = 3, finished = {NOW}, request = NULL, lease_until = NULL
                         WHERE id = $1 AND leased_by = $2 AND state = 1"
                    ),
                    None,
                    0,
                ),
                Outcome::Retry { error, at } => {
                    let delay = i64::try_from(at.saturating_sub(super::now_ms())).unwrap_or(0);
                    (
                        format!(
                            "WITH u AS (
                                UPDATE hookserver_deliveries
                                SET state = 2, next_at = {NOW} + $5, lease_until = NULL
                                WHERE id = $1 AND leased_by = $2 AND state = 1 RETURNING id
                            )
                            INSERT INTO hookserver_errors (id, attempt, at, error)
                            SELECT id, $3, {NOW}, $4 FROM u ON CONFLICT DO NOTHING"
                        ),
                        Some(error),
                        delay,
                    )
                }
                Outcome::Dead { error } => (
                    format!(
                        "WITH u AS (
                            UPDATE hookserver_deliveries
                            SET state = 4, finished = {NOW}, lease_until = NULL
                            WHERE id = $1 AND leased_by = $2 AND state = 1 RETURNING id
                        )
                        INSERT INTO hookserver_errors (id, attempt, at, error)
                        SELECT id, $3, {NOW}, $4 FROM u ON CONFLICT DO NOTHING"
                    ),
                    Some(error),
                    0,
                ),
            };
            let result = match &error {
                None => client.execute(&sql, &[&id, &me]).await,
                Some(error) if sql.contains("$5") => {
                    client
                        .execute(&sql, &[&id, &me, &number, error, &delay])
                        .await
                }
                Some(error) => client.execute(&sql, &[&id, &me, &number, error]).await,
            };
            result.map(|_| ()).map_err(|e| db_error(&e))
        });
        Box::pin(async move {
            if let Err(err) = work.await {
                // Not recorded: the lease expires and the delivery runs again (at least once).
                tracing::error!(id, error = %err, "the inbox could not record an attempt");
            }
            if retried {
                // The runner sleeps until the next due time it knew: this one may be sooner.
                self.wake.notify_one();
            }
        })
    }

    fn release(&self, id: u64) {
        // The database left an earlier release unanswered: the lease covers this one.
        if self.unanswered.load(Ordering::Relaxed) {
            return;
        }
        let me = Arc::clone(&self.me);
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        let work = self.run_progress(move |pool| async move {
            let put_back = async move {
                let client = pool.get().await.map_err(|e| db_error(&e))?;
                let me: &str = &me;
                client
                    .execute(
                        &format!(
                            "UPDATE hookserver_deliveries
                             SET state = CASE WHEN tries <= 1 THEN 0 ELSE 2 END, tries = tries - 1,
                                 next_at = {NOW}, lease_until = NULL
                             WHERE id = $1 AND leased_by = $2 AND state = 1"
                        ),
                        &[&id, &me],
                    )
                    .await
                    .map_err(|e| db_error(&e))
            };
            // A database that does not answer must not hold up the stop: `Ok(false)`.
            match tokio::time::timeout(RELEASE_LIMIT, put_back).await {
                Ok(done) => done.map(|_| true),
                Err(_) => Ok(false),
            }
        });
        // Waited for on this thread: the process is stopping.
        let error = match futures_executor::block_on(work) {
            Ok(true) => return,
            Ok(false) => {
                self.unanswered.store(true, Ordering::Relaxed);
                format!("the database did not answer within {RELEASE_LIMIT:?}")
            }
            Err(err) => err,
        };
        // Not put back: its lease expires and it runs again (at least once).
        tracing::warn!(id, %error, "the inbox could not put a running delivery back; it runs again when its lease expires");
    }

    fn wake(&self) -> &Notify {
        &self.wake
    }

    fn counts(&self) -> BoxFuture<'_, Result<Counts, String>> {
        let work = self.run(|pool| async move { read_counts(&pool).await });
        Box::pin(work)
    }

    fn list(&self, dead_only: bool, limit: usize) -> BoxFuture<'_, Result<Vec<Entry>, String>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Box::pin(self.run(move |pool| async move {
            let client = pool.get().await.map_err(|e| db_error(&e))?;
            let filter = if dead_only { "WHERE state = 4" } else { "" };
            let rows = client
                .query(
                    &format!(
                        "SELECT id, endpoint, webhook_id, received, state, tries, next_at, finished
                         FROM hookserver_deliveries {filter} ORDER BY id DESC LIMIT $1"
                    ),
                    &[&limit],
                )
                .await
                .map_err(|e| db_error(&e))?;
            let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            let errors = client
                .query(
                    "SELECT id, attempt, at, error FROM hookserver_errors
                     WHERE id = ANY($1) ORDER BY id, attempt",
                    &[&ids],
                )
                .await
                .map_err(|e| db_error(&e))?;
            Ok(rows
                .iter()
                .map(|row| {
                    let id: i64 = row.get(0);
                    Entry {
                        id: ms(id),
                        endpoint: row.get(1),
                        webhook_id: row.get(2),
                        received: ms(row.get(3)),
                        state: state_of(row.get(4)),
                        tries: u32::try_from(row.get::<_, i32>(5)).unwrap_or(0),
                        errors: errors
                            .iter()
                            .filter(|e| e.get::<_, i64>(0) == id)
                            .map(|e| Failed {
                                number: u32::try_from(e.get::<_, i32>(1)).unwrap_or(0),
                                at: ms(e.get(2)),
                                error: e.get(3),
                            })
                            .collect(),
                        next: ms(row.get(6)),
                        finished: row.get::<_, Option<i64>>(7).map(ms),
                    }
                })
                .collect())
        }))
    }

    fn retry(&self, id: u64) -> BoxFuture<'_, Result<(), ActionError>> {
        let sql = format!(
            "UPDATE hookserver_deliveries
             SET state = 0, next_at = {NOW}, finished = NULL, round = tries
             WHERE id = $1 AND state = 4
             RETURNING pg_notify('{CHANNEL}', '') IS NULL"
        );
        self.act(id, sql, "only a dead letter is retried")
    }

    fn discard(&self, id: u64) -> BoxFuture<'_, Result<(), ActionError>> {
        let sql = "WITH d AS (
                DELETE FROM hookserver_deliveries WHERE id = $1 AND state <> 1
                RETURNING id, endpoint, key
            ), e AS (
                DELETE FROM hookserver_errors WHERE id IN (SELECT id FROM d)
            ), k AS (
                DELETE FROM hookserver_keys USING d
                WHERE hookserver_keys.endpoint = d.endpoint AND hookserver_keys.key = d.key
                  AND hookserver_keys.id = d.id
            )
            SELECT id FROM d";
        self.act(
            id,
            sql.to_owned(),
            "an attempt is running; discard it after",
        )
    }
}

impl Postgres {
    /// Runs an action's `sql` (which returns a row when it acted) on delivery `id`; when it
    /// did not act, says why: no such delivery, or its state (`refused`).
    fn act(
        &self,
        id: u64,
        sql: String,
        refused: &'static str,
    ) -> BoxFuture<'_, Result<(), ActionError>> {
        let key = i64::try_from(id).unwrap_or(i64::MAX);
        let work = self.run(move |pool| async move {
            let client = pool.get().await.map_err(|e| db_error(&e))?;
            let acted = client
                .query_opt(&sql, &[&key])
                .await
                .map_err(|e| db_error(&e))?;
            if acted.is_some() {
                return Ok(None);
            }
            state_now(&client, key).await
        });
        Box::pin(async move {
            match work.await.map_err(ActionError::Write)? {
                None => Ok(()),
                Some(None) => Err(ActionError::NotFound(id)),
                Some(Some(state)) => Err(ActionError::Conflict(id, state, refused)),
            }
        })
    }
}

/// A delivery's state now (`Some(None)`: no such delivery), for an action's refusal.
async fn state_now(
    client: &deadpool_postgres::Client,
    id: i64,
) -> Result<Option<Option<State>>, String> {
    let row = client
        .query_opt(
            "SELECT state FROM hookserver_deliveries WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(|e| db_error(&e))?;
    Ok(Some(row.map(|r| state_of(r.get(0)))))
}
