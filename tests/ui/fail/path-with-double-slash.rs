use hookserver::webhook_endpoint;

#[webhook_endpoint("/team//deploy/")]
async fn deploy() {}

fn main() {}
