//! The configuration of a launch: the builder's settings, else the environment's, else
//! the defaults. Every environment variable hookserver reads is read here, once per
//! launch.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::handle::local_url;
use super::{QueueOptions, WebhooksServer, DEFAULT_PORT};
use crate::access::secret::Secret;
use crate::access::session::DEFAULT_SESSION_TTL;
use crate::access::throttle::Proxies;
use crate::dashboard::DEFAULT_EVENT_STREAMS;
use crate::deliveries::DEFAULT_DELIVERY_LOG;
use crate::endpoint::{normalize_path, WEBHOOKS_PREFIX};
use crate::error::{Error, Result};
use crate::hub::{token, HubDomain, HubRegistration, Plan, UrlKind, DEFAULT_HUB_URL};
use crate::inbox::{
    Location, Settings as InboxSettings, DEFAULT_DEDUPE_WINDOW, DEFAULT_INBOX_FILE,
    DEFAULT_QUEUE_ATTEMPTS, DEFAULT_QUEUE_BACKOFF, DEFAULT_QUEUE_LIMIT, DEFAULT_QUEUE_WORKERS,
};
use crate::share::{parse_server, parse_switch, Share, DEFAULT_SHARE_SERVER};

/// Reads a public URL (`.public_url`, `HOOKSERVER_PUBLIC_URL`, `HF_ENDPOINT`):
/// `http(s)://host[/path]`, without a query or a fragment; a trailing `/` is dropped.
fn parse_base_url(name: &str, value: &str) -> Result<String> {
    let value = value.trim().trim_end_matches('/');
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !rest.contains(|c: char| c.is_whitespace() || c.is_control() || c == '?' || c == '#') =>
        {
            Ok(value.to_owned())
        }
        _ => Err(Error::Config(format!(
            "{name} must be an http:// or https:// URL without a query, such as https://bot.example.com, not {value:?}"
        ))),
    }
}

