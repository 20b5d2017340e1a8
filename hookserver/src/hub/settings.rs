//! What a registration says: what to watch ([`Watched`]), which events ([`HubDomain`]),
//! what to do at exit ([`OnExit`]), all in [`HubRegistration`]; and what it registered
//! ([`HubWebhook`]).

use std::fmt;

use super::token::Token;
use crate::error::{Error, Result};
use crate::share::parse_switch;

/// The Hub that `HF_ENDPOINT` names when it is not set, as in `huggingface_hub`.
///
/// ```
/// assert_eq!(hookserver::DEFAULT_HUB_URL, "https://huggingface.co");
/// ```
pub const DEFAULT_HUB_URL: &str = "https://huggingface.co";

/// What a Hub webhook watches: every repo of a user or an organization, or one repo.
///
/// ```
/// use hookserver::Watched;
/// assert_eq!(Watched::dataset("me/data").to_string(), "dataset me/data");
/// assert_eq!(Watched::org("my-org").to_string(), "org my-org");
/// let space = Watched::space("me/my-space");
/// assert_eq!((space.kind(), space.name()), ("space", "me/my-space"));
/// assert_eq!(Watched::user("me").kind(), "user");
/// assert_eq!(Watched::model("me/model").kind(), "model");
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
///
/// ```
/// use hookserver::HubDomain;
/// assert_eq!(HubDomain::Repo.as_str(), "repo");
/// assert_eq!(HubDomain::Discussion.as_str(), "discussion");
/// ```
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
///
/// ```
/// use hookserver::{HubRegistration, OnExit, Watched};
/// // A bot run from a laptop that leaves no webhook behind:
/// let registration = HubRegistration::new()
///     .watch(Watched::user("me"))
///     .on_exit(OnExit::Delete);
/// ```
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
    ///
    /// ```
    /// use hookserver::{HubRegistration, Watched};
    /// let only_one = HubRegistration::new()
    ///     .watch(Watched::dataset("me/data"))
    ///     .endpoint("say_hello");
    /// ```
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
    ///
    /// ```
    /// use hookserver::{HubRegistration, Watched};
    /// let registration = HubRegistration::new()
    ///     .watch(Watched::user("me"))
    ///     .token("hf_abcdef")
    ///     .hub_url("https://hub.example.com"); // another Hub than huggingface.co
    /// assert!(!format!("{registration:?}").contains("hf_abcdef"));
    /// ```
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

impl HubRegistration {
    /// Fills what the builder left unset from the environment: `HOOKSERVER_HUB_WATCH`
    /// (`KIND:NAME,...`), `HOOKSERVER_HUB_DOMAINS` (`repo,discussion`),
    /// `HOOKSERVER_HUB_ON_EXIT` (`delete`, `disable`, `keep`), `HOOKSERVER_HUB_REQUIRED`.
    pub(crate) fn with_environment(
        mut self,
        set: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        if self.watched.is_empty() {
            if let Some(value) = set("HOOKSERVER_HUB_WATCH") {
                self.watched = parse_watch(&value)?;
            }
        }
        if self.domains.is_empty() {
            if let Some(value) = set("HOOKSERVER_HUB_DOMAINS") {
                for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let domain = match part {
                        "repo" => HubDomain::Repo,
                        "discussion" => HubDomain::Discussion,
                        _ => {
                            return Err(Error::Config(format!(
                                "HOOKSERVER_HUB_DOMAINS must be repo, discussion or both, separated by a comma, not {value:?}"
                            )))
                        }
                    };
                    self = self.domain(domain);
                }
            }
        }
        if self.on_exit.is_none() {
            if let Some(value) = set("HOOKSERVER_HUB_ON_EXIT") {
                self.on_exit = Some(match value.trim().to_ascii_lowercase().as_str() {
                    "delete" => OnExit::Delete,
                    "disable" => OnExit::Disable,
                    "keep" => OnExit::Keep,
                    _ => {
                        return Err(Error::Config(format!(
                            "HOOKSERVER_HUB_ON_EXIT must be delete, disable or keep, not {value:?}"
                        )))
                    }
                });
            }
        }
        if !self.required {
            if let Some(value) = set("HOOKSERVER_HUB_REQUIRED") {
                self.required = parse_switch("HOOKSERVER_HUB_REQUIRED", &value)?;
            }
        }
        Ok(self)
    }
}

