//! A stand-in of the Hub's webhook settings API, on a free loopback port: the routes that
//! `huggingface_hub`'s `list_webhooks`, `create_webhook`, `update_webhook`,
//! `enable_webhook`, `disable_webhook` and `delete_webhook` call, with their request and
//! answer shapes (`hf_api.py`). It checks the token and the bodies strictly, keeps its
//! webhooks in memory, records every request, and fails on demand.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use hookserver::actix_web::{self, web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// One request the stand-in received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    /// The path after `/api/settings/webhooks` (`""`, `/ID`, `/ID/enable`, ...).
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Option<Value>,
}

impl Call {
    /// `METHOD path`, to compare sequences of calls.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Debug, Default)]
struct State {
    token: String,
    webhooks: Vec<Value>,
    calls: Vec<Call>,
    /// Every request answers this status and message.
    fail_with: Option<(u16, String)>,
    /// The next create finds that another replica created the same URL first: 409.
    conflict_on_create: bool,
    /// Every request answers 200 with a body that is not JSON.
    garbage: bool,
    /// New webhooks get an ID that climbs out of the route (`../../x`).
    hostile_ids: bool,
    next_id: u64,
}

/// The stand-in Hub, stopped when dropped.
pub struct StandInHub {
    /// `http://127.0.0.1:PORT`: what `HF_ENDPOINT` names.
    pub url: String,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl StandInHub {
    /// Starts a stand-in that accepts `Bearer {token}`.
    pub fn start(token: &str) -> StandInHub {
        let state = Arc::new(Mutex::new(State {
            token: token.to_owned(),
            ..State::default()
        }));
        let shared = web::Data::new(Arc::clone(&state));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(shared.clone())
                        .app_data(web::PayloadConfig::new(1 << 20))
                        .default_service(web::to(answer))
                })
                .workers(1)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .unwrap();
                let port = server.addrs()[0].port();
                let server = server.run();
                tx.send((port, server.handle())).unwrap();
                let _ = server.await;
            });
        });
        let (port, handle) = rx.recv().unwrap();
        StandInHub {
            url: format!("http://127.0.0.1:{port}"),
            state,
            handle,
            thread: Some(thread),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// The requests received since the last call, in order.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.state().calls)
    }

    /// The webhooks it holds.
    pub fn webhooks(&self) -> Vec<Value> {
        self.state().webhooks.clone()
    }

    /// Adds a webhook as the Hub's settings page would have; returns its ID.
    pub fn insert(&self, url: &str, disabled: bool) -> String {
        let mut state = self.state();
        let id = new_id(&mut state);
        state.webhooks.push(json!({
            "id": id,
            "url": url,
            "watched": [{"type": "model", "name": "someone/else"}],
            "domains": ["discussion"],
            "secret": "old-secret",
            "disabled": disabled,
        }));
        id
    }

    /// Disables a webhook, as the Hub does to one that keeps failing.
    pub fn suspend(&self, id: &str) {
        let mut state = self.state();
        let webhook = state.webhooks.iter_mut().find(|w| w["id"] == id).unwrap();
        webhook["disabled"] = json!(true);
    }

    /// Every request answers `status` with `{"error": message}` from now on (`None`: not).
    pub fn fail_with(&self, failure: Option<(u16, &str)>) {
        self.state().fail_with = failure.map(|(s, m)| (s, m.to_owned()));
    }

    /// The next create meets a webhook for the same URL made by another replica: 409.
    pub fn conflict_on_next_create(&self) {
        self.state().conflict_on_create = true;
    }

    /// New webhooks get an ID that is a path out of the route (`false`: hexadecimal).
    pub fn hostile_ids(&self, hostile: bool) {
        self.state().hostile_ids = hostile;
    }

    /// Every request answers 200 with a body that is not a webhook (`false`: not).
    pub fn answer_garbage(&self, garbage: bool) {
        self.state().garbage = garbage;
    }
}

