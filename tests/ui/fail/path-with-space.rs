use hookserver::webhook_endpoint;

#[webhook_endpoint("say hello")]
async fn hello() {}

fn main() {}
