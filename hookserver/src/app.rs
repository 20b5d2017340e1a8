//! The actix-web application: routing, the secret check, body limits, the panic guard
//! and the log line of each delivery.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, ResponseError};
use futures_util::FutureExt;

use crate::deliveries::{DeliveryLog, Incoming, Kind};
use crate::handler::Delivery;
use crate::registry::Endpoint;
use crate::rejection::{json_error, Rejection, NOSNIFF};
use crate::secret::{Secret, SecretCheck, SECRET_HEADER};
use crate::session::Sessions;
use crate::throttle::{retry_after_secs, Guess, Proxies, Throttle};

/// What every worker shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) table: HashMap<Box<str>, Endpoint>,
    pub(crate) secret: Option<Secret>,
    pub(crate) body_limit: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) handler_timeout: Option<Duration>,
    /// The page `GET /` answers: `.ui(...)`'s HTML, or `None` for the dashboard's.
    pub(crate) custom_ui: Option<Bytes>,
    /// The dashboard's pages, its log of deliveries and its live views.
    pub(crate) dashboard: crate::dashboard::Dashboard,
    pub(crate) deliveries: Arc<DeliveryLog>,
    /// The dashboard's logins.
    pub(crate) sessions: Sessions,
    /// Wrong secrets by client address.
    pub(crate) throttle: Throttle,
    /// Who may say, in `X-Forwarded-For`, who the client is.
    pub(crate) proxies: Proxies,
}

impl Shared {
    /// The client's address: the peer's, or the one a trusted proxy forwarded.
    pub(crate) fn client(&self, req: &HttpRequest) -> Option<std::net::IpAddr> {
        self.proxies.client(req)
    }
}

/// Builds the application of one worker.
pub(crate) fn app(
    shared: web::Data<Shared>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new().configure(|config| routes(config, shared))
}

/// Registers `/`, `/healthz`, `/webhooks/*`, the dashboard (`/dashboard`, `/api/*`,
/// `/assets/*`, `/login`, `/logout`), and a JSON 404 for every other path.
pub(crate) fn routes(config: &mut web::ServiceConfig, shared: web::Data<Shared>) {
    let limit = shared.body_limit;
    config
        .app_data(shared)
        // Limits actix-web's own body extractors (used by `add_webhook` handlers).
        .app_data(web::PayloadConfig::new(limit))
        // First, so that a delivery is routed past no other service; a prefix scope, not
        // a `{name:.*}` pattern: routing costs no regex per request.
        .service(web::scope("/webhooks").default_service(web::to(dispatch)))
        .service(
            web::resource("/")
                .route(web::get().to(landing))
                .route(web::head().to(landing))
                .default_service(web::to(get_only)),
        )
        .service(
            web::resource("/healthz")
                .route(web::get().to(healthz))
                .route(web::head().to(healthz))
                .default_service(web::to(get_only)),
        )
        .configure(crate::dashboard::routes)
        .default_service(web::to(not_found));
}

