//! A running server's handle, and what a launch prints.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::dashboard::Dashboard;
use crate::endpoint::Endpoints;
use crate::error::{Error, Result};
use crate::hub::{HubLink, HubWebhook};
use crate::logging::say;

/// A server running in the background, from
/// [`WebhooksServer::launch_background`](crate::WebhooksServer::launch_background).
///
/// Dropping it leaves the server running; [`stop`](Self::stop) stops it.
///
/// ```
/// let mut app = hookserver::WebhooksServer::empty().host("127.0.0.1").port(0);
/// app.add_webhook("ping", || async { "pong" })?;
/// let handle = app.launch_background()?;
/// assert_eq!(handle.url(), format!("http://{}", handle.addr()));
/// assert_eq!(handle.public_url(), handle.url()); // https://$SPACE_HOST on a Space
/// assert!(handle.instructions().contains("/webhooks/ping"));
/// handle.stop();
/// # Ok::<(), hookserver::Error>(())
/// ```
pub struct ServerHandle {
    pub(super) addr: SocketAddr,
    pub(super) url: String,
    pub(super) public_url: String,
    pub(super) instructions: String,
    /// The webhooks registered on the Hub, at launch or later.
    pub(super) hub: HubLink,
    pub(super) handle: actix_web::dev::ServerHandle,
    pub(super) thread: JoinHandle<std::io::Result<()>>,
    /// Set when the server stops: the dashboard's live views end.
    pub(super) closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .field("url", &self.url)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The URL to reach the server from this machine, such as `http://127.0.0.1:7860`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL the Hub must call: `https://$SPACE_HOST` on a Space, the tunnel's URL when
    /// sharing, else [`url`](Self::url).
    #[must_use]
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The instructions printed at launch: the URL of every endpoint.
    #[must_use]
    pub fn instructions(&self) -> &str {
        &self.instructions
    }

    /// The webhooks on the Hub that this launch registered (see
    /// [`register_on_hub`](crate::WebhooksServer::register_on_hub)); empty without a
    /// registration, or while it fails (after a failure that may pass, such as the Hub
    /// being down, it is tried again in the background).
    ///
    /// ```
    /// let mut app = hookserver::WebhooksServer::empty().host("127.0.0.1").port(0);
    /// app.add_webhook("ping", || async { "pong" })?;
    /// let handle = app.launch_background()?;
    /// assert!(handle.hub_webhooks().is_empty()); // no register_on_hub(...)
    /// handle.stop();
    /// # Ok::<(), hookserver::Error>(())
    /// ```
    #[must_use]
    pub fn hub_webhooks(&self) -> Vec<HubWebhook> {
        self.hub.webhooks()
    }

    /// The address the server listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets in-flight deliveries finish (within the shutdown timeout),
    /// and returns once the server has stopped. Call it outside async code: it blocks.
    pub fn stop(self) {
        Dashboard::close(&self.closing);
        futures_executor::block_on(self.handle.stop(true));
        let _ = self.thread.join();
    }

    /// Blocks until the server stops (after SIGINT or SIGTERM, for a server from
    /// [`WebhooksServer::launch`](crate::WebhooksServer::launch)).
    pub(crate) fn wait(self) -> Result<()> {
        match self.thread.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Error::io(self.addr, err)),
            Err(panic) => Err(Error::server_thread(panic.as_ref())),
        }
    }
}

/// Secrets shorter than this get a warning at start-up.
pub(crate) const SHORT_SECRET: usize = 16;

/// Says whether a secret is set, as `huggingface_hub` does when a server is created.
pub(crate) fn print_secret_state(secret_set: bool) {
    if secret_set {
        say("Webhook secret is correctly defined.");
    } else {
        say("Webhook secret is not defined. This means your webhook endpoints will be open to everyone.");
        say("To add a secret, set `WEBHOOK_SECRET` as environment variable or pass it at initialization: \n\t`WebhooksServer::new().webhook_secret(\"my_secret\")`");
        say("For more details about webhook secrets, please refer to https://huggingface.co/docs/hub/webhooks#webhook-secret.");
    }
}

/// The lines `huggingface_hub` prints once the server is up.
pub(crate) fn instructions(endpoints: &Endpoints, base_url: &str) -> String {
    let mut message = String::from("Webhooks are correctly setup and ready to use:");
    for endpoint in endpoints.iter() {
        message.push_str("\n  - POST ");
        message.push_str(base_url);
        message.push_str(&endpoint.path);
    }
    message.push_str("\nGo to https://huggingface.co/settings/webhooks to setup your webhooks.");
    message
}

/// `http://HOST:PORT` to reach `addr` from this machine.
pub(crate) fn local_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// The host a tunnel forwards to: the listening address, or loopback for "any address".
pub(crate) fn local_host(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V6(ip) if ip.is_unspecified() => "::1".to_owned(),
        ip => ip.to_string(),
    }
}
