//! Throttled guessing: wrong secrets (a delivery's header or query, a dashboard bearer, a
//! login) are counted per client address; past a small budget, that address is answered
//! 429 with `Retry-After` until the budget refills, and its secrets are not compared at
//! all meanwhile (answering a right guess would tell a guesser that it found the secret).
//!
//! A right secret never spends budget, so a sender that knows the secret (the Hub) is never
//! throttled; checking costs a right delivery one clock read while no address is throttled.
//!
//! The budget is a generic cell rate: [`BURST`] wrong secrets at once, then one more every
//! [`REFILL`]. The client address is the peer's, or, from a trusted proxy (one named by
//! `HOOKSERVER_TRUSTED_PROXIES`, or any peer on a Space), the right-most address of
//! `X-Forwarded-For` that is not itself a trusted proxy.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;

/// Wrong secrets an address may send at once before it is throttled.
pub(crate) const BURST: u32 = 20;

/// How often a throttled address regains one wrong secret.
pub(crate) const REFILL: Duration = Duration::from_secs(3);

/// How many addresses are remembered at most (the oldest is forgotten first).
const REMEMBERED: usize = 4096;

/// What carried the wrong secret, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guess {
    /// `X-Webhook-Secret` or `?secret=` on `/webhooks/*`.
    Webhook,
    /// `Authorization: Bearer` on the dashboard's API.
    Bearer,
    /// The dashboard's login form.
    Login,
}

impl Guess {
    fn as_str(self) -> &'static str {
        match self {
            Guess::Webhook => "webhook secret",
            Guess::Bearer => "dashboard bearer",
            Guess::Login => "dashboard login",
        }
    }
}

/// Who may stand between the client and the server and say who the client is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Proxies {
    /// Every peer is a proxy (on a Space, everything comes through the Hub's).
    pub(crate) any: bool,
    /// The proxies' addresses (`HOOKSERVER_TRUSTED_PROXIES`).
    pub(crate) list: Vec<IpAddr>,
}

impl Proxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.any || self.list.contains(&ip)
    }

    /// The client's address: the peer's, or what a trusted proxy forwarded.
    pub(crate) fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = canonical(req.peer_addr()?.ip());
        if !self.trusts(peer) {
            return Some(peer);
        }
        // Each proxy appends the address it received from: read from the right, past the
        // trusted ones. (Anything further left was written by the client itself.)
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        forwarded
            .iter()
            .rev()
            .filter_map(|part| part.parse::<IpAddr>().ok().map(canonical))
            .find(|ip| !self.list.contains(ip))
            .or(Some(peer))
    }
}

/// An IPv4-mapped IPv6 address as IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The budget's key: an IPv4 address, or an IPv6 address's /64 (one host holds a /64).
fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => (u128::from(v6) >> 64 << 64) | 1,
    }
}

/// One address's budget: its theoretical arrival time (GCRA) and what was logged.
#[derive(Debug, Clone, Copy)]
struct Budget {
    /// When the budget is whole again; throttled while more than `BURST` refills away.
    full_at: Instant,
    /// This throttling was logged.
    throttle_logged: bool,
}

/// The wrong secrets of every client address.
#[derive(Debug)]
pub(crate) struct Throttle {
    epoch: Instant,
    /// Milliseconds after `epoch` until which some address may be throttled, or 0 when
    /// none is: a right delivery then looks no further (not even at the clock).
    throttled_until_ms: AtomicU64,
    budgets: Mutex<HashMap<u128, Budget>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            epoch: Instant::now(),
            throttled_until_ms: AtomicU64::new(0),
            budgets: Mutex::new(HashMap::new()),
        }
    }
}

