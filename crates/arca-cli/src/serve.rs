//! `arca serve`: run the server on its configuration, show the first-start facts once.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use arca_server::Config;
use arca_service::bootstrap::FirstStart;

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

/// Colours only for a person at a terminal: a log redirected to a file or a pipe (a
/// service manager, a collector) gets plain text, and `NO_COLOR` turns them off too.
fn log_colours(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn init_logging(cfg: &Config) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::new(&cfg.log.level);
    let ansi = log_colours(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR"),
    );
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        let _ = b.json().try_init();
    } else {
        let _ = b.try_init();
    }
}

/// Loads the configuration like `arca serve` does: the file (or `ARCA_CONFIG`), the `ARCA_`
/// variables, then the command-line overrides.
pub fn load_config(
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
) -> Result<Config> {
    let mut cfg = Config::load(config, std::env::vars())?;
    if let Some(d) = data_dir {
        cfg.data_dir = d;
    }
    if let Some(l) = listen {
        cfg.listen = l;
    }
    Ok(cfg)
}

/// The names of the two profiles written on first start: the admin's (`--profile-name`) and
/// the operator's (`operator`, or `<name>-operator` for another name).
pub struct ProfileNames {
    pub admin: String,
    pub operator: String,
}

impl ProfileNames {
    pub fn new(admin: &str) -> Self {
        let operator = if admin == "default" {
            "operator".to_string()
        } else {
            format!("{admin}-operator")
        };
        ProfileNames {
            admin: admin.to_string(),
            operator,
        }
    }
}

/// Writes the admin's and the operator's tokens of a first start into their CLI profiles
/// (mode 0600), for the server at `url` with the CA certificate `ca`.
pub fn write_first_start_profiles(
    first: &FirstStart,
    url: &str,
    ca: Option<PathBuf>,
    names: &ProfileNames,
    path: &Path,
) -> Result<()> {
    let mut pf = ProfileFile::load(path).unwrap_or_default();
    let mut add = |name: &str, token: &str| {
        pf.profiles.insert(
            name.to_string(),
            Profile {
                server: Some(url.to_string()),
                ca_cert: ca.clone(),
                token: Some(token.to_string()),
                refresh_token: None,
            },
        );
    };
    if let Some((_, _, token)) = &first.admin {
        add(&names.admin, token.token.as_str());
    }
    if let Some((_, token)) = &first.operator {
        add(&names.operator, token.token.as_str());
    }
    pf.save(path)
        .with_context(|| "cannot write the CLI profile")
}

