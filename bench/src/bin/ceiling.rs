//! The ceiling of the load benchmark: a hand-written actix-web receiver doing the work of the
//! bench bot and nothing else, so that `scripts/bench.sh` can say how close hookserver comes
//! to what actix-web allows.
//!
//! - `GET /` answers a small HTML page (the harness waits for its 200);
//! - `POST /webhooks/test_webhook` checks `X-Webhook-Secret` first (401 missing, 403 wrong),
//!   deserializes the whole body into typed structs shaped like `WebhookPayload` (422 with
//!   `{"detail": ...}` when it cannot), and answers `{"scope": <event.scope>}`.
//!
//! Settings: `PORT` (7863), `SECRET` (`bench_secret`), `WORKERS` (`1`; `default` keeps
//! actix-web's, one per CPU the process may run on). Built with the workspace's release
//! profile, like the bots it is compared with.
#![allow(dead_code, missing_docs)]

use actix_web::http::header::ContentType;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    Create,
    Delete,
    Move,
    Update,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Dataset,
    Model,
    Space,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Closed,
    Draft,
    Open,
    Merged,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
struct Links {
    web: String,
    api: Option<String>,
}

#[derive(Deserialize)]
struct Event {
    action: Action,
    scope: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Repo {
    #[serde(rename = "type")]
    kind: Kind,
    name: String,
    id: String,
    private: bool,
    url: Links,
    owner: Id,
    head_sha: Option<String>,
    subdomain: Option<String>,
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Changes {
    base: String,
    merge_commit_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Discussion {
    id: String,
    num: i64,
    author: Id,
    url: Links,
    title: String,
    is_pull_request: bool,
    status: Status,
    changes: Option<Changes>,
    pinned: Option<bool>,
}

#[derive(Deserialize)]
struct Comment {
    id: String,
    author: Id,
    hidden: bool,
    content: Option<String>,
    url: Links,
}

#[derive(Deserialize)]
struct Hook {
    id: String,
    version: u8,
}

#[derive(Deserialize)]
struct MovedTo {
    name: String,
    owner: Id,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdatedRef {
    r#ref: String,
    old_sha: Option<String>,
    new_sha: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    event: Event,
    repo: Repo,
    discussion: Option<Discussion>,
    comment: Option<Comment>,
    webhook: Hook,
    moved_to: Option<MovedTo>,
    updated_refs: Option<Vec<UpdatedRef>>,
}

#[derive(Serialize)]
struct Scope<'a> {
    scope: &'a str,
}

const PAGE: &str = "<!doctype html><title>Webhooks</title>\
<h1>Webhooks</h1><p>POST /webhooks/test_webhook</p>";

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(PAGE)
}

async fn test_webhook(
    request: HttpRequest,
    body: web::Bytes,
    secret: web::Data<String>,
) -> HttpResponse {
    let Some(given) = request.headers().get("x-webhook-secret") else {
        return HttpResponse::Unauthorized()
            .json(serde_json::json!({ "error": "x-webhook-secret header not set." }));
    };
    if given.as_bytes() != secret.as_bytes() {
        return HttpResponse::Forbidden()
            .json(serde_json::json!({ "error": "Invalid webhook secret." }));
    }
    match serde_json::from_slice::<Payload>(&body) {
        Ok(payload) if payload.webhook.version == 3 => HttpResponse::Ok().json(Scope {
            scope: &payload.event.scope,
        }),
        Ok(_) => HttpResponse::UnprocessableEntity()
            .json(serde_json::json!({ "detail": "webhook.version must be 3" })),
        Err(err) => HttpResponse::UnprocessableEntity()
            .json(serde_json::json!({ "detail": err.to_string() })),
    }
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn main() -> std::io::Result<()> {
    let port: u16 = setting("PORT", "7863").parse().expect("PORT is a port");
    let secret = web::Data::new(setting("SECRET", "bench_secret"));
    let workers = setting("WORKERS", "1");
    actix_web::rt::System::new().block_on(async move {
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(secret.clone())
                .route("/", web::get().to(page))
                .route("/webhooks/test_webhook", web::post().to(test_webhook))
        })
        .bind(("127.0.0.1", port))?;
        if workers != "default" {
            server = server.workers(workers.parse().expect("WORKERS is a number or `default`"));
        }
        eprintln!("ceiling: listening on 127.0.0.1:{port}, workers {workers}");
        server.run().await
    })
}
