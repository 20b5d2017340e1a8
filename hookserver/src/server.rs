//! [`WebhooksServer`]: the builder, `launch()`, and the handle of a running server.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::HttpServer;

use crate::app::{app, Shared};
use crate::dashboard::{Dashboard, DEFAULT_EVENT_STREAMS};
use crate::deliveries::{DeliveryLog, DEFAULT_DELIVERY_LOG};
use crate::error::{Error, Result};
use crate::handler::Handler;
use crate::logging::{say, say_err};
use crate::registry::{normalize_path, Endpoint, Endpoints, WEBHOOKS_PREFIX};
use crate::secret::Secret;
use crate::session::{Sessions, DEFAULT_SESSION_TTL};
use crate::share::{parse_server, parse_switch, Share, DEFAULT_SHARE_SERVER};
use crate::throttle::{Proxies, Throttle};

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
    secret: Option<Secret>,
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
}

impl fmt::Debug for WebhooksServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhooksServer")
            .field(
                "endpoints",
                &self.endpoints.iter().map(|e| &e.path).collect::<Vec<_>>(),
            )
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
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
    /// process. The secret still defaults to `WEBHOOK_SECRET`.
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
            secret: std::env::var("WEBHOOK_SECRET")
                .ok()
                .as_deref()
                .and_then(Secret::new),
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
        }
    }

    /// Requires every delivery to carry `secret` (in `X-Webhook-Secret`, or a `secret`
    /// query parameter). An empty string means no secret. Overrides `WEBHOOK_SECRET`.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty().webhook_secret("my_secret_key");
    /// assert!(!format!("{app:?}").contains("my_secret_key"));
    /// ```
    #[must_use]
    pub fn webhook_secret(mut self, secret: impl AsRef<str>) -> Self {
        self.secret = Secret::new(secret.as_ref());
        self
    }

    /// Replaces the landing page (`GET /`) with this HTML.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty().ui("<h1>My bot</h1>");
    /// ```
    #[must_use]
    pub fn ui(mut self, html: impl Into<String>) -> Self {
        self.ui = Some(html.into());
        self
    }

    /// The host to listen on; overrides `HOOKSERVER_HOST`. Default `127.0.0.1`, or
    /// `0.0.0.0` on a Hugging Face Space.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty().host("0.0.0.0");
    /// ```
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The port to listen on; overrides `HOOKSERVER_PORT`; `0` picks a free port. A chosen
    /// port that is taken is an error; without a choice, 7860 and then the next free port
    /// up to 7959 is used.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty().port(0);
    /// ```
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The largest body accepted, in bytes (default 1 MiB); larger ones answer 413.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty().body_limit(64 * 1024);
    /// ```
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The number of worker threads (default: one per core).
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty().workers(1);
    /// ```
    #[must_use]
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers.max(1));
        self
    }

    /// How long a handler may take to answer (default 60 s; `None`: no limit). Past it the
    /// delivery answers 504 `{"error": "the webhook handler did not answer within ..."}`
    /// and an `async` handler is dropped, freeing the worker. A plain fn cannot be
    /// stopped: it runs on to its end on the blocking pool, and its answer is discarded.
    ///
    /// ```
    /// use std::time::Duration;
    /// let app = hookserver::WebhooksServer::empty().handler_timeout(Some(Duration::from_secs(10)));
    /// ```
    #[must_use]
    pub fn handler_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handler_timeout = timeout;
        self
    }

    /// How long a delivery's body may take to arrive (default 30 s); past it the delivery
    /// answers 408 and the connection is closed, so that a client that stops mid-body
    /// holds nothing for long.
    ///
    /// ```
    /// use std::time::Duration;
    /// let app = hookserver::WebhooksServer::empty().body_timeout(Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// How long a request's line and headers may take to arrive (default 5 s); past it
    /// the server answers 408 and closes the connection (a slow-headers client, say).
    ///
    /// ```
    /// use std::time::Duration;
    /// let app = hookserver::WebhooksServer::empty().request_timeout(Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How many recent deliveries the dashboard keeps in memory (overrides
    /// `HOOKSERVER_DELIVERY_LOG`; default 200). `0` turns the log off: nothing is recorded,
    /// and the dashboard's test deliveries are answered without being kept.
    ///
    /// Each kept delivery holds up to 8 KiB of its headers, 64 KiB of its body and 16 KiB
    /// of its answer (a refused one, 2 KiB of headers and no body): at most
    /// [`RECORD_BOUND`](crate::RECORD_BOUND) each. A longer body or set of headers is kept
    /// cut and cannot be redelivered.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty().delivery_log(1000);
    /// let off = hookserver::WebhooksServer::empty().delivery_log(0);
    /// ```
    #[must_use]
    pub fn delivery_log(mut self, deliveries: usize) -> Self {
        self.delivery_log = Some(deliveries);
        self
    }

    /// How long a dashboard login lasts (overrides `HOOKSERVER_SESSION_TTL`; default
    /// [`DEFAULT_SESSION_TTL`](crate::DEFAULT_SESSION_TTL), 12 h).
    ///
    /// ```
    /// use std::time::Duration;
    /// let app = hookserver::WebhooksServer::empty().session_ttl(Duration::from_secs(3600));
    /// ```
    #[must_use]
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = Some(ttl);
        self
    }

    /// How many live event streams (`GET /api/events`, one per open dashboard tab) the
    /// server keeps open at most (overrides `HOOKSERVER_EVENT_STREAMS`; default
    /// [`DEFAULT_EVENT_STREAMS`](crate::DEFAULT_EVENT_STREAMS)). Past it, a new one is
    /// refused with 503.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty().event_streams(4);
    /// ```
    #[must_use]
    pub fn event_streams(mut self, streams: usize) -> Self {
        self.event_streams = Some(streams);
        self
    }

    /// The addresses of the reverse proxies in front of the server (overrides
    /// `HOOKSERVER_TRUSTED_PROXIES`, a comma-separated list). For a request from one of
    /// them, the client is the right-most address of `X-Forwarded-For` that is not a
    /// proxy: wrong secrets are counted, and deliveries recorded, under that address. On
    /// a Space, every peer is the Hub's proxy.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty().trusted_proxies(["10.0.0.2".parse().unwrap()]);
    /// ```
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = IpAddr>) -> Self {
        self.trusted_proxies = Some(proxies.into_iter().collect());
        self
    }

    /// How long in-flight deliveries may take to finish once a stop is asked (default 30 s).
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty()
    ///     .shutdown_timeout(std::time::Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Opens a public tunnel to the server (overrides `HOOKSERVER_SHARE`), to debug
    /// against the real Hub from a laptop: the instructions then print the tunnel's
    /// `http://` URLs. The tunnel is [bore](https://github.com/ekzhang/bore), through the
    /// public bore server unless [`share_server`](Self::share_server) names another.
    /// Off by default; ignored on a Space, whose URL is public already. Anyone who learns
    /// the URL can call it: set a secret.
    ///
    /// ```no_run
    /// let app = hookserver::WebhooksServer::new()
    ///     .webhook_secret("my_secret_key")
    ///     .share(true);
    /// app.launch()?; // - POST http://bore.pub:PORT/webhooks/...
    /// # Ok::<(), hookserver::Error>(())
    /// ```
    #[must_use]
    pub fn share(mut self, share: bool) -> Self {
        self.share = Some(share);
        self
    }

    /// The bore server of the tunnel, `host[:7835]` (overrides `HOOKSERVER_SHARE_SERVER`;
    /// default [`DEFAULT_SHARE_SERVER`](crate::DEFAULT_SHARE_SERVER)): run your own with
    /// `bore server`.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty()
    ///     .share(true)
    ///     .share_server("tunnel.example.com")
    ///     .share_secret("team secret");
    /// ```
    #[must_use]
    pub fn share_server(mut self, server: impl Into<String>) -> Self {
        self.share_server = Some(server.into());
        self
    }

    /// The bore server's secret, if it requires one (`bore server --secret`); overrides
    /// `HOOKSERVER_SHARE_SECRET`. Never printed.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty()
    ///     .share(true)
    ///     .share_server("tunnel.example.com:7835")
    ///     .share_secret("team secret");
    /// assert!(!format!("{app:?}").contains("team secret"));
    /// ```
    #[must_use]
    pub fn share_secret(mut self, secret: impl Into<String>) -> Self {
        self.share_secret = Some(secret.into());
        self
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
        if crate::notebook::active() {
            return crate::notebook::launch(self);
        }
        let handle = self.start(true)?;
        handle.wait()
    }

    /// The errors [`launch`](Self::launch) would meet before listening.
    pub(crate) fn check_launch(&self) -> Result<()> {
        self.check_registry()?;
        Config::resolve(self, |name| std::env::var(name).ok()).map(|_| ())
    }

    /// The port chosen by the builder or `HOOKSERVER_PORT`, if any.
    pub(crate) fn chosen_port(&self) -> Option<u16> {
        Config::resolve(self, |name| std::env::var(name).ok())
            .ok()
            .and_then(|config| config.port)
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
    /// # Errors
    ///
    /// Two `#[webhook_endpoint]` fns on one path.
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
        let config = Config::resolve(self, |name| std::env::var(name).ok())?;
        let base_url = config.space_url.clone().unwrap_or_default();
        // Live views of an app of one's own end with its connections.
        let closing = Arc::new(tokio::sync::watch::Sender::new(false));
        let shared = web::Data::new(self.shared(&config, &base_url, closing));
        Ok(move |service: &mut web::ServiceConfig| crate::app::routes(service, shared.clone()))
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

    /// What the workers share, with the landing page naming `base_url`.
    fn shared(
        &self,
        config: &Config,
        base_url: &str,
        closing: Arc<tokio::sync::watch::Sender<bool>>,
    ) -> Shared {
        Shared {
            table: self.endpoints.table(),
            secret: self.secret.clone(),
            body_limit: self.body_limit,
            body_timeout: self.body_timeout,
            handler_timeout: self.handler_timeout,
            custom_ui: self.ui.as_ref().map(|html| Bytes::from(html.clone())),
            dashboard: Dashboard::new(
                &self.endpoints,
                base_url,
                self.secret.as_ref(),
                config.on_space,
                config.event_streams,
                closing,
            ),
            deliveries: Arc::new(DeliveryLog::new(config.delivery_log)),
            sessions: Sessions::new(config.session_ttl),
            throttle: Throttle::default(),
            proxies: config.proxies.clone(),
        }
    }

    fn start(&self, handle_signals: bool) -> Result<ServerHandle> {
        self.check_registry()?;
        let config = Config::resolve(self, |name| std::env::var(name).ok())?;
        if config.share_refused {
            say_err("warning: sharing is off on a Space: the Space's URL is public already.");
        }
        crate::logging::init();
        LAUNCHED.store(true, Ordering::SeqCst);

        let (ready_tx, ready_rx) = mpsc::channel();
        let workers = self.workers;
        let shutdown_timeout = self.shutdown_timeout.as_secs();
        let request_timeout = self.request_timeout;
        let thread_config = config.clone();
        // Set when the server stops: the dashboard's live views end, so that a stop does
        // not wait for an open browser tab.
        let closing = Arc::new(tokio::sync::watch::Sender::new(false));
        let thread_closing = Arc::clone(&closing);
        // The landing page names the port, known once listening: build what the workers
        // share on the server thread, from a copy of this server.
        let prepared = self.clone();
        let thread = std::thread::Builder::new()
            .name("hookserver".to_owned())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let listened = listen(&thread_config).and_then(|listener| {
                        let addr = listener
                            .local_addr()
                            .map_err(|err| Error::io(&thread_config.host, err))?;
                        Ok((listener, addr))
                    });
                    // The tunnel's URL goes on the landing page: open it before serving.
                    let listened = match (listened, &thread_config.share) {
                        (Ok((listener, addr)), Some(share)) => {
                            let local = local_url(addr);
                            let local_host = local_host(addr);
                            crate::share::open(share, &local_host, addr.port())
                                .await
                                .map(|url| {
                                    tracing::info!(tunnel = %url, local = %local, "public tunnel open");
                                    (listener, addr, Some(url))
                                })
                        }
                        (listened, _) => listened.map(|(listener, addr)| (listener, addr, None)),
                    };
                    let started = listened.and_then(|(listener, addr, tunnel)| {
                        let base_url = tunnel.clone().unwrap_or_else(|| thread_config.base_url(addr.port()));
                        let shared = web::Data::new(prepared.shared(&thread_config, &base_url, thread_closing.clone()));
                        let mut server = HttpServer::new(move || app(shared.clone()))
                            .disable_signals()
                            .client_request_timeout(request_timeout)
                            .shutdown_timeout(shutdown_timeout);
                        if let Some(workers) = workers {
                            server = server.workers(workers);
                        }
                        let server = server.listen(listener).map_err(|err| Error::io(addr, err))?;
                        Ok((server, addr, base_url))
                    });
                    let (server, addr, base_url) = match started {
                        Ok(started) => started,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return Ok(());
                        }
                    };
                    let server = server.run();
                    let handle = server.handle();
                    if handle_signals {
                        // Listen before saying "ready", so that no signal slips through.
                        match Signals::listen() {
                            Ok(signals) => {
                                actix_web::rt::spawn(stop_on_signal(signals, handle.clone(), thread_closing.clone()));
                            }
                            Err(err) => {
                                tracing::warn!(error = %err, "cannot listen for SIGINT and SIGTERM");
                            }
                        }
                    }
                    let _ = ready_tx.send(Ok((addr, handle, base_url)));
                    server.await
                })
            })
            .map_err(|err| Error::io(&config.host, err))?;

        let (addr, handle, public_url) = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(err)) => {
                let _ = thread.join();
                return Err(err);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(Error::ServerThread);
            }
        };
        let instructions = instructions(&self.endpoints, &public_url);
        print_secret_state(self.secret.is_some());
        if self
            .secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < SHORT_SECRET)
        {
            say_err(&format!(
                "warning: the webhook secret is shorter than {SHORT_SECRET} characters: wrong \
                 secrets are throttled per address, but a short or dictionary secret can still \
                 be guessed from many addresses; use a long random one (`openssl rand -hex 16`)."
            ));
        }
        if self.endpoints.is_empty() {
            say_err(
                "warning: no webhook endpoint is registered. Add one with #[webhook_endpoint] or add_webhook(...); \
                 if you did, see \"Platform notes\" in hookserver's docs (registration needs a platform that `inventory` supports)."
            );
        }
        say(&instructions);
        Ok(ServerHandle {
            addr,
            url: local_url(addr),
            public_url,
            instructions,
            handle,
            thread,
            closing,
        })
    }
}

