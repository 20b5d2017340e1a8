//! Receive Hugging Face Hub webhooks in Rust.
//!
//! hookserver does what `huggingface_hub`'s `WebhooksServer` and `@webhook_endpoint` do,
//! as a proc-macro framework on actix-web: put `#[webhook_endpoint]` on a fn and it
//! becomes `POST /webhooks/NAME`, with the Hub's payload parsed into typed models, an
//! optional shared secret checked on every request, a landing page listing the
//! endpoints with a dashboard of recent deliveries (live, with details, redeliver and test
//! sends; see the README's "The dashboard"), and a server that starts from a generated
//! `main`.
//!
//! ```no_run
//! use hookserver::{webhook_endpoint, Action, RepoType, WebhookPayload};
//!
//! #[webhook_endpoint]                        // POST /webhooks/trigger_training
//! async fn trigger_training(payload: WebhookPayload) {
//!     if payload.repo.r#type == RepoType::Dataset && payload.event.action == Action::Update {
//!         // start a training job
//!     }
//! }
//!
//! hookserver::main!();                       // serves until Ctrl-C or SIGTERM
//! ```
//!
//! # Configuration
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `WEBHOOK_SECRET` | the secret every delivery must carry | none (open to everyone) |
//! | `HOOKSERVER_PREVIOUS_SECRETS` | previous secrets still accepted during a rotation, comma-separated | none |
//! | `HOOKSERVER_HOST` | the host to listen on | `127.0.0.1`, or `0.0.0.0` on a Space |
//! | `HOOKSERVER_PORT` | the port; `0` picks a free one | `7860`, then the next free up to `7959` |
//! | `SPACE_ID`, `SYSTEM=spaces` | set by Hugging Face Spaces: listen on `0.0.0.0` | |
//! | `SPACE_HOST` | set by Spaces: URLs printed as `https://$SPACE_HOST/webhooks/...` | |
//! | `HOOKSERVER_SHARE` | `1`: a public tunnel (bore), see [`WebhooksServer::share`] | `0` |
//! | `HOOKSERVER_SHARE_SERVER` | the tunnel's bore server, `host[:7835]` | `bore.pub` |
//! | `HOOKSERVER_SHARE_SECRET` | the bore server's secret | none |
//! | `HOOKSERVER_DELIVERY_LOG` | how many deliveries the dashboard keeps; `0`: off, see [`WebhooksServer::delivery_log`] | `200` |
//! | `HOOKSERVER_INBOX` | the inbox file of queued endpoints, see [`WebhooksServer::inbox`] | `hookserver-inbox.redb` (in `/data` on a Space with persistent storage) |
//! | `HOOKSERVER_QUEUE_ATTEMPTS`, `_BACKOFF`, `_WORKERS`, `_LIMIT` | attempts, first retry delay, attempts at once, waiting deliveries at most | `8`, `1s`, `4`, `100000` |
//! | `HOOKSERVER_DEDUPE_WINDOW` | how long a `Webhook-Id` is remembered | `7days` |
//! | `EVCXR_IS_RUNTIME` | set by evcxr: `launch()` returns at once, see [`launch()`] | |
//! | `RUST_LOG` | the log filter (`tracing`) | `info` |
//!
//! # Platform notes
//!
//! `#[webhook_endpoint]` registers fns through [`inventory`](https://docs.rs/inventory),
//! which runs small constructors before `main` on Linux, macOS, Windows and the BSDs.
//! On a platform it does not support (some embedded targets; Wasm without a call to
//! `__wasm_call_ctors`), nothing is registered and nothing fails: the server then prints
//! a warning that no endpoint is registered. Use
//! [`WebhooksServer::add_webhook`] there. Iteration order is unspecified, so the server
//! sorts endpoints by path.

mod access;
mod dashboard;
mod deliveries;
mod endpoint;
mod error;
mod http;
mod hub;
mod inbox;
mod logging;
mod main_support;
mod metrics;
pub mod payload;
mod rejection;
mod samples;
mod server;
mod share;

