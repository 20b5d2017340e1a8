#[hookserver::launch(port = 8080)]
fn main() {}