/// Announces what a first start created: the default tenant and its admin, the system
/// operator, their tokens (once), and the profiles written.
pub fn print_first_start(
    out: &mut impl Write,
    first: &FirstStart,
    names: &ProfileNames,
    wrote_profile: Option<&Path>,
    serving: bool,
) -> Result<()> {
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
    if let Some(path) = wrote_profile {
        let next = if serving {
            "`arca key list` works now"
        } else {
            "the client commands use them once the server runs and is unsealed"
        };
        writeln!(
            out,
            "Wrote CLI profiles {:?} and {:?} to {} (mode 0600): {next}.",
            names.admin,
            names.operator,
            path.display()
        )?;
    }
    Ok(())
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs, profile_file: Option<PathBuf>) -> Result<()> {
    let cfg = load_config(args.config.as_deref(), args.data_dir, args.listen)?;
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
    let profile_path = profile_file.unwrap_or_else(profile::default_path);
    let names = ProfileNames::new(&args.profile_name);
    let mut wrote_profile = None;
    if let Some(first) = &running.first_start {
        if !args.no_profile {
            write_first_start_profiles(first, &url, ca_abs.clone(), &names, &profile_path)?;
            wrote_profile = Some(profile_path.clone());
        }
    } else if !args.no_profile {
        // A later start on another address: keep the profiles of this data dir pointing at it.
        if let Ok(mut pf) = ProfileFile::load(&profile_path) {
            let mut changed = false;
            for name in [&names.admin, &names.operator] {
                if let Some(p) = pf.profiles.get_mut(name) {
                    if p.ca_cert.is_some()
                        && p.ca_cert == ca_abs
                        && p.server.as_deref() != Some(url.as_str())
                    {
                        p.server = Some(url.clone());
                        changed = true;
                        tracing::info!(profile = %name, "updated the CLI profile's server address");
                    }
                }
            }
            if changed {
                pf.save(&profile_path)
                    .with_context(|| "cannot update the CLI profile")?;
            }
        }
    }
    let mode = running
        .service
        .root_mode()
        .await
        .unwrap_or_else(|_| cfg.root.mode.clone());
    let shamir = mode == "shamir";
    let mut out = std::io::stdout().lock();
    writeln!(out, "Arca is serving on {url}")?;
    if cfg.console.enabled {
        writeln!(out, "Web console: {url}/ui/ (sign in with an API token)")?;
    }
    if shamir {
        let sealed = running
            .service
            .seal_status()
            .await
            .map(|s| s.sealed)
            .unwrap_or(true);
        if sealed {
            writeln!(
                out,
                "SEALED: the root key is split among custodians (Shamir); each runs `arca unseal` \
                 until the threshold is reached (`arca status` shows progress)"
            )?;
        }
    } else if mode == "hsm" {
        writeln!(
            out,
            "HSM: the root key is in the PKCS#11 token {:?} (key {:?}); unsealed from it",
            cfg.root.hsm.token_label, cfg.root.hsm.key_label
        )?;
    } else {
        writeln!(
            out,
            "DEV MODE: the root key is sealed by {}/unseal.key (do not use this mode in production)",
            cfg.data_dir.display()
        )?;
    }
    if let Some(ca) = &ca_abs {
        writeln!(
            out,
            "Dev CA certificate (trust it in clients): {}",
            ca.display()
        )?;
    }
    if let Some(first) = &running.first_start {
        print_first_start(&mut out, first, &names, wrote_profile.as_deref(), true)?;
    }
    out.flush()?;
    drop(out);
    shutdown_signal().await;
    let (grace, flush) = (cfg.server.grace(), cfg.server.flush());
    tracing::info!(
        grace_secs = grace.as_secs(),
        flush_secs = flush.as_secs(),
        "shutting down"
    );
    // The bounds hold even if something awaited below never returns: past both (and a
    // second to close the store), the process ends from this thread.
    let hard = grace + flush + std::time::Duration::from_secs(2);
    std::thread::spawn(move || {
        std::thread::sleep(hard);
        tracing::error!(
            secs = hard.as_secs(),
            "shutdown incomplete: not finished within its bounds; exiting with the audit trail unflushed and no closing checkpoint signed"
        );
        std::process::exit(EXIT_SHUTDOWN_INCOMPLETE);
    });
    let report = running.shutdown().await;
    if report.complete() {
        tracing::info!("stopped");
        Ok(())
    } else {
        tracing::error!(
            events_not_stored = report.events_not_stored,
            closing_checkpoint_signed = !report.no_closing_checkpoint,
            "{}",
            report.describe()
        );
        std::process::exit(EXIT_SHUTDOWN_INCOMPLETE);
    }
}

/// The exit status of a shutdown that did not get everything done within its bounds (the
/// ERROR line before it says what).
pub const EXIT_SHUTDOWN_INCOMPLETE: i32 = 4;

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

#[cfg(test)]
mod tests {
    use super::log_colours;

    #[test]
    fn colours_only_at_a_terminal_without_no_color() {
        assert!(log_colours(true, None));
        assert!(log_colours(true, Some("".into())));
        assert!(
            !log_colours(false, None),
            "a file or a pipe gets plain text"
        );
        assert!(
            !log_colours(true, Some("1".into())),
            "NO_COLOR turns them off"
        );
    }
}
