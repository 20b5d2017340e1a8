//! How a delivery reaches a handler: the parameters it takes and the answers it gives.

use std::any::{Any, TypeId};
use std::cell::OnceCell;
use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpResponse, Responder, ResponseError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::payload::{Action, WebhookPayload};
use crate::rejection::{json_error, Rejection};
use crate::request::{json_response, HttpRequest, Json};

/// The future a handler adapter returns.
pub type HandlerFuture<'d> = Pin<Box<dyn Future<Output = HttpResponse> + 'd>>;

/// One delivery on its way to a handler: the request and its whole body.
///
/// Generated code and [`Handler`] implementations read their parameters from it.
pub struct Delivery {
    pub(crate) request: actix_web::HttpRequest,
    pub(crate) body: Bytes,
    pub(crate) event: OnceCell<(Action, String)>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("path", &self.request.path())
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Delivery {
    pub(crate) fn new(request: actix_web::HttpRequest, body: Bytes) -> Self {
        Delivery {
            request,
            body,
            event: OnceCell::new(),
        }
    }

    /// The actix-web request.
    #[must_use]
    pub fn request(&self) -> &actix_web::HttpRequest {
        &self.request
    }

    /// The whole body.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Reads a handler's parameter: the one way both `#[webhook_endpoint]` fns and
    /// [`add_webhook`](crate::WebhooksServer::add_webhook) handlers get theirs.
    ///
    /// `WebhookPayload`, `HttpRequest`, `Bytes` and `String` are read straight from the
    /// delivery (no copy of the body, no actix-web machinery); `Json<T>` parses the body;
    /// any other actix-web extractor runs on the request with a fresh copy of the body.
    ///
    /// # Errors
    ///
    /// Why the delivery does not fit, always as a JSON answer `{"error": ...}` (an
    /// actix-web extractor's own error too, with its status).
    pub async fn param<T: FromRequest + 'static>(&self) -> Result<T, HttpResponse> {
        if let Some(read) = self.read_directly::<T>() {
            return read.map_err(|rejection| rejection.error_response());
        }
        let mut payload = Payload::from(self.body.clone());
        T::from_request(&self.request, &mut payload)
            .await
            .map_err(|err| json_error_of(&err.into()))
    }

    /// The parameter of type `T` read with [`FromDelivery`], if `T` is one of those types.
    /// (The type test is resolved at compile time, for each `T`.)
    fn read_directly<T: 'static>(&self) -> Option<Result<T, Rejection>> {
        fn cast<T: 'static, U: 'static>(
            read: Result<U, Rejection>,
        ) -> Option<Result<T, Rejection>> {
            let mut slot = Some(read);
            (&mut slot as &mut dyn Any)
                .downcast_mut::<Option<Result<T, Rejection>>>()
                .and_then(Option::take)
        }
        let wanted = TypeId::of::<T>();
        if wanted == TypeId::of::<WebhookPayload>() {
            cast(WebhookPayload::from_delivery(self))
        } else if wanted == TypeId::of::<HttpRequest>() {
            cast(HttpRequest::from_delivery(self))
        } else if wanted == TypeId::of::<Bytes>() {
            cast(Bytes::from_delivery(self))
        } else if wanted == TypeId::of::<String>() {
            cast(String::from_delivery(self))
        } else {
            None
        }
    }
}

/// An actix-web error as JSON `{"error": ...}` with its status (its own answer when it is
/// JSON already, as a [`Rejection`]'s is: that keeps a 422's `path`).
fn json_error_of(err: &actix_web::Error) -> HttpResponse {
    let response = err.error_response();
    let is_json = response
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        response
    } else {
        json_error(response.status(), &err.to_string())
    }
}

/// A parameter type that is read straight from a [`Delivery`] (no actix-web extraction).
pub(crate) trait FromDelivery: Sized {
    /// Reads the parameter.
    ///
    /// # Errors
    ///
    /// Why the delivery does not fit, as an HTTP answer.
    fn from_delivery(delivery: &Delivery) -> Result<Self, Rejection>;
}

impl FromDelivery for WebhookPayload {
    fn from_delivery(delivery: &Delivery) -> Result<Self, Rejection> {
        let payload = WebhookPayload::from_slice(&delivery.body)?;
        let _ = delivery
            .event
            .set((payload.event.action.clone(), payload.event.scope.clone()));
        Ok(payload)
    }
}

impl FromDelivery for Bytes {
    fn from_delivery(delivery: &Delivery) -> Result<Self, Rejection> {
        Ok(delivery.body.clone())
    }
}

impl FromDelivery for String {
    fn from_delivery(delivery: &Delivery) -> Result<Self, Rejection> {
        String::from_utf8(delivery.body.to_vec()).map_err(|err| Rejection::NotUtf8(err.to_string()))
    }
}

impl FromDelivery for HttpRequest {
    fn from_delivery(delivery: &Delivery) -> Result<Self, Rejection> {
        Ok(HttpRequest::from_actix(&delivery.request))
    }
}

impl FromRequest for WebhookPayload {
    type Error = actix_web::Error;
    type Future = JsonBody<Self>;

    fn from_request(req: &actix_web::HttpRequest, payload: &mut Payload) -> Self::Future {
        json_body(req, payload)
    }
}

/// The future of a JSON body read by an actix-web extractor.
pub(crate) type JsonBody<T> = Pin<Box<dyn Future<Output = Result<T, actix_web::Error>>>>;

/// Reads the body (within the app's `PayloadConfig` limit) and parses it as JSON.
pub(crate) fn json_body<T: DeserializeOwned + 'static>(
    req: &actix_web::HttpRequest,
    payload: &mut Payload,
) -> JsonBody<T> {
    let body = Bytes::from_request(req, payload);
    Box::pin(async move {
        let body = body.await?;
        Ok(Rejection::parse_json(&body)?)
    })
}

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
        value.into_reply(&delivery.request)
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
            Ok(value) => value.into_reply(&delivery.request),
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
        value.respond_to(&delivery.request).map_into_boxed_body()
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
            let $arg = match $delivery.param::<$arg>().await {
                Ok(value) => value,
                Err(response) => return response,
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
                    f($($arg),*).await.into_reply(&delivery.request)
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
                        Ok(value) => value.into_reply(&delivery.request),
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
