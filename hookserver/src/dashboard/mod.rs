//! The dashboard: the landing page with recent deliveries, test sends and replays, the
//! JSON API behind it, its live event stream, and who may see it.
//!
//! Routes (all outside `/webhooks/`):
//!
//! | route | what |
//! |---|---|
//! | `GET /dashboard` | the dashboard page (also `GET /` unless `.ui(...)` replaced it) |
//! | `POST /login`, `POST /logout` | the session cookie, when a secret is set |
//! | `GET /api/webhooks` | the endpoints, and whether a secret is set |
//! | `GET /api/samples` | the Hub's sample payloads built into the crate |
//! | `GET /api/deliveries` | the recent deliveries, newest first |
//! | `GET /api/deliveries/{id}` | one delivery: request (secret redacted), body, answer |
//! | `POST /api/deliveries/{id}/redeliver` | sends a recorded delivery again |
//! | `POST /api/webhooks/{name}/test` | sends a test delivery to an endpoint |
//! | `GET /api/events` | each new delivery, live (Server-Sent Events) |
//! | `GET /api/inbox` | the inbox of queued endpoints: counts by state, newest deliveries |
//! | `GET /api/inbox/dead` | the dead letters, with each attempt's error |
//! | `POST /api/inbox/{id}/retry`, `DELETE /api/inbox/{id}` | retry a dead letter now, discard a delivery |
//! | `GET /metrics` | Prometheus metrics (OpenMetrics text) |
//! | `GET /assets/hookserver.css`, `.js` | the page's style and script |
//!
//! One module each: `page` renders the pages, `access` decides who may see and do what
//! (and logs in and out), `api` answers the JSON routes, `inbox` the inbox's, `events`
//! streams new deliveries.

mod access;
mod api;
mod events;
mod inbox;
mod page;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, ContentType, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use tokio::sync::watch;

use crate::access::session::Sessions;
use crate::endpoint::Endpoints;
use crate::http::{get_only, not_found, post_only, Shared};
use crate::rejection::{json_error, Rejection};
use access::{access, login_allowed, Access};
use page::{render, LandingInfo, Login, View};

/// The cookie that holds the dashboard's session id over plain HTTP on this machine (set
/// by `POST /login` when a secret is set: `HttpOnly`, `SameSite=Strict`, a random id kept
/// by the server with its expiry, never anything derived from the secret).
///
/// ```
/// assert_eq!(hookserver::SESSION_COOKIE, "hookserver_session");
/// ```
pub const SESSION_COOKIE: &str = "hookserver_session";

/// The session cookie over HTTPS: the `__Host-` prefix makes the browser keep it `Secure`,
/// for this host alone, on every path.
///
/// ```
/// assert_eq!(hookserver::SECURE_SESSION_COOKIE, "__Host-hookserver_session");
/// ```
pub const SECURE_SESSION_COOKIE: &str = "__Host-hookserver_session";

/// How many live event streams (`GET /api/events`) are open at most by default
/// (`HOOKSERVER_EVENT_STREAMS`); past it, a new one is refused (503).
///
/// ```
/// assert_eq!(hookserver::DEFAULT_EVENT_STREAMS, 32);
/// ```
pub const DEFAULT_EVENT_STREAMS: usize = 32;

const STYLE: &str = include_str!("../../assets/hookserver.css");
const SCRIPT: &str = include_str!("../../assets/hookserver.js");

/// The pages' Content-Security-Policy: the page's own style and script only, so that
/// nothing from a payload can run even if it reached the page unescaped; no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The same on a Space, whose page on huggingface.co shows the app in a frame.
const CSP_ON_SPACE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'self' https://huggingface.co";

/// The largest login or logout form the dashboard takes.
const FORM_LIMIT: usize = 16 * 1024;

/// How the dashboard is set up (from the server's configuration).
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    pub(crate) secret_set: bool,
    pub(crate) on_space: bool,
    /// How many live event streams may be open.
    pub(crate) max_streams: usize,
    /// How long a login lasts.
    pub(crate) session_ttl: Duration,
    /// `.ui(...)`'s HTML for `GET /`.
    pub(crate) custom_ui: Option<String>,
}

