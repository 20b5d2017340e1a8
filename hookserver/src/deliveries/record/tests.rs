//! Records, through the log that makes them.

use super::*;
use crate::deliveries::DeliveryLog;
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
        info: body.map(|body| EventInfo::read(body)).unwrap_or_default(),
        client: Some(IpAddr::from([127, 0, 0, 1])),
        started: SystemTime::now(),
        duration: Duration::from_micros(1500),
    }
}

fn record(log: &DeliveryLog, body: &Bytes) -> Arc<Record> {
    let headers = HeaderMap::new();
    log.record(
        incoming(&headers, Some(body)),
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
    let (_, record) = log.record(incoming(&headers, Some(&body)), HttpResponse::Ok().finish());
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
        incoming(&headers, Some(&body)),
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
        let (_, record) = log.record(incoming, HttpResponse::Ok().body(answer.clone()));
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
