use hookserver::webhook_endpoint;

#[webhook_endpoint(path = "a", path = "b")]
async fn twice() {}

#[webhook_endpoint("a", path = "b")]
async fn both_forms() {}

fn main() {}
