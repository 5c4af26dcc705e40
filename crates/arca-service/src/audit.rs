//! The audit writer: every request, allowed or refused, becomes an [`AuditEvent`] that a
//! background task appends to the store in batches (group commit: the events of every
//! request that arrived while the previous batch was being written go in one transaction).
//! A second task flushes committed batches to disk (one flush for all that were committed
//! meanwhile) while the writer commits the next. A request waits for its batch's flush
//! ([`AuditWriter::record_durably`]) so that nothing is answered before its event is
//! durable; if the store will not take the batch, each of
//! its requests is refused instead. With `[audit] durability = "async"` requests do not
//! wait, and a crash loses the events still queued. A bounded channel gives back-pressure
//! instead of dropping records. While the store is unreachable (a batch given up, or the
//! store probe's ping failing) nothing is queued: requests are refused at once and their
//! events counted as not stored, until a trial event is stored (see
//! [`crate::Service::spawn_store_probe`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arca_core::audit::{AuditEvent, PreparedEvent};
use arca_store::KeyStore;
use tokio::sync::{mpsc, oneshot};

enum Msg {
    /// An event, and who waits to hear whether it was stored.
    Record(Box<PreparedEvent>, Option<oneshot::Sender<bool>>),
    /// An event that tests whether an unreachable store takes writes again: its batch is
    /// tried once even while the store is down (see [`AuditWriter::record_trial`]).
    Trial(Box<PreparedEvent>, oneshot::Sender<bool>),
    Flush(oneshot::Sender<()>),
}

/// Whether the store takes the trail's writes, as the writer and the store probe see it,
/// and how many events this process could not store. One place for the rule "while the
/// store is unreachable nothing is queued and every request is refused": the writer, the
/// probe, `/readyz` and shutdown all read it here.
#[derive(Default)]
struct StoreHealth {
    down: AtomicBool,
    /// Why the store was found unreachable, while it is.
    reason: Mutex<String>,
    /// Events given up (the store did not take them) and not yet counted by a
    /// [`arca_core::Action::ResumeAudit`] event in the trail.
    not_stored: AtomicU64,
    /// Events queued and neither stored nor given up yet.
    pending: AtomicU64,
}

impl StoreHealth {
    fn down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    fn mark_down(&self, reason: &str) {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner()) = reason.to_string();
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %reason, "the store is unreachable: /readyz answers not ready and requests are refused (503 unavailable) until it takes writes again");
        }
    }

    fn mark_up(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("the store takes writes again: serving");
        }
    }

    fn lost(&self, n: usize) {
        self.not_stored.fetch_add(n as u64, Ordering::AcqRel);
    }
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

/// How long a request waits for its audit event by default (`[audit] write_timeout_secs`).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// [`DEFAULT_WRITE_TIMEOUT`], for serde.
pub fn default_write_timeout() -> Duration {
    DEFAULT_WRITE_TIMEOUT
}

/// Handle to the background audit writer.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Msg>,
    capacity: usize,
    write_timeout: Duration,
    health: Arc<StoreHealth>,
}

/// The longest one try of a batch takes while the store is known to be unreachable (the
/// store's own waits, a pool's 5 s or SQLite's 10 s busy wait, are cut to it): the probe's
/// bound.
const TRIAL_TIMEOUT: Duration = crate::STORE_PROBE_TIMEOUT;

const BATCH: usize = 512;
/// Committed batches waiting for their flush, at most (the writer waits beyond it).
const SYNC_QUEUE: usize = 64;

/// A batch the writer has handled, on its way to the syncer.
struct Committed {
    /// Whether the store took the batch (if not, its requests are refused at once).
    stored: bool,
    acks: Vec<oneshot::Sender<bool>>,
    waiters: Vec<oneshot::Sender<()>>,
}

