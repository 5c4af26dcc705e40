//! Backup and restore: one file holding every tenant, principal, credential, key, version,
//! policy, approval rule and the audit trail with its head, taken as a consistent snapshot
//! while the server keeps serving, sealed under a key only the same custody can recover.
//!
//! The rows are already protected at rest (versions sealed by tenant KEKs, KEKs wrapped by
//! the root key), and the backup adds a per-file body key wrapped by the root of trust
//! ([`arca_crypto::backup`] for the container). HSM-held keys are in it by reference: their
//! token objects stay in the HSM.
//!
//! Restore has two steps. `arca restore` checks the file (framing and checksum, no key
//! needed), writes the custody header into a new data directory and leaves the file there
//! as `restore.pending`. The server applies it as soon as it holds the root key again (at
//! start for dev and HSM custody, when the custodians' shares unseal it for Shamir custody):
//! every chunk is verified with the body key, then every row goes in one transaction.

use arca_core::Action;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use arca_core::{Error, Result};
use arca_crypto::backup::{BackupReader, BackupWriter};
use arca_store::{KeyStore, SnapshotRow};
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{Caller, Note, Service};

/// The file a staged restore waits in, inside the data directory.
pub const PENDING_RESTORE: &str = "restore.pending";

/// Server-wide values a new data directory needs before it can unseal.
const CUSTODY_META: [&str; 3] = [
    crate::custody::ROOT_MODE,
    crate::custody::CUSTODY,
    crate::bootstrap::SEALED_ROOT,
];

/// The clear header of a backup: what restoring needs before the root key is back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupHeader {
    pub format: u32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub server_version: String,
    /// `dev`, `shamir` or `hsm`.
    pub custody: String,
    /// The custody values (custody record with share commitments, sealed dev root, mode),
    /// base64. None is secret without the shares, the unseal-key file or the HSM.
    pub custody_meta: BTreeMap<String, String>,
    /// The body key, wrapped by the root of trust (base64).
    pub wrapped_key: String,
    /// The audit chain's head at the snapshot: `(seq, hash)`.
    pub audit_head: Option<(u64, String)>,
}

/// What a backup or restore covered.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupSummary {
    /// Rows per table.
    pub rows: BTreeMap<String, u64>,
    pub bytes: u64,
    pub audit_head_seq: Option<u64>,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Reads and checks a backup file without any key; returns its header.
pub fn check_backup(path: &Path) -> Result<BackupHeader> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::invalid("backup", format!("cannot open {}: {e}", path.display())))?;
    let header = arca_crypto::backup::check_file(std::io::BufReader::new(f))?;
    serde_json::from_slice(&header)
        .map_err(|e| Error::invalid("backup", format!("the header does not decode: {e}")))
}

/// Prepares a new data directory's store for a restore: the custody values from the header
/// (so the server can unseal as the old one did). The file itself is copied next to the
/// store as [`PENDING_RESTORE`] by the caller.
pub async fn stage_restore(store: &dyn KeyStore, header: &BackupHeader) -> Result<()> {
    for name in CUSTODY_META {
        if store.get_meta(name).await?.is_some() {
            return Err(Error::conflict(
                "this data directory already has a root key: restore into a new one",
            ));
        }
    }
    for (name, v) in &header.custody_meta {
        if !CUSTODY_META.contains(&name.as_str()) {
            return Err(Error::invalid(
                "backup",
                format!("unexpected custody value {name:?}"),
            ));
        }
        let value = b64()
            .decode(v)
            .map_err(|_| Error::invalid("backup", "bad custody value"))?;
        store.put_meta_if_absent(name, &value).await?;
    }
    Ok(())
}

