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
//! | `GET /assets/hookserver.css`, `.js` | the page's style and script |

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::{self, ContentType, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use tokio::sync::watch;

use crate::app::{get_only, not_found, post_only, run_handler, Shared};
use crate::deliveries::{Incoming, Kind, Record};
use crate::handler::Delivery;
use crate::landing::{render, LandingInfo, View};
use crate::registry::{Endpoints, WEBHOOKS_PREFIX};
use crate::rejection::json_error;
use crate::secret::{Secret, SECRET_HEADER, SECRET_QUERY_PARAM};

/// The cookie that holds the dashboard's session token (set by `POST /login` when a
/// secret is set: `HttpOnly`, `SameSite=Strict`; it holds an HMAC of the secret, never
/// the secret).
///
/// ```
/// assert_eq!(hookserver::SESSION_COOKIE, "hookserver_session");
/// ```
pub const SESSION_COOKIE: &str = "hookserver_session";

/// The Hub's sample payloads, built into the crate (from real deliveries).
pub(crate) const SAMPLES: &[(&str, &str)] = &[
    (
        "discussion.create (hub-docs)",
        include_str!("../samples/discussion.create.hub-docs.json"),
    ),
    (
        "discussion.create (hfhub-tests)",
        include_str!("../samples/discussion.create.hfhub-tests.json"),
    ),
    (
        "discussion.update (hfhub-tests)",
        include_str!("../samples/discussion.update.hfhub-tests.json"),
    ),
    (
        "repo.content.update (hfhub-tests)",
        include_str!("../samples/repo.content.update.hfhub-tests.json"),
    ),
];

const STYLE: &str = include_str!("../assets/hookserver.css");
const SCRIPT: &str = include_str!("../assets/hookserver.js");

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

/// What the dashboard needs, built once per server.
#[derive(Debug)]
pub(crate) struct Dashboard {
    /// The page for visitors without the secret: the endpoints, and the login form.
    public_page: Bytes,
    /// The public page after a wrong secret (answered 403).
    wrong_page: Bytes,
    /// The page with the deliveries.
    full_page: Bytes,
    /// The session token, when a secret is set.
    token: Option<String>,
    webhooks: Vec<WebhookInfo>,
    secret_set: bool,
    /// Host names the dashboard answers on without a secret, beside `localhost` and IP
    /// addresses: the public URL's and the listening host's.
    hosts: Vec<String>,
    /// The public URL's `host[:port]`, such as `me-bot.hf.space`: an `Origin` the
    /// state-changing routes accept, beside the request's own host.
    public_authority: String,
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
        listen_host: &str,
        secret: Option<&Secret>,
        on_space: bool,
        closing: Arc<watch::Sender<bool>>,
    ) -> Self {
        let public_host = base_url
            .split_once("://")
            .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
        let hosts = [host_name(public_host), host_name(listen_host)]
            .into_iter()
            .filter(|host| !host.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        let info = |view| LandingInfo {
            endpoints,
            base_url,
            secret_set: secret.is_some(),
            on_space,
            view,
        };
        Dashboard {
            public_page: Bytes::from(render(&info(View::Public {
                wrong_secret: false,
            }))),
            wrong_page: Bytes::from(render(&info(View::Public { wrong_secret: true }))),
            full_page: Bytes::from(render(&info(View::Full))),
            token: secret.map(Secret::session_token),
            webhooks: endpoints
                .iter()
                .map(|e| WebhookInfo {
                    name: e.name.clone(),
                    path: e.path.to_string(),
                    url: format!("{base_url}{}", e.path),
                })
                .collect(),
            secret_set: secret.is_some(),
            hosts,
            public_authority: public_host.to_ascii_lowercase(),
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
pub(crate) fn routes(config: &mut web::ServiceConfig) {
    config
        .service(get("/dashboard", dashboard_page))
        .service(get("/assets/hookserver.css", style))
        .service(get("/assets/hookserver.js", script))
        .service(post("/login", login))
        .service(post("/logout", logout))
        .service(
            web::scope("/api")
                .service(get("/webhooks", api_webhooks))
                .service(get("/samples", api_samples))
                .service(get("/deliveries", api_deliveries))
                .service(get("/events", api_events))
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
) -> HttpResponse {
    use actix_web::http::Method;
    let rest = req.match_info().unprocessed().to_owned();
    let rest = rest.strip_prefix('/').unwrap_or(&rest);
    let method = req.method();
    let answer = if let Some(id) = rest.strip_prefix("deliveries/") {
        match id.strip_suffix("/redeliver") {
            Some(id) if *method == Method::POST => api_redeliver(&req, &shared, id).await,
            Some(_) => return post_only(req).await,
            None if id.contains('/') => return not_found(req).await,
            None if *method == Method::GET || *method == Method::HEAD => {
                api_delivery(&req, &shared, id)
            }
            None => return get_only(req).await,
        }
    } else if let Some(name) = rest
        .strip_prefix("webhooks/")
        .and_then(|r| r.strip_suffix("/test"))
    {
        if *method != Method::POST {
            return post_only(req).await;
        }
        api_test(&req, payload, &shared, name).await
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

// --- Errors ----------------------------------------------------------------------------

/// Why the dashboard refuses a request: answered in JSON like every error.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
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
        response
    }
}

type ApiResult = Result<HttpResponse, ApiError>;

// --- Access ----------------------------------------------------------------------------

/// Who asks.
#[derive(Debug, PartialEq, Eq)]
enum Access {
    /// No secret is set, or the request carries it (cookie or bearer).
    Granted,
    /// No credentials, or a stale cookie.
    Missing,
    /// A wrong bearer secret.
    Wrong,
}

fn access(req: &HttpRequest, shared: &Shared) -> Access {
    let (Some(secret), Some(token)) = (&shared.secret, &shared.dashboard.token) else {
        return Access::Granted;
    };
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.as_bytes();
        let given = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "));
        return match given {
            Some(given) if secret.matches(given.trim_ascii()) => Access::Granted,
            _ => Access::Wrong,
        };
    }
    match req.cookie(SESSION_COOKIE) {
        Some(cookie) if ct_eq(cookie.value().as_bytes(), token.as_bytes()) => Access::Granted,
        _ => Access::Missing,
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}

/// The host name of a `Host` header value (or of `host:port`), without the port.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Without a secret, the dashboard answers only requests addressed to `localhost`, an IP
/// address, or the server's own public or listening host: a page elsewhere that points
/// a name of its own at 127.0.0.1 (DNS rebinding) cannot read the deliveries.
fn trusted_host(req: &HttpRequest, dashboard: &Dashboard) -> bool {
    let Some(host) = req.headers().get(header::HOST) else {
        // HTTP/1.0 without Host: not a browser's request.
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = host_name(host.trim()).to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::IpAddr>().is_ok()
        || dashboard.hosts.contains(&name)
}

/// Lets through only requests with access to the dashboard.
fn guard(req: &HttpRequest, shared: &Shared) -> Result<(), ApiError> {
    if shared.secret.is_none() && !trusted_host(req, &shared.dashboard) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "without a webhook secret, the dashboard answers only on localhost, an IP address or \
             the server's own host: set a secret to open it under another name",
        ));
    }
    match access(req, shared) {
        Access::Granted => Ok(()),
        Access::Wrong => Err(ApiError::new(StatusCode::FORBIDDEN, "Invalid webhook secret.")),
        Access::Missing => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the dashboard needs the webhook secret: log in on /dashboard, or send `Authorization: Bearer <secret>`.",
        )),
    }
}

/// A state-changing request must come from the dashboard's own origin: a browser says
/// where a request comes from (`Sec-Fetch-Site`, `Origin`), and a cross-site one is
/// refused. Clients that say neither (curl, scripts) are not browsers and carry no
/// ambient cookie of ours unless they chose to.
fn same_origin(req: &HttpRequest, dashboard: &Dashboard) -> Result<(), ApiError> {
    let cross = |why: &str| {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("cross-site request refused: {why}"),
        ))
    };
    if let Some(site) = req.headers().get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return cross("Sec-Fetch-Site is not same-origin");
        }
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let Some(origin) = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, authority)| authority.to_ascii_lowercase())
        else {
            return cross("Origin is not this server");
        };
        // The host the request was sent to: its own `Host`, the one a proxy in front says
        // it forwarded (a page elsewhere cannot set that header on a form or a simple
        // request), or the public URL's.
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase);
        let forwarded = req.connection_info().host().to_ascii_lowercase();
        let ours = host.as_deref() == Some(origin.as_str())
            || forwarded == origin
            || (!dashboard.public_authority.is_empty() && dashboard.public_authority == origin);
        if !ours {
            return cross("Origin is not this server");
        }
    }
    Ok(())
}