/// Reads `HOOKSERVER_HUB_WATCH`: `KIND:NAME` items separated by commas.
fn parse_watch(value: &str) -> Result<Vec<Watched>> {
    let bad = || {
        Error::Config(format!(
            "HOOKSERVER_HUB_WATCH must be KIND:NAME items separated by commas (KIND: user, org, model, dataset or space), such as dataset:me/data,org:my-org; not {value:?}"
        ))
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (kind, name) = part.split_once(':').ok_or_else(bad)?;
            let kind = match kind.trim() {
                "user" => "user",
                "org" => "org",
                "model" => "model",
                "dataset" => "dataset",
                "space" => "space",
                _ => return Err(bad()),
            };
            Ok(Watched::new(kind, name))
        })
        .collect()
}

/// A webhook on the Hub that this server registered, from
/// [`ServerHandle::hub_webhooks`](crate::ServerHandle::hub_webhooks).
///
/// ```no_run
/// use hookserver::{HubRegistration, Watched, WebhooksServer};
///
/// let app = WebhooksServer::new()
///     .share(true)
///     .register_on_hub(HubRegistration::new().watch(Watched::dataset("me/data")));
/// let handle = app.launch_background()?;
/// for webhook in handle.hub_webhooks() {
///     let how = if webhook.created() { "created" } else { "updated" };
///     println!("{} {how}: the Hub calls {}", webhook.id(), webhook.url());
/// }
/// # Ok::<(), hookserver::Error>(())
/// ```
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn filled(registration: HubRegistration, vars: &[(&str, &str)]) -> Result<HubRegistration> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        registration.with_environment(&|name: &str| vars.get(name).cloned())
    }

    #[test]
    fn the_environment_fills_what_the_builder_left_unset() {
        let env = [
            ("HOOKSERVER_HUB_WATCH", "dataset:me/data, org:my-org,"),
            ("HOOKSERVER_HUB_DOMAINS", "discussion"),
            ("HOOKSERVER_HUB_ON_EXIT", "Delete"),
            ("HOOKSERVER_HUB_REQUIRED", "1"),
        ];
        let r = filled(HubRegistration::new(), &env).unwrap();
        assert_eq!(
            r.watched,
            [Watched::dataset("me/data"), Watched::org("my-org")]
        );
        assert_eq!(r.domains, [HubDomain::Discussion]);
        assert_eq!(r.on_exit, Some(OnExit::Delete));
        assert!(r.required);
        // What the builder set wins.
        let r = filled(
            HubRegistration::new()
                .watch(Watched::user("me"))
                .domain(HubDomain::Repo)
                .on_exit(OnExit::Keep),
            &env,
        )
        .unwrap();
        assert_eq!(r.watched, [Watched::user("me")]);
        assert_eq!(r.domains, [HubDomain::Repo]);
        assert_eq!(r.on_exit, Some(OnExit::Keep));
        for (name, value, says) in [
            ("HOOKSERVER_HUB_WATCH", "me/data", "KIND:NAME"),
            ("HOOKSERVER_HUB_WATCH", "repo:me/data", "KIND:NAME"),
            (
                "HOOKSERVER_HUB_DOMAINS",
                "repos",
                "repo, discussion or both",
            ),
            (
                "HOOKSERVER_HUB_ON_EXIT",
                "remove",
                "delete, disable or keep",
            ),
            ("HOOKSERVER_HUB_REQUIRED", "maybe", "must be 1 or 0"),
        ] {
            let err = filled(HubRegistration::new(), &[(name, value)]).unwrap_err();
            assert!(err.to_string().contains(says), "{name}={value}: {err}");
        }
    }
}
