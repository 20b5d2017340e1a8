//! The log of recent deliveries behind the dashboard: a bounded in-memory queue, and a
//! broadcast of each new delivery to the dashboard's live views.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::secret::{redact_query, SECRET_HEADER};

/// How many deliveries the dashboard's log keeps by default (see
/// [`WebhooksServer::delivery_log`](crate::WebhooksServer::delivery_log)).
///
/// ```
/// assert_eq!(hookserver::DEFAULT_DELIVERY_LOG, 200);
/// ```
pub const DEFAULT_DELIVERY_LOG: usize = 200;

/// How much of a request body the log keeps. A longer body is kept cut to this size,
/// shown as cut, and cannot be redelivered.
///
/// ```
/// // A Hub payload is a few KiB: kept whole, and can be sent again.
/// assert!(hookserver::KEPT_BODY >= 64 * 1024);
/// ```
pub const KEPT_BODY: usize = 64 * 1024;

/// How much of a handler's answer the log keeps (the answer sent is never cut).
///
/// ```
/// assert_eq!(hookserver::KEPT_ANSWER, 16 * 1024);
/// ```
pub const KEPT_ANSWER: usize = 16 * 1024;

/// What a redacted value reads.
const REDACTED: &str = "<redacted>";

/// Where a delivery came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// A request to `/webhooks/*` (from the Hub, or anyone).
    Hub,
    /// A test delivery sent from the dashboard.
    Test,
    /// A recorded delivery sent again from the dashboard.
    Replay,
}

/// One recorded delivery.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) id: u64,
    pub(crate) received: SystemTime,
    pub(crate) kind: Kind,
    /// The delivery this one replays.
    pub(crate) replay_of: Option<u64>,
    /// The endpoint's path when the delivery reached one (`/webhooks/NAME`).
    pub(crate) endpoint: Option<Arc<str>>,
    pub(crate) method: Method,
    /// The request's path, when it is not the endpoint's (unknown, or percent-encoded).
    path: Option<Box<str>>,
    /// The query string, its secret redacted.
    pub(crate) query: String,
    /// In one allocation (a record costs two, whatever the request): the headers as
    /// received (`name:value\n` each; the secret and any credential are redacted when
    /// shown), the body cut to [`KEPT_BODY`], the answer's content type, and the answer
    /// cut to [`KEPT_ANSWER`].
    data: Vec<u8>,
    /// Where the headers end and the body starts in `data`.
    headers_end: usize,
    /// Where the body ends and the answer's content type starts in `data`.
    body_end: usize,
    /// Where the answer's content type ends and its body starts in `data`.
    answer_start: usize,
    /// The body's whole length; `None` when it was not read (the request was refused first).
    pub(crate) body_len: Option<usize>,
    pub(crate) status: u16,
    pub(crate) duration: Duration,
    /// The answer body's whole length; `None` for a streamed body (not recorded).
    pub(crate) answer_len: Option<usize>,
    /// Scope, action and repository, read from the body when first asked for.
    meta: OnceLock<Meta>,
}

#[derive(Debug, Default, Clone)]
struct Meta {
    scope: Option<String>,
    action: Option<String>,
    repo: Option<String>,
}

/// A request on its way into the log.
pub(crate) struct Incoming<'a> {
    pub(crate) kind: Kind,
    pub(crate) replay_of: Option<u64>,
    pub(crate) endpoint: Option<&'a Arc<str>>,
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    pub(crate) query: &'a str,
    pub(crate) headers: &'a HeaderMap,
    /// The body, when it was read.
    pub(crate) body: Option<&'a Bytes>,
    pub(crate) started: SystemTime,
    pub(crate) duration: Duration,
}

