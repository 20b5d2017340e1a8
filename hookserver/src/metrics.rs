//! Prometheus metrics (`GET /metrics`, OpenMetrics text, through `prometheus-client`):
//! deliveries by endpoint and status, a latency histogram per endpoint, ignored and
//! duplicate deliveries, and, with an inbox, its depth by state and attempts by outcome.
//!
//! Labels name registered endpoints only (a request to an unknown path counts under
//! `endpoint="-"`), so that no caller can grow the series without bound.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::inbox::Counts;

/// An endpoint's path as a label value (shared, not copied per delivery).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct Path(pub(crate) Arc<str>);

impl EncodeLabelValue for Path {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&&*self.0, encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Delivered {
    endpoint: Path,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Endpoint {
    endpoint: Path,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Attempted {
    endpoint: Path,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InState {
    state: &'static str,
}

/// What a delivery's answer was, beyond its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answered {
    /// Its endpoint's filter did not take it.
    Ignored,
    /// A repeat of a delivery the inbox had already accepted.
    Duplicate,
}

/// An endpoint's most used series, resolved once: a delivery answered 200 counts without
/// a label look-up (hashing the labels and locking the family cost more than counting).
#[derive(Debug)]
struct Resolved {
    /// The status of most of its deliveries: 200, or 202 for a queued endpoint.
    status: u16,
    ok: Counter,
    latency: Histogram,
}

/// The server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Each endpoint's resolved series, by full path.
    resolved: HashMap<Arc<str>, Resolved, foldhash::fast::RandomState>,
    registry: Registry,
    deliveries: Family<Delivered, Counter>,
    latency: Family<Endpoint, Histogram, fn() -> Histogram>,
    ignored: Family<Endpoint, Counter>,
    duplicates: Family<Endpoint, Counter>,
    attempts: Family<Attempted, Counter>,
    inbox: Family<InState, Gauge>,
    /// The label of a request to no endpoint.
    unknown: Path,
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 1.6 s, doubling.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hookserver");
        let deliveries = Family::<Delivered, Counter>::default();
        registry.register(
            "deliveries",
            "Deliveries to /webhooks/*, by endpoint and answer status",
            deliveries.clone(),
        );
        let latency = Family::<Endpoint, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "delivery_seconds",
            "Time from a delivery's arrival to its answer, by endpoint",
            latency.clone(),
        );
        let ignored = Family::<Endpoint, Counter>::default();
        registry.register(
            "ignored",
            "Deliveries answered 200 {\"ignored\"} by an endpoint's filter",
            ignored.clone(),
        );
        let duplicates = Family::<Endpoint, Counter>::default();
        registry.register(
            "duplicates",
            "Repeats of a delivery the inbox had already accepted",
            duplicates.clone(),
        );
        let attempts = Family::<Attempted, Counter>::default();
        registry.register(
            "queue_attempts",
            "Attempts of queued deliveries, by endpoint and outcome (done, retry, dead)",
            attempts.clone(),
        );
        let inbox = Family::<InState, Gauge>::default();
        registry.register(
            "inbox_deliveries",
            "Deliveries in the inbox by state, when the server has one",
            inbox.clone(),
        );
        Metrics {
            resolved: HashMap::default(),
            registry,
            deliveries,
            latency,
            ignored,
            duplicates,
            attempts,
            inbox,
            unknown: Path("-".into()),
        }
    }
}

