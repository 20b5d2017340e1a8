#![deny(missing_docs, unsafe_code)]
//! Every form of the attribute, in a crate that denies missing docs.

use hookserver::serde_json::Value;
use hookserver::{webhook_endpoint, Bytes, HttpRequest, Json, WebhookPayload};

/// Bare.
#[webhook_endpoint]
pub async fn bare(payload: WebhookPayload) {
    let _ = payload;
}

/// A name.
#[webhook_endpoint("named")]
pub fn named(request: HttpRequest, body: Bytes) -> String {
    format!("{} {}", request.path(), body.len())
}

/// A path.
#[webhook_endpoint(path = "/nested/path/")]
pub async fn nested(Json(value): Json<Value>) -> Json<Value> {
    Json(value)
}

/// A raw identifier.
#[webhook_endpoint]
pub fn r#type(body: String) -> Result<String, std::num::ParseIntError> {
    body.parse::<u32>().map(|n| n.to_string())
}

mod inner {
    /// In a module, private.
    #[hookserver::webhook_endpoint]
    async fn private_one() -> hookserver::actix_web::HttpResponse {
        hookserver::actix_web::HttpResponse::Ok().finish()
    }
}

fn main() {
    let app = hookserver::WebhooksServer::new();
    assert_eq!(
        app.webhook_paths(),
        [
            "/webhooks/bare",
            "/webhooks/named",
            "/webhooks/nested/path",
            "/webhooks/private_one",
            "/webhooks/type",
        ]
    );
}