// --- Pages -----------------------------------------------------------------------------

/// The dashboard page, as `/` and `/dashboard` serve it.
pub(crate) fn page(req: &HttpRequest, shared: &Shared) -> HttpResponse {
    let body = match access(req, shared) {
        Access::Granted => shared.dashboard.full_page.clone(),
        _ => shared.dashboard.public_page.clone(),
    };
    html(StatusCode::OK, shared.dashboard.csp, body)
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

async fn dashboard_page(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    page(&req, &shared)
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

/// Where to go after logging in or out: `/` or `/dashboard`, nothing else.
fn next_page(form: &[(String, String)]) -> &'static str {
    match form
        .iter()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.as_str())
    {
        Some("/dashboard") => "/dashboard",
        _ => "/",
    }
}

fn see_other(location: &'static str) -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::SeeOther();
    builder.insert_header((header::LOCATION, location));
    builder
}

/// Whether the page was reached over HTTPS (directly or behind a proxy, as on a Space).
fn is_https(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// Reads a request's body within `limit` and the body timeout; every failure in JSON.
async fn read_body(
    payload: web::Payload,
    limit: usize,
    shared: &Shared,
) -> Result<Bytes, ApiError> {
    match actix_web::rt::time::timeout(shared.body_timeout, payload.to_bytes_limited(limit)).await {
        Ok(Ok(Ok(body))) => Ok(body),
        Ok(Ok(Err(err))) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("cannot read the body: {err}"),
        )),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than the limit of {limit} bytes"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {}",
                humantime::format_duration(shared.body_timeout)
            ),
        )),
    }
}

