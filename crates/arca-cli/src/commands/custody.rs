//! `arca init` (a new data dir whose root key is split among custodians), `arca unseal`,
//! `arca seal` and `arca status`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use arca_service::custody::CustodianSpec;
use clap::Args;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::Ctx;
use crate::client::ApiClient;
use crate::output::{self, get, outln, print_json};
use crate::profile;
use crate::serve::{self, ProfileNames};

/// The prefix of a plaintext share.
const SHARE_PREFIX: &str = "arca-share-v1:";

/// Options of `arca init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Configuration file (TOML), as for `arca serve`.
    #[arg(long, short = 'c', env = "ARCA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory of the new server (it must not hold a root key yet).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Listen address the server will use (for the CLI profile). Overrides the file and
    /// ARCA_LISTEN.
    #[arg(long)]
    pub listen: Option<String>,
    /// How many shares unseal the server (M of N).
    #[arg(long, value_name = "M")]
    pub threshold: u8,
    /// A custodian: `NAME`, or `NAME=PUBKEY.pem` to encrypt the share to the custodian's RSA
    /// public key (PEM "PUBLIC KEY"). Repeat once per custodian (N times).
    #[arg(long = "custodian", value_name = "NAME[=PUBKEY.pem]", required = true)]
    pub custodians: Vec<String>,
    /// Directory for the share files (`<name>.share`, or `<name>.share.enc` when encrypted).
    /// Existing share files are never overwritten.
    #[arg(long, value_name = "SHARES_DIR")]
    pub out_dir: PathBuf,
    /// Name of the CLI profile written for the default tenant's admin.
    #[arg(long, default_value = "default")]
    pub profile_name: String,
    /// Do not write CLI profiles.
    #[arg(long)]
    pub no_profile: bool,
    /// INSECURE, development only: allow `--threshold 1`, where one custodian alone holds
    /// the root key (and with it every key). Never for a server holding real keys.
    #[arg(long)]
    pub dev_single_custodian: bool,
}

/// Options of `arca unseal`.
#[derive(Debug, Args)]
pub struct UnsealArgs {
    /// Read the share from this file (the plaintext `arca-share-v1:...` text).
    #[arg(long, value_name = "FILE", conflicts_with = "share_stdin")]
    pub share_file: Option<PathBuf>,
    /// Read the share from the first line of stdin.
    #[arg(long)]
    pub share_stdin: bool,
}

/// A custodian name is used as a file name: keep it plain.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if !ok {
        bail!(
            "custodian name {name:?} is not valid: use 1-64 letters, digits, '-', '_', '.', '@' \
             (not starting with '.'); it names the share file"
        );
    }
    Ok(())
}

/// Reads an RSA public key (PEM "PUBLIC KEY", SPKI) into DER.
fn read_public_key(path: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read(path)
        .with_context(|| format!("cannot read the public key {}", path.display()))?;
    let p = pem::parse(&text).with_context(|| format!("{} is not a PEM file", path.display()))?;
    if p.tag() != "PUBLIC KEY" {
        bail!(
            "{} holds a {:?} PEM block; expected \"PUBLIC KEY\" (SPKI), e.g. from \
             `openssl pkey -in key.pem -pubout`",
            path.display(),
            p.tag()
        );
    }
    Ok(p.into_contents())
}

/// Creates a new file with mode 0600; fails if it exists.
fn create_secret_file(path: &Path, contents: &[u8]) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Checks the custodians (`NAME` or `NAME=PUBKEY.pem`), the threshold and the share files
/// to be, and makes the output directory: everything that can fail before a share exists.
fn plan_shares(
    custodians: &[String],
    threshold: u8,
    out_dir: &Path,
    dev_single_custodian: bool,
) -> Result<(Vec<CustodianSpec>, Vec<PathBuf>)> {
    let mut specs: Vec<CustodianSpec> = Vec::new();
    let mut files = Vec::new();
    for c in custodians {
        let (name, key) = match c.split_once('=') {
            Some((n, k)) => (n.trim(), Some(PathBuf::from(k))),
            None => (c.trim(), None),
        };
        check_name(name)?;
        if specs.iter().any(|s| s.name == name) {
            bail!("custodian {name:?} is given twice");
        }
        let rsa_public_key = key.as_deref().map(read_public_key).transpose()?;
        let file = out_dir.join(if rsa_public_key.is_some() {
            format!("{name}.share.enc")
        } else {
            format!("{name}.share")
        });
        if file.exists() {
            bail!(
                "{} already exists: share files are never overwritten (move it away first)",
                file.display()
            );
        }
        files.push(file);
        specs.push(CustodianSpec {
            name: name.to_string(),
            rsa_public_key,
        });
    }
    let n = specs.len();
    let min = if dev_single_custodian { 1 } else { 2 };
    if threshold < min {
        bail!(
            "--threshold must be at least 2: with 1, one custodian alone holds the root key \
             (for a throwaway development server only, add --dev-single-custodian)"
        );
    }
    if usize::from(threshold) > n {
        bail!("--threshold must not exceed the number of custodians ({n})");
    }
    if threshold == 1 {
        eprintln!(
            "WARNING (--dev-single-custodian): threshold 1: any single custodian can unseal the \
             server alone and holds every key. Development only."
        );
    }
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    // Check the directory is writable now, not after the shares exist.
    tempfile::NamedTempFile::new_in(out_dir)
        .with_context(|| format!("cannot write in {}", out_dir.display()))?;
    Ok((specs, files))
}

