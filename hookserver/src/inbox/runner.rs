//! Running queued deliveries: on a thread of their own (never the HTTP workers), at most
//! `workers` attempts at once, each guarded and timed as an inline handler is; a failed
//! attempt comes back after a backoff, the last one makes a dead letter.

use std::cell::RefCell;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use actix_web::HttpResponse;
use futures_util::FutureExt;
use tokio::sync::{watch, Semaphore};

use super::{ms_of, Inbox, Job, Outcome, Settings, Store};
use crate::endpoint::delivery::Delivery;
use crate::endpoint::queued::{Attempt, AttemptError, PermanentFailure};
use crate::endpoint::run::{panic_message, run_handler};
use crate::endpoint::{Table, WEBHOOKS_PREFIX};
use crate::logging::{self, INBOX_TARGET};
use crate::metrics::Metrics;

/// The longest the runner sleeps without looking at the schedule.
const IDLE: Duration = Duration::from_secs(30);

/// How long the queue rests after a failure of its own (a panic outside any handler), so
/// that one that repeats cannot spin.
const REST: Duration = Duration::from_secs(1);

/// The running queue of a server; [`stop`](Self::stop) ends it.
#[derive(Debug)]
pub(crate) struct Runner {
    /// `Some(grace)` once stopping: how long running attempts may take to finish.
    stop: watch::Sender<Option<Duration>>,
    thread: Option<JoinHandle<()>>,
}

impl Runner {
    /// Starts running the inbox's deliveries with the server's endpoints.
    pub(crate) fn start(
        inbox: &Inbox,
        table: Table,
        handler_timeout: Option<Duration>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (stop, stopping) = watch::channel(None);
        let store = Arc::clone(&inbox.store);
        let settings = inbox.settings.clone();
        // Built here, so that a runtime that cannot start (no file descriptors left, say)
        // fails the launch instead of leaving stored deliveries unrun.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("hookserver-queue".to_owned())
            .spawn(move || {
                let table = Rc::new(table);
                // Served again after a failure of its own: stored deliveries are never left
                // unrun behind their 202s while the server goes on accepting.
                loop {
                    let running: Rc<RefCell<HashSet<u64>>> = Rc::default();
                    let queue = Queue {
                        store: Arc::clone(&store),
                        settings: settings.clone(),
                        table: Rc::clone(&table),
                        handler_timeout,
                        running: Rc::clone(&running),
                        metrics: Arc::clone(&metrics),
                    };
                    let served = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        tokio::task::LocalSet::new()
                            .block_on(&runtime, queue.serve(stopping.clone()));
                    }));
                    let Err(panic) = served else { break };
                    let cut: Vec<u64> = running.borrow_mut().drain().collect();
                    tracing::error!(
                        panic = %panic_message(&*panic),
                        attempts = cut.len(),
                        "the queue failed (a bug of hookserver's); it starts again in 1 s, and the deliveries it was running go back to the queue"
                    );
                    for id in cut {
                        store.release(id);
                    }
                    if runtime.block_on(stopped_within(REST, stopping.clone())) {
                        break;
                    }
                }
            })?;
        Ok(Runner {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops taking deliveries, lets running attempts finish within `grace` (those cut
    /// short go back to the queue), and returns when the queue's thread has ended.
    pub(crate) fn stop(mut self, grace: Duration) {
        self.stop.send_replace(Some(grace));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.send_replace(Some(Duration::ZERO));
            let _ = thread.join();
        }
    }
}

/// Waits `rest`; whether the server is stopping (before or meanwhile).
async fn stopped_within(rest: Duration, mut stopping: watch::Receiver<Option<Duration>>) -> bool {
    if stopping.borrow().is_some() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(rest) => stopping.borrow().is_some(),
        _ = stopping.changed() => true,
    }
}

struct Queue {
    store: Arc<dyn Store>,
    settings: Settings,
    table: Rc<Table>,
    handler_timeout: Option<Duration>,
    /// The deliveries with an attempt running now.
    running: Rc<RefCell<HashSet<u64>>>,
    metrics: Arc<Metrics>,
}