async fn login(req: HttpRequest, payload: web::Payload, shared: web::Data<Shared>) -> ApiResult {
    same_origin(&req, &shared.dashboard)?;
    let body = read_body(payload, FORM_LIMIT, &shared).await?;
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let next = next_page(&form);
    let (Some(secret), Some(token)) = (&shared.secret, &shared.dashboard.token) else {
        return Ok(see_other(next).finish());
    };
    let given = form
        .iter()
        .find(|(k, _)| k == "secret")
        .map_or("", |(_, v)| v.as_str());
    if !secret.matches(given.trim().as_bytes()) {
        tracing::warn!("dashboard login with a wrong secret");
        return Ok(html(
            StatusCode::FORBIDDEN,
            shared.dashboard.csp,
            shared.dashboard.wrong_page.clone(),
        ));
    }
    let cookie = Cookie::build(SESSION_COOKIE, token.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(&req))
        .finish();
    Ok(see_other(next).cookie(cookie).finish())
}

async fn logout(req: HttpRequest, payload: web::Payload, shared: web::Data<Shared>) -> ApiResult {
    same_origin(&req, &shared.dashboard)?;
    let body = read_body(payload, FORM_LIMIT, &shared).await?;
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let mut cookie = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    cookie.make_removal();
    Ok(see_other(next_page(&form)).cookie(cookie).finish())
}

// --- The JSON API ----------------------------------------------------------------------

fn json(value: &impl Serialize) -> ApiResult {
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(value))
}

