//! Filters in the attribute and on the builder, over HTTP: a delivery the filter does not
//! take is answered `200 {"ignored": ...}`, recorded, and reaches neither the handler nor
//! the inbox.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::{fixture, get, post};
use hookserver::{webhook_endpoint, Filter, WebhooksServer};

static SPACE_CONTENT_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Content updates of Spaces only.
#[webhook_endpoint(scope = "repo", action = ["create", "update"], repo_type = "space")]
async fn space_content() -> &'static str {
    SPACE_CONTENT_RUNS.fetch_add(1, Ordering::SeqCst);
    "ran"
}

/// Queued, and only for updates: an ignored delivery is never stored.
#[webhook_endpoint(queue, action = "update")]
async fn queued_updates() {}

fn server() -> (hookserver::ServerHandle, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("hookserver-filters-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let app = WebhooksServer::new().inbox(dir.join("inbox.redb").display().to_string());
    (common::serve(app), dir)
}

#[test]
fn the_attribute_s_filter_ignores_what_it_does_not_take_and_records_it() {
    let (server, dir) = server();
    let base = server.url().to_owned();
    let url = format!("{base}/webhooks/space_content");
    // A discussion on a model: the scope does not fit.
    let ignored = post(&url, &fixture("discussion.create.hub-docs.json"), &[]);
    assert_eq!(ignored.status, 200);
    assert_eq!(
        ignored.json(),
        serde_json::json!({ "ignored": "scope is \"discussion\"; this endpoint takes repo" })
    );
    // A content update of a Space: `repo` takes `repo.content`.
    let ran = post(&url, &fixture("repo.content.update.hfhub-tests.json"), &[]);
    assert_eq!((ran.status, ran.body.as_str()), (200, "ran"));
    assert_eq!(SPACE_CONTENT_RUNS.load(Ordering::SeqCst), 1);
    // Recorded in the delivery log, with its answer.
    let log = get(&format!("{base}/api/deliveries")).json();
    let oldest = log["deliveries"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let detail = get(&format!("{base}/api/deliveries/{}", oldest["id"])).json();
    assert!(
        detail["answer"]["body"]
            .as_str()
            .unwrap()
            .contains("ignored"),
        "{detail}"
    );

    // Queued: the ignored delivery is not stored, the taken one is.
    let queued = format!("{base}/webhooks/queued_updates");
    let ignored = post(&queued, &fixture("discussion.create.hub-docs.json"), &[]);
    assert_eq!(ignored.status, 200, "{}", ignored.body);
    assert!(
        ignored.body.contains("action is \\\"create\\\""),
        "{}",
        ignored.body
    );
    let stored = post(&queued, &fixture("discussion.update.hfhub-tests.json"), &[]);
    assert_eq!(stored.status, 202, "{}", stored.body);
    let inbox = get(&format!("{base}/api/inbox")).json();
    assert_eq!(inbox["deliveries"].as_array().unwrap().len(), 1, "{inbox}");
    // A body the handler refuses is still refused (not ignored).
    assert_eq!(post(&url, b"{not json", &[]).status, 200);
    server.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_builder_s_filter_does_the_same_and_checks_its_values() {
    let mut app = WebhooksServer::empty();
    app.add_webhook("models", || async { "ran" }).unwrap();
    app.filter(
        "models",
        Filter::new()
            .repo_type(["model"])
            .action_unchecked(["create", "archive"]),
    )
    .unwrap();
    let err = app
        .filter("models", Filter::new().action(["udpate"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"udpate\"") && err.contains("create, update, delete, move"),
        "{err}"
    );
    let err = app
        .filter("nowhere", Filter::new().action(["update"]))
        .unwrap_err();
    assert!(err.to_string().contains("/webhooks/nowhere"), "{err}");
    let server = common::serve(app);
    let url = format!("{}/webhooks/models", server.url());
    let ran = post(&url, &fixture("discussion.create.hub-docs.json"), &[]);
    assert_eq!(ran.body, "ran");
    let ignored = post(&url, &fixture("discussion.update.hfhub-tests.json"), &[]);
    assert_eq!(
        ignored.json()["ignored"],
        "action is \"update\"; this endpoint takes create or archive"
    );
    server.stop();
}
