//! Retention: sealed, signed segments of the trail archived to files and pruned from the
//! store, so that the store's size is bounded by the retention, not by history.
//!
//! A segment is the records `first..=last` closed by a signed checkpoint at `last`. Archiving
//! signs the head, checks the segment's chain and signatures (from the checkpoint that closed
//! the segment before), and writes it in the export form (the events with their hashes, the
//! checkpoints after the events they cover) to `arca-audit-<first>-<last>.jsonl` in the
//! archive directory: a temporary name first, flushed to disk, then renamed. The segment is
//! recorded in the store (`audit_segments`: range, last hash, file name, the file's SHA-256)
//! in the same transaction as the `ArchiveAudit` event that names it.
//!
//! Pruning deletes the records of archived segments from the store, and only after checking
//! that each segment's file is in the archive directory with its recorded SHA-256. The
//! checkpoint that closes the last pruned segment stays: it is the stored trail's signed
//! start. The `PruneAudit` event (written in the same transaction, after every record it
//! removes) names the range and the files; verification requires a store that starts after
//! record 1 to hold the prune record naming exactly where it starts.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use arca_core::audit::{
    checkpoint_line, hex, segment_file_name, AuditSegment, ChainBreak, ChainVerifier, Checkpoint,
};
use arca_core::{Action, Error, Result};
use chrono::{DateTime, Utc};

use crate::trail::checkpoint_is_valid;
use crate::{Actor, Caller, Door, Note, RequestMeta, Service};

/// The most records one segment holds (a segment ends at a checkpoint, so it may hold up to
/// one checkpoint interval more when no checkpoint falls under this bound).
pub const MAX_SEGMENT_EVENTS: u64 = 100_000;

/// Where segments are archived and when the retention task archives and prunes (the
/// `[audit]` table's `archive_dir`, `archive_interval_secs` and `prune_after_secs`, set by
/// the server).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RetentionConfig {
    /// The archive directory (the server sets `<data_dir>/audit-archive` by default).
    pub archive_dir: Option<PathBuf>,
    /// Seconds between runs of the retention task that archives a segment (0: never by
    /// itself, only by `arca audit archive`).
    pub archive_interval_secs: u64,
    /// Archived segments whose last record is older than this many seconds are pruned by the
    /// retention task (0: never by itself, only by `arca audit prune`).
    pub prune_after_secs: u64,
    /// The trail's followers (`[[audit.sinks]]` names) a prune waits for: records a sink
    /// has not delivered yet are not pruned, so that its copy has no gap.
    #[serde(default)]
    pub followers: Vec<String>,
}

/// What to prune: at most one of the bounds; neither prunes every archived segment.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    /// Prune records up to this one, which must end an archived segment.
    #[serde(default)]
    pub through_seq: Option<u64>,
    /// Prune the archived segments whose last record is older than this time (RFC 3339).
    #[serde(default)]
    pub older_than: Option<DateTime<Utc>>,
}

/// What a prune removed from the store.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct PruneResult {
    /// The stored trail now starts after this record (0: nothing was pruned).
    pub through_seq: u64,
    /// How many events were deleted from the store.
    pub events_pruned: u64,
    /// The segments pruned (their files stay in the archive directory).
    pub segments: Vec<AuditSegment>,
}

fn archive_io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Unavailable {
        message: format!("cannot {what} {}: {e}", path.display()),
    }
}

/// Hex SHA-256 of a file's bytes.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(hex(ctx.finish().as_ref()))
}

/// A segment file being written: a temporary name, hashed as it goes. Dropped before
/// [`SegmentWriter::finish`] (the segment failed its check, the store failed), it removes
/// its temporary file.
struct SegmentWriter {
    tmp: PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
    hash: aws_lc_rs::digest::Context,
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl SegmentWriter {
    fn create(dir: &Path, name: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| archive_io("create", dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::now_v7()));
        let f = std::fs::File::create(&tmp).map_err(|e| archive_io("create", &tmp, e))?;
        Ok(SegmentWriter {
            tmp,
            out: Some(std::io::BufWriter::new(f)),
            hash: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
        })
    }