async fn api_webhooks(req: HttpRequest, shared: web::Data<Shared>) -> ApiResult {
    guard(&req, &shared)?;
    json(&serde_json::json!({
        "webhooks": shared.dashboard.webhooks,
        "secret_set": shared.dashboard.secret_set,
        "delivery_log": shared.deliveries.capacity(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn api_samples(req: HttpRequest, shared: web::Data<Shared>) -> ApiResult {
    guard(&req, &shared)?;
    let samples: Vec<_> = SAMPLES
        .iter()
        .map(|(name, body)| serde_json::json!({ "name": name, "body": body }))
        .collect();
    json(&serde_json::json!({ "samples": samples }))
}

async fn api_deliveries(req: HttpRequest, shared: web::Data<Shared>) -> ApiResult {
    guard(&req, &shared)?;
    let records = shared.deliveries.newest_first();
    let summaries: Vec<_> = records.iter().map(|r| r.summary()).collect();
    json(&serde_json::json!({
        "deliveries": summaries,
        "capacity": shared.deliveries.capacity(),
    }))
}

/// The `{id}` of a route, or the answer to a bad one.
fn record_of(raw: &str, shared: &Shared) -> Result<Arc<Record>, ApiError> {
    let Ok(id) = raw.parse::<u64>() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no delivery {raw:?}: ids are whole numbers"),
        ));
    };
    shared.deliveries.get(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no delivery {id} in the log (it keeps the last {})",
                shared.deliveries.capacity()
            ),
        )
    })
}

fn api_delivery(req: &HttpRequest, shared: &Shared, id: &str) -> ApiResult {
    guard(req, shared)?;
    json(&record_of(id, shared)?.detail())
}

async fn api_redeliver(req: &HttpRequest, shared: &web::Data<Shared>, id: &str) -> ApiResult {
    guard(req, shared)?;
    same_origin(req, &shared.dashboard)?;
    let record = record_of(id, shared)?;
    let Some(path) = record.endpoint.as_deref() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "delivery {} reached no endpoint ({} {}): there is nothing to send it to",
                record.id,
                record.method,
                record.path()
            ),
        ));
    };
    if !record.body_complete() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "delivery {} was not kept whole (its body was not read, or was over {} bytes): it cannot be sent again",
                record.id,
                crate::deliveries::KEPT_BODY
            ),
        ));
    }
    let mut headers = record.headers();
    for name in [
        SECRET_HEADER,
        "authorization",
        "proxy-authorization",
        "cookie",
    ] {
        headers.remove(name);
    }
    headers.insert(
        HeaderName::from_static("x-hookserver-replay-of"),
        HeaderValue::from(record.id),
    );
    let query = without_secret(&record.query);
    let sent = Send {
        kind: Kind::Replay,
        replay_of: Some(record.id),
        path,
        query: &query,
        headers,
        body: Bytes::copy_from_slice(record.body()),
    };
    send(req, shared, sent).await
}

async fn api_test(
    req: &HttpRequest,
    payload: web::Payload,
    shared: &web::Data<Shared>,
    name: &str,
) -> ApiResult {
    guard(req, shared)?;
    same_origin(req, &shared.dashboard)?;
    let path = format!("{WEBHOOKS_PREFIX}{name}");
    if !shared.table.contains_key(name) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no webhook endpoint at {path}"),
        ));
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the test delivery as JSON: {\"sample\": NAME} or {\"body\": TEXT}",
        ));
    }
    // The test's JSON wraps the payload in a string: room for its escapes.
    let body = read_body(
        payload,
        shared.body_limit.saturating_mul(2).max(FORM_LIMIT),
        shared,
    )
    .await?;
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TestSend {
        sample: Option<String>,
        body: Option<String>,
    }
    let test: TestSend = match serde_json::from_slice(&body) {
        Ok(test) => test,
        Err(err) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("send {{\"sample\": NAME}} or {{\"body\": TEXT}}: {err}"),
            ));
        }
    };
    let body = match (test.sample, test.body) {
        (Some(sample), None) => match SAMPLES.iter().find(|(name, _)| *name == sample) {
            Some((_, body)) => Bytes::from_static(body.as_bytes()),
            None => {
                let known: Vec<&str> = SAMPLES.iter().map(|(name, _)| *name).collect();
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no sample {sample:?}; the samples are {known:?}"),
                ));
            }
        },
        (None, Some(body)) if body.len() > shared.body_limit => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the test delivery is larger than the body limit of {} bytes",
                    shared.body_limit
                ),
            ))
        }
        (None, Some(body)) => Bytes::from(body),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "send exactly one of {\"sample\": NAME} and {\"body\": TEXT}",
            ));
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::USER_AGENT,
        HeaderValue::from_static(concat!("hookserver-dashboard/", env!("CARGO_PKG_VERSION"))),
    );
    headers.insert(
        HeaderName::from_static("x-hookserver-test"),
        HeaderValue::from_static("1"),
    );
    let sent = Send {
        kind: Kind::Test,
        replay_of: None,
        path: &path,
        query: "",
        headers,
        body,
    };
    send(req, shared, sent).await
}

