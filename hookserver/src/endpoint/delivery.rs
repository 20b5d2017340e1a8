//! One delivery on its way to a handler, and how a handler's parameters are read from it.

use std::any::Any;
use std::cell::{Cell, OnceCell};
use std::time::Instant;

use actix_web::dev::Payload;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpResponse, ResponseError};

use crate::endpoint::params::HttpRequest;
use crate::endpoint::queued::Attempt;
use crate::inbox::StoredRequest;
use crate::payload::{EventInfo, WebhookPayload};
use crate::rejection::{json_error, Rejection};

/// One delivery on its way to a handler: the request (its headers, the Hub's `Webhook-Id`
/// among them), its whole body, when it arrived, and what its payload says (read once, by
/// the handler's `WebhookPayload` or on demand).
/// The handler, the log line and the delivery log all read this one value.
///
/// Generated code and [`Handler`](crate::Handler) implementations read their parameters
/// from it.
pub struct Delivery {
    request: Request,
    pub(crate) body: Bytes,
    /// When the request arrived (a monotonic clock's reading).
    pub(crate) started: Instant,
    /// Which attempt of a queued delivery this is (`None` inline).
    pub(crate) attempt: Option<Attempt>,
    info: OnceCell<EventInfo>,
    /// A payload parsed already (by a queued endpoint's check, handed on through the
    /// inbox), which a queued handler's `WebhookPayload` takes instead of parsing the body
    /// again.
    parsed: Cell<Option<Box<WebhookPayload>>>,
}

/// Where a delivery's actix-web request comes from.
enum Request {
    /// The live request.
    Live(actix_web::HttpRequest),
    /// A queued attempt's stored request, made an actix-web request when first asked for:
    /// most handlers never need it.
    Stored(StoredRequest, OnceCell<actix_web::HttpRequest>),
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("path", &self.request().path())
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// A delivery whose request arrived at `started` (a monotonic clock's reading).
    pub(crate) fn new(request: actix_web::HttpRequest, body: Bytes, started: Instant) -> Self {
        Delivery {
            request: Request::Live(request),
            body,
            started,
            attempt: None,
            info: OnceCell::new(),
            parsed: Cell::new(None),
        }
    }

    /// An attempt of a queued delivery, from what the inbox stored, with the payload its
    /// check parsed when the inbox still had it (a first attempt in the same process).
    pub(crate) fn stored(
        request: StoredRequest,
        attempt: Attempt,
        parsed: Option<Box<WebhookPayload>>,
    ) -> Self {
        Delivery {
            body: request.body(),
            request: Request::Stored(request, OnceCell::new()),
            started: Instant::now(),
            attempt: Some(attempt),
            info: OnceCell::new(),
            parsed: Cell::new(parsed),
        }
    }

    /// Keeps a payload parsed from this delivery's body, for [`take_parsed`](Self::take_parsed).
    pub(crate) fn keep_parsed(&self, payload: WebhookPayload) {
        self.parsed.set(Some(Box::new(payload)));
    }

    /// The payload kept by [`keep_parsed`](Self::keep_parsed) (or given to
    /// [`stored`](Self::stored)), once.
    pub(crate) fn take_parsed(&self) -> Option<Box<WebhookPayload>> {
        self.parsed.take()
    }

    /// What the payload says, for the log line and the delivery log: from the handler's
    /// `WebhookPayload` if it parsed one, else read from the body now when `wanted`; and
    /// the body.
    pub(crate) fn into_info(self, wanted: bool) -> (Option<EventInfo>, Bytes) {
        let info = match self.info.into_inner() {
            Some(info) => Some(info),
            None if wanted => Some(EventInfo::read(&self.body)),
            None => None,
        };
        (info, self.body)
    }

    /// Keeps what the body says for the log line and the delivery log, unless a handler's
    /// payload said it already.
    pub(crate) fn remember_info(&self, info: EventInfo) {
        let _ = self.info.set(info);
    }

    /// The actix-web request.
    #[must_use]
    pub fn request(&self) -> &actix_web::HttpRequest {
        match &self.request {
            Request::Live(request) => request,
            Request::Stored(stored, built) => built.get_or_init(|| stored.head().to_request()),
        }
    }

