//! The embedded store: one SQLite file in WAL mode with synchronous commits.
//!
//! Rows keep the fields that are searched in columns and the whole record as JSON beside
//! them, so adding a field to the model needs no migration while filters stay indexed.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use arca_core::model::{Key, KeyEvent, KeyVersion, Principal, Tenant};
use arca_core::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, SqlitePool};
use uuid::Uuid;

use arca_core::audit::{link, AuditColumns, AuditEvent, Checkpoint, StoredEvent, GENESIS};

use crate::common::{
    blob_json, commit_failed, db_err, from_ms, json_err, ms, restore_cells, to_json, Combiner,
    SNAPSHOT_TABLES,
};
use crate::{
    ApiToken, AuditQuery, KeyFilter, KeyStore, KeyWrite, MaterialChange, Record, UsageRow,
};

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
];

fn doc<T: serde::de::DeserializeOwned>(row: &sqlx::sqlite::SqliteRow) -> Result<T> {
    let s: String = row.try_get("doc").map_err(db_err)?;
    serde_json::from_str(&s).map_err(json_err)
}

/// The SQLite [`KeyStore`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
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
            .connect_with(opts)
            .await
            .map_err(db_err)?;
        let p = pool.clone();
        // One writer: SQLite has one write lock anyway.
        let writer = std::sync::Arc::new(Combiner::spawn(1, move |w| {
            let p = p.clone();
            async move { apply_batch(&p, w).await }
        }));
        let store = SqliteStore {
            pool,
            path: path.display().to_string(),
            writer,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        for (version, sql) in MIGRATIONS {
            let mut tx = self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(db_err)?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
            if done.is_some() {
                continue;
            }
            sqlx::raw_sql(AssertSqlSafe(*sql))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
                .bind(version)
                .bind(ms(Utc::now()))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            tracing::info!(version, "applied store migration");
        }
        Ok(())
    }

    /// The schema version in force (the last migration applied).
    pub async fn schema_version(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }

    /// A write transaction that holds SQLite's write lock from its start, so that a read
    /// inside it (a revision, the audit head) cannot be overtaken by another writer.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn token_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<ApiToken> {
    let g = |c: &str| -> Result<String> { r.try_get::<String, _>(c).map_err(db_err) };
    Ok(ApiToken {
        id: g("id")?,
        principal_id: Uuid::parse_str(&g("principal_id")?)
            .map_err(|e| Error::internal(e.to_string()))?,
        tenant_id: Uuid::parse_str(&g("tenant_id")?).map_err(|e| Error::internal(e.to_string()))?,
        name: g("name")?,
        hash: r.try_get("hash").map_err(db_err)?,
        created_at: from_ms(Some(r.try_get("created_at").map_err(db_err)?)).unwrap_or_default(),
        expires_at: from_ms(r.try_get("expires_at").map_err(db_err)?),
        revoked_at: from_ms(r.try_get("revoked_at").map_err(db_err)?),
        last_used_at: from_ms(r.try_get("last_used_at").map_err(db_err)?),
    })
}

fn record_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Record> {
    let tenant: Option<String> = r.try_get("tenant_id").map_err(db_err)?;
    Ok(Record {
        kind: r.try_get("kind").map_err(db_err)?,
        id: r.try_get("id").map_err(db_err)?,
        tenant_id: tenant
            .map(|t| Uuid::parse_str(&t).map_err(|e| Error::internal(e.to_string())))
            .transpose()?,
        revision: r.try_get("revision").map_err(db_err)?,
        doc: doc(r)?,
        updated_at: from_ms(Some(r.try_get("updated_at").map_err(db_err)?)).unwrap_or_default(),
    })
}

async fn insert_record<'e, E>(ex: E, r: &Record) -> Result<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query("INSERT INTO records (kind, id, tenant_id, revision, updated_at, doc) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(&r.kind)
        .bind(&r.id)
        .bind(r.tenant_id.map(|t| t.to_string()))
        .bind(r.revision)
        .bind(ms(r.updated_at))
        .bind(to_json(&r.doc)?)
        .execute(ex)
        .await
        .map_err(|e| match db_err(e) {
            Error::Conflict { .. } => Error::conflict(format!("{} {} already exists", r.kind, r.id)),
            other => other,
        })?;
    Ok(())
}

