//! Prometheus metrics of the service: requests by door, operation and outcome with their
//! latency, keys by state, cache hits and misses, the audit backlog and unsigned tail, and
//! whether the server is sealed. Counted where every request ends (the audit event), so
//! every door is covered without code of its own.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    door: String,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    door: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CacheLabels {
    cache: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~26 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.00005, 2.0, 20,
    ))
}

/// The audit writer's values at scrape time.
pub(crate) struct AuditGauges {
    /// Events queued and not yet taken by the writer.
    pub backlog: usize,
    /// Whether the store is taken as unreachable.
    pub store_unreachable: bool,
    /// Events not stored and not yet counted by a `ResumeAudit` event, or still queued.
    pub not_stored: u64,
}

/// The service's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram, fn() -> Histogram>,
    cache_hits: Family<CacheLabels, Counter>,
    cache_misses: Family<CacheLabels, Counter>,
    keys: Family<StateLabels, Gauge>,
    sealed: Gauge,
    audit_backlog: Gauge,
    audit_unsigned: Gauge,
    store_unreachable: Gauge,
    audit_not_stored: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("arca");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by door, operation and outcome (ok or the error code)",
            requests.clone(),
        );
        let latency: Family<OperationLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its outcome, by door and operation",
            latency.clone(),
        );
        let cache_hits = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_hits",
            "Cache lookups answered from memory",
            cache_hits.clone(),
        );
        let cache_misses = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_misses",
            "Cache lookups that went to the store",
            cache_misses.clone(),
        );
        let keys = Family::<StateLabels, Gauge>::default();
        registry.register(
            "keys",
            "Keys by lifecycle state (all tenants)",
            keys.clone(),
        );
        let sealed = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "sealed",
            "1 while the root key is not in memory",
            sealed.clone(),
        );
        let audit_backlog = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "audit_backlog",
            "Audit events queued and not yet stored",
            audit_backlog.clone(),
        );
        let audit_unsigned = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "audit_unsigned_events",
            "Stored audit events not yet covered by a signed checkpoint",
            audit_unsigned.clone(),
        );
        let store_unreachable = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "store_unreachable",
            "1 while the store is taken as unreachable (requests refused, /readyz 503)",
            store_unreachable.clone(),
        );
        let audit_not_stored = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "audit_events_not_stored",
            "Audit events this node could not store and the trail has not yet counted (a ResumeAudit event counts them)",
            audit_not_stored.clone(),
        );
        Metrics {
            registry,
            store_unreachable,
            audit_not_stored,
            requests,
            latency,
            cache_hits,
            cache_misses,
            keys,
            sealed,
            audit_backlog,
            audit_unsigned,
        }
    }

    /// Counts one finished request.
    pub(crate) fn request(&self, door: &str, operation: &str, outcome: &str, secs: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                door: door.into(),
                operation: operation.into(),
                outcome: outcome.into(),
            })
            .inc();
        self.latency
            .get_or_create(&OperationLabels {
                door: door.into(),
                operation: operation.into(),
            })
            .observe(secs);
    }

    /// The hit and miss counters of one cache.
    pub(crate) fn cache_counters(&self, cache: &str) -> (Counter, Counter) {
        let l = CacheLabels {
            cache: cache.into(),
        };
        (
            self.cache_hits.get_or_create(&l).clone(),
            self.cache_misses.get_or_create(&l).clone(),
        )
    }

    /// Sets the values that are read at scrape time, then encodes everything in the
    /// Prometheus text format. The values read from the store (`stored`: the unsigned
    /// tail, keys by state) are left as they were when the store is unreachable.
    pub(crate) fn render(
        &self,
        sealed: bool,
        audit: &AuditGauges,
        stored: Option<(u64, &[(String, i64)])>,
    ) -> String {
        self.sealed.set(sealed as i64);
        self.audit_backlog.set(audit.backlog as i64);
        self.store_unreachable.set(audit.store_unreachable as i64);
        self.audit_not_stored.set(audit.not_stored as i64);
        if let Some((unsigned, keys)) = stored {
            self.audit_unsigned.set(unsigned as i64);
            self.keys.clear();
            for (state, n) in keys {
                self.keys
                    .get_or_create(&StateLabels {
                        state: state.clone(),
                    })
                    .set(*n);
            }
        }
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
