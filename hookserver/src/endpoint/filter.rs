//! Filters on an endpoint (`#[webhook_endpoint(scope = .., action = .., repo_type = ..)]`,
//! [`WebhooksServer::filter`](crate::WebhooksServer::filter)): a delivery that does not
//! match is answered `200 {"ignored": "<why>"}` and reaches neither the handler nor the
//! inbox.

use crate::payload::Headline;

/// The scopes the Hub documents (`event.scope`).
///
/// ```
/// assert!(hookserver::DOCUMENTED_SCOPES.contains(&"repo.content"));
/// ```
pub const DOCUMENTED_SCOPES: &[&str] = &[
    "repo",
    "repo.content",
    "repo.config",
    "discussion",
    "discussion.comment",
];
/// The actions the Hub documents (`event.action`).
///
/// ```
/// assert_eq!(hookserver::DOCUMENTED_ACTIONS, ["create", "update", "delete", "move"]);
/// ```
pub const DOCUMENTED_ACTIONS: &[&str] = &["create", "update", "delete", "move"];
/// The repository types the Hub documents (`repo.type`).
///
/// ```
/// assert_eq!(hookserver::DOCUMENTED_REPO_TYPES, ["model", "dataset", "space"]);
/// ```
pub const DOCUMENTED_REPO_TYPES: &[&str] = &["model", "dataset", "space"];

/// Which deliveries an endpoint takes: each list, when not empty, must hold the delivery's
/// value. A scope also takes the scopes under it: `repo` takes `repo.content`.
///
/// ```
/// use hookserver::{Filter, WebhooksServer};
///
/// let mut app = WebhooksServer::empty();
/// app.add_webhook("datasets", || async {})?;
/// app.filter(
///     "datasets",
///     Filter::new().scope(["repo.content"]).action(["update"]).repo_type(["dataset"]),
/// )?;
/// // A value the Hub added after this version: taken as written.
/// app.filter("datasets", Filter::new().action_unchecked(["archive"]))?;
/// app.filter(
///     "datasets",
///     Filter::new().scope_unchecked(["repo.lfs"]).repo_type_unchecked(["bucket"]),
/// )?;
/// // A documented value misspelled is an error that names the documented ones.
/// assert!(app.filter("datasets", Filter::new().action(["updte"])).is_err());
/// # Ok::<(), hookserver::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub(crate) scopes: Vec<Value>,
    pub(crate) actions: Vec<Value>,
    pub(crate) repo_types: Vec<Value>,
}

/// A filter's value, and whether it must be one the Hub documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value {
    pub(crate) text: String,
    pub(crate) checked: bool,
}

fn values(list: impl IntoIterator<Item = impl Into<String>>, checked: bool) -> Vec<Value> {
    list.into_iter()
        .map(|v| Value {
            text: v.into(),
            checked,
        })
        .collect()
}

impl Filter {
    /// A filter that takes every delivery.
    #[must_use]
    pub fn new() -> Self {
        Filter::default()
    }

    /// Takes deliveries of these scopes (documented ones: checked when the filter is set).
    #[must_use]
    pub fn scope(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes.extend(values(scopes, true));
        self
    }

    /// Takes deliveries of these actions (documented ones).
    #[must_use]
    pub fn action(mut self, actions: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.actions.extend(values(actions, true));
        self
    }

    /// Takes deliveries about repositories of these types (documented ones).
    #[must_use]
    pub fn repo_type(mut self, types: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.repo_types.extend(values(types, true));
        self
    }

    /// [`scope`](Self::scope), for values the Hub added after this version (not checked).
    #[must_use]
    pub fn scope_unchecked(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes.extend(values(scopes, false));
        self
    }

    /// [`action`](Self::action), for values the Hub added after this version.
    #[must_use]
    pub fn action_unchecked(
        mut self,
        actions: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.actions.extend(values(actions, false));
        self
    }

    /// [`repo_type`](Self::repo_type), for values the Hub added after this version.
    #[must_use]
    pub fn repo_type_unchecked(
        mut self,
        types: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.repo_types.extend(values(types, false));
        self
    }

