//! The inbox of queued endpoints: deliveries stored durably before the Hub is answered
//! 202, deduplicated by `Webhook-Id`, run on their own pool with retries, kept as dead
//! letters when every attempt failed.
//!
//! The storage is behind [`Store`] (the embedded redb file in `embedded`; a database
//! server can be a second implementation). `runner` runs the attempts; `request` stores a
//! delivery's request and body as one blob.

mod embedded;
#[cfg(feature = "postgres")]
mod postgres;
mod request;
mod runner;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use serde::Serialize;
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::payload::WebhookPayload;

pub(crate) use request::StoredRequest;
pub(crate) use runner::Runner;

/// How many attempts a queued delivery gets by default (`HOOKSERVER_QUEUE_ATTEMPTS`).
///
/// ```
/// assert_eq!(hookserver::DEFAULT_QUEUE_ATTEMPTS, 8);
/// ```
pub const DEFAULT_QUEUE_ATTEMPTS: u32 = 8;
/// The delay before the second attempt, by default (`HOOKSERVER_QUEUE_BACKOFF`); each
/// next delay doubles, up to [`MAX_QUEUE_BACKOFF`].
///
/// ```
/// assert_eq!(hookserver::DEFAULT_QUEUE_BACKOFF, std::time::Duration::from_secs(1));
/// ```
pub const DEFAULT_QUEUE_BACKOFF: Duration = Duration::from_secs(1);
/// The longest delay between two attempts.
///
/// ```
/// assert_eq!(hookserver::MAX_QUEUE_BACKOFF.as_secs(), 3600);
/// ```
pub const MAX_QUEUE_BACKOFF: Duration = Duration::from_secs(3600);
/// How many attempts run at once, by default (`HOOKSERVER_QUEUE_WORKERS`).
///
/// ```
/// assert_eq!(hookserver::DEFAULT_QUEUE_WORKERS, 4);
/// ```
pub const DEFAULT_QUEUE_WORKERS: usize = 4;
/// How many deliveries may wait at most, by default (`HOOKSERVER_QUEUE_LIMIT`); past it a
/// delivery is answered 503 with `Retry-After`.
///
/// ```
/// assert_eq!(hookserver::DEFAULT_QUEUE_LIMIT, 100_000);
/// ```
pub const DEFAULT_QUEUE_LIMIT: usize = 100_000;
/// How long a `Webhook-Id` is remembered, by default (`HOOKSERVER_DEDUPE_WINDOW`).
///
/// ```
/// assert_eq!(hookserver::DEFAULT_DEDUPE_WINDOW.as_secs(), 7 * 24 * 3600);
/// ```
pub const DEFAULT_DEDUPE_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// The inbox file when none is named: in the working directory, or in a Space's
/// persistent storage (`/data`) when it is mounted.
///
/// ```
/// assert_eq!(hookserver::DEFAULT_INBOX_FILE, "hookserver-inbox.redb");
/// ```
pub const DEFAULT_INBOX_FILE: &str = "hookserver-inbox.redb";

/// Where the inbox is kept.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// An embedded redb file.
    File(PathBuf),
    /// A PostgreSQL database, shared by every replica that names it.
    Postgres(String),
}

impl Location {
    /// From `HOOKSERVER_INBOX` or `.inbox(...)`: a `postgres://` (or `postgresql://`) URL,
    /// else a file path.
    pub(crate) fn parse(value: &str) -> Self {
        let value = value.trim();
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            Location::Postgres(value.to_owned())
        } else {
            Location::File(PathBuf::from(value))
        }
    }
}

impl fmt::Display for Location {
    /// The file, or the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(&without_password(url)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// `scheme://user:password@host/...` without the password.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// How the inbox runs its deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) location: Location,
    pub(crate) attempts: u32,
    pub(crate) backoff: Duration,
    pub(crate) workers: usize,
    pub(crate) limit: usize,
    pub(crate) dedupe_window: Duration,
    /// How long a replica holds a delivery it claimed (PostgreSQL): past it, another
    /// replica may run it. Twice the handler timeout, at least 1 s; 10 min without one.
    pub(crate) lease: Duration,
}

