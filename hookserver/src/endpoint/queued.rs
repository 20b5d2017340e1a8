//! What queued handlers take and give: [`Attempt`] (the delivery id, the `Webhook-Id`, the
//! attempt number), the parameters a stored delivery can fill ([`QueuedParam`]), the
//! answers a queued handler gives ([`QueuedReturn`], [`Failure`]), and the fns
//! `add_queued_webhook` takes ([`QueuedHandler`]).

use std::any::Any;
use std::fmt::{self, Display};
use std::future::{ready, Future, Ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;

use crate::endpoint::delivery::{Delivery, FromDelivery};
use crate::endpoint::handler::{run_blocking, HandlerFuture};
use crate::endpoint::params::{HttpRequest, Json};
use crate::payload::WebhookPayload;
use crate::rejection::{json_error, Rejection};

/// The header the Hub sends with every delivery: unique per delivery, the same on each
/// retry and on a replay from the Hub's settings.
///
/// ```
/// assert_eq!(hookserver::WEBHOOK_ID_HEADER, "webhook-id");
/// ```
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";

/// Which delivery a handler runs for, and which attempt this is.
///
/// Every handler can take it. For an inline endpoint, [`delivery_id`](Self::delivery_id)
/// is `None` and [`number`](Self::number) is 1; for a queued one, the id is the one the
/// `202 {"queued": ID}` answer named, and the number counts from 1 on each attempt
/// (an attempt cut short by a crash counts too). A handler that must not act twice on
/// one event keys its effects on [`webhook_id`](Self::webhook_id) (or the delivery id).
///
/// ```
/// use hookserver::{webhook_endpoint, Attempt, WebhookPayload};
///
/// #[webhook_endpoint(queue)]
/// async fn index(payload: WebhookPayload, attempt: Attempt) {
///     println!("{} attempt {} ({:?})", payload.repo.name, attempt.number(), attempt.webhook_id());
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub(crate) delivery_id: Option<String>,
    pub(crate) webhook_id: Option<String>,
    pub(crate) number: u32,
}

impl Attempt {
    /// The inbox's id of a queued delivery; `None` inline.
    #[must_use]
    pub fn delivery_id(&self) -> Option<&str> {
        self.delivery_id.as_deref()
    }

    /// The Hub's `Webhook-Id` header, when the delivery carried one.
    #[must_use]
    pub fn webhook_id(&self) -> Option<&str> {
        self.webhook_id.as_deref()
    }

    /// The attempt's number, from 1.
    #[must_use]
    pub fn number(&self) -> u32 {
        self.number
    }

    /// Whether the delivery came through the inbox.
    #[must_use]
    pub fn is_queued(&self) -> bool {
        self.delivery_id.is_some()
    }

    /// The attempt of an inline delivery: its `Webhook-Id`, attempt 1.
    pub(crate) fn inline(request: &actix_web::HttpRequest) -> Self {
        Attempt {
            delivery_id: None,
            webhook_id: request
                .headers()
                .get(WEBHOOK_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            number: 1,
        }
    }
}

impl FromDelivery for Attempt {
    fn from_delivery(delivery: &Delivery) -> Result<Self, Rejection> {
        Ok(match &delivery.attempt {
            Some(attempt) => attempt.clone(),
            None => Attempt::inline(delivery.request()),
        })
    }
}

impl FromRequest for Attempt {
    type Error = Rejection;
    type Future = Ready<Result<Self, Rejection>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Attempt::inline(req)))
    }
}

/// A failed attempt of a queued handler: retried later, or, when
/// [`permanent`](Self::permanent), a dead letter at once.
///
/// `?` turns any error into a `Failure` that is retried.
///
/// ```
/// use hookserver::{webhook_endpoint, Failure, WebhookPayload};
///
/// #[webhook_endpoint(queue)]
/// async fn mirror(payload: WebhookPayload) -> Result<(), Failure> {
///     if payload.repo.private {
///         return Err(Failure::permanent("private repos are not mirrored"));
///     }
///     std::fs::create_dir_all("/tmp/mirror")?; // an I/O error: retried
///     Ok(())
/// }
/// ```
pub struct Failure {
    message: String,
    permanent: bool,
}

impl Failure {
    /// A failure worth another attempt.
    pub fn retry(why: impl Display) -> Self {
        Failure {
            message: why.to_string(),
            permanent: false,
        }
    }

    /// A failure no attempt will fix: the delivery goes to the dead letters now.
    pub fn permanent(why: impl Display) -> Self {
        Failure {
            message: why.to_string(),
            permanent: true,
        }
    }

    /// Whether no attempt will fix it.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(err: E) -> Self {
        Failure::retry(err)
    }
}

impl Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("message", &self.message)
            .field("permanent", &self.permanent)
            .finish()
    }
}

impl ResponseError for Failure {
    fn error_response(&self) -> HttpResponse {
        let mut response = json_error(StatusCode::INTERNAL_SERVER_ERROR, &self.message);
        if self.permanent {
            response.extensions_mut().insert(PermanentFailure);
        }
        response
    }
}

/// Marks the answer of an attempt that must not be retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PermanentFailure;