/// Writes each custodian's share (custodian, text, encrypted) to its planned file.
/// Returns (custodian, encrypted, file) for each, or every failure joined.
fn write_shares<'a>(
    shares: impl Iterator<Item = (&'a str, &'a str, bool)>,
    files: &[PathBuf],
) -> std::result::Result<Vec<(String, bool, PathBuf)>, String> {
    let mut written = Vec::new();
    let mut failures = Vec::new();
    for (custodian, text, encrypted) in shares {
        let Some(file) = files.iter().find(|f| {
            let fname = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            fname == format!("{custodian}.share") || fname == format!("{custodian}.share.enc")
        }) else {
            failures.push(format!("no file for custodian {custodian:?}"));
            continue;
        };
        let mut body = Zeroizing::new(String::with_capacity(text.len() + 1));
        body.push_str(text);
        body.push('\n');
        match create_secret_file(file, body.as_bytes()) {
            Ok(()) => written.push((custodian.to_string(), encrypted, file.clone())),
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    if failures.is_empty() {
        Ok(written)
    } else {
        Err(failures.join("; "))
    }
}

/// Prints where the share files are and what to do with them.
fn print_share_files(out: &mut impl Write, written: &[(String, bool, PathBuf)]) -> Result<()> {
    writeln!(out, "Share files (mode 0600):")?;
    for (custodian, encrypted, f) in written {
        let how = if *encrypted {
            "encrypted to the custodian's RSA key"
        } else {
            "PLAINTEXT"
        };
        writeln!(out, "  {custodian:<16} {}  ({how})", f.display())?;
    }
    if written.iter().any(|(_, e, _)| !e) {
        writeln!(
            out,
            "\nWARNING: a PLAINTEXT share file is a piece of the root key. Hand each one to its \
             custodian only, then delete it here (e.g. `shred -u FILE`). Custodians keep their \
             share offline."
        )?;
    }
    if written.iter().any(|(_, e, _)| *e) {
        writeln!(
            out,
            "Encrypted shares: the custodian decrypts with `openssl pkeyutl -decrypt -inkey key.pem \
             -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256` \
             (after `base64 -d`)."
        )?;
    }
    Ok(())
}

/// `arca rekey`: the rekey ceremony. An operator starts it; the current custodians each
/// present their share; the last one completes it.
#[derive(Debug, clap::Subcommand)]
pub enum RekeyCommand {
    /// Start a rekey (system operators): the new threshold and custodians, each with an RSA
    /// public key. Nothing changes until the current custodians present their shares.
    Start(RekeyStartArgs),
    /// Show the rekey in progress (its nonce and plan, who presented a share) and the new
    /// encrypted shares of the last completed one (no token needed).
    Status(RekeyStatusArgs),
    /// Present your current share for the rekey in progress (custodians; no token needed).
    Share(RekeyShareArgs),
    /// Cancel the rekey in progress (system operators); the shares presented are dropped.
    Cancel,
}

/// Options of `arca rekey start`.
#[derive(Debug, Args)]
pub struct RekeyStartArgs {
    /// How many of the new shares unseal the server (M of N, at least 2).
    #[arg(long, value_name = "M")]
    pub threshold: u8,
    /// A new custodian and the RSA public key (PEM "PUBLIC KEY") their share is encrypted
    /// to: `NAME=PUBKEY.pem`. Repeat once per custodian (N times).
    #[arg(long = "custodian", value_name = "NAME=PUBKEY.pem", required = true)]
    pub custodians: Vec<String>,
    /// Make a new root key (every tenant key is re-wrapped under it), instead of sharing the
    /// same one anew.
    #[arg(long)]
    pub rotate_root: bool,
}

/// Options of `arca rekey status`.
#[derive(Debug, Args)]
pub struct RekeyStatusArgs {
    /// Write the new encrypted shares of the last completed rekey here
    /// (`<name>.share.enc`, never overwritten).
    #[arg(long, value_name = "SHARES_DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Options of `arca rekey share`.
#[derive(Debug, Args)]
pub struct RekeyShareArgs {
    /// The nonce of the rekey in progress (`arca rekey status` shows it with its plan).
    #[arg(long)]
    pub nonce: String,
    /// Read the share from this file (the plaintext `arca-share-v1:...` text).
    #[arg(long, value_name = "FILE", conflicts_with = "share_stdin")]
    pub share_file: Option<PathBuf>,
    /// Read the share from the first line of stdin.
    #[arg(long)]
    pub share_stdin: bool,
    /// If this share completes the rekey, write the new encrypted shares here
    /// (`<name>.share.enc`, never overwritten).
    #[arg(long, value_name = "SHARES_DIR")]
    pub out_dir: Option<PathBuf>,
}

/// `arca rekey ...`.
pub async fn rekey(ctx: &Ctx, cmd: RekeyCommand) -> Result<()> {
    match cmd {
        RekeyCommand::Start(a) => rekey_start(ctx, a).await,
        RekeyCommand::Status(a) => rekey_status(ctx, a).await,
        RekeyCommand::Share(a) => rekey_share(ctx, a).await,
        RekeyCommand::Cancel => {
            let v = ctx
                .client()?
                .delete(&["v1", "sys", "rekey"])
                .await?
                .value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                outln!("rekey cancelled: nothing changed; the shares presented were dropped");
            }
            Ok(())
        }
    }
}

/// The plan of a rekey attempt, for the custodians to check before they approve.
fn plan_lines(a: &Value) -> String {
    let mut s = format!(
        "rekey {} started by {} (expires {}): {}, new threshold {} of {}\n",
        a["nonce"].as_str().unwrap_or("?"),
        a["started_by"].as_str().unwrap_or("?"),
        a["expires_at"].as_str().unwrap_or("?"),
        if a["rotate_root"].as_bool() == Some(true) {
            "ROTATE the root key"
        } else {
            "re-share the root key"
        },
        a["new_threshold"],
        a["new_custodians"].as_array().map(Vec::len).unwrap_or(0),
    );
    for c in a["new_custodians"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "  new custodian {:<16} key sha256 {}\n",
            c["name"].as_str().unwrap_or("?"),
            c["key_sha256"].as_str().unwrap_or("?")
        ));
    }
    let by: Vec<&str> = a["submitted_by"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    s.push_str(&format!(
        "  {} of {} current shares presented{}",
        a["progress"],
        a["required"],
        if by.is_empty() {
            String::new()
        } else {
            format!(" (by {})", by.join(", "))
        }
    ));
    s
}

/// Writes the encrypted shares of a completed rekey, one `<name>.share.enc` per custodian.
fn write_result(result: &Value, out_dir: &Path) -> Result<Vec<(String, bool, PathBuf)>> {
    let shares: Vec<(String, String)> = result["shares"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    (
                        s["custodian"].as_str().unwrap_or_default().to_string(),
                        s["encrypted_share"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut files = Vec::new();
    for (name, _) in &shares {
        check_name(name)?;
        let f = out_dir.join(format!("{name}.share.enc"));
        if f.exists() {
            bail!(
                "{} already exists: share files are never overwritten (move it away first)",
                f.display()
            );
        }
        files.push(f);
    }
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    write_shares(
        shares.iter().map(|(c, t)| (c.as_str(), t.as_str(), true)),
        &files,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "not every share file could be written ({e}); `arca rekey status --out-dir DIR` \
                 fetches them again while the server runs"
        )
    })
}

/// `arca rekey start`.
async fn rekey_start(ctx: &Ctx, a: RekeyStartArgs) -> Result<()> {
    let mut custodians = Vec::new();
    for c in &a.custodians {
        let Some((name, key)) = c.split_once('=') else {
            bail!(
                "--custodian {c:?}: give NAME=PUBKEY.pem: a new share is only ever handed out \
                 encrypted to its custodian's RSA public key"
            );
        };
        let name = name.trim();
        check_name(name)?;
        let path = PathBuf::from(key.trim());
        read_public_key(&path)?;
        let pem_text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        custodians.push(json!({"name": name, "rsa_public_key_pem": pem_text}));
    }
    let v = ctx
        .client()?
        .post(
            &["v1", "sys", "rekey"],
            &json!({"threshold": a.threshold, "custodians": custodians, "rotate_root": a.rotate_root}),
        )
        .await?
        .value()?;
    if ctx.json() {
        print_json(&v);
        return Ok(());
    }
    outln!("{}", plan_lines(&v["attempt"]));
    outln!(
        "Nothing has changed yet. Each of {} current custodians now runs \
         `arca rekey share --nonce {}` with their share.",
        v["attempt"]["required"],
        v["attempt"]["nonce"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// `arca rekey status`.
async fn rekey_status(ctx: &Ctx, a: RekeyStatusArgs) -> Result<()> {
    let c = ApiClient::connect(&ctx.settings, false)?;
    let v = c.get(&["v1", "sys", "rekey"], &[]).await?.value()?;
    let written = match (&a.out_dir, v.get("result").filter(|r| !r.is_null())) {
        (Some(dir), Some(result)) => Some(write_result(result, dir)?),
        (Some(_), None) => bail!("no completed rekey to fetch shares from"),
        _ => None,
    };
    if ctx.json() {
        print_json(&v);
        return Ok(());
    }
    match v.get("attempt").filter(|a| !a.is_null()) {
        Some(att) => outln!("{}", plan_lines(att)),
        None => outln!("no rekey in progress"),
    }
    if let Some(r) = v.get("result").filter(|r| !r.is_null()) {
        outln!(
            "last completed rekey {}: {} the root key, threshold {} of {}",
            r["nonce"].as_str().unwrap_or("?"),
            if r["rotated"].as_bool() == Some(true) {
                "rotated"
            } else {
                "re-shared"
            },
            r["threshold"],
            r["shares"].as_array().map(Vec::len).unwrap_or(0)
        );
    }
    if let Some(w) = written {
        let mut out = std::io::stdout().lock();
        print_share_files(&mut out, &w)?;
    }
    Ok(())
}

/// `arca rekey share`: shows the plan the share approves, then presents the share.
async fn rekey_share(ctx: &Ctx, a: RekeyShareArgs) -> Result<()> {
    let share = read_share(a.share_file.as_deref(), a.share_stdin)?;
    let c = ApiClient::connect(&ctx.settings, false)?;
    let st = c.get(&["v1", "sys", "rekey"], &[]).await?.value()?;
    match st.get("attempt").filter(|x| !x.is_null()) {
        Some(att) if att["nonce"].as_str() == Some(a.nonce.trim()) => {
            eprintln!("Presenting your share to approve:\n{}", plan_lines(att));
        }
        Some(att) => bail!(
            "the rekey in progress has nonce {}, not {}: check its plan (`arca rekey status`) \
             before you approve it",
            att["nonce"].as_str().unwrap_or("?"),
            a.nonce
        ),
        None => bail!("no rekey is in progress"),
    }
    if let Some(dir) = &a.out_dir {
        if dir.exists() && !dir.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
    }
    /// Borrows the share: no copy of it outside the zeroizing buffer but the request body.
    #[derive(serde::Serialize)]
    struct ShareBody<'a> {
        nonce: &'a str,
        share: &'a str,
    }
    let body = ShareBody {
        nonce: a.nonce.trim(),
        share: share.as_str(),
    };
    let v = c
        .post(&["v1", "sys", "rekey", "share"], &body)
        .await?
        .value()?;
    let result = v.get("result").filter(|r| !r.is_null());
    let written = match (&a.out_dir, result) {
        (Some(dir), Some(r)) => Some(write_result(r, dir)?),
        _ => None,
    };
    if ctx.json() {
        print_json(&v);
        return Ok(());
    }
    match (result, v.get("attempt").filter(|x| !x.is_null())) {
        (Some(r), _) => {
            outln!(
                "rekey complete: the root key was {} and is now split {}-of-{}; the old shares no \
                 longer unseal.",
                if r["rotated"].as_bool() == Some(true) {
                    "rotated (every tenant key re-wrapped)"
                } else {
                    "re-shared"
                },
                r["threshold"],
                r["shares"].as_array().map(Vec::len).unwrap_or(0)
            );
            match written {
                Some(w) => {
                    let mut out = std::io::stdout().lock();
                    print_share_files(&mut out, &w)?;
                }
                None => outln!(
                    "fetch the new encrypted shares with `arca rekey status --out-dir DIR` and \
                     hand each to its custodian"
                ),
            }
        }
        (None, Some(att)) => outln!("{}", plan_lines(att)),
        (None, None) => outln!("no rekey in progress"),
    }
    Ok(())
}

/// `arca init`: makes the root key of a new data dir, splits it among the custodians and
/// writes one share file per custodian.
pub async fn init(a: InitArgs, profile_file: Option<PathBuf>) -> Result<()> {
    let cfg = serve::load_config(a.config.as_deref(), a.data_dir, a.listen)?;
    // Everything that can be checked is checked before the root key exists: a share that
    // cannot be written is lost for good.
    let (specs, files) = plan_shares(
        &a.custodians,
        a.threshold,
        &a.out_dir,
        a.dev_single_custodian,
    )?;
    let n = specs.len();

    let (shares, first) =
        arca_server::init_custody(&cfg, a.threshold, specs, a.dev_single_custodian)
            .await
            .with_context(|| format!("cannot initialize {}", cfg.data_dir.display()))?;

    let written = write_shares(
        shares
            .iter()
            .map(|s| (s.custodian.as_str(), s.text.as_str(), s.encrypted)),
        &files,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "the root key of {} was made but not every share file could be written ({e}); \
             the written shares may not reach the threshold: delete the data directory and the \
             share files, then run `arca init` again",
            cfg.data_dir.display()
        )
    })?;

    // The dev TLS files are normally made by the server at start; make them now so the
    // profile's CA path exists.
    let ca = if cfg.tls.cert.is_none() && cfg.tls.key.is_none() {
        let f = arca_server::tls::ensure_dev_certs(&cfg.data_dir)?;
        Some(std::fs::canonicalize(&f.ca_cert).unwrap_or(f.ca_cert))
    } else {
        None
    };
    let url = listen_url(&cfg.listen);
    let names = ProfileNames::new(&a.profile_name);
    let mut wrote_profile = None;
    if let Some(first) = &first {
        if !a.no_profile {
            let path = profile_file.unwrap_or_else(profile::default_path);
            serve::write_first_start_profiles(first, &url, ca.clone(), &names, &path)?;
            wrote_profile = Some(path);
        }
    }

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Initialized {}: the root key is split {}-of-{} among the custodians.",
        cfg.data_dir.display(),
        a.threshold,
        n
    )?;
    print_share_files(&mut out, &written)?;
    writeln!(
        out,
        "\nThe server starts SEALED: after `arca serve`, {} custodians each run `arca unseal` \
         (`arca status` shows progress).",
        a.threshold
    )?;
    if let Some(ca) = &ca {
        writeln!(
            out,
            "Dev CA certificate (trust it in clients): {}",
            ca.display()
        )?;
    }
    if let Some(first) = &first {
        serve::print_first_start(&mut out, first, &names, wrote_profile.as_deref(), false)?;
    }
    out.flush()?;
    Ok(())
}

/// The URL clients use for a listen address (`0.0.0.0` and `::` become the loopback).
fn listen_url(listen: &str) -> String {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) => {
            let ip = if addr.ip().is_unspecified() {
                if addr.is_ipv6() {
                    "::1".parse().unwrap_or(addr.ip())
                } else {
                    std::net::Ipv4Addr::LOCALHOST.into()
                }
            } else {
                addr.ip()
            };
            if ip.is_ipv6() {
                format!("https://[{ip}]:{}", addr.port())
            } else {
                format!("https://{ip}:{}", addr.port())
            }
        }
        Err(_) => format!("https://{listen}"),
    }
}

