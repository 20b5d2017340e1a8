use hookserver::webhook_endpoint;

#[webhook_endpoint("")]
async fn empty() {}

#[webhook_endpoint(path = "//")]
async fn only_slashes() {}

fn main() {}
