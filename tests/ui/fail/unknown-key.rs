use hookserver::webhook_endpoint;

#[webhook_endpoint(name = "say_hello")]
async fn hello() {}

fn main() {}