impl Record {
    /// Records `incoming` with the answer `response`, which is given back unchanged.
    /// Records `incoming` with the answer `response`, which is given back unchanged, in
    /// `data` (a buffer to reuse, or a new one).
    fn new(
        id: u64,
        incoming: &Incoming<'_>,
        response: HttpResponse,
        mut data: Vec<u8>,
    ) -> (Self, HttpResponse) {
        let status = response.status().as_u16();
        let body = incoming
            .body
            .map_or(&[][..], |body| &body[..body.len().min(KEPT_BODY)]);
        if data.capacity() > REUSED_MAX {
            data = Vec::new();
        }
        data.clear();
        data.reserve(HEADERS_GUESS + body.len());
        pack(incoming.headers, &mut data);
        let headers_end = data.len();
        data.extend_from_slice(body);
        let body_end = data.len();
        if let Some(content_type) = response.headers().get(header::CONTENT_TYPE) {
            data.extend_from_slice(content_type.as_bytes());
        }
        let answer_start = data.len();
        // The answer's bytes, when the body is in one piece (not a stream).
        let (head, answer) = response.into_parts();
        let (response, len) = match answer.try_into_bytes() {
            Ok(bytes) => {
                data.extend_from_slice(&bytes[..bytes.len().min(KEPT_ANSWER)]);
                let len = bytes.len();
                (head.set_body(BoxBody::new(bytes)), Some(len))
            }
            Err(answer) => (head.set_body(answer), None),
        };
        let record = Record {
            id,
            received: incoming.started,
            kind: incoming.kind,
            replay_of: incoming.replay_of,
            endpoint: incoming.endpoint.cloned(),
            method: incoming.method.clone(),
            path: match incoming.endpoint {
                Some(endpoint) if **endpoint == *incoming.path => None,
                _ => Some(incoming.path.into()),
            },
            query: if incoming.query.is_empty() {
                String::new()
            } else {
                redact_query(incoming.query)
            },
            data,
            headers_end,
            body_end,
            answer_start,
            body_len: incoming.body.map(Bytes::len),
            status,
            duration: incoming.duration,
            answer_len: len,
            meta: OnceLock::new(),
        };
        (record, response)
    }

    /// The body as kept (cut to [`KEPT_BODY`]).
    pub(crate) fn body(&self) -> &[u8] {
        &self.data[self.headers_end..self.body_end]
    }

    /// The answer's body as kept (cut to [`KEPT_ANSWER`]); `None` for a stream.
    fn answer_body(&self) -> Option<&[u8]> {
        self.answer_len.map(|_| &self.data[self.answer_start..])
    }

    /// Whether the whole body is kept (so the delivery can be sent again).
    pub(crate) fn body_complete(&self) -> bool {
        self.body_len == Some(self.body().len())
    }

    fn meta(&self) -> &Meta {
        self.meta.get_or_init(|| meta_of(self.body()))
    }

    /// The request's path.
    pub(crate) fn path(&self) -> &str {
        match (&self.path, &self.endpoint) {
            (Some(path), _) => path,
            (None, Some(endpoint)) => endpoint,
            (None, None) => "",
        }
    }

    /// The headers as received (the secret included: never shown).
    pub(crate) fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in unpack(&self.data[..self.headers_end]) {
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                headers.append(name, value);
            }
        }
        headers
    }

    /// The headers to show: every value of the secret header and of credentials redacted.
    pub(crate) fn shown_headers(&self) -> Vec<(String, String)> {
        let mut shown: Vec<(String, String)> = unpack(&self.data[..self.headers_end])
            .map(|(name, value)| {
                let name = String::from_utf8_lossy(name).into_owned();
                let value = if is_credential(&name) {
                    REDACTED.to_owned()
                } else {
                    String::from_utf8_lossy(value).into_owned()
                };
                (name, value)
            })
            .collect();
        shown.sort();
        shown
    }

    /// The list view of this delivery.
    pub(crate) fn summary(&self) -> Summary<'_> {
        let meta = self.meta();
        Summary {
            id: self.id,
            received: humantime::format_rfc3339_millis(self.received).to_string(),
            kind: self.kind,
            replay_of: self.replay_of,
            endpoint: self.endpoint.as_deref().unwrap_or(self.path()),
            scope: meta.scope.as_deref(),
            action: meta.action.as_deref(),
            repo: meta.repo.as_deref(),
            status: self.status,
            duration_ms: self.duration.as_secs_f64() * 1000.0,
        }
    }

    /// The detail view of this delivery.
    pub(crate) fn detail(&self) -> Detail<'_> {
        let answer = self.answer_body();
        Detail {
            summary: self.summary(),
            request: RequestView {
                method: self.method.as_str(),
                path: self.path(),
                query: &self.query,
                headers: self.shown_headers(),
                body: self.body_len.map(|_| shown_text(self.body())),
                body_size: self.body_len,
                body_cut: !self.body_complete(),
            },
            answer: AnswerView {
                status: self.status,
                content_type: std::str::from_utf8(&self.data[self.body_end..self.answer_start])
                    .ok()
                    .filter(|v| !v.is_empty()),
                body: answer.map(shown_text),
                body_size: self.answer_len,
                body_cut: match (answer, self.answer_len) {
                    (Some(kept), Some(len)) => kept.len() < len,
                    _ => false,
                },
                streamed: answer.is_none(),
            },
            redeliverable: self.body_complete() && self.endpoint.is_some(),
        }
    }
}

