use hookserver::webhook_endpoint;

#[webhook_endpoint]
unsafe fn dangerous() {}

fn main() {}
