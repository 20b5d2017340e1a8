//! The dashboard's JSON API: the endpoints, the samples, the deliveries and their details,
//! and the two actions that send a delivery (a redelivery, a test).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::access::{guard, same_origin};
use super::{read_body, ApiError, ApiResult, Dashboard, FORM_LIMIT};
use crate::access::secret::{without_secret, CREDENTIAL_HEADERS, SECRET_HEADER};
use crate::deliveries::{Incoming, Kind, Record};
use crate::endpoint::delivery::Delivery;
use crate::endpoint::WEBHOOKS_PREFIX;
use crate::http::answer::{answer, Sender};
use crate::http::Shared;
use crate::rejection::NOSNIFF;
use crate::samples::SAMPLES;

/// 200 with `value` as JSON, never cached.
pub(super) fn json(value: &impl Serialize) -> ApiResult {
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(NOSNIFF)
        .json(value))
}

pub(super) async fn webhooks(
    req: HttpRequest,
    shared: web::Data<Shared>,
    dashboard: web::Data<Dashboard>,
) -> ApiResult {
    guard(&req, &shared, &dashboard)?;
    json(&serde_json::json!({
        "webhooks": dashboard.webhooks,
        "secret_set": dashboard.secret_set,
        "delivery_log": shared.deliveries.capacity(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

pub(super) async fn samples(
    req: HttpRequest,
    shared: web::Data<Shared>,
    dashboard: web::Data<Dashboard>,
) -> ApiResult {
    guard(&req, &shared, &dashboard)?;
    let samples: Vec<_> = SAMPLES
        .iter()
        .map(|(name, body)| serde_json::json!({ "name": name, "body": body }))
        .collect();
    json(&serde_json::json!({ "samples": samples }))
}

pub(super) async fn deliveries(
    req: HttpRequest,
    shared: web::Data<Shared>,
    dashboard: web::Data<Dashboard>,
) -> ApiResult {
    guard(&req, &shared, &dashboard)?;
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

pub(super) fn delivery(
    req: &HttpRequest,
    shared: &Shared,
    dashboard: &Dashboard,
    id: &str,
) -> ApiResult {
    guard(req, shared, dashboard)?;
    json(&record_of(id, shared)?.detail())
}

pub(super) async fn redeliver(
    req: &HttpRequest,
    shared: &web::Data<Shared>,
    dashboard: &Dashboard,
    id: &str,
) -> ApiResult {
    guard(req, shared, dashboard)?;
    same_origin(req, dashboard)?;
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
    for name in CREDENTIAL_HEADERS {
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

pub(super) async fn test(
    req: &HttpRequest,
    payload: web::Payload,
    shared: &web::Data<Shared>,
    dashboard: &Dashboard,
    name: &str,
) -> ApiResult {
    guard(req, shared, dashboard)?;
    same_origin(req, dashboard)?;
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
    let delivery = Delivery::new(request, sent.body.clone(), Instant::now());
    let response = answer(shared, endpoint, &delivery, Sender::Dashboard).await;
    let duration = delivery.started.elapsed();
    let (info, _) = delivery.into_info(true);
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
        info: info.unwrap_or_default(),
        client: shared.client(req),
        started: received,
        duration,
    };
    let (_, record) = shared.deliveries.record(incoming, response);
    json(&serde_json::json!({
        "delivery": record.detail(),
        "kept": shared.deliveries.capacity() > 0,
    }))
}
