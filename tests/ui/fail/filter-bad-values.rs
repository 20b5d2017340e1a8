use hookserver::webhook_endpoint;

#[webhook_endpoint(scope = [], action = 3)]
async fn empty() {}

#[webhook_endpoint(action = "update", action = "create")]
async fn twice() {}

fn main() {}
