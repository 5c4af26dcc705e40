//! Rate limits per principal and per source address, and a growing back-off after failed
//! authentication, so that one noisy or hostile client cannot starve the others or guess
//! credentials quickly.
//!
//! Token buckets run on the service clock (so tests move time instead of sleeping) and are
//! held in bounded maps: a flood of distinct addresses evicts the stalest buckets rather than
//! growing memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use arca_core::{Error, Result};
use chrono::{DateTime, Utc};

/// Settings of the limits (the `[service.limits]` table).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sustained requests per second per principal (0 turns the limit off).
    pub per_principal_rps: f64,
    /// Requests a principal may burst above the sustained rate.
    pub per_principal_burst: f64,
    /// Sustained requests per second per source address (0 turns the limit off).
    pub per_source_rps: f64,
    pub per_source_burst: f64,
    /// Failed authentications from one address that carry no penalty.
    pub auth_failures_free: u32,
    /// The longest back-off after repeated failures, in seconds.
    pub auth_backoff_max_secs: u64,
    /// Most distinct principals or addresses tracked at once.
    pub max_tracked: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            // Above what one node serves (~15 k req/s on the 2-core reference machine, see
            // docs/benchmarks.md): the defaults stop a runaway client, not a busy one.
            per_principal_rps: 50_000.0,
            per_principal_burst: 100_000.0,
            per_source_rps: 100_000.0,
            per_source_burst: 200_000.0,
            auth_failures_free: 5,
            auth_backoff_max_secs: 300,
            max_tracked: 100_000,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

/// Seconds between two instants, with nanosecond precision: requests a few microseconds
/// apart must each add their share of tokens (millisecond truncation starves a busy
/// client whose requests never are a whole millisecond apart).
fn secs_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let d = to - from;
    match d.num_nanoseconds() {
        Some(n) => n.max(0) as f64 / 1e9,
        None => d.num_seconds().max(0) as f64,
    }
}

struct Buckets<K> {
    map: Mutex<HashMap<K, Bucket>>,
    rate: f64,
    burst: f64,
    max: usize,
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    fn new(rate: f64, burst: f64, max: usize) -> Self {
        Buckets {
            map: Mutex::new(HashMap::new()),
            rate,
            burst: burst.max(1.0),
            max: max.max(1),
        }
    }

