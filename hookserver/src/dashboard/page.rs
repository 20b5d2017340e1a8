//! The default landing page (`GET /`) and dashboard (`GET /dashboard`).

use maud::{html, Markup, DOCTYPE};

use crate::endpoint::Endpoints;

/// Which page to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// For visitors without the secret (when one is set): the endpoints and the login.
    Public(Login),
    /// No secret is set and the visitor is on another machine: the endpoints, and how to
    /// see the deliveries.
    LocalOnly,
    /// The whole dashboard: test deliveries, recent deliveries, their details.
    Full,
}

/// What the public page says about logging in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Login {
    /// The login form.
    Form,
    /// The form, after a wrong secret.
    WrongSecret,
    /// The form, after too many wrong secrets from this address.
    Throttled,
    /// No form: the page came over plain HTTP from another machine, where the secret and
    /// the session would travel in clear. It offers the bearer over HTTPS instead.
    PlainHttp,
}

/// What the page says about the server.
pub(crate) struct LandingInfo<'a> {
    pub(crate) endpoints: &'a Endpoints,
    /// The base URL the Hub must call, such as `https://me-bot.hf.space`.
    pub(crate) base_url: &'a str,
    pub(crate) secret_set: bool,
    pub(crate) on_space: bool,
    pub(crate) view: View,
}

/// Renders the page; every value is escaped by maud. Style and script are served from
/// `/assets/` (the page's Content-Security-Policy allows nothing inline).
pub(crate) fn render(info: &LandingInfo<'_>) -> String {
    page(info).into_string()
}

fn page(info: &LandingInfo<'_>) -> Markup {
    let count = info.endpoints.len();
    let full = info.view == View::Full;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { "hookserver: Hugging Face webhooks" }
                // No request for /favicon.ico (which would answer 404).
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/assets/hookserver.css";
                script src="/assets/hookserver.js" defer {}
            }
            body data-dashboard=(if full { "on" } else { "off" }) {
                header.top {
                    div.wrap {
                        span.brand { "🤗 hookserver" }
                        span.muted.version { "v" (env!("CARGO_PKG_VERSION")) }
                        @if full && info.secret_set {
                            form.logout method="post" action="/logout" {
                                input type="hidden" name="next" value="/";
                                button.link type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main.wrap {
                    h1 { "This is an app to process 🤗 Webhooks" }
                    p.intro {
                        "Webhooks are a foundation for MLOps-related features. They allow you to listen for new "
                        "changes on specific repos or to all repos belonging to particular set of users/organizations. "
                        "Check out this " a href="https://huggingface.co/docs/hub/webhooks" { "guide" }
                        " to get to know more about webhooks on the Hugging Face Hub."
                    }
                    section #webhooks {
                        h2 { (count) " webhook(s) are registered:" }
                        @if count == 0 {
                            p.off { "No webhook endpoint is registered. Add one with " code { "#[webhook_endpoint]" } "." }
                        }
                        ul.endpoints {
                            @for endpoint in info.endpoints.iter() {
                                @let url = format!("{}{}", info.base_url, endpoint.path);
                                li.endpoint {
                                    div.url-row {
                                        code.url { "POST " span.url-text { (url) } }
                                        button.copy type="button" data-copy=(url) title="Copy the URL" { "Copy" }
                                    }
                                    // A closure has no name worth showing (`{{closure}}`).
                                    @if !endpoint.name.contains('{') {
                                        span.muted { "handled by " code { (endpoint.name) } }
                                    }
                                    @if endpoint.queue.is_some() {
                                        span.tag title="Stored, answered 202, run with retries" { "queued" }
                                    }
                                    @if full {
                                        (test_form(&endpoint.path[crate::endpoint::WEBHOOKS_PREFIX.len()..]))
                                    }
                                }
                            }
                        }
                    }
                    @match info.view {
                        View::Full => {
                            @if info.endpoints.any_queued() { (inbox()) }
                            (deliveries())
                        }
                        View::Public(state) => (login(state, info)),
                        View::LocalOnly => (local_only()),
                    }
                    section #secret {
                        h2 { "Secret" }
                        @if info.secret_set {
                            p.on {
                                "A secret is set: every delivery must carry it in the " code { "X-Webhook-Secret" }
                                " header (or a " code { "secret" } " query parameter)."
                            }
                        } @else {
                            p.off {
                                "No secret is set: the endpoints are open to everyone. Set "
                                code { "WEBHOOK_SECRET" } " or call " code { ".webhook_secret(...)" } "."
                            }
                        }
                    }
                    section #next-step {
                        h2 { "Next step" }
                        p {
                            "Go to " a href="https://huggingface.co/settings/webhooks" { "https://huggingface.co/settings/webhooks" }
                            " to setup your webhooks, with the URL of an endpoint above."
                        }
                        @if info.on_space {
                            p {
                                "This app is running on a Space: the Hub reaches it at " code { (info.base_url) } "."
                            }
                        } @else {
                            p.muted {
                                "Your app is running locally, at " code { (info.base_url) } ". The Hub cannot reach a "
                                "local address: open a public tunnel with " code { "HOOKSERVER_SHARE=1" }
                                " (or " code { ".share(true)" } "), or deploy the bot to a Space."
                            }
                        }
                    }
                    footer { "hookserver " (env!("CARGO_PKG_VERSION")) " · " a href="/healthz" { "health" } }
                }
            }
        }
    }
}

