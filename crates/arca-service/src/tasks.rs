//! The lifecycle task: what falls due without anyone asking. Activation and deactivation
//! dates, scheduled destructions of keys and versions, automatic rotation.
//!
//! Each due key is handled in its own optimistic transaction, so a task that races a
//! caller (or another node) loses cleanly and retries on its next run.

use arca_core::Action;
use std::sync::Arc;
use std::time::Duration;

use arca_core::lifecycle::{self, Transition};
use arca_core::model::{DeactivationReason, Key, KeyEvent, KeyState, KeyVersion};
use arca_core::Result;
use arca_store::{MaterialChange, VersionWrite};

use crate::{Door, Note, RequestMeta, Service};

const SYSTEM: &str = "system";

fn ev(
    key: &Key,
    version: Option<u32>,
    at: chrono::DateTime<chrono::Utc>,
    action: &str,
    from: KeyState,
    to: KeyState,
    reason: &str,
) -> KeyEvent {
    KeyEvent {
        key_id: key.id,
        version,
        at,
        actor: SYSTEM.into(),
        action: action.into(),
        from_state: Some(from),
        to_state: Some(to),
        reason: Some(reason.into()),
    }
}

impl Service {
    /// Applies the store's announced changes (other nodes' writes) to this node's caches, for
    /// stores shared by several nodes; `None` for a store only this process writes.
    pub fn spawn_change_feed(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        use tokio::sync::broadcast::error::RecvError;
        let mut feed = self.store.changes()?;
        let svc = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            loop {
                let change = match feed.recv().await {
                    Ok(c) => c,
                    // Fell behind: some changes are unknown, so all of the cache is suspect.
                    Err(RecvError::Lagged(_)) => arca_store::Change::Everything,
                    Err(RecvError::Closed) => break,
                };
                let Some(s) = svc.upgrade() else { break };
                s.cache.apply(&change);
                if change == arca_store::Change::Root {
                    s.root_material_changed().await;
                }
            }
        }))
    }

    /// Runs the lifecycle task in the background every `lifecycle_interval_secs`.
    pub fn spawn_lifecycle_task(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let svc = Arc::downgrade(self);
        let every = Duration::from_secs(self.config.lifecycle_interval_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(s) = svc.upgrade() else { break };
                if s.is_sealed() {
                    continue;
                }
                if let Err(e) = s.run_due().await {
                    tracing::warn!(error = %e, "lifecycle task run failed; will retry");
                }
            }
        })
    }

    /// Runs the retention task (archive a segment, prune old archived segments; see
    /// [`Service::run_retention`]) every `archive_interval_secs`, or every minute when only
    /// pruning is set; `None` when neither is.
    pub fn spawn_retention_task(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let r = &self.config.audit_retention;
        if r.archive_interval_secs == 0 && r.prune_after_secs == 0 {
            return None;
        }
        let every = Duration::from_secs(if r.archive_interval_secs > 0 {
            r.archive_interval_secs
        } else {
            r.prune_after_secs.clamp(1, 60)
        });
        let svc = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(s) = svc.upgrade() else { break };
                if let Err(e) = s.run_retention().await {
                    tracing::warn!(error = %e, "audit retention run failed; will retry");
                }
            }
        }))
    }

    /// Handles every key that is due now; returns how many keys changed.
    pub async fn run_due(&self) -> Result<usize> {
        if self.is_sealed() {
            // Nothing can be rotated or destroyed without the root key; wait for unseal.
            return Ok(0);
        }
        // One node at a time: on a shared store the others skip this round.
        let Some(lease) = self.store.try_lease("lifecycle").await? else {
            return Ok(0);
        };
        let now = self.now();
        let due = self.store.keys_due(now, 500).await;
        let mut changed = 0;
        for key in due.into_iter().flatten() {
            match self.handle_due(key).await {
                Ok(true) => changed += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "lifecycle task could not handle a due key"),
            }
        }
        lease.release().await?;
        Ok(changed)
    }

    pub(crate) async fn handle_due(&self, key: Key) -> Result<bool> {
        let Some(mut key) = self.store.get_key(key.tenant_id, key.id).await? else {
            return Ok(false);
        };
        let mut versions = self.store.get_versions(key.id).await?;
        let now = self.now();
        let expected = key.revision;
        let mut events = Vec::new();
        let mut writes: Vec<VersionWrite> = Vec::new();
        let meta = RequestMeta::new(
            format!("lifecycle-{}", uuid::Uuid::now_v7()),
            "arca",
            Door::System,
        );

        // Imported material past its expiry: deleted, the key pending import again.
        if !key.pending_import && key.material_expires_at.is_some_and(|d| d <= now) {
            let (writes, event) = crate::byok::delete_material(
                &mut key,
                &mut versions,
                now,
                SYSTEM,
                "imported key material expired",
            );
            let note = Note::for_key(&key).and("transition", "delete-imported-material");
            let audit = vec![self.event(&meta, None, Action::LifecycleTask, &note, Ok(()))];
            self.commit(key, Some(expected), &versions, writes, vec![event], audit)
                .await?;
            return Ok(true);
        }

        // Dates.
        let (eff, reason) = lifecycle::effective_state(&key, now);
        if eff != key.state {
            let why = if eff == KeyState::Active {
                "activation date reached"
            } else {
                "deactivation date reached"
            };
            events.push(ev(
                &key,
                None,
                now,
                if eff == KeyState::Active {
                    "activate"
                } else {
                    "deactivate"
                },
                key.state,
                eff,
                why,
            ));
            key.state = eff;
            key.deactivation_reason = reason;
            if eff == KeyState::Deactivated {
                key.deactivation_reason = Some(DeactivationReason::Expired);
            }
        }

        // Key destruction.
        let mut destroyed = false;
        if key.destroy_after.is_some_and(|d| d <= now) {
            key.destroy_after = None;
            match lifecycle::apply(key.state, Transition::Destroy, &format!("key {}", key.id)) {
                Ok(to) => {
                    events.push(ev(
                        &key,
                        None,
                        now,
                        "destroy",
                        key.state,
                        to,
                        "scheduled destruction fell due; material erased",
                    ));
                    key.state = to;
                    key.destroyed_at = Some(now);
                    for v in versions.iter_mut().filter(|v| !v.state.is_destroyed()) {
                        v.state = if v.state == KeyState::Compromised
                            || to == KeyState::DestroyedCompromised
                        {
                            KeyState::DestroyedCompromised
                        } else {
                            KeyState::Destroyed
                        };
                        v.destroyed_at = Some(now);
                        v.destroy_after = None;
                        writes.push(VersionWrite {
                            version: v.clone(),
                            material: MaterialChange::Erase,
                        });
                    }
                    destroyed = true;
                }
                Err(e) => {
                    events.push(ev(
                        &key,
                        None,
                        now,
                        "destroy-skipped",
                        key.state,
                        key.state,
                        &format!("scheduled destruction not carried out: {e}"),
                    ));
                }
            }
        }

        // Version destruction.
        if !destroyed {
            for v in versions.iter_mut() {
                if v.destroy_after.is_some_and(|d| d <= now) && !v.state.is_destroyed() {
                    v.destroy_after = None;
                    match lifecycle::apply(v.state, Transition::Destroy, "version") {
                        Ok(to) => {
                            events.push(ev(
                                &key,
                                Some(v.version),
                                now,
                                "destroy",
                                v.state,
                                to,
                                "scheduled destruction fell due; material erased",
                            ));
                            v.state = to;
                            v.destroyed_at = Some(now);
                            writes.push(VersionWrite {
                                version: v.clone(),
                                material: MaterialChange::Erase,
                            });
                        }
                        Err(e) => {
                            events.push(ev(
                                &key,
                                Some(v.version),
                                now,
                                "destroy-skipped",
                                v.state,
                                v.state,
                                &format!("scheduled destruction not carried out: {e}"),
                            ));
                            writes.push(VersionWrite {
                                version: v.clone(),
                                material: MaterialChange::Keep,
                            });
                        }
                    }
                }
            }
        }

        let rotate = !destroyed
            && key.state == KeyState::Active
            && !key.archived
            && key.rotation_period_days.is_some()
            && key.next_rotation_at.is_some_and(|n| n <= now);

        if events.is_empty() && writes.is_empty() && !rotate {
            // Nothing to do: the stored due time is stale (written before a change that made
            // it moot). Store the recomputed one so the key stops coming back.
            let rev = key.revision;
            if lifecycle::next_due(&key, &versions).is_some_and(|d| d <= now) {
                tracing::warn!(key = %key.id, "a key is due but nothing can be done; check its dates");
                return Ok(false);
            }
            self.commit(key, Some(rev), &versions, vec![], vec![], vec![])
                .await?;
            return Ok(false);
        }
        let key = if !events.is_empty() || !writes.is_empty() {
            // The task's event goes with its change: one per transition it made.
            let note = Note::for_key(&key).and("state", key.state.as_str());
            let audit = events
                .iter()
                .map(|e| {
                    let mut n = note.clone();
                    n.key_version = e.version;
                    n.set("transition", e.action.clone());
                    self.event(&meta, None, Action::LifecycleTask, &n, Ok(()))
                })
                .collect();
            let erased: Vec<u32> = writes
                .iter()
                .filter(|w| matches!(w.material, MaterialChange::Erase))
                .map(|w| w.version.version)
                .collect();
            let receipts = self
                .destruction_receipts_for(&key, &erased, destroyed, now)
                .await?;
            // An HSM-held version is destroyed in the token first: if the token cannot be
            // reached, nothing is committed and the next run tries again.
            if !erased.is_empty() {
                let provider = self.provider(key.protection_level)?;
                for v in &erased {
                    provider.destroy_version(&crate::keys::version_label(key.id, *v))?;
                }
            }
            self.commit_with(
                key,
                Some(expected),
                &versions,
                writes,
                events,
                receipts,
                audit,
            )
            .await?
        } else {
            key
        };
        if rotate {
            let versions: Vec<KeyVersion> = self.store.get_versions(key.id).await?;
            let note = Note::for_key(&key);
            // New material of a legacy spec is made only while the tenant allows it, as for
            // a caller's rotation: otherwise this rotation is skipped, its refusal recorded,
            // and the next try is a period later (the key keeps serving its versions).
            if let Some(l) = key.spec.legacy() {
                let settings = &self.tenant(key.tenant_id).await?.settings;
                if let Err(e) = settings.permit_legacy(l, "key") {
                    let audit = vec![self.event(&meta, None, Action::RotateKey, &note, Err(&e))];
                    let skipped = ev(
                        &key,
                        None,
                        now,
                        "rotate-skipped",
                        key.state,
                        key.state,
                        &format!("automatic rotation not carried out: {e}"),
                    );
                    let rev = key.revision;
                    let mut k = key;
                    k.next_rotation_at = k
                        .rotation_period_days
                        .map(|d| now + chrono::Duration::days(d as i64));
                    self.commit(k, Some(rev), &versions, vec![], vec![skipped], audit)
                        .await?;
                    return Ok(true);
                }
            }
            let audit = vec![self.event(&meta, None, Action::RotateKey, &note, Ok(()))];
            self.rotate_now(key, versions, None, SYSTEM, "automatic rotation", audit)
                .await?;
        }
        Ok(true)
    }
}
