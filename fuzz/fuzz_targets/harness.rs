//! What the pipeline target shares with its regression test (tests/fuzz_regressions.rs):
//! the server it fuzzes, and its input format, an HTTP-like text that libFuzzer mutates
//! well.
//!
//! Line 1: the method and the path (`POST /webhooks/hub`); then header lines
//! (`name: value`) up to an empty line; the rest is the body. Missing parts are empty.

use hookserver::actix_web::body::MessageBody;
use hookserver::actix_web::dev::{Service, ServiceResponse};
use hookserver::actix_web::http::{header::HeaderName, header::HeaderValue, Method, Uri};
use hookserver::actix_web::test;
use hookserver::serde_json::{json, Value};
use hookserver::{Json, WebhookPayload, WebhooksServer};

/// The server under test: a secret, a small body limit, and endpoints taking the payload,
/// any JSON, and raw bytes.
pub fn server() -> WebhooksServer {
    let mut server = WebhooksServer::empty()
        .webhook_secret("fuzz-secret")
        .body_limit(64 * 1024);
    server
        .add_webhook("hub", |payload: WebhookPayload| async move {
            json!({ "scope": payload.event.scope })
        })
        .unwrap();
    server
        .add_webhook("json", |value: Json<Value>| async move { value.0 })
        .unwrap();
    server
        .add_webhook("bytes", |body: hookserver::Bytes| async move {
            body.len().to_string()
        })
        .unwrap();
    server
}

/// A request to send through the app.
#[derive(Debug)]
pub struct Input<'a> {
    /// The method, as sent.
    pub method: &'a [u8],
    /// The path and query, as sent.
    pub path: &'a [u8],
    /// Header names and values, as sent.
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    /// The body.
    pub body: &'a [u8],
}

fn line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    if rest.is_empty() {
        return None;
    }
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let found = &rest[..end];
    *rest = rest.get(end + 1..).unwrap_or(&[]);
    Some(found.strip_suffix(b"\r").unwrap_or(found))
}

/// Reads `bytes` as an [`Input`].
pub fn parse(bytes: &[u8]) -> Input<'_> {
    let mut rest = bytes;
    let first = line(&mut rest).unwrap_or(b"");
    let (method, path) = match first.iter().position(|&b| b == b' ') {
        Some(at) => (&first[..at], &first[at + 1..]),
        None => (first, &b"/"[..]),
    };
    let mut headers = Vec::new();
    while let Some(header) = line(&mut rest) {
        if header.is_empty() {
            break;
        }
        if let Some(at) = header.iter().position(|&b| b == b':') {
            let value = &header[at + 1..];
            headers.push((&header[..at], value.strip_prefix(b" ").unwrap_or(value)));
        }
    }
    Input {
        method,
        path,
        headers,
        body: rest,
    }
}

/// The request `input` describes, unless its method or path cannot be sent at all
/// (headers that cannot be sent are left out).
pub fn request(input: &Input<'_>) -> Option<test::TestRequest> {
    let method = Method::from_bytes(input.method).ok()?;
    let path = std::str::from_utf8(input.path).ok()?;
    if !path.starts_with('/') || path.parse::<Uri>().is_err() {
        return None;
    }
    let mut request = test::TestRequest::default().method(method).uri(path);
    for (name, value) in &input.headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            request = request.append_header((name, value));
        }
    }
    Some(request.set_payload(input.body.to_vec()))
}

/// Sends `request` (from [`request`], `.to_request()`) through `app` and says what is
/// wrong with the answer, if anything: a status outside 2xx/4xx, or a 4xx without a JSON
/// `error`. Two answers are pages, by design: the dashboard's login and logout answer
/// 303 to a page of the server's own, and a wrong secret at the login form is the login
/// page again, with 403.
pub async fn check<S, R, B>(app: &S, request: R) -> Result<(), String>
where
    S: Service<R, Response = ServiceResponse<B>, Error = hookserver::actix_web::Error>,
    B: MessageBody,
{
    let response = test::call_service(app, request).await;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (location, content_type) = (header("location"), header("content-type"));
    if status == 303 {
        return match location.as_str() {
            "/" | "/dashboard" => Ok(()),
            other => Err(format!("303 to {other:?}")),
        };
    }
    if !(200..500).contains(&status) {
        return Err(format!("status {status}"));
    }
    if status >= 400 {
        let body = test::read_body(response).await;
        if status == 403 && content_type.starts_with("text/html") {
            let page = String::from_utf8_lossy(&body);
            return if page.contains("Wrong secret.") {
                Ok(())
            } else {
                Err(format!("403 page that is not the login's: {page}"))
            };
        }
        let error: Value = hookserver::serde_json::from_slice(&body)
            .map_err(|err| format!("{status}: not JSON ({err}): {body:?}"))?;
        if !error["error"].is_string() {
            return Err(format!("{status}: no error message: {error}"));
        }
    }
    Ok(())
}
