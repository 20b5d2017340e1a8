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

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
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
use crate::landing::{render, LandingInfo, Login, View};
use crate::registry::{Endpoints, WEBHOOKS_PREFIX};
use crate::rejection::{json_error, NOSNIFF};
use crate::secret::{Secret, SECRET_HEADER, SECRET_QUERY_PARAM};
use crate::throttle::{canonical, retry_after_secs, Guess};

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
        secret: Option<&Secret>,
        on_space: bool,
        max_streams: usize,
        closing: Arc<watch::Sender<bool>>,
    ) -> Self {
        let public_origin = base_url
            .split_once("://")
            .map_or(String::new(), |(scheme, rest)| {
                format!("{scheme}://{}", rest.split('/').next().unwrap_or(""))
            })
            .to_ascii_lowercase();
        let info = |view| LandingInfo {
            endpoints,
            base_url,
            secret_set: secret.is_some(),
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
            secret_set: secret.is_some(),
            public_origin,
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

// --- Access ----------------------------------------------------------------------------

/// Who asks.
#[derive(Debug, PartialEq, Eq)]
enum Access {
    /// The request carries the secret (cookie or bearer), or no secret is set and it
    /// comes from this machine.
    Granted,
    /// No secret is set, and the request does not come from this machine.
    LocalOnly,
    /// No credentials, or a stale or closed session.
    Missing,
    /// A wrong bearer secret.
    Wrong,
    /// This address sent too many wrong secrets: wait this long.
    Throttled(Duration),
}

fn access(req: &HttpRequest, shared: &Shared) -> Access {
    let Some(secret) = &shared.secret else {
        return if is_local(req) {
            Access::Granted
        } else {
            Access::LocalOnly
        };
    };
    // Another scheme (a proxy's Basic auth) is not ours: the cookie decides.
    if let Some(given) = bearer(req) {
        if let Err(wait) = shared.throttle.check(|| shared.client(req)) {
            return Access::Throttled(wait);
        }
        if secret.matches(given.trim_ascii()) {
            return Access::Granted;
        }
        shared.throttle.failed(shared.client(req), Guess::Bearer);
        return Access::Wrong;
    }
    match session_id(req) {
        Some(id) if shared.sessions.is_open(&id) => Access::Granted,
        _ => Access::Missing,
    }
}

/// The secret of an `Authorization: Bearer` header.
fn bearer(req: &HttpRequest) -> Option<&[u8]> {
    let value = req.headers().get(header::AUTHORIZATION)?.as_bytes();
    // "Bearer" alone (its spaces trimmed by the parser) is an empty, wrong secret.
    if value.eq_ignore_ascii_case(b"bearer") {
        return Some(b"");
    }
    let scheme = value.get(..7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| &value[7..])
}

/// The session cookie's name for this request: `__Host-` over HTTPS.
fn session_cookie_name(req: &HttpRequest) -> &'static str {
    if is_https(req) {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

fn session_id(req: &HttpRequest) -> Option<String> {
    req.cookie(session_cookie_name(req))
        .map(|cookie| cookie.value().to_owned())
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

/// Whether a request comes from this machine and names it: a loopback peer, a `Host` of
/// `localhost`, `127.0.0.0/8` or `[::1]`, and no proxy in between. A tunnel's requests
/// arrive from loopback but name the tunnel's host; a page whose name someone pointed at
/// 127.0.0.1 (DNS rebinding) names that name.
pub(crate) fn is_local(req: &HttpRequest) -> bool {
    let headers = req.headers();
    if ["x-forwarded-for", "x-forwarded-host", "forwarded"]
        .iter()
        .any(|name| headers.contains_key(*name))
    {
        return false;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let host = match req.peer_addr() {
        Some(peer) if !canonical(peer.ip()).is_loopback() => return false,
        Some(_) => host,
        // Not a TCP connection (an app's own in-memory requests, a Unix socket): on this
        // machine; its host may come from the app's configuration.
        None => host.or_else(|| Some(req.app_config().host())),
    };
    let Some(host) = host else {
        return false;
    };
    let name = host_name(host.trim());
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| canonical(ip).is_loopback())
}

/// The message of a refusal to another machine when no secret is set.
const LOCAL_ONLY: &str = "without a webhook secret, the dashboard's data and actions answer only \
    on this machine (a loopback address named localhost, 127.0.0.1 or [::1]): set \
    WEBHOOK_SECRET to see them from elsewhere, with the login or `Authorization: Bearer <secret>`";

/// Lets through only requests with access to the dashboard's data and actions.
fn guard(req: &HttpRequest, shared: &Shared) -> Result<(), ApiError> {
    match access(req, shared) {
        Access::Granted => Ok(()),
        Access::LocalOnly => Err(ApiError::new(StatusCode::FORBIDDEN, LOCAL_ONLY)),
        Access::Wrong => Err(ApiError::new(StatusCode::FORBIDDEN, "Invalid webhook secret.")),
        Access::Throttled(wait) => Err(throttled(wait)),
        Access::Missing => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the dashboard needs the webhook secret: log in on /dashboard, or send `Authorization: Bearer <secret>`.",
        )),
    }
}

fn throttled(wait: Duration) -> ApiError {
    let seconds = retry_after_secs(wait);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many wrong secrets from this address: try again in {seconds} s"),
    )
    .retry_after(seconds)
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
        let Some(origin) = origin.to_str().ok().map(str::to_ascii_lowercase) else {
            return cross("Origin is not this server");
        };
        // Scheme and host of where the request was sent: its own `Host`, the one a proxy
        // in front says it forwarded (a page elsewhere cannot set those headers on a form
        // or a simple request), or the public URL.
        let info = req.connection_info();
        let scheme = info.scheme().to_ascii_lowercase();
        let own = |host: &str| format!("{scheme}://{}", host.to_ascii_lowercase());
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        let ours = host.is_some_and(|host| own(host) == origin)
            || own(info.host()) == origin
            || (!dashboard.public_origin.is_empty() && dashboard.public_origin == origin);
        if !ours {
            return cross("Origin is not this server");
        }
    }
    Ok(())
}

