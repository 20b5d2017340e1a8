//! Launching: listening (with the port fallback), the app of each worker, the server
//! thread, the tunnel, and the signals that stop it.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

use actix_web::web;
use actix_web::{App, HttpServer};

use super::config::Config;
use super::handle::{
    instructions, local_host, local_url, print_secret_state, ServerHandle, SHORT_SECRET,
};
use super::{WebhooksServer, DEFAULT_PORT, LAST_FALLBACK_PORT, LAUNCHED};
use crate::access::throttle::Throttle;
use crate::dashboard::{self, Dashboard};
use crate::deliveries::DeliveryLog;
use crate::error::{Error, Result};
use crate::http::{self, Shared};
use crate::hub::{HubLink, Report};
use crate::inbox::{Inbox, Runner};
use crate::logging::{say, say_err};
use crate::metrics::Metrics;

/// What the workers share: the endpoints' state and the dashboard's.
#[derive(Debug, Clone)]
pub(super) struct AppState {
    shared: web::Data<Shared>,
    dashboard: web::Data<Dashboard>,
}

impl AppState {
    /// Every route: `/webhooks/*` and `/healthz` first, then the dashboard's.
    pub(super) fn routes(&self, config: &mut web::ServiceConfig) {
        http::routes(config, self.shared.clone());
        dashboard::routes(config, self.dashboard.clone());
    }
}

impl WebhooksServer {
    /// What the workers share, with the landing page naming `base_url`: the endpoints'
    /// state and the dashboard's.
    pub(super) fn app_state(
        &self,
        config: &Config,
        base_url: &str,
        closing: Arc<tokio::sync::watch::Sender<bool>>,
        inbox: Option<Inbox>,
        metrics: Arc<Metrics>,
    ) -> AppState {
        let shared = Shared {
            table: self.endpoints.table(),
            secret: config.secret.clone(),
            body_limit: self.body_limit,
            body_timeout: self.body_timeout,
            handler_timeout: self.handler_timeout,
            deliveries: Arc::new(DeliveryLog::new(config.delivery_log)),
            throttle: Throttle::default(),
            proxies: config.proxies.clone(),
            inbox,
            metrics,
        };
        let settings = dashboard::Settings {
            secret_set: config.secret.is_some(),
            on_space: config.on_space,
            max_streams: config.event_streams,
            session_ttl: config.session_ttl,
            custom_ui: self.ui.clone(),
        };
        AppState {
            shared: web::Data::new(shared),
            dashboard: web::Data::new(Dashboard::new(
                &self.endpoints,
                base_url,
                &settings,
                closing,
            )),
        }
    }

