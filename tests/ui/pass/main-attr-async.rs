//! `#[hookserver::launch]` on `async fn main`: the body runs on a runtime; a body that
//! launched a server itself is not followed by another launch.

#[hookserver::webhook_endpoint]
async fn ping() -> &'static str {
    "pong"
}

#[hookserver::launch]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let task = hookserver::actix_web::rt::spawn(async { 21 * 2 });
    assert_eq!(task.await?, 42);
    let server = hookserver::WebhooksServer::new().port(0).launch_background()?;
    tokio::task::spawn_blocking(move || server.stop()).await?;
    Ok(())
}