impl AuditWriter {
    /// Starts the writer task on the current Tokio runtime. A batch the store has not
    /// taken within `write_timeout` (tries included) is given up, and a request whose
    /// event is not stored within it is refused: a locked, full or unreachable store makes
    /// requests fail within that bound instead of queueing without end.
    pub fn start(store: Arc<dyn KeyStore>, capacity: usize, write_timeout: Duration) -> Self {
        let (tx, mut rx) = mpsc::channel::<Msg>(capacity);
        // Two stages: the writer commits a batch and goes on to the next one while the
        // syncer flushes what was committed (one flush for every batch committed meanwhile)
        // and only then tells the batch's requests that their events are stored.
        let (done_tx, done_rx) = mpsc::channel::<Committed>(SYNC_QUEUE);
        let health = Arc::new(StoreHealth::default());
        Self::spawn_syncer(store.clone(), done_rx, write_timeout, health.clone());
        let h = health.clone();
        tokio::spawn(async move {
            let health = h;
            let mut batch: Vec<PreparedEvent> = Vec::with_capacity(BATCH);
            let mut acks: Vec<oneshot::Sender<bool>> = Vec::with_capacity(BATCH);
            let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
            while let Some(first) = rx.recv().await {
                let mut next = Some(first);
                let mut trial = false;
                while let Some(m) = next.take() {
                    match m {
                        Msg::Record(r, ack) => {
                            batch.push(*r);
                            acks.extend(ack);
                        }
                        Msg::Trial(r, ack) => {
                            batch.push(*r);
                            acks.push(ack);
                            trial = true;
                        }
                        Msg::Flush(w) => waiters.push(w),
                    }
                    if batch.len() >= BATCH {
                        break;
                    }
                    next = rx.try_recv().ok();
                }
                // A flush alone stores nothing and needs no sync of its own: the batches
                // before it reach the syncer first.
                let mut stored = !batch.is_empty();
                let handled = batch.len() as u64;
                if !batch.is_empty() && health.down() && !trial {
                    // Queued before the store was found unreachable: given up at once, so
                    // that an outage never holds a queue (a flush at shutdown included).
                    health.lost(batch.len());
                    stored = false;
                    batch.clear();
                } else if !batch.is_empty() {
                    // A busy or briefly unreachable store gets more tries, within the bound;
                    // a batch not stored by then is given up (and said so loudly). With no
                    // request waiting (`async`), a minute, as nobody is kept waiting. A
                    // trial, while the store is known to be down, gets one short try.
                    let started = Instant::now();
                    let budget = if trial && health.down() {
                        write_timeout.min(TRIAL_TIMEOUT)
                    } else if acks.is_empty() {
                        write_timeout.max(Duration::from_secs(60))
                    } else {
                        write_timeout
                    };
                    let deadline = started + budget;
                    let mut delay = Duration::from_millis(20);
                    let mut attempt = 0u32;
                    stored = loop {
                        attempt += 1;
                        let left = deadline.saturating_duration_since(Instant::now());
                        let problem =
                            match tokio::time::timeout(left, store.commit_audit(&batch)).await {
                                Ok(Ok(())) => break true,
                                Ok(Err(e)) => e.to_string(),
                                Err(_) => format!(
                                    "the store did not answer within {} s",
                                    budget.as_secs_f32()
                                ),
                            };
                        let left = deadline.saturating_duration_since(Instant::now());
                        if trial && health.down() {
                            tracing::debug!(error = %problem, "the store does not take writes yet");
                            break false;
                        }
                        if left <= delay || health.down() {
                            tracing::error!(error = %problem, attempts = attempt, records = batch.len(), waiting = acks.len(), "audit records could not be stored; the requests waiting for them are refused");
                            health.mark_down(&problem);
                            break false;
                        }
                        tracing::warn!(error = %problem, attempt, "audit records not stored yet; retrying");
                        tokio::time::sleep(delay).await;
                        delay *= 3;
                    };
                    tracing::debug!(
                        events = batch.len(),
                        micros = started.elapsed().as_micros() as u64,
                        stored,
                        "audit batch"
                    );
                    if stored {
                        health.mark_up();
                    } else if !trial {
                        health.lost(batch.len());
                    }
                    batch.clear();
                }
                health.pending.fetch_sub(handled, Ordering::AcqRel);
                let done = Committed {
                    stored,
                    acks: std::mem::take(&mut acks),
                    waiters: std::mem::take(&mut waiters),
                };
                if done_tx.send(done).await.is_err() {
                    tracing::error!("audit syncer has stopped");
                }
            }
        });
        AuditWriter {
            tx,
            capacity,
            write_timeout,
            health,
        }
    }

    /// The second stage: flushes what the writer committed, then answers the batches'
    /// requests. A failed flush is not retried (after a failed `fsync` the kernel may have
    /// dropped the pages it could not write, so a later success proves nothing): the
    /// requests waiting are refused and the failure logged.
    fn spawn_syncer(
        store: Arc<dyn KeyStore>,
        mut rx: mpsc::Receiver<Committed>,
        write_timeout: Duration,
        health: Arc<StoreHealth>,
    ) {
        tokio::spawn(async move {
            let mut group: Vec<Committed> = Vec::new();
            while let Some(first) = rx.recv().await {
                group.push(first);
                while let Ok(more) = rx.try_recv() {
                    group.push(more);
                }
                let mut synced = true;
                if group.iter().any(|c| c.stored) {
                    let started = Instant::now();
                    let budget = if group.iter().all(|c| c.acks.is_empty()) {
                        write_timeout.max(Duration::from_secs(60))
                    } else {
                        write_timeout
                    };
                    synced = match tokio::time::timeout(budget, store.sync_audit()).await {
                        Ok(Ok(())) => true,
                        Ok(Err(e)) => {
                            tracing::error!(error = %e, "audit records committed but not flushed to disk; the requests waiting for them are refused");
                            health.mark_down(&e.to_string());
                            false
                        }
                        Err(_) => {
                            tracing::error!(secs = budget.as_secs_f32(), "the store did not flush audit records in time; the requests waiting for them are refused");
                            health.mark_down("the store did not flush audit records in time");
                            false
                        }
                    };
                    tracing::debug!(
                        batches = group.len(),
                        micros = started.elapsed().as_micros() as u64,
                        synced,
                        "audit sync"
                    );
                }
                for c in group.drain(..) {
                    for a in c.acks {
                        let _ = a.send(c.stored && synced);
                    }
                    for w in c.waiters {
                        let _ = w.send(());
                    }
                }
            }
        });
    }