/// Reads the share: from the file, stdin, or a prompt without echo.
fn read_share(share_file: Option<&Path>, share_stdin: bool) -> Result<Zeroizing<String>> {
    let raw = if let Some(f) = share_file {
        Zeroizing::new(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the share file {}", f.display()))?,
        )
    } else if !share_stdin && std::io::stdin().is_terminal() {
        prompt_no_echo("Share (input hidden): ")?
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the share from stdin")?;
        line
    };
    let share = Zeroizing::new(raw.trim().to_string());
    if share.is_empty() {
        bail!("no share given");
    }
    if !share.starts_with(SHARE_PREFIX) {
        bail!(
            "this is not a plaintext share (it does not start with {SHARE_PREFIX}); an encrypted \
             share (.share.enc) must first be decrypted with the custodian's private key: \
             `base64 -d FILE | openssl pkeyutl -decrypt -inkey key.pem -pkeyopt \
             rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 | \
             arca unseal --share-stdin`"
        );
    }
    Ok(share)
}

/// Prompts on the terminal with echo turned off (`stty -echo`), restoring it afterwards.
fn prompt_no_echo(prompt: &str) -> Result<Zeroizing<String>> {
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    if !stty("-echo") {
        bail!("cannot turn off terminal echo; use --share-file or --share-stdin");
    }
    let mut line = Zeroizing::new(String::new());
    let r = std::io::stdin().lock().read_line(&mut line);
    stty("echo");
    eprintln!();
    r.context("cannot read the share")?;
    Ok(line)
}

