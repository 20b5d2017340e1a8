use std::future::{ready, Ready};
use std::rc::Rc;

use hookserver::actix_web::{dev::Payload, Error, FromRequest, HttpRequest};
use hookserver::webhook_endpoint;

/// An extractor that is not `Send`, as actix-web's own `HttpRequest` is not.
struct Local(Rc<String>);

impl FromRequest for Local {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Local(Rc::new(req.path().to_owned()))))
    }
}

// A plain fn runs on the blocking pool: its parameters must be `Send`.
#[webhook_endpoint]
fn sync_with_local(local: Local) {
    let _ = local.0;
}

fn main() {}
