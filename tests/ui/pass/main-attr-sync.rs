//! `#[hookserver::launch]` on `fn main` returning `hookserver::Result`.

#[hookserver::webhook_endpoint]
fn ping() -> &'static str {
    "pong"
}

#[hookserver::launch]
fn main() -> hookserver::Result<()> {
    let server = hookserver::WebhooksServer::new().port(0).launch_background()?;
    server.stop();
    Ok(())
}
