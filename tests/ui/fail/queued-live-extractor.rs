use hookserver::actix_web::web::Query;
use hookserver::webhook_endpoint;
use std::collections::HashMap;

#[webhook_endpoint(queue)]
async fn later(query: Query<HashMap<String, String>>) {
    let _ = query;
}

fn main() {}
