//! Reading a request's body: within a size limit and a time limit, or off the connection
//! unread. The endpoints and the dashboard read theirs the same way.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use actix_web::web::{self, Bytes, BytesMut};

use crate::rejection::Rejection;

/// The whole body, within `limit` bytes and `timeout` from `since` (when the request
/// arrived: the deadline costs no clock reading of its own); the failure as a
/// [`Rejection`] (400 unreadable, 413 too large, 408 too slow).
///
/// A body that has come by the second poll costs no timer. actix-web's HTTP/1 dispatcher
/// (hookserver serves no other) polls a handler as soon as a request's head is parsed,
/// before it hands over the body bytes read with it, and polls it again in the same turn;
/// a delivery's body has usually come by then. A body still incomplete at the second poll
/// is read within the deadline.
/// (`tests/hostile`'s `a_content_length_that_lies` checks that a request whose body never
/// comes is answered 408.)
pub(crate) async fn read_limited(
    payload: web::Payload,
    limit: usize,
    timeout: Duration,
    since: Instant,
) -> Result<Bytes, Rejection> {
    let mut read = pin!(collect(payload, limit));
    let mut first = true;
    let early = poll_fn(|cx| match read.as_mut().poll(cx) {
        Poll::Ready(read) => Poll::Ready(Some(read)),
        Poll::Pending if std::mem::take(&mut first) => Poll::Pending,
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    if let Some(read) = early {
        return read;
    }
    let Some(deadline) = since.checked_add(timeout) else {
        // Past what the clock can hold (`Duration::MAX`, say): no limit, as tokio's own
        // `timeout` reads it.
        return read.await;
    };
    let deadline = tokio::time::Instant::from_std(deadline);
    match tokio::time::timeout_at(deadline, read).await {
        Ok(read) => read,
        Err(_) => Err(Rejection::BodyTimeout(timeout)),
    }
}

/// The body's chunks, within `limit` bytes. A body that came in one chunk (a delivery
/// usually does) is that chunk, not a copy.
async fn collect(mut payload: web::Payload, limit: usize) -> Result<Bytes, Rejection> {
    use futures_util::StreamExt;
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut len = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| Rejection::BodyRead(err.to_string()))?;
        len = len.saturating_add(chunk.len());
        if len > limit {
            return Err(Rejection::TooLarge { limit });
        }
        match (&mut joined, first.take()) {
            (Some(joined), _) => joined.extend_from_slice(&chunk),
            (None, Some(earlier)) => {
                let mut both = BytesMut::with_capacity(len);
                both.extend_from_slice(&earlier);
                both.extend_from_slice(&chunk);
                joined = Some(both);
            }
            (None, None) => first = Some(chunk),
        }
    }
    Ok(match joined {
        Some(joined) => joined.freeze(),
        None => first.unwrap_or_default(),
    })
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
