//! The embedded store: one SQLite file in WAL mode with synchronous commits.
//!
//! Rows keep the fields that are searched in columns and the whole record as JSON beside
//! them, so adding a field to the model needs no migration while filters stay indexed. The
//! queries are written once in `sql.rs`; this file holds opening, the pragmas, the
//! migrations and what SQLite does its own way (one process holds the write lock, so names
//! and the audit chain need no lock of their own).

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use arca_core::{Error, Result};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, Sqlite, SqlitePool};
use tokio::sync::broadcast;

use crate::common::{db_err, Combiner, SNAPSHOT_TABLES};
use crate::{Change, Lease, LocalLease, SnapshotRow};

/// The shared queries, compiled for SQLite (and, in the other back-end, for its database:
/// one source, each copy on concrete sqlx types).
#[path = "sql.rs"]
#[allow(
    clippy::duplicate_mod,
    reason = "sql.rs is compiled once per back-end on purpose"
)]
mod sql;
use sql::{Conn, Dialect, Pool, Tx};

type Db = Sqlite;
type Store = SqliteStore;

/// Versioned migrations, applied in order, each once, recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE tenants (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL, wrapped_kek BLOB NOT NULL);
CREATE TABLE principals (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), name TEXT NOT NULL,
    doc TEXT NOT NULL, UNIQUE (tenant_id, name));
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY, principal_id TEXT NOT NULL REFERENCES principals(id),
    tenant_id TEXT NOT NULL, name TEXT NOT NULL, hash BLOB NOT NULL, created_at INTEGER NOT NULL,
    expires_at INTEGER, revoked_at INTEGER, last_used_at INTEGER);
CREATE TABLE keys (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), name TEXT NOT NULL,
    spec TEXT NOT NULL, state TEXT NOT NULL, revision INTEGER NOT NULL, next_due_at INTEGER,
    doc TEXT NOT NULL, UNIQUE (tenant_id, name));
CREATE INDEX keys_due ON keys(next_due_at) WHERE next_due_at IS NOT NULL;
CREATE TABLE key_tags (
    key_id TEXT NOT NULL REFERENCES keys(id), k TEXT NOT NULL, v TEXT NOT NULL,
    PRIMARY KEY (key_id, k));
CREATE TABLE key_versions (
    key_id TEXT NOT NULL REFERENCES keys(id), version INTEGER NOT NULL, state TEXT NOT NULL,
    doc TEXT NOT NULL, material BLOB, PRIMARY KEY (key_id, version));
CREATE TABLE key_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key_id TEXT NOT NULL REFERENCES keys(id),
    at INTEGER NOT NULL, doc TEXT NOT NULL);
CREATE INDEX key_events_key ON key_events(key_id, seq);
CREATE TABLE aliases (
    tenant_id TEXT NOT NULL, alias TEXT NOT NULL, key_id TEXT NOT NULL REFERENCES keys(id),
    PRIMARY KEY (tenant_id, alias));
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, tenant_id TEXT,
    action TEXT NOT NULL, key_id TEXT, outcome TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX audit_tenant ON audit_log(tenant_id, seq);
"#,
    ),
    (
        2,
        r#"
CREATE TABLE records (
    kind TEXT NOT NULL, id TEXT NOT NULL, tenant_id TEXT, revision INTEGER NOT NULL,
    updated_at INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, id));
CREATE INDEX records_tenant ON records(kind, tenant_id, id);
CREATE INDEX api_tokens_principal ON api_tokens(tenant_id, principal_id);
"#,
    ),
    (
        3,
        r#"
ALTER TABLE audit_log RENAME TO audit_log_unchained;
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, tenant_id TEXT, principal_id TEXT,
    principal TEXT NOT NULL, operation TEXT NOT NULL, key_id TEXT, outcome TEXT NOT NULL,
    hash BLOB NOT NULL, doc TEXT NOT NULL);
