//! The inbox's JSON API: counts by state and the newest deliveries, the dead letters, and
//! the two actions on one ("retry now", "discard").

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use serde::Serialize;

use super::access::{guard, same_origin};
use super::api::json;
use super::{ApiError, ApiResult, Dashboard};
use crate::http::Shared;
use crate::inbox::{time_of, ActionError, Entry, Inbox, State};

/// How many deliveries `GET /api/inbox` lists, newest first.
const LISTED: usize = 100;
/// How many dead letters `GET /api/inbox/dead` lists at most, newest first.
const LISTED_DEAD: usize = 1000;

/// One delivery of the inbox as the API shows it.
#[derive(Debug, Serialize)]
struct EntryView<'e> {
    id: String,
    endpoint: &'e str,
    webhook_id: Option<&'e str>,
    state: State,
    received: String,
    attempts: u32,
    /// Each failed attempt: its number, when it ended, and why it failed.
    errors: Vec<AttemptView<'e>>,
    /// When the next attempt is due (queued or retrying).
    next: Option<String>,
    finished: Option<String>,
}

#[derive(Debug, Serialize)]
struct AttemptView<'e> {
    attempt: u32,
    at: String,
    error: &'e str,
}

fn time(ms: u64) -> String {
    humantime::format_rfc3339_millis(time_of(ms)).to_string()
}

fn view(entry: &Entry) -> EntryView<'_> {
    EntryView {
        id: entry.id.to_string(),
        endpoint: &entry.endpoint,
        webhook_id: entry.webhook_id.as_deref(),
        state: entry.state,
        received: time(entry.received),
        attempts: entry.tries,
        errors: entry
            .errors
            .iter()
            .map(|failed| AttemptView {
                attempt: failed.number,
                at: time(failed.at),
                error: &failed.error,
            })
            .collect(),
        next: matches!(entry.state, State::Queued | State::Retrying).then(|| time(entry.next)),
        finished: entry.finished.map(time),
    }
}

fn inbox_of(shared: &Shared) -> Result<&Inbox, ApiError> {
    shared.inbox.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no endpoint is queued: this server has no inbox",
        )
    })
}

/// `GET /api/inbox`: counts by state, and the newest deliveries.
pub(super) async fn summary(
    req: HttpRequest,
    shared: web::Data<Shared>,
    dashboard: web::Data<Dashboard>,
) -> ApiResult {
    guard(&req, &shared, &dashboard)?;
    let inbox = inbox_of(&shared)?;
    let entries = inbox.store.list(false, LISTED).await.map_err(read_error)?;
    let counts = inbox.store.counts().await.map_err(read_error)?;
    json(&serde_json::json!({
        "counts": counts,
        "deliveries": entries.iter().map(view).collect::<Vec<_>>(),
        "settings": {
            "inbox": inbox.settings.location.to_string(),
            "attempts": inbox.settings.attempts,
            // u128 is past JSON's integers (serde_json refuses it): a `Duration::MAX` set
            // as the backoff shows as u64::MAX ms.
            "backoff_ms": u64::try_from(inbox.settings.backoff.as_millis()).unwrap_or(u64::MAX),
            "workers": inbox.settings.workers,
            "limit": inbox.settings.limit,
            "dedupe_window_s": inbox.settings.dedupe_window.as_secs(),
        },
    }))
}

/// `GET /api/inbox/dead`: the dead letters with every attempt's error, newest first.
pub(super) async fn dead(
    req: HttpRequest,
    shared: web::Data<Shared>,
    dashboard: web::Data<Dashboard>,
) -> ApiResult {
    guard(&req, &shared, &dashboard)?;
    let inbox = inbox_of(&shared)?;
    let entries = inbox
        .store
        .list(true, LISTED_DEAD)
        .await
        .map_err(read_error)?;
    json(&serde_json::json!({
        "dead": entries.iter().map(view).collect::<Vec<_>>(),
    }))
}

/// What can be done to one stored delivery.
#[derive(Debug, Clone, Copy)]
pub(super) enum Action {
    /// `POST /api/inbox/{id}/retry`: a dead letter gets a new round of attempts now.
    Retry,
    /// `DELETE /api/inbox/{id}`: removes a delivery that is not running.
    Discard,
}

/// Does `action` to the delivery `id`, with the API's access rules and the same-origin check.
pub(super) async fn act(
    req: &HttpRequest,
    shared: &Shared,
    dashboard: &Dashboard,
    id: &str,
    action: Action,
) -> ApiResult {
    guard(req, shared, dashboard)?;
    same_origin(req, dashboard)?;
    let id = id_of(id)?;
    let store = &inbox_of(shared)?.store;
    let (done, word) = match action {
        Action::Retry => (store.retry(id).await, "retried"),
        Action::Discard => (store.discard(id).await, "discarded"),
    };
    done.map_err(action_error)?;
    json(&serde_json::json!({ word: id.to_string() }))
}

fn id_of(raw: &str) -> Result<u64, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no delivery {raw:?} in the inbox: ids are whole numbers"),
        )
    })
}

fn read_error(err: String) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the inbox could not be read ({err})"),
    )
    .retry_after(5)
}

fn action_error(err: ActionError) -> ApiError {
    let status = match err {
        ActionError::NotFound(_) => StatusCode::NOT_FOUND,
        ActionError::Conflict(..) => StatusCode::CONFLICT,
        ActionError::Write(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError::new(status, err.to_string())
}
