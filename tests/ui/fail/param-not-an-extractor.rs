use hookserver::webhook_endpoint;

struct Settings;

#[webhook_endpoint]
async fn configured(settings: Settings) {
    let _ = settings;
}

fn main() {}
