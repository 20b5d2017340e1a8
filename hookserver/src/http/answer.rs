//! A checked delivery's answer: `200 {"ignored": ..}` when the endpoint's filter does not
//! take it; else its handler's (inline), or the inbox's (queued: stored, then
//! `202 {"queued": ID}`). Deliveries from the Hub, test sends and replays all come
//! through here.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use sha2::{Digest, Sha256};

use crate::endpoint::delivery::Delivery;
use crate::endpoint::queued::{CheckFn, WEBHOOK_ID_HEADER};
use crate::endpoint::run::run_handler;
use crate::endpoint::Endpoint;
use crate::http::Shared;
use crate::inbox::{Accepted, Arrival, Refused, StoredRequest};
use crate::metrics::Answered;
use crate::payload::{EventInfo, Headline};
use crate::rejection::Rejection;

/// The longest `Webhook-Id` taken as a dedupe key (the Hub's are far shorter); a longer
/// one is keyed by the body's hash instead.
const MAX_WEBHOOK_ID: usize = 256;

/// How long the Hub is asked to wait before retrying when the inbox is full, or when the
/// disk refused a write.
const FULL_RETRY_AFTER: u64 = 30;
const WRITE_RETRY_AFTER: u64 = 5;

/// Where a delivery comes from, for the inbox's dedupe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    /// Over HTTP (the Hub, its retries and replays): a repeat is a duplicate.
    Client,
    /// The dashboard (a test send, a redeliver): asked for to run again, so never a
    /// duplicate.
    Dashboard,
}

/// Runs the handler of an inline endpoint, or stores the delivery of a queued one.
pub(crate) async fn answer(
    shared: &Shared,
    endpoint: &Endpoint,
    delivery: &Delivery,
    sender: Sender,
) -> HttpResponse {
    if let Some(filter) = &endpoint.filter {
        // Read once: for the filter, and for the log line and the delivery log.
        let headline = Headline::read(&delivery.body);
        if let Some(headline) = &headline {
            delivery.remember_info(EventInfo::from(headline));
        }
        if let Err(why) = filter.admits_headline(headline.as_ref()) {
            // A 2xx: the Hub does not retry a delivery the bot does not want.
            let mut response = HttpResponse::Ok()
                .insert_header(crate::rejection::NOSNIFF)
                .json(serde_json::json!({ "ignored": why }));
            response.extensions_mut().insert(Answered::Ignored);
            return response;
        }
    }
    match endpoint.queue {
        None => run_handler(endpoint, delivery, shared.handler_timeout).await,
        Some(check) => enqueue(shared, endpoint, check, delivery, sender).await,
    }
}

/// Checks the delivery as its handler will read it (a body it would refuse is refused
/// now, and not stored), stores it, and answers once it is on disk.
async fn enqueue(
    shared: &Shared,
    endpoint: &Endpoint,
    check: CheckFn,
    delivery: &Delivery,
    sender: Sender,
) -> HttpResponse {
    if let Err(response) = check(delivery) {
        return response;
    }
    let Some(inbox) = &shared.inbox else {
        return Rejection::InboxUnavailable {
            reason: "this server has no inbox for queued endpoints".to_owned(),
            retry_after: WRITE_RETRY_AFTER,
        }
        .error_response();
    };
    let webhook_id = webhook_id(delivery.request());
    let key = match (sender, &webhook_id) {
        // A key of its own: the same sample sent twice, or a delivery sent again, runs again.
        (Sender::Dashboard, _) => {
            let unique = getrandom::u64().unwrap_or_else(|_| {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                now.map_or(0, |d| d.as_nanos() as u64)
            });
            format!("dashboard:{unique:016x}")
        }
        (Sender::Client, Some(id)) => format!("id:{id}"),
        (Sender::Client, None) => {
            format!("sha256:{}", hex::encode(Sha256::digest(&delivery.body)))
        }
    };
    let arrival = Arrival {
        endpoint: Arc::clone(&endpoint.path),
        webhook_id,
        key,
        request: StoredRequest::of(delivery.request(), &delivery.body),
        parsed: delivery.take_parsed(),
    };
    match inbox.store.accept(arrival).await {
        Ok(Accepted::Queued(id)) => id_answer(StatusCode::ACCEPTED, "queued", id),
        Ok(Accepted::Duplicate(id)) => {
            let mut response = id_answer(StatusCode::OK, "duplicate", id);
            response.extensions_mut().insert(Answered::Duplicate);
            response
        }
        Err(refused) => {
            let retry_after = match refused {
                Refused::Full(_) => FULL_RETRY_AFTER,
                Refused::Write(_) => WRITE_RETRY_AFTER,
            };
            Rejection::InboxUnavailable {
                reason: refused.to_string(),
                retry_after,
            }
            .error_response()
        }
    }
}

/// The Hub's `Webhook-Id`: visible ASCII, at most [`MAX_WEBHOOK_ID`] bytes, else none.
fn webhook_id(request: &actix_web::HttpRequest) -> Option<String> {
    // The name parsed once, not at each look-up.
    const NAME: actix_web::http::header::HeaderName =
        actix_web::http::header::HeaderName::from_static(WEBHOOK_ID_HEADER);
    let mut values = request.headers().get_all(NAME);
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?.trim();
    (!value.is_empty() && value.len() <= MAX_WEBHOOK_ID).then(|| value.to_owned())
}

/// `{"<word>":"<id>"}` with `status` (written directly: a word and digits need no escaping).
fn id_answer(status: StatusCode, word: &'static str, id: u64) -> HttpResponse {
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(b"{\"");
    body.extend_from_slice(word.as_bytes());
    body.extend_from_slice(b"\":\"");
    body.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    body.extend_from_slice(b"\"}");
    HttpResponse::build(status)
        .insert_header(crate::rejection::NOSNIFF)
        .insert_header(actix_web::http::header::ContentType::json())
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(values: &[&[u8]]) -> actix_web::HttpRequest {
        let mut request = actix_web::test::TestRequest::post();
        for value in values {
            let value = actix_web::http::header::HeaderValue::from_bytes(value).unwrap();
            request = request.append_header((WEBHOOK_ID_HEADER, value));
        }
        request.to_http_request()
    }

    #[test]
    fn an_id_answer_is_the_json_object_of_its_word() {
        let response = id_answer(StatusCode::ACCEPTED, "queued", u64::MAX);
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let content_type = response.headers().get("content-type").unwrap();
        assert_eq!(content_type, "application/json");
        let body = actix_web::body::to_bytes(response.into_body());
        let body = futures_util::FutureExt::now_or_never(body)
            .unwrap()
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value, serde_json::json!({ "queued": u64::MAX.to_string() }));
    }

    #[test]
    fn only_one_short_visible_webhook_id_is_a_dedupe_key() {
        assert_eq!(
            webhook_id(&request(&[b" abc-1 "])).as_deref(),
            Some("abc-1")
        );
        assert_eq!(webhook_id(&request(&[])), None);
        // Repeated, empty, too long or not visible ASCII: the body's hash is the key.
        assert_eq!(webhook_id(&request(&[b"a", b"b"])), None);
        assert_eq!(webhook_id(&request(&[b"  "])), None);
        assert_eq!(webhook_id(&request(&[&[b'x'; MAX_WEBHOOK_ID + 1]])), None);
        assert!(webhook_id(&request(&[&[b'x'; MAX_WEBHOOK_ID]])).is_some());
        assert_eq!(webhook_id(&request(&["caf\u{e9}".as_bytes()])), None);
    }
}
