//! Typed models of the Hugging Face Hub's webhook payload (version 3).
//!
//! The models mirror `huggingface_hub`'s `WebhookPayload` with Rust names; serde renames
//! map them to the Hub's camelCase. Fields the Hub's schema marks optional are `Option`s,
//! unknown fields are ignored, and the enums keep values they do not know in an `Other`
//! variant, since the Hub adds values over time. Serializing gives back the Hub's names.
//!
//! ```
//! use hookserver::{Action, RepoType, WebhookPayload};
//!
//! let payload: WebhookPayload = hookserver::serde_json::from_str(r#"{
//!     "event": {"action": "update", "scope": "repo.content"},
//!     "repo": {"type": "dataset", "name": "me/data", "id": "6512", "private": false,
//!              "url": {"web": "https://huggingface.co/datasets/me/data"},
//!              "owner": {"id": "6273"}, "headSha": "5e7f29f"},
//!     "webhook": {"id": "65a1", "version": 3}
//! }"#).unwrap();
//! assert_eq!(payload.repo.r#type, RepoType::Dataset);
//! assert_eq!(payload.event.action, Action::Update);
//! assert_eq!(payload.repo.head_sha.as_deref(), Some("5e7f29f"));
//! ```

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Defines a string enum that keeps unknown values in `Other(String)`.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        ///
        /// Parsing never fails on an unknown value: it lands in `Other`, which never holds
        /// a value of the listed variants when parsed or built with `From<&str>`.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version of hookserver does not know, as the Hub sent it.
            Other(String),
        }

        impl $name {
            /// The value as the Hub writes it.
            #[must_use]
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $value, )*
                    Self::Other(value) => value,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $value => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ValueVisitor;

                impl Visitor<'_> for ValueVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a string (", $( $value, " ", )* "or another value)"))
                    }

                    fn visit_str<E: de::Error>(self, value: &str) -> Result<$name, E> {
                        Ok($name::from(value))
                    }
                }

                deserializer.deserialize_str(ValueVisitor)
            }
        }
    };
}

open_enum! {
    /// What happened: `event.action`.
    Action {
        /// `create`
        Create = "create",
        /// `delete`
        Delete = "delete",
        /// `move`
        Move = "move",
        /// `update`
        Update = "update",
    }
}

open_enum! {
    /// The kind of repository: `repo.type`.
    RepoType {
        /// `dataset`
        Dataset = "dataset",
        /// `model`
        Model = "model",
        /// `space`
        Space = "space",
    }
}

open_enum! {
    /// The state of a discussion or pull request: `discussion.status`.
    DiscussionStatus {
        /// `closed`
        Closed = "closed",
        /// `draft`
        Draft = "draft",
        /// `open`
        Open = "open",
        /// `merged`
        Merged = "merged",
    }
}

/// The payload the Hub sends with every webhook delivery (version 3).
///
/// Take it as a parameter of a `#[webhook_endpoint]` fn to get the body parsed and
/// validated: a body that is not JSON answers 400, JSON that does not fit answers 422
/// naming the field's path, and `webhook.version` other than 3 is refused.
///
/// ```
/// use hookserver::{webhook_endpoint, WebhookPayload};
///
/// #[webhook_endpoint]
/// async fn echo_scope(payload: WebhookPayload) -> hookserver::serde_json::Value {
///     hookserver::serde_json::json!({ "scope": payload.event.scope })
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebhookPayload {
    /// What happened, and to what.
    pub event: Event,
    /// The repository the event is about.
    pub repo: Repo,
    /// The discussion or pull request, for `discussion` and `discussion.comment` scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discussion: Option<Discussion>,
    /// The comment, for the `discussion.comment` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<Comment>,
    /// The webhook that sent this delivery.
    pub webhook: WebhookInfo,
    /// Where the repository went, for a `move` action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<MovedTo>,
    /// The git references a `repo.content` update changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_refs: Option<Vec<UpdatedRef>>,
    /// The settings a `repo.config` update changed, as the Hub sent them
    /// (`huggingface_hub`'s models drop this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_config: Option<serde_json::Value>,
}