/// A delivery the dashboard sends.
struct Send<'a> {
    kind: Kind,
    replay_of: Option<u64>,
    path: &'a str,
    query: &'a str,
    headers: HeaderMap,
    body: Bytes,
}

/// Sends a test delivery or a replay through the endpoint's handler (as a delivery from
/// the Hub goes, past the secret check: the dashboard's caller has shown the secret), and
/// records it. Answers the recorded delivery in full.
async fn send(req: &HttpRequest, shared: &web::Data<Shared>, sent: Send<'_>) -> ApiResult {
    let name = &sent.path[WEBHOOKS_PREFIX.len()..];
    let Some(endpoint) = shared.table.get(name) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("no webhook endpoint at {} any more", sent.path),
        ));
    };
    let mut headers = sent.headers;
    if let Some(secret) = &shared.secret {
        // The handler sees what a delivery from the Hub carries; the log redacts it.
        if let Ok(value) = HeaderValue::from_bytes(secret.expose()) {
            headers.insert(HeaderName::from_static(SECRET_HEADER), value);
        }
    }
    let uri = if sent.query.is_empty() {
        sent.path.to_owned()
    } else {
        format!("{}?{}", sent.path, sent.query)
    };
    let mut request = actix_web::test::TestRequest::post()
        .uri(&uri)
        .app_data(shared.clone());
    for (name, value) in &headers {
        request = request.append_header((name.clone(), value.clone()));
    }
    if let Some(peer) = req.peer_addr() {
        request = request.peer_addr(peer);
    }
    let request = request.to_http_request();
    let received = SystemTime::now();
    let started = Instant::now();
    let delivery = Delivery::new(request, sent.body.clone());
    let response = run_handler(endpoint, &delivery, shared).await;
    let duration = started.elapsed();
    tracing::info!(
        target: "hookserver::dashboard",
        kind = ?sent.kind,
        endpoint = %sent.path,
        status = response.status().as_u16(),
        "dashboard delivery"
    );
    let incoming = Incoming {
        kind: sent.kind,
        replay_of: sent.replay_of,
        endpoint: Some(&endpoint.path),
        method: &actix_web::http::Method::POST,
        path: sent.path,
        query: sent.query,
        headers: &headers,
        body: Some(&sent.body),
        started: received,
        duration,
    };
    let (_, record) = shared.deliveries.record(&incoming, response);
    json(&serde_json::json!({
        "delivery": record.detail(),
        "kept": shared.deliveries.capacity() > 0,
    }))
}

/// A query string without its `secret` parameters.
fn without_secret(query: &str) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key != SECRET_QUERY_PARAM {
            out.append_pair(&key, &value);
        }
    }
    out.finish()
}

// --- Live events -----------------------------------------------------------------------

/// How often an idle event stream sends a comment, so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

