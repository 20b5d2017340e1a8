//! The log of recent deliveries behind the dashboard: a bounded in-memory queue of
//! [`Record`]s (`record`), and a broadcast of each new delivery to the dashboard's live
//! views.

mod record;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::HttpResponse;
use tokio::sync::broadcast;

pub(crate) use record::{Incoming, Kind, Record};
pub use record::{KEPT_ANSWER, KEPT_BODY, KEPT_HEADERS, KEPT_REFUSED_HEADERS, RECORD_BOUND};

/// How many deliveries the dashboard's log keeps by default (see
/// [`WebhooksServer::delivery_log`](crate::WebhooksServer::delivery_log)).
///
/// ```
/// assert_eq!(hookserver::DEFAULT_DELIVERY_LOG, 200);
/// ```
pub const DEFAULT_DELIVERY_LOG: usize = 200;

/// How many recorded deliveries the live views' channel holds beside the log.
const LIVE_BUFFER: usize = 16;

/// How many buffers of records that left the log are kept for the next ones.
const SPARE_BUFFERS: usize = 4;

/// The bounded log of recent deliveries.
#[derive(Debug)]
pub(crate) struct DeliveryLog {
    capacity: usize,
    next_id: AtomicU64,
    kept: Mutex<Kept>,
    live: broadcast::Sender<Arc<Record>>,
}

/// The records, and the buffers of records that left the log, for the next ones.
#[derive(Debug, Default)]
struct Kept {
    records: VecDeque<Arc<Record>>,
    spare: Vec<Vec<u8>>,
}

impl DeliveryLog {
    /// A log that keeps the last `capacity` deliveries (0: records nothing, and the
    /// dashboard's sends are answered without being kept).
    pub(crate) fn new(capacity: usize) -> Self {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        DeliveryLog {
            capacity,
            next_id: AtomicU64::new(1),
            kept: Mutex::new(Kept {
                records: VecDeque::with_capacity(capacity.min(1024)),
                spare: Vec::new(),
            }),
            live,
        }
    }

    /// How many deliveries it keeps.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The most memory the log's records may hold: the log's, the live channel's and
    /// the spare buffers, each at most [`RECORD_BOUND`].
    pub(crate) fn bound(&self) -> usize {
        if self.capacity == 0 {
            return 0;
        }
        (self.capacity + LIVE_BUFFER + SPARE_BUFFERS) * RECORD_BOUND
    }

    /// The memory the kept records and spare buffers hold now.
    pub(crate) fn bytes(&self) -> usize {
        let kept = self.lock();
        kept.records.iter().map(|r| r.bytes()).sum::<usize>()
            + kept.spare.iter().map(Vec::capacity).sum::<usize>()
    }

    /// Records a delivery and its answer; gives back the answer and the record.
    pub(crate) fn record(
        &self,
        incoming: Incoming<'_>,
        response: HttpResponse,
    ) -> (HttpResponse, Arc<Record>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if self.capacity == 0 {
            let (record, response) = Record::new(id, incoming, response, Vec::new());
            return (response, Arc::new(record));
        }
        // Once the log is full, the record that leaves it becomes the new one when nothing
        // else holds it (a live view or an API call may, for a moment): recording a delivery
        // then allocates nothing. Else a spare buffer is reused.
        let reusable = |old: &Arc<Record>| Arc::strong_count(old) == 1 && Arc::weak_count(old) == 0;
        let (leaving, spare) = {
            let mut kept = self.lock();
            match kept.records.front() {
                Some(old) if kept.records.len() >= self.capacity && reusable(old) => {
                    (kept.records.pop_front(), None)
                }
                _ => (None, kept.spare.pop()),
            }
        };
        // Out of the queue, the leaving record is ours alone: rewritten in place.
        let (record, response) = match leaving {
            Some(mut old) if reusable(&old) => {
                let slot = Arc::get_mut(&mut old).expect("held by no one else");
                let response = slot.rewrite(id, incoming, response);
                (old, response)
            }
            _ => {
                let (record, response) =
                    Record::new(id, incoming, response, spare.unwrap_or_default());
                (Arc::new(record), response)
            }
        };
        {
            // The push and any pop under one lock: the log never holds more than its
            // capacity, even when two workers record at once.
            let mut kept = self.lock();
            kept.records.push_back(Arc::clone(&record));
            while kept.records.len() > self.capacity {
                let Some(old) = kept.records.pop_front() else {
                    break;
                };
                // Held elsewhere (a live view, an API call): its buffer goes with it.
                if let Ok(old) = Arc::try_unwrap(old) {
                    if kept.spare.len() < SPARE_BUFFERS {
                        kept.spare.push(old.data);
                    }
                }
            }
        }
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(Arc::clone(&record));
        }
        (response, record)
    }

    /// The kept deliveries, newest first.
    pub(crate) fn newest_first(&self) -> Vec<Arc<Record>> {
        let mut records: Vec<Arc<Record>> = self.lock().records.iter().rev().cloned().collect();
        // Two workers recording at once may push out of order.
        records.sort_unstable_by_key(|r| std::cmp::Reverse(r.id));
        records
    }

    /// The kept delivery `id`.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<Record>> {
        let kept = self.lock();
        let records = &kept.records;
        // Ids grow by one per delivery: look where it would be first.
        let first = records.front()?.id;
        let at = usize::try_from(id.checked_sub(first)?).ok()?;
        match records.get(at) {
            Some(record) if record.id == id => Some(Arc::clone(record)),
            _ => records.iter().find(|r| r.id == id).cloned(),
        }
    }

    /// A receiver of every delivery recorded from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Record>> {
        self.live.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A panic while holding the lock cannot leave the queue half-changed.
        self.kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
