//! What auditors get from the trail: signed checkpoints, destruction receipts, search,
//! export, the usage report and series, and verification.
//!
//! The audit signing key is an Ed25519 key made on the first unseal and stored wrapped by
//! the root key (so it is re-wrapped by root-key rotation and useless without custody). Its
//! public key is stored in the clear: verification needs no unseal, and an auditor pins it
//! by exporting it once (`arca audit public-key`) and passing it to `arca audit verify`.

use arca_core::Action;
use std::sync::Arc;

use arca_core::audit::{
    self, checkpoint_line, key_fingerprint, ChainBreak, ChainVerifier, Checkpoint,
    DestructionReceipt, ExportLine, StoredEvent, UsageRow, VerifyReport,
};
use arca_core::{Error, Result};
use arca_store::{AuditQuery, KeyStore};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::{Caller, Note, Service, SYSTEM_TENANT};

/// The store's name for the audit signing key (PKCS#8, wrapped by the root key).
pub(crate) const AUDIT_KEY_META: &str = "audit.signing-key.wrapped";
/// The store's name for the audit signing key's raw public key.
pub const AUDIT_PUBLIC_KEY_META: &str = "audit.public-key";

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the raw key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The PEM (SPKI) form of an Ed25519 public key, as `openssl pkey -pubin` reads it.
pub fn public_key_pem(raw: &[u8]) -> String {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(raw);
    pem::encode(&pem::Pem::new("PUBLIC KEY", der))
}

/// The raw Ed25519 key from a PEM SPKI, or from 32 raw bytes.
pub fn parse_public_key(input: &[u8]) -> Result<Vec<u8>> {
    if input.len() == 32 {
        return Ok(input.to_vec());
    }
    let p = pem::parse(input)
        .map_err(|e| Error::invalid("public_key", format!("not a PEM public key: {e}")))?;
    let der = p.contents();
    if p.tag() != "PUBLIC KEY" || der.len() != 44 || der[..12] != ED25519_SPKI_PREFIX {
        return Err(Error::invalid(
            "public_key",
            "not an Ed25519 \"PUBLIC KEY\" (SPKI)",
        ));
    }
    Ok(der[12..].to_vec())
}

fn verify_sig(public_key: &[u8], msg: &[u8], signature_b64: &str) -> bool {
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(signature_b64) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(msg, &sig)
        .is_ok()
}

/// Checks a checkpoint's signature against a trusted public key.
pub fn checkpoint_is_valid(public_key: &[u8], c: &Checkpoint) -> bool {
    c.signer == key_fingerprint(public_key)
        && verify_sig(public_key, &c.signed_bytes(), &c.signature)
}

/// Checks a destruction receipt against a trusted public key.
pub fn verify_receipt(public_key: &[u8], r: &DestructionReceipt) -> Result<()> {
    if r.signer != key_fingerprint(public_key) {
        return Err(Error::invalid(
            "receipt.signer",
            format!(
                "signed by key {} but the trusted audit key is {}",
                r.signer,
                key_fingerprint(public_key)
            ),
        ));
    }
    if !verify_sig(public_key, &r.signed_bytes(), &r.signature) {
        return Err(Error::invalid(
            "receipt.signature",
            "does not verify: the receipt was altered or not issued by this server",
        ));
    }
    Ok(())
}

/// Verifies the whole trail in a store, offline: every link, every checkpoint signature.
/// A pruned store starts at the signed checkpoint that closed the last pruned segment
/// (reported as `archived_through`); see [`ChainVerifier::allow_anchor`].
pub async fn verify_store(
    store: &dyn KeyStore,
    public_key: &[u8],
) -> Result<std::result::Result<VerifyReport, ChainBreak>> {
    let v = ChainVerifier::new(|c: &Checkpoint| checkpoint_is_valid(public_key, c)).allow_anchor();
    continue_with_store(v, store).await
}