impl Service {
    /// Writes a backup of the whole store to `out` (system operators). `progress` gets the
    /// bytes written so far now and then.
    pub async fn backup<W: Write + Send>(
        &self,
        caller: &Caller,
        out: W,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<BackupSummary> {
        self.audited(caller, Action::Backup, async |note: &mut Note| {
            self.authorize(caller, Action::Backup, None)?;
            let root = self.root()?;
            self.flush_audit().await;
            let key = Zeroizing::new(self.crypto.random(32)?.to_vec());
            let mut custody_meta = BTreeMap::new();
            for name in CUSTODY_META {
                if let Some(v) = self.store.get_meta(name).await? {
                    custody_meta.insert(name.to_string(), b64().encode(v));
                }
            }
            let head = self.store.audit_head().await?;
            let header = BackupHeader {
                format: 1,
                created_at: self.now(),
                server_version: env!("CARGO_PKG_VERSION").into(),
                custody: self.root_mode().await?,
                custody_meta,
                wrapped_key: b64().encode(root.wrap(&key)?),
                audit_head: head.map(|(s, h)| (s, arca_core::audit::hex(&h))),
            };
            let header_bytes =
                serde_json::to_vec(&header).map_err(|e| Error::internal(e.to_string()))?;
            let mut w = BackupWriter::new(out, &header_bytes, &key)?;
            let mut summary = BackupSummary::default();
            let mut last_report = 0u64;
            self.store
                .snapshot(&mut |row: SnapshotRow| {
                    *summary.rows.entry(row.table.clone()).or_default() += 1;
                    let mut line =
                        serde_json::to_vec(&row).map_err(|e| Error::internal(e.to_string()))?;
                    line.push(b'\n');
                    w.write(&line)?;
                    if w.bytes_written() - last_report >= 1 << 20 {
                        last_report = w.bytes_written();
                        progress(last_report);
                    }
                    Ok(())
                })
                .await?;
            summary.bytes = w.bytes_written();
            w.finish()?;
            progress(summary.bytes);
            summary.audit_head_seq = header.audit_head.as_ref().map(|h| h.0);
            note.set(
                "rows",
                serde_json::to_value(&summary.rows).unwrap_or_default(),
            );
            Ok(summary)
        })
        .await
    }

    /// Tells the service where a staged restore waits, to apply when the root key is back.
    pub fn set_pending_restore(&self, path: Option<PathBuf>) {
        *self
            .pending_restore
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = path;
    }

    /// Applies a staged restore, if there is one: verifies every chunk with the body key
    /// (unwrapped by the root of trust now in memory), loads every row in one transaction,
    /// and removes the file. A file that does not verify changes nothing and stays.
    pub async fn apply_pending_restore(&self) -> Result<Option<BackupSummary>> {
        let Some(path) = self
            .pending_restore
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return Ok(None);
        };
        let r = self.apply_restore(&path).await;
        let meta = crate::RequestMeta::new(
            format!("restore-{}", uuid::Uuid::now_v7()),
            "local",
            crate::Door::System,
        );
        let r = self
            .audited_as(
                &meta,
                None,
                Action::RestoreBackup,
                async |note: &mut Note| {
                    if let Ok(s) = &r {
                        note.set("rows", serde_json::to_value(&s.rows).unwrap_or_default());
                        note.set("audit_head_seq", s.audit_head_seq);
                    }
                    r
                },
            )
            .await?;
        std::fs::remove_file(&path).map_err(|e| Error::Unavailable {
            message: format!("restored, but cannot remove {}: {e}", path.display()),
        })?;
        self.set_pending_restore(None);
        self.cache.clear_all();
        *self.session_key.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.audit_signer_reset();
        tracing::info!(rows = ?r.rows, "backup restored");
        Ok(Some(r))
    }

    async fn apply_restore(&self, path: &Path) -> Result<BackupSummary> {
        let root = self.root()?;
        let header_path = path.to_path_buf();
        let mut f = std::io::BufReader::new(std::fs::File::open(&header_path).map_err(|e| {
            Error::Unavailable {
                message: format!("cannot open {}: {e}", header_path.display()),
            }
        })?);
        let header_bytes = BackupReader::header(&mut f)?;
        let header: BackupHeader = serde_json::from_slice(&header_bytes)
            .map_err(|e| Error::invalid("backup", format!("the header does not decode: {e}")))?;
        let wrapped = b64()
            .decode(&header.wrapped_key)
            .map_err(|_| Error::invalid("backup", "bad wrapped key"))?;
        let key = root.unwrap(&wrapped).map_err(|_| {
            Error::invalid(
                "backup",
                "the backup's key does not open with this root key: it was made under another custody",
            )
        })?;
        // First pass: every chunk verifies before anything is written.
        let mut reader = BackupReader::open_body(f, &header_bytes, &key)?;
        let mut bytes = 0u64;
        while let Some(c) = reader.next_chunk()? {
            bytes += c.len() as u64;
        }
        // Second pass: the rows, in one transaction.
        let mut f =
            std::io::BufReader::new(std::fs::File::open(path).map_err(|e| Error::Unavailable {
                message: format!("cannot open {}: {e}", path.display()),
            })?);
        BackupReader::header(&mut f)?;
        let mut reader = BackupReader::open_body(f, &header_bytes, &key)?;
        let mut tx = self.store.begin_restore().await?;
        let mut summary = BackupSummary {
            bytes,
            audit_head_seq: header.audit_head.as_ref().map(|h| h.0),
            ..Default::default()
        };
        let mut carry: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
        let mut n = 0u64;
        while let Some(chunk) = reader.next_chunk()? {
            carry.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(end) = carry[start..].iter().position(|b| *b == b'\n') {
                let line = &carry[start..start + end];
                start += end + 1;
                let row: SnapshotRow = serde_json::from_slice(line)
                    .map_err(|e| Error::invalid("backup", format!("a row does not decode: {e}")))?;
                *summary.rows.entry(row.table.clone()).or_default() += 1;
                tx.add(&row).await?;
                n += 1;
                if n.is_multiple_of(50_000) {
                    tracing::info!(rows = n, "restoring");
                }
            }
            let rest = carry[start..].to_vec();
            *carry = rest;
        }
        if !carry.is_empty() {
            return Err(Error::invalid("backup", "the last row is cut off"));
        }
        tx.commit().await?;
        Ok(summary)
    }
}
