//! The builder's settings of endpoints beyond their path: `add_queued_webhook`, `filter`,
//! and the inbox's (the file, the attempts and their backoff, the pool, the bound and the
//! dedupe window).

use std::sync::Arc;
use std::time::Duration;

use super::{short_type_name, WebhooksServer};
use crate::endpoint::filter::Filter;
use crate::endpoint::queued::QueuedHandler;
use crate::endpoint::{normalize_path, Endpoint, WEBHOOKS_PREFIX};
use crate::error::Result;

/// What the builder said of the inbox (`None`: the environment's, else the default).
#[derive(Debug, Clone, Default)]
pub(super) struct QueueOptions {
    pub(super) inbox: Option<String>,
    pub(super) attempts: Option<u32>,
    pub(super) backoff: Option<Duration>,
    pub(super) workers: Option<usize>,
    pub(super) limit: Option<usize>,
    pub(super) dedupe_window: Option<Duration>,
}

impl WebhooksServer {
    /// Serves `handler` at `POST /webhooks/NAME` as a *queued* endpoint, as
    /// `#[webhook_endpoint(queue)]` does: each delivery is checked, stored in the inbox,
    /// answered `202 {"queued": ID}`, and run on the queue's own pool with retries (see
    /// the README's "Queued endpoints").
    ///
    /// # Errors
    ///
    /// The errors of [`add_webhook`](Self::add_webhook).
    ///
    /// ```
    /// use hookserver::{Failure, WebhookPayload, WebhooksServer};
    ///
    /// let mut app = WebhooksServer::empty();
    /// app.add_queued_webhook("index", |payload: WebhookPayload| async move {
    ///     if payload.repo.name.is_empty() {
    ///         return Err(Failure::permanent("no repo"));
    ///     }
    ///     Ok(())
    /// })?;
    /// # Ok::<(), hookserver::Error>(())
    /// ```
    pub fn add_queued_webhook<M, H: QueuedHandler<M>>(
        &mut self,
        path: &str,
        handler: H,
    ) -> Result<&mut Self> {
        let path = normalize_path(path)?;
        let name = short_type_name(std::any::type_name::<H>()).to_owned();
        self.endpoints.add(Endpoint {
            path: format!("{WEBHOOKS_PREFIX}{path}").into(),
            origin: name.clone(),
            name,
            handler: Arc::new(move |delivery| handler.call(delivery)),
            queue: Some(H::check),
            filter: None,
        })?;
        Ok(self)
    }

    /// Takes only the deliveries `filter` admits at the endpoint `path` (registered with
    /// `#[webhook_endpoint]` or `add_webhook`); the others are answered
    /// `200 {"ignored": "<why>"}` (a 2xx: the Hub does not retry them), recorded, and reach
    /// neither the handler nor the inbox. See [`Filter`](crate::Filter).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidFilter`](crate::Error::InvalidFilter) for a path with no endpoint, or
    /// a checked value the Hub does not document (with the documented ones).
    ///
    /// ```
    /// use hookserver::{Filter, WebhooksServer};
    ///
    /// let mut app = WebhooksServer::empty();
    /// app.add_webhook("retrain", || async {})?;
    /// app.filter("retrain", Filter::new().scope(["repo.content"]).repo_type(["dataset"]))?;
    /// assert!(app.filter("retrain", Filter::new().action(["udpate"])).is_err());
    /// # Ok::<(), hookserver::Error>(())
    /// ```
    pub fn filter(&mut self, path: &str, filter: Filter) -> Result<&mut Self> {
        let full = format!("{WEBHOOKS_PREFIX}{}", normalize_path(path)?);
        let invalid = |reason: String| crate::Error::InvalidFilter {
            path: full.clone(),
            reason,
        };
        filter.check_values().map_err(invalid)?;
        let Some(endpoint) = self.endpoints.get_mut(&full) else {
            return Err(invalid("no endpoint is registered there".to_owned()));
        };
        endpoint.filter = (!filter.is_empty()).then(|| Arc::new(filter));
        Ok(self)
    }

    /// The inbox file of the queued endpoints (else `HOOKSERVER_INBOX`, else
    /// `hookserver-inbox.redb` in the working directory, or in `/data` on a Space with
    /// persistent storage). Opened at launch only when an endpoint is queued. Its log is
    /// kept beside it, the same name with `-wal` added: keep the two together.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::new().inbox("/var/lib/bot/inbox.redb");
    /// ```
    #[must_use]
    pub fn inbox(mut self, file: impl Into<String>) -> Self {
        self.queue.inbox = Some(file.into());
        self
    }

    /// How many attempts a queued delivery gets before it is a dead letter (else
    /// `HOOKSERVER_QUEUE_ATTEMPTS`, else 8; at least 1).
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::new().queue_attempts(3);
    /// ```
    #[must_use]
    pub fn queue_attempts(mut self, attempts: u32) -> Self {
        self.queue.attempts = Some(attempts);
        self
    }

    /// The delay before the second attempt, doubled for each next one up to an hour, with
    /// jitter (else `HOOKSERVER_QUEUE_BACKOFF`, else 1 s).
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::new().queue_backoff(std::time::Duration::from_millis(200));
    /// ```
    #[must_use]
    pub fn queue_backoff(mut self, first_delay: Duration) -> Self {
        self.queue.backoff = Some(first_delay);
        self
    }

    /// How many queued attempts run at once, on the queue's own thread (else
    /// `HOOKSERVER_QUEUE_WORKERS`, else 4; at least 1, and at most `u32::MAX`). Plain-fn
    /// handlers run on the blocking pool.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::new().queue_workers(8);
    /// ```
    #[must_use]
    pub fn queue_workers(mut self, workers: usize) -> Self {
        self.queue.workers = Some(workers);
        self
    }

    /// How many deliveries may wait (queued, running or retrying) before a new one is
    /// answered 503 with `Retry-After` (else `HOOKSERVER_QUEUE_LIMIT`, else 100,000).
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::new().queue_limit(10_000);
    /// ```
    #[must_use]
    pub fn queue_limit(mut self, waiting: usize) -> Self {
        self.queue.limit = Some(waiting);
        self
    }

    /// How long a `Webhook-Id` (or a body's hash) is remembered to answer a repeat
    /// `200 {"duplicate": ID}` (else `HOOKSERVER_DEDUPE_WINDOW`, else 7 days; at least
    /// 1 ms).
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::new().dedupe_window(std::time::Duration::from_secs(24 * 3600));
    /// ```
    #[must_use]
    pub fn dedupe_window(mut self, window: Duration) -> Self {
        self.queue.dedupe_window = Some(window);
        self
    }
}