/// One line on where unsealing stands.
fn progress_line(v: &Value) -> String {
    if v.get("sealed").and_then(Value::as_bool) == Some(false) {
        return "unsealed".to_string();
    }
    let progress = v.get("progress").and_then(Value::as_u64).unwrap_or(0);
    let threshold = v
        .get("threshold")
        .and_then(Value::as_u64)
        .map(|t| t.to_string())
        .unwrap_or_else(|| "?".into());
    let by: Vec<&str> = v
        .get("submitted_by")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut s = format!("{progress} of {threshold} shares; still sealed");
    if !by.is_empty() {
        s.push_str(&format!("; submitted by {}", by.join(", ")));
    }
    s
}

/// `arca unseal`: submits one share (no token needed).
pub async fn unseal(ctx: &Ctx, a: UnsealArgs) -> Result<()> {
    let share = read_share(a.share_file.as_deref(), a.share_stdin)?;
    let c = ApiClient::connect(&ctx.settings, false)?;
    /// Borrows the share: no copy of it outside the zeroizing buffer but the request body.
    #[derive(serde::Serialize)]
    struct UnsealBody<'a> {
        share: &'a str,
    }
    let body = UnsealBody {
        share: share.as_str(),
    };
    let v = c.post(&["v1", "sys", "unseal"], &body).await?.value()?;
    if ctx.json() {
        print_json(&v);
    } else {
        outln!("{}", progress_line(&v));
    }
    Ok(())
}

