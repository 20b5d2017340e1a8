use hookserver::webhook_endpoint;

#[webhook_endpoint(queue, "later", queue)]
async fn later() {}

fn main() {}
