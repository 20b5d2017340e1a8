//! The Hub's webhook settings API, called as `huggingface_hub`'s `list_webhooks`,
//! `create_webhook`, `update_webhook`, `enable_webhook`, `disable_webhook` and
//! `delete_webhook` call it: `/api/settings/webhooks[/{id}[/enable|/disable]]` with a
//! bearer token, JSON in and out, answers `{"webhook": {...}}` (a list for the listing).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::token::Token;
use super::HubError;

/// How long one call to the Hub may take, connecting included.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to the Hub may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One watched item, as the Hub writes it: `{"type": "dataset", "name": "me/data"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WatchedItem {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) name: String,
}

/// A webhook as the Hub describes it (the fields `huggingface_hub`'s `WebhookInfo` reads).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WebhookInfo {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) disabled: bool,
}

/// The body of a create or an update.
#[derive(Debug, Serialize)]
pub(crate) struct WebhookSpec<'a> {
    pub(crate) watched: &'a [WatchedItem],
    pub(crate) url: &'a str,
    pub(crate) domains: &'a [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
struct Wrapped {
    webhook: WebhookInfo,
}

/// A client of one Hub with one token.
#[derive(Debug)]
pub(crate) struct Client {
    hub: String,
    token: Token,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the Hub at `hub` (such as `https://huggingface.co`, no trailing `/`).
    pub(crate) fn new(hub: &str, token: Token) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(CALL_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("hookserver/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client {
            hub: hub.to_owned(),
            token,
            agent,
        }
    }

    /// `GET /api/settings/webhooks`: every webhook of the token's owner.
    pub(crate) fn list(&self) -> Result<Vec<WebhookInfo>, HubError> {
        let op = "list the webhooks";
        let body = self.call(op, "GET", "", None)?;
        let listed: Vec<WebhookInfo> = parse(op, &body)?;
        listed.into_iter().map(|w| checked(op, w)).collect()
    }

    /// `POST /api/settings/webhooks`.
    pub(crate) fn create(&self, spec: &WebhookSpec<'_>) -> Result<WebhookInfo, HubError> {
        let op = "create a webhook";
        let body = self.call(op, "POST", "", Some(json(spec)))?;
        checked(op, parse::<Wrapped>(op, &body)?.webhook)
    }

    /// `POST /api/settings/webhooks/{id}`: the whole spec, as `update_webhook` sends it.
    pub(crate) fn update(&self, id: &str, spec: &WebhookSpec<'_>) -> Result<WebhookInfo, HubError> {
        let op = format!("update webhook {id}");
        let body = self.call(&op, "POST", &format!("/{id}"), Some(json(spec)))?;
        checked(&op, parse::<Wrapped>(&op, &body)?.webhook)
    }

    /// `POST /api/settings/webhooks/{id}/enable`.
    pub(crate) fn enable(&self, id: &str) -> Result<WebhookInfo, HubError> {
        let op = format!("enable webhook {id}");
        let body = self.call(&op, "POST", &format!("/{id}/enable"), None)?;
        checked(&op, parse::<Wrapped>(&op, &body)?.webhook)
    }

    /// `POST /api/settings/webhooks/{id}/disable`.
    pub(crate) fn disable(&self, id: &str) -> Result<(), HubError> {
        let op = format!("disable webhook {id}");
        self.call(&op, "POST", &format!("/{id}/disable"), None)
            .map(drop)
    }

    /// `DELETE /api/settings/webhooks/{id}`.
    pub(crate) fn delete(&self, id: &str) -> Result<(), HubError> {
        let op = format!("delete webhook {id}");
        self.call(&op, "DELETE", &format!("/{id}"), None).map(drop)
    }