/// `arca seal`: seals the server now (system operators).
pub async fn seal(ctx: &Ctx) -> Result<()> {
    let v = ctx
        .client()?
        .post(&["v1", "sys", "seal"], &json!({}))
        .await?
        .value()?;
    if ctx.json() {
        print_json(&v);
    } else {
        outln!("sealed: the custodians must unseal the server again (`arca unseal`)");
    }
    Ok(())
}

/// `arca status`: sealed or not, and the unseal progress (no token needed).
pub async fn status(ctx: &Ctx) -> Result<()> {
    let c = ApiClient::connect(&ctx.settings, false)?;
    let v = c.get(&["v1", "sys", "status"], &[]).await?.value()?;
    if ctx.json() {
        print_json(&v);
        return Ok(());
    }
    let by: Vec<String> = v
        .get("submitted_by")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(output::cell).collect())
        .unwrap_or_default();
    let t = output::fields_table(&[
        ("sealed", get(&v, "sealed")),
        ("mode", get(&v, "mode")),
        ("threshold", get(&v, "threshold")),
        ("shares", get(&v, "shares")),
        ("progress", get(&v, "progress")),
        ("submitted by", by.join(", ")),
    ]);
    output::show(&t);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custodian_names_are_plain_file_names() {
        for ok in ["alice", "bob-2", "c.d", "e_f@corp"] {
            check_name(ok).unwrap();
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", "x\\y"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn listen_urls() {
        assert_eq!(listen_url("127.0.0.1:8443"), "https://127.0.0.1:8443");
        assert_eq!(listen_url("0.0.0.0:8443"), "https://127.0.0.1:8443");
        assert_eq!(listen_url("[::]:9"), "https://[::1]:9");
    }

    #[test]
    fn progress_lines() {
        let v = json!({"sealed": true, "threshold": 3, "progress": 2,
                       "submitted_by": ["alice", "bob"]});
        assert_eq!(
            progress_line(&v),
            "2 of 3 shares; still sealed; submitted by alice, bob"
        );
        assert_eq!(progress_line(&json!({"sealed": false})), "unsealed");
    }
}

