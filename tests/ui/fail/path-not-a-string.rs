use hookserver::webhook_endpoint;

#[webhook_endpoint(42)]
async fn number() {}

#[webhook_endpoint(path = say_hello)]
async fn ident() {}

fn main() {}
