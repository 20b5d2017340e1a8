//! The shared secret: where a delivery carries it, and how it is compared.

use std::fmt;

use constant_time_eq::constant_time_eq;

/// The name of the header that carries the secret (matched in any case).
pub const SECRET_HEADER: &str = "x-webhook-secret";

/// [`SECRET_HEADER`] as a header name, parsed once.
pub(crate) const SECRET_HEADER_NAME: actix_web::http::header::HeaderName =
    actix_web::http::header::HeaderName::from_static(SECRET_HEADER);

/// The query parameter that may carry the secret instead of the header.
pub const SECRET_QUERY_PARAM: &str = "secret";

/// A webhook secret, and the previous ones still accepted while a rotation is under way.
/// Its `Debug` form never shows a value.
#[derive(Clone)]
pub(crate) struct Secret(Box<[u8]>, Vec<Box<[u8]>>);

/// Why a delivery is refused by the secret check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretCheck {
    /// The request carries the right secret.
    Valid,
    /// No `X-Webhook-Secret` header and no `secret` query parameter (401).
    Missing,
    /// A secret that does not match (403).
    Wrong,
}

impl Secret {
    /// A secret from a non-empty string; `None` for an empty one.
    pub(crate) fn new(value: &str) -> Option<Self> {
        (!value.is_empty()).then(|| Secret(value.as_bytes().into(), Vec::new()))
    }

    /// The same secret, accepting `previous` too (empty values are skipped).
    pub(crate) fn with_previous<'a>(mut self, previous: impl IntoIterator<Item = &'a str>) -> Self {
        self.1.extend(
            previous
                .into_iter()
                .filter(|value| !value.is_empty())
                .map(|value| Box::<[u8]>::from(value.as_bytes())),
        );
        self
    }

    /// How many values are accepted (the secret and the previous ones).
    pub(crate) fn accepted(&self) -> usize {
        1 + self.1.len()
    }

    /// Checks the header first, then the query string's `secret` parameter.
    ///
    /// The comparison runs in constant time for a given length (`constant_time_eq`): how many
    /// leading bytes match does not change how long it takes.
    pub(crate) fn check(&self, header: Option<&[u8]>, query: &str) -> SecretCheck {
        let given = match header {
            Some(value) => std::borrow::Cow::Borrowed(value),
            None => match query_secret(query) {
                QuerySecret::Absent => return SecretCheck::Missing,
                // Ambiguous: refused, whatever the values.
                QuerySecret::Repeated => return SecretCheck::Wrong,
                QuerySecret::One(value) => std::borrow::Cow::Owned(value.into_bytes()),
            },
        };
        if self.matches(given.as_ref()) {
            SecretCheck::Valid
        } else {
            SecretCheck::Wrong
        }
    }
}

impl Secret {
    /// The secret's bytes, for the dashboard's own test deliveries (never shown).
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Whether `given` is the secret or a previous one: each compared in constant time,
    /// all of them every time (which one matched, if any, takes as long).
    pub(crate) fn matches(&self, given: &[u8]) -> bool {
        let mut matched = constant_time_eq(given, &self.0);
        for previous in &self.1 {
            matched |= constant_time_eq(given, previous);
        }
        matched
    }
}

/// Compared in constant time, as every secret is.
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
            && self.1.len() == other.1.len()
            && self
                .1
                .iter()
                .zip(&other.1)
                .all(|(a, b)| constant_time_eq(a, b))
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The secret check of a delivery's header, for benchmarks (not public API).
#[doc(hidden)]
#[derive(Debug)]
pub struct HeaderCheck(Secret);

impl HeaderCheck {
    /// A check against `expected` (`None` when it is empty).
    #[must_use]
    pub fn new(expected: &str) -> Option<Self> {
        Secret::new(expected).map(HeaderCheck)
    }

    /// Whether a header carrying `given` passes.
    #[must_use]
    pub fn matches(&self, given: &[u8]) -> bool {
        self.0.check(Some(given), "") == SecretCheck::Valid
    }
}

/// The `secret` parameter of a query string.
enum QuerySecret {
    Absent,
    One(String),
    Repeated,
}