    /// The filter `#[webhook_endpoint(...)]` wrote (its values checked at compile time).
    pub(crate) fn of_static(scopes: &[&str], actions: &[&str], repo_types: &[&str]) -> Self {
        let owned = |list: &[&str]| values(list.iter().map(|v| (*v).to_owned()), false);
        Filter {
            scopes: owned(scopes),
            actions: owned(actions),
            repo_types: owned(repo_types),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.scopes.is_empty() && self.actions.is_empty() && self.repo_types.is_empty()
    }

    /// Every checked value the Hub documents, or what is wrong with the first that is not.
    pub(crate) fn check_values(&self) -> Result<(), String> {
        for (what, list, documented) in [
            ("scope", &self.scopes, DOCUMENTED_SCOPES),
            ("action", &self.actions, DOCUMENTED_ACTIONS),
            ("repo_type", &self.repo_types, DOCUMENTED_REPO_TYPES),
        ] {
            for value in list.iter().filter(|v| v.checked) {
                if !documented.contains(&value.text.as_str()) {
                    return Err(format!(
                        "{what} {:?} is not one the Hub documents ({}); for a newer value use {what}_unchecked",
                        value.text,
                        documented.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// `Ok` when the body's event matches, else why not. A body whose event cannot be read
    /// passes: the handler's parameters answer it (400, 422).
    #[cfg(test)]
    pub(crate) fn admits(&self, body: &[u8]) -> Result<(), String> {
        self.admits_headline(Headline::read(body).as_ref())
    }

    /// Whether a delivery whose body says `headline` fits (`None`: not the payload's
    /// shape, left to the handler's checks).
    pub(crate) fn admits_headline(&self, headline: Option<&Headline>) -> Result<(), String> {
        let Some(headline) = headline else {
            return Ok(());
        };
        let (scope, action, kind) = (&headline.scope, &headline.action, &headline.repo_type);
        let scope_fits = |wanted: &str, got: &str| {
            got == wanted
                || got
                    .strip_prefix(wanted)
                    .is_some_and(|rest| rest.starts_with('.'))
        };
        check("scope", &self.scopes, scope.as_deref(), scope_fits)?;
        check("action", &self.actions, action.as_deref(), |a, b| a == b)?;
        check("repo_type", &self.repo_types, kind.as_deref(), |a, b| {
            a == b
        })
    }
}

fn check(
    what: &str,
    wanted: &[Value],
    got: Option<&str>,
    fits: impl Fn(&str, &str) -> bool,
) -> Result<(), String> {
    if wanted.is_empty() {
        return Ok(());
    }
    let list = wanted
        .iter()
        .map(|v| v.text.as_str())
        .collect::<Vec<_>>()
        .join(" or ");
    match got {
        Some(got) if wanted.iter().any(|v| fits(&v.text, got)) => Ok(()),
        Some(got) => Err(format!("{what} is {got:?}; this endpoint takes {list}")),
        None => Err(format!(
            "the delivery has no {what}; this endpoint takes {list}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(scope: &str, action: &str, kind: &str) -> Vec<u8> {
        format!(r#"{{"event": {{"scope": "{scope}", "action": "{action}"}}, "repo": {{"type": "{kind}"}}}}"#)
            .into_bytes()
    }

    #[test]
    fn a_filter_takes_matching_deliveries_and_says_why_it_ignores_the_others() {
        let f = Filter::new()
            .scope(["repo"])
            .action(["create", "update"])
            .repo_type(["dataset"]);
        assert!(f.admits(&body("repo.content", "update", "dataset")).is_ok());
        assert!(f.admits(&body("repo", "create", "dataset")).is_ok());
        assert_eq!(
            f.admits(&body("repository", "update", "dataset"))
                .unwrap_err(),
            "scope is \"repository\"; this endpoint takes repo"
        );
        assert_eq!(
            f.admits(&body("repo.content", "delete", "dataset"))
                .unwrap_err(),
            "action is \"delete\"; this endpoint takes create or update"
        );
        assert!(f.admits(&body("repo", "update", "model")).is_err());
        assert_eq!(
            f.admits(br#"{"event": {"scope": "repo", "action": "update"}}"#)
                .unwrap_err(),
            "the delivery has no repo_type; this endpoint takes dataset"
        );
        // Not JSON: for the handler to refuse.
        assert!(f.admits(b"{not json").is_ok());
        assert!(Filter::new().admits(&body("x", "y", "z")).is_ok());
    }

    #[test]
    fn undocumented_values_are_refused_unless_unchecked() {
        assert!(Filter::new()
            .action(["udpate"])
            .check_values()
            .unwrap_err()
            .contains("udpate"));
        assert!(Filter::new()
            .action_unchecked(["archive"])
            .check_values()
            .is_ok());
        assert!(Filter::new()
            .scope(["repo.content"])
            .repo_type(["space"])
            .check_values()
            .is_ok());
    }
}
