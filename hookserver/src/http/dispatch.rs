//! `/webhooks/*`: every delivery, from its checks to its log line and its record.

use std::time::{Instant, SystemTime};

use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::access::secret::{SecretCheck, SECRET_HEADER};
use crate::access::throttle::{retry_after_secs, Guess};
use crate::deliveries::{Incoming, Kind};
use crate::endpoint::delivery::Delivery;
use crate::endpoint::run::run_handler;
use crate::endpoint::Endpoint;
use crate::http::body::{drain, read_limited};
use crate::http::Shared;
use crate::rejection::{Rejection, NOSNIFF};

/// Every request under `/webhooks/`: checked, run, logged in one line and recorded.
pub(super) async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let started = Instant::now();
    let Outcome {
        mut response,
        read,
        endpoint,
    } = deliver(&req, payload, &shared, started).await;
    response.headers_mut().insert(NOSNIFF.0, NOSNIFF.1);
    let elapsed = started.elapsed();
    let logged = crate::logging::delivery_enabled_for(response.status().as_u16());
    let recorded = shared.deliveries.capacity() > 0;
    // What the payload says, read once (by the handler's `WebhookPayload`, or here).
    let (info, body) = match read {
        Some(delivery) => {
            let (info, body) = delivery.into_info(logged || recorded);
            (info, Some(body))
        }
        None => (None, None),
    };
    let info = info.unwrap_or_default();
    if logged {
        // One line per delivery; the path never carries the query (where a secret may be).
        crate::logging::delivery(&crate::logging::DeliveryLine {
            path: req.path(),
            status: response.status().as_u16(),
            // Whole microseconds: an integer formats much faster than a `Duration`.
            latency_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            scope: info.scope.as_deref().unwrap_or("-"),
            action: info.action.as_ref().map_or("-", |a| a.as_str()),
        });
    }
    if !recorded {
        return response;
    }
    let incoming = Incoming {
        kind: Kind::Hub,
        replay_of: None,
        endpoint: endpoint.map(|e| &e.path),
        method: req.method(),
        path: req.path(),
        query: req.query_string(),
        headers: req.headers(),
        body: body.as_ref(),
        info,
        client: shared.client(&req),
        started: SystemTime::now() - elapsed,
        duration: elapsed,
    };
    shared.deliveries.record(incoming, response).0
}

/// The answer to a delivery, and the delivery when its body was read.
struct Outcome<'s> {
    response: HttpResponse,
    read: Option<Delivery>,
    endpoint: Option<&'s Endpoint>,
}

impl From<HttpResponse> for Outcome<'_> {
    fn from(response: HttpResponse) -> Self {
        Outcome {
            response,
            read: None,
            endpoint: None,
        }
    }
}

async fn deliver<'s>(
    req: &HttpRequest,
    payload: web::Payload,
    shared: &'s Shared,
    started: Instant,
) -> Outcome<'s> {
    let limit = shared.body_limit;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // 1. The secret, before anything else: the body is not read (nor parsed) without it.
    // 2. The route and the method.
    let endpoint = match check_request(req, shared) {
        Ok(endpoint) => endpoint,
        Err(rejection) => {
            // Answered without the body: read it off the connection (unparsed, within the
            // limit and the body timeout) so that the client may keep the connection alive.
            let drained =
                actix_web::rt::time::timeout(shared.body_timeout, drain(payload, declared, limit))
                    .await;
            let mut response = rejection.error_response();
            if drained.is_err() {
                response
                    .head_mut()
                    .set_connection_type(actix_web::http::ConnectionType::Close);
            }
            return response.into();
        }
    };
    let reject = |rejection: Rejection| Outcome::from(rejection.error_response());
    // 3. The body, within the limit.
    if declared.is_some_and(|len| len > limit as u64) {
        return reject(Rejection::TooLarge { limit });
    }
    let body = match read_limited(payload, limit, shared.body_timeout).await {
        Ok(body) => body,
        Err(rejection @ Rejection::BodyTimeout(_)) => {
            // The rest of the body may still come: close the connection after answering.
            let mut response = rejection.error_response();
            response
                .head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
            return response.into();
        }
        Err(rejection) => return reject(rejection),
    };
    // 4. The handler, guarded against panics and timed.
    let delivery = Delivery::new(req.clone(), body, started);
    let response = run_handler(endpoint, &delivery, shared.handler_timeout).await;
    Outcome {
        response,
        read: Some(delivery),
        endpoint: Some(endpoint),
    }
}

/// Whether a browser sent the request from a web page: the Hub's sender never sends
/// `Origin` nor `Sec-Fetch-Site`, and a page must not fire a webhook (secret or not).
fn cross_site(req: &HttpRequest) -> Option<&'static str> {
    let headers = req.headers();
    if headers.contains_key(header::ORIGIN) {
        return Some("a web page's request (Origin) cannot call a webhook");
    }
    match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
        Some(b"cross-site" | b"same-site") => {
            Some("a web page's request (Sec-Fetch-Site) cannot call a webhook")
        }
        _ => None,
    }
}

/// The secret (throttled per client address), the route and the method of a delivery.
fn check_request<'s>(req: &HttpRequest, shared: &'s Shared) -> Result<&'s Endpoint, Rejection> {
    if let Some(why) = cross_site(req) {
        return Err(Rejection::CrossSite(why.to_owned()));
    }
    if let Some(secret) = &shared.secret {
        if let Err(wait) = shared.throttle.check(|| shared.client(req)) {
            return Err(Rejection::Throttled {
                retry_after: retry_after_secs(wait),
            });
        }
        let mut headers = req.headers().get_all(SECRET_HEADER);
        let header = headers.next().map(|v| v.as_bytes());
        // A repeated secret header is ambiguous: refused, whatever its values.
        let check = if headers.next().is_some() {
            SecretCheck::Wrong
        } else {
            secret.check(header, req.query_string())
        };
        match check {
            SecretCheck::Valid => {}
            SecretCheck::Missing => return Err(Rejection::MissingSecret),
            SecretCheck::Wrong => {
                shared.throttle.failed(shared.client(req), Guess::Webhook);
                return Err(Rejection::WrongSecret);
            }
        }
    }
    // What follows `/webhooks` in the (normalized) path.
    let name = req
        .match_info()
        .unprocessed()
        .strip_prefix('/')
        .unwrap_or("");
    let Some(endpoint) = shared.table.get(name) else {
        return Err(Rejection::NotFound(req.path().to_owned()));
    };
    if req.method() != actix_web::http::Method::POST {
        return Err(Rejection::MethodNotAllowed(req.method().to_string()));
    }
    Ok(endpoint)
}