fn stored_event(r: &sqlx::sqlite::SqliteRow) -> Result<StoredEvent> {
    let seq: i64 = r.try_get("seq").map_err(db_err)?;
    let hash: Vec<u8> = r.try_get("hash").map_err(db_err)?;
    Ok(StoredEvent {
        seq: seq as u64,
        // A stored hash of the wrong length is kept visibly wrong, for the verifier to name.
        hash: hash.try_into().unwrap_or([0xff; 32]),
        doc: r.try_get("doc").map_err(db_err)?,
        columns: Some(AuditColumns {
            at_ms: r.try_get("at").map_err(db_err)?,
            tenant_id: r.try_get("tenant_id").map_err(db_err)?,
            principal_id: r.try_get("principal_id").map_err(db_err)?,
            principal: r.try_get("principal").map_err(db_err)?,
            operation: r.try_get("operation").map_err(db_err)?,
            key_id: r.try_get("key_id").map_err(db_err)?,
            outcome: r.try_get("outcome").map_err(db_err)?,
        }),
    })
}

fn row_to_json(r: &sqlx::sqlite::SqliteRow) -> Result<serde_json::Map<String, serde_json::Value>> {
    use sqlx::{Column, TypeInfo, ValueRef};
    let mut m = serde_json::Map::new();
    for c in r.columns() {
        let name = c.name();
        if name == "__rowid" {
            continue;
        }
        let raw = r.try_get_raw(c.ordinal()).map_err(db_err)?;
        let v = if raw.is_null() {
            serde_json::Value::Null
        } else {
            match raw.type_info().name() {
                "INTEGER" => r.try_get::<i64, _>(c.ordinal()).map_err(db_err)?.into(),
                "REAL" => r.try_get::<f64, _>(c.ordinal()).map_err(db_err)?.into(),
                "BLOB" => blob_json(&r.try_get::<Vec<u8>, _>(c.ordinal()).map_err(db_err)?),
                _ => r.try_get::<String, _>(c.ordinal()).map_err(db_err)?.into(),
            }
        };
        m.insert(name.to_string(), v);
    }
    Ok(m)
}

struct SqliteRestore {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    /// Events the new data directory recorded before the restore (its start, the unseal),
    /// linked again after the restored trail on commit.
    since: Vec<AuditEvent>,
}

#[async_trait]
impl crate::RestoreTx for SqliteRestore {
    async fn add(&mut self, row: &crate::SnapshotRow) -> Result<()> {
        use crate::common::Cell;
        let cells = restore_cells(row)?;
        let verb = if row.table == "meta" {
            "INSERT OR REPLACE"
        } else {
            "INSERT"
        };
        let sql = format!(
            "{verb} INTO {} ({}) VALUES ({})",
            row.table,
            cells.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", "),
            vec!["?"; cells.len()].join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (_, cell) in cells {
            q = match cell {
                Cell::Null => q.bind(Option::<String>::None),
                Cell::Int(i) => q.bind(i),
                Cell::Real(f) => q.bind(f),
                Cell::Text(t) => q.bind(t),
                Cell::Bytes(b) => q.bind(b),
            };
        }
        q.execute(&mut *self.tx).await.map_err(db_err)?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let mut me = *self;
        append_chain(&mut me.tx, &me.since).await?;
        me.tx.commit().await.map_err(db_err)
    }
}

/// The last record's position and hash.
async fn head(conn: &mut sqlx::SqliteConnection) -> Result<Option<(u64, [u8; 32])>> {
    let row = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    row.map(|r| {
        let seq: i64 = r.try_get("seq").map_err(db_err)?;
        let hash: Vec<u8> = r.try_get("hash").map_err(db_err)?;
        Ok((seq as u64, hash.try_into().unwrap_or([0xff; 32])))
    })
    .transpose()
}

/// Appends events to the hash chain inside the caller's transaction, so that a change and
/// its event commit together or not at all. The transaction holds SQLite's write lock
/// (`BEGIN IMMEDIATE`), so no other writer can read the same head.
async fn append_chain(conn: &mut sqlx::SqliteConnection, events: &[AuditEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let (mut seq, mut prev) = head(conn).await?.unwrap_or((0, GENESIS));
    for chunk in events.chunks(64) {
        let mut sql = String::from(
            "INSERT INTO audit_events (seq, at, tenant_id, principal_id, principal, operation, key_id, outcome, hash, doc) VALUES ",
        );
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "" } else { ", " });
            sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        }
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for e in chunk {
            seq += 1;
            let s = link(seq, &prev, e);
            prev = s.hash;
            q = q
                .bind(seq as i64)
                .bind(ms(e.at))
                .bind(e.tenant_id.map(|t| t.to_string()))
                .bind(e.principal_id.map(|p| p.to_string()))
                .bind(e.principal.clone())
                .bind(e.operation.clone())
                .bind(e.key_id.map(|k| k.to_string()))
                .bind(e.outcome.clone())
                .bind(s.hash.to_vec())
                .bind(s.doc);
        }
        q.execute(&mut *conn).await.map_err(db_err)?;
    }
    Ok(())
}

