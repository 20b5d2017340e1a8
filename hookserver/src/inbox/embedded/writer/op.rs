//! The writes the writer thread takes, and what it may do with a batch of them before
//! applying it.

use std::collections::HashSet;

use tokio::sync::oneshot;

use crate::inbox::{Accepted, ActionError, Arrival, Outcome, Refused};

/// A write for the writer thread.
pub(in crate::inbox::embedded) enum Op {
    Accept {
        id: u64,
        arrival: Arrival,
        reply: oneshot::Sender<Result<Accepted, Refused>>,
    },
    Start {
        id: u64,
    },
    Finish {
        id: u64,
        number: u32,
        outcome: Outcome,
    },
    Release {
        id: u64,
    },
    Retry {
        id: u64,
        reply: oneshot::Sender<Result<(), ActionError>>,
    },
    Discard {
        id: u64,
        reply: oneshot::Sender<Result<(), ActionError>>,
    },
    Purge,
}

impl Op {
    /// The delivery it concerns, once stored.
    pub(super) fn delivery(&self) -> Option<u64> {
        match self {
            Op::Start { id }
            | Op::Finish { id, .. }
            | Op::Release { id }
            | Op::Retry { id, .. }
            | Op::Discard { id, .. } => Some(*id),
            Op::Accept { .. } | Op::Purge => None,
        }
    }

    /// Whether someone waits for its commit: then it is made at once.
    pub(super) fn acknowledges(&self) -> bool {
        matches!(
            self,
            Op::Accept { .. } | Op::Retry { .. } | Op::Discard { .. } | Op::Purge
        )
    }

    /// Whether its commit must be durable in the redb file (an arrival is, by the log).
    pub(super) fn needs_sync(&self) -> bool {
        matches!(self, Op::Retry { .. } | Op::Discard { .. } | Op::Purge)
    }
}

/// Drops the start of an attempt whose end is in the same batch: the end records the
/// attempt's number too (one write instead of two, under load the common case).
pub(super) fn drop_covered_starts(batch: &mut Vec<Op>) {
    let finished: HashSet<u64> = batch
        .iter()
        .filter_map(|op| match op {
            Op::Finish { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    if !finished.is_empty() {
        batch.retain(|op| !matches!(op, Op::Start { id } if finished.contains(id)));
    }
}