/// Feeds a store's checkpoints and events after where `v` stands, then finishes the walk.
async fn continue_with_store<F: Fn(&Checkpoint) -> bool>(
    mut v: ChainVerifier<F>,
    store: &dyn KeyStore,
) -> Result<std::result::Result<VerifyReport, ChainBreak>> {
    let start = v.position();
    let mut after = start;
    loop {
        let page = store.list_checkpoints(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for c in page {
            if let Err(b) = v.checkpoint(c) {
                return Ok(Err(b));
            }
        }
    }
    let mut after = start;
    loop {
        let page = store.read_audit(after, 2000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            if let Err(b) = v.event(e) {
                return Ok(Err(b));
            }
        }
    }
    Ok(v.finish())
}

/// Verifies an export (`arca audit export` output) read line by line. A line that does not
/// parse is a break at the record that should have been there.
pub fn verify_export(
    lines: impl Iterator<Item = std::io::Result<String>>,
    public_key: &[u8],
) -> std::result::Result<VerifyReport, ChainBreak> {
    let v = ChainVerifier::new(|c: &Checkpoint| checkpoint_is_valid(public_key, c)).allow_anchor();
    continue_with_export(v, lines)
}

/// Feeds an export's checkpoints and events after where `v` stands (earlier ones, already
/// verified from the archive, are skipped), then finishes the walk.
fn continue_with_export<F: Fn(&Checkpoint) -> bool>(
    mut v: ChainVerifier<F>,
    lines: impl Iterator<Item = std::io::Result<String>>,
) -> std::result::Result<VerifyReport, ChainBreak> {
    let start = v.position();
    let mut events = Vec::new();
    let mut last_seq = 0;
    for (n, line) in lines.enumerate() {
        let line = line.map_err(|e| ChainBreak {
            seq: last_seq + 1,
            problem: format!("line {} cannot be read: {e}", n + 1),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match audit::parse_export_line(&line) {
            Ok(ExportLine::Event(e)) => {
                last_seq = e.seq;
                if e.seq > start {
                    events.push(e);
                }
            }
            Ok(ExportLine::Checkpoint(c)) => {
                if c.seq > start {
                    v.checkpoint(c)?
                }
            }
            Err(p) => {
                return Err(ChainBreak {
                    seq: last_seq + 1,
                    problem: format!("line {} {p}", n + 1),
                })
            }
        }
    }
    for e in &events {
        v.event(e)?;
    }
    v.finish()
}

/// What `arca audit verify --archive` checks after the archive's segment files.
pub enum ArchiveTail<'a> {
    /// The archive alone.
    Nothing,
    /// A store's trail (a data directory's or a PostgreSQL store's).
    Store(&'a dyn KeyStore),
    /// An export's lines (`arca audit export` output).
    Export(Box<dyn Iterator<Item = std::io::Result<String>> + 'a>),
}

/// The segment files of an archive directory, in chain order: (first, last, path). Other
/// files (temporary ones among them) are not segments and are left out.
pub fn archive_files(
    dir: &std::path::Path,
) -> std::io::Result<Vec<(u64, u64, std::path::PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some((first, last)) = name.to_str().and_then(audit::parse_segment_file_name) {
            out.push((first, last, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// A break found in a segment file, naming the file.
fn in_file(name: &str, b: ChainBreak) -> ChainBreak {
    ChainBreak {
        seq: b.seq,
        problem: format!("in {name}: {}", b.problem),
    }
}

/// Checks one segment file where the walk stands: it must start right after the record
/// before, hold every record its name claims, and end on its signed closing checkpoint.
fn verify_segment_file<F: Fn(&Checkpoint) -> bool>(
    v: &mut ChainVerifier<F>,
    (first, last, path): &(u64, u64, std::path::PathBuf),
) -> std::result::Result<(), ChainBreak> {
    use std::io::BufRead;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let next = v.position() + 1;
    if *first != next {
        return Err(ChainBreak {
            seq: next,
            problem: if *first > next {
                format!("missing: the next archived segment file is {name}, which starts at record {first} (a segment file is missing)")
            } else {
                format!("{name} starts at record {first}, inside the segment before it (overlapping segment files)")
            },
        });
    }
    let open = || {
        std::fs::File::open(path)
            .map(|f| std::io::BufReader::new(f).lines())
            .map_err(|e| ChainBreak {
                seq: *first,
                problem: format!("{name} cannot be read: {e}"),
            })
    };
    // Checkpoints first (they follow the events they cover), then the events, streamed.
    let mut closed = false;
    for (n, line) in open()?.enumerate() {
        let line = line.map_err(|e| ChainBreak {
            seq: *first,
            problem: format!("{name} line {} cannot be read: {e}", n + 1),
        })?;
        if let Ok(ExportLine::Checkpoint(c)) = audit::parse_export_line(&line) {
            if c.seq < *first || c.seq > *last {
                return Err(ChainBreak {
                    seq: c.seq,
                    problem: format!(
                        "in {name}: a checkpoint outside the segment's records {first}..{last}"
                    ),
                });
            }
            closed |= c.seq == *last;
            v.checkpoint(c).map_err(|b| in_file(&name, b))?;
        }
    }
    for (n, line) in open()?.enumerate() {
        let line = line.map_err(|e| ChainBreak {
            seq: v.position() + 1,
            problem: format!("{name} line {} cannot be read: {e}", n + 1),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        match audit::parse_export_line(&line) {
            Ok(ExportLine::Event(e)) => v.event(&e).map_err(|b| in_file(&name, b))?,
            Ok(ExportLine::Checkpoint(_)) => {}
            Err(p) => {
                return Err(ChainBreak {
                    seq: v.position() + 1,
                    problem: format!("in {name}: line {} {p}", n + 1),
                })
            }
        }
    }
    if v.position() != *last {
        return Err(ChainBreak {
            seq: v.position() + 1,
            problem: format!(
                "missing: {name} ends at record {}, but it holds the segment up to record {last} (the file was cut)",
                v.position()
            ),
        });
    }
    if !closed {
        return Err(ChainBreak {
            seq: *last,
            problem: format!("{name} is not closed by a signed checkpoint at its last record"),
        });
    }
    Ok(())
}

/// Verifies the archived segment files of `dir` in order, then `tail`, as one chain from
/// record 1: every link, every checkpoint signature, no gap between files, and every file
/// closed by its signed checkpoint. A store is also verified on its own, so that the records
/// both in the archive and still in the store (archived, not yet pruned) are checked in both.
pub async fn verify_archive(
    dir: &std::path::Path,
    public_key: &[u8],
    tail: ArchiveTail<'_>,
) -> Result<std::result::Result<VerifyReport, ChainBreak>> {
    let files = archive_files(dir)
        .map_err(|e| Error::invalid("archive", format!("cannot read {}: {e}", dir.display())))?;
    if files.is_empty() {
        return Err(Error::invalid(
            "archive",
            format!(
                "{} holds no archived segment file (arca-audit-FIRST-LAST.jsonl)",
                dir.display()
            ),
        ));
    }
    let mut v = ChainVerifier::new(|c: &Checkpoint| checkpoint_is_valid(public_key, c));
    for f in &files {
        if let Err(b) = verify_segment_file(&mut v, f) {
            return Ok(Err(b));
        }
    }
    let result = match tail {
        ArchiveTail::Nothing => v.finish(),
        // The store is also verified on its own: the records it still holds that are also
        // archived (not yet pruned) are then checked in both copies.
        ArchiveTail::Store(store) => match continue_with_store(v, store).await? {
            Ok(r) => verify_store(store, public_key).await?.map(|_| r),
            Err(b) => Err(b),
        },
        ArchiveTail::Export(lines) => continue_with_export(v, lines),
    };
    Ok(result.map(|mut r| {
        r.segments = files.len() as u64;
        r
    }))
}

/// A page of search results.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub events: Vec<serde_json::Value>,
    /// Pass as `after` (oldest first) or `before` (newest first) for the next page.
    pub next: Option<u64>,
}

/// The key usage report.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UsageReport {
    pub keys: Vec<KeyUsageSummary>,
}

/// One key's use: last use, and counts by operation and by principal.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct KeyUsageSummary {
    pub key_id: Uuid,
    pub last_used_at: DateTime<Utc>,
    pub total: u64,
    pub by_operation: std::collections::BTreeMap<String, u64>,
    pub by_principal: std::collections::BTreeMap<String, u64>,
}

/// Folds the store's rows into one summary per key.
pub fn summarize(rows: Vec<UsageRow>) -> UsageReport {
    let mut keys: Vec<KeyUsageSummary> = Vec::new();
    for r in rows {
        if keys.last().is_none_or(|k| k.key_id != r.key_id) {
            keys.push(KeyUsageSummary {
                key_id: r.key_id,
                last_used_at: r.last_at,
                total: 0,
                by_operation: Default::default(),
                by_principal: Default::default(),
            });
        }
        let k = keys.last_mut().expect("pushed above");
        k.total += r.count;
        k.last_used_at = k.last_used_at.max(r.last_at);
        *k.by_operation.entry(r.operation).or_default() += r.count;
        *k.by_principal.entry(r.principal).or_default() += r.count;
    }
    UsageReport { keys }
}

/// The most buckets one usage series may have.
pub const MAX_USAGE_BUCKETS: i64 = 1000;

/// What the usage series covers, as the doors pass it.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageSeriesQuery {
    /// The key: id, name or alias (required).
    #[param(required = true)]
    pub key: Option<String>,
    /// RFC 3339: the start, rounded down to the interval (default: `to` minus 24 hours for
    /// `hour`, minus 30 days for `day`).
    pub from: Option<DateTime<Utc>>,
    /// RFC 3339: the end, rounded up to the interval (default: now).
    pub to: Option<DateTime<Utc>>,
    /// `hour` (default) or `day`: UTC hours or UTC days.
    pub interval: Option<String>,
}

/// One key's successful uses over time.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UsageSeries {
    pub key_id: Uuid,
    /// `hour` or `day`.
    pub interval: String,
    /// The first bucket's start: the requested `from` rounded down to the interval.
    pub from: DateTime<Utc>,
    /// The last bucket's end: the requested `to` rounded up to the interval.
    pub to: DateTime<Utc>,
    /// Every bucket from `from` to `to`, oldest first, empty ones included.
    pub buckets: Vec<UsageBucket>,
}

/// The successful uses of a key in one hour or day.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct UsageBucket {
    /// The bucket's start (a UTC hour or day boundary); it ends where the next one starts.
    pub start: DateTime<Utc>,
    pub total: u64,
    pub by_operation: std::collections::BTreeMap<String, u64>,
}

/// The stored trail verified on the server: `ok` with what it covered, or the first break.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AuditVerification {
    /// True if every link and every checkpoint signature holds.
    pub ok: bool,
    /// What the verification covered (present when `ok`).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub report: Option<VerifyReport>,
    /// The first record that does not hold (present when not `ok`).
    #[serde(rename = "break", default, skip_serializing_if = "Option::is_none")]
    pub chain_break: Option<ChainBreak>,
    /// The fingerprint of the public key the checkpoints were checked against (as in a
    /// checkpoint's `signer`): compare it with the pinned key's.
    pub public_key_fingerprint: String,
    pub verified_at: DateTime<Utc>,
}

/// `t` in epoch milliseconds, rounded down to a multiple of `step_ms`.
fn round_down(t: DateTime<Utc>, step_ms: i64) -> i64 {
    let m = t.timestamp_millis();
    m - m.rem_euclid(step_ms)
}

/// `t` in epoch milliseconds, rounded up to a multiple of `step_ms`.
fn round_up(t: DateTime<Utc>, step_ms: i64) -> i64 {
    let down = round_down(t, step_ms);
    if down == t.timestamp_millis() {
        down
    } else {
        down + step_ms
    }
}

fn from_millis(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| Error::internal("time out of range"))
}

/// Search filters, as the doors pass them.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditSearch {
    /// RFC 3339: events at or after.
    pub from: Option<DateTime<Utc>>,
    /// RFC 3339: events before.
    pub to: Option<DateTime<Utc>>,
    /// A key id.
    pub key: Option<Uuid>,
    /// A principal's name or id.
    pub principal: Option<String>,
    pub operation: Option<String>,
    /// `ok`, `refused` or an error code.
    pub outcome: Option<String>,
    /// Oldest first, after this sequence number.
    pub after: Option<u64>,
    /// Newest first, before this sequence number.
    pub before: Option<u64>,
    /// `asc` or `desc` (default `desc`, newest first).
    pub order: Option<String>,
    /// 1-1000, default 100.
    pub limit: Option<u32>,
    /// A tenant id (auditors of the system tenant only; others see their own tenant).
    pub tenant: Option<Uuid>,
}

impl Service {
    /// The audit signing key, loaded (unwrapped by the root key) or made on first use.
    async fn audit_signer(&self) -> Result<Arc<Ed25519KeyPair>> {
        if let Some(k) = self
            .audit_signer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(k);
        }
        let root = self.root()?;
        let wrapped = match self.store.get_meta(AUDIT_KEY_META).await? {
            Some(w) => w,
            None => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let doc = Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| Error::internal("audit key generation"))?;
                let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref())
                    .map_err(|_| Error::internal("audit key"))?;
                let w = root.wrap(doc.as_ref())?;
                // The public key first: a crash in between leaves a key nobody signs with,
                // never a signing key without its public half.
                self.store
                    .put_meta_if_absent(AUDIT_PUBLIC_KEY_META, pair.public_key().as_ref())
                    .await?;
                if self.store.put_meta_if_absent(AUDIT_KEY_META, &w).await? {
                    w
                } else {
                    self.store
                        .get_meta(AUDIT_KEY_META)
                        .await?
                        .ok_or_else(|| Error::internal("audit key vanished"))?
                }
            }
        };
        let pkcs8 = root.unwrap(&wrapped)?;
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| Error::internal("audit key"))?;
        let stored_pub = self.store.get_meta(AUDIT_PUBLIC_KEY_META).await?;
        if stored_pub.as_deref() != Some(pair.public_key().as_ref()) {
            return Err(Error::internal(
                "the stored audit public key does not match the audit signing key",
            ));
        }
        let k = Arc::new(pair);
        *self.audit_signer.write().unwrap_or_else(|e| e.into_inner()) = Some(k.clone());
        Ok(k)
    }

    /// Forgets the unwrapped audit signing key (seal, root rotation).
    pub(crate) fn audit_signer_reset(&self) {
        *self.audit_signer.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn audit_sign(&self, k: &Ed25519KeyPair, msg: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(k.sign(msg).as_ref())
    }

    /// The audit public key (raw). Needs no unseal once made; made on first use while
    /// unsealed.
    pub async fn audit_public_key(&self) -> Result<Vec<u8>> {
        if let Some(k) = self.store.get_meta(AUDIT_PUBLIC_KEY_META).await? {
            return Ok(k);
        }
        if self.is_sealed() {
            return Err(Error::not_found(
                "audit public key",
                "(none yet: unseal the server once)",
            ));
        }
        Ok(self.audit_signer().await?.public_key().as_ref().to_vec())
    }

    /// The head of the chain once queued events are stored, if no checkpoint covers it.
    async fn unsigned_head(&self) -> Result<Option<(u64, [u8; 32])>> {
        self.flush_audit().await;
        let Some((seq, hash)) = self.store.audit_head().await? else {
            return Ok(None);
        };
        let signed = self
            .store
            .last_checkpoint()
            .await?
            .is_some_and(|c| c.seq >= seq);
        Ok((!signed).then_some((seq, hash)))
    }

    /// Signs a checkpoint at the head of the chain if it moved since the last one. Queued
    /// events are stored first, so a checkpoint taken at shutdown covers everything.
    pub async fn checkpoint_audit(&self) -> Result<Option<Checkpoint>> {
        if self.unsigned_head().await?.is_none() {
            return Ok(None);
        }
        // The chain says that a checkpoint is signed here, before it is: a trail whose
        // checkpoints were removed then fails verification.
        let signer = key_fingerprint(self.audit_signer().await?.public_key().as_ref());
        let mut d = serde_json::Map::new();
        d.insert("signer".into(), signer.into());
        self.record_server_event(Action::SignAuditCheckpoint, d)
            .await;
        let Some((seq, hash)) = self.unsigned_head().await? else {
            return Ok(None);
        };
        let k = self.audit_signer().await?;
        let mut c = Checkpoint {
            seq,
            hash: audit::hex(&hash),
            at: self.now(),
            signer: key_fingerprint(k.public_key().as_ref()),
            signature: String::new(),
        };
        c.signature = self.audit_sign(&k, &c.signed_bytes());
        match self.store.put_checkpoint(&c).await {
            Ok(()) => Ok(Some(c)),
            // Another node signed the same head first.
            Err(Error::Conflict { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Checkpoints every `every_events` events or `every_secs` seconds, whichever first,
    /// while unsealed.
    pub fn spawn_checkpoint_task(
        self: &Arc<Self>,
        every_events: u64,
        every_secs: u64,
    ) -> tokio::task::JoinHandle<()> {
        let svc = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_at = tokio::time::Instant::now();
            loop {
                tick.tick().await;
                let Some(s) = svc.upgrade() else { break };
                if s.is_sealed() {
                    continue;
                }
                let due = async {
                    let head = s.store.audit_head().await?.map(|h| h.0).unwrap_or(0);
                    let signed = s.store.last_checkpoint().await?.map(|c| c.seq).unwrap_or(0);
                    Ok::<_, Error>(
                        head > signed
                            && (head - signed >= every_events
                                || last_at.elapsed().as_secs() >= every_secs),
                    )
                }
                .await;
                match due {
                    // One node signs at a time; the others see the new checkpoint next tick.
                    Ok(true) => match s.store.try_lease("audit-checkpoint").await {
                        Ok(Some(lease)) => {
                            match s.checkpoint_audit().await {
                                Ok(_) => last_at = tokio::time::Instant::now(),
                                Err(e) => {
                                    tracing::warn!(error = %e, "audit checkpoint failed; will retry")
                                }
                            }
                            let _ = lease.release().await;
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "audit checkpoint lease failed"),
                    },
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "audit checkpoint check failed"),
                }
            }
        })
    }

    /// Signed receipts for versions being destroyed now, as records to write in the same
    /// transaction as the erasure. Who asked comes from the key's history (the event that
    /// scheduled the destruction); who approved from the executed approval request that
    /// scheduled it, if a quorum rule covered it.
    pub(crate) async fn destruction_receipts_for(
        &self,
        key: &arca_core::model::Key,
        destroyed: &[u32],
        key_level: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<arca_store::Record>> {
        if destroyed.is_empty() {
            return Ok(vec![]);
        }
        let k = self.audit_signer().await?;
        let history = self.store.history(key.id).await?;
        let approvals: Vec<arca_core::access::ApprovalRequest> = self
            .store
            .list_records(
                crate::approvals::APPROVAL,
                Some(key.tenant_id),
                "",
                None,
                100_000,
            )
            .await?
            .into_iter()
            .filter_map(|r| serde_json::from_value(r.doc).ok())
            .filter(|a: &arca_core::access::ApprovalRequest| {
                a.key_id == Some(key.id) && a.executed_at.is_some()
            })
            .collect();
        let mut out = Vec::new();
        for &v in destroyed {
            let scheduled = history.iter().rev().find(|e| {
                e.action == "schedule-destruction"
                    && (if key_level {
                        e.version.is_none()
                    } else {
                        e.version == Some(v)
                    })
            });
            let approval = scheduled.and_then(|s| {
                approvals
                    .iter()
                    .filter(|a| a.executed_at.is_some_and(|x| x <= s.at))
                    .max_by_key(|a| a.executed_at)
                    .filter(|a| a.requester == s.actor.split(':').next().unwrap_or_default())
            });
            let mut r = DestructionReceipt {
                tenant_id: key.tenant_id,
                key_id: key.id,
                key_name: key.name.clone(),
                version: v,
                destroyed_at: now,
                requested_by: scheduled
                    .map(|s| s.actor.clone())
                    .unwrap_or_else(|| "system".into()),
                approved_by: approval
                    .map(|a| {
                        a.votes
                            .iter()
                            .filter(|v| v.approve)
                            .map(|v| format!("{}:{}", v.principal, v.principal_id))
                            .collect()
                    })
                    .unwrap_or_default(),
                approval_id: approval.map(|a| a.id),
                signer: key_fingerprint(k.public_key().as_ref()),
                signature: String::new(),
            };
            r.signature = self.audit_sign(&k, &r.signed_bytes());
            out.push(arca_store::Record {
                kind: RECEIPT.into(),
                id: format!("{}/{v:010}", key.id),
                tenant_id: Some(key.tenant_id),
                revision: 1,
                doc: serde_json::to_value(&r).map_err(|e| Error::internal(e.to_string()))?,
                updated_at: now,
            });
        }
        Ok(out)
    }

    /// True if the caller may see every tenant's events (an auditor of the system tenant).
    pub(crate) async fn audits_everything(&self, caller: &Caller) -> Result<bool> {
        Ok(self.tenant(caller.tenant()).await?.name == SYSTEM_TENANT)
    }

    /// Searches the trail: the caller's tenant, or any tenant for system auditors.
    pub async fn search_audit(&self, caller: &Caller, q: AuditSearch) -> Result<AuditPage> {
        self.audited(caller, Action::ListAudit, async |_: &mut Note| {
            self.authorize(caller, Action::ListAudit, None)?;
            let all = self.audits_everything(caller).await?;
            if q.tenant.is_some() && !all {
                return Err(Error::invalid(
                    "tenant",
                    "only auditors of the system tenant search other tenants",
                ));
            }
            let limit = q.limit.unwrap_or(100);
            if !(1..=1000).contains(&limit) {
                return Err(Error::invalid("limit", "must be 1 to 1000"));
            }
            let newest_first = match (q.order.as_deref(), q.after) {
                (Some("asc"), _) | (None, Some(_)) => false,
                (Some("desc"), _) | (None, None) => true,
                (Some(o), _) => {
                    return Err(Error::invalid("order", format!("{o:?} is not asc or desc")))
                }
            };
            self.flush_audit().await;
            let rows = self
                .store
                .search_audit(&AuditQuery {
                    tenant: if all { q.tenant } else { Some(caller.tenant()) },
                    from: q.from,
                    to: q.to,
                    key_id: q.key,
                    principal: q.principal,
                    operation: q.operation,
                    outcome: q.outcome,
                    after_seq: q.after,
                    before_seq: q.before,
                    newest_first,
                    limit,
                })
                .await?;
            for e in &rows {
                if let Err(problem) = e.check_alone() {
                    tracing::error!(seq = e.seq, %problem, "the audit trail's index disagrees with its records");
                    return Err(Error::Unavailable {
                        message: format!(
                            "audit record {} fails its check ({problem}); run `arca audit verify`",
                            e.seq
                        ),
                    });
                }
            }
            let next = (rows.len() as u32 == limit)
                .then(|| rows.last().map(|e| e.seq))
                .flatten();
            let events = rows
                .iter()
                .map(|e| {
                    serde_json::from_str(&e.export_line())
                        .map_err(|e| Error::internal(e.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(AuditPage { events, next })
        })
        .await
    }

    /// A page of the whole chain as export lines (events with their hashes, checkpoints
    /// after the event they cover), for system auditors. `after` is the last seq seen.
    pub async fn export_audit(
        &self,
        caller: &Caller,
        after: u64,
        limit: u32,
    ) -> Result<Vec<String>> {
        self.audited(caller, Action::ExportAudit, async |_: &mut Note| {
            self.authorize(caller, Action::ExportAudit, None)?;
            if !self.audits_everything(caller).await? {
                return Err(Error::NotPermitted {
                    message: "the verifiable export covers every tenant: auditors of the system tenant only".into(),
                });
            }
            if !(1..=10_000).contains(&limit) {
                return Err(Error::invalid("limit", "must be 1 to 10000"));
            }
            self.flush_audit().await;
            export_page(self.store.as_ref(), after, limit).await
        })
        .await
    }

    /// The usage report: per key, last use and counts by operation and principal.
    pub async fn audit_usage(
        &self,
        caller: &Caller,
        key: Option<&str>,
        from: Option<DateTime<Utc>>,
    ) -> Result<UsageReport> {
        self.audited(caller, Action::AuditUsageReport, async |note: &mut Note| {
            self.authorize(caller, Action::AuditUsageReport, None)?;
            let key_id = match key {
                Some(k) => {
                    let e = self.resolve(caller.tenant(), "key", k).await?;
                    note.key(e.key.id);
                    Some(e.key.id)
                }
                None => None,
            };
            self.flush_audit().await;
            let rows = self
                .store
                .audit_usage(Some(caller.tenant()), key_id, from)
                .await?;
            Ok(summarize(rows))
        })
        .await
    }

    /// One key's successful uses over time: counts per operation in every UTC hour or day
    /// from `from` to `to` (widened to the interval's boundaries), oldest first, with the
    /// empty buckets too. Counts what the usage report counts: events with outcome `ok`.
    pub async fn audit_usage_series(
        &self,
        caller: &Caller,
        q: UsageSeriesQuery,
    ) -> Result<UsageSeries> {
        self.audited(caller, Action::AuditUsageSeries, async |note: &mut Note| {
            self.authorize(caller, Action::AuditUsageSeries, None)?;
            let Some(reference) = q.key.as_deref() else {
                return Err(Error::invalid("key", "required: a key id, name or alias"));
            };
            let interval = q.interval.as_deref().unwrap_or("hour");
            let (step, span) = match interval {
                "hour" => (Duration::hours(1), Duration::hours(24)),
                "day" => (Duration::days(1), Duration::days(30)),
                other => {
                    return Err(Error::invalid(
                        "interval",
                        format!("{other:?} is not hour or day"),
                    ))
                }
            };
            let step_ms = step.num_milliseconds();
            let asked_to = q.to.unwrap_or_else(|| self.now());
            let to = from_millis(round_up(asked_to, step_ms))?;
            let asked_from = q.from.unwrap_or(to - span);
            if asked_from >= asked_to {
                return Err(Error::invalid(
                    "from",
                    format!("must be before to ({})", asked_to.to_rfc3339()),
                ));
            }
            let from = from_millis(round_down(asked_from, step_ms))?;
            let n = (to - from).num_milliseconds() / step_ms;
            if n > MAX_USAGE_BUCKETS {
                return Err(Error::invalid(
                    "from",
                    format!(
                        "{n} {interval}s from {} to {}: at most {MAX_USAGE_BUCKETS} buckets (move from closer to to, or use a longer interval)",
                        from.to_rfc3339(),
                        to.to_rfc3339()
                    ),
                ));
            }
            let e = self.resolve(caller.tenant(), "key", reference).await?;
            note.key(e.key.id);
            self.flush_audit().await;
            let rows = self
                .store
                .audit_usage_series(caller.tenant(), e.key.id, from, to, step_ms)
                .await?;
            let mut buckets: Vec<UsageBucket> = (0..n)
                .map(|i| {
                    Ok(UsageBucket {
                        start: from_millis(from.timestamp_millis() + i * step_ms)?,
                        total: 0,
                        by_operation: Default::default(),
                    })
                })
                .collect::<Result<_>>()?;
            for (start, operation, count) in rows {
                let i = (start - from.timestamp_millis()) / step_ms;
                let b = usize::try_from(i)
                    .ok()
                    .and_then(|i| buckets.get_mut(i))
                    .ok_or_else(|| Error::internal("a usage row outside the series"))?;
                b.total += count;
                *b.by_operation.entry(operation).or_default() += count;
            }
            Ok(UsageSeries {
                key_id: e.key.id,
                interval: interval.to_string(),
                from,
                to,
                buckets,
            })
        })
        .await
    }

    /// Verifies the stored trail, every link and every checkpoint signature, against the
    /// public half of the key this server signs with (which the root key protects), for
    /// auditors of the system tenant. A break is an answer (`ok: false`), not an error.
    pub async fn verify_audit(&self, caller: &Caller) -> Result<AuditVerification> {
        self.audited(caller, Action::VerifyAudit, async |note: &mut Note| {
            self.authorize(caller, Action::VerifyAudit, None)?;
            if !self.audits_everything(caller).await? {
                return Err(Error::NotPermitted {
                    message: "the trail is one chain across every tenant: only auditors of the system tenant verify it".into(),
                });
            }
            self.flush_audit().await;
            let public_key = self.audit_signer().await?.public_key().as_ref().to_vec();
            let (report, chain_break) = match verify_store(self.store.as_ref(), &public_key).await? {
                Ok(r) => (Some(r), None),
                Err(b) => (None, Some(b)),
            };
            note.set("intact", chain_break.is_none());
            if let Some(b) = &chain_break {
                note.set("break_seq", b.seq);
            }
            Ok(AuditVerification {
                ok: chain_break.is_none(),
                report,
                chain_break,
                public_key_fingerprint: key_fingerprint(&public_key),
                verified_at: self.now(),
            })
        })
        .await
    }

    /// The Prometheus metrics, for a system operator (or anyone when the server is set to
    /// publish them: see [`Service::render_metrics`]).
    pub async fn read_metrics(&self, caller: &Caller) -> Result<String> {
        self.audited(caller, Action::ReadMetrics, async |_: &mut Note| {
            self.authorize(caller, Action::ReadMetrics, None)?;
            Ok(self.render_metrics().await)
        })
        .await
    }

    /// Forces a checkpoint now (auditors; also done on a timer and at shutdown).
    pub async fn request_checkpoint(&self, caller: &Caller) -> Result<Option<Checkpoint>> {
        self.audited(caller, Action::CheckpointAudit, async |_: &mut Note| {
            self.authorize(caller, Action::CheckpointAudit, None)?;
            self.checkpoint_audit().await
        })
        .await
    }

    /// The destruction receipts of a key.
    pub async fn destruction_receipts(
        &self,
        caller: &Caller,
        reference: &str,
    ) -> Result<Vec<DestructionReceipt>> {
        self.audited(
            caller,
            Action::GetDestructionReceipt,
            async |note: &mut Note| {
                let e = self.resolve(caller.tenant(), "key", reference).await?;
                note.key(e.key.id);
                self.authorize(caller, Action::GetDestructionReceipt, Some(&e.key))?;
                self.store
                    .list_records(
                        RECEIPT,
                        Some(caller.tenant()),
                        &format!("{}/", e.key.id),
                        None,
                        10_000,
                    )
                    .await?
                    .into_iter()
                    .map(|r| {
                        serde_json::from_value(r.doc).map_err(|e| Error::internal(e.to_string()))
                    })
                    .collect()
            },
        )
        .await
    }
}

/// The record kind of destruction receipts (id `key/version`).
pub(crate) const RECEIPT: &str = "destruction-receipt";

/// Export lines of events after `after` and the checkpoints they reach, from any store.
pub async fn export_page(store: &dyn KeyStore, after: u64, limit: u32) -> Result<Vec<String>> {
    let events: Vec<StoredEvent> = store.read_audit(after, limit).await?;
    let Some(last) = events.last().map(|e| e.seq) else {
        return Ok(vec![]);
    };
    let mut cps = store
        .list_checkpoints(after, limit)
        .await?
        .into_iter()
        .filter(|c| c.seq <= last)
        .peekable();
    let mut out = Vec::with_capacity(events.len() + 1);
    // A pruned store's first page starts with its signed anchor: the checkpoint just
    // before its first record.
    for e in &events {
        while let Some(c) = cps.next_if(|c| c.seq < e.seq) {
            out.push(checkpoint_line(&c));
        }
        out.push(e.export_line());
        while let Some(c) = cps.next_if(|c| c.seq == e.seq) {
            out.push(checkpoint_line(&c));
        }
    }
    Ok(out)
}

/// Every event of a store's trail, decoded, oldest first (for tools and tests; the trail
/// can be long, so doors page instead).
pub async fn read_all(store: &dyn KeyStore) -> Result<Vec<arca_core::audit::AuditEvent>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_audit(after, 5000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in page {
            out.push(e.decode().map_err(Error::internal)?.event);
        }
    }
    Ok(out)
}
