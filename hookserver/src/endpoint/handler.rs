//! Handlers: the answers they give ([`IntoReply`]), the fns `add_webhook` takes
//! ([`Handler`]), and sync handlers on the blocking pool.

use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpResponse, Responder, ResponseError};
use serde::Serialize;

use crate::endpoint::delivery::Delivery;
use crate::endpoint::params::{json_response, Json};
use crate::rejection::{json_error, Rejection};

/// The future a handler adapter returns.
pub type HandlerFuture<'d> = Pin<Box<dyn Future<Output = HttpResponse> + 'd>>;

// --- Answers -------------------------------------------------------------------------

/// A value a handler can return, turned into the HTTP answer.
///
/// Implemented for `()` (200, empty), `serde_json::Value` and [`Json<T>`] (200, JSON),
/// `String` and `&'static str` (200, text), `Bytes`, `HttpResponse`, `StatusCode`, and
/// `Result<T, E>` where `E` converts into an actix-web error (its own response). Handlers
/// registered with `#[webhook_endpoint]` may also return any actix-web `Responder` and
/// `Result<T, E>` for any `E: Display` (500 with `{"error": "<E's Display>"}`).
///
/// ```
/// use hookserver::IntoReply;
///
/// let request = hookserver::actix_web::test::TestRequest::default().to_http_request();
/// let response = hookserver::serde_json::json!({"ok": true}).into_reply(&request);
/// assert_eq!(response.status(), 200);
/// ```
pub trait IntoReply {
    /// The HTTP answer.
    fn into_reply(self, request: &actix_web::HttpRequest) -> HttpResponse;
}

impl IntoReply for () {
    fn into_reply(self, _: &actix_web::HttpRequest) -> HttpResponse {
        HttpResponse::Ok().finish()
    }
}

impl IntoReply for serde_json::Value {
    fn into_reply(self, _: &actix_web::HttpRequest) -> HttpResponse {
        json_response(&self)
    }
}

impl<T: Serialize> IntoReply for Json<T> {
    fn into_reply(self, _: &actix_web::HttpRequest) -> HttpResponse {
        json_response(&self.0)
    }
}

impl<T: Serialize> IntoReply for actix_web::web::Json<T> {
    fn into_reply(self, _: &actix_web::HttpRequest) -> HttpResponse {
        json_response(&self.0)
    }
}

macro_rules! reply_via_responder {
    ($($ty:ty),*) => {$(
        impl IntoReply for $ty {
            fn into_reply(self, request: &actix_web::HttpRequest) -> HttpResponse {
                self.respond_to(request).map_into_boxed_body()
            }
        }
    )*};
}

reply_via_responder!(String, &'static str, Bytes, HttpResponse);

impl IntoReply for StatusCode {
    fn into_reply(self, _: &actix_web::HttpRequest) -> HttpResponse {
        HttpResponse::new(self)
    }
}

impl<T: IntoReply, E: Into<actix_web::Error>> IntoReply for Result<T, E> {
    fn into_reply(self, request: &actix_web::HttpRequest) -> HttpResponse {
        match self {
            Ok(value) => value.into_reply(request),
            Err(err) => err.into().error_response(),
        }
    }
}

/// Marker for the answer type `R` (used by generated code).
pub struct ReplyWrap<R>(PhantomData<fn() -> R>);

impl<R> std::fmt::Debug for ReplyWrap<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyWrap")
    }
}

impl<R> ReplyWrap<R> {
    /// The marker for the type of `value`.
    pub fn of(_value: &R) -> Self {
        ReplyWrap(PhantomData)
    }
}

/// First choice: [`IntoReply`].
pub trait ReplyViaInto {
    /// The conversion to use.
    fn __hookserver_reply_kind(&self) -> IntoKind;
}

impl<R: IntoReply> ReplyViaInto for &&ReplyWrap<R> {
    fn __hookserver_reply_kind(&self) -> IntoKind {
        IntoKind
    }
}

/// Second choice: `Result<T, E>` with `E: Display`.
pub trait ReplyViaDisplay {
    /// The conversion to use.
    fn __hookserver_reply_kind(&self) -> DisplayKind;
}

impl<T: IntoReply, E: Display> ReplyViaDisplay for &ReplyWrap<Result<T, E>> {
    fn __hookserver_reply_kind(&self) -> DisplayKind {
        DisplayKind
    }
}

/// Last choice: any actix-web [`Responder`].
pub trait ReplyViaResponder {
    /// The conversion to use.
    fn __hookserver_reply_kind(&self) -> ResponderKind;
}

impl<R: Responder> ReplyViaResponder for ReplyWrap<R> {
    fn __hookserver_reply_kind(&self) -> ResponderKind {
        ResponderKind
    }
}

/// Converts through [`IntoReply`].
#[derive(Debug)]
pub struct IntoKind;

impl IntoKind {
    /// The answer.
    pub fn reply<R: IntoReply>(self, value: R, delivery: &Delivery) -> HttpResponse {
        value.into_reply(delivery.request())
    }
}

/// Converts a `Result` whose error is only `Display`.
#[derive(Debug)]
pub struct DisplayKind;

