use hookserver::webhook_endpoint;

#[webhook_endpoint]
struct NotAFunction;

fn main() {}