async fn landing(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    match &shared.custom_ui {
        Some(html) => HttpResponse::Ok()
            .content_type(ContentType::html())
            .body(html.clone()),
        None => crate::dashboard::page(&req, &shared),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .insert_header(NOSNIFF)
        .body(r#"{"status":"ok"}"#)
}

/// Another method than GET or HEAD on `/` or `/healthz`: 405, in JSON like every error.
pub(crate) async fn get_only(req: HttpRequest) -> HttpResponse {
    method_not_allowed(&req, "GET, HEAD")
}

/// Another method than POST on a route that takes POST only: 405.
pub(crate) async fn post_only(req: HttpRequest) -> HttpResponse {
    method_not_allowed(&req, "POST")
}

fn method_not_allowed(req: &HttpRequest, allow: &'static str) -> HttpResponse {
    let only = allow.split(',').next().unwrap_or(allow);
    let mut response = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!(
            "method {} is not allowed on {}: {only} only",
            req.method(),
            req.path()
        ),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

pub(crate) async fn not_found(req: HttpRequest) -> HttpResponse {
    json_error(
        StatusCode::NOT_FOUND,
        &format!("no route for {} {}", req.method(), req.path()),
    )
}

/// Every request under `/webhooks/`.
async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let started = Instant::now();
    let Outcome {
        mut response,
        event,
        body,
        endpoint,
    } = deliver(&req, payload, &shared).await;
    response.headers_mut().insert(NOSNIFF.0, NOSNIFF.1);
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    // Whole microseconds: an integer formats much faster than a `Duration`.
    let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let (action, scope) = match &event {
        Some((action, scope)) => (action.as_str(), scope.as_str()),
        None => ("-", "-"),
    };
    // One line per delivery; the path never carries the query (where a secret may be).
    crate::logging::delivery(&crate::logging::DeliveryLine {
        path: req.path(),
        status,
        latency_us,
        scope,
        action,
    });
    if shared.deliveries.capacity() == 0 {
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
        client: shared.client(&req),
        started: SystemTime::now() - elapsed,
        duration: elapsed,
    };
    shared.deliveries.record(&incoming, response).0
}

/// The answer to a delivery, its event (for the log line) and its body, if it was read.
struct Outcome<'s> {
    response: HttpResponse,
    event: Option<(crate::Action, String)>,
    body: Option<Bytes>,
    endpoint: Option<&'s Endpoint>,
}

impl From<HttpResponse> for Outcome<'_> {
    fn from(response: HttpResponse) -> Self {
        Outcome {
            response,
            event: None,
            body: None,
            endpoint: None,
        }
    }
}

async fn deliver<'s>(req: &HttpRequest, payload: web::Payload, shared: &'s Shared) -> Outcome<'s> {
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
    let body =
        match actix_web::rt::time::timeout(shared.body_timeout, payload.to_bytes_limited(limit))
            .await
        {
            Ok(Ok(Ok(body))) => body,
            Ok(Ok(Err(err))) => return reject(Rejection::BodyRead(err.to_string())),
            Ok(Err(_)) => return reject(Rejection::TooLarge { limit }),
            Err(_) => {
                // The rest of the body may still come: close the connection after answering.
                let mut response = Rejection::BodyTimeout(shared.body_timeout).error_response();
                response
                    .head_mut()
                    .set_connection_type(actix_web::http::ConnectionType::Close);
                return response.into();
            }
        };
    // 4. The handler, guarded against panics and timed.
    let delivery = Delivery::new(req.clone(), body);
    let response = run_handler(endpoint, &delivery, shared).await;
    let event = match delivery.event.into_inner() {
        Some(event) => Some(event),
        // The handler did not parse a `WebhookPayload`: read `event` alone, for the log.
        None if tracing::enabled!(target: "hookserver::delivery", tracing::Level::INFO) => {
            event_of(&delivery.body)
        }
        None => None,
    };
    Outcome {
        response,
        event,
        body: Some(delivery.body),
        endpoint: Some(endpoint),
    }
}

/// Runs an endpoint's handler on a delivery, guarded against panics and within the
/// handler timeout: a delivery, a test delivery and a replay all go through here.
pub(crate) async fn run_handler(
    endpoint: &Endpoint,
    delivery: &Delivery,
    shared: &Shared,
) -> HttpResponse {
    let guarded = AssertUnwindSafe((endpoint.handler)(delivery)).catch_unwind();
    let answered = match shared.handler_timeout {
        Some(limit) => actix_web::rt::time::timeout(limit, guarded)
            .await
            .map_err(|_| limit),
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
            Rejection::HandlerPanicked.error_response()
        }
    }
}

/// `event.action` and `event.scope` of a body, if it has them.
fn event_of(body: &[u8]) -> Option<(crate::Action, String)> {
    #[derive(serde::Deserialize)]
    struct EventOnly {
        event: Option<crate::Event>,
    }
    let event = serde_json::from_slice::<EventOnly>(body).ok()?.event?;
    Some((event.action, event.scope))
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

/// Reads a body that will not be used, without keeping it, when its declared length is
/// within the limit; otherwise the connection is closed after the answer, as actix-web
/// does with an unread body. (actix-web answers `Expect: 100-continue` before any handler
/// runs, so such a client sends its body too.)
async fn drain(mut payload: web::Payload, declared: Option<u64>, limit: usize) {
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

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}
