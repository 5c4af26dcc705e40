//! Arca's persistence: the [`KeyStore`] trait, its embedded SQLite implementation and its
//! shared PostgreSQL one (several nodes, one truth).
//!
//! Every multi-row change is one [`KeyWrite`] applied in one transaction with an
//! optimistic-concurrency check, so a failed request changes nothing and two nodes cannot
//! both win a race. Secret material only ever reaches the store sealed by a tenant KEK.

use std::collections::BTreeMap;

use arca_core::model::{Key, KeyEvent, KeySpec, KeyState, KeyVersion, Principal, Tenant};
use std::sync::Arc;

use arca_core::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

mod common;
#[cfg(test)]
mod json_era;
pub mod postgres;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Opens the store a configuration names: a `postgres://` (or `postgresql://`) URL, or else
/// the SQLite file at `sqlite_path`.
pub async fn open(url: Option<&str>, sqlite_path: &std::path::Path) -> Result<Arc<dyn KeyStore>> {
    match url {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            Ok(Arc::new(PgStore::connect(u).await?))
        }
        Some(u) => Err(arca_core::Error::invalid(
            "store.url",
            format!(
                "{:?} is not a postgres:// URL (leave it unset for the embedded SQLite store)",
                u.split('@').next_back().unwrap_or("")
            ),
        )),
        None => Ok(Arc::new(SqliteStore::open(sqlite_path).await?)),
    }
}

/// A change another node may have cached, as the store announces it once committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A key, its versions or its tags.
    Key(Uuid),
    /// The aliases of a tenant.
    Aliases(Uuid),
    /// A tenant's record or its KEK.
    Tenant(Uuid),
    /// A principal (roles, disabled).
    Principal(Uuid),
    /// An API token (revoked).
    Token(String),
    /// A record (session, binding, access key pair, approval, policy).
    Record { kind: String, id: String },
    /// What the root key protects was replaced (root-key rotation or re-sharing): tenant
    /// KEKs and root-wrapped values may be under another root now.
    Root,
    /// Anything (a restore): forget every cached thing.
    Everything,
    /// The feed broke: changes may go unannounced until [`Change::Resumed`], so caches must
    /// not be trusted meanwhile.
    Lost,
    /// The feed is back; what was cached before it broke is stale.
    Resumed,
}

impl Change {
    /// The text sent through the database (PostgreSQL NOTIFY payloads are short strings).
    pub fn to_wire(&self) -> String {
        match self {
            Change::Key(id) => format!("k:{id}"),
            Change::Aliases(t) => format!("a:{t}"),
            Change::Tenant(t) => format!("t:{t}"),
            Change::Principal(p) => format!("p:{p}"),
            Change::Token(id) => format!("o:{id}"),
            Change::Record { kind, id } => format!("r:{kind}:{id}"),
            Change::Root => "root".into(),
            Change::Everything | Change::Lost | Change::Resumed => "*".into(),
        }
    }

    /// Reads a payload; anything unknown counts as [`Change::Everything`] (safe: it only
    /// empties caches).
    pub fn from_wire(s: &str) -> Change {
        let uuid = |v: &str| Uuid::parse_str(v).ok();
        match s.split_once(':') {
            Some(("k", v)) => uuid(v).map(Change::Key),
            Some(("a", v)) => uuid(v).map(Change::Aliases),
            Some(("t", v)) => uuid(v).map(Change::Tenant),
            Some(("p", v)) => uuid(v).map(Change::Principal),
            Some(("o", v)) => Some(Change::Token(v.to_string())),
            Some(("r", v)) => v.split_once(':').map(|(k, i)| Change::Record {
                kind: k.to_string(),
                id: i.to_string(),
            }),
            _ if s == "root" => Some(Change::Root),
            _ => None,
        }
        .unwrap_or(Change::Everything)
    }
}

/// The exclusive right to run one background job (scheduled rotation and destruction, audit
/// checkpoints) across every node sharing the store; see [`KeyStore::try_lease`].
#[async_trait]
pub trait Lease: Send {
    /// Gives the right back. A lease that is dropped instead (a panic, a crash) is given back
    /// by the store when its connection closes.
    async fn release(self: Box<Self>) -> Result<()>;
}

/// The lease of a store only one process uses: there is nobody to exclude.
pub struct LocalLease;

