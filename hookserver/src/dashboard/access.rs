//! Who may see the dashboard's data and do its actions: the rules without a secret (this
//! machine only), with one (a bearer or a session), the cross-site checks, and the login.

use std::net::IpAddr;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};

use super::{
    html, read_body, ApiError, ApiResult, Dashboard, FORM_LIMIT, SECURE_SESSION_COOKIE,
    SESSION_COOKIE,
};
use crate::access::throttle::{canonical, retry_after_secs, Guess};
use crate::http::Shared;

/// Who asks.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Access {
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

pub(super) fn access(req: &HttpRequest, shared: &Shared, dashboard: &Dashboard) -> Access {
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
        Some(id) if dashboard.sessions.is_open(&id) => Access::Granted,
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
pub(super) fn is_local(req: &HttpRequest) -> bool {
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
pub(super) fn guard(
    req: &HttpRequest,
    shared: &Shared,
    dashboard: &Dashboard,
) -> Result<(), ApiError> {
    match access(req, shared, dashboard) {
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
pub(super) fn same_origin(req: &HttpRequest, dashboard: &Dashboard) -> Result<(), ApiError> {
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

/// The login takes the secret over HTTPS, or over plain HTTP from this machine only:
/// elsewhere the secret and the session cookie would travel in clear.
pub(super) fn login_allowed(req: &HttpRequest) -> bool {
    is_https(req) || is_local(req)
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

/// The form of a login or a logout, sent from the dashboard's own page.
async fn form_of(
    req: &HttpRequest,
    payload: web::Payload,
    shared: &Shared,
    dashboard: &Dashboard,
) -> Result<Vec<(String, String)>, ApiError> {
    same_origin(req, dashboard)?;
    let body = read_body(payload, FORM_LIMIT, shared).await?;
    Ok(form_urlencoded::parse(&body).into_owned().collect())
}

/// The session cookie, as a login sets it and a logout removes it.
fn session_cookie(req: &HttpRequest, value: String) -> Cookie<'static> {
    Cookie::build(session_cookie_name(req), value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(req))
        .finish()
}

pub(super) async fn login(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
    dashboard: web::Data<Dashboard>,
) -> ApiResult {
    let form = form_of(&req, payload, &shared, &dashboard).await?;
    let next = next_page(&form);
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
    let id = dashboard.sessions.open().map_err(|err| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("no randomness for a session id: {err}"),
        )
    })?;
    let max_age = actix_web::cookie::time::Duration::seconds(
        i64::try_from(dashboard.sessions.ttl().as_secs()).unwrap_or(i64::MAX),
    );
    let mut cookie = session_cookie(&req, id);
    cookie.set_max_age(max_age);
    Ok(see_other(next).cookie(cookie).finish())
}

pub(super) async fn logout(
    req: HttpRequest,
    payload: web::Payload,
    shared: web::Data<Shared>,
    dashboard: web::Data<Dashboard>,
) -> ApiResult {
    let form = form_of(&req, payload, &shared, &dashboard).await?;
    if let Some(id) = session_id(&req) {
        dashboard.sessions.close(&id);
    }
    let mut cookie = session_cookie(&req, String::new());
    cookie.make_removal();
    Ok(see_other(next_page(&form)).cookie(cookie).finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::tests::dashboard;

    #[test]
    fn next_page_is_one_of_ours() {
        let form = |v: &str| vec![("next".to_owned(), v.to_owned())];
        assert_eq!(next_page(&form("/dashboard")), "/dashboard");
        assert_eq!(next_page(&form("https://evil.example/")), "/");
        assert_eq!(next_page(&form("//evil.example")), "/");
        assert_eq!(next_page(&[]), "/");
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
    fn host_names_lose_their_port() {
        assert_eq!(host_name("127.0.0.1:7860"), "127.0.0.1");
        assert_eq!(host_name("[::1]:7860"), "::1");
        assert_eq!(host_name("me-bot.hf.space"), "me-bot.hf.space");
        assert_eq!(host_name("bore.pub:40123"), "bore.pub");
        assert_eq!(host_name("0.0.0.0"), "0.0.0.0");
    }
}