impl WebhookPayload {
    /// Parses a delivery's body as the server does: `Rejection::NotJson` (400) for a body
    /// that is not JSON, `Rejection::Invalid` (422, with the field's path) for JSON that
    /// does not fit, including a `webhook.version` other than 3. The path is tracked only
    /// once parsing has failed, so a valid payload costs what plain `serde_json` costs.
    ///
    /// # Errors
    ///
    /// The [`Rejection`](crate::Rejection) the server would answer.
    ///
    /// ```
    /// use hookserver::{Rejection, WebhookPayload};
    ///
    /// let err = WebhookPayload::from_slice(br#"{"event": {"action": 1}}"#).unwrap_err();
    /// assert!(matches!(err, Rejection::Invalid { ref path, .. } if path == "event.action"));
    /// let err = WebhookPayload::from_slice(b"[1, 2]").unwrap_err();
    /// assert!(matches!(err, Rejection::Invalid { ref path, .. } if path == "."));
    /// ```
    #[inline]
    pub fn from_slice(body: &[u8]) -> Result<Self, crate::Rejection> {
        Self::parse(body)
    }

    /// [`from_slice`](Self::from_slice) into a box (serde parses the value, then boxes it).
    #[inline]
    pub(crate) fn from_slice_boxed(body: &[u8]) -> Result<Box<Self>, crate::Rejection> {
        Self::parse(body)
    }

    /// A payload, as `Self` or `Box<Self>` (serde builds either).
    #[inline]
    fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, crate::Rejection> {
        // serde would take a JSON array for a struct, field by field: the Hub sends an object.
        let first = body
            .iter()
            .find(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r'));
        if first != Some(&b'{') {
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                    Err(err) => crate::Rejection::NotJson(err.to_string()),
                    Ok(_) => crate::Rejection::Invalid {
                        path: ".".to_owned(),
                        message: "invalid type: expected a JSON object (the Hub's payload)"
                            .to_owned(),
                    },
                },
            );
        }
        crate::Rejection::parse_json(body)
    }
}

/// The few fields a body says of itself (scope, action, repository name and type), read
/// without building the rest: what the log line, the delivery log and filters need.
#[derive(Debug, Default)]
pub(crate) struct Headline {
    pub(crate) scope: Option<String>,
    pub(crate) action: Option<String>,
    pub(crate) repo_name: Option<String>,
    pub(crate) repo_type: Option<String>,
}

impl Headline {
    /// What `body` says; `None` when it is not JSON of the payload's shape.
    pub(crate) fn read(body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Event {
            action: Option<String>,
            scope: Option<String>,
        }
        #[derive(Deserialize)]
        struct Repo {
            name: Option<String>,
            #[serde(rename = "type")]
            kind: Option<String>,
        }
        #[derive(Deserialize)]
        struct Body {
            event: Option<Event>,
            repo: Option<Repo>,
        }
        let body = serde_json::from_slice::<Body>(body).ok()?;
        let (action, scope) = body
            .event
            .map(|event| (event.action, event.scope))
            .unwrap_or_default();
        let (repo_name, repo_type) = body
            .repo
            .map(|repo| (repo.name, repo.kind))
            .unwrap_or_default();
        Some(Headline {
            scope,
            action,
            repo_name,
            repo_type,
        })
    }
}

impl From<&Headline> for EventInfo {
    fn from(headline: &Headline) -> Self {
        EventInfo::new(
            headline.scope.as_deref(),
            headline.action.as_deref(),
            headline.repo_name.as_deref(),
        )
    }
}

/// What the log line and the delivery log show of a delivery, read from its body once:
/// from the `WebhookPayload` a handler parsed, or else from the body alone. Scope, action
/// and repository name sit in one buffer (one allocation), each cut to [`EventInfo::MAX`]
/// bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EventInfo {
    /// The three texts, one after the other.
    text: String,
    /// Where each ends in `text`, or `None` when the body does not say.
    ends: [Option<u16>; 3],
}

impl EventInfo {
    /// The most bytes kept of each text.
    pub(crate) const MAX: usize = 256;

    fn new(scope: Option<&str>, action: Option<&str>, repo: Option<&str>) -> Self {
        fn cut(text: &str) -> &str {
            let mut end = text.len().min(EventInfo::MAX);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            &text[..end]
        }
        let parts = [scope.map(cut), action.map(cut), repo.map(cut)];
        let mut text = String::with_capacity(parts.iter().flatten().map(|p| p.len()).sum());
        let mut ends = [None; 3];
        for (end, part) in ends.iter_mut().zip(parts) {
            if let Some(part) = part {
                text.push_str(part);
                // At most 3 × 256 bytes: the offset fits.
                *end = u16::try_from(text.len()).ok();
            }
        }
        EventInfo { text, ends }
    }

    /// What a parsed payload says.
    pub(crate) fn of(payload: &WebhookPayload) -> Self {
        Self::new(
            Some(&payload.event.scope),
            Some(payload.event.action.as_str()),
            Some(&payload.repo.name),
        )
    }

