//! Bounded in-memory caches that keep the hot path off the database: key metadata with its
//! loaded handles, tenant KEKs, and authenticated tokens.
//!
//! Every write through this service invalidates the key it touched. Another node's writes
//! arrive as the store's [`Change`]s ([`Caches::apply`]); while that feed is broken, no cache
//! is trusted (every read goes to the store), so a change made anywhere is honoured
//! everywhere as soon as it is announced, well within a second. The time-to-live is the last
//! line. Loaded handles hold plaintext key material only inside aws-lc-rs objects, which
//! cleanse their memory when dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arca_core::model::{Key, KeyVersion, Principal, Tenant};
use arca_crypto::KeyHandle;
use arca_store::{ApiToken, Change};
use prometheus_client::metrics::counter::Counter;
use uuid::Uuid;
use zeroize::Zeroizing;

/// A key's metadata and versions as read from the store, with handles loaded on demand.
pub struct KeyEntry {
    pub key: Key,
    pub versions: Vec<KeyVersion>,
    pub handles: Mutex<HashMap<u32, Arc<dyn KeyHandle>>>,
}

impl KeyEntry {
    /// A new entry with no handles loaded.
    pub fn new(key: Key, versions: Vec<KeyVersion>) -> Self {
        KeyEntry {
            key,
            versions,
            handles: Mutex::new(HashMap::new()),
        }
    }

    /// The version with this number.
    pub fn version(&self, n: u32) -> Option<&KeyVersion> {
        self.versions.iter().find(|v| v.version == n)
    }
}

/// A map with a size bound and a time-to-live per entry.
pub struct Bounded<K, V> {
    map: Mutex<HashMap<K, (V, Instant)>>,
    capacity: usize,
    ttl: Duration,
    /// Hit and miss counters (exported as metrics).
    counters: Option<(Counter, Counter)>,
    /// Cleared while the store's change feed is down: nothing cached is served then.
    trusted: Option<Arc<AtomicBool>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Bounded<K, V> {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Bounded {
            map: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            ttl,
            counters: None,
            trusted: None,
        }
    }

    /// Serves entries only while `trusted` holds.
    pub fn gated(mut self, trusted: Arc<AtomicBool>) -> Self {
        self.trusted = Some(trusted);
        self
    }

    /// Counts hits and misses on these counters.
    pub fn counted(mut self, counters: (Counter, Counter)) -> Self {
        self.counters = Some(counters);
        self
    }

