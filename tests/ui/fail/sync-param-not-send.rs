use hookserver::webhook_endpoint;

// actix-web's own request is not `Send`: a plain fn runs on the blocking pool.
#[webhook_endpoint]
fn sync_with_actix_request(request: hookserver::actix_web::HttpRequest) {
    let _ = request;
}

fn main() {}
