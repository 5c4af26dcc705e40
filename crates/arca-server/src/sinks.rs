//! Audit sinks: copies of the trail for SIEMs. Each sink follows the stored chain (so it
//! ships only committed events, in order, whichever door or task wrote them), keeps its
//! position in the store (`audit.sink.<name>.cursor`) and so delivers every event at least
//! once across restarts.
//!
//! Formats: `json` is the export line (the event with its `seq`, `prev` and `hash`, which
//! `arca audit verify` also reads); `cef` is ArcSight CEF. Transports: a file (appended),
//! stdout, or syslog (RFC 5424) over UDP or TCP (RFC 6587 octet counting).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use arca_core::audit::{ChainedEvent, StoredEvent};
use arca_service::follow::TrailFollower;
use arca_service::Service;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// One `[[audit.sinks]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Names the sink's stored position; keep it when changing other settings.
    pub name: String,
    /// `file`, `stdout` or `syslog`.
    pub kind: String,
    /// For `file`: the file to append to.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// For `syslog`: `host:port` of the collector.
    #[serde(default)]
    pub address: Option<String>,
    /// For `syslog`: `udp` (default) or `tcp`.
    #[serde(default)]
    pub transport: Option<String>,
    /// `json` (default) or `cef`.
    #[serde(default)]
    pub format: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Json,
    Cef,
}

enum Out {
    File(tokio::fs::File),
    Stdout(tokio::io::Stdout),
    Udp(tokio::net::UdpSocket),
    Tcp(String, Option<tokio::net::TcpStream>),
}

/// Checks every sink's settings and starts one task per sink.
pub fn spawn_all(
    sinks: &[SinkConfig],
    svc: &Arc<Service>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, s) in sinks.iter().enumerate() {
        let f = |x: &str| format!("audit.sinks[{i}].{x}");
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("{}: letters, digits, '-' and '_' only", f("name"));
        }
        if !names.insert(s.name.clone()) {
            bail!("{}: {:?} is used twice", f("name"), s.name);
        }
        let format = match s.format.as_deref().unwrap_or("json") {
            "json" => Format::Json,
            "cef" => Format::Cef,
            other => bail!("{}: {other:?} is not json or cef", f("format")),
        };
        let syslog = match s.kind.as_str() {
            "file" => {
                if s.path.is_none() {
                    bail!("{}: a file sink needs a path", f("path"));
                }
                false
            }
            "stdout" => false,
            "syslog" => {
                let a = s
                    .address
                    .as_deref()
                    .with_context(|| format!("{}: a syslog sink needs host:port", f("address")))?;
                if !a.contains(':') {
                    bail!("{}: {a:?} is not host:port", f("address"));
                }
                if !matches!(s.transport.as_deref().unwrap_or("udp"), "udp" | "tcp") {
                    bail!("{}: udp or tcp", f("transport"));
                }
                true
            }
            other => bail!("{}: {other:?} is not file, stdout or syslog", f("kind")),
        };
        let cfg = s.clone();
        let follower = svc.trail_follower(&cfg.name);
        out.push(tokio::spawn(async move {
            run(cfg, format, syslog, follower).await;
        }));
    }
    Ok(out)
}

async fn open(cfg: &SinkConfig) -> Result<Out> {
    Ok(match cfg.kind.as_str() {
        "file" => {
            let path = cfg.path.as_ref().context("path")?;
            Out::File(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .with_context(|| format!("cannot open {}", path.display()))?,
            )
        }
        "stdout" => Out::Stdout(tokio::io::stdout()),
        _ => {
            let addr = cfg.address.clone().unwrap_or_default();
            if cfg.transport.as_deref() == Some("tcp") {
                Out::Tcp(addr, None)
            } else {
                let sock = tokio::net::UdpSocket::bind(if addr.starts_with('[') {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                })
                .await?;
                sock.connect(&addr)
                    .await
                    .with_context(|| format!("cannot reach {addr}"))?;
                Out::Udp(sock)
            }
        }
    })
}

