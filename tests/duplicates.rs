//! Two `#[webhook_endpoint]` fns on one path: the server refuses to start, naming the
//! path and both fns.

use hookserver::{webhook_endpoint, Error, WebhooksServer};

mod first {
    use super::webhook_endpoint;

    #[webhook_endpoint("deploy")]
    pub(super) async fn deploy_model() {}
}

mod second {
    use super::webhook_endpoint;

    #[webhook_endpoint(path = "/deploy/")]
    pub(super) fn deploy_space() {}
}

#[test]
fn the_server_refuses_to_start_naming_both_fns() {
    let err = WebhooksServer::new()
        .port(0)
        .launch_background()
        .expect_err("duplicate paths must be refused");
    assert!(matches!(err, Error::DuplicateEndpoints { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("/webhooks/deploy"), "{message}");
    assert!(
        message.contains("duplicates::first::deploy_model"),
        "{message}"
    );
    assert!(
        message.contains("duplicates::second::deploy_space"),
        "{message}"
    );
    assert!(message.contains("tests/duplicates.rs:"), "{message}");
}
