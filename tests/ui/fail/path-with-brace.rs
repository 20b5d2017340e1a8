use hookserver::webhook_endpoint;

#[webhook_endpoint(path = "/repos/{id}")]
async fn by_id() {}

fn main() {}
