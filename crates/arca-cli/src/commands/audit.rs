//! `arca audit ...`: search, tail, export, verify (offline, or by the server), the usage
//! report and its series over time, the signing public key, checkpoints and destruction
//! receipts.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use arca_core::audit::{DestructionReceipt, VerifyReport};
use arca_service::trail;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::{Ctx, KeyArg, NotValid};
use crate::output::{self, get, outln, print_json};

/// `arca audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Search events (your tenant; every tenant for auditors of the system tenant).
    Search(SearchArgs),
    /// Show the newest events, and with --follow keep showing new ones.
    Tail(TailArgs),
    /// Write the whole verifiable trail as JSON lines (events and signed checkpoints), for
    /// `arca audit verify --file` and for SIEMs. Auditors of the system tenant.
    Export(ExportArgs),
    /// Verify the trail: every link and every checkpoint signature, offline from a data
    /// directory, a PostgreSQL store or an export file, or by the server itself
    /// (--on-server). Names the first bad record; exit code 2 if any.
    Verify(VerifyArgs),
    /// Per key: last use and counts by operation and by principal; with --series, one key's
    /// counts per hour or day.
    #[command(visible_alias = "usage")]
    Report(ReportArgs),
    /// Print the audit signing public key (PEM); keep it to pin verification.
    PublicKey,
    /// Sign a checkpoint at the head of the trail now.
    Checkpoint,
    /// Seal the trail at a checkpoint signed now and archive the records since the last
    /// archived segment to a file of the server's archive directory. Auditors of the system
    /// tenant.
    Archive,
    /// List the archived segments: range, file, SHA-256, whether pruned from the store.
    Segments,
    /// Delete archived segments' records from the store (their files stay; each file must be
    /// in the archive directory with its recorded SHA-256). System operators of the system
    /// tenant; a quorum rule on PruneAudit applies.
    Prune(PruneArgs),
    /// Print the signed destruction receipts of a key (JSON).
    Receipts(KeyArg),
    /// Check a destruction receipt (a JSON file holding one receipt or a list).
    VerifyReceipt(VerifyReceiptArgs),
}

/// Filters of `arca audit search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Events at or after this RFC 3339 time.
    #[arg(long)]
    pub from: Option<String>,
    /// Events before this RFC 3339 time.
    #[arg(long)]
    pub to: Option<String>,
    /// A key id.
    #[arg(long)]
    pub key: Option<String>,
    /// A principal's name or id.
    #[arg(long)]
    pub principal: Option<String>,
    /// An operation (`Encrypt`, `CreateKey`, ...).
    #[arg(long)]
    pub operation: Option<String>,
    /// `ok`, `refused` or an error code.
    #[arg(long)]
    pub outcome: Option<String>,
    /// A tenant id (auditors of the system tenant).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Oldest first, after this sequence number (paging).
    #[arg(long)]
    pub after: Option<u64>,
    /// Newest first, before this sequence number (paging).
    #[arg(long)]
    pub before: Option<u64>,
    /// How many (1-1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

/// Options of `arca audit tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// How many of the newest events to show first.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub lines: u32,
    /// Keep polling for new events (every second) until interrupted.
    #[arg(short, long)]
    pub follow: bool,
}