/// The form that sends a test delivery to the endpoint `/webhooks/{name}`.
fn test_form(name: &str) -> Markup {
    html! {
        details.test {
            summary { "Send a test delivery" }
            form.test-form data-endpoint=(name) {
                label {
                    "Payload "
                    select.sample name="sample" {
                        @for (sample, _) in crate::samples::SAMPLES {
                            option value=(sample) { (sample) }
                        }
                        option value="" { "Pasted JSON" }
                    }
                }
                textarea.body name="body" rows="10" spellcheck="false" aria-label="Payload JSON" {}
                div.actions {
                    button type="submit" { "Send" }
                    output.answer {}
                }
            }
        }
    }
}

/// The inbox of queued endpoints: counts, the newest deliveries with their state, and
/// the actions on dead letters; filled by the script.
fn inbox() -> Markup {
    html! {
        section #inbox {
            h2 { "Inbox " span.muted #inbox-counts {} }
            p.muted {
                "Queued endpoints answer 202 once a delivery is stored, then run it here with retries. "
                "A dead letter failed every attempt: retry it now, or discard it."
            }
            div.table-wrap {
                table #inbox-list {
                    thead {
                        tr {
                            th { "#" } th { "Received" } th { "Endpoint" } th { "Webhook-Id" }
                            th { "State" } th.num { "Attempts" } th { "Next / last error" } th {}
                        }
                    }
                    tbody {}
                }
            }
            output #inbox-result {}
        }
    }
}

/// The deliveries list and the detail view, filled by the script.
fn deliveries() -> Markup {
    html! {
        section #deliveries {
            h2 { "Recent deliveries " span #live.live data-state="connecting" { "connecting…" } }
            p #log-note.muted {}
            div.table-wrap {
                table #delivery-list {
                    thead {
                        tr {
                            th { "#" } th { "Time" } th { "Endpoint" } th { "Event" }
                            th { "Repo" } th { "Status" } th.num { "Duration" }
                        }
                    }
                    tbody {}
                }
            }
            p #empty.muted {
                "No delivery yet: send a test delivery above, or configure the webhook on the Hub."
            }
        }
        section #detail hidden {
            h2 #detail-title {}
            div.actions {
                button #redeliver type="button" { "Redeliver" }
                output #redeliver-result {}
            }
            h3 { "Request" }
            p #detail-request.muted {}
            div.table-wrap { table #detail-headers.kv { tbody {} } }
            h3 { "Body" }
            pre #detail-body {}
            h3 { "Answer" }
            pre #detail-answer {}
        }
    }
}

/// Without a secret, to another machine: the deliveries stay private.
fn local_only() -> Markup {
    html! {
        section #login {
            h2 { "Recent deliveries" }
            p {
                "Deliveries carry private data. Without a webhook secret they are shown only on "
                "the machine the bot runs on (open " code { "http://127.0.0.1:PORT/" } " there). "
                "To see them from elsewhere, set " code { "WEBHOOK_SECRET" } " and log in here."
            }
        }
    }
}

/// The login form, for visitors without the secret.
fn login(state: Login, info: &LandingInfo<'_>) -> Markup {
    html! {
        section #login {
            h2 { "Recent deliveries" }
            p {
                "Deliveries carry private data: enter the webhook secret to see them, "
                "send test deliveries and replay them."
            }
            @if state == Login::PlainHttp {
                p.off role="alert" {
                    "This page came over plain HTTP from another machine: a login here would send "
                    "the secret, and then the session, in clear. Open the dashboard over HTTPS, or on "
                    "the machine the bot runs on; a script can send "
                    code { "Authorization: Bearer <secret>" } " to " code { "/api/deliveries" }
                    " over a connection it trusts."
                }
            } @else {
                form.login method="post" action="/login" {
                    label for="login-secret" { "Webhook secret" }
                    div.actions {
                        input #login-secret type="password" name="secret" autocomplete="current-password" required;
                        input type="hidden" name="next" value="/";
                        button type="submit" { "Open the dashboard" }
                    }
                    @if state == Login::WrongSecret {
                        p.off role="alert" { "Wrong secret." }
                    }
                    @if state == Login::Throttled {
                        p.off role="alert" { "Too many wrong secrets from your address: wait a little, then try again." }
                    }
                }
            }
            @if info.on_space {
                p.muted {
                    "On the Space's page on huggingface.co, this app is shown in a frame, where the "
                    "browser keeps no session: log in at "
                    a href={ (info.base_url) "/dashboard" } target="_blank" rel="noopener" { (info.base_url) "/dashboard" }
                    "."
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(base_url: &str, on_space: bool) -> String {
        render(&LandingInfo {
            endpoints: &Endpoints::default(),
            base_url,
            secret_set: false,
            on_space,
            view: View::Full,
        })
    }

    #[test]
    fn the_next_step_depends_on_where_the_app_runs() {
        let local = rendered("http://127.0.0.1:7860", false);
        assert!(local.contains("HOOKSERVER_SHARE=1"), "{local}");
        assert!(local.contains("deploy the bot to a Space"));
        let space = rendered("https://me-bot.hf.space", true);
        assert!(space.contains("running on a Space"));
        assert!(!space.contains("HOOKSERVER_SHARE"));
    }

    #[test]
    fn values_are_escaped() {
        let page = rendered("https://x.hf.space/<script>alert(1)</script>", true);
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}
