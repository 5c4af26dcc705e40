//! What both back-ends share: error mapping, time and JSON encoding, the snapshot's tables
//! and the checks a restored row passes before it reaches SQL.

use arca_core::{Error, Result};
use chrono::{DateTime, Utc};

use crate::SnapshotRow;

/// A database error as Arca's: a unique violation is a conflict, anything else means the
/// store could not answer.
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return Error::conflict("already exists");
        }
    }
    Error::Unavailable {
        message: format!("store error: {e}"),
    }
}

/// A stored document that no longer decodes.
pub(crate) fn json_err(e: serde_json::Error) -> Error {
    Error::internal(format!("stored record does not decode: {e}"))
}

/// Times are stored as milliseconds since the epoch, in both back-ends.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`ms`].
pub(crate) fn from_ms(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.and_then(DateTime::<Utc>::from_timestamp_millis)
}

/// A model value as the JSON document stored beside the searched columns.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::internal(format!("encode: {e}")))
}

/// The tables a snapshot holds, parents first.
pub(crate) const SNAPSHOT_TABLES: [&str; 15] = [
    "meta",
    "tenants",
    "principals",
    "api_tokens",
    "keys",
    "key_tags",
    "key_versions",
    "key_events",
    "aliases",
    "records",
    "audit_ids",
    "audit_events",
    "audit_checkpoints",
    "audit_log_unchained",
    "audit_segments",
];

/// A value of a restored row, decoded from the snapshot's JSON.
pub(crate) enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// Checks a snapshot row (a known table, plain column names) and decodes its values, in
/// the order of its columns.
pub(crate) fn restore_cells(row: &SnapshotRow) -> Result<Vec<(&str, Cell)>> {
    use base64::Engine;
    if !SNAPSHOT_TABLES.contains(&row.table.as_str()) {
        return Err(Error::invalid(
            "backup",
            format!("unknown table {:?}", row.table),
        ));
    }
    if row.row.is_empty()
        || !row
            .row
            .keys()
            .all(|c| c.chars().all(|x| x.is_ascii_alphanumeric() || x == '_'))
    {
        return Err(Error::invalid(
            "backup",
            format!("bad columns in {}", row.table),
        ));
    }
    row.row
        .iter()
        .map(|(c, v)| {
            let cell = match v {
                serde_json::Value::Null => Cell::Null,
                serde_json::Value::Number(n) if n.is_i64() => Cell::Int(n.as_i64().unwrap_or(0)),
                serde_json::Value::Number(n) => Cell::Real(n.as_f64().unwrap_or(0.0)),
                serde_json::Value::String(s) => Cell::Text(s.clone()),
                serde_json::Value::Object(o) => match o.get("$b64").and_then(|b| b.as_str()) {
                    Some(b) => Cell::Bytes(
                        base64::engine::general_purpose::STANDARD
                            .decode(b)
                            .map_err(|_| Error::invalid("backup", "bad base64 in a row"))?,
                    ),
                    None => return Err(Error::invalid("backup", "bad value in a row")),
                },
                other => Cell::Text(other.to_string()),
            };
            Ok((c.as_str(), cell))
        })
        .collect()
}

/// A BLOB column's value as the snapshot's JSON holds it.
pub(crate) fn blob_json(b: &[u8]) -> serde_json::Value {
    use base64::Engine;
    serde_json::json!({ "$b64": base64::engine::general_purpose::STANDARD.encode(b) })
}

/// Most key writes committed in one transaction.
const MAX_BATCH: usize = 64;

type Pending = (crate::KeyWrite, tokio::sync::oneshot::Sender<Result<()>>);

/// Group commit for key writes: concurrent [`crate::KeyStore::write_key`] calls queue here,
/// and each of `writers` tasks takes whatever is waiting (up to 64) and commits it as one
/// transaction, each write inside its own savepoint. A write that fails (a conflict) is
/// rolled back to its savepoint and answered with its error; the others commit together, so
/// one disk flush makes many keys durable. Every caller is answered only after the commit, as
/// before: durability per request is unchanged, only the flushes are shared.
pub(crate) struct Combiner {
    tx: tokio::sync::mpsc::Sender<Pending>,
}

impl Combiner {
    /// Starts `writers` tasks that commit batches with `apply` (one result per write, in
    /// order).
    pub(crate) fn spawn<F, Fut>(writers: usize, apply: F) -> Combiner
    where
        F: Fn(Vec<crate::KeyWrite>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Vec<Result<()>>> + Send,
    {
        let (tx, rx) = tokio::sync::mpsc::channel::<Pending>(4096);
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        let apply = std::sync::Arc::new(apply);
        for _ in 0..writers.max(1) {
            let (rx, apply) = (rx.clone(), apply.clone());
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut rx = rx.lock().await;
                        let Some(first) = rx.recv().await else { return };
                        let mut batch = vec![first];
                        while batch.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(p) => batch.push(p),
                                Err(_) => break,
                            }
                        }
                        batch
                    };
                    let (writes, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    let n = writes.len();
                    let mut results = apply(writes).await;
                    results
                        .resize_with(n, || Err(Error::internal("a batched write got no result")));
                    for (r, reply) in results.into_iter().zip(replies) {
                        let _ = reply.send(r);
                    }
                }
            });
        }
        Combiner { tx }
    }

    /// Queues a write and waits for its commit (or its error).
    pub(crate) async fn submit(&self, w: &crate::KeyWrite) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send((w.clone(), tx))
            .await
            .map_err(|_| Error::Unavailable {
                message: "the store is closed".into(),
            })?;
        rx.await.map_err(|_| Error::Unavailable {
            message: "the store's writer stopped".into(),
        })?
    }
}

/// The results of a batch whose commit failed: every write that had succeeded inside it
/// fails with the commit's error.
pub(crate) fn commit_failed(results: &mut [Result<()>], e: &Error) {
    for r in results.iter_mut().filter(|r| r.is_ok()) {
        *r = Err(e.clone());
    }
}