/// Options of `arca backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup file (created with mode 0600; refused if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// `arca backup`: downloads a backup of the whole store (system operators), with a
/// progress line on a terminal.
pub async fn backup(ctx: &Ctx, a: BackupArgs) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let tty = std::io::stderr().is_terminal();
    let mut shown = 0u64;
    let r = ctx
        .client()?
        .download(&["v1", "sys", "backup"], &mut f, &mut |got, total| {
            if tty && (got - shown >= 1 << 20 || Some(got) == total) {
                shown = got;
                match total {
                    Some(t) if t > 0 => eprint!(
                        "\r  {:.1} / {:.1} MiB ({}%)",
                        got as f64 / 1048576.0,
                        t as f64 / 1048576.0,
                        got * 100 / t
                    ),
                    _ => eprint!("\r  {:.1} MiB", got as f64 / 1048576.0),
                }
            }
        })
        .await;
    if tty {
        eprintln!();
    }
    let bytes = match r {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&a.out);
            return Err(e);
        }
    };
    f.sync_all().context("cannot flush the backup file")?;
    // The file is useful only if it is whole: check its framing and checksum now.
    let header = arca_service::backup::check_backup(&a.out).map_err(|e| anyhow::anyhow!("{e}"))?;
    if ctx.json() {
        print_json(
            &json!({"file": a.out, "bytes": bytes, "custody": header.custody,
            "created_at": header.created_at, "audit_head": header.audit_head}),
        );
    } else {
        outln!(
            "wrote backup {} ({bytes} bytes, custody {}, audit head {})",
            a.out.display(),
            header.custody,
            header
                .audit_head
                .as_ref()
                .map(|h| h.0.to_string())
                .unwrap_or_else(|| "-".into())
        );
    }
    Ok(())
}

