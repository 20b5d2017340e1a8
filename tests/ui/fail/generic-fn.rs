use hookserver::{webhook_endpoint, Json};

#[webhook_endpoint]
async fn generic<T: serde::de::DeserializeOwned>(body: Json<T>) {
    let _ = body;
}

fn main() {}