    fn line(&mut self, line: &str) -> Result<()> {
        let tmp = &self.tmp;
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| Error::internal("segment file already finished"))?;
        out.write_all(line.as_bytes())
            .and_then(|_| out.write_all(b"\n"))
            .map_err(|e| archive_io("write", tmp, e))?;
        self.hash.update(line.as_bytes());
        self.hash.update(b"\n");
        Ok(())
    }

    /// Flushes the file to disk and gives it its name (then flushes the directory, so the
    /// name survives a crash): returns the file's SHA-256.
    fn finish(mut self, dir: &Path, name: &str) -> Result<String> {
        let tmp = self.tmp.clone();
        let written = (|| {
            let f = self
                .out
                .as_mut()
                .ok_or_else(|| Error::internal("segment file already finished"))?;
            f.flush().map_err(|e| archive_io("write", &tmp, e))?;
            f.get_ref()
                .sync_all()
                .map_err(|e| archive_io("flush", &tmp, e))?;
            std::fs::rename(&tmp, dir.join(name)).map_err(|e| archive_io("rename", &tmp, e))
        })();
        // Renamed: nothing left to remove on drop (on failure, drop removes the temporary).
        written?;
        self.out = None;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        let hash = std::mem::replace(
            &mut self.hash,
            aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
        );
        Ok(hex(hash.finish().as_ref()))
    }
}

/// Consecutive segments grouped for pruning: each group spans at most
/// [`MAX_SEGMENT_EVENTS`] records (a longer segment is a group of its own).
fn prune_batches(segments: &[AuditSegment]) -> Vec<&[AuditSegment]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=segments.len() {
        let ends = i == segments.len()
            || segments[i].last_seq - segments[start].first_seq >= MAX_SEGMENT_EVENTS;
        if ends {
            out.push(&segments[start..i]);
            start = i;
        }
    }
    out
}

/// What a request is told while another node archives or prunes.
const BUSY: &str = "another node is archiving or pruning the audit trail now; try again";

/// Renames the segment files of `dir` that start at or after `first` (the next segment to
/// archive): no recorded segment is there, so they are left from an attempt that did not
/// commit. They keep their content under `NAME.unrecorded`, which is no segment file's name,
/// so that a new segment never overlaps them and nothing is lost.
fn set_aside_strays(dir: &Path, first: u64) {
    for (f, _, path) in crate::trail::archive_files(dir).unwrap_or_default() {
        if f >= first {
            let aside = path.with_extension("jsonl.unrecorded");
            match std::fs::rename(&path, &aside) {
                Ok(()) => {
                    tracing::warn!(file = %path.display(), "an archived segment file the store does not record was set aside (.unrecorded)")
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot set aside an unrecorded segment file")
                }
            }
        }
    }
}

fn broken(b: ChainBreak) -> Error {
    tracing::error!(seq = b.seq, problem = %b.problem, "the audit trail fails verification; nothing archived");
    Error::Unavailable {
        message: format!(
            "the audit trail fails verification ({b}); nothing was archived: run `arca audit verify`"
        ),
    }
}

impl Service {
    fn archive_dir(&self) -> Result<PathBuf> {
        self.config
            .audit_retention
            .archive_dir
            .clone()
            .ok_or_else(|| {
                Error::unprocessable(
                    "archive_dir",
                    "no audit archive directory is configured ([audit] archive_dir)",
                )
            })
    }