impl Settings {
    /// The delay after failed attempt `number` (from 1): the backoff doubled each time, at
    /// most [`MAX_QUEUE_BACKOFF`], with "equal jitter" (between half of it and all of it),
    /// so that deliveries that failed together do not all come back together.
    pub(crate) fn delay_after(&self, number: u32, random: u64) -> Duration {
        let doubled = self
            .backoff
            .saturating_mul(1u32 << number.saturating_sub(1).min(30));
        let full = doubled.min(MAX_QUEUE_BACKOFF).max(Duration::from_millis(1));
        let half = full / 2;
        let spread = u64::try_from((full - half).as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        half + Duration::from_micros(random % spread)
    }
}

/// A delivery's state in the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    /// Waiting for its first attempt.
    Queued,
    /// An attempt is running.
    Running,
    /// An attempt failed; the next one is due at `next`.
    Retrying,
    /// An attempt succeeded.
    Done,
    /// Every attempt failed, or one failed for good: kept until retried or discarded.
    Dead,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Retrying => "retrying",
            State::Done => "done",
            State::Dead => "dead",
        })
    }
}

/// How many deliveries are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Counts {
    pub(crate) queued: usize,
    pub(crate) running: usize,
    pub(crate) retrying: usize,
    pub(crate) done: usize,
    pub(crate) dead: usize,
}

impl Counts {
    pub(crate) fn of(&mut self, state: State) -> &mut usize {
        match state {
            State::Queued => &mut self.queued,
            State::Running => &mut self.running,
            State::Retrying => &mut self.retrying,
            State::Done => &mut self.done,
            State::Dead => &mut self.dead,
        }
    }

    pub(crate) fn add(&mut self, state: State) {
        *self.of(state) += 1;
    }

    pub(crate) fn remove(&mut self, state: State) {
        let count = self.of(state);
        *count = count.saturating_sub(1);
    }

    /// Deliveries not finished: queued, running or waiting for a retry.
    pub(crate) fn waiting(&self) -> usize {
        self.queued + self.running + self.retrying
    }
}

/// A delivery that passed the checks, to be stored.
#[derive(Debug)]
pub(crate) struct Arrival {
    /// The endpoint's full path.
    pub(crate) endpoint: Arc<str>,
    /// The Hub's `Webhook-Id`, when sent.
    pub(crate) webhook_id: Option<String>,
    /// What dedupe compares: `id:` and the `Webhook-Id`, else `sha256:` and the body's hash.
    pub(crate) key: String,
    pub(crate) request: StoredRequest,
    /// The payload the endpoint's check parsed, for the first attempt (a store that keeps
    /// the arrival in memory hands it on; the others drop it).
    pub(crate) parsed: Option<Box<WebhookPayload>>,
}

/// What the inbox did with an arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// Stored (durably) under this id.
    Queued(u64),
    /// The same key was accepted within the dedupe window, under this id.
    Duplicate(u64),
}

/// Why the inbox did not store an arrival: answered 503 with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error("the inbox is full ({0} deliveries waiting); try again later")]
    Full(usize),
    #[error("the inbox could not store the delivery ({0}); try again later")]
    Write(String),
}

/// A delivery claimed for an attempt.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) endpoint: String,
    pub(crate) webhook_id: Option<String>,
    /// This attempt's number, from 1.
    pub(crate) attempt: u32,
    /// Its number since the last "retry now" (what the attempt limit counts).
    pub(crate) in_round: u32,
    pub(crate) request: StoredRequest,
    /// The payload its arrival's check parsed, when the store still had it.
    pub(crate) parsed: Option<Box<WebhookPayload>>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    /// Failed; the next attempt is due at this time (ms since the epoch).
    Retry {
        error: String,
        at: u64,
    },
    /// Failed for good.
    Dead {
        error: String,
    },
}

/// A failed attempt, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failed {
    /// Its number, from 1.
    pub(crate) number: u32,
    /// When it ended (ms since the epoch).
    pub(crate) at: u64,
    pub(crate) error: String,
}

/// A stored delivery's record, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: u64,
    pub(crate) endpoint: String,
    pub(crate) webhook_id: Option<String>,
    /// When it was accepted (ms since the epoch).
    pub(crate) received: u64,
    pub(crate) state: State,
    /// Attempts so far.
    pub(crate) tries: u32,
    /// Each failed attempt's error.
    pub(crate) errors: Vec<Failed>,
    /// When the next attempt is due (ms since the epoch), while queued or retrying.
    pub(crate) next: u64,
    /// When it finished (done or dead; ms since the epoch).
    pub(crate) finished: Option<u64>,
}

/// Why an action on a stored delivery (retry, discard) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ActionError {
    #[error("no delivery {0} in the inbox")]
    NotFound(u64),
    #[error("delivery {0} is {1}: {2}")]
    Conflict(u64, State, &'static str),
    #[error("the inbox could not be written ({0})")]
    Write(String),
}

