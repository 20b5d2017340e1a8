//! One recorded delivery: what is kept of its request and answer, within fixed bounds,
//! and the views the dashboard shows of it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::access::secret::{is_credential, redact_query, REDACTED};
use crate::payload::EventInfo;

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
const KEPT_META: usize = EventInfo::MAX;

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
    pub(super) data: Vec<u8>,
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
    /// Scope, action and repository, as the delivery's payload said (cut to 256 bytes).
    info: EventInfo,
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
    /// What its payload said (read once, on the way in).
    pub(crate) info: EventInfo,
    pub(crate) client: Option<IpAddr>,
    pub(crate) started: SystemTime,
    pub(crate) duration: Duration,
}

impl Record {
    /// Records `incoming` with the answer `response`, which is given back unchanged, in
    /// `data` (a buffer to reuse, or a new one).
    pub(super) fn new(
        id: u64,
        incoming: Incoming<'_>,
        response: HttpResponse,
        data: Vec<u8>,
    ) -> (Self, HttpResponse) {
        let mut record = Record {
            id,
            received: incoming.started,
            kind: incoming.kind,
            replay_of: None,
            endpoint: None,
            method: Method::POST,
            path: None,
            query: String::new(),
            client: None,
            headers_cut: false,
            data,
            headers_end: 0,
            body_end: 0,
            answer_start: 0,
            body_len: None,
            status: 0,
            duration: Duration::ZERO,
            answer_len: None,
            info: EventInfo::default(),
        };
        let response = record.rewrite(id, incoming, response);
        (record, response)
    }

    /// Makes this record (one leaving the log, say) the record of `incoming` with the
    /// answer `response`, which is given back unchanged; its buffer is reused. A refused
    /// request (its body not read) keeps only [`KEPT_REFUSED_HEADERS`] of headers.
    pub(super) fn rewrite(
        &mut self,
        id: u64,
        incoming: Incoming<'_>,
        response: HttpResponse,
    ) -> HttpResponse {
        let status = response.status().as_u16();
        let body = incoming
            .body
            .map_or(&[][..], |body| &body[..body.len().min(KEPT_BODY)]);
        // The answer's bytes, when the body is in one piece (not a stream).
        let (head, answer) = response.into_parts();
        let (answer, streamed) = match answer.try_into_bytes() {
            Ok(bytes) => (bytes, None),
            Err(stream) => (Bytes::new(), Some(stream)),
        };
        let content_type = head
            .headers()
            .get(header::CONTENT_TYPE)
            .map_or(&[][..], |v| cut(v.as_bytes(), KEPT_CONTENT_TYPE));
        let kept_answer = cut(&answer, KEPT_ANSWER);
        let headers_limit = if incoming.body.is_some() {
            KEPT_HEADERS
        } else {
            KEPT_REFUSED_HEADERS
        };
        // Exactly what is kept: the buffer never holds more than `RECORD_BOUND`.
        let data = &mut self.data;
        if data.capacity() > RECORD_BOUND {
            *data = Vec::new();
        }
        data.clear();
        // Room for the most headers kept (not counted first: a pass over them costs as much
        // as packing them); a buffer reused from an earlier record has it already.
        data.reserve_exact(headers_limit + body.len() + content_type.len() + kept_answer.len());
        self.headers_cut = !pack(incoming.headers, headers_limit, data);
        self.headers_end = data.len();
        data.extend_from_slice(body);
        self.body_end = data.len();
        data.extend_from_slice(content_type);
        self.answer_start = data.len();
        data.extend_from_slice(kept_answer);
        self.answer_len = streamed.is_none().then_some(answer.len());
        let response = match streamed {
            None => head.set_body(BoxBody::new(answer)),
            Some(stream) => head.set_body(stream),
        };
        self.id = id;
        self.received = incoming.started;
        self.kind = incoming.kind;
        self.replay_of = incoming.replay_of;
        self.endpoint = incoming.endpoint.cloned();
        self.method = incoming.method.clone();
        self.path = match incoming.endpoint {
            Some(endpoint) if **endpoint == *incoming.path => None,
            _ => Some(cut_str(incoming.path, KEPT_LINE).into()),
        };
        self.query.clear();
        if !incoming.query.is_empty() {
            self.query.push_str(cut_str(
                &redact_query(cut_str(incoming.query, 4 * KEPT_LINE)),
                KEPT_LINE,
            ));
        }
        self.client = incoming.client;
        self.body_len = incoming.body.map(Bytes::len);
        self.status = status;
        self.duration = incoming.duration;
        self.info = incoming.info;
        response
    }

    /// The memory this record holds (at most [`RECORD_BOUND`]).
    pub(crate) fn bytes(&self) -> usize {
        let info = self.info.bytes();
        std::mem::size_of::<Self>()
            + 2 * std::mem::size_of::<usize>()
            + self.data.capacity()
            + self.query.capacity()
            + self.path.as_ref().map_or(0, |p| p.len())
            + info
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
        let info = &self.info;
        Summary {
            id: self.id,
            received: humantime::format_rfc3339_millis(self.received).to_string(),
            client: self.client.map(|ip| ip.to_string()),
            kind: self.kind,
            replay_of: self.replay_of,
            endpoint: self.endpoint.as_deref().unwrap_or(self.path()),
            scope: info.scope(),
            action: info.action(),
            repo: info.repo(),
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

/// A body as text, as it came (UTF-8, or lossily): the page indents JSON itself, so
/// that a detail costs about what the kept body does, however deeply it nests.
fn shown_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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

#[cfg(test)]
mod tests;