#[async_trait]
impl Lease for LocalLease {
    async fn release(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// A stored API token. Only a hash of the secret part is kept.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    /// The public part of the token, shown in listings and used to look it up.
    pub id: String,
    pub principal_id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    /// SHA-256 of the whole token string.
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

pub use arca_core::audit::{
    AuditEvent, AuditSegment, Checkpoint, PreparedEvent, StoredEvent, UsageRow,
};

/// Filters for searching the audit trail; all present filters must match.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub tenant: Option<Uuid>,
    /// Events at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Events before this time.
    pub to: Option<DateTime<Utc>>,
    pub key_id: Option<Uuid>,
    /// A principal's name or id.
    pub principal: Option<String>,
    pub operation: Option<String>,
    /// `ok`, `refused` (anything but ok), or one error code.
    pub outcome: Option<String>,
    /// Paging: only events after (or, newest first, before) this sequence number.
    pub after_seq: Option<u64>,
    pub before_seq: Option<u64>,
    pub newest_first: bool,
    pub limit: u32,
}

/// One row of a table in a snapshot (backup and restore): column → value, with BLOBs as
/// `{"$b64": "..."}` so that the row is plain JSON.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotRow {
    pub table: String,
    pub row: serde_json::Map<String, serde_json::Value>,
}

/// A restore in progress: rows go into one transaction, visible only on commit.
#[async_trait]
pub trait RestoreTx: Send {
    async fn add(&mut self, row: &SnapshotRow) -> Result<()>;
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// A document of a kind the store does not need to understand: sessions, credential
/// bindings, approval requests, key policy versions. One table and one contract for all of
/// them keeps every back-end small; `revision` gives each an optimistic-concurrency check.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The family (`session`, `binding`, `approval`, `key-policy`).
    pub kind: String,
    /// Unique within the kind; listings are in `id` order.
    pub id: String,
    pub tenant_id: Option<Uuid>,
    /// Bumped by the writer on every change.
    pub revision: i64,
    pub doc: serde_json::Value,
    pub updated_at: DateTime<Utc>,
}

/// What to do with a version's sealed material in a [`KeyWrite`].
#[derive(Debug, Clone, PartialEq)]
pub enum MaterialChange {
    Keep,
    Set(Vec<u8>),
    /// Overwrite and drop the material: destruction.
    Erase,
}

/// One version to insert or update in a [`KeyWrite`].
#[derive(Debug, Clone)]
pub struct VersionWrite {
    pub version: KeyVersion,
    pub material: MaterialChange,
}

/// A change to one key, applied atomically.
#[derive(Debug, Clone)]
pub struct KeyWrite {
    /// The key as it must be after the write (its `revision` is the new revision).
    pub key: Key,
    /// `None` to insert a new key; otherwise the revision the caller read, which must still
    /// be current or the write fails with a conflict.
    pub expected_revision: Option<i64>,
    pub versions: Vec<VersionWrite>,
    pub events: Vec<KeyEvent>,
    /// The earliest time at which the background task must look at this key again.
    pub next_due_at: Option<DateTime<Utc>>,
    /// Records inserted in the same transaction (a new key policy version).
    pub records: Vec<Record>,
    /// The audit events of this change, chained in the same transaction.
    pub audit: Vec<AuditEvent>,
}

/// Filters for listing keys; all present filters must match.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    /// Substring of the name.
    pub name: Option<String>,
    pub alias: Option<String>,
    pub state: Option<KeyState>,
    pub spec: Option<KeySpec>,
    pub tags: BTreeMap<String, String>,
}