CREATE INDEX audit_events_tenant ON audit_events(tenant_id, seq);
CREATE INDEX audit_events_key ON audit_events(key_id, seq) WHERE key_id IS NOT NULL;
CREATE INDEX audit_events_at ON audit_events(at);
CREATE TABLE audit_checkpoints (seq INTEGER PRIMARY KEY, doc TEXT NOT NULL);
"#,
    ),
    (
        4,
        // A key's events in a time range (the usage series and report) without reading
        // all of the key's history.
        r#"
CREATE INDEX audit_events_key_at ON audit_events(key_id, at) WHERE key_id IS NOT NULL;
"#,
    ),
    (
        5,
        // Archived segments of the trail (retention): where each file is, its hash, and
        // whether its records were pruned from the store.
        r#"
CREATE TABLE audit_segments (
    first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL UNIQUE, last_hash TEXT NOT NULL,
    last_at INTEGER NOT NULL, file TEXT NOT NULL, sha256 TEXT NOT NULL,
    archived_at INTEGER NOT NULL, pruned_at INTEGER);
"#,
    ),
    (
        6,
        // The compact audit record (issue 20): ids (tenant, principal, key) are stored once
        // in `audit_ids` and the events' columns hold their numbers; `doc` is a BLOB: the
        // JSON of the records written before (kept as they are, they still verify) or, for
        // new ones, the rest of the compact form beside the columns.
        r#"
CREATE TABLE audit_ids (num INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE);
INSERT INTO audit_ids (id)
    SELECT tenant_id FROM audit_events WHERE tenant_id IS NOT NULL
    UNION SELECT principal_id FROM audit_events WHERE principal_id IS NOT NULL
    UNION SELECT key_id FROM audit_events WHERE key_id IS NOT NULL;
CREATE TABLE audit_events_compact (
    seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, tenant_id INTEGER, principal_id INTEGER,
    principal TEXT NOT NULL, operation TEXT NOT NULL, key_id INTEGER, outcome TEXT NOT NULL,
    hash BLOB NOT NULL, doc BLOB NOT NULL);
INSERT INTO audit_events_compact
    SELECT e.seq, e.at, t.num, p.num, e.principal, e.operation, k.num, e.outcome, e.hash,
        CAST(e.doc AS BLOB)
    FROM audit_events e LEFT JOIN audit_ids t ON t.id = e.tenant_id
        LEFT JOIN audit_ids p ON p.id = e.principal_id LEFT JOIN audit_ids k ON k.id = e.key_id;
DROP TABLE audit_events;
ALTER TABLE audit_events_compact RENAME TO audit_events;
CREATE INDEX audit_events_tenant ON audit_events(tenant_id, seq);
CREATE INDEX audit_events_key ON audit_events(key_id, seq) WHERE key_id IS NOT NULL;
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_key_at ON audit_events(key_id, at) WHERE key_id IS NOT NULL;
"#,
    ),
];

