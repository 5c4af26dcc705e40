//! `arca serve`: run the server on its configuration, show the first-start facts once.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use arca_server::Config;

use crate::profile::{self, Profile, ProfileFile};

/// Options of `arca serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (TOML). Every field can also be set by an ARCA_ variable.
    #[arg(long, short = 'c', env = "ARCA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (store, dev unseal key, dev TLS files). Overrides the file and ARCA_DATA_DIR.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Listen address. Overrides the file and ARCA_LISTEN.
    #[arg(long)]
    pub listen: Option<String>,
    /// Name of the CLI profile written on first start.
    #[arg(long, default_value = "default")]
    pub profile_name: String,
    /// Do not write a CLI profile on first start.
    #[arg(long)]
    pub no_profile: bool,
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&cfg.log.level);
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        let _ = b.json().try_init();
    } else {
        let _ = b.try_init();
    }
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs, profile_file: Option<PathBuf>) -> Result<()> {
    let mut cfg = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    init_logging(&cfg);
    let running = arca_server::start(&cfg).await?;
    let host = if running.addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        running.addr.ip().to_string()
    };
    let url = if running.addr.is_ipv6() {
        format!("https://[{host}]:{}", running.addr.port())
    } else {
        format!("https://{host}:{}", running.addr.port())
    };
    let ca_abs = running
        .ca_cert
        .as_ref()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()));
    // Write the CLI profile before announcing anything, so that once the first line is out
    // the client commands work.
    let mut wrote_profile = None;
    let operator_profile = if args.profile_name == "default" {
        "operator".to_string()
    } else {
        format!("{}-operator", args.profile_name)
    };
    if let Some(first) = &running.first_start {
        if !args.no_profile {
            let path = profile_file.unwrap_or_else(profile::default_path);
            let mut pf = ProfileFile::load(&path).unwrap_or_default();
            let mut add = |name: &str, token: &str| {
                pf.profiles.insert(
                    name.to_string(),
                    Profile {
                        server: Some(url.clone()),
                        ca_cert: ca_abs.clone(),
                        token: Some(token.to_string()),
                        refresh_token: None,
                    },
                );
            };
            if let Some((_, _, token)) = &first.admin {
                add(&args.profile_name, token.token.as_str());
            }
            if let Some((_, token)) = &first.operator {
                add(&operator_profile, token.token.as_str());
            }
            pf.save(&path)
                .with_context(|| "cannot write the CLI profile")?;
            wrote_profile = Some(path);
        }
    } else if !args.no_profile {
        // A later start on another address: keep the profile of this data dir pointing at it.
        let path = profile_file.unwrap_or_else(profile::default_path);
        if let Ok(mut pf) = ProfileFile::load(&path) {
            if let Some(p) = pf.profiles.get_mut(&args.profile_name) {
                if p.ca_cert.is_some()
                    && p.ca_cert == ca_abs
                    && p.server.as_deref() != Some(url.as_str())
                {
                    p.server = Some(url.clone());
                    pf.save(&path)
                        .with_context(|| "cannot update the CLI profile")?;
                    tracing::info!(profile = %args.profile_name, "updated the CLI profile's server address");
                }
            }
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "Arca is serving on {url}")?;
    writeln!(
        out,
        "DEV MODE: the root key is sealed by {}/unseal.key (do not use this mode in production)",
        cfg.data_dir.display()
    )?;
    if let Some(ca) = &ca_abs {
        writeln!(
            out,
            "Dev CA certificate (trust it in clients): {}",
            ca.display()
        )?;
    }
    if let Some(first) = &running.first_start {
        if let Some((tenant, admin, token)) = &first.admin {
            writeln!(
                out,
                "First start: created tenant {:?} and admin principal {:?} (tenant-admin, crypto-user, auditor).",
                tenant.name, admin.name
            )?;
            writeln!(
                out,
                "Admin API token (shown once, keep it safe):\n\n    {}\n",
                token.token.as_str()
            )?;
        }
        if let Some((op, token)) = &first.operator {
            writeln!(
                out,
                "Created the system tenant and its operator {:?} (system-operator: tenants and the server, never keys).",
                op.name
            )?;
            writeln!(
                out,
                "Operator API token (shown once, keep it safe):\n\n    {}\n",
                token.token.as_str()
            )?;
        }
        if let Some(path) = &wrote_profile {
            writeln!(
                out,
                "Wrote CLI profiles {:?} and {:?} to {} (mode 0600): `arca key list` works now.",
                args.profile_name,
                operator_profile,
                path.display()
            )?;
        }
    }
    out.flush()?;
    drop(out);
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