/// Listens on the first usable port: the chosen one, or 7860..=7959 when none was chosen.
fn listen(config: &Config) -> Result<std::net::TcpListener> {
    let ports = match config.port {
        Some(port) => port..=port,
        None => DEFAULT_PORT..=LAST_FALLBACK_PORT,
    };
    for port in ports {
        let shown = format!("{}:{port}", config.host);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(config.host.as_str(), port))
            .map_err(|err| Error::io(&shown, err))?
            .next()
            .ok_or_else(|| Error::Config(format!("{shown} resolves to no address")))?;
        match listen_on(addr) {
            Ok(listener) => return Ok(listener),
            Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
                if config.port.is_some() {
                    return Err(Error::AddrInUse { addr: shown });
                }
            }
            Err(err) => return Err(Error::io(shown, err)),
        }
    }
    Err(Error::NoFreePort {
        host: config.host.clone(),
    })
}

/// A listening socket as actix-web makes one: address reuse, a backlog of 1024.
fn listen_on(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(not(windows))]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

async fn stop_on_signal(
    mut signals: Signals,
    handle: actix_web::dev::ServerHandle,
    closing: Arc<tokio::sync::watch::Sender<bool>>,
) {
    signals.recv().await;
    say("Stopping: letting in-flight deliveries finish (press Ctrl-C again to stop at once).");
    tracing::info!("signal received; stopping gracefully");
    Dashboard::close(&closing);
    let graceful = handle.stop(true);
    let forced = async {
        signals.recv().await;
        tracing::warn!("second signal received; stopping at once");
        handle.stop(false).await;
    };
    futures_util::future::select(Box::pin(graceful), Box::pin(forced)).await;
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere than Unix).
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn listen() -> std::io::Result<Self> {
        Ok(Signals {})
    }

    #[cfg(unix)]
    async fn recv(&mut self) {
        futures_util::future::select(
            Box::pin(self.terminate.recv()),
            Box::pin(self.interrupt.recv()),
        )
        .await;
    }

    #[cfg(not(unix))]
    async fn recv(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Secrets shorter than this get a warning at start-up.
const SHORT_SECRET: usize = 16;

/// Says whether a secret is set, as `huggingface_hub` does when a server is created.
fn print_secret_state(secret_set: bool) {
    if secret_set {
        say("Webhook secret is correctly defined.");
    } else {
        say("Webhook secret is not defined. This means your webhook endpoints will be open to everyone.");
        say("To add a secret, set `WEBHOOK_SECRET` as environment variable or pass it at initialization: \n\t`WebhooksServer::new().webhook_secret(\"my_secret\")`");
        say("For more details about webhook secrets, please refer to https://huggingface.co/docs/hub/webhooks#webhook-secret.");
    }
}

/// The lines `huggingface_hub` prints once the server is up.
fn instructions(endpoints: &Endpoints, base_url: &str) -> String {
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
fn local_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// The host a tunnel forwards to: the listening address, or loopback for "any address".
fn local_host(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V6(ip) if ip.is_unspecified() => "::1".to_owned(),
        ip => ip.to_string(),
    }
}

/// The last part of a type's path: `crate::module::hello` gives `hello`.
fn short_type_name(type_name: &str) -> &str {
    type_name.rsplit("::").next().unwrap_or(type_name)
}

/// The address and URLs, from the builder, the environment and the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) host: String,
    /// `None`: not chosen (7860, then the next free port up to 7959).
    pub(crate) port: Option<u16>,
    pub(crate) on_space: bool,
    /// `https://$SPACE_HOST` when set.
    pub(crate) space_url: Option<String>,
    /// The tunnel to open, if sharing.
    pub(crate) share: Option<Share>,
    /// Sharing was asked for on a Space, where it is off.
    pub(crate) share_refused: bool,
    /// How many deliveries the dashboard keeps.
    pub(crate) delivery_log: usize,
    /// How long a dashboard login lasts.
    pub(crate) session_ttl: Duration,
    /// How many live event streams may be open.
    pub(crate) event_streams: usize,
    /// Who may say who the client is.
    pub(crate) proxies: Proxies,
}

