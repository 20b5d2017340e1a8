//! Registration on the Hub: with [`register_on_hub`](crate::WebhooksServer::register_on_hub),
//! a launch makes sure that a webhook on the Hub points at each endpoint's public URL with
//! the server's secret (found by its URL, else created; then updated and enabled), and a
//! tunnel's webhook is disabled again when the server stops. `client` speaks the Hub's
//! REST API; `token` finds the token as `huggingface_hub` does; `settings` holds what a
//! registration says; `link` ties a running server to the Hub.

// Without the `hub` feature, only the settings and their checks remain.
#![cfg_attr(not(feature = "hub"), allow(dead_code))]

#[cfg(feature = "hub")]
mod client;
mod link;
mod settings;
pub(crate) mod token;

pub(crate) use link::{HubLink, Report};
pub use settings::{HubDomain, HubRegistration, HubWebhook, OnExit, Watched, DEFAULT_HUB_URL};
use token::Token;

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

/// Whether the Hub's `listed` URL is `ours`: the scheme and host in any case, a final `/`
/// or not (the Hub may write a URL back normalized).
fn same_url(listed: &str, ours: &str) -> bool {
    fn split(url: &str) -> (String, &str) {
        let url = url.trim().trim_end_matches('/');
        let start = url.find("://").map_or(0, |i| i + 3);
        let end = url[start..].find('/').map_or(url.len(), |i| start + i);
        (url[..end].to_ascii_lowercase(), &url[end..])
    }
    split(listed) == split(ours)
}

/// The listed webhook whose URL is `url`, if any.
#[cfg(feature = "hub")]
fn listed_for<'a>(listed: &'a [client::WebhookInfo], url: &str) -> Option<&'a client::WebhookInfo> {
    listed
        .iter()
        .find(|w| w.url.as_deref().is_some_and(|u| same_url(u, url)))
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
            let found = listed_for(&existing, &url);
            let (mut webhook, created) = match found {
                Some(found) => (client.update(&found.id, &spec)?, false),
                None => match client.create(&spec) {
                    Ok(webhook) => (webhook, true),
                    // Another replica created it meanwhile: update that one.
                    Err(HubError::Status { status: 409, .. }) => {
                        existing = client.list()?;
                        let found =
                            listed_for(&existing, &url).ok_or_else(|| HubError::Status {
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
    fn a_listed_url_is_ours_whatever_the_case_of_its_host_or_a_final_slash() {
        let ours = "https://Me-Bot.hf.space/webhooks/a";
        assert!(same_url("https://me-bot.hf.space/webhooks/a", ours));
        assert!(same_url("HTTPS://ME-BOT.HF.SPACE/webhooks/a/", ours));
        assert!(
            !same_url("https://me-bot.hf.space/webhooks/A", ours),
            "paths are exact"
        );
        assert!(!same_url("https://me-bot.hf.space/webhooks/ab", ours));
        assert!(!same_url("http://me-bot.hf.space/webhooks/a", ours));
        assert!(!same_url("https://other.hf.space/webhooks/a", ours));
    }

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