/// Options of `arca audit export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Options of `arca audit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Ask the server to verify its stored trail (`GET /v1/audit/verify`; auditors of the
    /// system tenant). With --public-key, also check that the server verified against the
    /// pinned key: a server that vouches for itself proves less than an offline check.
    #[arg(long, conflicts_with_all = ["file", "data_dir"])]
    pub on_server: bool,
    /// Verify an export file (`arca audit export` output).
    #[arg(long, value_name = "FILE", conflicts_with = "data_dir")]
    pub file: Option<PathBuf>,
    /// Verify the store of a data directory, offline (the server may be running).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Verify a shared PostgreSQL store (`postgres://…`, as in `store.url`), offline; the
    /// nodes may be running. Read from `ARCA_STORE__URL` when neither this, --file nor
    /// --data-dir is given (so a node's environment does not get in the way of the others).
    #[arg(long, value_name = "URL", conflicts_with_all = ["file", "data_dir"])]
    pub store_url: Option<String>,
    /// The trusted audit public key (PEM from `arca audit public-key`). Without it a data
    /// directory is checked against the key stored in it, which proves less.
    #[arg(long, value_name = "PEM")]
    pub public_key: Option<PathBuf>,
    /// An archive directory (`[audit] archive_dir`): its segment files are verified first,
    /// in order from record 1, and the store or the export given beside it must continue
    /// them; alone, the archive is verified on its own.
    #[arg(long, value_name = "DIR", conflicts_with = "on_server")]
    pub archive: Option<PathBuf>,
}

/// Options of `arca audit prune`: at most one bound; none prunes every archived segment.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Up to this record, which must end an archived segment.
    #[arg(long, value_name = "SEQ", conflicts_with = "older_than")]
    pub through: Option<u64>,
    /// The archived segments whose last record is older than this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub older_than: Option<String>,
}

/// Options of `arca audit report` (alias `usage`).
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// One key (id, name or alias); required with --series.
    #[arg(long)]
    pub key: Option<String>,
    /// Uses at or after this RFC 3339 time (with --series: rounded down to the interval;
    /// default 24 hours or 30 days before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// Count the key's successful operations per UTC hour or day
    /// (`GET /v1/audit/usage/series`), oldest first, empty buckets too.
    #[arg(long, value_name = "INTERVAL", value_parser = ["hour", "day"], requires = "key")]
    pub series: Option<String>,
    /// With --series: up to this RFC 3339 time (rounded up; default now).
    #[arg(long, requires = "series")]
    pub to: Option<String>,
}

/// Options of `arca audit verify-receipt`.
#[derive(Debug, Args)]
pub struct VerifyReceiptArgs {
    /// The receipt (JSON).
    #[arg(value_name = "FILE")]
    pub receipt: PathBuf,
    /// The trusted audit public key (PEM).
    #[arg(long, value_name = "PEM")]
    pub public_key: PathBuf,
}

