//! Secret hygiene: a bot run with every log level on (`RUST_LOG=trace`, actix-web's and
//! tokio's internals included) receives deliveries with the right and wrong secrets, in
//! the header and in the query string; neither its standard output nor its standard error
//! ever shows a secret it was given. `Debug` of the server redacts it too.

mod common;

use common::bot::Bot;
use common::{get, hub_sample, post, send};

const SECRET: &str = "hygiene-SECRET-7f3a9c";
const WRONG_HEADER: &str = "wrong-HEADER-value-51d2";
const WRONG_QUERY: &str = "wrong-QUERY-value-88e0";

#[test]
fn no_secret_reaches_any_log_line() {
    let bot = Bot::start(
        "trigger_training",
        &[("WEBHOOK_SECRET", SECRET), ("RUST_LOG", "trace")],
    );
    let url = bot.url_of("/webhooks/trigger_training");
    let base = bot.base();
    let sample = hub_sample();
    // Right and wrong, header and query, both at once, on known and unknown paths.
    assert_eq!(
        post(&url, &sample, &[("x-webhook-secret", SECRET)]).status,
        200
    );
    assert_eq!(
        post(&format!("{url}?secret={SECRET}"), &sample, &[]).status,
        200
    );
    assert_eq!(
        post(&url, &sample, &[("x-webhook-secret", WRONG_HEADER)]).status,
        403
    );
    assert_eq!(
        post(&format!("{url}?secret={WRONG_QUERY}"), &sample, &[]).status,
        403
    );
    assert_eq!(
        post(
            &format!("{url}?secret={WRONG_QUERY}&a=b"),
            &sample,
            &[("X-Webhook-Secret", SECRET)]
        )
        .status,
        200
    );
    assert_eq!(
        post(
            &format!("{base}/webhooks/nope?secret={SECRET}"),
            &sample,
            &[]
        )
        .status,
        404
    );
    assert_eq!(
        post(&url, b"{not json", &[("x-webhook-secret", SECRET)]).status,
        400
    );
    assert_eq!(
        send("GET", &format!("{url}?secret={SECRET}"), b"", &[]).status,
        405
    );
    assert_eq!(get(&format!("{base}/?secret={SECRET}")).status, 200);
    assert_eq!(
        post(&format!("{base}/elsewhere?secret={SECRET}"), &sample, &[]).status,
        404
    );

    let (code, stdout, stderr) = bot.stop_with_output("TERM");
    assert_eq!(code, Some(0));
    let everything = format!("{stdout}\n{stderr}");
    assert!(
        stderr.contains("TRACE") || stderr.contains("DEBUG"),
        "trace logging is on"
    );
    assert!(stderr.contains("delivery refused"), "{stderr}");
    for given in [SECRET, WRONG_HEADER, WRONG_QUERY] {
        assert!(
            !everything.contains(given),
            "{given} was logged:\n{everything}"
        );
    }
}

#[test]
fn debug_output_redacts_every_secret() {
    let server = hookserver::WebhooksServer::empty()
        .webhook_secret(SECRET)
        .share_secret(WRONG_HEADER);
    let debug = format!("{server:?} {server:#?}");
    assert!(
        !debug.contains(SECRET) && !debug.contains(WRONG_HEADER),
        "{debug}"
    );
    assert!(debug.contains("<redacted>"));
}
