//! A running server's tie to the Hub: registered at launch (the Hub's API is called on the
//! blocking pool), registered again in the background after a failure that may pass (the
//! Hub down, unreachable), and left as [`OnExit`](super::OnExit) says when it stops.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{HubError, HubWebhook, Plan, Registered, UrlKind};
use crate::logging::{say, say_err};

/// The first wait before registering again after a failure that may pass; it doubles.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
const LAST_RETRY: Duration = Duration::from_secs(300);

/// The webhooks registered so far, shared with the background retry and the handle.
#[derive(Debug, Clone, Default)]
pub(crate) struct HubLink {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    registered: Option<Registered>,
    /// The server stopped: a registration that ends now is left at once.
    left: bool,
}

/// What a launch says of its registration.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// `Registered on the Hub: ...`, one line per webhook.
    pub(crate) said: Vec<String>,
    pub(crate) warning: Option<String>,
}

impl HubError {
    /// Whether trying again later may succeed (the Hub down or unreachable).
    fn may_pass(&self) -> bool {
        match self {
            HubError::Unreachable { .. } => true,
            HubError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

impl HubLink {
    /// Registers; after a failure that may pass, keeps trying in the background (waits
    /// from 1 s doubling up to 5 min) unless the registration is required. `Err` only
    /// when it is required.
    pub(crate) async fn start(
        plan: &Plan,
        base_url: &str,
        kind: UrlKind,
        secret: Option<String>,
    ) -> Result<(HubLink, Report), HubError> {
        let link = HubLink::default();
        match register(plan, base_url, kind, secret.clone()).await {
            Ok(registered) => {
                let report = Report {
                    said: registered.lines.clone(),
                    warning: None,
                };
                link.keep(registered);
                Ok((link, report))
            }
            Err(err) if plan.required => Err(err),
            Err(err) => {
                let retry = err.may_pass();
                let warning = if retry {
                    format!("warning: not registered on the Hub yet: {err}. The server runs on and tries again in the background.")
                } else {
                    format!(
                        "warning: not registered on the Hub: {err}. The server runs on without it."
                    )
                };
                if retry {
                    actix_web::rt::spawn(link.clone().retry(
                        plan.clone(),
                        base_url.to_owned(),
                        kind,
                        secret,
                    ));
                }
                Ok((
                    link,
                    Report {
                        said: Vec::new(),
                        warning: Some(warning),
                    },
                ))
            }
        }
    }

    async fn retry(self, plan: Plan, base_url: String, kind: UrlKind, secret: Option<String>) {
        let mut wait = FIRST_RETRY;
        loop {
            actix_web::rt::time::sleep(wait).await;
            match register(&plan, &base_url, kind, secret.clone()).await {
                Ok(registered) => {
                    for line in &registered.lines {
                        say(line);
                    }
                    self.keep(registered);
                    if self.lock().left {
                        self.leave().await;
                    }
                    return;
                }
                Err(err) if err.may_pass() => {
                    tracing::warn!(error = %err, retry_in = ?wait * 2, "registration on the Hub failed");
                }
                Err(err) => {
                    say_err(&format!("warning: not registered on the Hub: {err}."));
                    return;
                }
            }
            wait = (wait * 2).min(LAST_RETRY);
        }
    }

    fn keep(&self, registered: Registered) {
        self.lock().registered = Some(registered);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The webhooks registered so far.
    pub(crate) fn webhooks(&self) -> Vec<HubWebhook> {
        self.lock()
            .registered
            .as_ref()
            .map_or_else(Vec::new, |r| r.webhooks.clone())
    }

    /// Leaves the registered webhooks as [`OnExit`](super::OnExit) says, and says so.
    pub(crate) async fn leave(self) {
        let taken = {
            let mut state = self.lock();
            state.left = true;
            state.registered.take()
        };
        let Some(registered) = taken else {
            return;
        };
        let said = actix_web::rt::task::spawn_blocking(move || registered.exit())
            .await
            .unwrap_or_default();
        for line in said {
            if line.starts_with("warning") {
                say_err(&line);
            } else {
                say(&line);
            }
        }
    }
}

/// Registers on the blocking pool (the Hub's API is called synchronously).
async fn register(
    plan: &Plan,
    base_url: &str,
    kind: UrlKind,
    secret: Option<String>,
) -> Result<Registered, HubError> {
    let plan = plan.clone();
    let hub = plan.hub_url.clone();
    let base_url = base_url.to_owned();
    actix_web::rt::task::spawn_blocking(move || plan.register(&base_url, kind, secret.as_deref()))
        .await
        .unwrap_or_else(|_| {
            Err(HubError::Unreachable {
                hub,
                detail: "the registration stopped unexpectedly".to_owned(),
            })
        })
}
