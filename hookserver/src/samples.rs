//! The Hub's sample payloads, built into the crate from `hookserver/samples/` (real
//! deliveries): the dashboard's test sends and its page offer them.

/// The Hub's sample payloads, built into the crate (from real deliveries).
pub(crate) const SAMPLES: &[(&str, &str)] = &[
    (
        "discussion.create (hub-docs)",
        include_str!("../samples/discussion.create.hub-docs.json"),
    ),
    (
        "discussion.create (hfhub-tests)",
        include_str!("../samples/discussion.create.hfhub-tests.json"),
    ),
    (
        "discussion.update (hfhub-tests)",
        include_str!("../samples/discussion.update.hfhub-tests.json"),
    ),
    (
        "repo.content.update (hfhub-tests)",
        include_str!("../samples/repo.content.update.hfhub-tests.json"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_hub_payloads() {
        for (name, body) in SAMPLES {
            let payload = crate::WebhookPayload::from_slice(body.as_bytes());
            assert!(payload.is_ok(), "{name}: {payload:?}");
        }
    }
}
