//! `/webhooks/*`: every delivery, from its checks to its log line and its record.

use std::time::{Instant, SystemTime};

use actix_web::http::header;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::access::secret::{SecretCheck, SECRET_HEADER_NAME};
use crate::access::throttle::{retry_after_secs, Guess};
use crate::deliveries::{Incoming, Kind};
use crate::endpoint::delivery::Delivery;
use crate::endpoint::Endpoint;
use crate::http::answer::{answer, Sender};
use crate::http::body::{drain, read_limited};
use crate::http::Shared;
use crate::metrics::Answered;
use crate::rejection::Rejection;

/// Every request under `/webhooks/`: checked, run, logged in one line and recorded.
pub(super) async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let started = Instant::now();
    let Outcome {
        response,
        read,
        endpoint,
    } = deliver(&req, payload, &shared, started).await;
    let elapsed = started.elapsed();
    shared.metrics.delivery(
        endpoint.map(|e| &e.path),
        response.status().as_u16(),
        elapsed.as_secs_f64(),
        response.extensions().get::<Answered>().copied(),
    );
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
    // One line per delivery; the path never carries the query (where a secret may be).
    // The wall-clock time it was stamped with is the record's too.
    let stamped = if logged {
        crate::logging::delivery(&crate::logging::DeliveryLine {
            path: req.path(),
            status: response.status().as_u16(),
            // Whole microseconds: an integer formats much faster than a `Duration`.
            latency_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            scope: info.scope().unwrap_or("-"),
            action: info.action().unwrap_or("-"),
        })
    } else {
        None
    };
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
        started: stamped.unwrap_or_else(SystemTime::now) - elapsed,
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
    let seen = Seen::of(req);
    let declared = seen.declared;
    // 1. The secret, before anything else: the body is not read (nor parsed) without it.
    // 2. The route and the method.
    let endpoint = match check_request(req, &seen, shared) {
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
    let body = match read_limited(payload, limit, shared.body_timeout, started).await {
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
    // 4. The handler, guarded against panics and timed; or, queued, the inbox.
    let delivery = Delivery::new(req.clone(), body, started);
    let response = answer(shared, endpoint, &delivery, Sender::Client).await;
    Outcome {
        response,
        read: Some(delivery),
        endpoint: Some(endpoint),
    }
}

/// What the checks of a delivery read from its headers.
struct Seen<'r> {
    /// A browser's mark of a request from a web page: `Origin`, or `Sec-Fetch-Site` of
    /// `cross-site`/`same-site` (the Hub's sender sends neither).
    cross_site: Option<&'static str>,
    /// The `X-Webhook-Secret` header, and whether it came more than once.
    secret: Option<&'r [u8]>,
    secret_repeated: bool,
    /// The declared `Content-Length`.
    declared: Option<u64>,
}

/// `Sec-Fetch-Site`, parsed once.
const SEC_FETCH_SITE: header::HeaderName = header::HeaderName::from_static("sec-fetch-site");

impl<'r> Seen<'r> {
    /// Four look-ups by name: cheaper than a pass over the headers, whose iterator walks
    /// the map's every slot and each name's list of values.
    fn of(req: &'r HttpRequest) -> Self {
        let headers = req.headers();
        let mut secrets = headers.get_all(SECRET_HEADER_NAME);
        let secret = secrets.next().map(header::HeaderValue::as_bytes);
        let secret_repeated = secrets.next().is_some();
        let cross_site = if headers.contains_key(header::ORIGIN) {
            Some("a web page's request (Origin) cannot call a webhook")
        } else if headers
            .get(SEC_FETCH_SITE)
            .is_some_and(|v| matches!(v.as_bytes(), b"cross-site" | b"same-site"))
        {
            Some("a web page's request (Sec-Fetch-Site) cannot call a webhook")
        } else {
            None
        };
        Seen {
            cross_site,
            secret,
            secret_repeated,
            declared: headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok()),
        }
    }
}

/// The secret (throttled per client address), the route and the method of a delivery.
fn check_request<'s>(
    req: &HttpRequest,
    seen: &Seen<'_>,
    shared: &'s Shared,
) -> Result<&'s Endpoint, Rejection> {
    if let Some(why) = seen.cross_site {
        return Err(Rejection::CrossSite(why.to_owned()));
    }
    if let Some(secret) = &shared.secret {
        if let Err(wait) = shared.throttle.check(|| shared.client(req)) {
            return Err(Rejection::Throttled {
                retry_after: retry_after_secs(wait),
            });
        }
        // A repeated secret header is ambiguous: refused, whatever its values.
        let check = if seen.secret_repeated {
            SecretCheck::Wrong
        } else {
            secret.check(seen.secret, req.query_string())
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
