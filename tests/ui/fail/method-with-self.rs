use hookserver::{webhook_endpoint, WebhookPayload};

struct Bot;

impl Bot {
    #[webhook_endpoint]
    async fn handle(&self, payload: WebhookPayload) {
        let _ = payload;
    }
}

fn main() {}