    /// Queues a record; waits only if the queue is full. While the store is unreachable
    /// nothing is queued: the record is counted as not stored (the trail says how many when
    /// it takes writes again, see [`AuditWriter::record_trial`]).
    pub async fn record(&self, r: AuditEvent) {
        if self.health.down() {
            self.health.lost(1);
            return;
        }
        self.health.pending.fetch_add(1, Ordering::AcqRel);
        if self
            .tx
            .send(Msg::Record(Box::new(r.into()), None))
            .await
            .is_err()
        {
            self.health.pending.fetch_sub(1, Ordering::AcqRel);
            self.health.lost(1);
            tracing::error!("audit writer has stopped; record lost");
        }
    }

    /// Refuses at once while the store is unreachable: a request whose event cannot be
    /// stored is not served, and is not queued to wait for a store that is gone.
    pub fn check_writable(&self) -> arca_core::Result<()> {
        if self.health.down() {
            return Err(arca_core::Error::Unavailable {
                message: "the audit trail cannot be written now (the store is unreachable); the request was not served (retry later)".into(),
            });
        }
        Ok(())
    }

    /// Queues a record and waits until the batch holding it is durable. An error means
    /// the record is not stored: the request it records must not be answered as served.
    /// While the store is unreachable the request is refused at once, nothing queued.
    pub async fn record_durably(&self, r: AuditEvent) -> arca_core::Result<()> {
        if let Err(e) = self.check_writable() {
            self.health.lost(1);
            return Err(e);
        }
        let (tx, rx) = oneshot::channel();
        let unavailable = || arca_core::Error::Unavailable {
            message:
                "the audit trail cannot be written now; the request was not served (retry later)"
                    .into(),
        };
        // The bound covers the queue too: a writer stuck on an earlier batch refuses this
        // request in time. An event given up on here may still be stored later; the trail
        // then records a use whose answer was a refusal, never the other way round.
        let wait = async {
            self.health.pending.fetch_add(1, Ordering::AcqRel);
            if self
                .tx
                .send(Msg::Record(Box::new(r.into()), Some(tx)))
                .await
                .is_err()
            {
                self.health.pending.fetch_sub(1, Ordering::AcqRel);
                self.health.lost(1);
                tracing::error!("audit writer has stopped; request refused");
                return false;
            }
            matches!(rx.await, Ok(true))
        };
        match tokio::time::timeout(self.write_timeout, wait).await {
            Ok(true) => Ok(()),
            _ => Err(unavailable()),
        }
    }

    /// Stores `r` even while the store is known to be unreachable (one short try): the
    /// store probe's test of whether the store takes writes again. True once it is stored,
    /// and the store is then taken as reachable.
    pub async fn record_trial(&self, r: AuditEvent) -> bool {
        let (tx, rx) = oneshot::channel();
        self.health.pending.fetch_add(1, Ordering::AcqRel);
        if self
            .tx
            .send(Msg::Trial(Box::new(r.into()), tx))
            .await
            .is_err()
        {
            self.health.pending.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        matches!(rx.await, Ok(true))
    }

    /// Why the store is unreachable, while the writer or the probe finds it so.
    pub fn store_down(&self) -> Option<String> {
        self.health.down().then(|| {
            self.health
                .reason
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        })
    }

    /// Takes the store as unreachable (the probe's finding): requests are refused until a
    /// trial write succeeds.
    pub fn mark_store_down(&self, reason: &str) {
        self.health.mark_down(reason);
    }

    /// Events this process has not stored: given up and not yet counted in the trail by a
    /// resume event, plus those still queued.
    pub fn unsaved(&self) -> u64 {
        self.health.not_stored.load(Ordering::Acquire) + self.health.pending.load(Ordering::Acquire)
    }

    /// Takes the count of events given up so far (for the resume event that records it);
    /// [`AuditWriter::give_back`] returns it if that event is not stored either.
    pub fn take_not_stored(&self) -> u64 {
        self.health.not_stored.swap(0, Ordering::AcqRel)
    }

    /// Returns a count taken by [`AuditWriter::take_not_stored`].
    pub fn give_back(&self, n: u64) {
        self.health.not_stored.fetch_add(n, Ordering::AcqRel);
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
