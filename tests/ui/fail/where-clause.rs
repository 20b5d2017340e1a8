use hookserver::{webhook_endpoint, WebhookPayload};

#[webhook_endpoint]
async fn bounded(payload: WebhookPayload)
where
    WebhookPayload: Clone,
{
    let _ = payload;
}

fn main() {}