    /// What a body says, where it says it (any JSON; nothing for other bytes).
    pub(crate) fn read(body: &[u8]) -> Self {
        Headline::read(body).map_or_else(EventInfo::default, |h| EventInfo::from(&h))
    }

    fn part(&self, index: usize) -> Option<&str> {
        let end = usize::from(self.ends[index]?);
        let start = self.ends[..index]
            .iter()
            .rev()
            .find_map(|end| *end)
            .map_or(0, usize::from);
        self.text.get(start..end)
    }

    /// `event.scope`.
    pub(crate) fn scope(&self) -> Option<&str> {
        self.part(0)
    }

    /// `event.action`.
    pub(crate) fn action(&self) -> Option<&str> {
        self.part(1)
    }

    /// `repo.name`.
    pub(crate) fn repo(&self) -> Option<&str> {
        self.part(2)
    }

    /// The memory it holds.
    pub(crate) fn bytes(&self) -> usize {
        self.text.capacity()
    }
}

/// `event`: what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// `create`, `delete`, `move` or `update`.
    pub action: Action,
    /// What the action applies to: `repo`, `repo.content`, `repo.config`, `discussion`,
    /// `discussion.comment`, ...
    pub scope: String,
}

/// An object known by its id, such as `repo.owner` or `comment.author`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ObjectId {
    /// The Hub's id of the object.
    pub id: String,
}

/// The web and API addresses of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PayloadUrl {
    /// The address of the object's page.
    pub web: String,
    /// The address of the object in the Hub's API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
}

/// `repo`: the repository the event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Repo {
    /// The Hub's id of the repository.
    pub id: String,
    /// The owner (a user or an organization).
    pub owner: ObjectId,
    /// The head commit: the Hub sends `headSha`; `head_sha` is accepted too.
    #[serde(
        rename = "headSha",
        alias = "head_sha",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub head_sha: Option<String>,
    /// The full name, such as `openai-community/gpt2`.
    pub name: String,
    /// Whether the repository is private.
    pub private: bool,
    /// A Space's subdomain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    /// The repository's tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// `dataset`, `model` or `space`.
    pub r#type: RepoType,
    /// The repository's addresses.
    pub url: PayloadUrl,
}

/// `discussion`: a discussion or a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Discussion {
    /// The Hub's id of the discussion.
    pub id: String,
    /// Its number in the repository.
    pub num: u64,
    /// Who opened it.
    pub author: ObjectId,
    /// Its addresses.
    pub url: PayloadUrl,
    /// Its title.
    pub title: String,
    /// Whether it is a pull request.
    pub is_pull_request: bool,
    /// `closed`, `draft`, `open` or `merged`.
    pub status: DiscussionStatus,
    /// A pull request's changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<DiscussionChanges>,
    /// Whether it is pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<bool>,
}

/// `discussion.changes`: what a pull request changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DiscussionChanges {
    /// The branch it targets, such as `refs/heads/main`.
    pub base: String,
    /// The merge commit, once merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_commit_id: Option<String>,
}

/// `comment`: a comment in a discussion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Comment {
    /// The Hub's id of the comment.
    pub id: String,
    /// Who wrote it.
    pub author: ObjectId,
    /// Whether it is hidden.
    pub hidden: bool,
    /// Its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Its addresses.
    pub url: PayloadUrl,
}

/// `webhook`: the webhook that sent the delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebhookInfo {
    /// The Hub's id of the webhook.
    pub id: String,
    /// The payload's format version: always 3 (other versions are refused).
    #[serde(deserialize_with = "version_3")]
    pub version: u8,
}

/// `movedTo`: where a moved repository went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MovedTo {
    /// The new full name.
    pub name: String,
    /// The new owner.
    pub owner: ObjectId,
}

/// One entry of `updatedRefs`: a git reference a push changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UpdatedRef {
    /// The reference, such as `refs/heads/main` or `refs/pr/5`.
    pub r#ref: String,
    /// The commit before, or `None` for a new reference (sent as `null`).
    #[serde(default)]
    pub old_sha: Option<String>,
    /// The commit after, or `None` for a deleted reference (sent as `null`).
    #[serde(default)]
    pub new_sha: Option<String>,
}

/// The only payload version this crate understands.
pub const SUPPORTED_VERSION: u8 = 3;

fn version_3<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    let version = u64::deserialize(deserializer)?;
    if version == u64::from(SUPPORTED_VERSION) {
        Ok(SUPPORTED_VERSION)
    } else {
        Err(de::Error::custom(format_args!(
            "unsupported webhook payload version {version}: hookserver understands version {SUPPORTED_VERSION}"
        )))
    }
}

#[cfg(test)]
mod tests;