impl Metrics {
    /// Metrics whose series for `endpoints` (full paths, each with the status of most of
    /// its deliveries: 200, or 202 when queued) exist from the start, at zero, and are
    /// counted without a label look-up.
    pub(crate) fn new<'a>(endpoints: impl IntoIterator<Item = (&'a Arc<str>, u16)>) -> Self {
        let mut metrics = Metrics::default();
        for (path, status) in endpoints {
            let endpoint = Path(Arc::clone(path));
            let resolved = Resolved {
                status,
                ok: metrics.deliveries.get_or_create_owned(&Delivered {
                    endpoint: endpoint.clone(),
                    status,
                }),
                latency: metrics.latency.get_or_create_owned(&Endpoint { endpoint }),
            };
            metrics.resolved.insert(Arc::clone(path), resolved);
        }
        metrics
    }

    /// Counts a delivery's answer and its time.
    pub(crate) fn delivery(
        &self,
        endpoint: Option<&Arc<str>>,
        status: u16,
        seconds: f64,
        answered: Option<Answered>,
    ) {
        let resolved = endpoint.and_then(|e| self.resolved.get(&**e));
        if let (Some(resolved), None) = (resolved.filter(|r| r.status == status), answered) {
            resolved.ok.inc();
            resolved.latency.observe(seconds);
            return;
        }
        let endpoint = endpoint.map_or_else(|| self.unknown.clone(), |e| Path(Arc::clone(e)));
        self.deliveries
            .get_or_create(&Delivered {
                endpoint: endpoint.clone(),
                status,
            })
            .inc();
        let labels = Endpoint { endpoint };
        self.latency.get_or_create(&labels).observe(seconds);
        match answered {
            Some(Answered::Ignored) => {
                self.ignored.get_or_create(&labels).inc();
            }
            Some(Answered::Duplicate) => {
                self.duplicates.get_or_create(&labels).inc();
            }
            None => {}
        }
    }

    /// Counts a queued delivery's attempt: `done`, `retry` or `dead`.
    pub(crate) fn attempt(&self, endpoint: &str, outcome: &'static str) {
        self.attempts
            .get_or_create(&Attempted {
                endpoint: Path(endpoint.into()),
                outcome,
            })
            .inc();
    }

    /// The text a scraper reads, with the inbox's depth as of now.
    pub(crate) fn encode(&self, inbox: Option<Counts>) -> String {
        if let Some(counts) = inbox {
            for (state, n) in [
                ("queued", counts.queued),
                ("running", counts.running),
                ("retrying", counts.retrying),
                ("done", counts.done),
                ("dead", counts.dead),
            ] {
                self.inbox
                    .get_or_create(&InState { state })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_holds_each_series_and_no_unknown_path() {
        let metrics = Metrics::default();
        let path: Arc<str> = "/webhooks/a".into();
        metrics.delivery(Some(&path), 200, 0.001, None);
        metrics.delivery(Some(&path), 200, 0.002, Some(Answered::Ignored));
        metrics.delivery(None, 404, 0.0001, None);
        metrics.attempt("/webhooks/a", "retry");
        let text = metrics.encode(Some(Counts {
            queued: 3,
            ..Counts::default()
        }));
        assert!(
            text.contains(r#"hookserver_deliveries_total{endpoint="/webhooks/a",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hookserver_deliveries_total{endpoint="-",status="404"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hookserver_ignored_total{endpoint="/webhooks/a"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"hookserver_queue_attempts_total{endpoint="/webhooks/a",outcome="retry"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"hookserver_inbox_deliveries{state="queued"} 3"#),
            "{text}"
        );
        assert!(
            text.contains("hookserver_delivery_seconds_bucket"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn resolved_endpoints_count_as_the_families_do() {
        let a: Arc<str> = "/webhooks/a".into();
        let b: Arc<str> = "/webhooks/b".into();
        // `b` is queued: its deliveries are answered 202.
        let metrics = Metrics::new([(&a, 200), (&b, 202)]);
        // Every endpoint's series exists at zero from the start.
        let text = metrics.encode(None);
        assert!(
            text.contains(r#"hookserver_deliveries_total{endpoint="/webhooks/a",status="200"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"hookserver_deliveries_total{endpoint="/webhooks/b",status="202"} 0"#),
            "{text}"
        );
        metrics.delivery(Some(&b), 202, 0.001, None);
        metrics.delivery(Some(&b), 200, 0.001, Some(Answered::Duplicate));
        metrics.delivery(Some(&a), 200, 0.001, None);
        metrics.delivery(Some(&a), 200, 0.001, None);
        metrics.delivery(Some(&a), 200, 0.002, Some(Answered::Ignored));
        metrics.delivery(Some(&a), 500, 0.003, None);
        let text = metrics.encode(None);
        for line in [
            r#"hookserver_deliveries_total{endpoint="/webhooks/a",status="200"} 3"#,
            r#"hookserver_deliveries_total{endpoint="/webhooks/a",status="500"} 1"#,
            r#"hookserver_ignored_total{endpoint="/webhooks/a"} 1"#,
            r#"hookserver_delivery_seconds_count{endpoint="/webhooks/a"} 4"#,
            r#"hookserver_deliveries_total{endpoint="/webhooks/b",status="202"} 1"#,
            r#"hookserver_deliveries_total{endpoint="/webhooks/b",status="200"} 1"#,
            r#"hookserver_duplicates_total{endpoint="/webhooks/b"} 1"#,
            r#"hookserver_delivery_seconds_count{endpoint="/webhooks/b"} 2"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