/// The registration on the Hub, resolved: the Hub, the token, the endpoints' paths.
fn hub_plan(
    server: &WebhooksServer,
    set: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Plan>> {
    // The builder's registration, else the environment's (a `main!()` bot has no builder).
    let registration = match (&server.hub, set("HOOKSERVER_HUB_WATCH")) {
        (Some(registration), _) => registration.clone(),
        (None, Some(_)) => HubRegistration::new(),
        (None, None) => return Ok(None),
    };
    let registration = &registration.with_environment(set)?;
    if registration.watched.is_empty() {
        return Err(Error::Config(
            "register_on_hub needs something to watch: HubRegistration::new().watch(Watched::dataset(\"me/data\")), or HOOKSERVER_HUB_WATCH=dataset:me/data".to_owned(),
        ));
    }
    if let Some(bad) = registration
        .watched
        .iter()
        .find(|w| w.name().is_empty() || w.name().contains(char::is_whitespace))
    {
        return Err(Error::Config(format!(
            "register_on_hub cannot watch the {} {:?}: a name without spaces is needed",
            bad.kind(),
            bad.name()
        )));
    }
    let hub_url = match registration.hub_url.clone() {
        Some(url) => parse_base_url("HubRegistration::hub_url", &url)?,
        None => match set("HF_ENDPOINT") {
            Some(url) => parse_base_url("HF_ENDPOINT", &url)?,
            None => DEFAULT_HUB_URL.to_owned(),
        },
    };
    let known: Vec<&str> = server.endpoints.iter().map(|e| &*e.path).collect();
    let paths = if registration.endpoints.is_empty() {
        known.iter().map(|p| (*p).to_owned()).collect()
    } else {
        registration
            .endpoints
            .iter()
            .map(|given| {
                let path = normalize_path(given)?;
                [format!("/{path}"), format!("{WEBHOOKS_PREFIX}{path}")]
                    .into_iter()
                    .find(|full| known.contains(&full.as_str()))
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "register_on_hub names the endpoint {given:?}, which is not one of this server's: {}",
                            known.join(", ")
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?
    };
    let domains = if registration.domains.is_empty() {
        vec![HubDomain::Repo, HubDomain::Discussion]
    } else {
        registration.domains.clone()
    };
    Ok(Some(Plan {
        hub_url,
        token: registration.token.clone().or_else(|| token::find(set)),
        watched: registration.watched.clone(),
        domains: domains.into_iter().map(HubDomain::as_str).collect(),
        paths,
        on_exit: registration.on_exit,
        required: registration.required,
    }))
}

/// The most queued attempts that may run at once: tokio's semaphore holds no more.
const MOST_QUEUE_WORKERS: usize = if tokio::sync::Semaphore::MAX_PERMITS < u32::MAX as usize {
    tokio::sync::Semaphore::MAX_PERMITS
} else {
    u32::MAX as usize
};

/// The inbox's settings: the builder's, else the environment's, else the defaults.
fn inbox_settings(
    queue: &QueueOptions,
    handler_timeout: Option<Duration>,
    on_space: bool,
    set: &impl Fn(&str) -> Option<String>,
) -> Result<InboxSettings> {
    let location = match queue.inbox.clone().or_else(|| set("HOOKSERVER_INBOX")) {
        Some(value) => {
            let location = Location::parse(&value);
            if matches!(&location, Location::File(_)) && value.contains("://") {
                return Err(Error::Config(format!(
                    "HOOKSERVER_INBOX must be a file path or a postgres:// URL, not {}",
                    value.split("://").next().unwrap_or("")
                )));
            }
            location
        }
        // A Space's persistent storage, when mounted, outlives restarts and rebuilds.
        None if on_space && Path::new("/data").is_dir() => {
            Location::File(Path::new("/data").join(DEFAULT_INBOX_FILE))
        }
        None => Location::File(PathBuf::from(DEFAULT_INBOX_FILE)),
    };
    let number = |name: &str, what: &str| -> Result<Option<u64>> {
        set(name)
            .map(|value| {
                value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "{name} must be {what} (a whole number from 1), not {value:?}"
                        ))
                    })
            })
            .transpose()
    };
    let duration = |name: &str| -> Result<Option<Duration>> {
        set(name)
            .map(|value| {
                humantime::parse_duration(value.trim())
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "{name} must be a duration such as 200ms, 1s or 7days, not {value:?}"
                        ))
                    })
            })
            .transpose()
    };
    let attempts = match queue.attempts {
        Some(n) => n,
        None => number(
            "HOOKSERVER_QUEUE_ATTEMPTS",
            "how many attempts a queued delivery gets",
        )?
        .map_or(DEFAULT_QUEUE_ATTEMPTS, |n| {
            u32::try_from(n).unwrap_or(u32::MAX)
        }),
    };
    let workers = match queue.workers {
        Some(n) => n,
        None => number(
            "HOOKSERVER_QUEUE_WORKERS",
            "how many queued attempts may run at once",
        )?
        .map_or(DEFAULT_QUEUE_WORKERS, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        }),
    };
    let limit = match queue.limit {
        Some(n) => n,
        None => number(
            "HOOKSERVER_QUEUE_LIMIT",
            "how many deliveries may wait in the inbox",
        )?
        .map_or(DEFAULT_QUEUE_LIMIT, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        }),
    };
    Ok(InboxSettings {
        location,
        attempts: attempts.max(1),
        backoff: match queue.backoff {
            Some(d) => d,
            None => duration("HOOKSERVER_QUEUE_BACKOFF")?.unwrap_or(DEFAULT_QUEUE_BACKOFF),
        },
        // The runner's semaphore holds at most `MAX_PERMITS` (and its stop waits for them
        // all in one `u32` request): past that, a number means "as many as come".
        workers: workers.clamp(1, MOST_QUEUE_WORKERS),
        limit: limit.max(1),
        // At least a millisecond, as the environment's (the stores count in milliseconds).
        dedupe_window: match queue.dedupe_window {
            Some(d) => d.max(Duration::from_millis(1)),
            None => duration("HOOKSERVER_DEDUPE_WINDOW")?.unwrap_or(DEFAULT_DEDUPE_WINDOW),
        },
        lease: handler_timeout.map_or(Duration::from_secs(600), |timeout| {
            timeout.saturating_mul(2).max(Duration::from_secs(1))
        }),
    })
}

/// The address and URLs, from the builder, the environment and the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// The secret: the builder's, else `WEBHOOK_SECRET` (empty means none).
    pub(crate) secret: Option<Secret>,
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
    /// The inbox of queued endpoints, and how its deliveries run.
    pub(crate) inbox: InboxSettings,
    /// The public URL given (`.public_url`, `HOOKSERVER_PUBLIC_URL`), without a final `/`.
    pub(crate) public_url: Option<String>,
    /// The registration on the Hub, if asked for.
    pub(crate) hub: Option<Plan>,
}