async fn api_events(req: HttpRequest, shared: web::Data<Shared>) -> ApiResult {
    guard(&req, &shared)?;
    struct State {
        deliveries: tokio::sync::broadcast::Receiver<Arc<Record>>,
        closing: watch::Receiver<bool>,
        started: bool,
    }
    let state = State {
        deliveries: shared.deliveries.subscribe(),
        closing: shared.dashboard.closing.subscribe(),
        started: false,
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        use tokio::sync::broadcast::error::RecvError;
        if !state.started {
            state.started = true;
            let hello = Bytes::from_static(b"retry: 2000\n: live\n\n");
            return Some((Ok::<_, actix_web::Error>(hello), state));
        }
        if *state.closing.borrow_and_update() {
            return None;
        }
        let event = tokio::select! {
            received = state.deliveries.recv() => match received {
                Ok(record) => {
                    let data = serde_json::to_string(&record.summary()).unwrap_or_default();
                    format!("event: delivery\ndata: {data}\n\n")
                }
                // Too slow a reader: it missed some, and reloads the list.
                Err(RecvError::Lagged(missed)) => format!("event: lagged\ndata: {missed}\n\n"),
                Err(RecvError::Closed) => return None,
            },
            _ = state.closing.changed() => return None,
            () = actix_web::rt::time::sleep(KEEP_ALIVE) => ": keep-alive\n\n".to_owned(),
        };
        Some((Ok(Bytes::from(event)), state))
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_hub_payloads() {
        for (name, body) in SAMPLES {
            let payload = crate::WebhookPayload::from_slice(body.as_bytes());
            assert!(payload.is_ok(), "{name}: {payload:?}");
        }
    }

    #[test]
    fn next_page_is_one_of_ours() {
        let form = |v: &str| vec![("next".to_owned(), v.to_owned())];
        assert_eq!(next_page(&form("/dashboard")), "/dashboard");
        assert_eq!(next_page(&form("https://evil.example/")), "/");
        assert_eq!(next_page(&form("//evil.example")), "/");
        assert_eq!(next_page(&[]), "/");
    }

    #[test]
    fn the_secret_leaves_the_query() {
        assert_eq!(without_secret("a=1&secret=x&b=2"), "a=1&b=2");
        assert_eq!(without_secret(""), "");
    }

    fn dashboard(base_url: &str, on_space: bool) -> Dashboard {
        Dashboard::new(
            &Endpoints::default(),
            base_url,
            "127.0.0.1",
            None,
            on_space,
            Arc::new(watch::Sender::new(false)),
        )
    }

    #[test]
    fn the_origin_may_be_the_host_the_forwarded_host_or_the_public_url() {
        use actix_web::test::TestRequest;
        let local = dashboard("http://127.0.0.1:7860", false);
        let space = dashboard("https://me-bot.hf.space", true);
        let request = |origin: &str, host: &str, forwarded: Option<&str>| {
            let mut request = TestRequest::post()
                .insert_header(("origin", origin))
                .insert_header(("host", host));
            if let Some(forwarded) = forwarded {
                request = request.insert_header(("x-forwarded-host", forwarded));
            }
            request.to_http_request()
        };
        let ok = |req: &HttpRequest, d: &Dashboard| same_origin(req, d).is_ok();
        assert!(ok(
            &request("http://127.0.0.1:7860", "127.0.0.1:7860", None),
            &local
        ));
        assert!(ok(
            &request("http://LOCALHOST:7860", "localhost:7860", None),
            &local
        ));
        assert!(!ok(
            &request("http://evil.example", "127.0.0.1:7860", None),
            &local
        ));
        assert!(!ok(&request("null", "127.0.0.1:7860", None), &local));
        // Behind a proxy that rewrites Host: what it forwarded, or the public URL.
        let behind = request(
            "https://me-bot.hf.space",
            "10.0.0.5:7860",
            Some("me-bot.hf.space"),
        );
        assert!(ok(&behind, &local));
        assert!(ok(
            &request("https://me-bot.hf.space", "10.0.0.5:7860", None),
            &space
        ));
        assert!(!ok(
            &request("https://other.hf.space", "10.0.0.5:7860", None),
            &space
        ));
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

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("127.0.0.1:7860"), "127.0.0.1");
        assert_eq!(host_name("[::1]:7860"), "::1");
        assert_eq!(host_name("me-bot.hf.space"), "me-bot.hf.space");
        assert_eq!(host_name("bore.pub:40123"), "bore.pub");
        assert_eq!(host_name("0.0.0.0"), "0.0.0.0");
    }

    #[test]
    fn credentials_are_known() {
        use crate::deliveries::is_credential;
        assert!(is_credential("X-Webhook-Secret"));
        assert!(is_credential("authorization"));
        assert!(!is_credential("content-type"));
    }
}