    /// The whole body.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Reads a handler's parameter: the one way both `#[webhook_endpoint]` fns and
    /// [`add_webhook`](crate::WebhooksServer::add_webhook) handlers get theirs.
    ///
    /// `WebhookPayload`, `HttpRequest`, `Bytes`, `String` and `Attempt` are read straight from the
    /// delivery (no copy of the body, no actix-web machinery); `Json<T>` parses the body;
    /// any other actix-web extractor runs on the request with a fresh copy of the body.
    ///
    /// # Errors
    ///
    /// Why the delivery does not fit, always as a JSON answer `{"error": ...}` (an
    /// actix-web extractor's own error too, with its status).
    pub async fn param<T: FromRequest + 'static>(&self) -> Result<T, HttpResponse> {
        if let Some(read) = self.read_directly::<T>() {
            return read
                .map(|value| *value)
                .map_err(|rejection| rejection.error_response());
        }
        let mut payload = Payload::from(self.body.clone());
        T::from_request(self.request(), &mut payload)
            .await
            .map_err(|err| json_error_of(&err.into()))
    }

    /// Reads a parameter that needs no actix-web extraction (`WebhookPayload`,
    /// `HttpRequest`, `Bytes`, `String`, `Attempt`) at once, without a future, in a box:
    /// `None` for any other type, which [`param`](Self::param) reads. (Used by generated
    /// code: a payload of about 750 bytes is moved as a pointer on its way to the handler.)
    ///
    /// # Errors
    ///
    /// The [`Rejection`] whose answer [`param`](Self::param) would give; the caller turns
    /// it into the answer (converting it in here would move the value once more).
    #[doc(hidden)]
    #[inline]
    pub fn param_now<T: 'static>(&self) -> Option<Result<Box<T>, Rejection>> {
        self.read_directly::<T>()
    }

    /// The parameter of type `T` read with [`FromDelivery`], if `T` is one of those types.
    /// (The type test is resolved at compile time, for each `T`.)
    #[inline]
    fn read_directly<T: 'static>(&self) -> Option<Result<Box<T>, Rejection>> {
        /// Reads a `U` into `slot` when `T` is `U` (written in place: a payload is not
        /// moved through a cast).
        fn read_as<T: 'static, U: FromDelivery + 'static>(
            delivery: &Delivery,
            slot: &mut Option<Result<Box<T>, Rejection>>,
        ) -> bool {
            match (slot as &mut dyn Any).downcast_mut::<Option<Result<Box<U>, Rejection>>>() {
                Some(slot) => {
                    *slot = Some(U::from_delivery_boxed(delivery));
                    true
                }
                None => false,
            }
        }
        let mut slot = None;
        let _ = read_as::<T, WebhookPayload>(self, &mut slot)
            || read_as::<T, HttpRequest>(self, &mut slot)
            || read_as::<T, Bytes>(self, &mut slot)
            || read_as::<T, String>(self, &mut slot)
            || read_as::<T, Attempt>(self, &mut slot);
        slot
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

    /// Reads the parameter into a box (moved about cheaply on its way to the handler).
    ///
    /// # Errors
    ///
    /// Why the delivery does not fit, as an HTTP answer.
    fn from_delivery_boxed(delivery: &Delivery) -> Result<Box<Self>, Rejection> {
        Self::from_delivery(delivery).map(Box::new)
    }
}

/// The payload is parsed once, by the handler's parameter: the log line and the delivery
/// log read what it says from the delivery.
impl FromDelivery for WebhookPayload {
    fn from_delivery(delivery: &Delivery) -> Result<Self, Rejection> {
        let payload = WebhookPayload::from_slice(&delivery.body)?;
        let _ = delivery.info.set(EventInfo::of(&payload));
        Ok(payload)
    }

    #[inline]
    fn from_delivery_boxed(delivery: &Delivery) -> Result<Box<Self>, Rejection> {
        let payload = WebhookPayload::from_slice_boxed(&delivery.body)?;
        let _ = delivery.info.set(EventInfo::of(&payload));
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
        Ok(HttpRequest::from_actix(delivery.request()))
    }
}