impl Config {
    /// The configuration from the builder and this process's environment. A variable set
    /// to bytes that are not UTF-8 is an error naming it, never "unset": a garbled
    /// `WEBHOOK_SECRET` must not run the endpoints without a secret.
    pub(crate) fn from_env(server: &WebhooksServer) -> Result<Self> {
        let garbled = std::cell::RefCell::new(None);
        let resolved = Config::resolve(server, |name| match std::env::var(name) {
            Ok(value) => Some(value),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                garbled.borrow_mut().get_or_insert_with(|| name.to_owned());
                None
            }
        });
        match garbled.into_inner() {
            Some(name) => Err(Error::Config(format!(
                "{name} is set, but not to UTF-8 text: set it to the value you mean, or unset it"
            ))),
            None => resolved,
        }
    }

    pub(crate) fn resolve(
        server: &WebhooksServer,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let secret = match &server.secret {
            Some(secret) => secret.clone(),
            None => env("WEBHOOK_SECRET").as_deref().and_then(Secret::new),
        };
        // A rotation: the previous secrets stay accepted beside the new one for a while.
        let previous: Vec<String> =
            match (&server.previous_secrets, set("HOOKSERVER_PREVIOUS_SECRETS")) {
                (Some(list), _) => list.clone(),
                (None, Some(value)) => value.split(',').map(|v| v.trim().to_owned()).collect(),
                (None, None) => Vec::new(),
            };
        let secret = match secret {
            Some(secret) => Some(secret.with_previous(previous.iter().map(String::as_str))),
            None if previous.iter().any(|p| !p.is_empty()) => {
                return Err(Error::Config(
                    "HOOKSERVER_PREVIOUS_SECRETS (or .previous_secrets) is set without a secret: set WEBHOOK_SECRET to the new one".to_owned(),
                ))
            }
            None => None,
        };
        let on_space = set("SPACE_ID").is_some() || env("SYSTEM").as_deref() == Some("spaces");
        let host = server
            .host
            .clone()
            .or_else(|| set("HOOKSERVER_HOST"))
            .unwrap_or_else(|| if on_space { "0.0.0.0" } else { "127.0.0.1" }.to_owned());
        // ` ::1 ` and `[::1]` (as in a URL) name `::1`.
        let host = host.trim();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        let port = match (server.port, set("HOOKSERVER_PORT")) {
            (Some(port), _) => Some(port),
            (None, Some(value)) => Some(value.trim().parse::<u16>().map_err(|_| {
                Error::Config(format!(
                    "HOOKSERVER_PORT must be a port number from 0 to 65535, not {value:?}"
                ))
            })?),
            // A Space's proxy sends to 7860 (its `app_port`) only: no fallback to another.
            (None, None) if on_space => Some(DEFAULT_PORT),
            (None, None) => None,
        };
        let space_url =
            set("SPACE_HOST").map(|h| format!("https://{}", h.trim().trim_end_matches('/')));
        let wants_share = match (server.share, env("HOOKSERVER_SHARE")) {
            (Some(share), _) => share,
            (None, Some(value)) => parse_switch("HOOKSERVER_SHARE", &value)?,
            (None, None) => false,
        };
        let public_url = match (&server.public_url, set("HOOKSERVER_PUBLIC_URL")) {
            (Some(url), _) => Some(parse_base_url("public_url", url)?),
            (None, Some(url)) => Some(parse_base_url("HOOKSERVER_PUBLIC_URL", &url)?),
            (None, None) => None,
        };
        if wants_share && !on_space && public_url.is_some() {
            return Err(Error::Config(
                "a public URL (.public_url or HOOKSERVER_PUBLIC_URL) and a tunnel (.share or HOOKSERVER_SHARE) are both set: the tunnel has a URL of its own; choose one".to_owned(),
            ));
        }
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
        // Zero would end every login at once.
        let session_ttl = match (server.session_ttl, set("HOOKSERVER_SESSION_TTL")) {
            (Some(ttl), _) if ttl.is_zero() => {
                return Err(Error::Config(
                    ".session_ttl must be more than zero: a login would end at once".to_owned(),
                ))
            }
            (Some(ttl), _) => ttl,
            (None, Some(value)) => humantime::parse_duration(value.trim())
                .ok()
                .filter(|ttl| !ttl.is_zero())
                .ok_or_else(|| {
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
            secret,
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
            inbox: inbox_settings(&server.queue, server.handler_timeout, on_space, &set)?,
            public_url,
            hub: hub_plan(server, &set)?,
        })
    }

    /// Where the public URL comes from, with a tunnel open or not (the precedence of
    /// [`base_url`](Self::base_url) and the tunnel's).
    pub(crate) fn url_kind(&self, tunnel: bool) -> UrlKind {
        if self.public_url.is_some() {
            UrlKind::Given
        } else if tunnel {
            UrlKind::Tunnel
        } else if self.space_url.is_some() {
            UrlKind::Space
        } else {
            UrlKind::Local
        }
    }

    /// The base of the URLs the Hub must call.
    pub(crate) fn base_url(&self, port: u16) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        match &self.space_url {
            Some(url) => url.clone(),
            None => match self.host.parse::<IpAddr>() {
                Ok(ip) => local_url(SocketAddr::new(ip, port)),
                Err(_) => format!("http://{}:{port}", self.host),
            },
        }
    }
}

#[cfg(test)]
mod tests;