    /// Takes one token, or says how many whole seconds until one is there.
    fn take(&self, k: &K, now: DateTime<Utc>) -> std::result::Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= self.max && !m.contains_key(k) {
            // Full buckets carry no information: drop them first, then the stalest.
            let burst = self.burst;
            let rate = self.rate;
            m.retain(|_, b| {
                let t = b.tokens + secs_between(b.at, now) * rate;
                t < burst
            });
            if m.len() >= self.max {
                if let Some(old) = m.iter().min_by_key(|(_, b)| b.at).map(|(k, _)| k.clone()) {
                    m.remove(&old);
                }
            }
        }
        let b = m.entry(k.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = secs_between(b.at, now);
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

struct Failures {
    count: u32,
    blocked_until: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
}

/// The limits of one service.
pub(crate) struct Limits {
    principals: Buckets<uuid::Uuid>,
    sources: Buckets<std::net::IpAddr>,
    failures: Mutex<HashMap<std::net::IpAddr, Failures>>,
    /// How many addresses `failures` holds, readable without the lock: on the hot path
    /// (no address has failed lately) a request takes no lock for the back-off check.
    failing: std::sync::atomic::AtomicUsize,
    cfg: LimitsConfig,
}

impl Limits {
    pub fn new(cfg: &LimitsConfig) -> Self {
        Limits {
            principals: Buckets::new(
                cfg.per_principal_rps,
                cfg.per_principal_burst,
                cfg.max_tracked,
            ),
            sources: Buckets::new(cfg.per_source_rps, cfg.per_source_burst, cfg.max_tracked),
            failures: Mutex::new(HashMap::new()),
            failing: std::sync::atomic::AtomicUsize::new(0),
            cfg: cfg.clone(),
        }
    }

    /// Admits a request from an address: not in an authentication back-off, not over rate.
    pub fn admit_source(&self, ip: Option<std::net::IpAddr>, now: DateTime<Utc>) -> Result<()> {
        let Some(ip) = ip else { return Ok(()) };
        if let Some(f) = self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&ip)
        {
            if let Some(until) = f.blocked_until.filter(|u| *u > now) {
                return Err(Error::RateLimited {
                    retry_after_secs: (until - now).num_seconds().max(1) as u64,
                });
            }
        }
        self.sources.take(&ip, now).map_err(|s| Error::RateLimited {
            retry_after_secs: s,
        })
    }

    /// Admits a request of an authenticated principal.
    pub fn admit_principal(&self, id: uuid::Uuid, now: DateTime<Utc>) -> Result<()> {
        self.principals
            .take(&id, now)
            .map_err(|s| Error::RateLimited {
                retry_after_secs: s,
            })
    }

    /// Counts a failed authentication; past the free allowance each failure doubles the
    /// wait (1 s, 2 s, 4 s, ... up to the maximum).
    pub fn failed(&self, ip: Option<std::net::IpAddr>, now: DateTime<Utc>) {
        let Some(ip) = ip else { return };
        let mut m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= self.cfg.max_tracked && !m.contains_key(&ip) {
            if let Some(old) = m.iter().min_by_key(|(_, f)| f.at).map(|(k, _)| *k) {
                m.remove(&old);
            }
        }
        self.failing.store(
            m.len() + usize::from(!m.contains_key(&ip)),
            std::sync::atomic::Ordering::Relaxed,
        );
        let f = m.entry(ip).or_insert(Failures {
            count: 0,
            blocked_until: None,
            at: now,
        });
        // Failures an hour old are forgotten.
        if now - f.at > chrono::Duration::hours(1) {
            f.count = 0;
        }
        f.count += 1;
        f.at = now;
        if f.count > self.cfg.auth_failures_free {
            let n = (f.count - self.cfg.auth_failures_free - 1).min(20);
            let secs = (1u64 << n).min(self.cfg.auth_backoff_max_secs.max(1));
            f.blocked_until = Some(now + chrono::Duration::seconds(secs as i64));
        }
    }

    /// A successful authentication clears the address's record.
    pub fn succeeded(&self, ip: Option<std::net::IpAddr>) {
        if let Some(ip) = ip {
            if self.failing.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                return;
            }
            let mut m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if m.remove(&ip).is_some() {
                self.failing
                    .store(m.len(), std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_with_time() {
        let b: Buckets<u8> = Buckets::new(1.0, 2.0, 10);
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        assert!(b.take(&1, t0).is_ok());
        assert!(b.take(&1, t0).is_ok());
        assert_eq!(b.take(&1, t0), Err(1));
        assert!(b.take(&2, t0).is_ok(), "keys are independent");
        assert!(b.take(&1, t0 + chrono::Duration::seconds(1)).is_ok());
    }

    #[test]
    fn close_requests_still_refill() {
        // 1000 tokens/s with no burst: one request every 1.5 ms is sustainable.
        let b: Buckets<u8> = Buckets::new(1000.0, 1.0, 10);
        let mut t: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        for i in 0..1000 {
            assert!(b.take(&1, t).is_ok(), "request {i}");
            t += chrono::Duration::microseconds(1500);
        }
        // 10 000 requests 200 µs apart (never a whole millisecond): about one in five
        // gets through, not just the first.
        let b: Buckets<u8> = Buckets::new(1000.0, 1.0, 10);
        let ok = (0..10_000)
            .filter(|i| {
                b.take(&1, t + chrono::Duration::microseconds(200 * i))
                    .is_ok()
            })
            .count();
        assert!((1900..=2100).contains(&ok), "{ok}");
    }

    #[test]
    fn backoff_grows_and_clears() {
        let cfg = LimitsConfig {
            auth_failures_free: 2,
            auth_backoff_max_secs: 8,
            ..Default::default()
        };
        let l = Limits::new(&cfg);
        let ip = Some("10.0.0.1".parse().unwrap());
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        l.failed(ip, t0);
        l.failed(ip, t0);
        assert!(l.admit_source(ip, t0).is_ok(), "free failures");
        let mut waits = vec![];
        for _ in 0..5 {
            l.failed(ip, t0);
            match l.admit_source(ip, t0) {
                Err(Error::RateLimited { retry_after_secs }) => waits.push(retry_after_secs),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 8]);
        assert!(l
            .admit_source(ip, t0 + chrono::Duration::seconds(9))
            .is_ok());
        l.succeeded(ip);
        l.failed(ip, t0);
        assert!(l.admit_source(ip, t0).is_ok());
    }
}
