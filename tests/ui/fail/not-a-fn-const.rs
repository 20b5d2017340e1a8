use hookserver::webhook_endpoint;

#[webhook_endpoint]
const ANSWER: u32 = 42;

fn main() {}