/// Room for a delivery's headers, as the Hub sends them, and an answer.
const HEADERS_GUESS: usize = 512;

/// The largest buffer a record that left the log lends to the next one.
const REUSED_MAX: usize = 2 * (KEPT_BODY + KEPT_ANSWER);

/// Appends one copy of every header: `name:value\n` each (a name has no `:`, a value
/// no `\n`).
fn pack(headers: &HeaderMap, packed: &mut Vec<u8>) {
    for (name, value) in headers {
        packed.extend_from_slice(name.as_str().as_bytes());
        packed.push(b':');
        packed.extend_from_slice(value.as_bytes());
        packed.push(b'\n');
    }
}

/// The headers [`pack`] copied, in order.
fn unpack(packed: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    packed
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| match line.iter().position(|b| *b == b':') {
            Some(at) => (&line[..at], &line[at + 1..]),
            None => (line, &[][..]),
        })
}

/// Headers whose values the dashboard never shows.
pub(crate) fn is_credential(name: &str) -> bool {
    name.eq_ignore_ascii_case(SECRET_HEADER)
        || name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("proxy-authorization")
        || name.eq_ignore_ascii_case("cookie")
}

/// A body as text: JSON pretty-printed (its keys in their order), other UTF-8 as it is,
/// other bytes lossily.
fn shown_text(bytes: &[u8]) -> String {
    let mut pretty = Vec::with_capacity(bytes.len() * 2);
    let mut from = serde_json::Deserializer::from_slice(bytes);
    let transcoded =
        serde_transcode::transcode(&mut from, &mut serde_json::Serializer::pretty(&mut pretty));
    if transcoded.is_ok() && from.end().is_ok() {
        if let Ok(text) = String::from_utf8(pretty) {
            return text;
        }
    }
    String::from_utf8_lossy(bytes).into_owned()
}

/// Scope, action and repository name of a body, where it has them.
fn meta_of(body: &[u8]) -> Meta {
    #[derive(serde::Deserialize)]
    struct Event {
        action: Option<String>,
        scope: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Repo {
        name: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Body {
        event: Option<Event>,
        repo: Option<Repo>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(body) => {
            let (action, scope) = body
                .event
                .map(|event| (event.action, event.scope))
                .unwrap_or_default();
            Meta {
                scope,
                action,
                repo: body.repo.and_then(|repo| repo.name),
            }
        }
        Err(_) => Meta::default(),
    }
}

/// A delivery in the list (`GET /api/deliveries`, and each live event).
#[derive(Debug, Serialize)]
pub(crate) struct Summary<'a> {
    pub(crate) id: u64,
    pub(crate) received: String,
    pub(crate) kind: Kind,
    pub(crate) replay_of: Option<u64>,
    pub(crate) endpoint: &'a str,
    pub(crate) scope: Option<&'a str>,
    pub(crate) action: Option<&'a str>,
    pub(crate) repo: Option<&'a str>,
    pub(crate) status: u16,
    pub(crate) duration_ms: f64,
}

/// One delivery in full (`GET /api/deliveries/{id}`).
#[derive(Debug, Serialize)]
pub(crate) struct Detail<'a> {
    #[serde(flatten)]
    pub(crate) summary: Summary<'a>,
    pub(crate) request: RequestView<'a>,
    pub(crate) answer: AnswerView<'a>,
    pub(crate) redeliverable: bool,
}

/// The request of a delivery, its secret redacted.
#[derive(Debug, Serialize)]
pub(crate) struct RequestView<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: &'a str,
    pub(crate) headers: Vec<(String, String)>,
    /// `None`: the body was not read (the request was refused before).
    pub(crate) body: Option<String>,
    pub(crate) body_size: Option<usize>,
    pub(crate) body_cut: bool,
}