/// What the dashboard needs, built once per server.
#[derive(Debug)]
pub(crate) struct Dashboard {
    /// The page for visitors without the secret: the endpoints, and the login form.
    public_page: Bytes,
    /// The public page after a wrong secret (answered 403).
    wrong_page: Bytes,
    /// The public page to an address that sent too many wrong secrets (answered 429).
    throttled_page: Bytes,
    /// The public page over plain HTTP to another machine: no login there.
    plain_http_page: Bytes,
    /// The page without a secret, to another machine: the endpoints, no deliveries.
    local_only_page: Bytes,
    /// The page with the deliveries.
    full_page: Bytes,
    webhooks: Vec<WebhookInfo>,
    secret_set: bool,
    /// The public URL's origin, such as `https://me-bot.hf.space`: an `Origin` the
    /// state-changing routes accept, beside the request's own.
    public_origin: String,
    /// Live event streams open now, and at most.
    streams: Arc<AtomicUsize>,
    max_streams: usize,
    /// The page `GET /` answers instead: `.ui(...)`'s HTML.
    custom_ui: Option<Bytes>,
    /// The logins.
    pub(crate) sessions: Sessions,
    /// The pages' Content-Security-Policy.
    csp: &'static str,
    /// Set to `true` when the server stops: live views end.
    closing: Arc<watch::Sender<bool>>,
}

#[derive(Debug, Serialize)]
struct WebhookInfo {
    name: String,
    path: String,
    url: String,
}

impl Dashboard {
    /// The dashboard of a server with these endpoints, named with `base_url`.
    pub(crate) fn new(
        endpoints: &Endpoints,
        base_url: &str,
        settings: &Settings,
        closing: Arc<watch::Sender<bool>>,
    ) -> Self {
        let Settings {
            secret_set,
            on_space,
            max_streams,
            session_ttl,
            ref custom_ui,
        } = *settings;
        let public_origin = base_url
            .split_once("://")
            .map_or(String::new(), |(scheme, rest)| {
                format!("{scheme}://{}", rest.split('/').next().unwrap_or(""))
            })
            .to_ascii_lowercase();
        let info = |view| LandingInfo {
            endpoints,
            base_url,
            secret_set,
            on_space,
            view,
        };
        Dashboard {
            public_page: Bytes::from(render(&info(View::Public(Login::Form)))),
            wrong_page: Bytes::from(render(&info(View::Public(Login::WrongSecret)))),
            throttled_page: Bytes::from(render(&info(View::Public(Login::Throttled)))),
            plain_http_page: Bytes::from(render(&info(View::Public(Login::PlainHttp)))),
            local_only_page: Bytes::from(render(&info(View::LocalOnly))),
            full_page: Bytes::from(render(&info(View::Full))),
            webhooks: endpoints
                .iter()
                .map(|e| WebhookInfo {
                    name: e.name.clone(),
                    path: e.path.to_string(),
                    url: format!("{base_url}{}", e.path),
                })
                .collect(),
            secret_set,
            public_origin,
            custom_ui: custom_ui.clone().map(Bytes::from),
            sessions: Sessions::new(session_ttl),
            streams: Arc::new(AtomicUsize::new(0)),
            max_streams,
            csp: if on_space { CSP_ON_SPACE } else { CSP },
            closing,
        }
    }

    /// Ends every live view (the server is stopping).
    pub(crate) fn close(closing: &watch::Sender<bool>) {
        closing.send_replace(true);
    }
}

/// Registers the dashboard's routes.
pub(crate) fn routes(config: &mut web::ServiceConfig, dashboard: web::Data<Dashboard>) {
    config
        .app_data(dashboard)
        .service(get("/", landing))
        .service(get("/dashboard", dashboard_page))
        .service(get("/assets/hookserver.css", style))
        .service(get("/assets/hookserver.js", script))
        .service(post("/login", access::login))
        .service(post("/logout", access::logout))
        .service(get("/metrics", metrics))
        .service(
            web::scope("/api")
                .service(get("/webhooks", api::webhooks))
                .service(get("/samples", api::samples))
                .service(get("/deliveries", api::deliveries))
                .service(get("/events", events::stream))
                .service(get("/inbox", inbox::summary))
                .service(get("/inbox/dead", inbox::dead))
                // `deliveries/{id}`, `deliveries/{id}/redeliver`, `webhooks/{name}/test`:
                // read from the path here, not by actix-web patterns (which keep their
                // capture names for good each time an app is built, and match by regex).
                .default_service(web::to(api_with_parameters)),
        );
}