/// Runs an `arca audit` subcommand.
pub async fn run(ctx: &Ctx, cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::Search(a) => search(ctx, a).await,
        AuditCommand::Tail(a) => tail(ctx, a).await,
        AuditCommand::Export(a) => export(ctx, a).await,
        AuditCommand::Verify(a) => verify(ctx, a).await,
        AuditCommand::Report(a) => report(ctx, a).await,
        AuditCommand::PublicKey => {
            let b = ctx
                .client()?
                .get(&["v1", "audit", "public-key"], &[])
                .await?;
            print!("{}", b.text()?);
            Ok(())
        }
        AuditCommand::Checkpoint => {
            let v = ctx
                .client()?
                .post(&["v1", "audit", "checkpoint"], &serde_json::json!({}))
                .await?
                .value()?;
            if ctx.json() {
                print_json(&v);
            } else if v.is_null() {
                outln!("the head of the trail is already signed");
            } else {
                outln!(
                    "signed checkpoint at record {} ({})",
                    get(&v, "seq"),
                    get(&v, "hash")
                );
            }
            Ok(())
        }
        AuditCommand::Archive => {
            let v = ctx
                .client()?
                .post(&["v1", "audit", "archive"], &serde_json::json!({}))
                .await?
                .value()?;
            if ctx.json() {
                print_json(&v);
            } else if v.is_null() {
                outln!("nothing new to archive");
            } else {
                outln!(
                    "archived records {}..{} to {} (SHA-256 {})",
                    get(&v, "first_seq"),
                    get(&v, "last_seq"),
                    get(&v, "file"),
                    get(&v, "sha256")
                );
            }
            Ok(())
        }
        AuditCommand::Segments => {
            let v = ctx
                .client()?
                .get(&["v1", "audit", "segments"], &[])
                .await?
                .value()?;
            if ctx.json() {
                print_json(&v);
                return Ok(());
            }
            let mut t = output::table(["FIRST", "LAST", "FILE", "SHA-256", "ARCHIVED", "PRUNED"]);
            for s in v.as_array().cloned().unwrap_or_default() {
                t.add_row(vec![
                    get(&s, "first_seq"),
                    get(&s, "last_seq"),
                    get(&s, "file"),
                    get(&s, "sha256"),
                    get(&s, "archived_at"),
                    get(&s, "pruned_at"),
                ]);
            }
            output::show(&t);
            Ok(())
        }
        AuditCommand::Prune(a) => {
            let mut body = serde_json::Map::new();
            if let Some(n) = a.through {
                body.insert("through_seq".into(), n.into());
            }
            if let Some(t) = a.older_than {
                body.insert("older_than".into(), t.into());
            }
            let v = ctx
                .client()?
                .post(&["v1", "audit", "prune"], &Value::Object(body))
                .await?
                .value()?;
            if ctx.json() {
                print_json(&v);
            } else if v["through_seq"].as_u64().unwrap_or(0) == 0 {
                outln!("nothing to prune: no archived segment is still in the store (or the audit sinks have not delivered them yet)");
            } else {
                outln!(
                    "pruned {} events from the store: it now starts after record {} ({} segments, their files stay in the archive)",
                    get(&v, "events_pruned"),
                    get(&v, "through_seq"),
                    v["segments"].as_array().map_or(0, |s| s.len())
                );
            }
            Ok(())
        }
        AuditCommand::Receipts(k) => {
            let v = ctx
                .client()?
                .get(&["v1", "keys", &k.key, "receipts"], &[])
                .await?
                .value()?;
            print_json(&v);
            Ok(())
        }
        AuditCommand::VerifyReceipt(a) => verify_receipt(ctx, a),
    }
}

fn table(ctx: &Ctx, events: &[Value]) {
    if ctx.json() {
        print_json(&Value::Array(events.to_vec()));
        return;
    }
    let mut t = output::table([
        "SEQ",
        "AT",
        "PRINCIPAL",
        "OPERATION",
        "KEY",
        "OUTCOME",
        "SOURCE",
        "REQUEST ID",
    ]);
    for r in events {
        let key = match r.get("key_version").and_then(Value::as_u64) {
            Some(v) => format!("{} v{v}", get(r, "key_id")),
            None => get(r, "key_id"),
        };
        t.add_row(vec![
            get(r, "seq"),
            get(r, "at"),
            get(r, "principal"),
            get(r, "operation"),
            key,
            get(r, "outcome"),
            format!("{} {}", get(r, "door"), get(r, "source")),
            get(r, "request_id"),
        ]);
    }
    output::show(&t);
}

async fn search(ctx: &Ctx, a: SearchArgs) -> Result<()> {
    let mut q: Vec<(&str, String)> = vec![("limit", a.limit.to_string())];
    let opts = [
        ("from", a.from),
        ("to", a.to),
        ("key", a.key),
        ("principal", a.principal),
        ("operation", a.operation),
        ("outcome", a.outcome),
        ("tenant", a.tenant),
        ("after", a.after.map(|x| x.to_string())),
        ("before", a.before.map(|x| x.to_string())),
    ];
    for (k, v) in opts {
        if let Some(v) = v {
            q.push((k, v));
        }
    }
    let v = ctx.client()?.get(&["v1", "audit"], &q).await?.value()?;
    let events = v["events"].as_array().cloned().unwrap_or_default();
    table(ctx, &events);
    if !ctx.json() {
        if let Some(n) = v.get("next").and_then(Value::as_u64) {
            let flag = if a.after.is_some() { "after" } else { "before" };
            outln!("more: --{flag} {n}");
        }
    }
    Ok(())
}

