//! The audit writer: every request, allowed or refused, becomes an [`AuditEvent`] that a
//! background task appends to the store in batches, so the hot path never waits on a
//! database write. A bounded channel gives back-pressure instead of dropping records.

use std::sync::Arc;

use arca_core::audit::AuditEvent;
use arca_store::KeyStore;
use tokio::sync::{mpsc, oneshot};

enum Msg {
    Record(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
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
            let mut batch: Vec<AuditEvent> = Vec::with_capacity(BATCH);
            let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
            while let Some(first) = rx.recv().await {
                let mut next = Some(first);
                while let Some(m) = next.take() {
                    match m {
                        Msg::Record(r) => batch.push(*r),
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
                    for attempt in 1..=6 {
                        match store.append_audit(&batch).await {
                            Ok(()) => break,
                            Err(e) if attempt == 6 => {
                                tracing::error!(error = %e, records = batch.len(), "audit records could not be stored");
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, attempt, "audit records not stored yet; retrying");
                                tokio::time::sleep(delay).await;
                                delay *= 3;
                            }
                        }
                    }
                    batch.clear();
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
        if self.tx.send(Msg::Record(Box::new(r))).await.is_err() {
            tracing::error!("audit writer has stopped; record lost");
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