/// Why an attempt failed, when its answer's body does not say (a panic's message).
#[derive(Debug, Clone)]
pub(crate) struct AttemptError(pub(crate) String);

/// A parameter a queued handler can take: read from the stored delivery (its recorded
/// request and body), never from a live request.
///
/// ```
/// fn takes<T: hookserver::QueuedParam>() {}
/// takes::<hookserver::WebhookPayload>();
/// takes::<hookserver::Json<hookserver::serde_json::Value>>();
/// takes::<hookserver::Attempt>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a parameter of a queued endpoint",
    label = "a queued delivery runs later, from what was stored: no live request to extract this from",
    note = "a queued handler takes `WebhookPayload`, `HttpRequest`, `Json<T>`, `Bytes`, `String` and `Attempt`"
)]
pub trait QueuedParam: Sized + 'static {
    /// Reads the parameter from a delivery.
    ///
    /// # Errors
    ///
    /// Why the delivery does not fit (400, 422), as at an inline endpoint.
    fn from_stored(delivery: &Delivery) -> Result<Self, Rejection>;
}

macro_rules! queued_via_delivery {
    ($($ty:ty),*) => {$(
        impl QueuedParam for $ty {
            fn from_stored(delivery: &Delivery) -> Result<Self, Rejection> {
                <$ty as FromDelivery>::from_delivery(delivery)
            }
        }
    )*};
}

queued_via_delivery!(HttpRequest, Bytes, String, Attempt);

impl QueuedParam for WebhookPayload {
    /// The payload the check parsed, when the inbox handed it on (a first attempt), else
    /// the stored body parsed now.
    fn from_stored(delivery: &Delivery) -> Result<Self, Rejection> {
        match delivery.take_parsed() {
            Some(parsed) => Ok(*parsed),
            None => WebhookPayload::from_delivery(delivery),
        }
    }
}

impl<T: DeserializeOwned + 'static> QueuedParam for Json<T> {
    fn from_stored(delivery: &Delivery) -> Result<Self, Rejection> {
        Rejection::parse_json(&delivery.body).map(Json)
    }
}

/// What a queued handler returns: `()`, or `Result<(), E>` where `Err` fails the attempt
/// (a [`Failure`] can make it permanent).
///
/// ```
/// use hookserver::{Failure, QueuedReturn};
///
/// assert_eq!(().into_outcome().status(), 200);
/// assert_eq!(Err::<(), _>("busy").into_outcome().status(), 500);
/// assert_eq!(Err::<(), _>(Failure::permanent("gone")).into_outcome().status(), 500);
/// ```
#[diagnostic::on_unimplemented(
    message = "a queued endpoint returns `()` or `Result<(), E>`, not `{Self}`",
    label = "nobody reads a queued handler's answer: the Hub was answered 202 when the delivery was stored",
    note = "return `Result<(), hookserver::Failure>` to retry on `Err`, or `Failure::permanent(..)` to give up"
)]
pub trait QueuedReturn {
    /// The attempt's outcome as an answer: 200 when it succeeded, else 500 with the error.
    fn into_outcome(self) -> HttpResponse;
}

impl QueuedReturn for () {
    fn into_outcome(self) -> HttpResponse {
        HttpResponse::Ok().finish()
    }
}

impl<E: Display + 'static> QueuedReturn for Result<(), E> {
    fn into_outcome(self) -> HttpResponse {
        match self {
            Ok(()) => HttpResponse::Ok().finish(),
            Err(err) => match (&err as &dyn Any).downcast_ref::<Failure>() {
                Some(failure) => failure.error_response(),
                None => json_error(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
            },
        }
    }
}

/// Reads a queued handler's parameter, or the answer why it does not fit.
///
/// # Errors
///
/// The answer (400, 422) to a delivery the parameter cannot be read from.
// The error is the answer itself, built once on a path that ends the delivery.
#[allow(clippy::result_large_err)]
pub fn queued_param<T: QueuedParam>(delivery: &Delivery) -> Result<T, HttpResponse> {
    T::from_stored(delivery).map_err(|rejection| rejection.error_response())
}

/// Keeps a parameter the check read, when the handler can use it again: a
/// `WebhookPayload` travels with the delivery into the inbox, so that the first attempt
/// does not parse the body a second time. Any other value is dropped. (Used by generated
/// code; the type test is resolved at compile time.)
pub fn queued_keep<T: 'static>(delivery: &Delivery, value: T) {
    let mut slot = Some(value);
    if let Some(payload) = (&mut slot as &mut dyn Any)
        .downcast_mut::<Option<WebhookPayload>>()
        .and_then(Option::take)
    {
        delivery.keep_parsed(payload);
    }
}

/// A queued handler's outcome as an answer (used by generated code).
pub fn queued_outcome<R: QueuedReturn>(value: R) -> HttpResponse {
    value.into_outcome()
}

/// The check of a queued delivery before it is stored: each parameter read once, so that
/// a body an inline endpoint would refuse (400, 422) is refused here too.
pub type CheckFn = fn(&Delivery) -> Result<(), HttpResponse>;

