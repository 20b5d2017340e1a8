//! The whole request pipeline in memory: any method, path, headers and body go through
//! hookserver's routes (secret check, routing, limits, parsing, handlers) and get a 2xx
//! or 4xx answer with a JSON error body, never a 5xx (no handler here fails) or a panic.
#![no_main]

#[path = "harness.rs"]
mod harness;

use hookserver::actix_web::{test, App};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Some(request) = harness::request(&harness::parse(bytes)) else {
        return;
    };
    hookserver::actix_web::rt::System::new().block_on(async move {
        let app =
            test::init_service(App::new().configure(harness::server().configure().unwrap())).await;
        if let Err(problem) = harness::check(&app, request.to_request()).await {
            panic!("{problem}");
        }
    });
});
