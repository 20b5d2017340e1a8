//! Procedural macros of [hookserver](https://docs.rs/hookserver).
//!
//! Depend on `hookserver`, not on this crate: it re-exports every macro here, and the
//! code the macros generate names `::hookserver` paths.

//!
//! Each macro runs three stages, one module each: `parse` (the attribute's syntax),
//! `valid` (what it means, every mistake spanned on the user's token; out comes a
//! validated endpoint or `fn main`) and `expand` (the generated code).

mod expand;
mod parse;
mod valid;

use proc_macro::TokenStream;
use quote::ToTokens;

/// Registers a fn as a webhook endpoint, served at `POST /webhooks/NAME`.
///
/// # Syntax
///
/// ```text
/// #[webhook_endpoint]                        // POST /webhooks/<fn name>
/// #[webhook_endpoint("say_hello")]           // POST /webhooks/say_hello
/// #[webhook_endpoint(path = "/say_hello/")]  // the same: '/' trimmed at both ends
/// ```
///
/// # Attributes
///
/// - `"name"` or `path = "name"`: the path under `/webhooks/`. Without it, the fn's name.
///   A path is one or more `/`-separated segments of visible ASCII other than
///   `{ } ? # % \`.
///
/// # Parameters and return values
///
/// In any order, zero or more of: `WebhookPayload` (the Hub's payload, parsed and validated),
/// `hookserver::HttpRequest`, `hookserver::Json<T>`, the raw body as `Bytes` or `String`,
/// and, in an `async fn`, any actix-web extractor. The fn may return `()`,
/// `serde_json::Value`, `Json<T>`, any actix-web `Responder`, or `Result<T, E>` (500 with
/// `{"error": "<E's Display>"}` on `Err`, or E's own response when E is an actix-web error).
///
/// An `async fn` runs on the server's async workers; a plain `fn` runs on the blocking
/// thread pool, so a slow sync handler never delays other deliveries. A plain fn's
/// parameters and return value must be `Send + 'static`.
///
/// # Generated items
///
/// The fn stays as written, callable by its name. Beside it stands a hidden
/// `const __hookserver_endpoint_NAME: ()` that holds an adapter and an
/// `inventory::submit!` of its registration; `WebhooksServer::new()` collects every
/// registration of the program.
///
/// # Errors
///
/// Compile errors, spanned on the faulty token: on an item that is not a fn, an `unsafe`
/// or generic fn, a `where` clause, a method taking `self`, a reference, `impl Trait` or
/// `_` parameter, an empty path, a path with a space, `{` or `//` (the message shows the
/// path with a caret under the bad character), a path that is not a string literal, an
/// unknown key, and a path given twice.
///
/// # Examples
///
/// ```no_run
/// use hookserver::{webhook_endpoint, Action, RepoType, WebhookPayload};
///
/// #[webhook_endpoint]
/// async fn trigger_training(payload: WebhookPayload) {
///     if payload.repo.r#type == RepoType::Dataset && payload.event.action == Action::Update {
///         // start a training job
///     }
/// }
///
/// #[webhook_endpoint("say_hello")]
/// fn hello(payload: WebhookPayload) -> hookserver::serde_json::Value {
///     hookserver::serde_json::json!({ "hello": payload.repo.name })
/// }
///
/// hookserver::main!();
/// ```
///
/// A misplaced attribute is a compile error:
///
/// ```compile_fail
/// #[hookserver::webhook_endpoint]
/// struct NotAFunction;
/// # fn main() {}
/// ```
#[proc_macro_attribute]
pub fn webhook_endpoint(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    let args = parse::EndpointArgs::parse_tokens(args.into());
    match valid::endpoint(args, item.clone()) {
        Ok(endpoint) => expand::webhook_endpoint(&endpoint).into(),
        Err(err) => with_error(item, &err),
    }
}

/// Generates `fn main` that serves every `#[webhook_endpoint]` fn of the program.
///
/// # Syntax
///
/// `hookserver::main!();` at the top level of the binary's root file, and nothing else:
/// a whole bot is its endpoints plus this line.
///
/// # Generated items
///
/// `fn main() -> std::process::ExitCode`, which calls `hookserver::launch()`, prints the
/// error and exits with a failure code if it fails, and exits 0 after SIGINT or SIGTERM.
///
/// # Examples
///
/// ```no_run
/// #[hookserver::webhook_endpoint]
/// async fn ping() -> &'static str {
///     "pong"
/// }
///
/// hookserver::main!();
/// ```
#[proc_macro]
pub fn main(input: TokenStream) -> TokenStream {
    match valid::main_bang(&input.into()) {
        Ok(()) => expand::main_bang().into(),
        // A stub `main` keeps the error above the only one.
        Err(err) => with_error(quote::quote! { fn main() {} }, &err),
    }
}

/// Runs the body of the user's `fn main` or `async fn main`, then serves every
/// `#[webhook_endpoint]` fn, unless the body already launched a server.
///
/// SPEC.md calls this attribute `#[hookserver::main]`; stable Rust cannot give an
/// attribute and a function-like macro (`hookserver::main!()`) the same name in one crate
/// (E0252), so the attribute is `#[hookserver::launch]`: "launch after `main`".
///
/// # Syntax
///
/// `#[hookserver::launch]` above `fn main()` or `async fn main()`, which may return `()` or
/// `Result<(), E>` where `E: From<hookserver::Error>`.
///
/// # Semantics
///
/// The body runs first. If it returns `Err`, or it launched a server itself (with
/// `launch()` or `launch_background()`), `main` returns what the body returned.
/// Otherwise `main` calls `hookserver::launch()`. An `async fn main` runs on an actix-web
/// (tokio) runtime that keeps running while the server serves, so tasks it spawned go on.
///
/// # Examples
///
/// ```no_run
/// #[hookserver::webhook_endpoint]
/// async fn ping() {}
///
/// #[hookserver::launch]
/// fn main() {
///     println!("preparing the bot");
/// }
/// ```
#[proc_macro_attribute]
pub fn launch(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match valid::launch(&args.into(), item.clone()) {
        Ok(launch) => expand::launch(&launch).into(),
        Err(err) => with_error(item, &err),
    }
}

/// The item as the user wrote it, and the error beside it: the rest of the crate still
/// type-checks, so the error is the only one.
fn with_error(item: proc_macro2::TokenStream, err: &syn::Error) -> TokenStream {
    let mut tokens = err.to_compile_error();
    item.to_tokens(&mut tokens);
    tokens.into()
}