async fn tail(ctx: &Ctx, a: TailArgs) -> Result<()> {
    let c = ctx.client()?;
    let v = c
        .get(
            &["v1", "audit"],
            &[("limit", a.lines.clamp(1, 1000).to_string())],
        )
        .await?
        .value()?;
    let mut events = v["events"].as_array().cloned().unwrap_or_default();
    events.reverse();
    let mut last = events.last().and_then(|e| e["seq"].as_u64()).unwrap_or(0);
    table(ctx, &events);
    if !a.follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let v = c
            .get(
                &["v1", "audit"],
                &[("after", last.to_string()), ("limit", "1000".into())],
            )
            .await?
            .value()?;
        let events = v["events"].as_array().cloned().unwrap_or_default();
        if let Some(s) = events.last().and_then(|e| e["seq"].as_u64()) {
            last = s;
            table(ctx, &events);
        }
    }
}

/// Events per export request.
const PAGE: usize = 5000;

async fn export(ctx: &Ctx, a: ExportArgs) -> Result<()> {
    let c = ctx.client()?;
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut after = 0u64;
    let mut n = 0u64;
    loop {
        let text = c
            .get(
                &["v1", "audit", "export"],
                &[("after", after.to_string()), ("limit", PAGE.to_string())],
            )
            .await?
            .text()?;
        let mut last = None;
        let mut in_page = 0;
        for line in text.lines() {
            if let Ok(arca_core::audit::ExportLine::Event(e)) =
                arca_core::audit::parse_export_line(line)
            {
                last = Some(e.seq);
                n += 1;
                in_page += 1;
            }
            writeln!(out, "{line}")?;
        }
        // A short page is the tail: stop there, since every export request adds an
        // event of its own.
        match last {
            Some(s) if in_page == PAGE => after = s,
            _ => break,
        }
    }
    out.flush()?;
    if let Some(p) = &a.out {
        eprintln!("exported {n} events to {}", p.display());
    }
    Ok(())
}

fn read_key(path: &PathBuf) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    trail::parse_public_key(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// What `arca audit verify` reads.
#[derive(Debug, PartialEq)]
enum VerifySource<'a> {
    Server,
    File(&'a PathBuf),
    DataDir(&'a PathBuf),
    StoreUrl(String),
    /// `--archive DIR` alone: the archive's segment files only.
    ArchiveOnly,
}

/// Picks the trail to verify: the flags first; `ARCA_STORE__URL` (`env_url`) only when no
/// flag names one, so that the variable a node runs with never overrides or conflicts with
/// `--file` or `--data-dir`.
fn verify_source<'a>(a: &'a VerifyArgs, env_url: Option<String>) -> Result<VerifySource<'a>> {
    Ok(match (a.on_server, &a.file, &a.data_dir, &a.store_url) {
        (true, ..) => VerifySource::Server,
        (_, Some(f), _, _) => VerifySource::File(f),
        (_, _, _, Some(url)) => VerifySource::StoreUrl(url.clone()),
        (_, _, Some(d), _) => VerifySource::DataDir(d),
        _ if a.archive.is_some() => VerifySource::ArchiveOnly,
        _ => match env_url.filter(|u| !u.is_empty()) {
            Some(url) => VerifySource::StoreUrl(url),
            None => bail!("give --data-dir DIR, --store-url URL (or ARCA_STORE__URL), --file FILE, --archive DIR or --on-server"),
        },
    })
}

