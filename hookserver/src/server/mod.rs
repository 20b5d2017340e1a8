//! [`WebhooksServer`]: the builder. Its server-wide settings are in `settings`, its
//! queue's in `queue`; its configuration is resolved in `config` (every environment
//! variable), launched in `launch` (listening, workers, signals), and watched through the
//! handle in `handle`; `notebook` relaunches it in an evcxr session.

mod config;
mod handle;
mod launch;
pub(crate) mod notebook;
mod queue;
mod settings;

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use crate::access::secret::Secret;
use crate::endpoint::handler::Handler;
use crate::endpoint::{normalize_path, Endpoint, Endpoints, WEBHOOKS_PREFIX};
use crate::error::{Error, Result};
use crate::hub::HubRegistration;
use config::Config;
pub use handle::ServerHandle;
use queue::QueueOptions;

/// The port the server tries first when none is chosen, as `huggingface_hub` (Gradio) does.
pub const DEFAULT_PORT: u16 = 7860;
/// The last port tried when none is chosen.
pub const LAST_FALLBACK_PORT: u16 = 7959;
/// The default body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// How long a handler may take to answer, by default, before the delivery answers 504.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request's body may take to arrive, by default, before it answers 408.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a request's head (line and headers) may take to arrive, by default, before
/// the connection answers 408 and closes (actix-web's client request timeout).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long in-flight deliveries may take to finish after SIGINT or SIGTERM, by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Set once any server of this process has been launched.
static LAUNCHED: AtomicBool = AtomicBool::new(false);

/// Whether a server was launched in this process (used by `#[hookserver::launch]`).
pub(crate) fn launched() -> bool {
    LAUNCHED.load(Ordering::SeqCst)
}

/// A server that receives webhooks: the endpoints, the secret, the landing page and the
/// address, then [`launch`](Self::launch).
///
/// ```no_run
/// use hookserver::{WebhookPayload, WebhooksServer};
///
/// async fn hello(payload: WebhookPayload) -> hookserver::serde_json::Value {
///     hookserver::serde_json::json!({ "hello": payload.repo.name })
/// }
///
/// fn main() -> hookserver::Result<()> {
///     let mut app = WebhooksServer::new()     // holds every #[webhook_endpoint] fn
///         .webhook_secret("my_secret_key")    // else WEBHOOK_SECRET
///         .ui("<h1>My bot</h1>");             // custom landing page
///     app.add_webhook("/say_hello", hello)?;  // POST /webhooks/say_hello
///     app.launch()                            // blocks until Ctrl-C / SIGTERM
/// }
/// ```
#[derive(Clone)]
pub struct WebhooksServer {
    endpoints: Endpoints,
    registry_error: Option<(String, String, String)>,
    /// `None`: not set here (`WEBHOOK_SECRET` decides at launch); `Some(None)`: none.
    secret: Option<Option<Secret>>,
    /// `None`: `HOOKSERVER_PREVIOUS_SECRETS` decides at launch.
    previous_secrets: Option<Vec<String>>,
    ui: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    body_limit: usize,
    workers: Option<usize>,
    shutdown_timeout: Duration,
    share: Option<bool>,
    share_server: Option<String>,
    share_secret: Option<String>,
    handler_timeout: Option<Duration>,
    body_timeout: Duration,
    request_timeout: Duration,
    delivery_log: Option<usize>,
    session_ttl: Option<Duration>,
    event_streams: Option<usize>,
    trusted_proxies: Option<Vec<IpAddr>>,
    queue: QueueOptions,
    /// `None`: `HOOKSERVER_PUBLIC_URL` decides at launch.
    public_url: Option<String>,
    hub: Option<HubRegistration>,
}

