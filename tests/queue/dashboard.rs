//! Queued endpoints and the dashboard: the inbox's API follows the dashboard's access rules,
//! an app of one's own queues too, and what the dashboard sends is never a duplicate.

use super::*;

/// What the dashboard sends is asked for to run again, so it is never a duplicate: the same
/// sample sent twice runs twice, and a redeliver runs a delivery again, while the Hub's
/// repeat of it is still one.
pub(super) fn the_dashboard_s_sends_are_never_duplicates(scratch: &Scratch) {
    let bot = drill(scratch, &[]);
    let base = bot.base();
    let test_send = || {
        let reply = post(
            &format!("{base}/api/webhooks/record/test"),
            br#"{"sample": "discussion.create (hub-docs)"}"#,
            &[],
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        let delivery = reply.json()["delivery"].clone();
        assert_eq!(delivery["status"], 202, "{delivery}");
        delivery["answer"]["body"].as_str().unwrap().to_owned()
    };
    assert_ne!(test_send(), test_send(), "two queued ids");
    let first = queued_id(&deliver(&bot, "record", Some("sent-again")));
    let logged = get(&format!("{base}/api/deliveries")).json()["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "hub")
        .map(|d| d["id"].clone())
        .expect("the Hub's delivery in the log");
    let again = post(
        &format!("{base}/api/deliveries/{logged}/redeliver"),
        b"",
        &[("origin", base.as_str())],
    );
    assert_eq!(again.status, 200, "{}", again.body);
    let replayed = again.json()["delivery"].clone();
    assert_eq!(replayed["status"], 202, "{replayed}");
    assert!(!replayed["answer"]["body"]
        .as_str()
        .unwrap()
        .contains(&first));
    let repeat = deliver(&bot, "record", Some("sent-again"));
    assert_eq!(repeat.json(), serde_json::json!({ "duplicate": first }));
    common::wait_until("four runs", 15, || scratch.lines().len() == 4);
    let sent_again = scratch
        .lines()
        .iter()
        .filter(|l| l[1] == "sent-again")
        .count();
    assert_eq!(sent_again, 2, "{:?}", scratch.lines());
}

#[test]
fn the_inbox_api_follows_the_dashboard_s_access_rules() {
    let scratch = Scratch::new("access");
    let bot = drill(&scratch, &[("WEBHOOK_SECRET", "drill-secret-0123456789")]);
    let url = format!("{}/api/inbox", bot.base());
    assert_eq!(get(&url).status, 401);
    let bearer = [("authorization", "Bearer drill-secret-0123456789")];
    assert_eq!(send("GET", &url, b"", &bearer).status, 200);
    assert_eq!(send("GET", &format!("{url}/dead"), b"", &[]).status, 401);
    let retry = send("POST", &format!("{url}/1/retry"), b"", &[]);
    assert_eq!(retry.status, 401);
    // A cross-site page cannot act with the bearer's browser... nor with a session.
    let cross = send(
        "DELETE",
        &format!("{url}/1"),
        b"",
        &[bearer[0], ("origin", "https://evil.example")],
    );
    assert_eq!(cross.status, 403, "{}", cross.body);
}

/// In an app of one's own (`configure()`), a queued endpoint stores and runs its
/// deliveries too; and the dashboard's test send to a queued endpoint goes through the
/// inbox (answered 202, then run).
#[test]
fn configure_and_the_dashboard_s_test_send_queue_too() {
    use hookserver::actix_web::{test, App};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let scratch = Scratch::new("configure");
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let mut server = hookserver::WebhooksServer::empty().inbox(scratch.inbox());
    server
        .add_queued_webhook("later", move || {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        })
        .unwrap();
    hookserver::actix_web::rt::System::new().block_on(async {
        let app = test::init_service(App::new().configure(server.configure().unwrap())).await;
        let request = test::TestRequest::post()
            .uri("/webhooks/later")
            .insert_header(("webhook-id", "own-app"))
            .set_payload(common::hub_sample())
            .to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), 202);
        // The dashboard's test send (this machine, no secret: allowed).
        let request = test::TestRequest::post()
            .uri("/api/webhooks/later/test")
            .insert_header(("content-type", "application/json"))
            .set_payload(r#"{"sample": "discussion.create (hub-docs)"}"#)
            .to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), 200);
        let sent: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(sent["delivery"]["status"], 202, "{sent}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
            hookserver::actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn the_dashboard_s_sends_are_never_duplicates_on_redb() {
    the_dashboard_s_sends_are_never_duplicates(&Scratch::new("dashboard"));
}
