//! Registration on the Hub: with [`register_on_hub`](crate::WebhooksServer::register_on_hub),
//! a launch makes sure that a webhook on the Hub points at each endpoint's public URL with
//! the server's secret (found by its URL, else created; then updated and enabled), and a
//! tunnel's webhook is disabled again when the server stops. `client` speaks the Hub's
//! REST API; `token` finds the token as `huggingface_hub` does.

// Without the `hub` feature, only the settings and their checks remain.
#![cfg_attr(not(feature = "hub"), allow(dead_code))]

#[cfg(feature = "hub")]
mod client;
mod link;
pub(crate) mod token;

use std::fmt;

pub(crate) use link::{HubLink, Report};
use token::Token;

/// The Hub that `HF_ENDPOINT` names when it is not set, as in `huggingface_hub`.
pub const DEFAULT_HUB_URL: &str = "https://huggingface.co";

/// What a Hub webhook watches: every repo of a user or an organization, or one repo.
///
/// ```
/// use hookserver::Watched;
/// assert_eq!(Watched::dataset("me/data").to_string(), "dataset me/data");
/// assert_eq!(Watched::org("my-org").to_string(), "org my-org");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    kind: &'static str,
    name: String,
}

impl Watched {
    /// Every repo of the user `name`.
    #[must_use]
    pub fn user(name: impl Into<String>) -> Self {
        Watched::new("user", name)
    }

    /// Every repo of the organization `name`.
    #[must_use]
    pub fn org(name: impl Into<String>) -> Self {
        Watched::new("org", name)
    }

    /// The model `id` (`owner/name`).
    #[must_use]
    pub fn model(id: impl Into<String>) -> Self {
        Watched::new("model", id)
    }

    /// The dataset `id` (`owner/name`).
    #[must_use]
    pub fn dataset(id: impl Into<String>) -> Self {
        Watched::new("dataset", id)
    }

    /// The Space `id` (`owner/name`).
    #[must_use]
    pub fn space(id: impl Into<String>) -> Self {
        Watched::new("space", id)
    }

    fn new(kind: &'static str, name: impl Into<String>) -> Self {
        Watched {
            kind,
            name: name.into().trim().to_owned(),
        }
    }

    /// The Hub's name of the kind: `user`, `org`, `model`, `dataset` or `space`.
    #[must_use]
    pub fn kind(&self) -> &str {
        self.kind
    }

    /// The user, organization or repo watched.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for Watched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// The kinds of events a Hub webhook sends (the Hub's "domains").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HubDomain {
    /// Changes to repos: commits, tags, settings (`repo`).
    Repo,
    /// Discussions, pull requests and their comments (`discussion`).
    Discussion,
}

impl HubDomain {
    /// The Hub's name of the domain.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HubDomain::Repo => "repo",
            HubDomain::Discussion => "discussion",
        }
    }
}

/// What happens to a registered webhook when the server stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExit {
    /// Delete it from the Hub.
    Delete,
    /// Disable it (the default for a tunnel's URL, which will not come back): the next
    /// launch on the same URL enables it again.
    Disable,
    /// Leave it as it is (the default for a Space's URL or one given with
    /// [`public_url`](crate::WebhooksServer::public_url), which outlive a restart).
    Keep,
}

/// Registration on the Hub, for [`register_on_hub`](crate::WebhooksServer::register_on_hub):
/// what to watch, which events, what to do at exit.
///
/// ```
/// use hookserver::{HubDomain, HubRegistration, OnExit, Watched};
///
/// let registration = HubRegistration::new()
///     .watch(Watched::dataset("me/my-data"))
///     .watch(Watched::org("my-org"))
///     .domain(HubDomain::Repo)      // default: repo and discussion
///     .on_exit(OnExit::Delete)      // default: disable a tunnel's, keep others
///     .required(true);              // default: a failure is a warning
/// ```
#[derive(Clone, Default)]
pub struct HubRegistration {
    pub(crate) watched: Vec<Watched>,
    pub(crate) domains: Vec<HubDomain>,
    pub(crate) endpoints: Vec<String>,
    pub(crate) on_exit: Option<OnExit>,
    pub(crate) required: bool,
    pub(crate) token: Option<Token>,
    pub(crate) hub_url: Option<String>,
}