    /// The record where the segment starting at `first` ends: the newest checkpoint at most
    /// [`MAX_SEGMENT_EVENTS`] records on, or else the first checkpoint after `first`.
    async fn segment_end(&self, first: u64) -> Result<Option<Checkpoint>> {
        let bound = first - 1 + MAX_SEGMENT_EVENTS;
        let mut best: Option<Checkpoint> = None;
        let mut after = first - 1;
        loop {
            let page = self.store.list_checkpoints(after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for c in page {
                if c.seq <= bound || best.is_none() {
                    best = Some(c);
                } else {
                    return Ok(best);
                }
            }
        }
        Ok(best)
    }

    /// Seals and archives the next segment: everything from the end of the last archived
    /// segment to a checkpoint signed now at the head (at most about
    /// [`MAX_SEGMENT_EVENTS`]). `None` when there is nothing to archive.
    async fn archive_next(&self, by: Actor<'_>, note: &mut Note) -> Result<Option<AuditSegment>> {
        let dir = self.archive_dir()?;
        let _turn = self.retention.lock().await;
        let lease = self.retention_lease().await?;
        let r = self.archive_locked(&dir, by, note).await;
        lease.release().await?;
        r
    }

    /// Takes the retention lease (one node archives or prunes at a time), or answers that
    /// another node holds it.
    async fn retention_lease(&self) -> Result<Box<dyn arca_store::Lease>> {
        self.store
            .try_lease("audit-retention")
            .await?
            .ok_or_else(|| Error::conflict(BUSY))
    }

    /// [`Service::archive_next`] under the retention lease.
    async fn archive_locked(
        &self,
        dir: &Path,
        by: Actor<'_>,
        note: &mut Note,
    ) -> Result<Option<AuditSegment>> {
        let dir = dir.to_path_buf();
        self.checkpoint_audit().await?;
        let first = self
            .store
            .list_audit_segments()
            .await?
            .last()
            .map_or(1, |s| s.last_seq + 1);
        let Some(end) = self.segment_end(first).await? else {
            return Ok(None);
        };
        let public_key = self.audit_public_key().await?;
        let sig = |c: &Checkpoint| checkpoint_is_valid(&public_key, c);
        // The segment is checked before it is written: from the checkpoint that closed the
        // segment before (kept in the store even once pruned), every link and signature.
        let mut v = if first > 1 {
            let anchor = self
                .store
                .list_checkpoints(first - 2, 1)
                .await?
                .into_iter()
                .find(|c| c.seq == first - 1)
                .ok_or_else(|| {
                    Error::internal(format!(
                        "no stored checkpoint at record {}, where the last archived segment ends",
                        first - 1
                    ))
                })?;
            ChainVerifier::resume(sig, anchor).map_err(broken)?
        } else {
            ChainVerifier::new(sig)
        };
        let mut cps = Vec::new();
        let mut after = first - 1;
        'pages: loop {
            let page = self.store.list_checkpoints(after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for c in page {
                if c.seq > end.seq {
                    break 'pages;
                }
                cps.push(c);
            }
        }
        for c in &cps {
            v.checkpoint(c.clone()).map_err(broken)?;
        }
        let name = segment_file_name(first, end.seq);
        set_aside_strays(&dir, first);
        let mut w = SegmentWriter::create(&dir, &name)?;
        let mut cps = cps.into_iter().peekable();
        let mut after = first - 1;
        let mut last_at = None;
        while after < end.seq {
            let page = self.store.read_audit(after, 2000).await?;
            if page.is_empty() {
                break;
            }
            for e in page.iter().take_while(|e| e.seq <= end.seq) {
                v.event(e).map_err(broken)?;
                w.line(&e.export_line())?;
                while let Some(c) = cps.next_if(|c| c.seq <= e.seq) {
                    w.line(&checkpoint_line(&c))?;
                }
                after = e.seq;
                if after == end.seq {
                    last_at = Some(e.decode().map_err(Error::internal)?.event.at);
                }
            }
        }
        let report = v.finish().map_err(broken)?;
        let Some(last_at) = last_at.filter(|_| report.last_seq == end.seq) else {
            return Err(broken(ChainBreak {
                seq: after + 1,
                problem: format!(
                    "missing: the store holds records up to {after} of the segment ending at {}",
                    end.seq
                ),
            }));
        };
        // Flushing a large file to disk takes a while: off the async workers.
        let sha256 = {
            let (dir, name) = (dir.clone(), name.clone());
            tokio::task::spawn_blocking(move || w.finish(&dir, &name))
                .await
                .map_err(|e| Error::internal(format!("archive writer: {e}")))??
        };
        let seg = AuditSegment {
            first_seq: first,
            last_seq: end.seq,
            last_hash: end.hash.clone(),
            last_at,
            file: name.clone(),
            sha256: sha256.clone(),
            archived_at: self.now(),
            pruned_at: None,
        };
        note.set("first_seq", first);
        note.set("last_seq", end.seq);
        note.set("file", name);
        note.set("sha256", sha256);
        let audit = self.event_by(&by, Action::ArchiveAudit, note);
        if let Err(e) = self.store.add_audit_segment(&seg, &audit).await {
            // A file the store does not record is no segment: set it aside.
            set_aside_strays(&dir, first);
            return Err(e);
        }
        note.committed = true;
        tracing::info!(first, last = end.seq, file = %seg.file, "audit segment archived");
        Ok(Some(seg))
    }

    /// The follower (sink) that has delivered the fewest records, and how many: no prune
    /// goes past it.
    async fn slowest_follower(&self) -> Option<(String, u64)> {
        let mut slowest: Option<(String, u64)> = None;
        for name in &self.config.audit_retention.followers {
            let at = self.trail_follower(name).position().await.events;
            if slowest.as_ref().is_none_or(|(_, s)| at < *s) {
                slowest = Some((name.clone(), at));
            }
        }
        slowest
    }

    /// Which record a prune request goes up to: the end of an archived segment still in the
    /// store, and delivered by every sink. `None` when nothing is to be pruned and no bound
    /// was named.
    async fn prune_target(&self, req: &PruneRequest) -> Result<Option<u64>> {
        if req.through_seq.is_some() && req.older_than.is_some() {
            return Err(Error::invalid(
                "older_than",
                "give through_seq or older_than, not both",
            ));
        }
        let slowest = self.slowest_follower().await;
        let all_open: Vec<AuditSegment> = self
            .store
            .list_audit_segments()
            .await?
            .into_iter()
            .filter(|s| s.pruned_at.is_none())
            .collect();
        let open: Vec<AuditSegment> = all_open
            .iter()
            .filter(|s| slowest.as_ref().is_none_or(|(_, at)| s.last_seq <= *at))
            .cloned()
            .collect();
        // The first segment a sink still holds back, if the request would reach it.
        let held = all_open
            .get(open.len())
            .filter(|h| match (req.through_seq, req.older_than) {
                (Some(n), _) => n >= h.last_seq,
                (None, Some(t)) => h.last_at < t,
                (None, None) => true,
            });
        if let (Some((sink, at)), Some(_)) = (&slowest, held) {
            if let Some(n) = req.through_seq {
                return Err(Error::conflict(format!(
                    "audit sink {sink} has delivered records up to {at} only: pruning through {n} would leave a gap in its copy (nothing was pruned)"
                )));
            }
            tracing::warn!(sink = %sink, delivered = at, "an audit sink has not delivered archived records due for pruning; they stay in the store until it does");
        }
        match (req.through_seq, req.older_than) {
            (Some(n), _) => {
                if open.iter().any(|s| s.last_seq == n) {
                    return Ok(Some(n));
                }
                let ends: Vec<String> = open.iter().map(|s| s.last_seq.to_string()).collect();
                Err(Error::invalid(
                    "through_seq",
                    if ends.is_empty() {
                        format!("record {n} does not end an archived segment still in the store (none is: run `arca audit archive` first)")
                    } else {
                        format!(
                            "record {n} does not end an archived segment still in the store; these do: {}",
                            ends.join(", ")
                        )
                    },
                ))
            }
            (None, Some(t)) => Ok(open
                .iter()
                .rev()
                .find(|s| s.last_at < t)
                .map(|s| s.last_seq)),
            (None, None) => Ok(open.last().map(|s| s.last_seq)),
        }
    }

    /// Deletes the records of the archived segments up to `through` from the store, once each
    /// segment's file is found in the archive directory with its recorded SHA-256.
    async fn prune_through(
        &self,
        by: Actor<'_>,
        through: u64,
        note: &mut Note,
    ) -> Result<PruneResult> {
        let dir = self.archive_dir()?;
        let segments: Vec<AuditSegment> = self
            .store
            .list_audit_segments()
            .await?
            .into_iter()
            .filter(|s| s.pruned_at.is_none() && s.last_seq <= through)
            .collect();
        if segments.is_empty() {
            // Pruned meanwhile (by the task or another request).
            return Ok(PruneResult {
                through_seq: 0,
                events_pruned: 0,
                segments: vec![],
            });
        }
        // Every file is checked before anything is pruned.
        for s in &segments {
            // The store names the file; only the name this server gives a segment is read,
            // so an edited row cannot point the check at another path.
            if s.file != segment_file_name(s.first_seq, s.last_seq) {
                return Err(Error::conflict(format!(
                    "the archived segment {}-{} is recorded under the file name {:?}, not the one Arca gives it; nothing was pruned",
                    s.first_seq, s.last_seq, s.file
                )));
            }
            let path = dir.join(&s.file);
            let hashed = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || file_sha256(&path))
                    .await
                    .map_err(|e| Error::internal(format!("archive reader: {e}")))?
            };
            match hashed {
                Ok(h) if h == s.sha256 => {}
                Ok(_) => {
                    return Err(Error::conflict(format!(
                        "the archived segment file {} does not match its recorded SHA-256 (it was changed); nothing was pruned",
                        path.display()
                    )))
                }
                Err(e) => {
                    return Err(Error::conflict(format!(
                        "the archived segment file {} cannot be read ({e}); nothing was pruned",
                        path.display()
                    )))
                }
            }
        }
        // One transaction per batch of segments of at most about MAX_SEGMENT_EVENTS records,
        // so that a long backlog never holds the store's write lock for long. Each batch's
        // record names its range and files; the last one names where the store now starts.
        let batches = prune_batches(&segments);
        let mut events_pruned = 0;
        for batch in batches {
            let (first, last) = (batch[0].first_seq, batch[batch.len() - 1].last_seq);
            let files: Vec<serde_json::Value> = batch
                .iter()
                .map(|s| serde_json::json!({"file": s.file, "sha256": s.sha256}))
                .collect();
            let mut n = note.clone();
            // `through_seq` is what verification reads: the stored trail starts after it.
            n.set("through_seq", last);
            n.set("first_seq", first);
            n.set("files", serde_json::Value::Array(files));
            let audit = self.event_by(&by, Action::PruneAudit, &n);
            let deleted = self.store.prune_audit(last, self.now(), &audit).await?;
            *note = Note {
                committed: true,
                ..n
            };
            events_pruned += deleted;
            tracing::info!(
                first,
                through = last,
                events = deleted,
                "audit records pruned from the store (archived)"
            );
        }
        let mut pruned = segments;
        let at = self.now();
        for s in &mut pruned {
            s.pruned_at = Some(at);
        }
        Ok(PruneResult {
            through_seq: through,
            events_pruned,
            segments: pruned,
        })
    }

    /// Archives the next segment of the trail (auditors of the system tenant): `None` when
    /// there is nothing new to archive.
    pub async fn archive_audit(&self, caller: &Caller) -> Result<Option<AuditSegment>> {
        self.audited(caller, Action::ArchiveAudit, async |note: &mut Note| {
            self.authorize(caller, Action::ArchiveAudit, None)?;
            if !self.audits_everything(caller).await? {
                return Err(Error::NotPermitted {
                    message: "the trail is one chain across every tenant: only auditors of the system tenant archive it".into(),
                });
            }
            self.archive_next(Actor::Caller(caller), note).await
        })
        .await
    }

    /// The archived segments, oldest first (auditors of the system tenant).
    pub async fn list_audit_segments(&self, caller: &Caller) -> Result<Vec<AuditSegment>> {
        self.audited(caller, Action::ListAuditSegments, async |_: &mut Note| {
            self.authorize(caller, Action::ListAuditSegments, None)?;
            if !self.audits_everything(caller).await? {
                return Err(Error::NotPermitted {
                    message: "the trail is one chain across every tenant: only auditors of the system tenant list its segments".into(),
                });
            }
            self.store.list_audit_segments().await
        })
        .await
    }

    /// Prunes archived segments from the store (system operators of the system tenant; a
    /// quorum rule on `PruneAudit` puts it under approval, for the range asked now).
    pub async fn prune_audit(&self, caller: &Caller, req: PruneRequest) -> Result<PruneResult> {
        self.audited(caller, Action::PruneAudit, async |note: &mut Note| {
            self.authorize(caller, Action::PruneAudit, None)?;
            if !self.audits_everything(caller).await? {
                return Err(Error::NotPermitted {
                    message: "the trail is one chain across every tenant: only system operators of the system tenant prune it".into(),
                });
            }
            let Some(through) = self.prune_target(&req).await? else {
                return Ok(PruneResult {
                    through_seq: 0,
                    events_pruned: 0,
                    segments: vec![],
                });
            };
            self.gate(caller, Action::PruneAudit, None, || {
                crate::approvals::Pending::PruneAudit { through_seq: through }
            })
            .await?;
            self.prune_through(Actor::Caller(caller), through, note).await
        })
        .await
    }

    /// One run of the retention task: archives a segment (if `archive_interval_secs` is
    /// set) and prunes the archived segments older than `prune_after_secs` (if set). One
    /// node at a time.
    pub async fn run_retention(&self) -> Result<()> {
        let r = self.config.audit_retention.clone();
        if self.is_sealed() || (r.archive_interval_secs == 0 && r.prune_after_secs == 0) {
            return Ok(());
        }
        let result = async {
            // A backlog (retention just set on a long trail) is archived in segments of
            // about MAX_SEGMENT_EVENTS, one after another.
            if r.archive_interval_secs > 0 {
                loop {
                    let meta = RequestMeta::new(
                        format!("retention-{}", uuid::Uuid::now_v7()),
                        "arca",
                        Door::System,
                    );
                    match self
                        .archive_next(Actor::Server(&meta), &mut Note::default())
                        .await?
                    {
                        Some(s) if s.last_seq - s.first_seq + 1 >= MAX_SEGMENT_EVENTS => {}
                        _ => break,
                    }
                }
            }
            if r.prune_after_secs > 0 {
                let older_than = self.now() - chrono::Duration::seconds(r.prune_after_secs as i64);
                let req = PruneRequest {
                    through_seq: None,
                    older_than: Some(older_than),
                };
                if let Some(through) = self.prune_target(&req).await? {
                    let meta = RequestMeta::new(
                        format!("retention-{}", uuid::Uuid::now_v7()),
                        "arca",
                        Door::System,
                    );
                    self.prune_through(Actor::Server(&meta), through, &mut Note::default())
                        .await?;
                }
            }
            Ok::<_, Error>(())
        }
        .await;
        match result {
            // Another node is at it: its turn this round.
            Err(Error::Conflict { message }) if message == BUSY => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(first: u64, last: u64) -> AuditSegment {
        AuditSegment {
            first_seq: first,
            last_seq: last,
            last_hash: String::new(),
            last_at: Utc::now(),
            file: segment_file_name(first, last),
            sha256: String::new(),
            archived_at: Utc::now(),
            pruned_at: None,
        }
    }

    /// A segment file appears under its name only once complete and flushed, with the
    /// SHA-256 of its bytes; a writer given up leaves no temporary file behind.
    #[test]
    fn segment_files_appear_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let names = || -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let mut w = SegmentWriter::create(dir.path(), "arca-audit-1-2.jsonl").unwrap();
        w.line("{\"a\":1}").unwrap();
        assert_eq!(names().len(), 1);
        assert!(names()[0].ends_with(".tmp"), "{:?}", names());
        drop(w);
        assert!(names().is_empty(), "{:?}", names());
        let mut w = SegmentWriter::create(dir.path(), "arca-audit-1-2.jsonl").unwrap();
        w.line("{\"a\":1}").unwrap();
        w.line("{\"b\":2}").unwrap();
        let sha = w.finish(dir.path(), "arca-audit-1-2.jsonl").unwrap();
        assert_eq!(names(), vec!["arca-audit-1-2.jsonl".to_string()]);
        let path = dir.path().join("arca-audit-1-2.jsonl");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        assert_eq!(file_sha256(&path).unwrap(), sha);
        // A file the store does not record (from the next segment on) is set aside.
        set_aside_strays(dir.path(), 1);
        assert_eq!(names(), vec!["arca-audit-1-2.jsonl.unrecorded".to_string()]);
    }

    /// A long backlog is pruned in transactions of about MAX_SEGMENT_EVENTS records.
    #[test]
    fn prune_batches_bound_each_transaction() {
        let m = MAX_SEGMENT_EVENTS;
        let ranges = |segs: &[AuditSegment]| -> Vec<(u64, u64)> {
            prune_batches(segs)
                .iter()
                .map(|b| (b[0].first_seq, b[b.len() - 1].last_seq))
                .collect()
        };
        assert!(prune_batches(&[]).is_empty());
        let small: Vec<AuditSegment> = (0..5).map(|i| seg(i * 10 + 1, i * 10 + 10)).collect();
        assert_eq!(ranges(&small), vec![(1, 50)]);
        let big = vec![seg(1, m), seg(m + 1, 2 * m + 5), seg(2 * m + 6, 2 * m + 7)];
        assert_eq!(
            ranges(&big),
            vec![(1, m), (m + 1, 2 * m + 5), (2 * m + 6, 2 * m + 7)]
        );
        let mixed = vec![seg(1, m / 2), seg(m / 2 + 1, m), seg(m + 1, m + 3)];
        assert_eq!(ranges(&mixed), vec![(1, m), (m + 1, m + 3)]);
    }
}