/// Where queued deliveries are kept: one implementation per storage.
pub(crate) trait Store: Send + Sync + fmt::Debug {
    /// Stores an arrival durably (or finds it a duplicate); resolves once on disk.
    fn accept(&self, arrival: Arrival) -> BoxFuture<'_, std::result::Result<Accepted, Refused>>;
    /// The next delivery due now, marked running with its attempt counted.
    fn claim(&self) -> BoxFuture<'_, std::result::Result<Option<Job>, String>>;
    /// When the next delivery is due, if any waits.
    fn next_due(&self) -> Option<SystemTime>;
    /// Records how attempt `number` ended.
    fn finish(&self, id: u64, number: u32, outcome: Outcome) -> BoxFuture<'_, ()>;
    /// Puts a running delivery back in the queue (its attempt was cut short by a stop).
    fn release(&self, id: u64);
    /// Woken when a delivery becomes due.
    fn wake(&self) -> &Notify;
    /// How many deliveries are in each state.
    fn counts(&self) -> BoxFuture<'_, std::result::Result<Counts, String>>;
    /// The newest deliveries (at most `limit`), or the dead letters only.
    fn list(
        &self,
        dead_only: bool,
        limit: usize,
    ) -> BoxFuture<'_, std::result::Result<Vec<Entry>, String>>;
    /// Queues a dead letter again, for a new round of attempts.
    fn retry(&self, id: u64) -> BoxFuture<'_, std::result::Result<(), ActionError>>;
    /// Removes a delivery that is not running.
    fn discard(&self, id: u64) -> BoxFuture<'_, std::result::Result<(), ActionError>>;
}

/// The open inbox of a server: its store and its settings.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) settings: Settings,
}

impl Inbox {
    /// Opens (or creates) the inbox the settings name: a clear error, never a panic, for a
    /// file that cannot be opened or is not an inbox.
    pub(crate) fn open(settings: Settings) -> Result<Self> {
        let opened: std::result::Result<Arc<dyn Store>, String> = match &settings.location {
            Location::File(path) => {
                embedded::Embedded::open(path, &settings).map(|s| s as Arc<dyn Store>)
            }
            #[cfg(feature = "postgres")]
            Location::Postgres(url) => {
                postgres::Postgres::open(url, &settings).map(|s| s as Arc<dyn Store>)
            }
            #[cfg(not(feature = "postgres"))]
            Location::Postgres(_) => Err(
                "this build of hookserver has no PostgreSQL inbox: enable its `postgres` feature"
                    .to_owned(),
            ),
        };
        let store = opened.map_err(|reason| Error::Inbox {
            location: settings.location.to_string(),
            reason,
        })?;
        Ok(Inbox { store, settings })
    }
}

/// Now, in ms since the epoch.
pub(crate) fn now_ms() -> u64 {
    ms_of(SystemTime::now())
}

pub(crate) fn ms_of(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) fn time_of(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(backoff: Duration) -> Settings {
        Settings {
            location: Location::File(PathBuf::new()),
            attempts: DEFAULT_QUEUE_ATTEMPTS,
            backoff,
            workers: 1,
            limit: 10,
            dedupe_window: DEFAULT_DEDUPE_WINDOW,
            lease: Duration::from_secs(120),
        }
    }

    #[test]
    fn a_database_url_is_shown_without_its_password() {
        let url = Location::parse("postgres://bot:s3cret@db.internal:5432/hooks?sslmode=disable");
        assert_eq!(
            url.to_string(),
            "postgres://bot:***@db.internal:5432/hooks?sslmode=disable"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(
            Location::parse("postgresql://db/x").to_string(),
            "postgresql://db/x"
        );
        assert_eq!(
            Location::parse("postgres://me@db/x").to_string(),
            "postgres://me@db/x"
        );
        assert_eq!(
            Location::parse(" inbox.redb "),
            Location::File(PathBuf::from("inbox.redb"))
        );
    }

    #[test]
    fn delays_double_with_jitter_up_to_an_hour() {
        let s = settings(Duration::from_secs(1));
        for (number, full) in [(1, 1), (2, 2), (3, 4), (8, 128), (13, 3600), (40, 3600)] {
            let full = Duration::from_secs(full);
            let low = s.delay_after(number, 0);
            let high = s.delay_after(number, u64::MAX - 1);
            assert_eq!(low, full / 2, "attempt {number}");
            assert!(
                high <= full && high > full / 2,
                "attempt {number}: {high:?}"
            );
        }
        let fast = settings(Duration::from_millis(200));
        assert_eq!(fast.delay_after(1, 0), Duration::from_millis(100));
    }
}