/// The SQLite [`KeyStore`](crate::KeyStore).
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The audit writer's one connection: its commits do not wait for the disk
    /// (`synchronous = NORMAL`), its appends are made durable by [`Dialect::sync`], so the
    /// next batch is written while the previous one is flushed.
    audit_pool: SqlitePool,
    /// The write-ahead log, flushed by [`Dialect::sync`].
    wal: std::path::PathBuf,
    path: String,
    /// Key writes, group-committed.
    writer: std::sync::Arc<Combiner>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(db_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A file in this process does not go away between uses; the default ping before
            // each acquire was one more hop to the connection's thread for every query.
            .test_before_acquire(false)
            .connect_with(opts.clone())
            .await
            .map_err(db_err)?;
        let audit_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(opts.synchronous(SqliteSynchronous::Normal))
            .await
            .map_err(db_err)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let store = SqliteStore {
            // One writer: SQLite has one write lock anyway.
            writer: sql::writer(&pool, 1),
            pool,
            audit_pool,
            wal: wal.into(),
            path: path.display().to_string(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        let mut tx = self
            .pool
            .begin_with(Self::BEGIN_WRITE)
            .await
            .map_err(db_err)?;
        sql::migrate(&mut tx, MIGRATIONS).await?;
        tx.commit().await.map_err(db_err)
    }

    /// Closes the pools, checkpointing the WAL.
    pub async fn close(&self) {
        self.audit_pool.close().await;
        self.pool.close().await;
    }
}

impl Dialect for SqliteStore {
    // The write lock from the transaction's start: a read inside it (a revision, the audit
    // head, a name) cannot be overtaken by another writer, so names, rows and the chain
    // need no lock of their own.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";
    const FOR_UPDATE: &'static str = "";
    const INSTR: &'static str = "instr";

    async fn commit_chained(_pool: &Pool, tx: Tx) -> Result<()> {
        // One writer at a time anyway; `synchronous = FULL` makes the commit durable.
        tx.commit().await.map_err(db_err)
    }

    async fn commit_unsynced(tx: Tx) -> Result<()> {
        // A transaction of the audit pool: `synchronous = NORMAL`, the commit is written to
        // the WAL (kept if Arca crashes) but not flushed.
        tx.commit().await.map_err(db_err)
    }

    async fn sync(&self) -> Result<()> {
        // Flushing the WAL file makes every commit written to it durable, whichever
        // connection wrote it. A commit no longer in the WAL was checkpointed into the
        // database file, which the checkpoint flushed before the WAL could be reused.
        let wal = self.wal.clone();
        tokio::task::spawn_blocking(move || match std::fs::File::open(&wal) {
            Ok(f) => f.sync_data(),
            // No WAL: every connection closed, the last one checkpointed and flushed it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        })
        .await
        .map_err(|e| Error::internal(format!("the WAL flush did not finish: {e}")))?
        .map_err(|e| Error::Unavailable {
            message: format!("the store's write-ahead log could not be flushed: {e}"),
        })
    }

    fn audit_pool(&self) -> &Pool {
        &self.audit_pool
    }

    fn bind_marker(_n: usize) -> String {
        "?".into()
    }

    async fn lock_name(_conn: &mut Conn, _tenant: &str, _name: &str) -> Result<()> {
        Ok(())
    }

    async fn lock_chain(_conn: &mut Conn) -> Result<()> {
        Ok(())
    }

    async fn notify(_conn: &mut Conn, _changes: &[Change]) -> Result<()> {
        // One process: nobody else caches.
        Ok(())
    }

    async fn erase(conn: &mut Conn, key_id: &str, version: i64) -> Result<()> {
        // Overwrite before dropping, so the old bytes do not linger in this page.
        sqlx::query("UPDATE key_versions SET material = zeroblob(length(material)) WHERE key_id = $1 AND version = $2")
            .bind(key_id)
            .bind(version)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn column_types(
        _conn: &mut Conn,
        _table: &str,
    ) -> Result<Option<HashMap<String, String>>> {
        // A column takes any value; a name that is not a column fails the insert.
        Ok(None)
    }

    async fn restored(_conn: &mut Conn) -> Result<()> {
        // AUTOINCREMENT continues after the largest key event number inserted.
        Ok(())
    }

    fn label(&self) -> String {
        format!("sqlite:{}", self.path)
    }

    async fn snapshot_rows(
        &self,
        each: &mut (dyn FnMut(SnapshotRow) -> Result<()> + Send),
    ) -> Result<()> {
        // One read transaction: in WAL mode it sees the database as of its first read,
        // whatever commits meanwhile.
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for table in SNAPSHOT_TABLES {
            let mut after: i64 = i64::MIN;
            loop {
                let rows = sqlx::query(AssertSqlSafe(format!(
                    "SELECT rowid AS __rowid, * FROM {table} WHERE rowid > $1 ORDER BY rowid LIMIT 1000"
                )))
                .bind(after)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
                let Some(last) = rows.last() else { break };
                after = last.try_get("__rowid").map_err(db_err)?;
                for r in &rows {
                    let mut row = sql::row_to_json(r)?;
                    row.remove("__rowid");
                    each(SnapshotRow {
                        table: table.to_string(),
                        row,
                    })?;
                }
            }
        }
        tx.rollback().await.map_err(db_err)
    }

    fn change_feed(&self) -> Option<broadcast::Receiver<Change>> {
        None
    }

    async fn lease(&self, _name: &str) -> Result<Option<Box<dyn Lease>>> {
        // One process: nobody to exclude.
        Ok(Some(Box::new(LocalLease)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyStore;

    /// WAL, synchronous commits, foreign keys, and migrations applied once and recorded.
    #[tokio::test]
    async fn pragmas_and_versioned_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("arca.db");
        let s = SqliteStore::open(&path).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(mode.to_ascii_lowercase(), "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        assert_eq!(
            s.schema_version().await.unwrap(),
            MIGRATIONS.last().unwrap().0
        );
        s.close().await;
        // Reopening applies nothing twice.
        let s = SqliteStore::open(&path).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schema_migrations")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(n, MIGRATIONS.len() as i64);
        assert!(s.put_meta_if_absent("x", b"1").await.unwrap());
        assert!(!s.put_meta_if_absent("x", b"2").await.unwrap());
        assert_eq!(s.get_meta("x").await.unwrap(), Some(b"1".to_vec()));
    }

    /// Issue 20: a trail written before the compact record (JSON records, ids as text in
    /// the columns) is migrated in place, still verifies and reads back, and the chain goes
    /// on in the compact form: one trail, switched once.
    #[tokio::test]
    async fn json_records_are_migrated_and_the_chain_goes_on_compact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let ids = crate::json_era::Ids::new();
        {
            let pool = SqlitePool::connect_with(
                SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
                    .unwrap()
                    .create_if_missing(true),
            )
            .await
            .unwrap();
            sqlx::raw_sql("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
                .execute(&pool)
                .await
                .unwrap();
            for (version, sql) in &MIGRATIONS[..5] {
                sqlx::raw_sql(AssertSqlSafe(*sql))
                    .execute(&pool)
                    .await
                    .unwrap();
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)")
                    .bind(version)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            // As the JSON-era Arca wrote them: the canonical JSON as TEXT, ids as text.
            for (e, s) in ids.json_records() {
                sqlx::query("INSERT INTO audit_events (seq, at, tenant_id, principal_id, principal, operation, key_id, outcome, hash, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                    .bind(s.seq as i64)
                    .bind(e.at.timestamp_millis())
                    .bind(e.tenant_id.map(|t| t.to_string()))
                    .bind(e.principal_id.map(|t| t.to_string()))
                    .bind(&e.principal)
                    .bind(&e.operation)
                    .bind(e.key_id.map(|t| t.to_string()))
                    .bind(&e.outcome)
                    .bind(s.hash.to_vec())
                    .bind(String::from_utf8(s.doc).unwrap())
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }
        let s = SqliteStore::open(&path).await.unwrap();
        assert_eq!(
            s.schema_version().await.unwrap(),
            MIGRATIONS.last().unwrap().0
        );
        ids.check_migrated(&s).await;
        s.close().await;
    }

    /// A file written before the last migration (schema version 3, as an older Arca left it)
    /// is brought up to date on open, and its rows read back through the shared queries.
    #[tokio::test]
    async fn an_older_file_is_migrated_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let tenant_id = uuid::Uuid::now_v7();
        {
            let pool = SqlitePool::connect_with(
                SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
                    .unwrap()
                    .create_if_missing(true),
            )
            .await
            .unwrap();
            sqlx::raw_sql("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
                .execute(&pool)
                .await
                .unwrap();
            for (version, sql) in &MIGRATIONS[..3] {
                sqlx::raw_sql(AssertSqlSafe(*sql))
                    .execute(&pool)
                    .await
                    .unwrap();
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)")
                    .bind(version)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            let doc = serde_json::json!({
                "id": tenant_id, "name": "old", "created_at": chrono::Utc::now(), "disabled": false
            });
            sqlx::query("INSERT INTO tenants (id, name, doc, wrapped_kek) VALUES (?, ?, ?, ?)")
                .bind(tenant_id.to_string())
                .bind("old")
                .bind(doc.to_string())
                .bind(b"kek".to_vec())
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        let s = SqliteStore::open(&path).await.unwrap();
        assert_eq!(
            s.schema_version().await.unwrap(),
            MIGRATIONS.last().unwrap().0
        );
        let (t, kek) = s.get_tenant(tenant_id).await.unwrap().unwrap();
        assert_eq!((t.name.as_str(), kek.as_slice()), ("old", &b"kek"[..]));
        assert_eq!(
            s.find_tenant_by_name("old").await.unwrap().unwrap().id,
            tenant_id
        );
        s.close().await;
    }
}
