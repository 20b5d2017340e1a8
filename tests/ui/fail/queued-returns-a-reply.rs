use hookserver::webhook_endpoint;

#[webhook_endpoint(queue)]
async fn later() -> String {
    "nobody reads this".to_owned()
}

fn main() {}
