//! The default landing page (`GET /`).

use maud::{html, Markup, DOCTYPE};

use crate::registry::Endpoints;

/// What the page says about the server.
pub(crate) struct LandingInfo<'a> {
    pub(crate) endpoints: &'a Endpoints,
    /// The base URL the Hub must call, such as `https://me-bot.hf.space`.
    pub(crate) base_url: &'a str,
    pub(crate) secret_set: bool,
    pub(crate) on_space: bool,
}

const STYLE: &str = "
:root{color-scheme:light dark;--fg:#1f2328;--bg:#fff;--muted:#59636e;--box:#f6f8fa;--line:#d1d9e0;--accent:#ff9d00}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9198a1;--box:#151b23;--line:#3d444d}}
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:46rem;margin:0 auto;padding:1.5rem 1rem}
h1{font-size:1.6rem;margin:.2rem 0 1rem}h2{font-size:1.15rem;margin-top:1.8rem}
code{font:.9em ui-monospace,SFMono-Regular,Menlo,monospace;background:var(--box);padding:.1em .3em;border-radius:4px;word-break:break-all}
ul{padding:0;list-style:none}li{border:1px solid var(--line);border-radius:8px;padding:.6rem .8rem;margin:.5rem 0;background:var(--box)}
.muted{color:var(--muted)}.on{color:#1a7f37}.off{color:#cf222e}a{color:inherit}
footer{margin-top:2rem;font-size:.85rem;color:var(--muted)}
";

/// Renders the page; every value is escaped by maud.
pub(crate) fn render(info: &LandingInfo<'_>) -> String {
    page(info).into_string()
}

fn page(info: &LandingInfo<'_>) -> Markup {
    let count = info.endpoints.len();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "hookserver: Hugging Face webhooks" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                main {
                    h1 { "This is an app to process 🤗 Webhooks" }
                    p {
                        "Webhooks are a foundation for MLOps-related features. They allow you to listen for new "
                        "changes on specific repos or to all repos belonging to particular set of users/organizations. "
                        "Check out this " a href="https://huggingface.co/docs/hub/webhooks" { "guide" }
                        " to get to know more about webhooks on the Hugging Face Hub."
                    }
                    h2 { (count) " webhook(s) are registered:" }
                    @if count == 0 {
                        p.off { "No webhook endpoint is registered. Add one with " code { "#[webhook_endpoint]" } "." }
                    }
                    ul {
                        @for endpoint in info.endpoints.iter() {
                            li {
                                code { "POST " (info.base_url) (endpoint.path) }
                                br;
                                span.muted { "handled by " code { (endpoint.name) } }
                            }
                        }
                    }
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
                    footer { "hookserver " (env!("CARGO_PKG_VERSION")) " · " a href="/healthz" { "health" } }
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