impl DisplayKind {
    /// The answer: `T`'s, or 500 with `{"error": "<E's Display>"}`.
    pub fn reply<T: IntoReply, E: Display>(
        self,
        value: Result<T, E>,
        delivery: &Delivery,
    ) -> HttpResponse {
        match value {
            Ok(value) => value.into_reply(delivery.request()),
            Err(err) => {
                let message = err.to_string();
                tracing::warn!(error = %message, "webhook handler returned an error");
                json_error(StatusCode::INTERNAL_SERVER_ERROR, &message)
            }
        }
    }
}

/// Converts through actix-web's [`Responder`].
#[derive(Debug)]
pub struct ResponderKind;

impl ResponderKind {
    /// The answer.
    pub fn reply<R: Responder>(self, value: R, delivery: &Delivery) -> HttpResponse {
        value.respond_to(delivery.request()).map_into_boxed_body()
    }
}

// --- Blocking handlers ---------------------------------------------------------------

/// Runs a sync handler on the blocking thread pool; a panic there is resumed here, so
/// that the server's panic guard answers 500.
///
/// # Errors
///
/// 503 when the runtime is shutting down and cannot run it.
pub async fn run_blocking<F, R>(f: F) -> Result<R, HttpResponse>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => Ok(value),
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(_) => Err(Rejection::ShuttingDown.error_response()),
    }
}

/// Compile-time check that a sync handler's parameter can move to the blocking pool.
pub fn plain_fn_handler_params_must_be_send<T: Send + 'static>() {}

/// Compile-time check that a sync handler's answer can come back from the blocking pool.
pub fn plain_fn_handler_answers_must_be_send<T: Send + 'static>() {}

// --- Explicit registration -----------------------------------------------------------

/// Marker of [`Handler`] implementations for `async` fns.
#[derive(Debug)]
pub enum Async {}

/// Marker of [`Handler`] implementations for plain fns (run on the blocking pool).
#[derive(Debug)]
pub enum Blocking {}

/// A fn that [`WebhooksServer::add_webhook`](crate::WebhooksServer::add_webhook) accepts.
///
/// Implemented for `async` fns and closures whose parameters (up to 8) are actix-web
/// extractors (hookserver's `WebhookPayload`, `HttpRequest` and `Json<T>` are) and whose
/// output is [`IntoReply`]; and for plain fns of the same shape whose parameters and
/// output are `Send`, which run on the blocking thread pool.
///
/// ```
/// use hookserver::actix_web::web::Query;
/// use hookserver::{HttpRequest, WebhookPayload, WebhooksServer};
/// use std::collections::HashMap;
///
/// async fn with_query(payload: WebhookPayload, query: Query<HashMap<String, String>>) -> String {
///     format!("{} {:?}", payload.event.scope, query.get("tag"))
/// }
///
/// fn blocking(request: HttpRequest, body: String) -> String {
///     format!("{} bytes at {}", body.len(), request.path())
/// }
///
/// let mut app = WebhooksServer::empty();
/// app.add_webhook("with_query", with_query)?;
/// app.add_webhook("blocking", blocking)?;
/// # Ok::<(), hookserver::Error>(())
/// ```
pub trait Handler<Marker>: Clone + Send + Sync + 'static {
    /// Runs the handler for one delivery.
    fn call<'d>(&self, delivery: &'d Delivery) -> HandlerFuture<'d>;
}

/// Extracts each parameter of a [`Handler`] in turn, or returns the failure's response.
macro_rules! extract_args {
    ($delivery:ident, $($arg:ident),*) => {
        $(
            let $arg = match $delivery.param_now::<$arg>() {
                Some(Ok(value)) => *value,
                Some(Err(rejection)) => return rejection.error_response(),
                None => match $delivery.param::<$arg>().await {
                    Ok(value) => value,
                    Err(response) => return response,
                },
            };
        )*
    };
}

macro_rules! handler_impls {
    ($($arg:ident),*) => {
        impl<F, Fut, R, $($arg,)*> Handler<(Async, $($arg,)*)> for F
        where
            F: Fn($($arg),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = R> + 'static,
            R: IntoReply,
            $($arg: FromRequest + 'static,)*
        {
            #[allow(non_snake_case)]
            fn call<'d>(&self, delivery: &'d Delivery) -> HandlerFuture<'d> {
                let f = self.clone();
                Box::pin(async move {
                    extract_args!(delivery, $($arg),*);
                    f($($arg),*).await.into_reply(delivery.request())
                })
            }
        }

        impl<F, R, $($arg,)*> Handler<(Blocking, $($arg,)*)> for F
        where
            F: Fn($($arg),*) -> R + Clone + Send + Sync + 'static,
            R: IntoReply + Send + 'static,
            $($arg: FromRequest + Send + 'static,)*
        {
            #[allow(non_snake_case)]
            fn call<'d>(&self, delivery: &'d Delivery) -> HandlerFuture<'d> {
                let f = self.clone();
                Box::pin(async move {
                    extract_args!(delivery, $($arg),*);
                    match run_blocking(move || f($($arg),*)).await {
                        Ok(value) => value.into_reply(delivery.request()),
                        Err(response) => response,
                    }
                })
            }
        }
    };
}

handler_impls!();
handler_impls!(A1);
handler_impls!(A1, A2);
handler_impls!(A1, A2, A3);
handler_impls!(A1, A2, A3, A4);
handler_impls!(A1, A2, A3, A4, A5);
handler_impls!(A1, A2, A3, A4, A5, A6);
handler_impls!(A1, A2, A3, A4, A5, A6, A7);
handler_impls!(A1, A2, A3, A4, A5, A6, A7, A8);