// --- Pages -----------------------------------------------------------------------------

/// The dashboard page, as `/` and `/dashboard` serve it.
pub(crate) fn page(req: &HttpRequest, shared: &Shared) -> HttpResponse {
    let dashboard = &shared.dashboard;
    let body = match access(req, shared) {
        Access::Granted => dashboard.full_page.clone(),
        Access::LocalOnly => dashboard.local_only_page.clone(),
        _ if !login_allowed(req) => dashboard.plain_http_page.clone(),
        _ => dashboard.public_page.clone(),
    };
    html(StatusCode::OK, dashboard.csp, body)
}

/// The login takes the secret over HTTPS, or over plain HTTP from this machine only:
/// elsewhere the secret and the session cookie would travel in clear.
fn login_allowed(req: &HttpRequest) -> bool {
    is_https(req) || is_local(req)
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
    let dashboard = &shared.dashboard;
    let Some(secret) = &shared.secret else {
        return Ok(see_other(next).finish());
    };
    if !login_allowed(&req) {
        return Ok(html(
            StatusCode::FORBIDDEN,
            dashboard.csp,
            dashboard.plain_http_page.clone(),
        ));
    }
    if let Err(wait) = shared.throttle.check(|| shared.client(&req)) {
        let mut page = html(
            StatusCode::TOO_MANY_REQUESTS,
            dashboard.csp,
            dashboard.throttled_page.clone(),
        );
        page.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs(wait)),
        );
        return Ok(page);
    }
    let given = form
        .iter()
        .find(|(k, _)| k == "secret")
        .map_or("", |(_, v)| v.as_str());
    if !secret.matches(given.trim().as_bytes()) {
        shared.throttle.failed(shared.client(&req), Guess::Login);
        return Ok(html(
            StatusCode::FORBIDDEN,
            dashboard.csp,
            dashboard.wrong_page.clone(),
        ));
    }
    let id = shared.sessions.open().map_err(|err| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("no randomness for a session id: {err}"),
        )
    })?;
    let max_age = actix_web::cookie::time::Duration::seconds(
        i64::try_from(shared.sessions.ttl().as_secs()).unwrap_or(i64::MAX),
    );
    let cookie = Cookie::build(session_cookie_name(&req), id)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(&req))
        .max_age(max_age)
        .finish();
    Ok(see_other(next).cookie(cookie).finish())
}

