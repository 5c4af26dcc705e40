//! The audit writer: every request, allowed or refused, becomes an [`AuditEvent`] that a
//! background task appends to the store in batches (group commit: the events of every
//! request that arrived while the previous batch was being written go in one transaction).
//! A request waits for its batch ([`AuditWriter::record_durably`]) so that nothing is
//! answered before its event is committed; if the store will not take the batch, each of
//! its requests is refused instead. With `[audit] durability = "async"` requests do not
//! wait, and a crash loses the events still queued. A bounded channel gives back-pressure
//! instead of dropping records.

use std::sync::Arc;

use arca_core::audit::{AuditEvent, PreparedEvent};
use arca_store::KeyStore;
use tokio::sync::{mpsc, oneshot};

enum Msg {
    /// An event, and who waits to hear whether it was stored.
    Record(Box<PreparedEvent>, Option<oneshot::Sender<bool>>),
    Flush(oneshot::Sender<()>),
}

/// When a request's answer may leave: after its audit event is committed (`sync`, the
/// default), or at once, the event following in the background (`async`: faster, and a
/// crash loses the events not yet written).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    #[default]
    Sync,
    Async,
}

/// Handle to the background audit writer.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Msg>,
    capacity: usize,
}

const BATCH: usize = 512;

impl AuditWriter {
    /// Starts the writer task on the current Tokio runtime.
    pub fn start(store: Arc<dyn KeyStore>, capacity: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<Msg>(capacity);
        tokio::spawn(async move {
            let mut batch: Vec<PreparedEvent> = Vec::with_capacity(BATCH);
            let mut acks: Vec<oneshot::Sender<bool>> = Vec::with_capacity(BATCH);
            let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
            while let Some(first) = rx.recv().await {
                let mut next = Some(first);
                while let Some(m) = next.take() {
                    match m {
                        Msg::Record(r, ack) => {
                            batch.push(*r);
                            acks.extend(ack);
                        }
                        Msg::Flush(w) => waiters.push(w),
                    }
                    if batch.len() >= BATCH {
                        break;
                    }
                    next = rx.try_recv().ok();
                }
                if !batch.is_empty() {
                    // A busy or briefly unreachable store gets a few more tries before the
                    // batch is given up (and said so loudly).
                    let mut delay = std::time::Duration::from_millis(20);
                    let mut stored = false;
                    let started = std::time::Instant::now();
                    for attempt in 1..=6 {
                        match store.append_audit(&batch).await {
                            Ok(()) => {
                                stored = true;
                                break;
                            }
                            Err(e) if attempt == 6 => {
                                tracing::error!(error = %e, records = batch.len(), waiting = acks.len(), "audit records could not be stored; the requests waiting for them are refused");
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, attempt, "audit records not stored yet; retrying");
                                tokio::time::sleep(delay).await;
                                delay *= 3;
                            }
                        }
                    }
                    tracing::debug!(
                        events = batch.len(),
                        micros = started.elapsed().as_micros() as u64,
                        stored,
                        "audit batch"
                    );
                    batch.clear();
                    for a in acks.drain(..) {
                        let _ = a.send(stored);
                    }
                }
                for w in waiters.drain(..) {
                    let _ = w.send(());
                }
            }
        });
        AuditWriter { tx, capacity }
    }

    /// Queues a record; waits only if the queue is full.
    pub async fn record(&self, r: AuditEvent) {
        if self
            .tx
            .send(Msg::Record(Box::new(r.into()), None))
            .await
            .is_err()
        {
            tracing::error!("audit writer has stopped; record lost");
        }
    }

    /// Queues a record and waits until the batch holding it is committed. An error means
    /// the record is not stored: the request it records must not be answered as served.
    pub async fn record_durably(&self, r: AuditEvent) -> arca_core::Result<()> {
        let (tx, rx) = oneshot::channel();
        let unavailable = || arca_core::Error::Unavailable {
            message:
                "the audit trail cannot be written now; the request was not served (retry later)"
                    .into(),
        };
        if self
            .tx
            .send(Msg::Record(Box::new(r.into()), Some(tx)))
            .await
            .is_err()
        {
            tracing::error!("audit writer has stopped; request refused");
            return Err(unavailable());
        }
        match rx.await {
            Ok(true) => Ok(()),
            _ => Err(unavailable()),
        }
    }

    /// Records queued and not yet taken by the writer.
    pub fn backlog(&self) -> usize {
        self.capacity.saturating_sub(self.tx.capacity())
    }

    /// Waits until every record queued before this call is stored.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
