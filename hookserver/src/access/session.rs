//! The dashboard's sessions: a login gets a random id, kept here with its expiry and
//! removed by logout. Nothing in the cookie is derived from the secret.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::LONGEST;

/// How long a session lasts by default (`HOOKSERVER_SESSION_TTL`).
///
/// ```
/// assert_eq!(hookserver::DEFAULT_SESSION_TTL.as_secs(), 12 * 3600);
/// ```
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// How many sessions are kept at most (the one closest to expiry goes first).
const KEPT: usize = 1024;

/// The open sessions, by the SHA-256 of their id (so that a lookup's timing tells nothing
/// about the ids), with their expiry.
#[derive(Debug)]
pub(crate) struct Sessions {
    ttl: Duration,
    open: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Sessions {
    pub(crate) fn new(ttl: Duration) -> Self {
        Sessions {
            ttl: ttl.min(LONGEST),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// How long a session lasts.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Opens a session: its id, 256 random bits in hex, for the cookie.
    pub(crate) fn open(&self) -> Result<String, getrandom::Error> {
        let mut id = [0u8; 32];
        getrandom::fill(&mut id)?;
        let id = hex::encode(id);
        let now = Instant::now();
        let mut open = self.lock();
        if open.len() >= KEPT {
            open.retain(|_, expiry| *expiry > now);
        }
        if open.len() >= KEPT {
            let soonest = open.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k);
            if let Some(soonest) = soonest {
                open.remove(&soonest);
            }
        }
        open.insert(digest(&id), now + self.ttl);
        Ok(id)
    }

    /// Whether `id` names an open session that has not expired.
    pub(crate) fn is_open(&self, id: &str) -> bool {
        let key = digest(id);
        let mut open = self.lock();
        match open.get(&key) {
            Some(expiry) if *expiry > Instant::now() => true,
            Some(_) => {
                open.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Ends the session `id`.
    pub(crate) fn close(&self, id: &str) {
        self.lock().remove(&digest(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Instant>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_past_the_clock_s_range_opens_sessions_for_a_century() {
        let sessions = Sessions::new(Duration::MAX);
        assert_eq!(sessions.ttl(), LONGEST);
        let id = sessions.open().unwrap();
        assert!(sessions.is_open(&id));
    }

    #[test]
    fn a_session_is_random_open_until_closed_or_expired() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let a = sessions.open().unwrap();
        let b = sessions.open().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(sessions.is_open(&a) && sessions.is_open(&b));
        assert!(!sessions.is_open("0000"));
        sessions.close(&a);
        assert!(!sessions.is_open(&a));
        assert!(sessions.is_open(&b));

        let short = Sessions::new(Duration::from_millis(1));
        let c = short.open().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(!short.is_open(&c));
    }

    #[test]
    fn the_store_stays_bounded() {
        let sessions = Sessions::new(Duration::from_secs(60));
        for _ in 0..KEPT + 10 {
            sessions.open().unwrap();
        }
        assert!(sessions.lock().len() <= KEPT);
    }
}
