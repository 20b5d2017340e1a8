//! What a registration says: what to watch ([`Watched`]), which events ([`HubDomain`]),
//! what to do at exit ([`OnExit`]), all in [`HubRegistration`]; and what it registered
//! ([`HubWebhook`]).

use std::fmt;

use super::token::Token;

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
    pub(super) kind: &'static str,
    pub(super) name: String,
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
    pub(super) id: String,
    pub(super) url: String,
    pub(super) created: bool,
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
