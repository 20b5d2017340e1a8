//! The builder's server-wide settings: the secret and the ones before it, the landing
//! page, the address, the limits and timeouts, the dashboard's, the tunnel and the public
//! URL, and the registration on the Hub. Each overrides its environment variable (read in
//! `config`).

use std::net::IpAddr;
use std::time::Duration;

use super::WebhooksServer;
use crate::access::secret::Secret;
use crate::hub::HubRegistration;

impl WebhooksServer {
    /// Requires every delivery to carry `secret` (in `X-Webhook-Secret`, or a `secret`
    /// query parameter). An empty string means no secret. Overrides `WEBHOOK_SECRET`.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty().webhook_secret("my_secret_key");
    /// assert!(!format!("{app:?}").contains("my_secret_key"));
    /// ```
    #[must_use]
    pub fn webhook_secret(mut self, secret: impl AsRef<str>) -> Self {
        self.secret = Some(Secret::new(secret.as_ref()));
        self
    }

    /// Accepts these previous secrets too, beside the one of
    /// [`webhook_secret`](Self::webhook_secret) (or `WEBHOOK_SECRET`), while a rotation is
    /// under way: each is compared in constant time; deliveries, the dashboard's login and
    /// its bearer token take any of them. Overrides `HOOKSERVER_PREVIOUS_SECRETS`
    /// (comma-separated). See the README's "Rotating the secret".
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty()
    ///     .webhook_secret("new-secret")
    ///     .previous_secrets(["old-secret"]);
    /// assert!(!format!("{app:?}").contains("old-secret"));
    /// ```
    #[must_use]
    pub fn previous_secrets(
        mut self,
        previous: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.previous_secrets = Some(previous.into_iter().map(Into::into).collect());
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
    /// up to 7959 is used (on a Space 7860 only: its proxy sends there).
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

    /// The number of worker threads (default: one per core), from 1 to 512 (actix-web's
    /// most; a number outside is the nearest end).
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty().workers(1);
    /// ```
    #[must_use]
    pub fn workers(mut self, workers: usize) -> Self {
        // actix-server panics past 512 workers.
        self.workers = Some(workers.clamp(1, 512));
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
    /// `Duration::ZERO` means no limit; so does anything over 100 years (`Duration::MAX`),
    /// which is 100 years, as the clock cannot hold a deadline that far.
    ///
    /// ```
    /// use std::time::Duration;
    /// let app = hookserver::WebhooksServer::empty().request_timeout(Duration::from_secs(2));
    /// ```
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout.min(crate::LONGEST);
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
    /// [`DEFAULT_SESSION_TTL`](crate::DEFAULT_SESSION_TTL), 12 h; at most 100 years, which
    /// is what `Duration::MAX` gives; zero is a launch error, as a login would end at once).
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

    /// The public URL the Hub calls, such as `https://bot.example.com`, for a server behind
    /// a reverse proxy or a load balancer (overrides `HOOKSERVER_PUBLIC_URL`, and a Space's
    /// URL). The landing page, the printed instructions and
    /// [`register_on_hub`](Self::register_on_hub) use it. It cannot be combined with
    /// [`share`](Self::share), whose tunnel has a URL of its own.
    ///
    /// ```
    /// let app = hookserver::WebhooksServer::empty().public_url("https://bot.example.com");
    /// ```
    #[must_use]
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// Makes sure, at each launch, that a webhook on the Hub calls this server: for each
    /// endpoint, one is found by its public URL (the tunnel's, the Space's, or
    /// [`public_url`](Self::public_url)), else created, then updated with what
    /// `registration` watches and the server's secret, and enabled. The launch prints
    /// `Registered on the Hub: webhook ID watching ... -> URL`; a tunnel's webhook is
    /// disabled again when the server stops ([`OnExit`](crate::OnExit) chooses).
    ///
    /// It uses the Hub's REST API (`/api/settings/webhooks`) at `HF_ENDPOINT` (default
    /// [`DEFAULT_HUB_URL`](crate::DEFAULT_HUB_URL)) with the token of `HF_TOKEN` or of
    /// `hf auth login`'s token file, as `huggingface_hub` finds it. A failure is a warning
    /// and the server runs on, unless the registration is
    /// [`required`](crate::HubRegistration::required). Without this call (a `main!()` bot),
    /// `HOOKSERVER_HUB_WATCH=dataset:me/data,org:my-org` registers too; `HOOKSERVER_HUB_DOMAINS`,
    /// `HOOKSERVER_HUB_ON_EXIT` and `HOOKSERVER_HUB_REQUIRED` fill what the builder left unset.
    ///
    /// ```no_run
    /// use hookserver::{HubRegistration, Watched, WebhooksServer};
    ///
    /// let app = WebhooksServer::new()
    ///     .webhook_secret("my_secret_key")
    ///     .share(true)
    ///     .register_on_hub(HubRegistration::new().watch(Watched::dataset("me/my-data")));
    /// app.launch()?; // Registered on the Hub: webhook 6565... watching dataset me/my-data ...
    /// # Ok::<(), hookserver::Error>(())
    /// ```
    #[must_use]
    pub fn register_on_hub(mut self, registration: HubRegistration) -> Self {
        self.hub = Some(registration);
        self
    }
}