/// The API's routes with a parameter in their path; anything else under `/api/` is 404.
async fn api_with_parameters(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
    dashboard: web::Data<Dashboard>,
) -> HttpResponse {
    use actix_web::http::Method;
    let rest = req.match_info().unprocessed().to_owned();
    let rest = rest.strip_prefix('/').unwrap_or(&rest);
    let method = req.method();
    let answer = if let Some(id) = rest.strip_prefix("deliveries/") {
        match id.strip_suffix("/redeliver") {
            Some(id) if *method == Method::POST => {
                api::redeliver(&req, &shared, &dashboard, id).await
            }
            Some(_) => return post_only(req).await,
            None if id.contains('/') => return not_found(req).await,
            None if *method == Method::GET || *method == Method::HEAD => {
                api::delivery(&req, &shared, &dashboard, id)
            }
            None => return get_only(req).await,
        }
    } else if let Some(id) = rest.strip_prefix("inbox/") {
        match id.strip_suffix("/retry") {
            Some(id) if *method == Method::POST => {
                inbox::act(&req, &shared, &dashboard, id, inbox::Action::Retry).await
            }
            Some(_) => return post_only(req).await,
            None if id.contains('/') => return not_found(req).await,
            None if *method == Method::DELETE => {
                inbox::act(&req, &shared, &dashboard, id, inbox::Action::Discard).await
            }
            None => return crate::http::delete_only(req).await,
        }
    } else if let Some(name) = rest
        .strip_prefix("webhooks/")
        .and_then(|r| r.strip_suffix("/test"))
    {
        if *method != Method::POST {
            return post_only(req).await;
        }
        api::test(&req, payload, &shared, &dashboard, name).await
    } else {
        return not_found(req).await;
    };
    answer.unwrap_or_else(|err| actix_web::ResponseError::error_response(&err))
}

fn get<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(web::to(get_only))
}

fn post<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(post_only))
}

/// `GET /`: `.ui(...)`'s page, or the dashboard's.
async fn landing(
    req: HttpRequest,
    shared: web::Data<Shared>,
    dashboard: web::Data<Dashboard>,
) -> HttpResponse {
    match &dashboard.custom_ui {
        Some(html) => HttpResponse::Ok()
            .content_type(ContentType::html())
            .body(html.clone()),
        None => page(&req, &shared, &dashboard),
    }
}

async fn dashboard_page(
    req: HttpRequest,
    shared: web::Data<Shared>,
    dashboard: web::Data<Dashboard>,
) -> HttpResponse {
    page(&req, &shared, &dashboard)
}

/// The dashboard page, as `/` and `/dashboard` serve it.
fn page(req: &HttpRequest, shared: &Shared, dashboard: &Dashboard) -> HttpResponse {
    let body = match access(req, shared, dashboard) {
        Access::Granted => dashboard.full_page.clone(),
        Access::LocalOnly => dashboard.local_only_page.clone(),
        _ if !login_allowed(req) => dashboard.plain_http_page.clone(),
        _ => dashboard.public_page.clone(),
    };
    html(StatusCode::OK, dashboard.csp, body)
}

fn html(status: StatusCode, csp: &'static str, body: impl Into<Bytes>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(ContentType::html())
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.into())
}

/// `GET /metrics`: the Prometheus metrics, with the API's access rules (a scraper sends
/// `Authorization: Bearer <secret>`).
async fn metrics(
    req: HttpRequest,
    shared: web::Data<Shared>,
    dashboard: web::Data<Dashboard>,
) -> HttpResponse {
    if let Err(err) = access::guard(&req, &shared, &dashboard) {
        return actix_web::ResponseError::error_response(&err);
    }
    let counts = match &shared.inbox {
        Some(inbox) => inbox.store.counts().await.ok(),
        None => None,
    };
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(shared.metrics.encode(counts))
}

async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

// --- Errors ----------------------------------------------------------------------------

/// Why the dashboard refuses a request: answered in JSON like every error.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    /// Seconds for `Retry-After` (429, 503).
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = json_error(self.status, &self.message);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hookserver\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

type ApiResult = Result<HttpResponse, ApiError>;

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        use actix_web::ResponseError;
        ApiError::new(rejection.status_code(), rejection.to_string())
    }
}

/// Reads a request's body within `limit` and the body timeout; every failure in JSON.
async fn read_body(
    payload: web::Payload,
    limit: usize,
    shared: &Shared,
) -> Result<Bytes, ApiError> {
    let now = std::time::Instant::now();
    crate::http::body::read_limited(payload, limit, shared.body_timeout, now)
        .await
        .map_err(ApiError::from)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) fn dashboard(base_url: &str, on_space: bool) -> Dashboard {
        let settings = Settings {
            on_space,
            max_streams: DEFAULT_EVENT_STREAMS,
            ..Settings::default()
        };
        Dashboard::new(
            &Endpoints::default(),
            base_url,
            &settings,
            Arc::new(watch::Sender::new(false)),
        )
    }

    #[test]
    fn a_space_may_frame_the_page_on_huggingface_co() {
        assert!(dashboard("", false).csp.contains("frame-ancestors 'none'"));
        let csp = dashboard("https://me-bot.hf.space", true).csp;
        assert!(
            csp.contains("frame-ancestors 'self' https://huggingface.co"),
            "{csp}"
        );
        assert!(csp.contains("script-src 'self'"));
    }
}
