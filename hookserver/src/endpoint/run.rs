//! Running a handler: guarded against panics, within the handler timeout. A delivery, a
//! test delivery and a replay all go through here.

use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use actix_web::{HttpResponse, ResponseError};
use futures_util::FutureExt;

use crate::endpoint::delivery::Delivery;
use crate::endpoint::queued::AttemptError;
use crate::endpoint::Endpoint;
use crate::rejection::Rejection;

/// Runs an endpoint's handler on a delivery, guarded against panics and within the
/// handler timeout: a delivery, a test delivery and a replay all go through here.
pub(crate) async fn run_handler(
    endpoint: &Endpoint,
    delivery: &Delivery,
    timeout: Option<Duration>,
) -> HttpResponse {
    let mut guarded = pin!(AssertUnwindSafe((endpoint.handler)(delivery)).catch_unwind());
    let answered = match timeout {
        // Most handlers answer at their first poll: they cost no timer.
        Some(limit) => match poll_fn(|cx| Poll::Ready(guarded.as_mut().poll(cx))).await {
            Poll::Ready(answer) => Ok(answer),
            Poll::Pending => actix_web::rt::time::timeout(limit, guarded)
                .await
                .map_err(|_| limit),
        },
        None => Ok(guarded.await),
    };
    match answered {
        Ok(Ok(response)) => response,
        Err(limit) => {
            tracing::error!(endpoint = %endpoint.name, timeout = ?limit, "webhook handler did not answer in time");
            Rejection::HandlerTimeout(limit).error_response()
        }
        Ok(Err(panic)) => {
            let message = panic_message(panic.as_ref());
            tracing::error!(endpoint = %endpoint.name, panic = %message, "webhook handler panicked");
            let mut response = Rejection::HandlerPanicked.error_response();
            // A queued delivery's dead letter keeps why (never sent to the caller).
            response
                .extensions_mut()
                .insert(AttemptError(format!("the handler panicked: {message}")));
            response
        }
    }
}

/// A panic's message, when it is text.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}