async fn logout(req: HttpRequest, payload: web::Payload, shared: web::Data<Shared>) -> ApiResult {
    same_origin(&req, &shared.dashboard)?;
    let body = read_body(payload, FORM_LIMIT, &shared).await?;
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    if let Some(id) = session_id(&req) {
        shared.sessions.close(&id);
    }
    let mut cookie = Cookie::build(session_cookie_name(&req), "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(&req))
        .finish();
    cookie.make_removal();
    Ok(see_other(next_page(&form)).cookie(cookie).finish())
}

// --- The JSON API ----------------------------------------------------------------------

fn json(value: &impl Serialize) -> ApiResult {
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(NOSNIFF)
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
        "memory": {
            "bytes": shared.deliveries.bytes(),
            "bound": shared.deliveries.bound(),
        },
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
        client: shared.client(req),
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

/// How often an idle event stream sends a comment: proxies keep it open, and a client
/// that went away is noticed (the write fails) within a few seconds.
const KEEP_ALIVE: Duration = Duration::from_secs(2);

/// One open event stream, counted while it lives.
struct StreamSlot(Arc<AtomicUsize>);

impl StreamSlot {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        let taken = open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        taken.then(|| StreamSlot(Arc::clone(open)))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn api_events(req: HttpRequest, shared: web::Data<Shared>) -> ApiResult {
    guard(&req, &shared)?;
    let dashboard = &shared.dashboard;
    let Some(slot) = StreamSlot::take(&dashboard.streams, dashboard.max_streams) else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "{} live event streams are open already (the most the server keeps): close a dashboard tab, or raise HOOKSERVER_EVENT_STREAMS",
                dashboard.max_streams
            ),
        )
        .retry_after(5));
    };
    struct State {
        deliveries: tokio::sync::broadcast::Receiver<Arc<Record>>,
        closing: watch::Receiver<bool>,
        started: bool,
        _slot: StreamSlot,
    }
    let state = State {
        deliveries: shared.deliveries.subscribe(),
        closing: shared.dashboard.closing.subscribe(),
        started: false,
        _slot: slot,
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
            None,
            on_space,
            DEFAULT_EVENT_STREAMS,
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
                request = request
                    .insert_header(("x-forwarded-host", forwarded))
                    .insert_header(("x-forwarded-proto", "https"));
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
        // The scheme counts: an HTTPS page is not this plain-HTTP server.
        assert!(!ok(
            &request("https://127.0.0.1:7860", "127.0.0.1:7860", None),
            &local
        ));
        assert!(!ok(
            &request("http://me-bot.hf.space", "10.0.0.5:7860", None),
            &space
        ));
    }

    #[test]
    fn only_a_loopback_peer_naming_a_loopback_host_is_local() {
        use actix_web::test::TestRequest;
        let request = |peer: &str, host: &str, extra: Option<(&str, &str)>| {
            let mut request = TestRequest::get()
                .peer_addr(peer.parse().unwrap())
                .insert_header(("host", host));
            if let Some(extra) = extra {
                request = request.insert_header(extra);
            }
            request.to_http_request()
        };
        for host in [
            "127.0.0.1:7860",
            "localhost:7860",
            "LOCALHOST",
            "[::1]:7860",
            "127.8.9.1",
        ] {
            assert!(is_local(&request("127.0.0.1:5000", host, None)), "{host}");
        }
        assert!(is_local(&request("[::1]:5000", "[::1]:7860", None)));
        assert!(!is_local(&request(
            "203.0.113.7:5000",
            "127.0.0.1:7860",
            None
        )));
        for host in [
            "me-bot.hf.space",
            "203.0.113.7:7860",
            "bore.pub:40123",
            "localhost.evil.example",
        ] {
            assert!(!is_local(&request("127.0.0.1:5000", host, None)), "{host}");
        }
        let proxied = request(
            "127.0.0.1:5000",
            "localhost",
            Some(("x-forwarded-for", "203.0.113.7")),
        );
        assert!(!is_local(&proxied));
    }

    #[test]
    fn the_bearer_scheme_is_any_case_and_other_schemes_are_not_ours() {
        use actix_web::test::TestRequest;
        let with = |value: &str| {
            TestRequest::get()
                .insert_header(("authorization", value))
                .to_http_request()
        };
        assert_eq!(bearer(&with("Bearer abc")), Some(&b"abc"[..]));
        assert_eq!(bearer(&with("bearer abc")), Some(&b"abc"[..]));
        assert_eq!(bearer(&with("BEARER abc")), Some(&b"abc"[..]));
        assert_eq!(bearer(&with("Basic dXNlcjpwYXNz")), None);
        assert_eq!(bearer(&with("Bear")), None);
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