async fn verify(ctx: &Ctx, a: VerifyArgs) -> Result<()> {
    let pinned = a.public_key.as_ref().map(read_key).transpose()?;
    let source = verify_source(&a, std::env::var("ARCA_STORE__URL").ok())?;
    let archive = a.archive.as_ref();
    let (result, source) = match source {
        VerifySource::Server => return verify_on_server(ctx, pinned.as_deref()).await,
        VerifySource::ArchiveOnly => {
            let dir = archive.context("--archive names the archive directory")?;
            let pk = pinned.context("--public-key is needed to verify an archive")?;
            (
                trail::verify_archive(dir, &pk, trail::ArchiveTail::Nothing)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                dir.display().to_string(),
            )
        }
        VerifySource::File(f) => {
            let pk = pinned.context("--public-key is needed to verify an export file")?;
            let file =
                std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
            let lines = std::io::BufReader::new(file).lines();
            match archive {
                Some(dir) => {
                    let joined = trail::verify_archive(
                        dir,
                        &pk,
                        trail::ArchiveTail::Export(Box::new(lines)),
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                    // The export on its own too: the records it holds that are also
                    // archived are then checked in both copies.
                    let alone = || -> Result<_> {
                        let file = std::fs::File::open(f)
                            .with_context(|| format!("cannot open {}", f.display()))?;
                        Ok(trail::verify_export(
                            std::io::BufReader::new(file).lines(),
                            &pk,
                        ))
                    };
                    let result = match joined {
                        Ok(r) => alone()?.map(|_| r),
                        Err(b) => Err(b),
                    };
                    (result, format!("{} and {}", dir.display(), f.display()))
                }
                None => (trail::verify_export(lines, &pk), f.display().to_string()),
            }
        }
        VerifySource::StoreUrl(url) => {
            let s = arca_store::open(Some(&url), std::path::Path::new(""))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let shown = s.describe();
            verify_store(s, shown, pinned, archive).await?
        }
        VerifySource::DataDir(dir) => {
            let db = dir.join("arca.db");
            if !db.exists() {
                bail!("{} has no store (arca.db)", dir.display());
            }
            let s = arca_store::open(None, &db)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            verify_store(s, db.display().to_string(), pinned, archive).await?
        }
    };
    match result {
        Ok(r) => {
            show_report(ctx, &source, &r);
            Ok(())
        }
        Err(b) => Err(NotValid(format!("audit trail {source} is NOT intact: {b}")).into()),
    }
}

/// Verifies a store's trail against the pinned key, or (with a warning) the key it holds.
async fn verify_store(
    store: std::sync::Arc<dyn arca_store::KeyStore>,
    source: String,
    pinned: Option<Vec<u8>>,
    archive: Option<&PathBuf>,
) -> Result<(
    std::result::Result<arca_core::audit::VerifyReport, arca_core::audit::ChainBreak>,
    String,
)> {
    let pk = match pinned {
        Some(p) => p,
        None => {
            eprintln!("warning: no --public-key given; checking against the key stored in the store (pin it with `arca audit public-key`)");
            store
                .get_meta(trail::AUDIT_PUBLIC_KEY_META)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .context("the store has no audit public key yet (the server was never unsealed)")?
        }
    };
    let r = match archive {
        Some(dir) => trail::verify_archive(dir, &pk, trail::ArchiveTail::Store(&*store)).await,
        None => trail::verify_store(&*store, &pk).await,
    }
    .map_err(|e| anyhow::anyhow!("{e}"));
    store.close().await;
    let source = match archive {
        Some(dir) => format!("{} and {source}", dir.display()),
        None => source,
    };
    Ok((r?, source))
}

/// `arca audit verify --on-server`: the server checks its stored trail against its own
/// audit key and says which key that was; a pinned key must be that one.
async fn verify_on_server(ctx: &Ctx, pinned: Option<&[u8]>) -> Result<()> {
    let v = ctx
        .client()?
        .get(&["v1", "audit", "verify"], &[])
        .await?
        .value()?;
    let r: trail::AuditVerification =
        serde_json::from_value(v.clone()).context("the server's answer is not a verification")?;
    let source = "on the server";
    if let Some(b) = &r.chain_break {
        if ctx.json() {
            print_json(&v);
        }
        return Err(NotValid(format!("audit trail {source} is NOT intact: {b}")).into());
    }
    match pinned {
        Some(pk) => {
            let want = arca_core::audit::key_fingerprint(pk);
            if want != r.public_key_fingerprint {
                if ctx.json() {
                    print_json(&v);
                }
                return Err(NotValid(format!(
                    "the server verified its trail against audit key {}, not the pinned key {want}: \
                     its checkpoints are not signed by the key you trust",
                    r.public_key_fingerprint
                ))
                .into());
            }
        }
        None => eprintln!(
            "note: the server vouched for itself (audit key {}); pin the key with --public-key, \
             or verify offline (`arca audit export`, then --file)",
            r.public_key_fingerprint
        ),
    }
    if ctx.json() {
        print_json(&v);
        return Ok(());
    }
    let report = r.report.unwrap_or_default();
    show_report(ctx, source, &report);
    if pinned.is_some() {
        outln!(
            "checked against the pinned audit key {}",
            r.public_key_fingerprint
        );
    }
    Ok(())
}

fn show_report(ctx: &Ctx, source: &str, r: &VerifyReport) {
    if ctx.json() {
        print_json(&serde_json::to_value(r).unwrap_or_default());
        return;
    }
    outln!(
        "audit trail {source} is intact: {} events ({}..{}), {} signed checkpoints, last signed record {}",
        r.events,
        r.first_seq,
        r.last_seq,
        r.checkpoints,
        r.last_checkpoint_seq
    );
    if r.segments > 0 {
        outln!(
            "{} archived segment files and what follows them form one chain from record 1",
            r.segments
        );
    }
    if r.archived_through > 0 {
        outln!(
            "note: records 1..{} were pruned from here (archived); the trail starts at the signed checkpoint at record {}: verify them with --archive DIR",
            r.archived_through,
            r.archived_through
        );
    }
    if r.unsigned_tail > 0 {
        outln!(
            "note: the last {} events are linked but not yet covered by a signed checkpoint",
            r.unsigned_tail
        );
    }
}

fn verify_receipt(ctx: &Ctx, a: VerifyReceiptArgs) -> Result<()> {
    let pk = read_key(&a.public_key)?;
    let text = std::fs::read_to_string(&a.receipt)
        .with_context(|| format!("cannot read {}", a.receipt.display()))?;
    let v: Value = serde_json::from_str(&text).context("the receipt file is not JSON")?;
    let list: Vec<DestructionReceipt> = match v {
        Value::Array(_) => serde_json::from_value(v),
        other => serde_json::from_value(other).map(|r| vec![r]),
    }
    .context("the file holds no destruction receipt")?;
    if list.is_empty() {
        bail!("the file holds no destruction receipt");
    }
    for r in &list {
        if let Err(e) = trail::verify_receipt(&pk, r) {
            return Err(NotValid(format!(
                "receipt for key {} version {} is NOT valid: {e}",
                r.key_id, r.version
            ))
            .into());
        }
        if !ctx.json() {
            outln!(
                "valid: key {} ({}) version {} destroyed at {}, requested by {}{}",
                r.key_id,
                r.key_name,
                r.version,
                r.destroyed_at,
                r.requested_by,
                if r.approved_by.is_empty() {
                    String::new()
                } else {
                    format!(", approved by {}", r.approved_by.join(", "))
                }
            );
        }
    }
    if ctx.json() {
        print_json(&serde_json::json!({"valid": true, "receipts": list.len()}));
    }
    Ok(())
}

/// A `{"Encrypt": 5, ...}` map in one cell: `Encrypt=5 Decrypt=2`.
fn counts_cell(m: &Value) -> String {
    m.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// `arca audit report --key KEY --series hour|day`: one key's uses per interval.
async fn series(ctx: &Ctx, a: ReportArgs, interval: String) -> Result<()> {
    let mut q = vec![("interval", interval)];
    for (k, v) in [("key", a.key), ("from", a.from), ("to", a.to)] {
        if let Some(v) = v {
            q.push((k, v));
        }
    }
    let v = ctx
        .client()?
        .get(&["v1", "audit", "usage", "series"], &q)
        .await?
        .value()?;
    if ctx.json() {
        print_json(&v);
        return Ok(());
    }
    outln!(
        "key {}, per {}, from {} to {}",
        get(&v, "key_id"),
        get(&v, "interval"),
        get(&v, "from"),
        get(&v, "to")
    );
    let mut t = output::table(["START", "TOTAL", "BY OPERATION"]);
    for b in output::items(&v, "buckets") {
        t.add_row(vec![
            get(b, "start"),
            get(b, "total"),
            counts_cell(&b["by_operation"]),
        ]);
    }
    output::show(&t);
    Ok(())
}

async fn report(ctx: &Ctx, mut a: ReportArgs) -> Result<()> {
    if let Some(interval) = a.series.take() {
        return series(ctx, a, interval).await;
    }
    let mut q = vec![];
    if let Some(k) = a.key {
        q.push(("key", k));
    }
    if let Some(f) = a.from {
        q.push(("from", f));
    }
    let v = ctx
        .client()?
        .get(&["v1", "audit", "usage"], &q)
        .await?
        .value()?;
    if ctx.json() {
        print_json(&v);
        return Ok(());
    }
    let mut t = output::table(["KEY", "LAST USED", "TOTAL", "BY OPERATION", "BY PRINCIPAL"]);
    let fmt = counts_cell;
    for k in v["keys"].as_array().cloned().unwrap_or_default() {
        t.add_row(vec![
            get(&k, "key_id"),
            get(&k, "last_used_at"),
            get(&k, "total"),
            fmt(&k["by_operation"]),
            fmt(&k["by_principal"]),
        ]);
    }
    output::show(&t);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Verify {
        #[command(flatten)]
        a: VerifyArgs,
    }

    fn source(args: &[&str], env: Option<&str>) -> String {
        let v = Verify::try_parse_from(std::iter::once("verify").chain(args.iter().copied()))
            .expect("the flags parse");
        match verify_source(&v.a, env.map(str::to_string)) {
            Ok(s) => format!("{s:?}"),
            Err(e) => format!("error: {e}"),
        }
    }

    /// A node's `ARCA_STORE__URL` neither conflicts with nor overrides a trail the flags
    /// name; it is used only when no flag names one (it used to make `--file` an error).
    #[test]
    fn the_store_url_variable_yields_to_the_flags() {
        let env = Some("postgres://node@db/arca");
        assert_eq!(source(&["--file", "t.jsonl"], env), r#"File("t.jsonl")"#);
        assert_eq!(source(&["--data-dir", "d"], env), r#"DataDir("d")"#);
        assert_eq!(source(&["--on-server"], env), "Server");
        assert_eq!(
            source(&["--store-url", "postgres://flag@db/x"], env),
            r#"StoreUrl("postgres://flag@db/x")"#
        );
        assert_eq!(source(&[], env), r#"StoreUrl("postgres://node@db/arca")"#);
        assert!(source(&[], None).contains("ARCA_STORE__URL"));
        assert!(source(&[], Some("")).starts_with("error:"));
        // Two trails named at once are still refused by the flags themselves.
        assert!(Verify::try_parse_from(["verify", "--file", "f", "--store-url", "u"]).is_err());
        // An archive alone is a trail of its own (the variable does not add a store to it);
        // beside a store or a file, the store or the file continues it.
        assert_eq!(source(&["--archive", "a"], env), "ArchiveOnly");
        assert_eq!(source(&["--archive", "a"], None), "ArchiveOnly");
        assert_eq!(
            source(&["--archive", "a", "--data-dir", "d"], env),
            r#"DataDir("d")"#
        );
        assert_eq!(
            source(&["--archive", "a", "--file", "t.jsonl"], None),
            r#"File("t.jsonl")"#
        );
        assert!(Verify::try_parse_from(["verify", "--archive", "a", "--on-server"]).is_err());
    }
}
