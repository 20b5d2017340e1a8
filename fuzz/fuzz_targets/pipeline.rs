//! The whole request pipeline in memory: any method, path, headers and body go through
//! hookserver's routes (secret check, routing, limits, parsing, handlers) and get a 2xx
//! or 4xx answer with a JSON error body, never a 5xx (no handler here fails) or a panic.
#![no_main]

#[path = "harness.rs"]
mod harness;

use hookserver::actix_web::http::{header::HeaderName, header::HeaderValue, Method};
use hookserver::actix_web::{test, App};
use hookserver::serde_json::Value;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let input = harness::parse(bytes);
    let Ok(method) = Method::from_bytes(input.method) else {
        return;
    };
    let Ok(path) = std::str::from_utf8(input.path) else {
        return;
    };
    if !path.starts_with('/') || path.parse::<hookserver::actix_web::http::Uri>().is_err() {
        return;
    }
    let mut request = test::TestRequest::default().method(method).uri(path);
    for (name, value) in &input.headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            request = request.append_header((name, value));
        }
    }
    let request = request.set_payload(input.body.to_vec()).to_request();
    hookserver::actix_web::rt::System::new().block_on(async move {
        let app =
            test::init_service(App::new().configure(harness::server().configure().unwrap())).await;
        let response = test::call_service(&app, request).await;
        let status = response.status().as_u16();
        assert!((200..500).contains(&status), "{status}");
        if status >= 400 {
            let body = test::read_body(response).await;
            let error: Value = hookserver::serde_json::from_slice(&body)
                .unwrap_or_else(|err| panic!("not JSON ({err}): {body:?}"));
            assert!(error["error"].is_string(), "{error}");
        }
    });
});
