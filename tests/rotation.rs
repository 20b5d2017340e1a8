//! Rotating the secret on a running pair of bots without a refused delivery: both are
//! restarted one at a time to accept the new secret beside the old one, the sender (the
//! Hub) switches to the new one, then both are restarted one at a time with the new one
//! only. A sender delivers all along to whichever bot is up (as a load balancer does).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::bot::Bot;

const OLD: &str = "old-secret-0123456789abcdef";
const NEW: &str = "new-secret-fedcba9876543210";

fn bot(secret: &str, previous: &str) -> Bot {
    Bot::start(
        "trigger_training",
        &[
            ("WEBHOOK_SECRET", secret),
            ("HOOKSERVER_PREVIOUS_SECRETS", previous),
        ],
    )
}

#[test]
fn a_secret_is_rotated_on_a_running_pair_without_a_refused_delivery() {
    let bots: Arc<Mutex<Vec<Option<Bot>>>> =
        Arc::new(Mutex::new(vec![Some(bot(OLD, "")), Some(bot(OLD, ""))]));
    let sending = Arc::new(Mutex::new(OLD.to_owned()));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (bots, sending, stop) = (bots.clone(), sending.clone(), stop.clone());
        std::thread::spawn(move || {
            let body = common::fixture("repo.content.update.hfhub-tests.json");
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .into();
            let (mut sent, mut refused) = (0, Vec::new());
            let mut turn = 0;
            while !stop.load(Ordering::SeqCst) {
                // The bots that are up now (one may be restarting).
                let urls: Vec<String> = bots
                    .lock()
                    .unwrap()
                    .iter()
                    .flatten()
                    .map(|b| b.url_of("/webhooks/trigger_training"))
                    .collect();
                turn += 1;
                let url = &urls[turn % urls.len()];
                let secret = sending.lock().unwrap().clone();
                let answer = agent
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .header("x-webhook-secret", &secret)
                    .send(&body[..]);
                // A bot taken out of the balancer a moment ago refuses the connection: the
                // balancer sends to the other one (no answer was given, nothing refused).
                let Ok(mut reply) = answer else { continue };
                sent += 1;
                if reply.status() != 200 {
                    let text = reply.body_mut().read_to_string().unwrap_or_default();
                    refused.push((reply.status().as_u16(), text));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (sent, refused)
        })
    };
    let restart = |which: usize, secret: &str, previous: &str| {
        // Out of the balancer first, then stopped, then back with its new settings.
        let old = bots.lock().unwrap()[which].take().unwrap();
        let (code, _) = old.stop_with("TERM");
        assert_eq!(code, Some(0));
        let fresh = bot(secret, previous);
        bots.lock().unwrap()[which] = Some(fresh);
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_millis(200));
    // 1. Both accept the new secret beside the old one.
    restart(0, NEW, OLD);
    restart(1, NEW, OLD);
    // 2. The Hub's webhook gets the new secret.
    *sending.lock().unwrap() = NEW.to_owned();
    std::thread::sleep(Duration::from_millis(200));
    // 3. The old one is dropped.
    restart(0, NEW, "");
    restart(1, NEW, "");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let (sent, refused) = sender.join().unwrap();
    assert!(
        refused.is_empty(),
        "refused during the rotation: {refused:?}"
    );
    assert!(sent > 20, "only {sent} deliveries were sent");
    // The old secret is refused now.
    let guard = bots.lock().unwrap();
    let url = guard[0]
        .as_ref()
        .unwrap()
        .url_of("/webhooks/trigger_training");
    let body = common::fixture("repo.content.update.hfhub-tests.json");
    assert_eq!(
        common::post(&url, &body, &[("x-webhook-secret", OLD)]).status,
        403
    );
    // The dashboard's bearer takes either during a rotation.
    drop(guard);
    let rotating = bot(NEW, OLD);
    let api = format!("{}/api/webhooks", rotating.base());
    for secret in [NEW, OLD] {
        let reply = common::send(
            "GET",
            &api,
            b"",
            &[("authorization", &format!("Bearer {secret}"))],
        );
        assert_eq!(reply.status, 200, "{secret}: {}", reply.body);
    }
    eprintln!("rotation: {sent} deliveries over two bots restarted four times, none refused");
}