impl Drop for StandInHub {
    fn drop(&mut self) {
        stop_now(&self.handle);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Stops the stand-in at once, from outside its runtime.
fn stop_now(handle: &actix_web::dev::ServerHandle) {
    let stop = handle.stop(false);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(stop);
}

fn new_id(state: &mut State) -> String {
    state.next_id += 1;
    if state.hostile_ids {
        return format!("../../settings/tokens/{}", state.next_id);
    }
    format!("{:024x}", 0x6565_0000_0000_u64 + state.next_id)
}

fn error(status: u16, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(json!({ "error": message }))
}

/// Checks a create or update body as the Hub would; `Err` is the 400's message.
fn check_spec(body: &Option<Value>) -> Result<Value, String> {
    let body = body.clone().ok_or("a JSON body is required")?;
    let object = body.as_object().ok_or("the body must be an object")?;
    for key in object.keys() {
        if !["watched", "url", "domains", "secret"].contains(&key.as_str()) {
            return Err(format!("unknown field {key}"));
        }
    }
    let watched = object["watched"]
        .as_array()
        .ok_or("watched must be a list")?;
    for item in watched {
        let kind = item["type"].as_str().ok_or("watched[].type is required")?;
        if !["user", "org", "model", "dataset", "space", "bucket"].contains(&kind) {
            return Err(format!("watched[].type {kind} is not valid"));
        }
        item["name"].as_str().ok_or("watched[].name is required")?;
        if item.as_object().unwrap().len() != 2 {
            return Err("watched[] has only type and name".to_owned());
        }
    }
    let url = object
        .get("url")
        .and_then(Value::as_str)
        .ok_or("url is required")?;
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err("url must be an http(s) URL".to_owned());
    }
    let domains = object["domains"]
        .as_array()
        .ok_or("domains must be a list")?;
    for domain in domains {
        if !matches!(domain.as_str(), Some("repo" | "discussion")) {
            return Err(format!("domain {domain} is not valid"));
        }
    }
    if let Some(secret) = object.get("secret") {
        secret.as_str().ok_or("secret must be a string")?;
    }
    Ok(body)
}

async fn answer(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let Some(path) = request.path().strip_prefix("/api/settings/webhooks") else {
        return error(404, "Not Found");
    };
    let call = Call {
        method: request.method().to_string(),
        path: path.to_owned(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).ok(),
    };
    let mut state = state.lock().unwrap();
    state.calls.push(call.clone());
    if call.authorization != Some(format!("Bearer {}", state.token)) {
        return error(401, "Invalid credentials in Authorization header");
    }
    if let Some((status, message)) = &state.fail_with {
        return error(*status, message);
    }
    if state.garbage {
        return HttpResponse::Ok().body("<html>maintenance</html>");
    }
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let found = |state: &State, id: &str| state.webhooks.iter().position(|w| w["id"] == id);
    match (call.method.as_str(), segments.as_slice()) {
        ("GET", []) => HttpResponse::Ok().json(&state.webhooks),
        ("POST", []) => {
            let spec = match check_spec(&call.body) {
                Ok(spec) => spec,
                Err(message) => return error(400, &message),
            };
            let mut webhook = spec;
            webhook["id"] = json!(new_id(&mut state));
            webhook["disabled"] = json!(false);
            state.webhooks.push(webhook.clone());
            if std::mem::take(&mut state.conflict_on_create) {
                return error(409, "A webhook with this URL already exists");
            }
            HttpResponse::Ok().json(json!({ "webhook": webhook }))
        }
        ("POST", [id]) => {
            let Some(at) = found(&state, id) else {
                return error(404, "Webhook not found");
            };
            let spec = match check_spec(&call.body) {
                Ok(spec) => spec,
                Err(message) => return error(400, &message),
            };
            let webhook = &mut state.webhooks[at];
            for (key, value) in spec.as_object().unwrap() {
                webhook[key] = value.clone();
            }
            HttpResponse::Ok().json(json!({ "webhook": webhook }))
        }
        ("POST", [id, action @ ("enable" | "disable")]) => {
            let Some(at) = found(&state, id) else {
                return error(404, "Webhook not found");
            };
            if call.body.is_some() {
                return error(400, "no body expected");
            }
            let webhook = &mut state.webhooks[at];
            webhook["disabled"] = json!(*action == "disable");
            HttpResponse::Ok().json(json!({ "webhook": webhook }))
        }
        ("DELETE", [id]) => {
            let Some(at) = found(&state, id) else {
                return error(404, "Webhook not found");
            };
            state.webhooks.remove(at);
            HttpResponse::Ok().json(json!({}))
        }
        _ => error(404, "Not Found"),
    }
}
