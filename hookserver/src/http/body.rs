//! Reading a request's body: within a size limit and a time limit, or off the connection
//! unread. The endpoints and the dashboard read theirs the same way.

use std::time::Duration;

use actix_web::web::{self, Bytes};

use crate::rejection::Rejection;

/// The whole body, within `limit` bytes and `timeout`; the failure as a [`Rejection`]
/// (400 unreadable, 413 too large, 408 too slow).
pub(crate) async fn read_limited(
    payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, Rejection> {
    match actix_web::rt::time::timeout(timeout, payload.to_bytes_limited(limit)).await {
        Ok(Ok(Ok(body))) => Ok(body),
        Ok(Ok(Err(err))) => Err(Rejection::BodyRead(err.to_string())),
        Ok(Err(_)) => Err(Rejection::TooLarge { limit }),
        Err(_) => Err(Rejection::BodyTimeout(timeout)),
    }
}

/// Reads a body that will not be used, without keeping it, when its declared length is
/// within the limit; otherwise the connection is closed after the answer, as actix-web
/// does with an unread body. (actix-web answers `Expect: 100-continue` before any handler
/// runs, so such a client sends its body too.)
pub(crate) async fn drain(mut payload: web::Payload, declared: Option<u64>, limit: usize) {
    use futures_util::StreamExt;
    if declared.is_none_or(|len| len > limit as u64) {
        return;
    }
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = payload.next().await {
        seen += chunk.len();
        if seen > limit {
            return;
        }
    }
}
