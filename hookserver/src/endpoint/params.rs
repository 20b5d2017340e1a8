//! Parameter types of a webhook handler: [`HttpRequest`] and [`Json`], and the
//! actix-web extractors of `Json<T>` and `WebhookPayload`.

use std::fmt;
use std::future::{ready, Future, Ready};
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;

use actix_web::body::BoxBody;
use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::http::{Method, StatusCode, Uri};
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpResponse, Responder};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::access::secret::{redact_query, SECRET_HEADER};
use crate::payload::WebhookPayload;
use crate::rejection::{json_error, Rejection};

/// The request of a delivery: method, path, query and headers.
///
/// Unlike actix-web's `HttpRequest` it is `Send`, so sync (blocking) handlers can take it
/// too. Its `Debug` form redacts the secret, in the header and in the query.
///
/// ```
/// use hookserver::{webhook_endpoint, HttpRequest};
///
/// #[webhook_endpoint]
/// fn who(request: HttpRequest) -> String {
///     request.header("user-agent").unwrap_or("unknown").to_owned()
/// }
/// ```
#[derive(Clone)]
pub struct HttpRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer_addr: Option<SocketAddr>,
}

impl HttpRequest {
    pub(crate) fn from_actix(req: &actix_web::HttpRequest) -> Self {
        HttpRequest {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
            peer_addr: req.peer_addr(),
        }
    }

    /// The method (POST for every delivery that reaches a handler).
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path, such as `/webhooks/say_hello`.
    #[must_use]
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The query string without the `?`, or `""`.
    #[must_use]
    pub fn query_string(&self) -> &str {
        self.uri.query().unwrap_or("")
    }

    /// The decoded value of the first query parameter called `name`.
    #[must_use]
    pub fn query(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query_string().as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// Every header.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of the header `name` (any case), if it is visible ASCII.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The address of the peer (the Hub, or a proxy in front of the server).
    #[must_use]
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a HeaderMap);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut map = f.debug_map();
                for (name, value) in self.0 {
                    if name.as_str() == SECRET_HEADER {
                        map.entry(&name.as_str(), &"<redacted>");
                    } else {
                        map.entry(&name.as_str(), value);
                    }
                }
                map.finish()
            }
        }
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path", &self.path())
            .field("query", &redact_query(self.query_string()))
            .field("headers", &Headers(&self.headers))
            .field("peer_addr", &self.peer_addr)
            .finish()
    }
}

impl FromRequest for HttpRequest {
    type Error = Rejection;
    type Future = Ready<Result<Self, Rejection>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(HttpRequest::from_actix(req)))
    }
}

/// A JSON body parsed into `T`, or a JSON answer built from `T`.
///
/// As a parameter: a body that is not JSON answers 400, JSON that does not fit `T`
/// answers 422 naming the field's path. As a return value: 200 with `T` as JSON.
///
/// ```
/// use hookserver::{webhook_endpoint, Json};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Deserialize)]
/// struct Ping { zen: String }
///
/// #[derive(Serialize)]
/// struct Pong { echoed: String }
///
/// #[webhook_endpoint]
/// async fn ping(Json(ping): Json<Ping>) -> Json<Pong> {
///     Json(Pong { echoed: ping.zen })
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The value inside.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = JsonBody<Self>;

    fn from_request(req: &actix_web::HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = json_body::<T>(req, payload);
        Box::pin(async move { body.await.map(Json) })
    }
}

impl<T: Serialize> Responder for Json<T> {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &actix_web::HttpRequest) -> HttpResponse {
        json_response(&self.0)
    }
}

/// 200 with `value` as JSON, or 500 if it cannot be serialized.
pub(crate) fn json_response<T: Serialize + ?Sized>(value: &T) -> HttpResponse {
    match serde_json::to_vec(value) {
        Ok(body) => {
            use actix_web::http::header::{HeaderValue, CONTENT_TYPE};
            // A static header value: no media type to format and check per answer.
            let mut response = HttpResponse::with_body(StatusCode::OK, BoxBody::new(body));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(err) => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the handler's answer could not be serialized to JSON: {err}"),
        ),
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
