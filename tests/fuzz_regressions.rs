//! Every input a fuzz target ever crashed on (fuzz/regressions/TARGET/), replayed: the
//! payload parser's through `WebhookPayload::from_slice`, the pipeline's through the
//! in-memory app, with the same checks as the targets (scripts/fuzz.sh runs those).

use std::path::PathBuf;

use hookserver::actix_web::{test, App, ResponseError};
use hookserver::WebhookPayload;

#[path = "../fuzz/fuzz_targets/harness.rs"]
#[allow(dead_code, unreachable_pub)]
mod harness;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().path())
                .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
                .collect()
        })
        .unwrap_or_default();
    all.sort();
    all
}

#[test]
fn payload_crashes_stay_fixed() {
    for (name, bytes) in inputs("payload") {
        match WebhookPayload::from_slice(&bytes) {
            Ok(payload) => {
                let json = hookserver::serde_json::to_vec(&payload).unwrap();
                assert_eq!(
                    WebhookPayload::from_slice(&json).unwrap(),
                    payload,
                    "{name}"
                );
            }
            Err(rejection) => {
                let status = rejection.status_code().as_u16();
                assert!(status == 400 || status == 422, "{name}: {status}");
            }
        }
    }
}

#[test]
fn pipeline_crashes_stay_fixed() {
    let all = inputs("pipeline");
    assert!(
        !all.is_empty(),
        "fuzz/regressions/pipeline holds the inputs found so far"
    );
    hookserver::actix_web::rt::System::new().block_on(async move {
        let app =
            test::init_service(App::new().configure(harness::server().configure().unwrap())).await;
        for (name, bytes) in all {
            let Some(request) = harness::request(&harness::parse(&bytes)) else {
                panic!("{name}: no request can be made of it: it crashed nothing");
            };
            if let Err(problem) = harness::check(&app, request.to_request()).await {
                panic!("{name}: {problem}");
            }
        }
    });
}