/// A fn that [`WebhooksServer::add_queued_webhook`](crate::WebhooksServer::add_queued_webhook)
/// accepts: an `async` fn or closure (or a plain fn, run on the blocking pool) whose
/// parameters (up to 8) are [`QueuedParam`]s and whose output is a [`QueuedReturn`].
///
/// ```
/// use hookserver::{Attempt, Failure, WebhookPayload, WebhooksServer};
///
/// async fn index(payload: WebhookPayload, attempt: Attempt) -> Result<(), Failure> {
///     println!("{} (attempt {})", payload.repo.name, attempt.number());
///     Ok(())
/// }
///
/// let mut app = WebhooksServer::empty();
/// app.add_queued_webhook("index", index)?;
/// # Ok::<(), hookserver::Error>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a queued handler",
    label = "its parameters or its answer do not fit a queued endpoint",
    note = "a queued handler takes `WebhookPayload`, `HttpRequest`, `Json<T>`, `Bytes`, `String` and `Attempt` (no live request: it runs later, from what was stored), and returns `()` or `Result<(), E>`"
)]
pub trait QueuedHandler<Marker>: Clone + Send + Sync + 'static {
    /// Runs the handler for one attempt.
    fn call<'d>(&self, delivery: &'d Delivery) -> HandlerFuture<'d>;

    /// Reads every parameter once: the check before the delivery is stored.
    ///
    /// # Errors
    ///
    /// The answer to a delivery a parameter cannot be read from.
    #[allow(clippy::result_large_err)]
    fn check(delivery: &Delivery) -> Result<(), HttpResponse>;
}

macro_rules! queued_impls {
    ($($arg:ident),*) => {
        impl<F, Fut, R, $($arg,)*> QueuedHandler<(crate::endpoint::handler::Async, $($arg,)*)> for F
        where
            F: Fn($($arg),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + 'static,
            R: QueuedReturn,
            $($arg: QueuedParam,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn call<'d>(&self, delivery: &'d Delivery) -> HandlerFuture<'d> {
                let f = self.clone();
                Box::pin(async move {
                    $(let $arg = match queued_param::<$arg>(delivery) {
                        Ok(value) => value,
                        Err(response) => return response,
                    };)*
                    f($($arg),*).await.into_outcome()
                })
            }

            #[allow(non_snake_case, unused_variables)]
            fn check(delivery: &Delivery) -> Result<(), HttpResponse> {
                $(queued_keep(delivery, queued_param::<$arg>(delivery)?);)*
                Ok(())
            }
        }

        impl<F, R, $($arg,)*> QueuedHandler<(crate::endpoint::handler::Blocking, $($arg,)*)> for F
        where
            F: Fn($($arg),*) -> R + Clone + Send + Sync + 'static,
            R: QueuedReturn + Send + 'static,
            $($arg: QueuedParam + Send,)*
        {
            #[allow(non_snake_case, unused_variables)]
            fn call<'d>(&self, delivery: &'d Delivery) -> HandlerFuture<'d> {
                let f = self.clone();
                Box::pin(async move {
                    $(let $arg = match queued_param::<$arg>(delivery) {
                        Ok(value) => value,
                        Err(response) => return response,
                    };)*
                    match run_blocking(move || f($($arg),*)).await {
                        Ok(value) => value.into_outcome(),
                        Err(response) => response,
                    }
                })
            }

            #[allow(non_snake_case, unused_variables)]
            fn check(delivery: &Delivery) -> Result<(), HttpResponse> {
                $(queued_keep(delivery, queued_param::<$arg>(delivery)?);)*
                Ok(())
            }
        }
    };
}

queued_impls!();
queued_impls!(A1);
queued_impls!(A1, A2);
queued_impls!(A1, A2, A3);
queued_impls!(A1, A2, A3, A4);
queued_impls!(A1, A2, A3, A4, A5);
queued_impls!(A1, A2, A3, A4, A5, A6);
queued_impls!(A1, A2, A3, A4, A5, A6, A7);
queued_impls!(A1, A2, A3, A4, A5, A6, A7, A8);

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn delivery(body: &str) -> Delivery {
        let request = actix_web::test::TestRequest::post().to_http_request();
        Delivery::new(request, Bytes::from(body.to_owned()), Instant::now())
    }

    /// Whether `H`'s check (as `add_queued_webhook` registers it) passes `delivery`.
    fn check_with<M, H: QueuedHandler<M>>(_: &H, delivery: &Delivery) -> bool {
        H::check(delivery).is_ok()
    }

    #[test]
    fn the_check_keeps_the_payload_it_parsed_and_nothing_else() {
        let body = crate::samples::SAMPLES[0].1;
        async fn with_payload(_: WebhookPayload, _: Attempt) {}
        let checked = delivery(body);
        assert!(check_with(&with_payload, &checked));
        let kept = checked.take_parsed().expect("the check kept its payload");
        assert_eq!(*kept, WebhookPayload::from_slice(body.as_bytes()).unwrap());

        async fn without_payload(_: Bytes, _: Attempt) {}
        let checked = delivery(body);
        assert!(check_with(&without_payload, &checked));
        assert!(checked.take_parsed().is_none());
    }
}
