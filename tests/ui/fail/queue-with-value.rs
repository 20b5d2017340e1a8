use hookserver::webhook_endpoint;

#[webhook_endpoint(queue = true)]
async fn later() {}

fn main() {}