impl fmt::Debug for HubRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubRegistration")
            .field("watched", &self.watched)
            .field("domains", &self.domains)
            .field("endpoints", &self.endpoints)
            .field("on_exit", &self.on_exit)
            .field("required", &self.required)
            .field("token", &self.token)
            .field("hub_url", &self.hub_url)
            .finish()
    }
}

impl HubRegistration {
    /// A registration watching nothing yet: add at least one [`watch`](Self::watch).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Watches a user's, an organization's or a repo's events (call it once per item).
    #[must_use]
    pub fn watch(mut self, watched: Watched) -> Self {
        self.watched.push(watched);
        self
    }

    /// Receives the events of `domain` (call it once per domain); without a call, both.
    #[must_use]
    pub fn domain(mut self, domain: HubDomain) -> Self {
        if !self.domains.contains(&domain) {
            self.domains.push(domain);
        }
        self
    }

    /// Registers only the endpoint at `path` (`say_hello` or `/webhooks/say_hello`; call it
    /// once per endpoint); without a call, every endpoint gets a webhook of its own.
    #[must_use]
    pub fn endpoint(mut self, path: impl Into<String>) -> Self {
        self.endpoints.push(path.into());
        self
    }

    /// What happens to the webhooks when the server stops; see [`OnExit`].
    #[must_use]
    pub fn on_exit(mut self, on_exit: OnExit) -> Self {
        self.on_exit = Some(on_exit);
        self
    }

    /// Whether a failed registration stops the launch with [`Error::Hub`](crate::Error::Hub)
    /// (default `false`: it prints a warning and the server runs on).
    #[must_use]
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// The token (overrides `HF_TOKEN` and the token file). It needs write access (or
    /// the fine-grained "webhooks" permission). Never printed.
    #[must_use]
    pub fn token(mut self, token: impl AsRef<str>) -> Self {
        self.token = Token::new(token.as_ref());
        self
    }

    /// The Hub's URL (overrides `HF_ENDPOINT`; default [`DEFAULT_HUB_URL`]).
    #[must_use]
    pub fn hub_url(mut self, url: impl Into<String>) -> Self {
        self.hub_url = Some(url.into());
        self
    }
}

/// A webhook on the Hub that this server registered, from
/// [`ServerHandle::hub_webhooks`](crate::ServerHandle::hub_webhooks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubWebhook {
    id: String,
    url: String,
    created: bool,
}

impl HubWebhook {
    /// The webhook's ID on the Hub.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The URL the Hub calls: the public URL of an endpoint.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this launch created it (else it existed for this URL and was updated).
    #[must_use]
    pub fn created(&self) -> bool {
        self.created
    }
}

/// Where the public URL comes from: it decides whether registering makes sense and
/// what happens at exit by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UrlKind {
    /// `.public_url(...)` or `HOOKSERVER_PUBLIC_URL`.
    Given,
    /// The Space's `https://$SPACE_HOST`.
    Space,
    /// The tunnel's.
    Tunnel,
    /// This machine's own address: the Hub cannot call it.
    Local,
}

/// A registration resolved at launch: the Hub, the token, the endpoints' paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) hub_url: String,
    pub(crate) token: Option<Token>,
    pub(crate) watched: Vec<Watched>,
    pub(crate) domains: Vec<&'static str>,
    /// Full paths, such as `/webhooks/say_hello`.
    pub(crate) paths: Vec<String>,
    pub(crate) on_exit: Option<OnExit>,
    pub(crate) required: bool,
}

/// Why the registration failed; the message of [`Error::Hub`](crate::Error::Hub).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HubError {
    #[error("no Hugging Face token: set HF_TOKEN to a token with write access (https://huggingface.co/settings/tokens), log in with `hf auth login`, or pass HubRegistration::token(...)")]
    NoToken,
    #[error("{url} is this machine's own address, which the Hub cannot call: open a tunnel (.share(true) or HOOKSERVER_SHARE=1), run on a Space, or give the public URL (.public_url(...) or HOOKSERVER_PUBLIC_URL)")]
    NotPublic { url: String },
    #[error("hookserver was built without its `hub` feature, which registration needs")]
    #[cfg_attr(feature = "hub", allow(dead_code))]
    NotBuilt,
    #[error("cannot reach the Hub at {hub} ({detail}); check HF_ENDPOINT and the network")]
    Unreachable { hub: String, detail: String },
    #[error("{}", status_message(.hub, .op, *.status, .message.as_deref()))]
    Status {
        hub: String,
        op: String,
        status: u16,
        message: Option<String>,
    },
    #[error("the Hub's answer to {op} is not a webhook as huggingface_hub reads it: {detail}")]
    BadAnswer { op: String, detail: String },
}