    pub(super) fn start(&self, handle_signals: bool) -> Result<ServerHandle> {
        self.check_registry()?;
        let config = Config::from_env(self)?;
        if config.share_refused {
            say_err("warning: sharing is off on a Space: the Space's URL is public already.");
        }
        crate::logging::init();
        LAUNCHED.store(true, Ordering::SeqCst);
        // Opened before serving: a file that cannot be an inbox is an error of the launch.
        let inbox = if self.endpoints.any_queued() {
            Some(Inbox::open(config.inbox.clone())?)
        } else {
            None
        };
        let thread_inbox = inbox.clone();
        let metrics = Arc::new(Metrics::new(
            self.endpoints
                .iter()
                .map(|e| (&e.path, e.accepted_status())),
        ));

        let (ready_tx, ready_rx) = mpsc::channel();
        let workers = self.workers;
        let shutdown_timeout = self.shutdown_timeout.as_secs();
        let shutdown_grace = self.shutdown_timeout;
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
                        let url_kind = thread_config.url_kind(tunnel.is_some());
                        let base_url = tunnel.clone().unwrap_or_else(|| thread_config.base_url(addr.port()));
                        let state = prepared.app_state(&thread_config, &base_url, thread_closing.clone(), thread_inbox.clone(), Arc::clone(&metrics));
                        let mut server = HttpServer::new(move || App::new().configure(|config| state.routes(config)))
                            .disable_signals()
                            .client_request_timeout(request_timeout)
                            .shutdown_timeout(shutdown_timeout);
                        if let Some(workers) = workers {
                            server = server.workers(workers);
                        }
                        let server = server.listen(listener).map_err(|err| Error::io(addr, err))?;
                        Ok((server, addr, base_url, url_kind))
                    });
                    let (server, addr, base_url, url_kind) = match started {
                        Ok(started) => started,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return Ok(());
                        }
                    };
                    let server = server.run();
                    let handle = server.handle();
                    // Queued deliveries run on their own thread, from the stored ones on.
                    let runner = match &thread_inbox {
                        Some(inbox) => match Runner::start(inbox, prepared.endpoints.table(), prepared.handler_timeout, Arc::clone(&metrics)) {
                            Ok(runner) => Some(runner),
                            Err(err) => {
                                let _ = ready_tx.send(Err(Error::io("the queue's thread", err)));
                                return Ok(());
                            }
                        },
                        None => None,
                    };
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
                    // Registration on the Hub, once the server answers at its public URL.
                    let (link, report) = match &thread_config.hub {
                        Some(plan) => {
                            let secret = thread_config.secret.as_ref().map(|s| String::from_utf8_lossy(s.expose()).into_owned());
                            match HubLink::start(plan, &base_url, url_kind, secret).await {
                                Ok(started) => started,
                                Err(err) => {
                                    // Required: the launch fails, and its server stops.
                                    let stopped = handle.stop(false);
                                    let _ = server.await;
                                    stopped.await;
                                    if let Some(runner) = runner {
                                        runner.stop(shutdown_grace);
                                    }
                                    let _ = ready_tx.send(Err(Error::Hub { reason: err.to_string() }));
                                    return Ok(());
                                }
                            }
                        }
                        None => (HubLink::default(), Report::default()),
                    };
                    let _ = ready_tx.send(Ok((addr, handle, base_url, link.clone(), report)));
                    let served = server.await;
                    // No more deliveries come in: running attempts get the shutdown
                    // timeout to finish; the rest stays stored for the next start.
                    if let Some(runner) = runner {
                        runner.stop(shutdown_grace);
                    }
                    link.leave().await;
                    served
                })
            })
            .map_err(|err| Error::io(&config.host, err))?;

        let (addr, handle, public_url, hub, hub_report) = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(err)) => {
                let _ = thread.join();
                return Err(err);
            }
            Err(_) => {
                return Err(match thread.join() {
                    Err(panic) => Error::server_thread(panic.as_ref()),
                    Ok(Err(err)) => Error::io(&config.host, err),
                    // Every way out of the thread says why first: this one cannot happen.
                    Ok(Ok(())) => Error::ServerThread {
                        reason: "it ended before it was ready".to_owned(),
                    },
                });
            }
        };
        let instructions = instructions(&self.endpoints, &public_url);
        print_secret_state(config.secret.is_some());
        if let Some(previous) = config
            .secret
            .as_ref()
            .map(|s| s.accepted() - 1)
            .filter(|n| *n > 0)
        {
            say_err(&format!(
                "note: {previous} previous secret(s) are accepted too (HOOKSERVER_PREVIOUS_SECRETS): \
                 once the Hub's webhook has the new secret, remove them."
            ));
        }
        if config
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
        if config.secret.as_ref().is_some_and(|s| {
            let value = s.expose();
            value.first().is_some_and(u8::is_ascii_whitespace)
                || value.last().is_some_and(u8::is_ascii_whitespace)
        }) {
            say_err(
                "warning: the webhook secret begins or ends with whitespace (a newline from a file?): \
                 no X-Webhook-Secret header can carry it, so the Hub's deliveries will be refused; remove it.",
            );
        }
        if self.endpoints.is_empty() {
            say_err(
                "warning: no webhook endpoint is registered. Add one with #[webhook_endpoint] or add_webhook(...); \
                 if you did, see \"Platform notes\" in hookserver's docs (registration needs a platform that `inventory` supports)."
            );
        }
        say(&instructions);
        for line in &hub_report.said {
            say(line);
        }
        if let Some(warning) = &hub_report.warning {
            say_err(warning);
        }
        if let Some(inbox) = &inbox {
            say(&format!(
                "Queued endpoints keep their deliveries in {} (HOOKSERVER_INBOX).",
                inbox.settings.location
            ));
        }
        Ok(ServerHandle {
            addr,
            url: local_url(addr),
            public_url,
            instructions,
            hub,
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
