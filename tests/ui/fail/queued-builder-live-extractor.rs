use hookserver::actix_web::web::Query;
use hookserver::WebhooksServer;
use std::collections::HashMap;

fn main() {
    let mut app = WebhooksServer::empty();
    let _ = app.add_queued_webhook("later", |query: Query<HashMap<String, String>>| async move {
        let _ = query;
    });
}
