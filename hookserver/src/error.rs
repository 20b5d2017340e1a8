//! The library's error type.

/// What can go wrong while configuring or launching a [`WebhooksServer`](crate::WebhooksServer).
///
/// Errors that a *delivery* meets (a bad payload, a wrong secret) are HTTP answers, not
/// values of this type: see [`Rejection`](crate::Rejection).
///
/// ```
/// let mut app = hookserver::WebhooksServer::empty();
/// app.add_webhook("hello", || async {}).unwrap();
/// let err = app.add_webhook("/hello/", || async {}).unwrap_err();
/// assert_eq!(err.to_string(), "Webhook /webhooks/hello already exists.");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An explicit registration named a path that is already taken.
    ///
    /// The message is the one `huggingface_hub` raises, word for word.
    #[error("Webhook {path} already exists.")]
    DuplicatePath {
        /// The full path, such as `/webhooks/say_hello`.
        path: String,
    },
    /// Two `#[webhook_endpoint]` fns end on the same path.
    #[error(
        "two webhook endpoints share the path {path}: `{first}` and `{second}`; give one of them another path with #[webhook_endpoint(\"other_name\")]"
    )]
    DuplicateEndpoints {
        /// The full path, such as `/webhooks/say_hello`.
        path: String,
        /// The first fn, as `module::fn (file:line)`.
        first: String,
        /// The second fn, as `module::fn (file:line)`.
        second: String,
    },
    /// A path given to [`add_webhook`](crate::WebhooksServer::add_webhook) is not valid.
    #[error("invalid webhook path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The handler passed to [`add_webhook_fn`](crate::WebhooksServer::add_webhook_fn) has
    /// no name to take the path from (a closure, for instance).
    #[error(
        "cannot take a webhook path from `{type_name}`: it is not a named fn; use add_webhook(\"name\", handler)"
    )]
    UnnamedHandler {
        /// What `std::any::type_name` said of the handler.
        type_name: &'static str,
    },
    /// A filter given to [`filter`](crate::WebhooksServer::filter) cannot be used.
    #[error("invalid filter on {path}: {reason}")]
    InvalidFilter {
        /// The endpoint's full path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An environment variable or a builder value could not be used.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The chosen address is taken by another program.
    #[error("cannot listen on {addr}: the address is already in use; choose another port with HOOKSERVER_PORT or .port(...), or 0 for any free port")]
    AddrInUse {
        /// The address that was asked for.
        addr: String,
    },
    /// None of the ports 7860 to 7959 was free.
    #[error("no free port between 7860 and 7959 on {host}; choose one with HOOKSERVER_PORT or .port(...), or 0 for any free port")]
    NoFreePort {
        /// The host that was tried.
        host: String,
    },
    /// Listening or serving failed for another reason.
    #[error("cannot serve on {addr}: {source}")]
    Io {
        /// The address that was asked for.
        addr: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The public tunnel (`.share(true)`, `HOOKSERVER_SHARE=1`) could not be opened.
    #[error("cannot open the public tunnel through {server}: {reason}; check HOOKSERVER_SHARE_SERVER and HOOKSERVER_SHARE_SECRET, or launch without sharing")]
    Share {
        /// The tunnel server, `host:port`.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The inbox of the queued endpoints (`HOOKSERVER_INBOX`, `.inbox(...)`) could not be
    /// opened: the file cannot be created or read, is not an inbox, or is corrupt.
    #[error("cannot open the inbox {location}: {reason}; name another file with HOOKSERVER_INBOX or .inbox(...)")]
    Inbox {
        /// The file.
        location: String,
        /// What went wrong.
        reason: String,
    },
    /// Registration on the Hub ([`register_on_hub`](crate::WebhooksServer::register_on_hub))
    /// failed, and it was [`required`](crate::HubRegistration::required).
    #[error("cannot register on the Hub: {reason}")]
    Hub {
        /// What went wrong, and what to do (the token is never in it).
        reason: String,
    },
    /// The server thread stopped unexpectedly (it panicked).
    #[error("the server thread stopped unexpectedly: {reason}")]
    ServerThread {
        /// Why: the panic's message.
        reason: String,
    },
}

impl Error {
    /// The error of a server thread that panicked, with the panic's message.
    pub(crate) fn server_thread(panic: &(dyn std::any::Any + Send)) -> Self {
        Error::ServerThread {
            reason: crate::endpoint::run::panic_message(panic),
        }
    }

    pub(crate) fn io(addr: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            addr: addr.to_string(),
            source,
        }
    }
}

/// `Result` with [`Error`] as its default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn a_server_thread_panic_keeps_its_message() {
        let panic = std::thread::spawn(|| panic!("the port vanished"))
            .join()
            .unwrap_err();
        let err = Error::server_thread(panic.as_ref());
        assert_eq!(
            err.to_string(),
            "the server thread stopped unexpectedly: the port vanished"
        );
    }
}
