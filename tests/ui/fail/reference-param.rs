use hookserver::webhook_endpoint;

#[webhook_endpoint]
async fn borrowed(body: &str) {
    let _ = body;
}

fn main() {}
