//! Who may do what: the shared secret and how it is compared, the dashboard's sessions,
//! the throttle on wrong secrets, and the client's address. One implementation each, used
//! by the endpoints (`http`) and the dashboard alike.

pub(crate) mod secret;
pub(crate) mod session;
pub(crate) mod throttle;
