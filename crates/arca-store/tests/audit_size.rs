//! Issue 20: what the audit trail costs in the store, at most 300 bytes per use event on
//! average. 20 000 events shaped like a REST encrypt's are appended in the writer's batches
//! (64 events, one transaction each) to a fresh store, and the store's growth is divided by
//! their number: on SQLite the database file's growth once its write-ahead log is
//! checkpointed into it (closing the store does that), on PostgreSQL the audit tables' total
//! relation size (tables, indexes, TOAST).
//!
//! Run: `cargo test -p arca-store --test audit_size -- --nocapture` (prints the numbers
//! docs/benchmarks.md reports).

use arca_core::audit::{AuditEvent, PreparedEvent};
use arca_store::testing::TestPostgres;
use arca_store::{KeyStore, PgStore, SqliteStore};
use uuid::Uuid;

const EVENTS: u64 = 20_000;
const BATCH: usize = 64;

/// An encrypt through the REST door: one tenant and principal, one of 10 keys, a new
/// request id and client port each time.
fn use_event(i: u64) -> AuditEvent {
    let mut detail = serde_json::Map::new();
    detail.insert("algorithm".into(), "AES_256_GCM".into());
    detail.insert("plaintext_bytes".into(), 1024.into());
    AuditEvent {
        at: chrono::Utc::now(),
        request_id: Uuid::now_v7().to_string(),
        tenant_id: Some(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001)),
        principal_id: Some(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002)),
        principal: "app-server".into(),
        credential: Some("api_token".into()),
        source: format!("10.0.3.17:{}", 40_000 + i % 20_000),
        door: "rest".into(),
        operation: "Encrypt".into(),
        key_id: Some(Uuid::from_u128(
            0x0193_0000_0000_7000_8000_0000_0001_0000 + (i % 10) as u128,
        )),
        key_version: Some(1),
        outcome: "ok".into(),
        detail,
    }
}

async fn append_all(store: &dyn KeyStore) {
    let events: Vec<PreparedEvent> = (0..EVENTS).map(|i| use_event(i).into()).collect();
    for batch in events.chunks(BATCH) {
        store.append_audit(batch).await.unwrap();
    }
    assert_eq!(store.audit_head().await.unwrap().unwrap().0, EVENTS);
}

#[tokio::test]
async fn a_use_event_costs_at_most_300_bytes_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("arca.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    let before = std::fs::metadata(&path).unwrap().len();
    let store = SqliteStore::open(&path).await.unwrap();
    append_all(&store).await;
    store.close().await;
    assert!(
        !dir.path().join("arca.db-wal").exists()
            || std::fs::metadata(dir.path().join("arca.db-wal"))
                .unwrap()
                .len()
                == 0,
        "the write-ahead log was checkpointed"
    );
    let after = std::fs::metadata(&path).unwrap().len();
    if let Ok(keep) = std::env::var("ARCA_AUDIT_SIZE_KEEP") {
        // For a look inside (`sqlite3 FILE "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"`).
        std::fs::copy(&path, keep).unwrap();
    }
    let per_event = (after - before) as f64 / EVENTS as f64;
    println!(
        "sqlite: {EVENTS} use events grew the database by {} bytes: {per_event:.1} bytes per event",
        after - before
    );
    assert!(per_event <= 300.0, "{per_event:.1} bytes per event");
}

#[tokio::test]
async fn a_use_event_costs_this_much_in_postgres() {
    let pg = TestPostgres::start();
    let url = pg.database("audit_size").await;
    let store = PgStore::connect(&url).await.unwrap();
    append_all(&store).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let size: i64 = sqlx::query_scalar(
        "SELECT SUM(pg_total_relation_size(c.oid))::BIGINT FROM pg_class c \
         WHERE c.relkind = 'r' AND c.relname IN ('audit_events', 'audit_ids')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let per_event = size as f64 / EVENTS as f64;
    println!(
        "postgres: {EVENTS} use events take {size} bytes (tables, indexes, TOAST): {per_event:.1} bytes per event"
    );
    // No bound: PostgreSQL's own row overhead (a 24-byte header and a 4-byte pointer per
    // row, per index entry 16) is most of it; the number is reported in docs/benchmarks.md.
    assert!(per_event > 0.0);
    pool.close().await;
}
