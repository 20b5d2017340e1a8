//! The endpoints' HTTP side: `/webhooks/*` (the cross-site and secret checks, the body
//! within its limit and time, the handler or the inbox, the log line and the delivery
//! log), `/healthz`,
//! and the JSON answers every route shares (404, 405). What the workers share is
//! [`Shared`].

pub(crate) mod answer;
pub(crate) mod body;
mod dispatch;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};

use crate::access::secret::Secret;
use crate::access::throttle::{Proxies, Throttle};
use crate::deliveries::DeliveryLog;
use crate::endpoint::Table;
use crate::inbox::Inbox;
use crate::metrics::Metrics;
use crate::rejection::{json_error, NOSNIFF};

/// What every worker shares: the routing table, the secret and the limits, the delivery
/// log, and the throttle on wrong secrets.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) table: Table,
    pub(crate) secret: Option<Secret>,
    pub(crate) body_limit: usize,
    pub(crate) body_timeout: Duration,
    pub(crate) handler_timeout: Option<Duration>,
    pub(crate) deliveries: Arc<DeliveryLog>,
    /// Wrong secrets by client address.
    pub(crate) throttle: Throttle,
    /// Who may say, in `X-Forwarded-For`, who the client is.
    pub(crate) proxies: Proxies,
    /// Where queued endpoints store their deliveries (open when one is queued).
    pub(crate) inbox: Option<Inbox>,
    /// What `GET /metrics` reports.
    pub(crate) metrics: Arc<Metrics>,
}

impl Shared {
    /// The client's address: the peer's, or the one a trusted proxy forwarded.
    pub(crate) fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        self.proxies.client(req)
    }
}

/// Registers `/webhooks/*` (first: a delivery is routed past no other service) and
/// `/healthz`, and a JSON 404 for every path no other route takes.
pub(crate) fn routes(config: &mut web::ServiceConfig, shared: web::Data<Shared>) {
    let limit = shared.body_limit;
    // Handed to each delivery by the route itself: no look-up among the app's data.
    let for_deliveries = shared.clone();
    let deliver = move |req, payload| dispatch::dispatch(req, payload, for_deliveries.clone());
    config
        .app_data(shared)
        // Limits actix-web's own body extractors (used by `add_webhook` handlers).
        .app_data(web::PayloadConfig::new(limit))
        // A prefix scope, not a `{name:.*}` pattern: routing costs no regex per request.
        .service(web::scope("/webhooks").default_service(web::to(deliver)))
        .service(
            web::resource("/healthz")
                .route(web::get().to(healthz))
                .route(web::head().to(healthz))
                .default_service(web::to(get_only)),
        )
        .default_service(web::to(not_found));
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

/// Another method than DELETE on a route that takes DELETE only: 405.
pub(crate) async fn delete_only(req: HttpRequest) -> HttpResponse {
    method_not_allowed(&req, "DELETE")
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
