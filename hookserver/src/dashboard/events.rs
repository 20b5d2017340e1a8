//! `GET /api/events`: each new delivery, live (Server-Sent Events), to a bounded number of
//! open streams.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use tokio::sync::watch;

use super::access::guard;
use super::{ApiError, ApiResult, Dashboard};
use crate::deliveries::Record;
use crate::http::Shared;

/// How often an idle event stream sends a comment: proxies keep it open, and a client
/// that went away is noticed (the write fails) within a few seconds.
const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// One open event stream, counted while it lives.
struct StreamSlot(Arc<AtomicUsize>);

impl StreamSlot {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        let taken = open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        taken.then(|| StreamSlot(Arc::clone(open)))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) async fn stream(
    req: HttpRequest,
    shared: web::Data<Shared>,
    dashboard: web::Data<Dashboard>,
) -> ApiResult {
    guard(&req, &shared, &dashboard)?;
    let Some(slot) = StreamSlot::take(&dashboard.streams, dashboard.max_streams) else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} live event streams are open already (the most the server keeps): close a dashboard tab, or raise HOOKSERVER_EVENT_STREAMS",
                dashboard.max_streams
            ),
        )
        .retry_after(5));
    };
    struct State {
        deliveries: tokio::sync::broadcast::Receiver<Arc<Record>>,
        closing: watch::Receiver<bool>,
        started: bool,
        _slot: StreamSlot,
    }
    let state = State {
        deliveries: shared.deliveries.subscribe(),
        closing: dashboard.closing.subscribe(),
        started: false,
        _slot: slot,
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        use tokio::sync::broadcast::error::RecvError;
        if !state.started {
            state.started = true;
            let hello = Bytes::from_static(b"retry: 2000\n: live\n\n");
            return Some((Ok::<_, actix_web::Error>(hello), state));
        }
        if *state.closing.borrow_and_update() {
            return None;
        }
        let event = tokio::select! {
            received = state.deliveries.recv() => match received {
                Ok(record) => {
                    let data = serde_json::to_string(&record.summary()).unwrap_or_default();
                    format!("event: delivery\ndata: {data}\n\n")
                }
                // Too slow a reader: it missed some, and reloads the list.
                Err(RecvError::Lagged(missed)) => format!("event: lagged\ndata: {missed}\n\n"),
                Err(RecvError::Closed) => return None,
            },
            _ = state.closing.changed() => return None,
            () = actix_web::rt::time::sleep(KEEP_ALIVE) => ": keep-alive\n\n".to_owned(),
        };
        Some((Ok(Bytes::from(event)), state))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(events))
}
