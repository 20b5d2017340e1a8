//! The HTTP answers to a delivery that cannot reach its handler.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Why a delivery was refused before (or instead of) running its handler.
///
/// Each answers JSON `{"error": "..."}` with its status code; a payload that does not fit
/// its type also names the field, as `{"error": "...", "path": "discussion.num"}`.
///
/// ```
/// use hookserver::Rejection;
/// use hookserver::actix_web::ResponseError;
///
/// assert_eq!(Rejection::MissingSecret.status_code().as_u16(), 401);
/// assert_eq!(Rejection::WrongSecret.to_string(), "Invalid webhook secret.");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// 401: a secret is set and the request carries none.
    #[error("x-webhook-secret header not set.")]
    MissingSecret,
    /// 403: the request carries a secret that does not match.
    #[error("Invalid webhook secret.")]
    WrongSecret,
    /// 400: the body is not JSON.
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    /// 400: the body is not UTF-8 text (for a `String` parameter).
    #[error("the body is not valid UTF-8 text: {0}")]
    NotUtf8(String),
    /// 400: the body could not be read (the client stopped sending, say).
    #[error("the body could not be read: {0}")]
    BodyRead(String),
    /// 422: the body is JSON but does not fit the expected type.
    #[error("the payload does not fit at `{path}`: {message}")]
    Invalid {
        /// Where, as a dotted path such as `discussion.num` (`.` for the whole body).
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// 413: the body is larger than the server's limit.
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// 405: a webhook path was asked with another method than POST.
    #[error("method {0} is not allowed on a webhook: the Hub sends POST")]
    MethodNotAllowed(String),
    /// 404: no webhook at this path.
    #[error("no webhook at {0}")]
    NotFound(String),
    /// 500: the handler panicked.
    #[error("the webhook handler panicked")]
    HandlerPanicked,
    /// 408: the body did not arrive in time (the connection is closed).
    #[error("the body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// 504: the handler did not answer in time.
    #[error("the webhook handler did not answer within {0:?}")]
    HandlerTimeout(std::time::Duration),
    /// 503: the server is shutting down and could not run the handler.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// 403: a browser sent the request from a web page (`Origin`, or `Sec-Fetch-Site` of
    /// `cross-site` or `same-site`); the Hub sends neither.
    #[error("cross-site request refused: {0}")]
    CrossSite(String),
    /// 429: this client address sent too many wrong secrets; answered with `Retry-After`
    /// and without comparing the secret, until its budget refills.
    #[error("too many wrong secrets from this address: try again in {retry_after} s")]
    Throttled {
        /// Seconds to wait, as `Retry-After` says.
        retry_after: u64,
    },
    /// 503: the inbox of a queued endpoint did not store the delivery (it is full, or the
    /// disk refused the write); answered with `Retry-After`, and nothing was acknowledged.
    #[error("{reason}")]
    InboxUnavailable {
        /// Why, in words.
        reason: String,
        /// Seconds to wait, as `Retry-After` says.
        retry_after: u64,
    },
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
}

impl Rejection {
    /// Turns a `serde_json` error on `body` into 400 (not JSON) or 422 (JSON that does
    /// not fit), naming the field's path for 422.
    pub(crate) fn from_json_error<T: serde::de::DeserializeOwned>(
        body: &[u8],
        err: &serde_json::Error,
    ) -> Self {
        use serde_json::error::Category;
        match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => Rejection::NotJson(err.to_string()),
            Category::Data => {
                // A shape error may hide a syntax error further on ("{} trailing").
                if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                    return Rejection::NotJson(syntax.to_string());
                }
                // Parse again with path tracking: this costs only on the error path.
                let mut de = serde_json::Deserializer::from_slice(body);
                match serde_path_to_error::deserialize::<_, T>(&mut de) {
                    Err(tracked) => {
                        let parent = tracked.path().to_string();
                        let message = tracked.into_inner().to_string();
                        Rejection::Invalid {
                            path: missing_field_path(&parent, &message).unwrap_or(parent),
                            message,
                        }
                    }
                    Ok(_) => Rejection::Invalid {
                        path: ".".to_owned(),
                        message: err.to_string(),
                    },
                }
            }
        }
    }

    /// Parses `body` as JSON into `T`, or says why it cannot.
    #[inline]
    pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Self> {
        serde_json::from_slice(body).map_err(|err| Self::from_json_error::<T>(body, &err))
    }
}

/// For "missing field `x`", the path of the field itself rather than of its parent.
fn missing_field_path(parent: &str, message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    let field = &rest[..rest.find('`')?];
    Some(if parent == "." {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    })
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Rejection::MissingSecret => StatusCode::UNAUTHORIZED,
            Rejection::WrongSecret => StatusCode::FORBIDDEN,
            Rejection::NotJson(_) | Rejection::NotUtf8(_) | Rejection::BodyRead(_) => {
                StatusCode::BAD_REQUEST
            }
            Rejection::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Rejection::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::NotFound(_) => StatusCode::NOT_FOUND,
            Rejection::HandlerPanicked => StatusCode::INTERNAL_SERVER_ERROR,
            Rejection::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Rejection::HandlerTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Rejection::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::CrossSite(_) => StatusCode::FORBIDDEN,
            Rejection::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Rejection::InboxUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = self.to_string();
        let path = match self {
            Rejection::Invalid { path, .. } => Some(path.as_str()),
            _ => None,
        };
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Rejection::MethodNotAllowed(_) => {
                response.insert_header((header::ALLOW, "POST"));
            }
            Rejection::Throttled { retry_after }
            | Rejection::InboxUnavailable { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, *retry_after));
            }
            _ => {}
        }
        response.insert_header(NOSNIFF).json(ErrorBody {
            error: &message,
            path,
        })
    }
}

/// `X-Content-Type-Options: nosniff`, on every JSON answer of hookserver's own.
pub(crate) const NOSNIFF: (header::HeaderName, header::HeaderValue) = (
    header::X_CONTENT_TYPE_OPTIONS,
    header::HeaderValue::from_static("nosniff"),
);

/// `{"error": message}` with `status`.
pub(crate) fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(NOSNIFF)
        .json(ErrorBody {
            error: message,
            path: None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_are_400_and_shape_errors_422_with_a_path() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            num: u64,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            discussion: Inner,
        }
        let bad = Rejection::parse_json::<Outer>(b"{not json").unwrap_err();
        assert_eq!(bad.status_code(), StatusCode::BAD_REQUEST);
        let bad = Rejection::parse_json::<Outer>(br#"{"discussion": {"num": "x"}}"#).unwrap_err();
        assert_eq!(bad.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        match bad {
            Rejection::Invalid { path, .. } => assert_eq!(path, "discussion.num"),
            other => panic!("{other:?}"),
        }
        match Rejection::parse_json::<Outer>(br#"{"discussion": {}}"#).unwrap_err() {
            Rejection::Invalid { path, .. } => assert_eq!(path, "discussion.num"),
            other => panic!("{other:?}"),
        }
        let bad = Rejection::parse_json::<Outer>(b"[1]").unwrap_err();
        assert_eq!(bad.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
