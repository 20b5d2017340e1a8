//! The log of recent deliveries behind the dashboard: a bounded in-memory queue, and a
//! broadcast of each new delivery to the dashboard's live views.

use std::collections::VecDeque;
use std::net::IpAddr;
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

/// How much of a delivery's headers the log keeps (a longer set is cut, shown as cut, and
/// cannot be redelivered).
///
/// ```
/// assert_eq!(hookserver::KEPT_HEADERS, 8 * 1024);
/// ```
pub const KEPT_HEADERS: usize = 8 * 1024;

/// How much of the headers of a refused request (wrong secret, cross-site, ...) the log
/// keeps: a refusal is recorded as a summary.
///
/// ```
/// assert_eq!(hookserver::KEPT_REFUSED_HEADERS, 2 * 1024);
/// ```
pub const KEPT_REFUSED_HEADERS: usize = 2 * 1024;

/// How much of a request's path, of its query and of the answer's content type is kept.
const KEPT_LINE: usize = 2 * 1024;
const KEPT_CONTENT_TYPE: usize = 256;
/// How much of the scope, action and repository name read from a body is kept.
const KEPT_META: usize = 256;

/// The most memory one record holds: its buffer, path, query, what was read from its
/// body, and the record itself.
///
/// ```
/// // About 94 KiB: a log of 200 holds at most about 20 MiB (see `DeliveryLog::bound`).
/// assert!(hookserver::RECORD_BOUND < 96 * 1024);
/// ```
pub const RECORD_BOUND: usize = KEPT_HEADERS
    + KEPT_BODY
    + KEPT_CONTENT_TYPE
    + KEPT_ANSWER
    + 2 * KEPT_LINE
    + 3 * KEPT_META
    + 512;

/// How many recorded deliveries the live views' channel holds beside the log.
const LIVE_BUFFER: usize = 16;

/// How many buffers of records that left the log are kept for the next ones.
const SPARE_BUFFERS: usize = 4;

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
    /// The request's path, when it is not the endpoint's (unknown, or percent-encoded),
    /// cut to 2 KiB.
    path: Option<Box<str>>,
    /// The query string, its secret redacted, cut to 2 KiB.
    pub(crate) query: String,
    /// Who sent it: the peer, or the client a trusted proxy named.
    pub(crate) client: Option<IpAddr>,
    /// The headers did not all fit in [`KEPT_HEADERS`] (or [`KEPT_REFUSED_HEADERS`]).
    headers_cut: bool,
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
    pub(crate) client: Option<IpAddr>,
    pub(crate) started: SystemTime,
    pub(crate) duration: Duration,
}