impl fmt::Debug for WebhooksServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhooksServer")
            .field(
                "endpoints",
                &self.endpoints.iter().map(|e| &e.path).collect::<Vec<_>>(),
            )
            .field(
                "secret",
                &self
                    .secret
                    .as_ref()
                    .map(|s| s.as_ref().map(|_| "<redacted>")),
            )
            .field(
                "previous_secrets",
                &self.previous_secrets.as_ref().map(|p| p.len()),
            )
            .field("ui", &self.ui.is_some())
            .field("host", &self.host)
            .field("port", &self.port)
            .field("body_limit", &self.body_limit)
            .field("workers", &self.workers)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("handler_timeout", &self.handler_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("delivery_log", &self.delivery_log)
            .field("session_ttl", &self.session_ttl)
            .field("event_streams", &self.event_streams)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("queue", &self.queue)
            .field("public_url", &self.public_url)
            .field("hub", &self.hub)
            .field("share", &self.share)
            .field("share_server", &self.share_server)
            .field(
                "share_secret",
                &self.share_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Default for WebhooksServer {
    /// The same as [`WebhooksServer::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl WebhooksServer {
    /// A server holding every `#[webhook_endpoint]` fn of the program, with the secret
    /// from `WEBHOOK_SECRET` if it is set.
    ///
    /// Two `#[webhook_endpoint]` fns on the same path make [`launch`](Self::launch) fail,
    /// naming the path and both fns.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::new();
    /// println!("{app:?}");
    /// ```
    #[must_use]
    pub fn new() -> Self {
        let mut server = Self::empty();
        match Endpoints::from_registry() {
            Ok(endpoints) => server.endpoints = endpoints,
            Err(Error::DuplicateEndpoints {
                path,
                first,
                second,
            }) => server.registry_error = Some((path, first, second)),
            Err(_) => {}
        }
        server
    }

    /// A server without the `#[webhook_endpoint]` fns: only what
    /// [`add_webhook`](Self::add_webhook) adds. For tests, and for several servers in one
    /// process. The secret still defaults to `WEBHOOK_SECRET` (read at launch).
    ///
    /// ```
    /// let mut app = hookserver::WebhooksServer::empty();
    /// app.add_webhook("ping", || async { "pong" }).unwrap();
    /// ```
    #[must_use]
    pub fn empty() -> Self {
        WebhooksServer {
            endpoints: Endpoints::default(),
            registry_error: None,
            secret: None,
            previous_secrets: None,
            ui: None,
            host: None,
            port: None,
            body_limit: DEFAULT_BODY_LIMIT,
            workers: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            share: None,
            share_server: None,
            share_secret: None,
            handler_timeout: Some(DEFAULT_HANDLER_TIMEOUT),
            body_timeout: DEFAULT_BODY_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            delivery_log: None,
            session_ttl: None,
            event_streams: None,
            trusted_proxies: None,
            queue: QueueOptions::default(),
            public_url: None,
            hub: None,
        }
    }

    /// Serves `handler` at `POST /webhooks/PATH` (`/` trimmed at both ends).
    ///
    /// `handler` is an `async` fn or closure, or a plain fn (run on the blocking pool),
    /// whose parameters are extractors (`WebhookPayload`, `HttpRequest`, `Json<T>`, `Bytes`,
    /// `String`, any actix-web extractor) and whose output is an [`IntoReply`](crate::IntoReply).
    ///
    /// # Errors
    ///
    /// [`Error::DuplicatePath`] (`Webhook /webhooks/NAME already exists.`) when the path
    /// is taken, and [`Error::InvalidPath`] for an empty path or one with a space, `{`, ...
    ///
    /// ```
    /// use hookserver::{WebhookPayload, WebhooksServer};
    ///
    /// let mut app = WebhooksServer::empty();
    /// app.add_webhook("/say_hello", |payload: WebhookPayload| async move {
    ///     format!("hello {}", payload.repo.name)
    /// })?;
    /// app.add_webhook("sync_one", |body: String| body.len().to_string())?;
    /// assert!(app.add_webhook("say_hello/", || async {}).is_err());
    /// # Ok::<(), hookserver::Error>(())
    /// ```
    pub fn add_webhook<M, H: Handler<M>>(&mut self, path: &str, handler: H) -> Result<&mut Self> {
        let path = normalize_path(path)?;
        let name = short_type_name(std::any::type_name::<H>()).to_owned();
        self.add_endpoint(path, name, handler)
    }

    /// Serves `handler` at `POST /webhooks/NAME`, where NAME is the fn's name, as
    /// `huggingface_hub`'s `@app.add_webhook` without a path does.
    ///
    /// # Errors
    ///
    /// [`Error::UnnamedHandler`] for a closure (it has no name), and the errors of
    /// [`add_webhook`](Self::add_webhook).
    ///
    /// ```
    /// use hookserver::{WebhookPayload, WebhooksServer};
    ///
    /// async fn trigger_training(payload: WebhookPayload) {}
    ///
    /// let mut app = WebhooksServer::empty();
    /// app.add_webhook_fn(trigger_training)?;          // POST /webhooks/trigger_training
    /// assert!(app.add_webhook_fn(|| async {}).is_err()); // a closure has no name
    /// # Ok::<(), hookserver::Error>(())
    /// ```
    pub fn add_webhook_fn<M, H: Handler<M>>(&mut self, handler: H) -> Result<&mut Self> {
        let type_name = std::any::type_name::<H>();
        let name = short_type_name(type_name);
        if type_name.contains("{{closure}}") || normalize_path(name).is_err() {
            return Err(Error::UnnamedHandler { type_name });
        }
        self.add_endpoint(name.to_owned(), name.to_owned(), handler)
    }

    fn add_endpoint<M, H: Handler<M>>(
        &mut self,
        path: String,
        name: String,
        handler: H,
    ) -> Result<&mut Self> {
        self.endpoints.add(Endpoint {
            path: format!("{WEBHOOKS_PREFIX}{path}").into(),
            origin: name.clone(),
            name,
            handler: Arc::new(move |delivery| handler.call(delivery)),
            queue: None,
            filter: None,
        })?;
        Ok(self)
    }

    /// The full paths of the endpoints, such as `/webhooks/say_hello`, in order.
    ///
    /// ```
    /// let mut app = hookserver::WebhooksServer::empty();
    /// app.add_webhook("/test_webhook", || async {}).unwrap();
    /// assert_eq!(app.webhook_paths(), ["/webhooks/test_webhook"]);
    /// ```
    #[must_use]
    pub fn webhook_paths(&self) -> Vec<&str> {
        self.endpoints.iter().map(|e| &*e.path).collect()
    }

    /// Serves until SIGINT (Ctrl-C) or SIGTERM, then lets in-flight deliveries finish
    /// (within the shutdown timeout) and returns `Ok(())`.
    ///
    /// In an evcxr notebook (`EVCXR_IS_RUNTIME=1`) it returns at once and the server keeps
    /// running; the next `launch()` stops it and serves the endpoints defined by then on
    /// the same address (unless a port is chosen).
    ///
    /// Prints the secret's state and the endpoints' URLs first, as `huggingface_hub` does.
    ///
    /// # Errors
    ///
    /// Two `#[webhook_endpoint]` fns on one path, a configuration that cannot be used
    /// (`HOOKSERVER_PORT=abc`), or an address that cannot be listened on.
    ///
    /// ```no_run
    /// hookserver::WebhooksServer::new().launch()?;
    /// # Ok::<(), hookserver::Error>(())
    /// ```
    pub fn launch(&self) -> Result<()> {
        if notebook::active() {
            return notebook::launch(self);
        }
        let served = self.start(true).and_then(ServerHandle::wait);
        // The program may end at once: the last log lines go out first, error or not.
        crate::logging::flush();
        served
    }

    /// The errors [`launch`](Self::launch) would meet before listening.
    pub(crate) fn check_launch(&self) -> Result<()> {
        self.check_registry()?;
        Config::from_env(self).map(|_| ())
    }

    /// The port chosen by the builder or `HOOKSERVER_PORT`, if any.
    pub(crate) fn chosen_port(&self) -> Option<u16> {
        Config::from_env(self).ok().and_then(|config| config.port)
    }

    /// Serves on a background thread and returns at once; stop with
    /// [`ServerHandle::stop`]. SIGINT and SIGTERM are left to the caller.
    ///
    /// # Errors
    ///
    /// The errors of [`launch`](Self::launch).
    ///
    /// ```
    /// let mut app = hookserver::WebhooksServer::empty().port(0);
    /// app.add_webhook("ping", || async { "pong" })?;
    /// let handle = app.launch_background()?;
    /// println!("{}", handle.url()); // http://127.0.0.1:PORT
    /// handle.stop();
    /// # Ok::<(), hookserver::Error>(())
    /// ```
    pub fn launch_background(&self) -> Result<ServerHandle> {
        self.start(false)
    }

    /// The server's routes as an actix-web configuration: `GET /` (the landing page),
    /// `GET /healthz` and `/webhooks/*`, with the secret check, the body limit, the
    /// timeouts and the panic guard, and a JSON 404 as the default service (an
    /// `App::default_service` of your own, set after, replaces it). Mount them in an `App` of your own, or test the endpoints in memory
    /// with `actix_web::test`. The landing page shows paths relative to the host it is
    /// served on (or `https://$SPACE_HOST` on a Space). No log subscriber is installed.
    /// The dashboard comes along (`/dashboard`, `/api/*`, ...); its live event streams end
    /// when their client goes, so a graceful stop of your own server waits for an open
    /// dashboard tab up to its shutdown timeout.
    ///
    /// With a queued endpoint, the inbox opens here and its deliveries run while the
    /// returned fn (or a copy) lives.
    ///
    /// # Errors
    ///
    /// Two `#[webhook_endpoint]` fns on one path; an inbox that cannot be opened.
    ///
    /// ```
    /// use hookserver::actix_web::{test, App};
    ///
    /// # hookserver::actix_web::rt::System::new().block_on(async {
    /// let mut server = hookserver::WebhooksServer::empty().webhook_secret("s3cret");
    /// server.add_webhook("ping", || async { "pong" })?;
    /// let app = test::init_service(App::new().configure(server.configure()?)).await;
    /// let request = test::TestRequest::post()
    ///     .uri("/webhooks/ping")
    ///     .insert_header(("x-webhook-secret", "s3cret"))
    ///     .to_request();
    /// let body = test::call_and_read_body(&app, request).await;
    /// assert_eq!(body, "pong");
    /// # Ok::<(), hookserver::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn configure(&self) -> Result<impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static> {
        self.check_registry()?;
        let config = Config::from_env(self)?;
        let base_url = config.space_url.clone().unwrap_or_default();
        // Live views of an app of one's own end with its connections.
        let closing = Arc::new(tokio::sync::watch::Sender::new(false));
        let inbox = if self.endpoints.any_queued() {
            Some(crate::inbox::Inbox::open(config.inbox.clone())?)
        } else {
            None
        };
        let metrics = Arc::new(crate::metrics::Metrics::new(
            self.endpoints
                .iter()
                .map(|e| (&e.path, e.accepted_status())),
        ));
        // Queued deliveries run while the app (the last copy of this fn) lives.
        let runner = match &inbox {
            Some(inbox) => Some(Arc::new(
                crate::inbox::Runner::start(
                    inbox,
                    self.endpoints.table(),
                    self.handler_timeout,
                    Arc::clone(&metrics),
                )
                .map_err(|err| Error::io("the queue's thread", err))?,
            )),
            None => None,
        };
        let state = self.app_state(&config, &base_url, closing, inbox, metrics);
        Ok(move |service: &mut web::ServiceConfig| {
            // Each app built holds the queue: it runs while any of them lives (actix-web
            // drops the fn itself once the app is configured).
            if let Some(runner) = &runner {
                service.app_data(QueueKeepAlive(Arc::clone(runner)));
            }
            state.routes(service);
        })
    }

    fn check_registry(&self) -> Result<()> {
        match &self.registry_error {
            Some((path, first, second)) => Err(Error::DuplicateEndpoints {
                path: path.clone(),
                first: first.clone(),
                second: second.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// Keeps an app's queue running while the app lives (see `configure`).
#[derive(Debug)]
struct QueueKeepAlive(#[allow(dead_code)] Arc<crate::inbox::Runner>);

/// The last part of a type's path: `crate::module::hello` gives `hello`.
pub(super) fn short_type_name(type_name: &str) -> &str {
    type_name.rsplit("::").next().unwrap_or(type_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name("my_bot::handlers::hello"), "hello");
        assert_eq!(short_type_name("hello"), "hello");
    }

    /// Values actix-web would panic on are brought within its range (it panics past 512
    /// workers, and on a request deadline past the clock's range).
    #[test]
    fn settings_actix_web_panics_on_are_within_its_range() {
        assert_eq!(WebhooksServer::empty().workers(100_000).workers, Some(512));
        assert_eq!(WebhooksServer::empty().workers(0).workers, Some(1));
        let longest = WebhooksServer::empty().request_timeout(Duration::MAX);
        assert_eq!(longest.request_timeout.as_secs(), 100 * 365 * 24 * 3600);
        assert!(std::time::Instant::now()
            .checked_add(longest.request_timeout)
            .is_some());
    }
}