async fn apply_key_write(tx: &mut sqlx::SqliteConnection, w: &KeyWrite) -> Result<()> {
    let k = &w.key;
    let id = k.id.to_string();
    let tenant = k.tenant_id.to_string();
    match w.expected_revision {
        None => {
            let clash: Option<String> =
                sqlx::query_scalar("SELECT alias FROM aliases WHERE tenant_id = ? AND alias = ?")
                    .bind(&tenant)
                    .bind(&k.name)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
            if clash.is_some() {
                return Err(Error::conflict(format!(
                    "the name {:?} is already an alias in this tenant",
                    k.name
                )));
            }
            sqlx::query("INSERT INTO keys (id, tenant_id, name, spec, state, revision, next_due_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(&id)
                .bind(&tenant)
                .bind(&k.name)
                .bind(k.spec.as_str())
                .bind(k.state.as_str())
                .bind(k.revision)
                .bind(w.next_due_at.map(ms))
                .bind(to_json(k)?)
                .execute(&mut *tx)
                .await
                .map_err(|e| match db_err(e) {
                    Error::Conflict { .. } => Error::conflict(format!("a key named {:?} already exists in this tenant", k.name)),
                    other => other,
                })?;
        }
        Some(expected) => {
            let r = sqlx::query("UPDATE keys SET state = ?, revision = ?, next_due_at = ?, doc = ? WHERE id = ? AND revision = ?")
                .bind(k.state.as_str())
                .bind(k.revision)
                .bind(w.next_due_at.map(ms))
                .bind(to_json(k)?)
                .bind(&id)
                .bind(expected)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() != 1 {
                return Err(Error::conflict(format!(
                    "key {} was changed concurrently; retry",
                    k.id
                )));
            }
            sqlx::query("DELETE FROM key_tags WHERE key_id = ?")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
    }
    for (tk, tv) in &k.tags {
        sqlx::query("INSERT INTO key_tags (key_id, k, v) VALUES (?, ?, ?)")
            .bind(&id)
            .bind(tk)
            .bind(tv)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    for vw in &w.versions {
        let v = &vw.version;
        let vdoc = to_json(v)?;
        match &vw.material {
            MaterialChange::Set(m) => {
                sqlx::query("INSERT INTO key_versions (key_id, version, state, doc, material) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key_id, version) DO UPDATE SET state = excluded.state, doc = excluded.doc, material = excluded.material")
                    .bind(&id).bind(v.version as i64).bind(v.state.as_str()).bind(&vdoc).bind(m)
                    .execute(&mut *tx).await.map_err(db_err)?;
            }
            MaterialChange::Keep => {
                sqlx::query(
                    "UPDATE key_versions SET state = ?, doc = ? WHERE key_id = ? AND version = ?",
                )
                .bind(v.state.as_str())
                .bind(&vdoc)
                .bind(&id)
                .bind(v.version as i64)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
            MaterialChange::Erase => {
                // Overwrite before dropping, so the old bytes do not linger in this page.
                sqlx::query("UPDATE key_versions SET material = zeroblob(length(material)) WHERE key_id = ? AND version = ?")
                    .bind(&id).bind(v.version as i64)
                    .execute(&mut *tx).await.map_err(db_err)?;
                sqlx::query("UPDATE key_versions SET state = ?, doc = ?, material = NULL WHERE key_id = ? AND version = ?")
                    .bind(v.state.as_str()).bind(&vdoc).bind(&id).bind(v.version as i64)
                    .execute(&mut *tx).await.map_err(db_err)?;
            }
        }
    }
    for r in &w.records {
        insert_record(&mut *tx, r).await?;
    }
    for e in &w.events {
        sqlx::query("INSERT INTO key_events (key_id, at, doc) VALUES (?, ?, ?)")
            .bind(&id)
            .bind(ms(e.at))
            .bind(to_json(e)?)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// Commits a batch of key writes in one transaction (see [`Combiner`]).
async fn apply_batch(pool: &SqlitePool, writes: Vec<KeyWrite>) -> Vec<Result<()>> {
    let mut tx = match pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err) {
        Ok(tx) => tx,
        Err(e) => return writes.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut results = Vec::with_capacity(writes.len());
    let mut audit = Vec::new();
    for w in &writes {
        let r = async {
            sqlx::query("SAVEPOINT w")
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            match apply_key_write(&mut tx, w).await {
                Ok(()) => {
                    sqlx::query("RELEASE w")
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    Ok(())
                }
                Err(e) => {
                    sqlx::query("ROLLBACK TO w")
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    sqlx::query("RELEASE w")
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    Err(e)
                }
            }
        }
        .await;
        if r.is_ok() {
            audit.extend(w.audit.iter().cloned());
        }
        results.push(r);
    }
    let done = async {
        append_chain(&mut tx, &audit).await?;
        tx.commit().await.map_err(db_err)
    }
    .await;
    if let Err(e) = done {
        commit_failed(&mut results, &e);
    }
    results
}

#[async_trait]
impl KeyStore for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM meta WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn put_meta_if_absent(&self, name: &str, value: &[u8]) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn replace_root_material(
        &self,
        tenant_keks: &[(Uuid, Vec<u8>)],
        meta: &[(String, Vec<u8>)],
        expected_meta: (&str, &[u8]),
        audit: &[AuditEvent],
    ) -> Result<()> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        let current: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM meta WHERE name = ?")
            .bind(expected_meta.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if current.as_deref() != Some(expected_meta.1) {
            return Err(Error::conflict(
                "the root key's custody changed concurrently; nothing was changed",
            ));
        }
        for (id, wrapped) in tenant_keks {
            let r = sqlx::query("UPDATE tenants SET wrapped_kek = ? WHERE id = ?")
                .bind(wrapped)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() != 1 {
                return Err(Error::conflict(format!(
                    "tenant {id} vanished during the change"
                )));
            }
        }
        for (name, value) in meta {
            sqlx::query("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
                .bind(name)
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        append_chain(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn tenant_keks(&self) -> Result<Vec<(Uuid, Vec<u8>)>> {
        sqlx::query("SELECT id, wrapped_kek FROM tenants ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| {
                let id: String = r.try_get("id").map_err(db_err)?;
                Ok((
                    Uuid::parse_str(&id).map_err(|e| Error::internal(e.to_string()))?,
                    r.try_get("wrapped_kek").map_err(db_err)?,
                ))
            })
            .collect()
    }

    async fn create_tenant(
        &self,
        t: &Tenant,
        wrapped_kek: &[u8],
        audit: &[AuditEvent],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO tenants (id, name, doc, wrapped_kek) VALUES (?, ?, ?, ?)")
            .bind(t.id.to_string())
            .bind(&t.name)
            .bind(to_json(t)?)
            .bind(wrapped_kek)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        append_chain(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_tenant(&self, id: Uuid) -> Result<Option<(Tenant, Vec<u8>)>> {
        let row = sqlx::query("SELECT doc, wrapped_kek FROM tenants WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        match row {
            None => Ok(None),
            Some(r) => Ok(Some((doc(&r)?, r.try_get("wrapped_kek").map_err(db_err)?))),
        }
    }

    async fn find_tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        let row = sqlx::query("SELECT doc FROM tenants WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| doc(&r)).transpose()
    }

    async fn update_tenant(&self, t: &Tenant, audit: &[AuditEvent]) -> Result<()> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("UPDATE tenants SET name = ?, doc = ? WHERE id = ?")
            .bind(&t.name)
            .bind(to_json(t)?)
            .bind(t.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() != 1 {
            return Err(Error::not_found("tenant", t.id.to_string()));
        }
        append_chain(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        sqlx::query("SELECT doc FROM tenants ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(doc)
            .collect()
    }

    async fn find_principal(&self, tenant: Uuid, name: &str) -> Result<Option<Principal>> {
        let row = sqlx::query("SELECT doc FROM principals WHERE tenant_id = ? AND name = ?")
            .bind(tenant.to_string())
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| doc(&r)).transpose()
    }

    async fn update_principal(&self, p: &Principal, audit: &[AuditEvent]) -> Result<()> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("UPDATE principals SET doc = ? WHERE id = ? AND tenant_id = ?")
            .bind(to_json(p)?)
            .bind(p.id.to_string())
            .bind(p.tenant_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() != 1 {
            return Err(Error::not_found("principal", p.id.to_string()));
        }
        append_chain(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn list_principals(&self, tenant: Uuid) -> Result<Vec<Principal>> {
        sqlx::query("SELECT doc FROM principals WHERE tenant_id = ? ORDER BY name")
            .bind(tenant.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(doc)
            .collect()
    }

    async fn list_tokens(&self, tenant: Uuid, principal: Option<Uuid>) -> Result<Vec<ApiToken>> {
        sqlx::query("SELECT * FROM api_tokens WHERE tenant_id = ? AND (? IS NULL OR principal_id = ?) ORDER BY created_at, id")
            .bind(tenant.to_string())
            .bind(principal.map(|p| p.to_string()))
            .bind(principal.map(|p| p.to_string()))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(token_from_row)
            .collect()
    }

    async fn revoke_token(
        &self,
        tenant: Uuid,
        id: &str,
        at: DateTime<Utc>,
        audit: &[AuditEvent],
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND tenant_id = ?")
            .bind(ms(at))
            .bind(id)
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        append_chain(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(ms(at))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn put_record(
        &self,
        r: &Record,
        expected_revision: Option<i64>,
        audit: &[AuditEvent],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        match expected_revision {
            None => insert_record(&mut *tx, r).await?,
            Some(expected) => {
                let done = sqlx::query("UPDATE records SET revision = ?, updated_at = ?, doc = ?, tenant_id = ? WHERE kind = ? AND id = ? AND revision = ?")
                    .bind(r.revision)
                    .bind(ms(r.updated_at))
                    .bind(to_json(&r.doc)?)
                    .bind(r.tenant_id.map(|t| t.to_string()))
                    .bind(&r.kind)
                    .bind(&r.id)
                    .bind(expected)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if done.rows_affected() != 1 {
                    return Err(Error::conflict(format!(
                        "{} {} was changed concurrently; retry",
                        r.kind, r.id
                    )));
                }
            }
        }
        append_chain(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_record(&self, kind: &str, id: &str) -> Result<Option<Record>> {
        let row = sqlx::query("SELECT * FROM records WHERE kind = ? AND id = ?")
            .bind(kind)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| record_from_row(&r)).transpose()
    }

    async fn list_records(
        &self,
        kind: &str,
        tenant: Option<Uuid>,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        // Prefix match by range, so that `_` and `%` in ids mean nothing special.
        let upper = format!("{prefix}\u{10FFFF}");
        sqlx::query("SELECT * FROM records WHERE kind = ? AND (? IS NULL OR tenant_id = ?) AND id >= ? AND id < ? AND (? IS NULL OR id > ?) ORDER BY id LIMIT ?")
            .bind(kind)
            .bind(tenant.map(|t| t.to_string()))
            .bind(tenant.map(|t| t.to_string()))
            .bind(prefix)
            .bind(&upper)
            .bind(after)
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(record_from_row)
            .collect()
    }

    async fn delete_record(&self, kind: &str, id: &str, audit: &[AuditEvent]) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM records WHERE kind = ? AND id = ?")
            .bind(kind)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        append_chain(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn create_principal(&self, p: &Principal, audit: &[AuditEvent]) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO principals (id, tenant_id, name, doc) VALUES (?, ?, ?, ?)")
            .bind(p.id.to_string())
            .bind(p.tenant_id.to_string())
            .bind(&p.name)
            .bind(to_json(p)?)
            .execute(&mut *tx)
            .await
            .map_err(|e| match db_err(e) {
                Error::Conflict { .. } => Error::conflict(format!(
                    "a principal named {:?} already exists in this tenant",
                    p.name
                )),
                other => other,
            })?;
        append_chain(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_principal(&self, id: Uuid) -> Result<Option<Principal>> {
        let row = sqlx::query("SELECT doc FROM principals WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| doc(&r)).transpose()
    }

    async fn create_token(&self, t: &ApiToken, audit: &[AuditEvent]) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("INSERT INTO api_tokens (id, principal_id, tenant_id, name, hash, created_at, expires_at, revoked_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(&t.id)
            .bind(t.principal_id.to_string())
            .bind(t.tenant_id.to_string())
            .bind(&t.name)
            .bind(&t.hash)
            .bind(ms(t.created_at))
            .bind(t.expires_at.map(ms))
            .bind(t.revoked_at.map(ms))
            .bind(t.last_used_at.map(ms))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        append_chain(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query("SELECT * FROM api_tokens WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| token_from_row(&r)).transpose()
    }

    async fn write_key(&self, w: &KeyWrite) -> Result<()> {
        self.writer.submit(w).await
    }

    async fn get_key(&self, tenant: Uuid, id: Uuid) -> Result<Option<Key>> {
        let row = sqlx::query("SELECT doc FROM keys WHERE id = ? AND tenant_id = ?")
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| doc(&r)).transpose()
    }

    async fn find_key(&self, tenant: Uuid, name_or_alias: &str) -> Result<Option<Key>> {
        let row = sqlx::query(
            "SELECT doc FROM keys WHERE tenant_id = ?1 AND (name = ?2 OR id = (SELECT key_id FROM aliases WHERE tenant_id = ?1 AND alias = ?2))",
        )
        .bind(tenant.to_string())
        .bind(name_or_alias)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| doc(&r)).transpose()
    }

    async fn list_keys(
        &self,
        tenant: Uuid,
        f: &KeyFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Key>> {
        let mut sql = String::from("SELECT doc FROM keys WHERE tenant_id = ?");
        if f.name.is_some() {
            sql.push_str(" AND instr(name, ?) > 0");
        }
        if f.alias.is_some() {
            sql.push_str(" AND id IN (SELECT key_id FROM aliases WHERE tenant_id = keys.tenant_id AND alias = ?)");
        }
        if f.state.is_some() {
            sql.push_str(" AND state = ?");
        }
        if f.spec.is_some() {
            sql.push_str(" AND spec = ?");
        }
        for _ in &f.tags {
            sql.push_str(" AND EXISTS (SELECT 1 FROM key_tags t WHERE t.key_id = keys.id AND t.k = ? AND t.v = ?)");
        }
        if after.is_some() {
            sql.push_str(" AND id > ?");
        }
        sql.push_str(" ORDER BY id LIMIT ?");
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.to_string());
        if let Some(n) = &f.name {
            q = q.bind(n.clone());
        }
        if let Some(a) = &f.alias {
            q = q.bind(a.clone());
        }
        if let Some(s) = f.state {
            q = q.bind(s.as_str());
        }
        if let Some(s) = f.spec {
            q = q.bind(s.as_str());
        }
        for (k, v) in &f.tags {
            q = q.bind(k.clone()).bind(v.clone());
        }
        if let Some(a) = after {
            q = q.bind(a.to_string());
        }
        q = q.bind(limit as i64);
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(doc).collect()
    }

    async fn get_versions(&self, key_id: Uuid) -> Result<Vec<KeyVersion>> {
        let rows = sqlx::query("SELECT doc FROM key_versions WHERE key_id = ? ORDER BY version")
            .bind(key_id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(doc).collect()
    }

    async fn get_material(&self, key_id: Uuid, version: u32) -> Result<Option<Vec<u8>>> {
        let m: Option<Option<Vec<u8>>> = sqlx::query_scalar(
            "SELECT material FROM key_versions WHERE key_id = ? AND version = ?",
        )
        .bind(key_id.to_string())
        .bind(version as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(m.flatten())
    }

    async fn history(&self, key_id: Uuid) -> Result<Vec<KeyEvent>> {
        let rows = sqlx::query("SELECT doc FROM key_events WHERE key_id = ? ORDER BY seq")
            .bind(key_id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(doc).collect()
    }

    async fn keys_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Key>> {
        let rows = sqlx::query("SELECT doc FROM keys WHERE next_due_at IS NOT NULL AND next_due_at <= ? ORDER BY next_due_at LIMIT ?")
            .bind(ms(now))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(doc).collect()
    }

    async fn count_keys_by_state(&self) -> Result<Vec<(String, i64)>> {
        sqlx::query("SELECT state, COUNT(*) AS n FROM keys GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("state").map_err(db_err)?,
                    r.try_get("n").map_err(db_err)?,
                ))
            })
            .collect()
    }

    async fn create_alias(
        &self,
        tenant: Uuid,
        alias: &str,
        key_id: Uuid,
        audit: &[AuditEvent],
    ) -> Result<()> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err)?;
        let clash: Option<String> =
            sqlx::query_scalar("SELECT id FROM keys WHERE tenant_id = ? AND name = ?")
                .bind(tenant.to_string())
                .bind(alias)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        if clash.is_some() {
            return Err(Error::conflict(format!(
                "{alias:?} is already a key name in this tenant"
            )));
        }
        sqlx::query("INSERT INTO aliases (tenant_id, alias, key_id) VALUES (?, ?, ?)")
            .bind(tenant.to_string())
            .bind(alias)
            .bind(key_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(|e| match db_err(e) {
                Error::Conflict { .. } => Error::conflict(format!(
                    "the alias {alias:?} already exists; move it instead"
                )),
                other => other,
            })?;
        append_chain(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn move_alias(
        &self,
        tenant: Uuid,
        alias: &str,
        key_id: Uuid,
        audit: &[AuditEvent],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("UPDATE aliases SET key_id = ? WHERE tenant_id = ? AND alias = ?")
            .bind(key_id.to_string())
            .bind(tenant.to_string())
            .bind(alias)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found("alias", alias));
        }
        append_chain(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn delete_alias(&self, tenant: Uuid, alias: &str, audit: &[AuditEvent]) -> Result<()> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("DELETE FROM aliases WHERE tenant_id = ? AND alias = ?")
            .bind(tenant.to_string())
            .bind(alias)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found("alias", alias));
        }
        append_chain(&mut tx, audit).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn list_aliases(
        &self,
        tenant: Uuid,
        key_id: Option<Uuid>,
    ) -> Result<Vec<(String, Uuid)>> {
        let rows = match key_id {
            Some(k) => sqlx::query("SELECT alias, key_id FROM aliases WHERE tenant_id = ? AND key_id = ? ORDER BY alias")
                .bind(tenant.to_string())
                .bind(k.to_string())
                .fetch_all(&self.pool)
                .await,
            None => sqlx::query("SELECT alias, key_id FROM aliases WHERE tenant_id = ? ORDER BY alias")
                .bind(tenant.to_string())
                .fetch_all(&self.pool)
                .await,
        }
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let a: String = r.try_get("alias").map_err(db_err)?;
                let k: String = r.try_get("key_id").map_err(db_err)?;
                Ok((
                    a,
                    Uuid::parse_str(&k).map_err(|e| Error::internal(e.to_string()))?,
                ))
            })
            .collect()
    }

    async fn append_audit(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        append_chain(&mut tx, events).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn audit_head(&self) -> Result<Option<(u64, [u8; 32])>> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        head(&mut conn).await
    }

    async fn read_audit(&self, after: u64, limit: u32) -> Result<Vec<StoredEvent>> {
        sqlx::query("SELECT seq, at, tenant_id, principal_id, principal, operation, key_id, outcome, hash, doc FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after as i64)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(stored_event)
            .collect()
    }

    async fn search_audit(&self, q: &AuditQuery) -> Result<Vec<StoredEvent>> {
        let t = q.tenant.map(|t| t.to_string());
        let k = q.key_id.map(|k| k.to_string());
        let outcome_ok = q.outcome.as_deref().map(|o| o == "ok");
        let outcome_code = q
            .outcome
            .as_deref()
            .filter(|o| *o != "ok" && *o != "refused");
        let sql = format!(
            "SELECT seq, at, tenant_id, principal_id, principal, operation, key_id, outcome, hash, doc FROM audit_events WHERE \
             (?1 IS NULL OR tenant_id = ?1) AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR at < ?3) \
             AND (?4 IS NULL OR key_id = ?4) AND (?5 IS NULL OR principal = ?5 OR principal_id = ?5) \
             AND (?6 IS NULL OR operation = ?6) \
             AND (?7 IS NULL OR (?7 = 1 AND outcome = 'ok') OR (?7 = 0 AND outcome <> 'ok')) \
             AND (?8 IS NULL OR outcome = ?8) \
             AND (?9 IS NULL OR seq > ?9) AND (?10 IS NULL OR seq < ?10) \
             ORDER BY seq {} LIMIT ?11",
            if q.newest_first { "DESC" } else { "ASC" }
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(t)
            .bind(q.from.map(ms))
            .bind(q.to.map(ms))
            .bind(k)
            .bind(q.principal.clone())
            .bind(q.operation.clone())
            .bind(outcome_ok)
            .bind(outcome_code)
            .bind(q.after_seq.map(|s| s as i64))
            .bind(q.before_seq.map(|s| s as i64))
            .bind(q.limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(stored_event)
            .collect()
    }

    async fn audit_usage(
        &self,
        tenant: Option<Uuid>,
        key_id: Option<Uuid>,
        from: Option<DateTime<Utc>>,
    ) -> Result<Vec<UsageRow>> {
        sqlx::query(
            "SELECT key_id, operation, principal, COUNT(*) AS n, MAX(at) AS last_at FROM audit_events \
             WHERE key_id IS NOT NULL AND outcome = 'ok' AND (?1 IS NULL OR tenant_id = ?1) \
             AND (?2 IS NULL OR key_id = ?2) AND (?3 IS NULL OR at >= ?3) \
             GROUP BY key_id, operation, principal ORDER BY key_id, operation, principal",
        )
        .bind(tenant.map(|t| t.to_string()))
        .bind(key_id.map(|k| k.to_string()))
        .bind(from.map(ms))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| {
            let k: String = r.try_get("key_id").map_err(db_err)?;
            Ok(UsageRow {
                key_id: Uuid::parse_str(&k).map_err(|e| Error::internal(e.to_string()))?,
                operation: r.try_get("operation").map_err(db_err)?,
                principal: r.try_get("principal").map_err(db_err)?,
                count: r.try_get::<i64, _>("n").map_err(db_err)? as u64,
                last_at: from_ms(Some(r.try_get("last_at").map_err(db_err)?)).unwrap_or_default(),
            })
        })
        .collect()
    }

    async fn audit_usage_series(
        &self,
        tenant: Uuid,
        key_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket_ms: i64,
    ) -> Result<Vec<(i64, String, u64)>> {
        if bucket_ms <= 0 {
            return Err(Error::internal("a usage bucket must be longer than 0 ms"));
        }
        let from = ms(from);
        // Counted from `from`, so the division never meets a negative number.
        sqlx::query(
            "SELECT (at - ?3) / ?5 AS bucket, operation, COUNT(*) AS n FROM audit_events \
             WHERE tenant_id = ?1 AND key_id = ?2 AND outcome = 'ok' AND at >= ?3 AND at < ?4 \
             GROUP BY bucket, operation ORDER BY bucket, operation",
        )
        .bind(tenant.to_string())
        .bind(key_id.to_string())
        .bind(from)
        .bind(ms(to))
        .bind(bucket_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| {
            Ok((
                from + r.try_get::<i64, _>("bucket").map_err(db_err)? * bucket_ms,
                r.try_get("operation").map_err(db_err)?,
                r.try_get::<i64, _>("n").map_err(db_err)? as u64,
            ))
        })
        .collect()
    }

    async fn put_checkpoint(&self, c: &Checkpoint) -> Result<()> {
        sqlx::query("INSERT INTO audit_checkpoints (seq, doc) VALUES (?, ?)")
            .bind(c.seq as i64)
            .bind(to_json(c)?)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_checkpoints(&self, after: u64, limit: u32) -> Result<Vec<Checkpoint>> {
        sqlx::query("SELECT doc FROM audit_checkpoints WHERE seq > ? ORDER BY seq LIMIT ?")
            .bind(after as i64)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(doc)
            .collect()
    }

    async fn last_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let row = sqlx::query("SELECT doc FROM audit_checkpoints ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| doc(&r)).transpose()
    }

    async fn snapshot(
        &self,
        each: &mut (dyn FnMut(crate::SnapshotRow) -> Result<()> + Send),
    ) -> Result<()> {
        // One read transaction: in WAL mode it sees the database as of its first read,
        // whatever commits meanwhile.
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        for table in SNAPSHOT_TABLES {
            let mut after: i64 = i64::MIN;
            loop {
                let rows = sqlx::query(AssertSqlSafe(format!(
                    "SELECT rowid AS __rowid, * FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT 1000"
                )))
                .bind(after)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
                let Some(last) = rows.last() else { break };
                after = last.try_get("__rowid").map_err(db_err)?;
                for r in &rows {
                    each(crate::SnapshotRow {
                        table: table.to_string(),
                        row: row_to_json(r)?,
                    })?;
                }
            }
        }
        tx.rollback().await.map_err(db_err)
    }

    async fn begin_restore(&self) -> Result<Box<dyn crate::RestoreTx>> {
        let mut tx = self.begin().await?;
        let tenants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        if tenants > 0 {
            return Err(Error::conflict(
                "a backup restores only into a new data directory (this store holds tenants)",
            ));
        }
        // The new directory's own events so far make way for the restored trail, and follow
        // it on commit.
        let docs: Vec<String> = sqlx::query_scalar("SELECT doc FROM audit_events ORDER BY seq")
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let since = docs
            .iter()
            .map(|d| {
                serde_json::from_str::<arca_core::audit::ChainedEvent>(d)
                    .map(|c| c.event)
                    .map_err(json_err)
            })
            .collect::<Result<Vec<_>>>()?;
        for t in ["audit_events", "audit_checkpoints"] {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {t}")))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        Ok(Box::new(SqliteRestore { tx, since }))
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn set_meta(&self, name: &str, value: &[u8]) -> Result<()> {
        sqlx::query("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
