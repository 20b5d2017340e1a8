//! The payload parser: any bytes give a payload or a 400/422 rejection, never a panic; a
//! payload serializes and parses back to itself.
#![no_main]

use hookserver::actix_web::ResponseError;
use hookserver::WebhookPayload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    match WebhookPayload::from_slice(bytes) {
        Ok(payload) => {
            let json = hookserver::serde_json::to_vec(&payload).expect("a payload serializes");
            let back = WebhookPayload::from_slice(&json).expect("a payload parses back");
            assert_eq!(back, payload);
        }
        Err(rejection) => {
            let status = rejection.status_code().as_u16();
            assert!(status == 400 || status == 422, "{status}: {rejection}");
        }
    }
});