/// The longest timeout or lifetime kept (100 years): a longer one (`Duration::MAX`, read as
/// "no limit") is this, as the clock cannot hold a deadline that far.
pub(crate) const LONGEST: std::time::Duration =
    std::time::Duration::from_secs(100 * 365 * 24 * 3600);

pub use actix_web;
pub use actix_web::web::Bytes;
pub use hookserver_macros::{launch, main, webhook_endpoint};
pub use serde;
pub use serde_json;

pub use access::secret::{SECRET_HEADER, SECRET_QUERY_PARAM};
pub use access::session::DEFAULT_SESSION_TTL;
pub use dashboard::{DEFAULT_EVENT_STREAMS, SECURE_SESSION_COOKIE, SESSION_COOKIE};
pub use deliveries::{
    DEFAULT_DELIVERY_LOG, KEPT_ANSWER, KEPT_BODY, KEPT_HEADERS, KEPT_REFUSED_HEADERS, RECORD_BOUND,
};
pub use endpoint::filter::{Filter, DOCUMENTED_ACTIONS, DOCUMENTED_REPO_TYPES, DOCUMENTED_SCOPES};
pub use endpoint::handler::{Handler, IntoReply};
pub use endpoint::params::{HttpRequest, Json};
pub use endpoint::queued::{
    Attempt, Failure, QueuedHandler, QueuedParam, QueuedReturn, WEBHOOK_ID_HEADER,
};
pub use endpoint::WEBHOOKS_PREFIX;
pub use error::{Error, Result};
pub use hub::{HubDomain, HubRegistration, HubWebhook, OnExit, Watched, DEFAULT_HUB_URL};
pub use inbox::{
    DEFAULT_DEDUPE_WINDOW, DEFAULT_INBOX_FILE, DEFAULT_QUEUE_ATTEMPTS, DEFAULT_QUEUE_BACKOFF,
    DEFAULT_QUEUE_LIMIT, DEFAULT_QUEUE_WORKERS, MAX_QUEUE_BACKOFF,
};
pub use payload::{
    Action, Comment, Discussion, DiscussionChanges, DiscussionStatus, Event, MovedTo, ObjectId,
    PayloadUrl, Repo, RepoType, UpdatedRef, WebhookInfo, WebhookPayload,
};
pub use rejection::Rejection;
pub use server::{
    ServerHandle, WebhooksServer, DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT,
    DEFAULT_HANDLER_TIMEOUT, DEFAULT_PORT, DEFAULT_REQUEST_TIMEOUT, DEFAULT_SHUTDOWN_TIMEOUT,
    LAST_FALLBACK_PORT,
};
pub use share::{BORE_CONTROL_PORT, DEFAULT_SHARE_SERVER};

/// Serves every `#[webhook_endpoint]` fn with the defaults until SIGINT or SIGTERM:
/// `WebhooksServer::new().launch()`.
///
/// In an evcxr notebook it returns at once and leaves the server running; calling it
/// again, after defining more endpoints or redefining one, serves the new set on the same
/// address.
///
/// # Errors
///
/// The errors of [`WebhooksServer::launch`].
///
/// ```no_run
/// #[hookserver::webhook_endpoint]
/// async fn ping() {}
///
/// fn main() -> hookserver::Result<()> {
///     hookserver::launch()
/// }
/// ```
pub fn launch() -> Result<()> {
    WebhooksServer::new().launch()
}

// Not public API. Used by generated code.
#[doc(hidden)]
pub mod __private {
    pub use crate::access::secret::HeaderCheck;
    pub use crate::endpoint::delivery::Delivery;
    pub use crate::endpoint::handler::{
        plain_fn_handler_answers_must_be_send, plain_fn_handler_params_must_be_send, run_blocking,
        HandlerFuture, ReplyViaDisplay, ReplyViaInto, ReplyViaResponder, ReplyWrap,
    };
    pub use crate::endpoint::queued::{queued_keep, queued_outcome, queued_param, CheckFn};
    pub use crate::endpoint::{HandlerFn, Registration};
    pub use crate::logging::{format_delivery, DeliveryLine};
    pub use crate::main_support::{
        main_launch, serve_after_async_main, serve_after_main, MainOutput,
    };
    pub use inventory;
}
