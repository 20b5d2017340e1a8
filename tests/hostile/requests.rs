//! The hostile-input catalogue, 3 and 4: the secret, paths and methods.

use super::*;

// --- 3. The secret --------------------------------------------------------------------

#[test]
fn the_secret_header_repeated() {
    for pair in [
        ["s3cret", "s3cret"],
        ["wrong", "s3cret"],
        ["s3cret", "wrong"],
    ] {
        let headers = [
            format!("X-Webhook-Secret: {}", pair[0]),
            format!("x-webhook-secret: {}", pair[1]),
        ];
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        refused(
            &one(&post_raw("/webhooks/hub", &headers, &hub_sample())),
            403,
        );
    }
}

#[test]
fn the_secret_header_empty_spaced_or_not_ascii() {
    refused(
        &one(&post_raw(
            "/webhooks/hub",
            &["X-Webhook-Secret:"],
            &hub_sample(),
        )),
        403,
    );
    refused(
        &one(&post_raw(
            "/webhooks/hub",
            &["X-Webhook-Secret:    "],
            &hub_sample(),
        )),
        403,
    );
    // Spaces around a header value are not part of it (RFC 9110).
    let answer = one(&post_raw(
        "/webhooks/hub",
        &["X-Webhook-Secret:   s3cret   "],
        &hub_sample(),
    ));
    assert_eq!(answer.status, 200, "{answer:?}");
    refused(
        &one(&post_raw(
            "/webhooks/hub",
            &["X-Webhook-Secret: s3 cret"],
            &hub_sample(),
        )),
        403,
    );
    let mut request = post_raw(
        "/webhooks/hub",
        &["X-Webhook-Secret: s3cr\u{e9}t"],
        &hub_sample(),
    );
    assert!(request.windows(2).any(|w| w == "é".as_bytes()));
    refused(&one(&request), 403);
    // A byte that is not UTF-8 at all.
    let at = request
        .windows(2)
        .position(|w| w == "é".as_bytes())
        .unwrap();
    request[at] = 0xff;
    let answer = one(&request);
    assert!(answer.status == 403 || answer.status == 400, "{answer:?}");
    still_serves();
    // No secret at all: 401 with the anchor's message.
    let answer = one(&post_raw("/webhooks/hub", &[], &hub_sample()));
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error"], "x-webhook-secret header not set.");
}

#[test]
fn the_secret_in_both_header_and_query() {
    let answer = one(&post_raw(
        "/webhooks/hub?secret=wrong",
        &["X-Webhook-Secret: s3cret"],
        &hub_sample(),
    ));
    assert_eq!(answer.status, 200, "the header wins: {answer:?}");
    refused(
        &one(&post_raw(
            "/webhooks/hub?secret=s3cret",
            &["X-Webhook-Secret: wrong"],
            &hub_sample(),
        )),
        403,
    );
    let answer = one(&post_raw("/webhooks/hub?secret=s3cret", &[], &hub_sample()));
    assert_eq!(answer.status, 200, "{answer:?}");
    refused(
        &one(&post_raw(
            "/webhooks/hub?secret=s3cret&secret=wrong",
            &[],
            &hub_sample(),
        )),
        403,
    );
}

// --- 4. Paths and methods ---------------------------------------------------------------

#[test]
fn paths_match_exactly() {
    for path in [
        "/webhooks/../webhooks/hub",
        "/webhooks/%2e%2e/webhooks/hub",
        "/webhooks/./hub",
        "//webhooks/hub",
        "/webhooks//hub",
        "/webhooks/hub/",
        "/Webhooks/hub",
        "/webhooks/HUB",
        "/webhooks/hub%00",
        "/webhooks/",
        "/webhooks",
    ] {
        let answer = deliver(path, &hub_sample());
        assert_eq!(answer.status, 404, "{path}: {answer:?}");
    }
    // A percent-encoded unreserved character is the same URL (RFC 3986, 6.2.2.2).
    assert_eq!(deliver("/webhooks/%68ub", &hub_sample()).status, 200);
    still_serves();
}

#[test]
fn every_method_on_a_webhook_path() {
    for method in [
        "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "HEAD", "FOOBAR",
    ] {
        let request = format!(
            "{method} /webhooks/hub HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Webhook-Secret: s3cret\r\nContent-Length: 0\r\n\r\n"
        );
        let answer = one(request.as_bytes());
        assert_eq!(answer.status, 405, "{method}: {answer:?}");
        assert_eq!(answer.header("allow"), Some("POST"), "{method}");
    }
    still_serves();
}
