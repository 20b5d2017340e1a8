use hookserver::webhook_endpoint;

#[webhook_endpoint]
async fn untyped(payload: _) {}

fn main() {}