/// The decoded `secret` parameter of a query string, if there is exactly one.
fn query_secret(query: &str) -> QuerySecret {
    if query.is_empty() {
        return QuerySecret::Absent;
    }
    let mut values = form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == SECRET_QUERY_PARAM)
        .map(|(_, value)| value);
    match (values.next(), values.next()) {
        (None, _) => QuerySecret::Absent,
        (Some(value), None) => QuerySecret::One(value.into_owned()),
        (Some(_), Some(_)) => QuerySecret::Repeated,
    }
}

/// What a redacted value reads.
pub(crate) const REDACTED: &str = "<redacted>";

/// The headers that carry credentials: never shown, and left out of a replay (the
/// secret is put back by the server itself).
pub(crate) const CREDENTIAL_HEADERS: [&str; 4] = [
    SECRET_HEADER,
    "authorization",
    "proxy-authorization",
    "cookie",
];

/// Whether the header `name` carries credentials (any case).
pub(crate) fn is_credential(name: &str) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .any(|credential| name.eq_ignore_ascii_case(credential))
}

/// The query string with the value of every `secret` parameter replaced, for logs.
pub(crate) fn redact_query(query: &str) -> String {
    rewrite_secret(query, Some(REDACTED))
}

/// The query string without its `secret` parameters (a replay's).
pub(crate) fn without_secret(query: &str) -> String {
    rewrite_secret(query, None)
}

/// The query string with each `secret` parameter's value replaced by `with`, or left out.
fn rewrite_secret(query: &str, with: Option<&str>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match (key == SECRET_QUERY_PARAM, with) {
            (false, _) => out.append_pair(&key, &value),
            (true, Some(with)) => out.append_pair(&key, with),
            (true, None) => &mut out,
        };
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_secret_is_no_secret() {
        assert!(Secret::new("").is_none());
    }

    #[test]
    fn header_is_checked() {
        let s = Secret::new("abc").unwrap();
        assert_eq!(s.check(Some(b"abc"), ""), SecretCheck::Valid);
        assert_eq!(s.check(Some(b"abd"), ""), SecretCheck::Wrong);
        assert_eq!(s.check(Some(b"ab"), ""), SecretCheck::Wrong);
        assert_eq!(s.check(Some(b""), ""), SecretCheck::Wrong);
        assert_eq!(s.check(None, ""), SecretCheck::Missing);
    }

    #[test]
    fn query_parameter_stands_in_for_the_header() {
        let s = Secret::new("a b&c").unwrap();
        assert_eq!(s.check(None, "x=1&secret=a+b%26c"), SecretCheck::Valid);
        assert_eq!(s.check(None, "secret=nope"), SecretCheck::Wrong);
        assert_eq!(s.check(None, "secrets=a+b%26c"), SecretCheck::Missing);
        // The header wins when both are there.
        assert_eq!(s.check(Some(b"nope"), "secret=a+b%26c"), SecretCheck::Wrong);
    }

    #[test]
    fn matches_compares_the_whole_secret() {
        let a = Secret::new("hunter2").unwrap();
        assert!(a.matches(b"hunter2"));
        assert!(!a.matches(b"hunter"));
        assert!(!a.matches(b"hunter22"));
        let rotating = a.clone().with_previous(["old-one", "", "older"]);
        assert_eq!(rotating.accepted(), 3);
        for given in [&b"hunter2"[..], b"old-one", b"older"] {
            assert!(rotating.matches(given));
            assert_eq!(rotating.check(Some(given), ""), SecretCheck::Valid);
        }
        assert!(!rotating.matches(b""));
        assert_eq!(rotating.check(None, "secret=older"), SecretCheck::Valid);
        assert_eq!(rotating.check(Some(b"old"), ""), SecretCheck::Wrong);
    }

    #[test]
    fn the_secret_leaves_the_query_or_is_redacted_in_it() {
        assert_eq!(without_secret("a=1&secret=x&b=2"), "a=1&b=2");
        assert_eq!(without_secret(""), "");
        assert_eq!(redact_query("secret=x&a=1"), "secret=%3Credacted%3E&a=1");
    }

    #[test]
    fn credentials_are_known() {
        assert!(is_credential("X-Webhook-Secret"));
        assert!(is_credential("authorization"));
        assert!(is_credential("Proxy-Authorization"));
        assert!(!is_credential("content-type"));
    }

    #[test]
    fn debug_and_logs_never_show_the_value() {
        let s = Secret::new("hunter2").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
        let q = redact_query("a=1&secret=hunter2");
        assert!(!q.contains("hunter2"), "{q}");
        assert!(q.contains("a=1"));
    }
}