impl Record {
    /// Records `incoming` with the answer `response`, which is given back unchanged, in
    /// `data` (a buffer to reuse, or a new one). A refused request (its body not read)
    /// keeps only [`KEPT_REFUSED_HEADERS`] of headers.
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
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map_or(&[][..], |v| cut(v.as_bytes(), KEPT_CONTENT_TYPE))
            .to_vec();
        // The answer's bytes, when the body is in one piece (not a stream).
        let (head, answer) = response.into_parts();
        let (response, answer) = match answer.try_into_bytes() {
            Ok(bytes) => (head.set_body(BoxBody::new(bytes.clone())), Some(bytes)),
            Err(answer) => (head.set_body(answer), None),
        };
        let kept_answer = answer
            .as_ref()
            .map_or(&[][..], |bytes| cut(bytes, KEPT_ANSWER));
        let headers_limit = if incoming.body.is_some() {
            KEPT_HEADERS
        } else {
            KEPT_REFUSED_HEADERS
        };
        let headers_len = packed_len(incoming.headers, headers_limit);
        // Exactly what is kept: the buffer never holds more than `RECORD_BOUND`.
        if data.capacity() > RECORD_BOUND {
            data = Vec::new();
        }
        data.clear();
        data.reserve_exact(headers_len + body.len() + content_type.len() + kept_answer.len());
        let headers_cut = !pack(incoming.headers, headers_limit, &mut data);
        let headers_end = data.len();
        data.extend_from_slice(body);
        let body_end = data.len();
        data.extend_from_slice(&content_type);
        let answer_start = data.len();
        data.extend_from_slice(kept_answer);
        let record = Record {
            id,
            received: incoming.started,
            kind: incoming.kind,
            replay_of: incoming.replay_of,
            endpoint: incoming.endpoint.cloned(),
            method: incoming.method.clone(),
            path: match incoming.endpoint {
                Some(endpoint) if **endpoint == *incoming.path => None,
                _ => Some(cut_str(incoming.path, KEPT_LINE).into()),
            },
            query: if incoming.query.is_empty() {
                String::new()
            } else {
                cut_str(
                    &redact_query(cut_str(incoming.query, 4 * KEPT_LINE)),
                    KEPT_LINE,
                )
                .to_owned()
            },
            client: incoming.client,
            headers_cut,
            data,
            headers_end,
            body_end,
            answer_start,
            body_len: incoming.body.map(Bytes::len),
            status,
            duration: incoming.duration,
            answer_len: answer.as_ref().map(Bytes::len),
            meta: OnceLock::new(),
        };
        (record, response)
    }

    /// The memory this record holds (at most [`RECORD_BOUND`]).
    pub(crate) fn bytes(&self) -> usize {
        let meta = self.meta.get().map_or(0, |m| {
            [&m.scope, &m.action, &m.repo]
                .iter()
                .map(|s| s.as_ref().map_or(0, String::capacity))
                .sum()
        });
        std::mem::size_of::<Self>()
            + 2 * std::mem::size_of::<usize>()
            + self.data.capacity()
            + self.query.capacity()
            + self.path.as_ref().map_or(0, |p| p.len())
            + meta
    }

    /// The body as kept (cut to [`KEPT_BODY`]).
    pub(crate) fn body(&self) -> &[u8] {
        &self.data[self.headers_end..self.body_end]
    }

    /// The answer's body as kept (cut to [`KEPT_ANSWER`]); `None` for a stream.
    fn answer_body(&self) -> Option<&[u8]> {
        self.answer_len.map(|_| &self.data[self.answer_start..])
    }

    /// Whether the whole body and every header are kept (so the delivery can be sent
    /// again).
    pub(crate) fn body_complete(&self) -> bool {
        self.body_len == Some(self.body().len()) && !self.headers_cut
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
            client: self.client.map(|ip| ip.to_string()),
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
                headers_cut: self.headers_cut,
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

/// The length [`pack`] gives `headers` within `limit`.
fn packed_len(headers: &HeaderMap, limit: usize) -> usize {
    let mut len = 0;
    for (name, value) in headers {
        let line = name.as_str().len() + value.len() + 2;
        if len + line > limit {
            break;
        }
        len += line;
    }
    len
}

/// Appends a copy of the headers, `name:value\n` each (a name has no `:`, a value no
/// `\n`), as many whole ones as fit in `limit`; `false` when some did not.
fn pack(headers: &HeaderMap, limit: usize, packed: &mut Vec<u8>) -> bool {
    let start = packed.len();
    for (name, value) in headers {
        if packed.len() - start + name.as_str().len() + value.len() + 2 > limit {
            return false;
        }
        packed.extend_from_slice(name.as_str().as_bytes());
        packed.push(b':');
        packed.extend_from_slice(value.as_bytes());
        packed.push(b'\n');
    }
    true
}

/// The first `limit` bytes of `bytes`.
fn cut(bytes: &[u8], limit: usize) -> &[u8] {
    &bytes[..bytes.len().min(limit)]
}

/// The longest start of `text` within `limit` bytes that ends on a character.
fn cut_str(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
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

/// A body as text, as it came (UTF-8, or lossily): the page indents JSON itself, so
/// that a detail costs about what the kept body does, however deeply it nests.
fn shown_text(bytes: &[u8]) -> String {
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
            let kept = |value: Option<String>| value.map(|v| cut_str(&v, KEPT_META).to_owned());
            Meta {
                scope: kept(scope),
                action: kept(action),
                repo: kept(body.repo.and_then(|repo| repo.name)),
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
    /// The client's address.
    pub(crate) client: Option<String>,
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
    /// Some headers were not kept.
    pub(crate) headers_cut: bool,
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
    kept: Mutex<Kept>,
    live: broadcast::Sender<Arc<Record>>,
}

/// The records, and the buffers of records that left the log, for the next ones.
#[derive(Debug, Default)]
struct Kept {
    records: VecDeque<Arc<Record>>,
    spare: Vec<Vec<u8>>,
}

impl DeliveryLog {
    /// A log that keeps the last `capacity` deliveries (0: records nothing, and the
    /// dashboard's sends are answered without being kept).
    pub(crate) fn new(capacity: usize) -> Self {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        DeliveryLog {
            capacity,
            next_id: AtomicU64::new(1),
            kept: Mutex::new(Kept {
                records: VecDeque::with_capacity(capacity.min(1024)),
                spare: Vec::new(),
            }),
            live,
        }
    }

    /// How many deliveries it keeps.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The most memory the log's records may hold: the log's, the live channel's and
    /// the spare buffers, each at most [`RECORD_BOUND`].
    pub(crate) fn bound(&self) -> usize {
        if self.capacity == 0 {
            return 0;
        }
        (self.capacity + LIVE_BUFFER + SPARE_BUFFERS) * RECORD_BOUND
    }

    /// The memory the kept records and spare buffers hold now.
    pub(crate) fn bytes(&self) -> usize {
        let kept = self.lock();
        kept.records.iter().map(|r| r.bytes()).sum::<usize>()
            + kept.spare.iter().map(Vec::capacity).sum::<usize>()
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
        // Once the log is full, a record reuses the buffer of one that left it: recording a
        // delivery allocates nothing but the record.
        let data = self.lock().spare.pop().unwrap_or_default();
        let (record, response) = Record::new(id, incoming, response, data);
        let record = Arc::new(record);
        {
            // One lock for the push and the pops: the log never holds more than its
            // capacity, even for a moment.
            let mut kept = self.lock();
            kept.records.push_back(Arc::clone(&record));
            while kept.records.len() > self.capacity {
                let Some(old) = kept.records.pop_front() else {
                    break;
                };
                // Held elsewhere (a live view, an API call): its buffer goes with it.
                if let Ok(old) = Arc::try_unwrap(old) {
                    if kept.spare.len() < SPARE_BUFFERS {
                        kept.spare.push(old.data);
                    }
                }
            }
        }
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(Arc::clone(&record));
        }
        (response, record)
    }

    /// The kept deliveries, newest first.
    pub(crate) fn newest_first(&self) -> Vec<Arc<Record>> {
        let mut records: Vec<Arc<Record>> = self.lock().records.iter().rev().cloned().collect();
        // Two workers recording at once may push out of order.
        records.sort_unstable_by_key(|r| std::cmp::Reverse(r.id));
        records
    }

    /// The kept delivery `id`.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<Record>> {
        let kept = self.lock();
        let records = &kept.records;
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A panic while holding the lock cannot leave the queue half-changed.
        self.kept
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
            client: Some(IpAddr::from([127, 0, 0, 1])),
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
    fn bodies_are_shown_as_they_came_for_the_page_to_indent() {
        assert_eq!(
            shown_text(br#"{"b":1,"a":[true]}"#),
            r#"{"b":1,"a":[true]}"#
        );
        assert_eq!(shown_text(b"not json"), "not json");
        assert_eq!(shown_text(&[0xff, b'a']), "\u{fffd}a");
        // Deep nesting costs no more than the body.
        let deep = format!("{}{}", "[".repeat(120), "]".repeat(120));
        assert_eq!(shown_text(deep.as_bytes()).len(), deep.len());
    }

    #[test]
    fn the_log_holds_at_most_its_bound_whatever_the_requests() {
        let log = DeliveryLog::new(50);
        let mut headers = HeaderMap::new();
        for n in 0..200 {
            headers.append(
                HeaderName::from_bytes(format!("x-big-{n}").as_bytes()).unwrap(),
                HeaderValue::from_str(&"h".repeat(600)).unwrap(),
            );
        }
        let body = Bytes::from(format!(
            r#"{{"event":{{"scope":"{0}","action":"{0}"}},"repo":{{"name":"{0}"}},"x":"{1}"}}"#,
            "s".repeat(20_000),
            "b".repeat(KEPT_BODY)
        ));
        let answer = "a".repeat(4 * KEPT_ANSWER);
        for n in 0..300 {
            let refused = n % 3 == 0;
            let mut incoming = incoming(&headers, (!refused).then_some(&body));
            let long_path = format!("/webhooks/{}", "p".repeat(100_000));
            if n % 5 == 0 {
                incoming.path = &long_path;
            }
            let (_, record) = log.record(&incoming, HttpResponse::Ok().body(answer.clone()));
            let _ = record.summary();
            assert!(record.bytes() <= RECORD_BOUND, "{}", record.bytes());
            if refused {
                assert!(record.data.len() <= KEPT_REFUSED_HEADERS + KEPT_ANSWER + 64);
            }
        }
        assert_eq!(log.newest_first().len(), 50);
        assert!(
            log.bytes() <= log.bound(),
            "{} > {}",
            log.bytes(),
            log.bound()
        );
        let detail = serde_json::to_string(&log.newest_first()[0].detail()).unwrap();
        assert!(detail.contains("\"headers_cut\":true"));
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
