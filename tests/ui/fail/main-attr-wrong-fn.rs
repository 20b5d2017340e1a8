#[hookserver::launch]
fn start() {}

fn main() {}