/// The storage of every durable thing Arca has.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// A short description for logs ("sqlite:/path").
    fn describe(&self) -> String;
    /// True if the store answers.
    async fn ping(&self) -> Result<()>;

    /// Reads a server-wide value (the sealed root key, settings).
    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// Writes a server-wide value if absent; returns false if one was there.
    async fn put_meta_if_absent(&self, name: &str, value: &[u8]) -> Result<bool>;

    /// Replaces what the root key protects, in one transaction: every tenant's wrapped KEK
    /// and some server-wide values (the custody record, the wrapped session key). Used by
    /// root-key rotation and re-sharing, so a crash leaves either the old root or the new.
    /// `expected_meta` (name, value) must still hold, or nothing changes (conflict).
    async fn replace_root_material(
        &self,
        tenant_keks: &[(Uuid, Vec<u8>)],
        meta: &[(String, Vec<u8>)],
        expected_meta: (&str, &[u8]),
        audit: &[AuditEvent],
    ) -> Result<()>;
    /// Every tenant's id and wrapped KEK (for root-key rotation).
    async fn tenant_keks(&self) -> Result<Vec<(Uuid, Vec<u8>)>>;

    async fn create_tenant(
        &self,
        tenant: &Tenant,
        wrapped_kek: &[u8],
        audit: &[AuditEvent],
    ) -> Result<()>;
    /// A tenant and its wrapped KEK.
    async fn get_tenant(&self, id: Uuid) -> Result<Option<(Tenant, Vec<u8>)>>;
    async fn find_tenant_by_name(&self, name: &str) -> Result<Option<Tenant>>;

    /// Replaces a tenant's record (settings, disabled flag); the KEK is unchanged.
    async fn update_tenant(&self, tenant: &Tenant, audit: &[AuditEvent]) -> Result<()>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>>;

    /// Creates a principal; conflicts with another of the same name in the tenant.
    async fn create_principal(&self, p: &Principal, audit: &[AuditEvent]) -> Result<()>;
    async fn get_principal(&self, id: Uuid) -> Result<Option<Principal>>;
    async fn find_principal(&self, tenant: Uuid, name: &str) -> Result<Option<Principal>>;
    async fn update_principal(&self, p: &Principal, audit: &[AuditEvent]) -> Result<()>;
    /// Principals of a tenant in name order.
    async fn list_principals(&self, tenant: Uuid) -> Result<Vec<Principal>>;

    async fn create_token(&self, t: &ApiToken, audit: &[AuditEvent]) -> Result<()>;
    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>>;
    /// Tokens of a tenant, optionally of one principal, oldest first.
    async fn list_tokens(&self, tenant: Uuid, principal: Option<Uuid>) -> Result<Vec<ApiToken>>;
    /// Marks a token revoked (idempotent); false if there is no such token in the tenant.
    async fn revoke_token(
        &self,
        tenant: Uuid,
        id: &str,
        at: DateTime<Utc>,
        audit: &[AuditEvent],
    ) -> Result<bool>;
    /// Records when a token was last used (best effort, throttled by the caller).
    async fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<()>;

    /// Writes a record: `expected_revision` `None` inserts (conflict if the id exists),
    /// `Some(r)` replaces the record only if its stored revision is still `r`.
    async fn put_record(
        &self,
        r: &Record,
        expected_revision: Option<i64>,
        audit: &[AuditEvent],
    ) -> Result<()>;
    async fn get_record(&self, kind: &str, id: &str) -> Result<Option<Record>>;
    /// Records of a kind whose id starts with `prefix`, optionally of one tenant, in id
    /// order after `after`, at most `limit`.
    async fn list_records(
        &self,
        kind: &str,
        tenant: Option<Uuid>,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Record>>;
    async fn delete_record(&self, kind: &str, id: &str, audit: &[AuditEvent]) -> Result<()>;

    /// Applies a [`KeyWrite`] in one transaction. Inserting a key whose name is taken by a
    /// key or an alias of the tenant fails with a conflict, as does a stale revision.
    async fn write_key(&self, w: &KeyWrite) -> Result<()>;
    async fn get_key(&self, tenant: Uuid, id: Uuid) -> Result<Option<Key>>;
    /// Looks a key up by its name or one of its aliases.
    async fn find_key(&self, tenant: Uuid, name_or_alias: &str) -> Result<Option<Key>>;
    /// Keys of a tenant in id (creation) order, after `after`, at most `limit`.
    async fn list_keys(
        &self,
        tenant: Uuid,
        filter: &KeyFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Key>>;
    async fn get_versions(&self, key_id: Uuid) -> Result<Vec<KeyVersion>>;
    /// The sealed material of a version, `None` once destroyed.
    async fn get_material(&self, key_id: Uuid, version: u32) -> Result<Option<Vec<u8>>>;
    async fn history(&self, key_id: Uuid) -> Result<Vec<KeyEvent>>;
    /// How many keys (of all tenants) are in each state.
    async fn count_keys_by_state(&self) -> Result<Vec<(String, i64)>>;
    /// Keys (of any tenant) whose next due time is at or before `now`.
    async fn keys_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Key>>;

    /// Creates an alias; conflicts with an existing alias or key name of the tenant.
    async fn create_alias(
        &self,
        tenant: Uuid,
        alias: &str,
        key_id: Uuid,
        audit: &[AuditEvent],
    ) -> Result<()>;
    /// Points an existing alias at another key; not found if it does not exist.
    async fn move_alias(
        &self,
        tenant: Uuid,
        alias: &str,
        key_id: Uuid,
        audit: &[AuditEvent],
    ) -> Result<()>;
    async fn delete_alias(&self, tenant: Uuid, alias: &str, audit: &[AuditEvent]) -> Result<()>;
    /// `(alias, key id)` pairs of a tenant, optionally of one key.
    async fn list_aliases(&self, tenant: Uuid, key_id: Option<Uuid>)
        -> Result<Vec<(String, Uuid)>>;

    /// Appends events to the hash chain in one transaction and returns once they are
    /// durable (the use of a key changes no state, so its event goes here; a change's
    /// events go with the change). The events come prepared ([`PreparedEvent`]) so that the
    /// work of encoding them is done by their requests, not by the one writer that appends
    /// in turn.
    async fn append_audit(&self, events: &[PreparedEvent]) -> Result<()> {
        self.commit_audit(events).await?;
        self.sync_audit().await
    }
    /// [`append_audit`](Self::append_audit) without waiting for the disk: the events are
    /// committed (in the chain, seen by readers, kept if Arca crashes) and durable against
    /// a power cut or a database crash once a later [`sync_audit`](Self::sync_audit)
    /// returns. The audit writer appends the next batch while the previous one's flush
    /// runs, so the one chain's appender never waits for a disk.
    async fn commit_audit(&self, events: &[PreparedEvent]) -> Result<()>;
    /// Makes every audit append committed before this call durable. Several appends share
    /// one flush.
    async fn sync_audit(&self) -> Result<()>;
    /// The last event's sequence number and hash.
    async fn audit_head(&self) -> Result<Option<(u64, [u8; 32])>>;
    /// Stored events after `after`, in order, as written (for verification and export).
    async fn read_audit(&self, after: u64, limit: u32) -> Result<Vec<StoredEvent>>;
    async fn search_audit(&self, q: &AuditQuery) -> Result<Vec<StoredEvent>>;
    /// Successful uses per key, operation and principal, with the last use.
    async fn audit_usage(
        &self,
        tenant: Option<Uuid>,
        key_id: Option<Uuid>,
        from: Option<DateTime<Utc>>,
    ) -> Result<Vec<UsageRow>>;
    /// Successful uses of one key of a tenant at or after `from` and before `to`, counted
    /// per operation in buckets of `bucket_ms` milliseconds starting at `from`: rows of
    /// (bucket start in epoch milliseconds, operation, count), oldest bucket first, then by
    /// operation; buckets without a use have no row.
    async fn audit_usage_series(
        &self,
        tenant: Uuid,
        key_id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket_ms: i64,
    ) -> Result<Vec<(i64, String, u64)>>;
    /// Stores a signed checkpoint; a second one for the same record is a conflict.
    async fn put_checkpoint(&self, c: &Checkpoint) -> Result<()>;
    async fn list_checkpoints(&self, after: u64, limit: u32) -> Result<Vec<Checkpoint>>;
    async fn last_checkpoint(&self) -> Result<Option<Checkpoint>>;
    /// Records an archived segment of the trail, with `audit` chained in the same
    /// transaction. It must follow the last recorded segment (`first_seq` 1, or that
    /// segment's `last_seq + 1`), and a checkpoint of `last_hash` at `last_seq` must be
    /// stored; otherwise a conflict.
    async fn add_audit_segment(&self, segment: &AuditSegment, audit: &[AuditEvent]) -> Result<()>;
    /// Every recorded segment, oldest first.
    async fn list_audit_segments(&self) -> Result<Vec<AuditSegment>>;
    /// Deletes the records `1..=through` and the checkpoints before `through` (the one at
    /// `through` stays: the signed anchor where the stored trail now starts), marks the
    /// segments they were archived in as pruned at `at`, and chains `audit` first, all in
    /// one transaction. `through` must end a recorded segment whose checkpoint is stored
    /// (else invalid input, field `through_seq`). Returns how many events were deleted.
    async fn prune_audit(
        &self,
        through: u64,
        at: DateTime<Utc>,
        audit: &[AuditEvent],
    ) -> Result<u64>;
    /// Every row of every table, from one read transaction: a consistent snapshot taken
    /// while writers go on. Tables come parents first, so that a restore inserts in order.
    async fn snapshot(
        &self,
        each: &mut (dyn FnMut(SnapshotRow) -> Result<()> + Send),
    ) -> Result<()>;
    /// Starts loading a snapshot into this store, which must hold no tenant yet; server-wide
    /// values already present (the custody record written first) are replaced.
    async fn begin_restore(&self) -> Result<Box<dyn RestoreTx>>;
    /// Writes a server-wide value, replacing any (a sink's cursor).
    async fn set_meta(&self, name: &str, value: &[u8]) -> Result<()>;

    /// Changes committed through this store by any node, for cache invalidation; `None` for
    /// a store no other process writes (SQLite).
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }

    /// Takes the lease named `name` if no other node holds it: `None` means another node is
    /// running that job now.
    async fn try_lease(&self, name: &str) -> Result<Option<Box<dyn Lease>>> {
        let _ = name;
        Ok(Some(Box::new(LocalLease)))
    }

    /// Closes the store's connections (at shutdown).
    async fn close(&self) {}
}
