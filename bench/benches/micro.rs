//! Micro-benchmarks: payload parsing (each Hub sample, against plain `serde_json` into
//! closed structs), the error path, the secret check, and a whole delivery through the
//! in-memory app with 1, 100 and 1,000 endpoints, and the delivery log line.
//!
//! Run with `cargo bench -p hookserver-bench --bench micro`.
#![allow(missing_docs, dead_code, unreachable_pub)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hookserver::actix_web::{test, App};
use hookserver::{WebhookPayload, WebhooksServer};
use serde::Deserialize;

/// The same payload as plain structs with closed enums and no path tracking: what a
/// hand-written receiver (the ceiling, `src/bin/ceiling.rs`) parses.
mod plain {
    use super::Deserialize;

    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Action {
        Create,
        Delete,
        Move,
        Update,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum RepoType {
        Dataset,
        Model,
        Space,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Status {
        Closed,
        Draft,
        Open,
        Merged,
    }

    #[derive(Deserialize)]
    pub struct Id {
        pub id: String,
    }

    #[derive(Deserialize)]
    pub struct Url {
        pub web: String,
        pub api: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct Event {
        pub action: Action,
        pub scope: String,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Changes {
        pub base: String,
        pub merge_commit_id: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct Comment {
        pub id: String,
        pub author: Id,
        pub hidden: bool,
        pub content: Option<String>,
        pub url: Url,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Discussion {
        pub id: String,
        pub num: u64,
        pub author: Id,
        pub url: Url,
        pub title: String,
        pub is_pull_request: bool,
        pub status: Status,
        pub changes: Option<Changes>,
        pub pinned: Option<bool>,
    }

    #[derive(Deserialize)]
    pub struct Repo {
        pub id: String,
        pub owner: Id,
        #[serde(rename = "headSha")]
        pub head_sha: Option<String>,
        pub name: String,
        pub private: bool,
        pub subdomain: Option<String>,
        pub tags: Option<Vec<String>>,
        #[serde(rename = "type")]
        pub kind: RepoType,
        pub url: Url,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct UpdatedRef {
        pub r#ref: String,
        pub old_sha: Option<String>,
        pub new_sha: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct Webhook {
        pub id: String,
        pub version: u8,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Payload {
        pub event: Event,
        pub repo: Repo,
        pub discussion: Option<Discussion>,
        pub comment: Option<Comment>,
        pub webhook: Webhook,
        pub updated_refs: Option<Vec<UpdatedRef>>,
    }
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hookserver/samples");
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    all.sort();
    all
}

fn payload_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for (name, body) in fixtures() {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("hookserver", &name), &body, |b, body| {
            b.iter(|| WebhookPayload::from_slice(black_box(body)).unwrap());
        });
        group.bench_with_input(BenchmarkId::new("plain_serde", &name), &body, |b, body| {
            b.iter(|| serde_json::from_slice::<plain::Payload>(black_box(body)).unwrap());
        });
    }
    group.finish();

    // The error path: a field of the wrong type deep in the payload.
    let (_, body) = fixtures().into_iter().next().unwrap();
    let bad = String::from_utf8(body)
        .unwrap()
        .replace("\"num\": 19", "\"num\": \"nineteen\"")
        .into_bytes();
    let mut group = c.benchmark_group("parse_error");
    group.bench_function("hookserver_with_path", |b| {
        b.iter(|| WebhookPayload::from_slice(black_box(&bad)).unwrap_err());
    });
    group.bench_function("plain_serde", |b| {
        b.iter(|| serde_json::from_slice::<plain::Payload>(black_box(&bad)).is_err());
    });
    group.finish();
}

fn secret_check(c: &mut Criterion) {
    let secret = "s".repeat(32);
    let check = hookserver::__private::HeaderCheck::new(&secret).unwrap();
    let mut group = c.benchmark_group("secret");
    for matching in [0usize, 16, 31] {
        let mut given = secret.clone().into_bytes();
        for byte in &mut given[matching..] {
            *byte = b'x';
        }
        group.bench_with_input(
            BenchmarkId::new("wrong_with_leading_bytes_matching", matching),
            &given,
            |b, given| b.iter(|| assert!(!check.matches(black_box(given)))),
        );
    }
    group.bench_function("right", |b| {
        b.iter(|| assert!(check.matches(black_box(secret.as_bytes()))));
    });
    group.finish();
}

fn routing(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_, body) = fixtures().into_iter().next().unwrap();
    let mut group = c.benchmark_group("delivery_in_memory");
    for count in [1usize, 100, 1000] {
        let mut server = WebhooksServer::empty().webhook_secret("bench_secret");
        for i in 0..count {
            server
                .add_webhook(
                    &format!("endpoint_{i:04}"),
                    |payload: WebhookPayload| async move {
                        hookserver::serde_json::json!({ "scope": payload.event.scope })
                    },
                )
                .unwrap();
        }
        let local = tokio::task::LocalSet::new();
        let app = local.block_on(&runtime, async {
            test::init_service(App::new().configure(server.configure().unwrap())).await
        });
        let uri = format!("/webhooks/endpoint_{:04}", count - 1);
        group.bench_function(BenchmarkId::new("endpoints", count), |b| {
            b.iter(|| {
                let request = test::TestRequest::post()
                    .uri(&uri)
                    .insert_header(("x-webhook-secret", "bench_secret"))
                    .set_payload(body.clone())
                    .to_request();
                let response = local.block_on(&runtime, test::call_service(&app, request));
                assert!(response.status().is_success());
            });
        });
    }
    group.finish();
}

/// One delivery log line: through `tracing-subscriber`'s full format (into a sink), and as
/// hookserver writes it with its own subscriber (the same bytes, straight into a buffer).
fn log_line(c: &mut Criterion) {
    let line = hookserver::__private::DeliveryLine {
        path: "/webhooks/bench",
        status: 200,
        latency_us: 37,
        scope: "repo",
        action: "update",
    };
    let mut group = c.benchmark_group("log_line");
    let full = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(full, || {
        group.bench_function("tracing_subscriber_full", |b| {
            b.iter(|| {
                let line = black_box(&line);
                tracing::info!(target: "hookserver::delivery", path = %line.path, status = line.status, latency_us = line.latency_us, scope = line.scope, action = line.action, "delivery");
            });
        });
    });
    let mut buffer = Vec::with_capacity(4096);
    group.bench_function("hookserver_direct", |b| {
        b.iter(|| {
            buffer.clear();
            hookserver::__private::format_delivery(
                &mut buffer,
                std::time::SystemTime::now(),
                black_box(&line),
            );
        });
    });
    group.finish();
}

criterion_group!(benches, payload_parsing, secret_check, routing, log_line);
criterion_main!(benches);
