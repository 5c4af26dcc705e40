//! The client commands: each maps its arguments onto one or a few REST calls and prints
//! the answer as a table or as the server's JSON.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::client::{ApiClient, Settings};
use crate::output::OutputFormat;
use crate::profile::{Profile, ProfileFile};

/// `arca alias ...`.
pub mod alias;
/// `arca approval ...`.
pub mod approval;
/// `arca audit ...`.
pub mod audit;
/// `arca encrypt`, `decrypt`, `sign`, `verify`, `mac`, `kem`, `data-key`, `random`.
pub mod crypto;
/// `arca init`, `unseal`, `seal`, `status`.
pub mod custody;
/// `arca cse setup`, `arca dke setup`.
pub mod door;
/// `arca envelope ...`.
pub mod envelope;
/// `arca principal ...`, `arca token ...`, `arca binding ...`.
pub mod identity;
/// `arca key ...`.
pub mod key;
/// `arca health`, `whoami`, `audit`, `openapi`.
pub mod misc;
/// `arca policy ...`.
pub mod policy;
/// `arca login`, `arca logout`.
pub mod session;
/// `arca tenant ...`.
pub mod tenant;

/// What every client command needs: how to reach the server and how to print.
#[derive(Debug)]
pub struct Ctx {
    /// Connection settings (flags and environment; the profile fills the gaps).
    pub settings: Settings,
    /// `--output`.
    pub output: OutputFormat,
}

impl Ctx {
    /// A client for `/v1` calls (a token is required).
    pub fn client(&self) -> Result<ApiClient> {
        ApiClient::connect(&self.settings, true)
    }

    /// True for `--output json`.
    pub fn json(&self) -> bool {
        self.output == OutputFormat::Json
    }
}

/// A verification that ran and said no (exit code 2, distinct from errors).
#[derive(Debug)]
pub struct NotValid(pub String);

impl std::fmt::Display for NotValid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotValid {}

/// `KEY`: a key id, name or alias.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArg {
    /// Key id, name or alias.
    #[arg(value_name = "KEY")]
    pub key: String,
}

/// `--save-profile NAME [--force]`: keep a new secret in the profile file instead of
/// printing it, so that it never lands in a terminal's scrollback or a shell history.
#[derive(Debug, Clone, clap::Args)]
pub struct SaveProfileArgs {
    /// Write the new token to this CLI profile (same server and CA certificate as the
    /// profile in use) instead of printing it; then use it with `--profile NAME`.
    #[arg(long, value_name = "NAME")]
    pub save_profile: Option<String>,
    /// Replace the profile named by --save-profile if it exists.
    #[arg(long, requires = "save_profile")]
    pub force: bool,
}

impl SaveProfileArgs {
    /// Checks, before the request, that the secret can be saved: a token the server has
    /// issued but that could not be stored would be lost (it is never shown again).
    pub fn precheck(&self, settings: &Settings) -> Result<()> {
        let Some(name) = &self.save_profile else {
            return Ok(());
        };
        check_profile_name(name)?;
        settings.location()?;
        let path = settings.profile_path();
        if !self.force && ProfileFile::load(&path)?.profiles.contains_key(name) {
            bail!(
                "profile {name:?} already exists in {}; pass --force to replace it",
                path.display()
            );
        }
        Ok(())
    }
}

/// Checks a profile name: it becomes a TOML table key and a `--profile` argument.
fn check_profile_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!("profile name {name:?}: use 1 to 64 of A-Z a-z 0-9 - _ .");
    }
    Ok(())
}

/// Writes `token` (and a session's refresh token) to the profile `name`, with the server
/// and CA certificate of the settings in use. Refuses to replace an existing profile
/// unless `replace`. Returns the profile file's path.
pub fn save_profile(
    settings: &Settings,
    name: &str,
    token: &str,
    refresh_token: Option<&str>,
    replace: bool,
) -> Result<PathBuf> {
    check_profile_name(name)?;
    let (server, ca_cert) = settings.location()?;
    let path = settings.profile_path();
    let mut pf = ProfileFile::load(&path)?;
    if pf.profiles.contains_key(name) && !replace {
        bail!(
            "profile {name:?} already exists in {}; pass --force to replace it",
            path.display()
        );
    }
    pf.profiles.insert(
        name.to_string(),
        Profile {
            server: Some(server),
            ca_cert,
            token: Some(token.to_string()),
            refresh_token: refresh_token.map(str::to_string),
        },
    );
    pf.save(&path)?;
    Ok(path)
}

/// Hands a new secret (an API token) over, once: with `--save-profile`, to that profile
/// and out of the output; else alone on stdout (table) or inside `full` (JSON).
/// `redacted` is `full` without the secret, for JSON output when it was saved.
pub fn deliver_secret(
    ctx: &Ctx,
    save: &SaveProfileArgs,
    full: &serde_json::Value,
    mut redacted: serde_json::Value,
    secret: &str,
    what: &str,
) -> Result<()> {
    use crate::output::{outln, print_json, secret_once};
    if secret.is_empty() {
        bail!("the server's answer holds no token");
    }
    match &save.save_profile {
        Some(name) => {
            let path = save_profile(&ctx.settings, name, secret, None, save.force)?;
            if ctx.json() {
                redacted["profile"] = serde_json::json!(name);
                print_json(&redacted);
            } else {
                outln!(
                    "{what}; saved the token to profile {name:?} in {} (use --profile {name})",
                    path.display()
                );
            }
        }
        None if ctx.json() => print_json(full),
        None => secret_once(&format!("{what}. The token:"), secret),
    }
    Ok(())
}

/// Reads a JSON document from a file (`-`: stdin).
pub fn read_json_file(path: &std::path::Path) -> Result<serde_json::Value> {
    let bytes = crate::data::read_input(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not valid JSON: {e}",
            if crate::data::is_stdio(path) {
                "stdin".to_string()
            } else {
                path.display().to_string()
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names() {
        assert!(check_profile_name("alice").is_ok());
        assert!(check_profile_name("acme-admin.2").is_ok());
        assert!(check_profile_name("").is_err());
        assert!(check_profile_name("a b").is_err());
        assert!(check_profile_name("a]b").is_err());
    }

    #[test]
    fn saved_profile_keeps_server_and_ca_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
        std::fs::write(
            &path,
            "[profiles.default]\nserver = \"https://127.0.0.1:8443\"\ntoken = \"tok\"\nca_cert = \"ca.pem\"\n",
        )
        .unwrap();
        let s = Settings {
            profile: "default".into(),
            profile_file: Some(path.clone()),
            ..Default::default()
        };
        save_profile(&s, "alice", "alice-token", None, false).unwrap();
        let pf = ProfileFile::load(&path).unwrap();
        let a = &pf.profiles["alice"];
        assert_eq!(a.server.as_deref(), Some("https://127.0.0.1:8443"));
        assert_eq!(a.token.as_deref(), Some("alice-token"));
        assert!(a.ca_cert.as_ref().unwrap().is_absolute());
        assert!(a.ca_cert.as_ref().unwrap().ends_with("ca.pem"));
        assert_eq!(pf.profiles["default"].token.as_deref(), Some("tok"));
        let e = save_profile(&s, "alice", "other", None, false).unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
        save_profile(&s, "alice", "other", Some("r"), true).unwrap();
        let pf = ProfileFile::load(&path).unwrap();
        assert_eq!(pf.profiles["alice"].token.as_deref(), Some("other"));
        assert_eq!(pf.profiles["alice"].refresh_token.as_deref(), Some("r"));
    }
}