/// What a status from the Hub means for the user, with the Hub's own words.
fn status_message(hub: &str, op: &str, status: u16, message: Option<&str>) -> String {
    let said = message.map_or(String::new(), |m| format!(": {m}"));
    match status {
        401 => format!("the Hub at {hub} refused the token when asked to {op} (401 Unauthorized{said}); set HF_TOKEN to a valid token"),
        403 => format!("the token may not {op} (403 Forbidden{said}); use a token with write access or the fine-grained \"webhooks\" permission"),
        404 => format!("the Hub at {hub} found nothing to {op} (404 Not Found{said}); check that HF_ENDPOINT names a Hub"),
        409 => format!("the Hub refused to {op}: a conflict (409 Conflict{said})"),
        500..=599 => format!("the Hub at {hub} failed to {op} ({status}{said}); it may be down for a moment"),
        _ => format!("the Hub at {hub} answered {status} when asked to {op}{said}"),
    }
}

impl Plan {
    /// The exit action for a URL of `kind`: the chosen one, else disable a tunnel's.
    fn on_exit(&self, kind: UrlKind) -> OnExit {
        self.on_exit.unwrap_or(match kind {
            UrlKind::Tunnel => OnExit::Disable,
            _ => OnExit::Keep,
        })
    }

    /// `watching dataset me/data, user me (repo, discussion)`.
    fn summary(&self) -> String {
        let watched: Vec<String> = self.watched.iter().map(ToString::to_string).collect();
        format!(
            "watching {} ({})",
            watched.join(", "),
            self.domains.join(", ")
        )
    }
}

/// The webhooks a launch registered, and how to leave them at exit.
#[derive(Debug)]
pub(crate) struct Registered {
    pub(crate) webhooks: Vec<HubWebhook>,
    /// What was said: one `Registered on the Hub: ...` line per webhook.
    pub(crate) lines: Vec<String>,
    on_exit: OnExit,
    #[cfg(feature = "hub")]
    client: client::Client,
}

impl Plan {
    /// Makes sure a webhook on the Hub points at each endpoint under `base_url`, with
    /// `secret`: found by its URL (else created), updated, enabled. Blocking.
    pub(crate) fn register(
        &self,
        base_url: &str,
        kind: UrlKind,
        secret: Option<&str>,
    ) -> Result<Registered, HubError> {
        if kind == UrlKind::Local {
            return Err(HubError::NotPublic {
                url: base_url.to_owned(),
            });
        }
        let token = self.token.clone().ok_or(HubError::NoToken)?;
        self.register_with(token, base_url, kind, secret)
    }
}

#[cfg(feature = "hub")]
impl Plan {
    fn register_with(
        &self,
        token: Token,
        base_url: &str,
        kind: UrlKind,
        secret: Option<&str>,
    ) -> Result<Registered, HubError> {
        let client = client::Client::new(&self.hub_url, token);
        let watched: Vec<client::WatchedItem> = self
            .watched
            .iter()
            .map(|w| client::WatchedItem {
                kind: w.kind.to_owned(),
                name: w.name.clone(),
            })
            .collect();
        let mut existing = client.list()?;
        let mut registered = Registered {
            webhooks: Vec::new(),
            lines: Vec::new(),
            on_exit: self.on_exit(kind),
            client,
        };
        for path in &self.paths {
            let url = format!("{base_url}{path}");
            let spec = client::WebhookSpec {
                watched: &watched,
                url: &url,
                domains: &self.domains,
                secret,
            };
            let client = &registered.client;
            let found = existing.iter().find(|w| w.url.as_deref() == Some(&url));
            let (mut webhook, created) = match found {
                Some(found) => (client.update(&found.id, &spec)?, false),
                None => match client.create(&spec) {
                    Ok(webhook) => (webhook, true),
                    // Another replica created it meanwhile: update that one.
                    Err(HubError::Status { status: 409, .. }) => {
                        existing = client.list()?;
                        let found = existing
                            .iter()
                            .find(|w| w.url.as_deref() == Some(&url))
                            .ok_or_else(|| HubError::Status {
                                hub: self.hub_url.clone(),
                                op: "create a webhook".to_owned(),
                                status: 409,
                                message: Some(format!("and no webhook for {url} is listed")),
                            })?;
                        (client.update(&found.id, &spec)?, false)
                    }
                    Err(err) => return Err(err),
                },
            };
            if webhook.disabled {
                webhook = client.enable(&webhook.id)?;
            }
            registered.lines.push(format!(
                "Registered on the Hub: webhook {} {} -> {url}",
                webhook.id,
                self.summary()
            ));
            registered.webhooks.push(HubWebhook {
                id: webhook.id,
                url,
                created,
            });
        }
        Ok(registered)
    }
}