    fn count(&self, hit: bool) {
        if let Some((h, m)) = &self.counters {
            if hit {
                h.inc()
            } else {
                m.inc()
            };
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value if present and fresh.
    pub fn get(&self, k: &K) -> Option<V> {
        if self
            .trusted
            .as_ref()
            .is_some_and(|t| !t.load(Ordering::Acquire))
        {
            self.count(false);
            return None;
        }
        let mut m = self.lock();
        let r = match m.get(k) {
            Some((v, at)) if at.elapsed() < self.ttl => Some(v.clone()),
            Some(_) => {
                m.remove(k);
                None
            }
            None => None,
        };
        drop(m);
        self.count(r.is_some());
        r
    }

    /// Inserts, evicting expired entries (or, if none, the oldest) when full.
    pub fn insert(&self, k: K, v: V) {
        let mut m = self.lock();
        if m.len() >= self.capacity && !m.contains_key(&k) {
            let ttl = self.ttl;
            m.retain(|_, (_, at)| at.elapsed() < ttl);
            if m.len() >= self.capacity {
                if let Some(oldest) = m
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
                {
                    m.remove(&oldest);
                }
            }
        }
        m.insert(k, (v, Instant::now()));
    }

    pub fn remove(&self, k: &K) {
        self.lock().remove(k);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Removes every entry whose value matches.
    pub fn remove_where(&self, f: impl Fn(&K, &V) -> bool) {
        self.lock().retain(|k, (v, _)| !f(k, v));
    }
}

/// An authenticated token, cached so that a request does not read the store to authenticate.
#[derive(Clone)]
pub struct CachedToken {
    pub token: ApiToken,
    pub principal: Arc<Principal>,
}

/// All caches of one service.
pub struct Caches {
    pub keys: Bounded<Uuid, Arc<KeyEntry>>,
    pub names: Bounded<(Uuid, String), Uuid>,
    pub keks: Bounded<Uuid, Arc<Zeroizing<Vec<u8>>>>,
    pub tokens: Bounded<String, CachedToken>,
    pub tenants: Bounded<Uuid, Arc<Tenant>>,
    pub sessions: Bounded<Uuid, crate::sessions::CachedSession>,
    /// Credential bindings (certificate, JWT identity) to their principal.
    pub bindings: Bounded<String, Arc<Principal>>,
    /// Trust anchors (`ca:…`, `jwt:…`) to the tenant they authenticate into (`None`: no
    /// tenant). Cleared with `bindings` whenever an anchor is assigned or withdrawn.
    pub anchors: Bounded<String, Option<Uuid>>,
    /// AWS access key pairs, their secrets opened (see [`crate::aws_auth`]).
    pub aws_credentials: Bounded<String, crate::aws_auth::CachedAwsCredential>,
    /// Multi-request raw GCM encryptions in progress, by correlation value (see
    /// [`crate::api::RawStream`]): node-local, as a KMIP connection is, and dropped after
    /// ten minutes.
    pub(crate) streams: Bounded<Vec<u8>, Arc<crate::crypto_ops::GcmStream>>,
    /// False while the store's change feed is broken (see the module's documentation).
    trusted: Arc<AtomicBool>,
}

impl Caches {
    /// Caches whose hits and misses are counted in `metrics`.
    pub fn new(capacity: usize, ttl: Duration, metrics: &crate::metrics::Metrics) -> Self {
        let trusted = Arc::new(AtomicBool::new(true));
        let c = |name| metrics.cache_counters(name);
        let t = || trusted.clone();
        Caches {
            keys: Bounded::new(capacity, ttl).counted(c("keys")).gated(t()),
            names: Bounded::new(capacity, ttl).counted(c("names")).gated(t()),
            keks: Bounded::new(1024, ttl).counted(c("keks")).gated(t()),
            tokens: Bounded::new(capacity, ttl).counted(c("tokens")).gated(t()),
            tenants: Bounded::new(1024, ttl).counted(c("tenants")).gated(t()),
            sessions: Bounded::new(capacity, ttl)
                .counted(c("sessions"))
                .gated(t()),
            bindings: Bounded::new(capacity, ttl)
                .counted(c("bindings"))
                .gated(t()),
            anchors: Bounded::new(1024, ttl).counted(c("anchors")).gated(t()),
            aws_credentials: Bounded::new(capacity, ttl)
                .counted(c("aws_credentials"))
                .gated(t()),
            streams: Bounded::new(1024, Duration::from_secs(600)),
            trusted,
        }
    }

    /// Forgets everything (after a restore replaced the store's contents).
    pub fn clear_all(&self) {
        self.keys.clear();
        self.names.clear();
        self.keks.clear();
        self.tokens.clear();
        self.tenants.clear();
        self.sessions.clear();
        self.bindings.clear();
        self.anchors.clear();
        self.aws_credentials.clear();
        self.streams.clear();
    }

    /// Forgets one key (after a write to it).
    pub fn invalidate_key(&self, id: Uuid) {
        self.keys.remove(&id);
        self.names.remove_where(|_, v| *v == id);
    }

    /// Forgets whatever a change committed elsewhere makes stale. Credentials are cleared
    /// as a family (their changes are rare and each cache is keyed differently).
    pub fn apply(&self, change: &Change) {
        match change {
            Change::Key(id) => self.invalidate_key(*id),
            Change::Aliases(tenant) => self.names.remove_where(|(t, _), _| t == tenant),
            Change::Tenant(id) => {
                self.tenants.remove(id);
                self.keks.remove(id);
            }
            Change::Token(id) => self.tokens.remove(id),
            Change::Principal(_) => self.clear_credentials(),
            Change::Record { kind, .. } => {
                if kind != crate::policies::POLICY {
                    self.clear_credentials();
                }
            }
            Change::Everything | Change::Root => self.clear_all(),
            Change::Lost => {
                self.trusted.store(false, Ordering::Release);
                self.clear_all();
            }
            Change::Resumed => {
                self.clear_all();
                self.trusted.store(true, Ordering::Release);
            }
        }
    }

    fn clear_credentials(&self) {
        self.tokens.clear();
        self.sessions.clear();
        self.bindings.clear();
        // Trust anchors are records too: another node's assignment reaches this one here.
        self.anchors.clear();
        self.aws_credentials.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_size_and_time() {
        let c: Bounded<u32, u32> = Bounded::new(3, Duration::from_secs(60));
        for i in 0..10 {
            c.insert(i, i);
        }
        assert_eq!(c.lock().len(), 3, "never more than the capacity");
        assert_eq!(c.get(&9), Some(9), "the newest stays");
        assert_eq!(c.get(&0), None, "the oldest went first");
        let t: Bounded<u32, u32> = Bounded::new(3, Duration::from_millis(0));
        t.insert(1, 1);
        assert_eq!(t.get(&1), None, "an expired entry is not served");
        c.remove_where(|_, v| *v == 9);
        assert_eq!(c.get(&9), None);
    }

    #[test]
    fn a_broken_change_feed_stops_every_cache() {
        let trusted = Arc::new(AtomicBool::new(true));
        let c: Bounded<u32, u32> = Bounded::new(3, Duration::from_secs(60)).gated(trusted.clone());
        c.insert(1, 1);
        assert_eq!(c.get(&1), Some(1));
        trusted.store(false, Ordering::Release);
        assert_eq!(c.get(&1), None, "not served while the feed is down");
        trusted.store(true, Ordering::Release);
        assert_eq!(c.get(&1), Some(1));
    }
}
