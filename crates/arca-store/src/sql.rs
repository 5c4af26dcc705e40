//! The SQL both back-ends share: every query of the [`KeyStore`] contract, written once.
//!
//! This file is compiled once per back-end, as `sqlite::sql` and `postgres::sql`
//! (`#[path = "sql.rs"] mod sql;` in each), so that every query runs on concrete sqlx types
//! (`super::Db` is `Sqlite` or `Postgres`; sqlx binds `$N` placeholders on both) without a
//! wall of generic bounds. `super::Store` is the back-end's store: it has the fields `pool`
//! and `writer`, and implements [`Dialect`], the few things the two databases do
//! differently (how a name, the audit chain or a row is held until commit, change
//! notification, erasure, the snapshot read, leases). Opening, migrations' SQL, pragmas
//! and TLS stay in the back-end's own file.

use std::collections::HashMap;

use arca_core::audit::{
    rebuild_with_columns, unhex32, AuditColumns, AuditEvent, AuditSegment, Checkpoint,
    PreparedEvent, StoredEvent, COMPACT, GENESIS,
};
use arca_core::model::{Key, KeyEvent, KeyVersion, Principal, Tenant};
use arca_core::{Error, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{Db, Store};
use crate::common::{
    blob_json, commit_failed, db_err, from_ms, json_err, ms, restore_cells, to_json, Cell, Combiner,
};
use crate::{
    ApiToken, AuditQuery, Change, KeyFilter, KeyStore, KeyWrite, Lease, MaterialChange, Record,
    SnapshotRow, UsageRow,
};

pub(super) type Pool = sqlx::Pool<Db>;
pub(super) type Conn = <Db as sqlx::Database>::Connection;
pub(super) type Tx = sqlx::Transaction<'static, Db>;
pub(super) type DbRow = <Db as sqlx::Database>::Row;

/// What one back-end does its own way; everything else is the shared SQL below.
pub(super) trait Dialect {
    /// Starts a write transaction (SQLite takes its one write lock at once, so that a read
    /// inside the transaction, a revision or the audit head, cannot be overtaken).
    const BEGIN_WRITE: &'static str;
    /// Appended to a read that the rest of the transaction relies on, to hold the row.
    const FOR_UPDATE: &'static str;
    /// The marker of a statement's `n`th bind parameter (from 1), for statements built with
    /// many parameters in order. SQLite's is the anonymous `?`: its driver looks a named
    /// parameter's name up in a list for every bind, a cost that grows with the square of a
    /// multi-row insert's size (5 % of a server's time under load, when `$N` was used).
    fn bind_marker(n: usize) -> String;
    /// The function giving the 1-based position of a text in another (0 if absent).
    const INSTR: &'static str;

    /// Holds a name of a tenant (key name or alias) exclusively until the transaction ends:
    /// a key name and an alias of the same text live in two tables, so no unique index can
    /// keep them apart.
    async fn lock_name(conn: &mut Conn, tenant: &str, name: &str) -> Result<()>;
    /// Makes appends to the audit chain take turns until the transaction ends, so that the
    /// head read before an append is still the head at commit.
    async fn lock_chain(conn: &mut Conn) -> Result<()>;
    /// Announces changes to other nodes when the transaction commits.
    async fn notify(conn: &mut Conn, changes: &[Change]) -> Result<()>;
    /// Whatever must happen to a version's material before it is set to NULL (destruction).
    async fn erase(conn: &mut Conn, key_id: &str, version: i64) -> Result<()>;
    /// The SQL types of a table's columns, for a restored row's values to be cast to (`None`
    /// where values need no cast).
    async fn column_types(conn: &mut Conn, table: &str) -> Result<Option<HashMap<String, String>>>;
    /// Runs before a restore commits, once every row is in.
    async fn restored(conn: &mut Conn) -> Result<()>;
    /// Commits a transaction that appended to the audit chain, and returns once it is
    /// durable. The chain's lock is held until the commit: a back-end whose commit waits for
    /// a flush should not make every other appender (another node's) wait for that flush too.
    async fn commit_chained(pool: &Pool, tx: Tx) -> Result<()>;
    /// Commits a transaction of [`Self::audit_pool`] that appended to the chain, without
    /// waiting for the disk: durable once a later [`Self::sync`] returns.
    async fn commit_unsynced(tx: Tx) -> Result<()>;
    /// Makes every transaction committed before the call durable.
    async fn sync(&self) -> Result<()>;
    /// The connections the audit writer's appends ([`KeyStore::commit_audit`]) use.
    fn audit_pool(&self) -> &Pool;

    /// A short description for logs.
    fn label(&self) -> String;
    /// Every row of every snapshot table, from one read transaction.
    async fn snapshot_rows(
        &self,
        each: &mut (dyn FnMut(SnapshotRow) -> Result<()> + Send),
    ) -> Result<()>;
    /// Changes committed by any node (`None` where no other process writes).
    fn change_feed(&self) -> Option<broadcast::Receiver<Change>>;
    /// The lease of one background job across the nodes sharing the store.
    async fn lease(&self, name: &str) -> Result<Option<Box<dyn Lease>>>;
}

/// Group commit for key writes, with `writers` batches in flight at most.
pub(super) fn writer(pool: &Pool, writers: usize) -> std::sync::Arc<Combiner> {
    let p = pool.clone();
    std::sync::Arc::new(Combiner::spawn(writers, move |w| {
        let p = p.clone();
        async move { apply_batch(&p, w).await }
    }))
}

/// Applies the migrations not yet recorded in `schema_migrations`, in order, inside the
/// caller's transaction.
pub(super) async fn migrate(conn: &mut Conn, migrations: &[(i64, &'static str)]) -> Result<()> {
    for (version, sql) in migrations {
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
        if done.is_some() {
            continue;
        }
        sqlx::raw_sql(AssertSqlSafe(*sql))
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(version)
            .bind(ms(Utc::now()))
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        tracing::info!(version, "applied store migration");
    }
    Ok(())
}

/// A value of a snapshot row as JSON (BLOBs as `{"$b64": …}`), whichever database's type
/// names the row has.
pub(super) fn row_to_json(r: &DbRow) -> Result<serde_json::Map<String, serde_json::Value>> {
    use sqlx::{Column, TypeInfo, ValueRef};
    let mut m = serde_json::Map::new();
    for c in r.columns() {
        let raw = r.try_get_raw(c.ordinal()).map_err(db_err)?;
        let v = if raw.is_null() {
            serde_json::Value::Null
        } else {
            match raw.type_info().name() {
                "INT8" | "INTEGER" => r.try_get::<i64, _>(c.ordinal()).map_err(db_err)?.into(),
                "INT4" => r.try_get::<i32, _>(c.ordinal()).map_err(db_err)?.into(),
                "FLOAT8" | "REAL" => r.try_get::<f64, _>(c.ordinal()).map_err(db_err)?.into(),
                "BYTEA" | "BLOB" => {
                    blob_json(&r.try_get::<Vec<u8>, _>(c.ordinal()).map_err(db_err)?)
                }
                _ => r.try_get::<String, _>(c.ordinal()).map_err(db_err)?.into(),
            }
        };
        m.insert(c.name().to_string(), v);
    }
    Ok(m)
}

async fn begin(pool: &Pool) -> Result<Tx> {
    pool.begin_with(<Store as Dialect>::BEGIN_WRITE)
        .await
        .map_err(db_err)
}

fn doc<T: serde::de::DeserializeOwned>(row: &DbRow) -> Result<T> {
    let s: String = row.try_get("doc").map_err(db_err)?;
    serde_json::from_str(&s).map_err(json_err)
}

type Query<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>;

/// The `doc` of the row a query finds, decoded.
async fn one_doc<T: serde::de::DeserializeOwned>(pool: &Pool, q: Query<'_>) -> Result<Option<T>> {
    let row = q.fetch_optional(pool).await.map_err(db_err)?;
    row.map(|r| doc(&r)).transpose()
}

/// The `doc` of every row a query finds, decoded, in order.
async fn all_docs<T: serde::de::DeserializeOwned>(pool: &Pool, q: Query<'_>) -> Result<Vec<T>> {
    q.fetch_all(pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(doc)
        .collect()
}

fn uuid_of(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| Error::internal(e.to_string()))
}

/// The last record's position and hash: the last stored event, or, if every event was
/// pruned, the end of the last pruned segment (the chain goes on from there, never from
/// record 1 again).
async fn head(conn: &mut Conn) -> Result<Option<(u64, [u8; 32])>> {
    let row = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    if let Some(r) = row {
        let seq: i64 = r.try_get("seq").map_err(db_err)?;
        let hash: Vec<u8> = r.try_get("hash").map_err(db_err)?;
        return Ok(Some((seq as u64, hash.try_into().unwrap_or([0xff; 32]))));
    }
    let pruned = sqlx::query(
        "SELECT last_seq, last_hash FROM audit_segments WHERE pruned_at IS NOT NULL ORDER BY last_seq DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    pruned
        .map(|r| {
            let seq: i64 = r.try_get("last_seq").map_err(db_err)?;
            let hash: String = r.try_get("last_hash").map_err(db_err)?;
            Ok((seq as u64, unhex32(&hash).unwrap_or([0xff; 32])))
        })
        .transpose()
}

fn segment_from_row(r: &DbRow) -> Result<AuditSegment> {
    let at = |c: &str| -> Result<DateTime<Utc>> {
        Ok(from_ms(Some(r.try_get(c).map_err(db_err)?)).unwrap_or_default())
    };
    Ok(AuditSegment {
        first_seq: r.try_get::<i64, _>("first_seq").map_err(db_err)? as u64,
        last_seq: r.try_get::<i64, _>("last_seq").map_err(db_err)? as u64,
        last_hash: r.try_get("last_hash").map_err(db_err)?,
        last_at: at("last_at")?,
        file: r.try_get("file").map_err(db_err)?,
        sha256: r.try_get("sha256").map_err(db_err)?,
        archived_at: at("archived_at")?,
        pruned_at: from_ms(r.try_get("pruned_at").map_err(db_err)?),
    })
}

/// The stored checkpoint at `seq`, if any.
async fn checkpoint_at(conn: &mut Conn, seq: u64) -> Result<Option<Checkpoint>> {
    let row = sqlx::query("SELECT doc FROM audit_checkpoints WHERE seq = $1")
        .bind(seq as i64)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    row.map(|r| doc(&r)).transpose()
}

/// The numbers that stand for ids (of tenants, principals, keys) in the audit columns,
/// numbering those met for the first time. Events name few distinct ids: each is stored once
/// in `audit_ids`, and an event's columns and indexes hold small numbers instead of its
/// 36-character ids.
/// The numbers `audit_ids` gives the ids of `events` (numbering those that have none), and
/// the chain's head, read by the same statement as the first ids (one round trip to the
/// database less for the one appender: its round trips are what it spends its time on).
async fn audit_id_numbers_and_head(
    conn: &mut Conn,
    events: &[PreparedEvent],
) -> Result<(HashMap<Uuid, i64>, Option<(u64, [u8; 32])>)> {
    let mut ids: Vec<Uuid> = events
        .iter()
        .flat_map(|p| [p.event.tenant_id, p.event.principal_id, p.event.key_id])
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = HashMap::with_capacity(ids.len());
    let mut head_row: Option<Option<(u64, [u8; 32])>> = None;
    for add in [false, true] {
        let missing: Vec<String> = ids
            .iter()
            .filter(|u| !out.contains_key(*u))
            .map(|u| u.to_string())
            .collect();
        for chunk in missing.chunks(200) {
            let markers: Vec<String> = (1..=chunk.len()).map(Store::bind_marker).collect();
            if add {
                let values: Vec<String> = markers.iter().map(|m| format!("({m})")).collect();
                let mut q = sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO audit_ids (id) VALUES {} ON CONFLICT (id) DO NOTHING",
                    values.join(", ")
                )));
                for id in chunk {
                    q = q.bind(id.as_str());
                }
                q.execute(&mut *conn).await.map_err(db_err)?;
            }
            let with_head = head_row.is_none();
            let mut sql = format!(
                "SELECT num, id, NULL AS hash FROM audit_ids WHERE id IN ({})",
                markers.join(", ")
            );
            if with_head {
                sql.push_str(
                    " UNION ALL SELECT seq, NULL, hash FROM \
                     (SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1) h",
                );
                head_row = Some(None);
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id.as_str());
            }
            for r in q.fetch_all(&mut *conn).await.map_err(db_err)? {
                let num = r.try_get::<i64, _>("num").map_err(db_err)?;
                match r.try_get::<Option<String>, _>("id").map_err(db_err)? {
                    Some(id) => {
                        out.insert(uuid_of(&id)?, num);
                    }
                    None => {
                        let hash: Vec<u8> = r.try_get("hash").map_err(db_err)?;
                        head_row = Some(Some((num as u64, hash.try_into().unwrap_or([0xff; 32]))));
                    }
                }
            }
        }
    }
    let head = match head_row {
        Some(Some(h)) => Some(h),
        // No event stored (all pruned, or none yet), or no id to look up: the full read.
        _ => head(conn).await?,
    };
    Ok((out, head))
}