/// Options of `arca restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file.
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// A new data directory to restore into (it must not hold a store yet).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Dev custody only: the unseal-key file of the server the backup came from.
    #[arg(long, value_name = "FILE")]
    pub unseal_key: Option<PathBuf>,
}

/// `arca restore`: checks a backup file and stages it in a new data directory; the server
/// applies it once it holds the root key (at start for dev and HSM custody, after the
/// custodians unseal for Shamir custody).
pub async fn restore(ctx: &Ctx, a: RestoreArgs) -> Result<()> {
    let header =
        arca_service::backup::check_backup(&a.input).map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = a.data_dir.join("arca.db");
    if db.exists() {
        bail!(
            "{} already holds a store: restore into a new data directory",
            a.data_dir.display()
        );
    }
    if header.custody == "dev" && a.unseal_key.is_none() {
        bail!("this backup is under dev custody: give --unseal-key (the old data directory's unseal.key)");
    }
    std::fs::create_dir_all(&a.data_dir)
        .with_context(|| format!("cannot create {}", a.data_dir.display()))?;
    std::fs::set_permissions(
        &a.data_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let store = arca_store::SqliteStore::open(&db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let staged = arca_service::backup::stage_restore(&store, &header).await;
    store.close().await;
    staged.map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(k) = &a.unseal_key {
        let to = a.data_dir.join("unseal.key");
        std::fs::copy(k, &to).with_context(|| format!("cannot copy {}", k.display()))?;
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    }
    let pending = a.data_dir.join(arca_service::backup::PENDING_RESTORE);
    std::fs::copy(&a.input, &pending)
        .with_context(|| format!("cannot copy the backup into {}", a.data_dir.display()))?;
    let next = match header.custody.as_str() {
        "shamir" => "start `arca serve` on it; the backup is applied when the custodians have unsealed it (`arca unseal`) with their shares",
        "hsm" => "start `arca serve` on it with the same [root.hsm] settings; the backup is applied at start",
        _ => "start `arca serve` on it; the backup is applied at start",
    };
    if ctx.json() {
        print_json(&json!({"data_dir": a.data_dir, "custody": header.custody,
            "created_at": header.created_at, "audit_head": header.audit_head, "staged": true}));
    } else {
        outln!(
            "backup of {} checked and staged in {} (custody {}); {next}",
            header.created_at,
            a.data_dir.display(),
            header.custody
        );
    }
    Ok(())
}
