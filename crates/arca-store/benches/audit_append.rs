//! Criterion benches of the audit writer's store half: one transaction appending a batch of
//! prepared events to the chain of a real SQLite file (WAL, `synchronous = FULL`, so each
//! batch ends in one flush), for batches of 1, 8, 32 and 128 events, and the preparing and
//! linking of one event that the requests and the writer share.
//!
//! Run: `cargo bench -p arca-store --bench audit_append`

use arca_core::audit::{AuditEvent, PreparedEvent, GENESIS};
use arca_store::{KeyStore, SqliteStore};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use uuid::Uuid;

/// An event the size and shape of a REST encrypt's.
fn use_event(i: u64) -> AuditEvent {
    let mut detail = serde_json::Map::new();
    detail.insert("algorithm".into(), "AES_256_GCM".into());
    detail.insert("plaintext_bytes".into(), 1024.into());
    AuditEvent {
        at: chrono::Utc::now(),
        request_id: format!("01a23b27-b59c-720f-a182-{i:012x}"),
        tenant_id: Some(Uuid::from_u128(1)),
        principal_id: Some(Uuid::from_u128(2)),
        principal: "bench".into(),
        credential: Some("api_token".into()),
        source: "127.0.0.1:52814".into(),
        door: "rest".into(),
        operation: "Encrypt".into(),
        key_id: Some(Uuid::from_u128(3)),
        key_version: Some(1),
        outcome: "ok".into(),
        detail,
    }
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(SqliteStore::open(&dir.path().join("arca.db")))
        .unwrap();
    let mut g = c.benchmark_group("audit_append_sqlite");
    for n in [1u64, 8, 32, 128] {
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.to_async(&rt).iter_batched(
                || {
                    (0..n)
                        .map(|i| use_event(i).into())
                        .collect::<Vec<PreparedEvent>>()
                },
                |batch| {
                    let store = &store;
                    async move { store.append_audit(&batch).await.unwrap() }
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn prepare(c: &mut Criterion) {
    let e = use_event(7);
    c.bench_function("audit_prepare_event", |b| {
        b.iter(|| PreparedEvent::new(e.clone()))
    });
    let p = PreparedEvent::new(e);
    c.bench_function("audit_link_prepared_event", |b| {
        b.iter(|| p.link(41, &GENESIS))
    });
}

criterion_group!(benches, append, prepare);
criterion_main!(benches);
