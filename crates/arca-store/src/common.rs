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
pub(crate) const SNAPSHOT_TABLES: [&str; 13] = [
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
    "audit_events",
    "audit_checkpoints",
    "audit_log_unchained",
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