    /// One call: the answer's body when the status is 2xx, else a [`HubError`] naming
    /// `op`, the status and the Hub's own message (`X-Error-Message`, else `error`).
    fn call(
        &self,
        op: &str,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<String, HubError> {
        let url = format!("{}/api/settings/webhooks{path}", self.hub);
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token.expose()))
            .header("accept", "application/json");
        let sent = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(body)
                .map(|r| self.agent.run(r)),
            None => request.body(()).map(|r| self.agent.run(r)),
        };
        let unreachable = |detail: String| HubError::Unreachable {
            hub: self.hub.clone(),
            detail: self.token.scrub(&detail),
        };
        let mut response = sent
            .map_err(|err| unreachable(err.to_string()))?
            .map_err(|err| unreachable(err.to_string()))?;
        let status = response.status().as_u16();
        let from_header = response
            .headers()
            .get("x-error-message")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|err| unreachable(err.to_string()))?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let message = from_header.or_else(|| {
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        });
        Err(HubError::Status {
            hub: self.hub.clone(),
            op: op.to_owned(),
            status,
            message: message.map(|m| self.token.scrub(&quoted(&m))),
        })
    }
}

/// The most of the Hub's own message an error quotes.
const QUOTED: usize = 300;

/// The Hub's message as an error quotes it: one line, at most [`QUOTED`] characters.
fn quoted(message: &str) -> String {
    let line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(QUOTED)
        .collect();
    if message.chars().count() > QUOTED {
        format!("{line}…")
    } else {
        line
    }
}

/// A webhook whose ID can go into a path as it is (the Hub's are hexadecimal): any other
/// ID is a bad answer, never a path of another route.
fn checked(op: &str, webhook: WebhookInfo) -> Result<WebhookInfo, HubError> {
    let fine = !webhook.id.is_empty()
        && webhook.id.len() <= 128
        && webhook
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fine {
        Ok(webhook)
    } else {
        Err(HubError::BadAnswer {
            op: op.to_owned(),
            detail: format!("the webhook ID {:?} is not letters and digits", webhook.id),
        })
    }
}

fn json(spec: &WebhookSpec<'_>) -> String {
    serde_json::to_string(spec).expect("a webhook spec is plain JSON")
}

fn parse<T: serde::de::DeserializeOwned>(op: &str, body: &str) -> Result<T, HubError> {
    let parsed: T = serde_json::from_str(body).map_err(|err| HubError::BadAnswer {
        op: op.to_owned(),
        detail: err.to_string(),
    })?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_is_the_json_update_webhook_sends() {
        let watched = [WatchedItem {
            kind: "dataset".to_owned(),
            name: "me/data".to_owned(),
        }];
        let spec = WebhookSpec {
            watched: &watched,
            url: "https://bot.example/webhooks/a",
            domains: &["repo"],
            secret: None,
        };
        assert_eq!(
            json(&spec),
            r#"{"watched":[{"type":"dataset","name":"me/data"}],"url":"https://bot.example/webhooks/a","domains":["repo"]}"#
        );
    }

    #[test]
    fn the_hub_s_message_is_quoted_on_one_short_line() {
        assert_eq!(quoted("Invalid credentials"), "Invalid credentials");
        assert_eq!(quoted("two\nlines\u{1b}[31m"), "two lines [31m");
        let long = quoted(&"x".repeat(10_000));
        assert_eq!(long.chars().count(), QUOTED + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn answers_are_read_as_huggingface_hub_reads_them() {
        let w: Wrapped = parse(
            "op",
            r#"{"webhook": {"id": "abc", "url": "u", "watched": [], "domains": [], "disabled": true, "extra": 1}}"#,
        )
        .unwrap();
        assert_eq!(w.webhook.id, "abc");
        assert!(w.webhook.disabled);
        for id in ["../../other", "a/b", "", "a b"] {
            let webhook = WebhookInfo {
                id: id.to_owned(),
                url: None,
                disabled: false,
            };
            assert!(checked("op", webhook).is_err(), "{id:?}");
        }
        let err = parse::<Wrapped>("create a webhook", r#"{"id": "abc"}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the Hub's answer to create a webhook is not a webhook"),
            "{err}"
        );
    }
}