impl Config {
    pub(crate) fn resolve(
        server: &WebhooksServer,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let on_space = set("SPACE_ID").is_some() || env("SYSTEM").as_deref() == Some("spaces");
        let host = server
            .host
            .clone()
            .or_else(|| set("HOOKSERVER_HOST"))
            .unwrap_or_else(|| if on_space { "0.0.0.0" } else { "127.0.0.1" }.to_owned());
        let port = match (server.port, set("HOOKSERVER_PORT")) {
            (Some(port), _) => Some(port),
            (None, Some(value)) => Some(value.trim().parse::<u16>().map_err(|_| {
                Error::Config(format!(
                    "HOOKSERVER_PORT must be a port number from 0 to 65535, not {value:?}"
                ))
            })?),
            (None, None) => None,
        };
        let space_url =
            set("SPACE_HOST").map(|h| format!("https://{}", h.trim().trim_end_matches('/')));
        let wants_share = match (server.share, env("HOOKSERVER_SHARE")) {
            (Some(share), _) => share,
            (None, Some(value)) => parse_switch("HOOKSERVER_SHARE", &value)?,
            (None, None) => false,
        };
        let share = if wants_share && on_space {
            None
        } else if wants_share {
            let host = match server
                .share_server
                .clone()
                .or_else(|| set("HOOKSERVER_SHARE_SERVER"))
            {
                Some(value) => parse_server(&value)?,
                None => DEFAULT_SHARE_SERVER.to_owned(),
            };
            let secret = server
                .share_secret
                .clone()
                .or_else(|| set("HOOKSERVER_SHARE_SECRET"))
                .filter(|secret| !secret.is_empty());
            Some(Share {
                server: host,
                secret,
            })
        } else {
            None
        };
        let delivery_log = match (server.delivery_log, set("HOOKSERVER_DELIVERY_LOG")) {
            (Some(kept), _) => kept,
            (None, Some(value)) => value.trim().parse::<usize>().map_err(|_| {
                Error::Config(format!(
                    "HOOKSERVER_DELIVERY_LOG must be how many deliveries to keep (0 turns the log off), not {value:?}"
                ))
            })?,
            (None, None) => DEFAULT_DELIVERY_LOG,
        };
        let session_ttl = match (server.session_ttl, set("HOOKSERVER_SESSION_TTL")) {
            (Some(ttl), _) => ttl,
            (None, Some(value)) => humantime::parse_duration(value.trim()).map_err(|_| {
                Error::Config(format!(
                    "HOOKSERVER_SESSION_TTL must be a duration such as 12h or 30m, not {value:?}"
                ))
            })?,
            (None, None) => DEFAULT_SESSION_TTL,
        };
        let event_streams = match (server.event_streams, set("HOOKSERVER_EVENT_STREAMS")) {
            (Some(streams), _) => streams,
            (None, Some(value)) => value.trim().parse::<usize>().map_err(|_| {
                Error::Config(format!(
                    "HOOKSERVER_EVENT_STREAMS must be how many live event streams to allow, not {value:?}"
                ))
            })?,
            (None, None) => DEFAULT_EVENT_STREAMS,
        };
        let list = match (&server.trusted_proxies, set("HOOKSERVER_TRUSTED_PROXIES")) {
            (Some(list), _) => list.clone(),
            (None, Some(value)) => value
                .split(',')
                .map(str::trim)
                .filter(|part| !part.is_empty())
                .map(|part| {
                    part.parse::<IpAddr>().map_err(|_| {
                        Error::Config(format!(
                            "HOOKSERVER_TRUSTED_PROXIES must be IP addresses separated by commas, not {part:?}"
                        ))
                    })
                })
                .collect::<Result<_>>()?,
            (None, None) => Vec::new(),
        };
        Ok(Config {
            host,
            port,
            on_space,
            space_url,
            share,
            share_refused: wants_share && on_space,
            delivery_log,
            session_ttl,
            event_streams,
            proxies: Proxies {
                any: on_space,
                list,
            },
        })
    }

