//! A bot that registers its own webhook on the Hub: nobody copies a URL by hand, and a
//! tunnel's new URL is registered at each launch.
//!
//! ```text
//! HF_TOKEN=hf_... WEBHOOK_SECRET=$(openssl rand -hex 16) HOOKSERVER_SHARE=1 \
//!     cargo run --example hub_registered -- me/my-dataset
//! ```
//!
//! It watches the dataset given on the command line (repo events only), prints
//! `Registered on the Hub: webhook ID watching dataset me/my-dataset (repo) -> URL`, and
//! disables that webhook again when it stops (Ctrl-C), since a tunnel's URL does not
//! come back. On a Space, its `https://` URL is registered instead and kept.

use hookserver::{
    webhook_endpoint, HubDomain, HubRegistration, Watched, WebhookPayload, WebhooksServer,
};

/// `POST /webhooks/dataset_changed`: a commit reached the watched dataset.
#[webhook_endpoint(scope = "repo.content")]
async fn dataset_changed(payload: WebhookPayload) -> String {
    println!("{} changed", payload.repo.name);
    format!("seen {}", payload.repo.name)
}

fn main() -> hookserver::Result<()> {
    let dataset = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "me/my-dataset".to_owned());
    WebhooksServer::new()
        .register_on_hub(
            HubRegistration::new()
                .watch(Watched::dataset(dataset))
                .domain(HubDomain::Repo),
        )
        .launch()
}
