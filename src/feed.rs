//! The commit feed's dispatcher: one task takes the store's committed batches, in commit
//! order, and hands each one to every subscriber (the realtime fanout now; web push and
//! outgoing webhooks later).
//!
//! A batch is shared, not copied: every subscriber gets the same `Arc`. What a subscriber does
//! when it falls behind is chosen when it subscribes:
//!
//! - **Lossless** (the realtime fanout): the dispatcher waits for room in its queue, so the
//!   back-pressure reaches the store writer, exactly as when fanout read the feed itself. An
//!   acknowledged message is never missing from live delivery. There is at most one: it sets
//!   the pace of the whole feed.
//! - **Lossy** (everything else): the batch is offered without waiting; when the queue is
//!   full it is skipped for that subscriber, which learns on its next receive how many events
//!   it missed (`FeedReceiver::take_missed`). Every event is in the durable `events` log, so
//!   a subscriber that cares reads what it missed from there. A slow lossy subscriber never
//!   delays the fanout or the writer.
//!
//! Must not: look inside events, read the store, or block on a lossy subscriber.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::store::{CommitFeed, Committed};

/// One committed batch, in commit order, shared by every subscriber.
pub type Batch = Arc<[Committed]>;

/// A subscriber's end of the feed.
pub struct FeedReceiver {
    batches: mpsc::Receiver<Batch>,
    /// Events skipped because this (lossy) subscriber's queue was full.
    missed: Arc<AtomicU64>,
}

impl FeedReceiver {
    /// The next batch; `None` once the store has closed and everything queued was taken.
    pub async fn recv(&mut self) -> Option<Batch> {
        self.batches.recv().await
    }

    /// Events skipped since the last call (always 0 for the lossless subscriber).
    pub fn take_missed(&self) -> u64 {
        self.missed.swap(0, Ordering::Relaxed)
    }
}

struct Lossy {
    name: &'static str,
    queue: mpsc::Sender<Batch>,
    missed: Arc<AtomicU64>,
}

/// Collects subscribers, then `start`s the dispatcher task.
#[derive(Default)]
pub struct Dispatcher {
    lossless: Option<mpsc::Sender<Batch>>,
    lossy: Vec<Lossy>,
}

impl Dispatcher {
    pub fn new() -> Dispatcher {
        Dispatcher::default()
    }

    /// The one subscriber that gets every batch, waited for. `depth` batches may queue.
    ///
    /// # Panics
    /// If called twice: two lossless subscribers would each hold up the other.
    pub fn subscribe_lossless(&mut self, depth: usize) -> FeedReceiver {
        assert!(self.lossless.is_none(), "only one lossless subscriber");
        let (queue, batches) = mpsc::channel(depth.max(1));
        self.lossless = Some(queue);
        FeedReceiver {
            batches,
            missed: Arc::default(),
        }
    }

    /// A subscriber that is skipped while its `depth`-batch queue is full.
    pub fn subscribe_lossy(&mut self, name: &'static str, depth: usize) -> FeedReceiver {
        let (queue, batches) = mpsc::channel(depth.max(1));
        let missed = Arc::new(AtomicU64::new(0));
        self.lossy.push(Lossy {
            name,
            queue,
            missed: Arc::clone(&missed),
        });
        FeedReceiver { batches, missed }
    }

    /// Runs until the store's feed closes, then closes every subscriber's queue.
    pub fn start(self, mut feed: CommitFeed) -> tokio::task::JoinHandle<()> {
        let Dispatcher {
            mut lossless,
            mut lossy,
        } = self;
        tokio::spawn(async move {
            while let Some(batch) = feed.recv().await {
                let batch: Batch = batch.into();
                for subscriber in &lossy {
                    offer(subscriber, &batch);
                }
                // Lossy subscribers are offered first so that waiting here never makes them
                // see a batch later than it could have.
                if let Some(queue) = &lossless
                    && queue.send(Arc::clone(&batch)).await.is_err()
                {
                    tracing::debug!("the lossless feed subscriber is gone");
                    lossless = None;
                }
                lossy.retain(|s| !s.queue.is_closed());
            }
            tracing::debug!("commit feed closed; dispatcher stopped");
        })
    }
}

fn offer(subscriber: &Lossy, batch: &Batch) {
    match subscriber.queue.try_send(Arc::clone(batch)) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            let before = subscriber
                .missed
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            if before == 0 {
                tracing::warn!(
                    subscriber = subscriber.name,
                    "commit feed subscriber fell behind; skipping batches"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::ids::{EventSeq, MessageSeq, RoomId, UserId};
    use crate::store::records::{EventKind, EventRecord};

    fn committed(seq: u64) -> Committed {
        Committed {
            seq: EventSeq(seq),
            event: EventRecord {
                room: RoomId(1),
                kind: EventKind::ReadMarker,
                seq: MessageSeq(seq),
                user: UserId(1),
                at: Timestamp(0),
            },
            message: None,
        }
    }

    fn seqs(batch: &Batch) -> Vec<u64> {
        batch.iter().map(|c| c.seq.0).collect()
    }

    #[tokio::test]
    async fn a_stalled_lossy_subscriber_never_holds_up_the_lossless_one() {
        let (store_side, feed) = mpsc::channel(16);
        let mut dispatcher = Dispatcher::new();
        let mut fanout = dispatcher.subscribe_lossless(1);
        let mut push = dispatcher.subscribe_lossy("push", 1);
        let task = dispatcher.start(feed);
        for seq in 1..=5 {
            store_side
                .send(vec![committed(seq)])
                .await
                .expect("dispatcher alive");
            // The lossless subscriber reads everything, in order, while `push` reads nothing.
            let batch = fanout.recv().await.expect("a batch");
            assert_eq!(seqs(&batch), vec![seq]);
        }
        let first = push.recv().await.expect("the one batch that fit");
        assert_eq!(seqs(&first), vec![1]);
        assert_eq!(push.take_missed(), 4, "the rest were skipped and counted");
        assert_eq!(push.take_missed(), 0);
        assert_eq!(fanout.take_missed(), 0);
        drop(store_side);
        task.await.expect("dispatcher ends with the feed");
        assert!(fanout.recv().await.is_none(), "queues close after the feed");
    }

    #[tokio::test]
    async fn every_subscriber_shares_the_same_batch() {
        let (store_side, feed) = mpsc::channel(4);
        let mut dispatcher = Dispatcher::new();
        let mut fanout = dispatcher.subscribe_lossless(4);
        let mut other = dispatcher.subscribe_lossy("other", 4);
        dispatcher.start(feed);
        store_side
            .send(vec![committed(1), committed(2)])
            .await
            .expect("sent");
        let a = fanout.recv().await.expect("batch");
        let b = other.recv().await.expect("batch");
        assert!(Arc::ptr_eq(&a, &b), "shared, not copied");
        assert_eq!(seqs(&a), vec![1, 2]);
    }
}
