//! Following the stored trail from outside the request path: an audit sink (a SIEM's copy)
//! reads committed events and signed checkpoints in order and keeps its position in the
//! store, so that every event reaches it at least once across restarts and nodes.
//!
//! The follower is the service's, not the store's: the door that runs a sink names a sink
//! and gets this, and never holds the store.

use std::sync::Arc;

use arca_core::audit::{Checkpoint, StoredEvent};
use arca_core::Result;
use arca_store::{KeyStore, Lease};

use crate::Service;

/// One named reader of the trail (`[[audit.sinks]]` entry). Nodes sharing a store take
/// turns: one holds the sink's lease and ships; another takes over when it stops.
pub struct TrailFollower {
    store: Arc<dyn KeyStore>,
    name: String,
}

/// Where a follower is: the last event and the last checkpoint it delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FollowerPosition {
    /// The `seq` of the last event delivered.
    pub events: u64,
    /// The `seq` of the last checkpoint delivered (checkpoints follow the events they cover).
    pub checkpoints: u64,
}

impl Service {
    /// The follower named `name` (a sink's name: its stored position is
    /// `audit.sink.<name>.cursor`).
    pub fn trail_follower(&self, name: &str) -> TrailFollower {
        TrailFollower {
            store: self.store.clone(),
            name: name.to_string(),
        }
    }
}

impl TrailFollower {
    fn cursor_name(&self) -> String {
        format!("audit.sink.{}.cursor", self.name)
    }

    fn checkpoint_cursor_name(&self) -> String {
        format!("{}.checkpoints", self.cursor_name())
    }

    /// Takes the follower's lease, or `None` while another node holds it. Held until the
    /// returned value is dropped.
    pub async fn try_lease(&self) -> Result<Option<Box<dyn Lease>>> {
        self.store.try_lease(&format!("sink/{}", self.name)).await
    }

    /// The stored position (zero for a new follower, or one whose record is unreadable).
    pub async fn position(&self) -> FollowerPosition {
        let read = async |name: String| match self.store.get_meta(&name).await {
            Ok(Some(v)) => String::from_utf8_lossy(&v).parse().unwrap_or(0),
            _ => 0,
        };
        FollowerPosition {
            events: read(self.cursor_name()).await,
            checkpoints: read(self.checkpoint_cursor_name()).await,
        }
    }

    /// Records that events up to `seq` were delivered.
    pub async fn delivered_events(&self, seq: u64) -> Result<()> {
        self.store
            .set_meta(&self.cursor_name(), seq.to_string().as_bytes())
            .await
    }

    /// Records that checkpoints up to `seq` were delivered.
    pub async fn delivered_checkpoints(&self, seq: u64) -> Result<()> {
        self.store
            .set_meta(&self.checkpoint_cursor_name(), seq.to_string().as_bytes())
            .await
    }

    /// Up to `limit` committed events after `seq`, in order.
    pub async fn events_after(&self, seq: u64, limit: u32) -> Result<Vec<StoredEvent>> {
        self.store.read_audit(seq, limit).await
    }

    /// Up to `limit` signed checkpoints after `seq`, in order.
    pub async fn checkpoints_after(&self, seq: u64, limit: u32) -> Result<Vec<Checkpoint>> {
        self.store.list_checkpoints(seq, limit).await
    }
}
