use hookserver::webhook_endpoint;

#[webhook_endpoint(action = "udpate", repo_type = ["dataset", "modle"])]
async fn typo() {}

fn main() {}
