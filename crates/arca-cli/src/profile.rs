//! The CLI profile file: server address, CA certificate and API token, per named profile,
//! written by `arca serve` on first start (mode 0600) so that the CLI works right away.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// One profile.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Server URL (`https://host:port`).
    pub server: Option<String>,
    /// CA certificate (PEM) to trust for the server.
    pub ca_cert: Option<PathBuf>,
    /// API token (or a session's access token, written by `arca login`).
    pub token: Option<String>,
    /// A session's refresh token (written by `arca login`; `arca login --refresh` uses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("server", &self.server)
            .field("ca_cert", &self.ca_cert)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// The profiles, by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// Where the profile file is: `ARCA_PROFILE_FILE`, else `$XDG_CONFIG_HOME/arca/profile.toml`,
/// else `~/.config/arca/profile.toml`.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ARCA_PROFILE_FILE") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("arca").join("profile.toml")
}

impl ProfileFile {
    /// Reads the file; a missing file is an empty one.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(t) => toml::from_str(&t)
                .with_context(|| format!("profile file {} is not valid", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ProfileFile::default()),
            Err(e) => {
                Err(e).with_context(|| format!("cannot read profile file {}", path.display()))
            }
        }
    }

    /// Writes the file with mode 0600 (it holds a token).
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = toml::to_string_pretty(self)?;
        let tmp = path.with_extension("toml.tmp");
        let _ = std::fs::remove_file(&tmp);
        arca_crypto::wrap::write_secret_file(&tmp, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
}