impl Queue {
    async fn serve(self, mut stopping: watch::Receiver<Option<Duration>>) {
        let workers = self.settings.workers.max(1);
        let permits = Arc::new(Semaphore::new(workers));
        let this = Rc::new(self);
        loop {
            if stopping.borrow().is_some() {
                break;
            }
            let permit = tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => permit.expect("never closed"),
                _ = stopping.changed() => break,
            };
            // Listen before looking, so that a delivery stored meanwhile wakes us.
            let woken = this.store.wake().notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            match this.store.claim().await {
                Ok(Some(job)) => {
                    this.running.borrow_mut().insert(job.id);
                    let queue = Rc::clone(&this);
                    tokio::task::spawn_local(async move {
                        let id = job.id;
                        // A handler's panic is caught inside the attempt: one here is
                        // hookserver's own. The delivery goes back to the queue, and this
                        // slot rests, so that a panic that repeats cannot spin.
                        let failed = AssertUnwindSafe(queue.attempt(job)).catch_unwind().await;
                        queue.running.borrow_mut().remove(&id);
                        if let Err(panic) = failed {
                            tracing::error!(
                                delivery = id,
                                panic = %panic_message(&*panic),
                                "the queue failed running a delivery (a bug of hookserver's); it goes back to the queue"
                            );
                            queue.store.release(id);
                            queue.store.wake().notify_one();
                            tokio::time::sleep(REST).await;
                        }
                        drop(permit);
                    });
                }
                Ok(None) => {
                    drop(permit);
                    let wait = this.store.next_due().map_or(IDLE, |due| {
                        due.duration_since(SystemTime::now())
                            .unwrap_or_default()
                            .min(IDLE)
                    });
                    tokio::select! {
                        () = &mut woken => {}
                        () = tokio::time::sleep(wait) => {}
                        _ = stopping.changed() => break,
                    }
                }
                Err(err) => {
                    drop(permit);
                    tracing::error!(error = %err, "the queue could not read the inbox; trying again in 1 s");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stopping.changed() => break,
                    }
                }
            }
        }
        let grace = stopping.borrow().unwrap_or_default();
        let all = u32::try_from(workers).unwrap_or(u32::MAX);
        if tokio::time::timeout(grace, permits.acquire_many(all))
            .await
            .is_err()
        {
            let cut: Vec<u64> = this.running.borrow().iter().copied().collect();
            tracing::warn!(
                attempts = cut.len(),
                "attempts still running at the end of the shutdown timeout go back to the queue"
            );
            for id in cut {
                this.store.release(id);
            }
        }
    }

    async fn attempt(&self, job: Job) {
        let name = job.endpoint.strip_prefix(WEBHOOKS_PREFIX).unwrap_or("");
        let (id, number, in_round) = (job.id, job.attempt, job.in_round);
        let outcome = match self.table.get(name).filter(|e| e.queue.is_some()) {
            None => Outcome::Dead {
                error: format!("no queued endpoint at {} any more", job.endpoint),
            },
            Some(endpoint) => {
                let attempt = Attempt {
                    delivery_id: Some(id.to_string()),
                    webhook_id: job.webhook_id,
                    number,
                };
                let delivery = Delivery::stored(job.request, attempt, job.parsed);
                let response = run_handler(endpoint, &delivery, self.handler_timeout).await;
                self.judge(response, in_round).await
            }
        };
        let counted = match &outcome {
            Outcome::Done => "done",
            Outcome::Retry { .. } => "retry",
            Outcome::Dead { .. } => "dead",
        };
        self.metrics.attempt(&job.endpoint, counted);
        match &outcome {
            Outcome::Done => {
                logging::attempt_done(id, &job.endpoint, number);
            }
            Outcome::Retry { error, at } => {
                let wait = at.saturating_sub(ms_of(SystemTime::now()));
                tracing::warn!(target: INBOX_TARGET, id, endpoint = %job.endpoint, attempt = number, %error, retry_in_ms = wait, "attempt failed");
            }
            Outcome::Dead { error } => {
                tracing::error!(target: INBOX_TARGET, id, endpoint = %job.endpoint, attempt = number, %error, "delivery is a dead letter");
            }
        }
        self.store.finish(id, number, outcome).await;
    }

    /// What an attempt's answer means: done (2xx), a retry after the backoff, or a dead
    /// letter (a permanent failure, or the last attempt of the round).
    async fn judge(&self, response: HttpResponse, in_round: u32) -> Outcome {
        if response.status().is_success() {
            return Outcome::Done;
        }
        let permanent = response.extensions().contains::<PermanentFailure>();
        let told = response
            .extensions()
            .get::<AttemptError>()
            .map(|e| e.0.clone());
        let error = match told {
            Some(error) => error,
            None => error_of(response).await,
        };
        if permanent {
            Outcome::Dead {
                error: format!("permanent failure: {error}"),
            }
        } else if in_round >= self.settings.attempts {
            Outcome::Dead { error }
        } else {
            let random = getrandom::u64().unwrap_or(0);
            let delay = self.settings.delay_after(in_round, random);
            Outcome::Retry {
                error,
                at: ms_of(SystemTime::now() + delay),
            }
        }
    }
}

/// The error an answer carries: `{"error": ...}`'s text, else the start of its body, else
/// its status.
async fn error_of(response: HttpResponse) -> String {
    let status = response.status();
    let body = actix_web::body::to_bytes(response.into_body())
        .await
        .unwrap_or_default();
    let said = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned());
    if said.trim().is_empty() {
        format!("the handler answered {status}")
    } else {
        said
    }
}

#[cfg(test)]
mod tests;