/// The answer to a delivery.
#[derive(Debug, Serialize)]
pub(crate) struct AnswerView<'a> {
    pub(crate) status: u16,
    pub(crate) content_type: Option<&'a str>,
    pub(crate) body: Option<String>,
    pub(crate) body_size: Option<usize>,
    pub(crate) body_cut: bool,
    pub(crate) streamed: bool,
}

/// The bounded log of recent deliveries.
#[derive(Debug)]
pub(crate) struct DeliveryLog {
    capacity: usize,
    next_id: AtomicU64,
    records: Mutex<VecDeque<Arc<Record>>>,
    live: broadcast::Sender<Arc<Record>>,
}

impl DeliveryLog {
    /// A log that keeps the last `capacity` deliveries (0: records nothing, and the
    /// dashboard's sends are answered without being kept).
    pub(crate) fn new(capacity: usize) -> Self {
        let (live, _) = broadcast::channel(64);
        DeliveryLog {
            capacity,
            next_id: AtomicU64::new(1),
            records: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            live,
        }
    }

    /// How many deliveries it keeps.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records a delivery and its answer; gives back the answer and the record.
    pub(crate) fn record(
        &self,
        incoming: &Incoming<'_>,
        response: HttpResponse,
    ) -> (HttpResponse, Arc<Record>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if self.capacity == 0 {
            let (record, response) = Record::new(id, incoming, response, Vec::new());
            return (response, Arc::new(record));
        }
        let evicted = {
            let mut records = self.lock();
            if records.len() >= self.capacity {
                records.pop_front()
            } else {
                None
            }
        };
        // The record that leaves the log becomes the new one when nothing else holds it
        // (a live view or an API call may, for a moment): once the log is full, recording
        // a delivery allocates nothing.
        let (record, response) = match evicted {
            Some(mut old) if Arc::strong_count(&old) == 1 && Arc::weak_count(&old) == 0 => {
                let slot = Arc::get_mut(&mut old).expect("checked just above");
                let data = std::mem::take(&mut slot.data);
                let (record, response) = Record::new(id, incoming, response, data);
                *slot = record;
                (old, response)
            }
            _ => {
                let (record, response) = Record::new(id, incoming, response, Vec::new());
                (Arc::new(record), response)
            }
        };
        self.lock().push_back(Arc::clone(&record));
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(Arc::clone(&record));
        }
        (response, record)
    }

    /// The kept deliveries, newest first.
    pub(crate) fn newest_first(&self) -> Vec<Arc<Record>> {
        let mut records: Vec<Arc<Record>> = self.lock().iter().rev().cloned().collect();
        // Two workers recording at once may push out of order.
        records.sort_unstable_by_key(|r| std::cmp::Reverse(r.id));
        records
    }

    /// The kept delivery `id`.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<Record>> {
        let records = self.lock();
        // Ids grow by one per delivery: look where it would be first.
        let first = records.front()?.id;
        let at = usize::try_from(id.checked_sub(first)?).ok()?;
        match records.get(at) {
            Some(record) if record.id == id => Some(Arc::clone(record)),
            _ => records.iter().find(|r| r.id == id).cloned(),
        }
    }

    /// A receiver of every delivery recorded from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Record>> {
        self.live.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Record>>> {
        // A panic while holding the lock cannot leave the queue half-changed.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn incoming<'a>(headers: &'a HeaderMap, body: Option<&'a Bytes>) -> Incoming<'a> {
        static ENDPOINT: std::sync::LazyLock<Arc<str>> =
            std::sync::LazyLock::new(|| Arc::from("/webhooks/a"));
        Incoming {
            kind: Kind::Hub,
            replay_of: None,
            endpoint: Some(&ENDPOINT),
            method: &Method::POST,
            path: "/webhooks/a",
            query: "x=1&secret=hunter2",
            headers,
            body,
            started: SystemTime::now(),
            duration: Duration::from_micros(1500),
        }
    }

    fn record(log: &DeliveryLog, body: &Bytes) -> Arc<Record> {
        let headers = HeaderMap::new();
        log.record(
            &incoming(&headers, Some(body)),
            HttpResponse::Ok().body("ok"),
        )
        .1
    }

    #[test]
    fn the_log_keeps_the_last_deliveries() {
        let log = DeliveryLog::new(3);
        let body = Bytes::from_static(b"{}");
        for _ in 0..5 {
            record(&log, &body);
        }
        let ids: Vec<u64> = log.newest_first().iter().map(|r| r.id).collect();
        assert_eq!(ids, [5, 4, 3]);
        assert!(log.get(2).is_none());
        assert_eq!(log.get(4).unwrap().id, 4);
        assert!(log.get(6).is_none());
    }

    #[test]
    fn a_log_of_zero_keeps_nothing_but_still_answers() {
        let log = DeliveryLog::new(0);
        let record = record(&log, &Bytes::from_static(b"{}"));
        assert_eq!(record.status, 200);
        assert!(log.newest_first().is_empty());
        assert!(log.get(record.id).is_none());
    }

    #[test]
    fn the_secret_and_credentials_are_redacted() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-webhook-secret", "hunter2"),
            ("authorization", "Bearer hunter2"),
            ("cookie", "a=hunter2"),
            ("x-other", "visible"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let log = DeliveryLog::new(2);
        let body = Bytes::from_static(b"{}");
        let (_, record) = log.record(
            &incoming(&headers, Some(&body)),
            HttpResponse::Ok().finish(),
        );
        let detail = serde_json::to_string(&record.detail()).unwrap();
        assert!(!detail.contains("hunter2"), "{detail}");
        assert!(detail.contains("visible"));
        assert!(detail.contains("x=1"));
        // The copy kept for a replay is whole.
        let kept = record.headers();
        assert_eq!(kept.get("x-webhook-secret").unwrap(), "hunter2");
        assert_eq!(kept.get("x-other").unwrap(), "visible");
        assert_eq!(kept.len(), 4);
    }

    #[test]
    fn long_bodies_are_cut_and_not_redeliverable() {
        let log = DeliveryLog::new(2);
        let long = Bytes::from(vec![b'a'; KEPT_BODY + 1]);
        let record = record(&log, &long);
        assert_eq!(record.body().len(), KEPT_BODY);
        assert_eq!(record.body_len, Some(KEPT_BODY + 1));
        assert!(!record.detail().redeliverable);
        let short = record_short(&log);
        assert!(short.detail().redeliverable);
    }

    fn record_short(log: &DeliveryLog) -> Arc<Record> {
        record(log, &Bytes::from_static(b"{\"a\":1}"))
    }

    #[test]
    fn the_answer_is_recorded_and_given_back_whole() {
        let log = DeliveryLog::new(1);
        let headers = HeaderMap::new();
        let body = Bytes::from_static(b"{}");
        let answer = "x".repeat(KEPT_ANSWER + 10);
        let (response, record) = log.record(
            &incoming(&headers, Some(&body)),
            HttpResponse::Ok().body(answer.clone()),
        );
        assert_eq!(record.answer_len, Some(KEPT_ANSWER + 10));
        assert_eq!(
            record.answer_body().unwrap(),
            &answer.as_bytes()[..KEPT_ANSWER]
        );
        assert!(record.detail().answer.body_cut);
        let sent = response.into_body().try_into_bytes().unwrap();
        assert_eq!(sent, answer.as_bytes());
    }

    #[test]
    fn bodies_are_shown_pretty_in_their_own_order() {
        assert_eq!(
            shown_text(br#"{"b":1,"a":[true]}"#),
            "{\n  \"b\": 1,\n  \"a\": [\n    true\n  ]\n}"
        );
        assert_eq!(shown_text(b"{\"a\":1} trailing"), "{\"a\":1} trailing");
        assert_eq!(shown_text(b"not json"), "not json");
        assert_eq!(shown_text(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn scope_action_and_repo_come_from_the_body() {
        let log = DeliveryLog::new(1);
        let body = Bytes::from_static(
            br#"{"event":{"action":"update","scope":"repo.content"},"repo":{"name":"gpt2"}}"#,
        );
        let record = record(&log, &body);
        let summary = record.summary();
        assert_eq!(summary.scope, Some("repo.content"));
        assert_eq!(summary.action, Some("update"));
        assert_eq!(summary.repo, Some("gpt2"));
        let not_json = record_with(&log, b"<script>");
        assert_eq!(not_json.summary().scope, None);
        assert_eq!(not_json.detail().request.body.as_deref(), Some("<script>"));
    }

    fn record_with(log: &DeliveryLog, body: &'static [u8]) -> Arc<Record> {
        record(log, &Bytes::from_static(body))
    }
}