async fn run(cfg: SinkConfig, format: Format, syslog: bool, trail: TrailFollower) {
    let host = hostname();
    let mut out: Option<Out> = None;
    // Nodes sharing a store take turns: one exports a sink (its cursor is shared); another
    // takes over when that node stops. Held until this task ends.
    let _lease = loop {
        match trail.try_lease().await {
            Ok(Some(l)) => break l,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(sink = %cfg.name, error = %e, "audit sink cannot take its lease")
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let position = trail.position().await;
    let mut cursor = position.events;
    // A JSON file sink carries the signed checkpoints too (each after the events it
    // covers, as the export does), so that the file verifies on its own with
    // `arca audit verify --file … --public-key …`.
    let ships_checkpoints = matches!(format, Format::Json) && !syslog;
    let mut cp_cursor = position.checkpoints;
    loop {
        if ships_checkpoints && cursor > cp_cursor {
            if let Some(o) = out.as_mut() {
                match trail.checkpoints_after(cp_cursor, 100).await {
                    Ok(cps) => {
                        for c in cps.iter().filter(|c| c.seq <= cursor) {
                            let line = arca_core::audit::checkpoint_line(c) + "\n";
                            if let Err(err) = write(o, line.as_bytes()).await {
                                tracing::warn!(sink = %cfg.name, error = %err, "audit sink write failed; will retry");
                                break;
                            }
                            cp_cursor = c.seq;
                            let _ = trail.delivered_checkpoints(cp_cursor).await;
                        }
                        if let Out::File(f) = o {
                            let _ = f.flush().await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(sink = %cfg.name, error = %e, "audit sink cannot read the checkpoints")
                    }
                }
            }
        }
        let page = match trail.events_after(cursor, 500).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(sink = %cfg.name, error = %e, "audit sink cannot read the trail");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        if page.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        if out.is_none() {
            match open(&cfg).await {
                Ok(o) => out = Some(o),
                Err(e) => {
                    tracing::warn!(sink = %cfg.name, error = %e, "audit sink unavailable; will retry");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            }
        }
        let o = out.as_mut().expect("opened above");
        let mut sent = cursor;
        let mut failed = false;
        for e in &page {
            let body = match format {
                Format::Json => e.export_line(),
                Format::Cef => cef(e),
            };
            let msg = if syslog {
                syslog_line(e, &host, &body)
            } else {
                body + "\n"
            };
            if let Err(err) = write(o, msg.as_bytes()).await {
                tracing::warn!(sink = %cfg.name, error = %err, "audit sink write failed; will retry");
                failed = true;
                break;
            }
            sent = e.seq;
        }
        if let Some(Out::File(f)) = out.as_mut() {
            let _ = f.flush().await;
        }
        if sent > cursor {
            cursor = sent;
            if let Err(e) = trail.delivered_events(cursor).await {
                tracing::warn!(sink = %cfg.name, error = %e, "audit sink cannot store its position");
            }
        }
        if failed {
            out = None;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

async fn write(o: &mut Out, msg: &[u8]) -> std::io::Result<()> {
    match o {
        Out::File(f) => f.write_all(msg).await,
        Out::Stdout(s) => {
            s.write_all(msg).await?;
            s.flush().await
        }
        Out::Udp(s) => s.send(msg).await.map(|_| ()),
        Out::Tcp(addr, conn) => {
            if conn.is_none() {
                *conn = Some(tokio::net::TcpStream::connect(addr.as_str()).await?);
            }
            let c = conn.as_mut().expect("connected above");
            // RFC 6587 octet counting: "LEN SP MSG".
            let framed = [format!("{} ", msg.len()).as_bytes(), msg].concat();
            let r = c.write_all(&framed).await;
            if r.is_err() {
                *conn = None;
            }
            r
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.is_ascii() && !h.contains(' '))
        .unwrap_or_else(|| "-".into())
}

fn decode(e: &StoredEvent) -> Option<ChainedEvent> {
    e.decode().ok()
}

/// An RFC 5424 message: facility 13 (log audit), severity 6 (informational) for a success
/// and 4 (warning) for a refusal, MSGID the operation, the chain position and outcome as
/// structured data (SD-ID under the documentation enterprise number 32473), the body as MSG.
pub fn syslog_line(e: &StoredEvent, host: &str, body: &str) -> String {
    let c = decode(e);
    let (sev, op, ts, outcome) = match &c {
        Some(c) => (
            if c.event.outcome == "ok" { 6 } else { 4 },
            c.event.operation.clone(),
            c.event
                .at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            c.event.outcome.clone(),
        ),
        None => (4, "-".into(), "-".into(), "undecodable".into()),
    };
    let msgid: String = op
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let sd_escape = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace(']', "\\]")
    };
    format!(
        "<{}>1 {ts} {host} arca - {} [arca@32473 seq=\"{}\" outcome=\"{}\"] {body}",
        13 * 8 + sev,
        if msgid.is_empty() { "-".into() } else { msgid },
        e.seq,
        sd_escape(&outcome),
    )
}

/// An ArcSight CEF line.
pub fn cef(e: &StoredEvent) -> String {
    let h = |s: &str| s.replace('\\', "\\\\").replace('|', "\\|");
    let x = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('=', "\\=")
            .replace('\n', "\\n")
            .replace('\r', "\\r")
    };
    let Some(c) = decode(e) else {
        return format!(
            "CEF:0|Arca|Arca KMS|{}|undecodable|undecodable|10|externalId={}",
            env!("CARGO_PKG_VERSION"),
            e.seq
        );
    };
    let ev = &c.event;
    let mut ext = vec![
        format!("rt={}", ev.at.timestamp_millis()),
        format!("externalId={}", e.seq),
        format!("outcome={}", x(&ev.outcome)),
        format!("suser={}", x(&ev.principal)),
        format!(
            "src={}",
            x(ev.source
                .rsplit_once(':')
                .map(|(a, _)| a)
                .unwrap_or(&ev.source))
        ),
        format!("app={}", x(&ev.door)),
        format!("requestId={}", x(&ev.request_id)),
    ];
    if let Some(t) = ev.tenant_id {
        ext.push(format!("cs1Label=tenant cs1={t}"));
    }
    if let Some(k) = ev.key_id {
        ext.push(format!("cs2Label=keyId cs2={k}"));
    }
    if let Some(v) = ev.key_version {
        ext.push(format!("cn1Label=keyVersion cn1={v}"));
    }
    format!(
        "CEF:0|Arca|Arca KMS|{}|{}|{}|{}|{}",
        env!("CARGO_PKG_VERSION"),
        h(&ev.operation),
        h(&ev.operation),
        if ev.outcome == "ok" { 3 } else { 6 },
        ext.join(" ")
    )
}
