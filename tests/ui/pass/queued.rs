use hookserver::{webhook_endpoint, Attempt, Bytes, Failure, HttpRequest, Json, WebhookPayload};

#[derive(serde::Deserialize)]
struct Ping {
    zen: String,
}

#[webhook_endpoint(queue)]
async fn every_param(
    payload: WebhookPayload,
    request: HttpRequest,
    attempt: Attempt,
    body: Bytes,
    text: String,
) -> Result<(), Failure> {
    let _ = (payload, request.path(), attempt.number(), body.len(), text.len());
    Ok(())
}

#[webhook_endpoint("typed", queue)]
async fn typed(Json(ping): Json<Ping>) -> Result<(), std::io::Error> {
    let _ = ping.zen;
    Ok(())
}

#[webhook_endpoint(queue, path = "blocking")]
fn blocking(attempt: Attempt) {
    let _ = attempt.webhook_id();
}

fn main() {}
