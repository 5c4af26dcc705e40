//! The client commands: each maps its arguments onto one or a few REST calls and prints
//! the answer as a table or as the server's JSON.

use anyhow::Result;

use crate::client::{ApiClient, Settings};
use crate::output::OutputFormat;

/// `arca alias ...`.
pub mod alias;
/// `arca encrypt`, `decrypt`, `sign`, `verify`, `mac`, `kem`, `data-key`, `random`.
pub mod crypto;
/// `arca envelope ...`.
pub mod envelope;
/// `arca key ...`.
pub mod key;
/// `arca health`, `whoami`, `audit`, `openapi`.
pub mod misc;

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
