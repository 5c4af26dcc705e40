//! Binary input and output, and the small argument parsers (`k=v`, dates).
//!
//! Binary input comes from `--in FILE` or stdin (`-`, the default); binary output goes to
//! `--out FILE` or stdout. Raw binary or base64 is never written to a terminal unless asked
//! with `--base64`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use zeroize::Zeroizing;

/// Standard base64, as on the wire.
pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Secret bytes serialized as base64 through a zeroizing buffer.
pub struct SecretB64<'a>(pub &'a [u8]);

impl Serialize for SecretB64<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let enc = Zeroizing::new(b64(self.0));
        s.serialize_str(&enc)
    }
}

/// Public bytes serialized as base64.
pub struct PublicB64<'a>(pub &'a [u8]);

impl Serialize for PublicB64<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&b64(self.0))
    }
}

/// Deserializes standard base64 into zeroizing bytes.
pub fn de_secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Zeroizing<Vec<u8>>, D::Error> {
    let s: Zeroizing<String> = Zeroizing::new(serde::Deserialize::deserialize(d)?);
    base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .map(Zeroizing::new)
        .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
}

/// Deserializes standard base64 into bytes.
pub fn de_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s: String = serde::Deserialize::deserialize(d)?;
    base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
}

/// True for the path `-` (stdin or stdout).
pub fn is_stdio(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// `--in FILE|-`: the binary input.
#[derive(Debug, Clone, clap::Args)]
pub struct InArgs {
    /// Input file, or `-` for stdin.
    #[arg(long = "in", value_name = "FILE", default_value = "-")]
    pub input: PathBuf,
}

/// `--out FILE|-` and `--base64`: the binary output.
#[derive(Debug, Clone, clap::Args)]
pub struct OutArgs {
    /// Output file, or `-` for stdout (the default; refused on a terminal without --base64).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write base64 text (one line) instead of raw bytes.
    #[arg(long)]
    pub base64: bool,
}

impl OutArgs {
    /// The output file, or `None` for stdout.
    pub fn file(&self) -> Option<&Path> {
        self.out.as_deref().filter(|p| !is_stdio(p))
    }
}

/// Reads a whole file, or stdin for `-`.
pub fn read_input(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    if is_stdio(path) {
        std::io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .context("cannot read stdin")?;
    } else {
        let mut f =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        f.read_to_end(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    Ok(buf)
}

/// Refuses when two inputs both want stdin.
pub fn one_stdin(paths: &[&Path]) -> Result<()> {
    if paths.iter().filter(|p| is_stdio(p)).count() > 1 {
        bail!("only one input can come from stdin (`-`); give the others as files");
    }
    Ok(())
}

/// The refusal to write binary data to a terminal.
pub const TERMINAL_REFUSAL: &str =
    "refusing to write binary data to a terminal; use --out FILE or --base64";

/// Opens an output file: created or truncated, mode 0600 when it will hold a secret.
pub fn create_file(path: &Path, secret: bool) -> Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let f = o
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    #[cfg(unix)]
    if secret {
        // An existing file keeps its mode on truncation: tighten it.
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    Ok(f)
}

/// Writes a whole file (`-` is stdout, refused on a terminal), mode 0600 when `secret`.
pub fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<()> {
    if is_stdio(path) {
        let mut out = std::io::stdout().lock();
        if out.is_terminal() {
            bail!("refusing to write binary data to a terminal; give a file instead of `-`");
        }
        out.write_all(data)?;
        out.flush()?;
        return Ok(());
    }
    let mut f = create_file(path, secret)?;
    f.write_all(data)
        .and_then(|_| f.flush())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Checks, before any work is done, that the output can be written where `--out` says.
pub fn check_out(out: &OutArgs) -> Result<()> {
    if out.file().is_none() && !out.base64 && std::io::stdout().is_terminal() {
        bail!(TERMINAL_REFUSAL);
    }
    Ok(())
}

/// Writes binary output as `--out` and `--base64` say. Returns the file written, if any.
pub fn write_binary(out: &OutArgs, data: &[u8], secret: bool) -> Result<Option<PathBuf>> {
    let encoded;
    let bytes: &[u8] = if out.base64 {
        encoded = Zeroizing::new(format!("{}\n", b64(data)));
        encoded.as_bytes()
    } else {
        data
    };
    match out.file() {
        Some(p) => {
            write_file(p, bytes, secret)?;
            Ok(Some(p.to_path_buf()))
        }
        None => {
            let mut so = std::io::stdout().lock();
            if so.is_terminal() && !out.base64 {
                bail!(TERMINAL_REFUSAL);
            }
            so.write_all(bytes)?;
            so.flush()?;
            Ok(None)
        }
    }
}

/// Parses `KEY=VALUE`.
pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Collects `KEY=VALUE` pairs into a map; a key given twice is an error.
pub fn kv_map(pairs: &[(String, String)], what: &str) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for (k, v) in pairs {
        if m.insert(k.clone(), v.clone()).is_some() {
            bail!("{what} {k:?} is given twice");
        }
    }
    Ok(m)
}

/// Parses an RFC 3339 date (`2030-01-31T12:00:00Z`).
pub fn parse_date(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| format!("expected an RFC 3339 date such as 2030-01-31T12:00:00Z: {e}"))
}

/// A date to set, or `none` to clear it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrNone {
    /// Set this date.
    Date(DateTime<Utc>),
    /// Clear the date.
    None,
}

/// Parses an RFC 3339 date or `none`.
pub fn parse_date_or_none(s: &str) -> Result<DateOrNone, String> {
    if s.eq_ignore_ascii_case("none") {
        Ok(DateOrNone::None)
    } else {
        parse_date(s).map(DateOrNone::Date)
    }
}

/// Parses a JSON document (`--meta`).
pub fn parse_json(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not valid JSON: {e}"))
}

/// An enum-like name as the API spells it: upper case, `_` between words.
pub fn wire_name(s: &str) -> String {
    s.trim().to_ascii_uppercase().replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv() {
        assert_eq!(parse_kv("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_kv("=x").is_err());
        assert!(parse_kv("x").is_err());
        let pairs = vec![("a".to_string(), "1".to_string()); 2];
        assert!(kv_map(&pairs, "tag").is_err());
    }

    #[test]
    fn dates() {
        assert!(parse_date("2030-01-31T12:00:00Z").is_ok());
        assert!(parse_date("2030-01-31").is_err());
        assert_eq!(parse_date_or_none("none").unwrap(), DateOrNone::None);
    }

    #[test]
    fn secret_b64() {
        let s = serde_json::to_string(&SecretB64(b"hi")).unwrap();
        assert_eq!(s, "\"aGk=\"");
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(deserialize_with = "de_secret")]
            x: Zeroizing<Vec<u8>>,
        }
        let t: T = serde_json::from_str(r#"{"x":"aGk="}"#).unwrap();
        assert_eq!(&t.x[..], b"hi");
    }

    #[test]
    fn secret_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        write_file(&p, b"x", true).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