    /// The base of the URLs the Hub must call.
    pub(crate) fn base_url(&self, port: u16) -> String {
        match &self.space_url {
            Some(url) => url.clone(),
            None => match self.host.parse::<IpAddr>() {
                Ok(ip) => local_url(SocketAddr::new(ip, port)),
                Err(_) => format!("http://{}:{port}", self.host),
            },
        }
    }
}

/// A server running in the background, from
/// [`WebhooksServer::launch_background`].
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
    addr: SocketAddr,
    url: String,
    public_url: String,
    instructions: String,
    handle: actix_web::dev::ServerHandle,
    thread: JoinHandle<std::io::Result<()>>,
    closing: Arc<tokio::sync::watch::Sender<bool>>,
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
    /// [`WebhooksServer::launch`]).
    pub(crate) fn wait(self) -> Result<()> {
        match self.thread.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Error::io(self.addr, err)),
            Err(_) => Err(Error::ServerThread),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(server: &WebhooksServer, vars: &[(&str, &str)]) -> Result<Config> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::resolve(server, |name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_are_local_and_port_unchosen() {
        let c = resolve(&WebhooksServer::empty(), &[]).unwrap();
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.port, None);
        assert!(!c.on_space);
        assert_eq!(c.base_url(7860), "http://127.0.0.1:7860");
    }

    #[test]
    fn a_space_listens_everywhere_and_prints_its_https_url() {
        for vars in [&[("SPACE_ID", "me/bot")][..], &[("SYSTEM", "spaces")][..]] {
            let c = resolve(&WebhooksServer::empty(), vars).unwrap();
            assert_eq!(c.host, "0.0.0.0");
            assert!(c.on_space);
        }
        let c = resolve(
            &WebhooksServer::empty(),
            &[("SPACE_ID", "me/bot"), ("SPACE_HOST", "me-bot.hf.space")],
        )
        .unwrap();
        assert_eq!(c.base_url(7860), "https://me-bot.hf.space");
        let c = resolve(&WebhooksServer::empty(), &[("SPACE_ID", "me/bot")]).unwrap();
        assert_eq!(c.base_url(7860), "http://127.0.0.1:7860");
    }

    #[test]
    fn environment_then_builder() {
        let env = [("HOOKSERVER_HOST", "::1"), ("HOOKSERVER_PORT", "9000")];
        let c = resolve(&WebhooksServer::empty(), &env).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", Some(9000)));
        assert_eq!(c.base_url(9000), "http://[::1]:9000");
        let c = resolve(&WebhooksServer::empty().host("0.0.0.0").port(0), &env).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", Some(0)));
    }

    #[test]
    fn a_bad_port_is_a_clear_error() {
        let err = resolve(&WebhooksServer::empty(), &[("HOOKSERVER_PORT", "abc")]).unwrap_err();
        assert!(err.to_string().contains("HOOKSERVER_PORT"), "{err}");
        let err = resolve(&WebhooksServer::empty(), &[("HOOKSERVER_PORT", "70000")]).unwrap_err();
        assert!(err.to_string().contains("70000"), "{err}");
    }

    #[test]
    fn short_names() {
        assert_eq!(short_type_name("my_bot::handlers::hello"), "hello");
        assert_eq!(short_type_name("hello"), "hello");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let app = WebhooksServer::empty().webhook_secret("hunter2");
        assert!(!format!("{app:?}").contains("hunter2"));
    }
}