impl Throttle {
    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// `Err(wait)` while `client` has spent its budget: refuse without comparing.
    pub(crate) fn check(&self, client: impl FnOnce() -> Option<IpAddr>) -> Result<(), Duration> {
        let until = self.throttled_until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return Ok(());
        }
        let now = Instant::now();
        if self.ms(now) >= until {
            // Every throttling ended; one that began meanwhile raised `until` and keeps it.
            let _ = self.throttled_until_ms.compare_exchange(
                until,
                0,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            return Ok(());
        }
        let Some(ip) = client() else { return Ok(()) };
        let budgets = self.lock();
        match budgets.get(&key(ip)) {
            Some(budget) => match throttled_for(budget.full_at, now) {
                Some(wait) => Err(wait),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// Counts a wrong secret from `client`; logs the first of a burst, and the start of
    /// its throttling, with the address.
    pub(crate) fn failed(&self, client: Option<IpAddr>, guess: Guess) {
        let Some(ip) = client else { return };
        let now = Instant::now();
        let mut budgets = self.lock();
        if budgets.len() >= REMEMBERED && !budgets.contains_key(&key(ip)) {
            budgets.retain(|_, budget| budget.full_at > now);
            if budgets.len() >= REMEMBERED {
                let oldest = budgets
                    .iter()
                    .min_by_key(|(_, budget)| budget.full_at)
                    .map(|(key, _)| *key);
                if let Some(oldest) = oldest {
                    budgets.remove(&oldest);
                }
            }
        }
        let budget = budgets.entry(key(ip)).or_insert(Budget {
            full_at: now,
            throttle_logged: false,
        });
        let fresh = budget.full_at <= now;
        if fresh {
            budget.full_at = now;
            budget.throttle_logged = false;
            tracing::warn!(client = %ip, what = guess.as_str(), "wrong secret");
        }
        budget.full_at += REFILL;
        if let Some(wait) = throttled_for(budget.full_at, now) {
            if !budget.throttle_logged {
                budget.throttle_logged = true;
                tracing::warn!(
                    client = %ip,
                    what = guess.as_str(),
                    retry_after_s = wait.as_secs(),
                    "too many wrong secrets: refusing this address (429) until its budget refills"
                );
            }
            let until = self.ms(now + wait).max(1);
            self.throttled_until_ms.fetch_max(until, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u128, Budget>> {
        self.budgets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How long an address whose budget is whole at `full_at` must wait to be heard again:
/// it may owe less than `BURST - 1` refills before its next wrong secret.
fn throttled_for(full_at: Instant, now: Instant) -> Option<Duration> {
    let owed = full_at.saturating_duration_since(now);
    let allowed = REFILL * (BURST - 1);
    (owed > allowed).then(|| owed - allowed)
}

/// Whole seconds to put in `Retry-After` (rounded up).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_address_is_throttled_past_its_burst_and_others_are_not() {
        let throttle = Throttle::default();
        for _ in 0..BURST {
            assert!(throttle.check(|| ip("192.0.2.1")).is_ok());
            throttle.failed(ip("192.0.2.1"), Guess::Webhook);
        }
        let wait = throttle.check(|| ip("192.0.2.1")).unwrap_err();
        assert!(wait <= REFILL, "{wait:?}");
        assert!(throttle.check(|| ip("192.0.2.2")).is_ok());
        // One IPv6 host holds a /64.
        for _ in 0..BURST {
            throttle.failed(ip("2001:db8::1"), Guess::Bearer);
        }
        assert!(throttle.check(|| ip("2001:db8::ffff")).is_err());
        assert!(throttle.check(|| ip("2001:db8:0:1::1")).is_ok());
    }

    #[test]
    fn the_table_stays_bounded() {
        let throttle = Throttle::default();
        for n in 0..(REMEMBERED as u32 + 100) {
            throttle.failed(Some(IpAddr::from(n.to_be_bytes())), Guess::Login);
        }
        assert!(throttle.lock().len() <= REMEMBERED);
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_says_otherwise() {
        let request = |peer: &str, forwarded: &str| {
            TestRequest::default()
                .peer_addr(format!("{peer}:5000").parse().unwrap())
                .insert_header(("x-forwarded-for", forwarded))
                .to_http_request()
        };
        let none = Proxies::default();
        assert_eq!(
            none.client(&request("192.0.2.9", "198.51.100.1")),
            ip("192.0.2.9")
        );
        let listed = Proxies {
            any: false,
            list: vec!["10.0.0.1".parse().unwrap()],
        };
        // The client wrote the left-most entry itself: the proxy's own entry counts.
        assert_eq!(
            listed.client(&request("10.0.0.1", "6.6.6.6, 198.51.100.1")),
            ip("198.51.100.1")
        );
        assert_eq!(
            listed.client(&request("192.0.2.9", "198.51.100.1")),
            ip("192.0.2.9")
        );
        let space = Proxies {
            any: true,
            list: Vec::new(),
        };
        assert_eq!(
            space.client(&request("10.1.2.3", "198.51.100.7")),
            ip("198.51.100.7")
        );
        assert_eq!(
            space.client(&request("10.1.2.3", "garbage")),
            ip("10.1.2.3")
        );
    }
}