#[cfg(not(feature = "hub"))]
impl Plan {
    /// Without the `hub` feature, registration cannot happen.
    fn register_with(
        &self,
        _token: Token,
        _base_url: &str,
        _kind: UrlKind,
        _secret: Option<&str>,
    ) -> Result<Registered, HubError> {
        Err(HubError::NotBuilt)
    }
}

impl Registered {
    /// Leaves the webhooks as [`OnExit`] says; returns what to say. Blocking.
    pub(crate) fn exit(&self) -> Vec<String> {
        let mut said = Vec::new();
        for webhook in &self.webhooks {
            let (done, result) = match self.on_exit {
                OnExit::Keep => continue,
                OnExit::Disable => ("disabled", self.disable(&webhook.id)),
                OnExit::Delete => ("deleted", self.delete(&webhook.id)),
            };
            said.push(match result {
                Ok(()) => format!(
                    "Hub webhook {} {done} (it called {}).",
                    webhook.id, webhook.url
                ),
                Err(err) => format!("warning: Hub webhook {} was not {done}: {err}", webhook.id),
            });
        }
        said
    }

    #[cfg(feature = "hub")]
    fn disable(&self, id: &str) -> Result<(), HubError> {
        self.client.disable(id)
    }

    #[cfg(feature = "hub")]
    fn delete(&self, id: &str) -> Result<(), HubError> {
        self.client.delete(id)
    }

    #[cfg(not(feature = "hub"))]
    fn disable(&self, _id: &str) -> Result<(), HubError> {
        Err(HubError::NotBuilt)
    }

    #[cfg(not(feature = "hub"))]
    fn delete(&self, _id: &str) -> Result<(), HubError> {
        Err(HubError::NotBuilt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_what_to_do() {
        let err = |status, message: Option<&str>| {
            HubError::Status {
                hub: "https://hub.example".to_owned(),
                op: "create a webhook".to_owned(),
                status,
                message: message.map(str::to_owned),
            }
            .to_string()
        };
        assert_eq!(
            err(401, Some("Invalid credentials")),
            "the Hub at https://hub.example refused the token when asked to create a webhook (401 Unauthorized: Invalid credentials); set HF_TOKEN to a valid token"
        );
        assert!(err(403, None).contains("write access"));
        assert!(err(404, None).contains("HF_ENDPOINT"));
        assert!(err(409, None).contains("409 Conflict"));
        assert!(err(503, None).contains("(503)"));
        assert!(err(418, None).contains("answered 418"));
    }

    #[test]
    fn a_tunnel_is_disabled_at_exit_and_others_kept_unless_chosen() {
        let mut plan = Plan {
            hub_url: DEFAULT_HUB_URL.to_owned(),
            token: None,
            watched: vec![Watched::dataset("me/data"), Watched::user("me")],
            domains: vec!["repo", "discussion"],
            paths: vec!["/webhooks/a".to_owned()],
            on_exit: None,
            required: false,
        };
        assert_eq!(plan.on_exit(UrlKind::Tunnel), OnExit::Disable);
        assert_eq!(plan.on_exit(UrlKind::Space), OnExit::Keep);
        assert_eq!(plan.on_exit(UrlKind::Given), OnExit::Keep);
        plan.on_exit = Some(OnExit::Delete);
        assert_eq!(plan.on_exit(UrlKind::Space), OnExit::Delete);
        assert_eq!(
            plan.summary(),
            "watching dataset me/data, user me (repo, discussion)"
        );
        assert_eq!(
            plan.register("http://127.0.0.1:7860", UrlKind::Local, None)
                .unwrap_err(),
            HubError::NotPublic {
                url: "http://127.0.0.1:7860".to_owned()
            }
        );
        assert_eq!(
            plan.register("https://bot.example", UrlKind::Given, None)
                .unwrap_err(),
            HubError::NoToken
        );
    }
}