/// The number of one id in `audit_ids`, numbering it if it has none.
async fn audit_id_number(conn: &mut Conn, id: &str) -> Result<i64> {
    sqlx::query("INSERT INTO audit_ids (id) VALUES ($1) ON CONFLICT (id) DO NOTHING")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    sqlx::query_scalar("SELECT num FROM audit_ids WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)
}

/// Appends events to the hash chain inside the caller's transaction, so that a change and
/// its events commit together or not at all. The chain's lock makes every writer's appends
/// take turns: the head read here is still the head at commit.
///
/// A row holds the record's searchable fields in its columns (ids as numbers, see
/// [`audit_id_numbers_and_head`]) and the rest of its compact form but for `prev` in `doc`
/// ([`PreparedEvent::without_columns`]); `hash` is the SHA-256 of the whole compact form,
/// which [`stored_event`] rebuilds from both and the previous row's `hash`.
async fn append_chain(conn: &mut Conn, events: &[PreparedEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    Store::lock_chain(conn).await?;
    let (nums, head) = audit_id_numbers_and_head(conn, events).await?;
    let num = |id: Option<Uuid>| -> Result<Option<i64>> {
        id.map(|u| {
            nums.get(&u)
                .copied()
                .ok_or_else(|| Error::internal("an id of an audit event has no number"))
        })
        .transpose()
    };
    let (mut seq, mut prev) = head.unwrap_or((0, GENESIS));
    for chunk in events.chunks(64) {
        let mut sql = String::from(
            "INSERT INTO audit_events (seq, at, tenant_id, principal_id, principal, operation, key_id, outcome, hash, doc) VALUES ",
        );
        for i in 0..chunk.len() {
            let row: Vec<String> = (1..=10).map(|c| Store::bind_marker(i * 10 + c)).collect();
            sql.push_str(if i == 0 { "(" } else { ", (" });
            sql.push_str(&row.join(", "));
            sql.push(')');
        }
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for p in chunk {
            seq += 1;
            let hash = p.link(seq, &prev).hash;
            let rest = p.without_columns(seq);
            prev = hash;
            let e = &p.event;
            q = q
                .bind(seq as i64)
                .bind(ms(e.at))
                .bind(num(e.tenant_id)?)
                .bind(num(e.principal_id)?)
                .bind(e.principal.clone())
                .bind(e.operation.clone())
                .bind(num(e.key_id)?)
                .bind(e.outcome.clone())
                .bind(hash.to_vec())
                .bind(rest);
        }
        q.execute(&mut *conn).await.map_err(db_err)?;
    }
    Ok(())
}

/// A change's events, prepared for the chain in its transaction.
fn prepare(events: &[AuditEvent]) -> Vec<PreparedEvent> {
    events.iter().cloned().map(PreparedEvent::new).collect()
}

/// Commits `tx` with its audit events chained and its changes announced.
async fn finish(pool: &Pool, mut tx: Tx, audit: &[AuditEvent], changes: &[Change]) -> Result<()> {
    Store::notify(&mut tx, changes).await?;
    let audit = prepare(audit);
    append_chain(&mut tx, &audit).await?;
    Store::commit_chained(pool, tx).await
}

fn token_from_row(r: &DbRow) -> Result<ApiToken> {
    let g = |c: &str| -> Result<String> { r.try_get::<String, _>(c).map_err(db_err) };
    Ok(ApiToken {
        id: g("id")?,
        principal_id: uuid_of(&g("principal_id")?)?,
        tenant_id: uuid_of(&g("tenant_id")?)?,
        name: g("name")?,
        hash: r.try_get("hash").map_err(db_err)?,
        created_at: from_ms(Some(r.try_get("created_at").map_err(db_err)?)).unwrap_or_default(),
        expires_at: from_ms(r.try_get("expires_at").map_err(db_err)?),
        revoked_at: from_ms(r.try_get("revoked_at").map_err(db_err)?),
        last_used_at: from_ms(r.try_get("last_used_at").map_err(db_err)?),
    })
}

fn record_from_row(r: &DbRow) -> Result<Record> {
    let tenant: Option<String> = r.try_get("tenant_id").map_err(db_err)?;
    Ok(Record {
        kind: r.try_get("kind").map_err(db_err)?,
        id: r.try_get("id").map_err(db_err)?,
        tenant_id: tenant.as_deref().map(uuid_of).transpose()?,
        revision: r.try_get("revision").map_err(db_err)?,
        doc: doc(r)?,
        updated_at: from_ms(Some(r.try_get("updated_at").map_err(db_err)?)).unwrap_or_default(),
    })
}

async fn insert_record(conn: &mut Conn, r: &Record) -> Result<()> {
    sqlx::query("INSERT INTO records (kind, id, tenant_id, revision, updated_at, doc) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&r.kind)
        .bind(&r.id)
        .bind(r.tenant_id.map(|t| t.to_string()))
        .bind(r.revision)
        .bind(ms(r.updated_at))
        .bind(to_json(&r.doc)?)
        .execute(&mut *conn)
        .await
        .map_err(|e| match db_err(e) {
            Error::Conflict { .. } => Error::conflict(format!("{} {} already exists", r.kind, r.id)),
            other => other,
        })?;
    Ok(())
}

fn record_change(r: &Record) -> Change {
    Change::Record {
        kind: r.kind.clone(),
        id: r.id.clone(),
    }
}

/// An audit row as [`stored_event`] reads it: its columns, with the ids its numbers stand
/// for, and the hash of the record before it (a compact record's `prev`): the previous
/// row's, or, for the first row of a pruned store, the one its anchor checkpoint signed.
const EVENT_SELECT: &str =
    "SELECT e.seq, e.at, t.id AS tenant_id, p.id AS principal_id, e.principal, \
     e.operation, k.id AS key_id, e.outcome, e.hash, e.doc, \
     (SELECT b.hash FROM audit_events b WHERE b.seq = e.seq - 1) AS prev_hash, \
     (SELECT c.doc FROM audit_checkpoints c WHERE c.seq = e.seq - 1) AS prev_checkpoint \
     FROM audit_events e \
     LEFT JOIN audit_ids t ON t.num = e.tenant_id LEFT JOIN audit_ids p ON p.num = e.principal_id \
     LEFT JOIN audit_ids k ON k.num = e.key_id";

fn stored_event(r: &DbRow) -> Result<StoredEvent> {
    let seq: i64 = r.try_get("seq").map_err(db_err)?;
    let hash: Vec<u8> = r.try_get("hash").map_err(db_err)?;
    let columns = AuditColumns {
        at_ms: r.try_get("at").map_err(db_err)?,
        tenant_id: r.try_get("tenant_id").map_err(db_err)?,
        principal_id: r.try_get("principal_id").map_err(db_err)?,
        principal: r.try_get("principal").map_err(db_err)?,
        operation: r.try_get("operation").map_err(db_err)?,
        key_id: r.try_get("key_id").map_err(db_err)?,
        outcome: r.try_get("outcome").map_err(db_err)?,
    };
    let stored: Vec<u8> = r.try_get("doc").map_err(db_err)?;
    // A compact record's searchable fields are only in the columns: its hashed bytes are
    // rebuilt from them and the rest, so an edited column no longer matches the hash. A row
    // that cannot be rebuilt keeps its stored bytes, which do not match it either: the
    // verifier names the record. A record written before (JSON) is whole in `doc`.
    let doc = if stored.first() == Some(&COMPACT) {
        let prev_hash: Option<Vec<u8>> = r.try_get("prev_hash").map_err(db_err)?;
        let prev_checkpoint: Option<String> = r.try_get("prev_checkpoint").map_err(db_err)?;
        // No record before it (deleted) and no checkpoint there: nothing it can link to,
        // and a value no hash has, so that it does not verify.
        let prev = match (prev_hash, prev_checkpoint) {
            (Some(h), _) => h.try_into().unwrap_or([0xff; 32]),
            (None, _) if seq == 1 => GENESIS,
            (None, Some(c)) => serde_json::from_str::<Checkpoint>(&c)
                .ok()
                .and_then(|c| unhex32(&c.hash))
                .unwrap_or([0xff; 32]),
            (None, None) => [0xff; 32],
        };
        rebuild_with_columns(&stored, &prev, &columns).unwrap_or(stored)
    } else {
        stored
    };
    Ok(StoredEvent {
        seq: seq as u64,
        // A stored hash of the wrong length is kept visibly wrong, for the verifier to name.
        hash: hash.try_into().unwrap_or([0xff; 32]),
        doc,
        columns: Some(columns),
    })
}

async fn apply_key_write(tx: &mut Conn, w: &KeyWrite) -> Result<()> {
    let k = &w.key;
    let id = k.id.to_string();
    let tenant = k.tenant_id.to_string();
    match w.expected_revision {
        None => {
            Store::lock_name(&mut *tx, &tenant, &k.name).await?;
            let clash: Option<String> =
                sqlx::query_scalar("SELECT alias FROM aliases WHERE tenant_id = $1 AND alias = $2")
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
            sqlx::query("INSERT INTO keys (id, tenant_id, name, spec, state, revision, next_due_at, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
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
            let r = sqlx::query("UPDATE keys SET state = $1, revision = $2, next_due_at = $3, doc = $4 WHERE id = $5 AND revision = $6")
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
            sqlx::query("DELETE FROM key_tags WHERE key_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
    }
    for (tk, tv) in &k.tags {
        sqlx::query("INSERT INTO key_tags (key_id, k, v) VALUES ($1, $2, $3)")
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
                sqlx::query("INSERT INTO key_versions (key_id, version, state, doc, material) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id, version) DO UPDATE SET state = excluded.state, doc = excluded.doc, material = excluded.material")
                    .bind(&id).bind(v.version as i64).bind(v.state.as_str()).bind(&vdoc).bind(m)
                    .execute(&mut *tx).await.map_err(db_err)?;
            }
            MaterialChange::Keep => {
                sqlx::query("UPDATE key_versions SET state = $1, doc = $2 WHERE key_id = $3 AND version = $4")
                    .bind(v.state.as_str()).bind(&vdoc).bind(&id).bind(v.version as i64)
                    .execute(&mut *tx).await.map_err(db_err)?;
            }
            MaterialChange::Erase => {
                Store::erase(&mut *tx, &id, v.version as i64).await?;
                sqlx::query("UPDATE key_versions SET state = $1, doc = $2, material = NULL WHERE key_id = $3 AND version = $4")
                    .bind(v.state.as_str()).bind(&vdoc).bind(&id).bind(v.version as i64)
                    .execute(&mut *tx).await.map_err(db_err)?;
            }
        }
    }
    for r in &w.records {
        insert_record(&mut *tx, r).await?;
    }
    for e in &w.events {
        sqlx::query("INSERT INTO key_events (key_id, at, doc) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(ms(e.at))
            .bind(to_json(e)?)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    // A new key was cached nowhere (a miss is not cached), so only changes announce.
    let changes = if w.expected_revision.is_some() {
        vec![Change::Key(k.id)]
    } else {
        vec![]
    };
    Store::notify(&mut *tx, &changes).await
}

/// Commits a batch of key writes in one transaction (see [`Combiner`]): each in a
/// savepoint, their audit events chained together at the end.
async fn apply_batch(pool: &Pool, writes: Vec<KeyWrite>) -> Vec<Result<()>> {
    let mut tx = match begin(pool).await {
        Ok(tx) => tx,
        Err(e) => return writes.iter().map(|_| Err(e.clone())).collect(),
    };
    // Locks are taken in one global order: the names of new keys first (sorted), then the
    // rows in key order, then the chain at commit. Two batches in flight (on this node or
    // another) that touch the same names or keys then wait for each other, never in a cycle.
    let mut names: Vec<(String, &str)> = writes
        .iter()
        .filter(|w| w.expected_revision.is_none())
        .map(|w| (w.key.tenant_id.to_string(), w.key.name.as_str()))
        .collect();
    names.sort();
    names.dedup();
    for (tenant, name) in &names {
        if let Err(e) = Store::lock_name(&mut tx, tenant, name).await {
            return writes.iter().map(|_| Err(e.clone())).collect();
        }
    }
    let mut order: Vec<usize> = (0..writes.len()).collect();
    order.sort_by_key(|&i| writes[i].key.id);
    let mut results: Vec<Result<()>> = writes.iter().map(|_| Ok(())).collect();
    let mut audit = Vec::new();
    for i in order {
        let w = &writes[i];
        let r = async {
            sqlx::query("SAVEPOINT w")
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let r = apply_key_write(&mut tx, w).await;
            if r.is_err() {
                sqlx::query("ROLLBACK TO SAVEPOINT w")
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            sqlx::query("RELEASE SAVEPOINT w")
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            r
        }
        .await;
        if r.is_ok() {
            audit.extend(prepare(&w.audit));
        }
        results[i] = r;
    }
    let done = async {
        append_chain(&mut tx, &audit).await?;
        Store::commit_chained(pool, tx).await
    }
    .await;
    if let Err(e) = done {
        commit_failed(&mut results, &e);
    }
    results
}

/// A restore in progress (see [`KeyStore::begin_restore`]).
struct Restore {
    pool: Pool,
    tx: Tx,
    /// Events the new store recorded before the restore (its start, the unseal), linked
    /// again after the restored trail on commit.
    since: Vec<AuditEvent>,
    /// Column types per table, for the casts of each insert.
    types: HashMap<String, Option<HashMap<String, String>>>,
}

#[async_trait]
impl crate::RestoreTx for Restore {
    async fn add(&mut self, row: &SnapshotRow) -> Result<()> {
        let mut cells = restore_cells(row)?;
        if row.table == "audit_events" {
            // A backup made before the compact record (issue 20) holds the ids as text and
            // the JSON record as text: the ids get their numbers, the record its bytes.
            for (c, cell) in cells.iter_mut() {
                match (*c, &*cell) {
                    ("tenant_id" | "principal_id" | "key_id", Cell::Text(id)) => {
                        *cell = Cell::Int(audit_id_number(&mut self.tx, id).await?);
                    }
                    ("doc", Cell::Text(d)) => *cell = Cell::Bytes(d.clone().into_bytes()),
                    _ => {}
                }
            }
        }
        if !self.types.contains_key(&row.table) {
            let types = Store::column_types(&mut self.tx, &row.table).await?;
            self.types.insert(row.table.clone(), types);
        }
        // A NULL is written in the statement, not bound: a statement is prepared once per
        // text, and a NULL bound as text would fix its parameter's type to text for the rows
        // after it (an integer bound there later is refused).
        let mut values = Vec::with_capacity(cells.len());
        let mut n = 0;
        for (c, cell) in cells.iter() {
            let column_type = match &self.types[&row.table] {
                None => None,
                Some(types) => match types.get(*c) {
                    Some(t) => Some(t),
                    None => {
                        return Err(Error::invalid(
                            "backup",
                            format!("no column {c} in {}", row.table),
                        ))
                    }
                },
            };
            values.push(match (cell, column_type) {
                (Cell::Null, _) => "NULL".to_string(),
                (_, None) => {
                    n += 1;
                    format!("${n}")
                }
                (_, Some(t)) => {
                    n += 1;
                    format!("CAST(${n} AS {t})")
                }
            });
        }
        let conflict = if row.table == "meta" {
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}){conflict}",
            row.table,
            cells.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", "),
            values.join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (_, cell) in cells {
            q = match cell {
                Cell::Null => q,
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
        Store::restored(&mut me.tx).await?;
        finish(&me.pool, me.tx, &me.since, &[Change::Everything]).await
    }
}

impl Store {
    /// The schema version in force (the last migration applied).
    pub async fn schema_version(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)
    }
}

#[async_trait]
impl KeyStore for Store {
    fn describe(&self) -> String {
        self.label()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM meta WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn put_meta_if_absent(&self, name: &str, value: &[u8]) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
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
        let mut tx = begin(&self.pool).await?;
        let current: Option<Vec<u8>> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT value FROM meta WHERE name = $1{}",
            Store::FOR_UPDATE
        )))
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
            let r = sqlx::query("UPDATE tenants SET wrapped_kek = $1 WHERE id = $2")
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
            sqlx::query("INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
                .bind(name)
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        finish(&self.pool, tx, audit, &[Change::Root]).await
    }

    async fn tenant_keks(&self) -> Result<Vec<(Uuid, Vec<u8>)>> {
        sqlx::query("SELECT id, wrapped_kek FROM tenants ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| {
                let id: String = r.try_get("id").map_err(db_err)?;
                Ok((uuid_of(&id)?, r.try_get("wrapped_kek").map_err(db_err)?))
            })
            .collect()
    }

    async fn create_tenant(
        &self,
        t: &Tenant,
        wrapped_kek: &[u8],
        audit: &[AuditEvent],
    ) -> Result<()> {
        let mut tx = begin(&self.pool).await?;
        sqlx::query("INSERT INTO tenants (id, name, doc, wrapped_kek) VALUES ($1, $2, $3, $4)")
            .bind(t.id.to_string())
            .bind(&t.name)
            .bind(to_json(t)?)
            .bind(wrapped_kek)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        finish(&self.pool, tx, audit, &[Change::Tenant(t.id)]).await
    }

    async fn get_tenant(&self, id: Uuid) -> Result<Option<(Tenant, Vec<u8>)>> {
        let row = sqlx::query("SELECT doc, wrapped_kek FROM tenants WHERE id = $1")
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
        one_doc(
            &self.pool,
            sqlx::query("SELECT doc FROM tenants WHERE name = $1").bind(name),
        )
        .await
    }

    async fn update_tenant(&self, t: &Tenant, audit: &[AuditEvent]) -> Result<()> {
        let mut tx = begin(&self.pool).await?;
        let r = sqlx::query("UPDATE tenants SET name = $1, doc = $2 WHERE id = $3")
            .bind(&t.name)
            .bind(to_json(t)?)
            .bind(t.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() != 1 {
            return Err(Error::not_found("tenant", t.id.to_string()));
        }
        finish(&self.pool, tx, audit, &[Change::Tenant(t.id)]).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        all_docs(
            &self.pool,
            sqlx::query("SELECT doc FROM tenants ORDER BY name"),
        )
        .await
    }

    async fn create_principal(&self, p: &Principal, audit: &[AuditEvent]) -> Result<()> {
        let mut tx = begin(&self.pool).await?;
        sqlx::query("INSERT INTO principals (id, tenant_id, name, doc) VALUES ($1, $2, $3, $4)")
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
        finish(&self.pool, tx, audit, &[Change::Principal(p.id)]).await
    }

    async fn get_principal(&self, id: Uuid) -> Result<Option<Principal>> {
        one_doc(
            &self.pool,
            sqlx::query("SELECT doc FROM principals WHERE id = $1").bind(id.to_string()),
        )
        .await
    }

    async fn find_principal(&self, tenant: Uuid, name: &str) -> Result<Option<Principal>> {
        one_doc(
            &self.pool,
            sqlx::query("SELECT doc FROM principals WHERE tenant_id = $1 AND name = $2")
                .bind(tenant.to_string())
                .bind(name),
        )
        .await
    }

    async fn update_principal(&self, p: &Principal, audit: &[AuditEvent]) -> Result<()> {
        let mut tx = begin(&self.pool).await?;
        let r = sqlx::query("UPDATE principals SET doc = $1 WHERE id = $2 AND tenant_id = $3")
            .bind(to_json(p)?)
            .bind(p.id.to_string())
            .bind(p.tenant_id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() != 1 {
            return Err(Error::not_found("principal", p.id.to_string()));
        }
        finish(&self.pool, tx, audit, &[Change::Principal(p.id)]).await
    }

    async fn list_principals(&self, tenant: Uuid) -> Result<Vec<Principal>> {
        all_docs(
            &self.pool,
            sqlx::query("SELECT doc FROM principals WHERE tenant_id = $1 ORDER BY name")
                .bind(tenant.to_string()),
        )
        .await
    }

    async fn create_token(&self, t: &ApiToken, audit: &[AuditEvent]) -> Result<()> {
        let mut tx = begin(&self.pool).await?;
        sqlx::query("INSERT INTO api_tokens (id, principal_id, tenant_id, name, hash, created_at, expires_at, revoked_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
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
        finish(&self.pool, tx, audit, &[Change::Token(t.id.clone())]).await
    }

    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query("SELECT * FROM api_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| token_from_row(&r)).transpose()
    }

    async fn list_tokens(&self, tenant: Uuid, principal: Option<Uuid>) -> Result<Vec<ApiToken>> {
        sqlx::query("SELECT * FROM api_tokens WHERE tenant_id = $1 AND ($2 IS NULL OR principal_id = $2) ORDER BY created_at, id")
            .bind(tenant.to_string())
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
        let mut tx = begin(&self.pool).await?;
        let r = sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND tenant_id = $3")
            .bind(ms(at))
            .bind(id)
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        finish(&self.pool, tx, audit, &[Change::Token(id.to_string())]).await?;
        Ok(true)
    }

    async fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
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
        let mut tx = begin(&self.pool).await?;
        match expected_revision {
            None => insert_record(&mut tx, r).await?,
            Some(expected) => {
                let done = sqlx::query("UPDATE records SET revision = $1, updated_at = $2, doc = $3, tenant_id = $4 WHERE kind = $5 AND id = $6 AND revision = $7")
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
        finish(&self.pool, tx, audit, &[record_change(r)]).await
    }

    async fn get_record(&self, kind: &str, id: &str) -> Result<Option<Record>> {
        let row = sqlx::query("SELECT * FROM records WHERE kind = $1 AND id = $2")
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
        // Prefix match by range in byte order, so that `_` and `%` in ids mean nothing.
        let upper = format!("{prefix}\u{10FFFF}");
        sqlx::query("SELECT * FROM records WHERE kind = $1 AND ($2 IS NULL OR tenant_id = $2) AND id >= $3 AND id < $4 AND ($5 IS NULL OR id > $5) ORDER BY id LIMIT $6")
            .bind(kind)
            .bind(tenant.map(|t| t.to_string()))
            .bind(prefix)
            .bind(&upper)
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
        let mut tx = begin(&self.pool).await?;
        sqlx::query("DELETE FROM records WHERE kind = $1 AND id = $2")
            .bind(kind)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let change = Change::Record {
            kind: kind.to_string(),
            id: id.to_string(),
        };
        finish(&self.pool, tx, audit, &[change]).await
    }

    async fn write_key(&self, w: &KeyWrite) -> Result<()> {
        self.writer.submit(w).await
    }

    async fn get_key(&self, tenant: Uuid, id: Uuid) -> Result<Option<Key>> {
        one_doc(
            &self.pool,
            sqlx::query("SELECT doc FROM keys WHERE id = $1 AND tenant_id = $2")
                .bind(id.to_string())
                .bind(tenant.to_string()),
        )
        .await
    }

    async fn find_key(&self, tenant: Uuid, name_or_alias: &str) -> Result<Option<Key>> {
        one_doc(&self.pool, sqlx::query(
            "SELECT doc FROM keys WHERE tenant_id = $1 AND (name = $2 OR id = (SELECT key_id FROM aliases WHERE tenant_id = $1 AND alias = $2))",
        )
        .bind(tenant.to_string())
        .bind(name_or_alias)).await
    }

    async fn list_keys(
        &self,
        tenant: Uuid,
        f: &KeyFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Key>> {
        let mut n = 1;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        let mut sql = String::from("SELECT doc FROM keys WHERE tenant_id = $1");
        if f.name.is_some() {
            sql.push_str(&format!(" AND {}(name, {}) > 0", Store::INSTR, next()));
        }
        if f.alias.is_some() {
            sql.push_str(&format!(" AND id IN (SELECT key_id FROM aliases WHERE tenant_id = keys.tenant_id AND alias = {})", next()));
        }
        if f.state.is_some() {
            sql.push_str(&format!(" AND state = {}", next()));
        }
        if f.spec.is_some() {
            sql.push_str(&format!(" AND spec = {}", next()));
        }
        for _ in &f.tags {
            let (a, b) = (next(), next());
            sql.push_str(&format!(" AND EXISTS (SELECT 1 FROM key_tags t WHERE t.key_id = keys.id AND t.k = {a} AND t.v = {b})"));
        }
        if after.is_some() {
            sql.push_str(&format!(" AND id > {}", next()));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT {}", next()));
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
        all_docs(
            &self.pool,
            sqlx::query("SELECT doc FROM key_versions WHERE key_id = $1 ORDER BY version")
                .bind(key_id.to_string()),
        )
        .await
    }

    async fn get_material(&self, key_id: Uuid, version: u32) -> Result<Option<Vec<u8>>> {
        let m: Option<Option<Vec<u8>>> = sqlx::query_scalar(
            "SELECT material FROM key_versions WHERE key_id = $1 AND version = $2",
        )
        .bind(key_id.to_string())
        .bind(version as i64)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(m.flatten())
    }

    async fn history(&self, key_id: Uuid) -> Result<Vec<KeyEvent>> {
        all_docs(
            &self.pool,
            sqlx::query("SELECT doc FROM key_events WHERE key_id = $1 ORDER BY seq")
                .bind(key_id.to_string()),
        )
        .await
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

    async fn keys_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Key>> {
        all_docs(&self.pool, sqlx::query("SELECT doc FROM keys WHERE next_due_at IS NOT NULL AND next_due_at <= $1 ORDER BY next_due_at LIMIT $2")
            .bind(ms(now))
            .bind(limit as i64)).await
    }

    async fn create_alias(
        &self,
        tenant: Uuid,
        alias: &str,
        key_id: Uuid,
        audit: &[AuditEvent],
    ) -> Result<()> {
        let t = tenant.to_string();
        let mut tx = begin(&self.pool).await?;
        Store::lock_name(&mut tx, &t, alias).await?;
        let clash: Option<String> =
            sqlx::query_scalar("SELECT id FROM keys WHERE tenant_id = $1 AND name = $2")
                .bind(&t)
                .bind(alias)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        if clash.is_some() {
            return Err(Error::conflict(format!(
                "{alias:?} is already a key name in this tenant"
            )));
        }
        sqlx::query("INSERT INTO aliases (tenant_id, alias, key_id) VALUES ($1, $2, $3)")
            .bind(&t)
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
        finish(&self.pool, tx, audit, &[Change::Aliases(tenant)]).await
    }

    async fn move_alias(
        &self,
        tenant: Uuid,
        alias: &str,
        key_id: Uuid,
        audit: &[AuditEvent],
    ) -> Result<()> {
        let mut tx = begin(&self.pool).await?;
        let r = sqlx::query("UPDATE aliases SET key_id = $1 WHERE tenant_id = $2 AND alias = $3")
            .bind(key_id.to_string())
            .bind(tenant.to_string())
            .bind(alias)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found("alias", alias));
        }
        finish(&self.pool, tx, audit, &[Change::Aliases(tenant)]).await
    }

    async fn delete_alias(&self, tenant: Uuid, alias: &str, audit: &[AuditEvent]) -> Result<()> {
        let mut tx = begin(&self.pool).await?;
        let r = sqlx::query("DELETE FROM aliases WHERE tenant_id = $1 AND alias = $2")
            .bind(tenant.to_string())
            .bind(alias)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if r.rows_affected() == 0 {
            return Err(Error::not_found("alias", alias));
        }
        finish(&self.pool, tx, audit, &[Change::Aliases(tenant)]).await
    }

    async fn list_aliases(
        &self,
        tenant: Uuid,
        key_id: Option<Uuid>,
    ) -> Result<Vec<(String, Uuid)>> {
        sqlx::query("SELECT alias, key_id FROM aliases WHERE tenant_id = $1 AND ($2 IS NULL OR key_id = $2) ORDER BY alias")
            .bind(tenant.to_string())
            .bind(key_id.map(|k| k.to_string()))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| {
                let a: String = r.try_get("alias").map_err(db_err)?;
                let k: String = r.try_get("key_id").map_err(db_err)?;
                Ok((a, uuid_of(&k)?))
            })
            .collect()
    }

    async fn commit_audit(&self, events: &[PreparedEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = begin(self.audit_pool()).await?;
        append_chain(&mut tx, events).await?;
        Store::commit_unsynced(tx).await
    }

    async fn sync_audit(&self) -> Result<()> {
        self.sync().await
    }

    async fn audit_head(&self) -> Result<Option<(u64, [u8; 32])>> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        head(&mut conn).await
    }

    async fn read_audit(&self, after: u64, limit: u32) -> Result<Vec<StoredEvent>> {
        sqlx::query(AssertSqlSafe(format!(
            "{EVENT_SELECT} WHERE e.seq > $1 ORDER BY e.seq LIMIT $2"
        )))
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
        let outcome_ok = q.outcome.as_deref().map(|o| o == "ok");
        let outcome_code = q
            .outcome
            .as_deref()
            .filter(|o| *o != "ok" && *o != "refused");
        let sql = format!(
            "{EVENT_SELECT} WHERE \
             ($1 IS NULL OR e.tenant_id = (SELECT num FROM audit_ids WHERE id = $1)) \
             AND ($2 IS NULL OR e.at >= $2) AND ($3 IS NULL OR e.at < $3) \
             AND ($4 IS NULL OR e.key_id = (SELECT num FROM audit_ids WHERE id = $4)) \
             AND ($5 IS NULL OR e.principal = $5 OR e.principal_id = (SELECT num FROM audit_ids WHERE id = $5)) \
             AND ($6 IS NULL OR e.operation = $6) \
             AND ($7 IS NULL OR ($7 AND e.outcome = 'ok') OR (NOT $7 AND e.outcome <> 'ok')) \
             AND ($8 IS NULL OR e.outcome = $8) \
             AND ($9 IS NULL OR e.seq > $9) AND ($10 IS NULL OR e.seq < $10) \
             ORDER BY e.seq {} LIMIT $11",
            if q.newest_first { "DESC" } else { "ASC" }
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(q.tenant.map(|t| t.to_string()))
            .bind(q.from.map(ms))
            .bind(q.to.map(ms))
            .bind(q.key_id.map(|k| k.to_string()))
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
            "SELECT k.id AS key_id, e.operation, e.principal, COUNT(*) AS n, MAX(e.at) AS last_at \
             FROM audit_events e JOIN audit_ids k ON k.num = e.key_id \
             WHERE e.key_id IS NOT NULL AND e.outcome = 'ok' \
             AND ($1 IS NULL OR e.tenant_id = (SELECT num FROM audit_ids WHERE id = $1)) \
             AND ($2 IS NULL OR e.key_id = (SELECT num FROM audit_ids WHERE id = $2)) \
             AND ($3 IS NULL OR e.at >= $3) \
             GROUP BY k.id, e.operation, e.principal ORDER BY k.id, e.operation, e.principal",
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
                key_id: uuid_of(&k)?,
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
            "SELECT (e.at - $3) / $5 AS bucket, e.operation, COUNT(*) AS n FROM audit_events e \
             WHERE e.tenant_id = (SELECT num FROM audit_ids WHERE id = $1) \
             AND e.key_id = (SELECT num FROM audit_ids WHERE id = $2) \
             AND e.outcome = 'ok' AND e.at >= $3 AND e.at < $4 \
             GROUP BY bucket, e.operation ORDER BY bucket, e.operation",
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
        sqlx::query("INSERT INTO audit_checkpoints (seq, doc) VALUES ($1, $2)")
            .bind(c.seq as i64)
            .bind(to_json(c)?)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_checkpoints(&self, after: u64, limit: u32) -> Result<Vec<Checkpoint>> {
        all_docs(
            &self.pool,
            sqlx::query("SELECT doc FROM audit_checkpoints WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after as i64)
                .bind(limit as i64),
        )
        .await
    }

    async fn last_checkpoint(&self) -> Result<Option<Checkpoint>> {
        one_doc(
            &self.pool,
            sqlx::query("SELECT doc FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"),
        )
        .await
    }

    async fn add_audit_segment(&self, seg: &AuditSegment, audit: &[AuditEvent]) -> Result<()> {
        let mut tx = begin(&self.pool).await?;
        // Segments are recorded in chain order, one writer at a time.
        Store::lock_chain(&mut tx).await?;
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(last_seq) FROM audit_segments")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let expected = last.map_or(1, |l| l as u64 + 1);
        if seg.first_seq != expected || seg.last_seq < seg.first_seq {
            return Err(Error::conflict(format!(
                "the next archived segment starts at record {expected}, not {}",
                seg.first_seq
            )));
        }
        if checkpoint_at(&mut tx, seg.last_seq)
            .await?
            .is_none_or(|c| c.hash != seg.last_hash)
        {
            return Err(Error::conflict(format!(
                "no stored checkpoint closes the segment at record {}",
                seg.last_seq
            )));
        }
        sqlx::query(
            "INSERT INTO audit_segments (first_seq, last_seq, last_hash, last_at, file, sha256, archived_at, pruned_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(seg.first_seq as i64)
        .bind(seg.last_seq as i64)
        .bind(&seg.last_hash)
        .bind(ms(seg.last_at))
        .bind(&seg.file)
        .bind(&seg.sha256)
        .bind(ms(seg.archived_at))
        .bind(seg.pruned_at.map(ms))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        finish(&self.pool, tx, audit, &[]).await
    }

    async fn list_audit_segments(&self) -> Result<Vec<AuditSegment>> {
        sqlx::query("SELECT first_seq, last_seq, last_hash, last_at, file, sha256, archived_at, pruned_at FROM audit_segments ORDER BY first_seq")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(segment_from_row)
            .collect()
    }

    async fn prune_audit(
        &self,
        through: u64,
        at: DateTime<Utc>,
        audit: &[AuditEvent],
    ) -> Result<u64> {
        let mut tx = begin(&self.pool).await?;
        // The prune's own record first (it takes the chain's lock): it lands after every
        // record it removes, so the stored trail never ends up empty.
        let audit = prepare(audit);
        append_chain(&mut tx, &audit).await?;
        let ends: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_segments WHERE last_seq = $1")
                .bind(through as i64)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
        if ends == 0 || checkpoint_at(&mut tx, through).await?.is_none() {
            return Err(Error::invalid(
                "through_seq",
                format!("record {through} does not end an archived segment closed by a stored checkpoint"),
            ));
        }
        let deleted = sqlx::query("DELETE FROM audit_events WHERE seq <= $1")
            .bind(through as i64)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        sqlx::query("DELETE FROM audit_checkpoints WHERE seq < $1")
            .bind(through as i64)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "UPDATE audit_segments SET pruned_at = $1 WHERE last_seq <= $2 AND pruned_at IS NULL",
        )
        .bind(ms(at))
        .bind(through as i64)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        Store::commit_chained(&self.pool, tx).await?;
        Ok(deleted)
    }

    async fn snapshot(
        &self,
        each: &mut (dyn FnMut(SnapshotRow) -> Result<()> + Send),
    ) -> Result<()> {
        self.snapshot_rows(each).await
    }

    async fn begin_restore(&self) -> Result<Box<dyn crate::RestoreTx>> {
        let mut tx = begin(&self.pool).await?;
        // No writer appends to the trail while it is replaced.
        Store::lock_chain(&mut tx).await?;
        let tenants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        if tenants > 0 {
            return Err(Error::conflict(
                "a backup restores only into a new data directory (this store holds tenants)",
            ));
        }
        // The new store's own events so far make way for the restored trail, and follow it
        // on commit.
        let rows = sqlx::query(AssertSqlSafe(format!("{EVENT_SELECT} ORDER BY e.seq")))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let since = rows
            .iter()
            .map(|r| {
                stored_event(r)?
                    .decode()
                    .map(|c| c.event)
                    .map_err(Error::internal)
            })
            .collect::<Result<Vec<_>>>()?;
        for t in [
            "audit_events",
            "audit_ids",
            "audit_checkpoints",
            "audit_segments",
        ] {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {t}")))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        Ok(Box::new(Restore {
            pool: self.pool.clone(),
            tx,
            since,
            types: HashMap::new(),
        }))
    }

    async fn set_meta(&self, name: &str, value: &[u8]) -> Result<()> {
        sqlx::query("INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    fn changes(&self) -> Option<broadcast::Receiver<Change>> {
        self.change_feed()
    }

    async fn try_lease(&self, name: &str) -> Result<Option<Box<dyn Lease>>> {
        self.lease(name).await
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
