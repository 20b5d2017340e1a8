use hookserver::webhook_endpoint;

#[webhook_endpoint]
async fn anything(body: impl Into<String>) {
    let _ = body.into();
}

fn main() {}
