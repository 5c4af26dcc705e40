//! `arca envelope ...`: whole-file envelope encryption.
//!
//! Encryption asks the server for a fresh AES-256 data key (plaintext and encrypted under a
//! KMS key), encrypts the file locally with AES-256-GCM in chunks, and forgets the plaintext
//! data key. Decryption has the server decrypt the data key, then decrypts the chunks. Files
//! of any size are streamed; only one chunk is in memory at a time.
//!
//! File format (integers big-endian):
//!
//! ```text
//! magic         8 bytes   "ARCAENV1"
//! key_len       u32       length of the encrypted data key
//! key           key_len   the encrypted data key (an Arca ciphertext)
//! chunk_size    u32       plaintext bytes per chunk (all chunks but the last are full)
//! nonce_prefix  8 bytes   random
//! chunks        ...       each: AES-256-GCM(chunk plaintext) || 16-byte tag
//! ```
//!
//! Chunk `i` uses the nonce `nonce_prefix || u32(i)` and the additional data
//! `SHA-256(header) || u32(i) || final` where `final` is 1 for the last chunk and 0 otherwise.
//! The last chunk is the only one shorter than `chunk_size` (it may be empty), so truncation,
//! reordering, chunk swapping between files and any change to the header are all detected.

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::digest::{digest, SHA256};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::crypto::{DataKeyReq, DataKeyResp};
use super::Ctx;
use crate::data::{self, PublicB64};
use crate::output::{outln, print_json};

/// The file magic.
pub const MAGIC: &[u8; 8] = b"ARCAENV1";
/// The chunk size this client writes.
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
const TAG_LEN: usize = 16;
const MAX_KEY_LEN: u32 = 64 * 1024;
const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;

/// `arca envelope` subcommands.
#[derive(Debug, Subcommand)]
pub enum EnvelopeCommand {
    /// Encrypt a file of any size under a fresh data key protected by KEY.
    Encrypt(EncryptArgs),
    /// Decrypt a file made by `arca envelope encrypt`.
    Decrypt(DecryptArgs),
}

/// Options of `arca envelope encrypt`.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Key id, name or alias that protects the data key.
    #[arg(value_name = "KEY")]
    pub key: String,
    /// Input file, or `-` for stdin.
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// Output file, or `-` for stdout (not a terminal).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Encryption context KEY=VALUE (repeatable); the same pairs are needed to decrypt.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = data::parse_kv)]
    pub context: Vec<(String, String)>,
}

/// Options of `arca envelope decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Input file, or `-` for stdin.
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// Output file (written to a temporary file and renamed only once all of it verified,
    /// mode 0600), or `-` for stdout (then a failure may come after some verified output).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Encryption context KEY=VALUE (repeatable), as given to encrypt.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = data::parse_kv)]
    pub context: Vec<(String, String)>,
}

/// The header of an envelope file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The encrypted data key.
    pub encrypted_key: Vec<u8>,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// The first 8 bytes of every nonce.
    pub nonce_prefix: [u8; 8],
}

impl Header {
    /// The header's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(24 + self.encrypted_key.len());
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&(self.encrypted_key.len() as u32).to_be_bytes());
        v.extend_from_slice(&self.encrypted_key);
        v.extend_from_slice(&self.chunk_size.to_be_bytes());
        v.extend_from_slice(&self.nonce_prefix);
        v
    }

    /// Reads and checks a header.
    pub fn read(r: &mut impl Read) -> Result<Header> {
        let not_envelope = || anyhow!("not an Arca envelope file (bad or truncated header)");
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic).map_err(|_| not_envelope())?;
        if &magic != MAGIC {
            bail!(not_envelope());
        }
        let key_len = read_u32(r).map_err(|_| not_envelope())?;
        if key_len == 0 || key_len > MAX_KEY_LEN {
            bail!("not an Arca envelope file (implausible data key length {key_len})");
        }
        let mut encrypted_key = vec![0u8; key_len as usize];
        r.read_exact(&mut encrypted_key)
            .map_err(|_| not_envelope())?;
        let chunk_size = read_u32(r).map_err(|_| not_envelope())?;
        if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
            bail!("not an Arca envelope file (implausible chunk size {chunk_size})");
        }
        let mut nonce_prefix = [0u8; 8];
        r.read_exact(&mut nonce_prefix)
            .map_err(|_| not_envelope())?;
        Ok(Header {
            encrypted_key,
            chunk_size,
            nonce_prefix,
        })
    }

    fn digest(&self) -> [u8; 32] {
        let d = digest(&SHA256, &self.encode());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn nonce(prefix: &[u8; 8], index: u32) -> Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(prefix);
    n[8..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

fn chunk_aad(header_digest: &[u8; 32], index: u32, last: bool) -> [u8; 37] {
    let mut a = [0u8; 37];
    a[..32].copy_from_slice(header_digest);
    a[32..36].copy_from_slice(&index.to_be_bytes());
    a[36] = u8::from(last);
    a
}

/// An AES-256-GCM key from the plaintext data key; the caller zeroizes the bytes.
pub fn data_key(bytes: &[u8]) -> Result<LessSafeKey> {
    if bytes.len() != 32 {
        bail!(
            "the data key has {} bytes, an AES-256 key needs 32",
            bytes.len()
        );
    }
    let k = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| anyhow!("invalid data key"))?;
    Ok(LessSafeKey::new(k))
}

/// Encrypts `input` to `output` in chunks (the header is written by the caller). Returns the
/// number of plaintext bytes.
pub fn seal_stream(
    key: &LessSafeKey,
    header: &Header,
    input: &mut (impl Read + ?Sized),
    output: &mut (impl Write + ?Sized),
) -> Result<u64> {
    let chunk = header.chunk_size as usize;
    let hd = header.digest();
    let mut buf = Zeroizing::new(vec![0u8; chunk]);
    let mut index: u32 = 0;
    let mut total: u64 = 0;
    loop {
        let n = read_full(input, &mut buf).context("cannot read the input")?;
        let last = n < chunk;
        let tag = key
            .seal_in_place_separate_tag(
                nonce(&header.nonce_prefix, index),
                Aad::from(chunk_aad(&hd, index, last)),
                &mut buf[..n],
            )
            .map_err(|_| anyhow!("encryption failed"))?;
        output
            .write_all(&buf[..n])
            .and_then(|_| output.write_all(tag.as_ref()))
            .context("cannot write the output")?;
        total += n as u64;
        if last {
            return Ok(total);
        }
        index = index
            .checked_add(1)
            .ok_or_else(|| anyhow!("the input is too large for one envelope file"))?;
    }
}

/// Decrypts the chunks of `input` (after the header) to `output`. Fails on any change,
/// truncation or reordering. Returns the number of plaintext bytes.
pub fn open_stream(
    key: &LessSafeKey,
    header: &Header,
    input: &mut (impl Read + ?Sized),
    output: &mut (impl Write + ?Sized),
) -> Result<u64> {
    let full = header.chunk_size as usize + TAG_LEN;
    let hd = header.digest();
    let mut buf = Zeroizing::new(vec![0u8; full]);
    let mut index: u32 = 0;
    let mut total: u64 = 0;
    loop {
        let n = read_full(input, &mut buf).context("cannot read the input")?;
        if n < TAG_LEN {
            bail!("the envelope file is truncated (chunk {index} is incomplete)");
        }
        let last = n < full;
        let plain = key
            .open_in_place(
                nonce(&header.nonce_prefix, index),
                Aad::from(chunk_aad(&hd, index, last)),
                &mut buf[..n],
            )
            .map_err(|_| {
                anyhow!(
                    "the envelope file was modified, truncated or corrupted (chunk {index} does not authenticate)"
                )
            })?;
        output.write_all(plain).context("cannot write the output")?;
        total += plain.len() as u64;
        if last {
            return Ok(total);
        }
        index = index
            .checked_add(1)
            .ok_or_else(|| anyhow!("the envelope file has too many chunks"))?;
    }
}

fn open_input(p: &Path) -> Result<Box<dyn Read>> {
    if data::is_stdio(p) {
        Ok(Box::new(BufReader::new(std::io::stdin())))
    } else {
        let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
        Ok(Box::new(BufReader::new(f)))
    }
}

/// Where the output goes: stdout, or a temporary file renamed over the target at the end.
enum Sink {
    Stdout(BufWriter<std::io::Stdout>),
    Temp(BufWriter<tempfile::NamedTempFile>, PathBuf),
}

impl Sink {
    fn new(out: &Path) -> Result<Sink> {
        if data::is_stdio(out) {
            if std::io::stdout().is_terminal() {
                bail!("refusing to write binary data to a terminal; use --out FILE");
            }
            return Ok(Sink::Stdout(BufWriter::new(std::io::stdout())));
        }
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".arca-envelope-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        Ok(Sink::Temp(BufWriter::new(tmp), out.to_path_buf()))
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(w) => w,
            Sink::Temp(w, _) => w,
        }
    }

    /// Flushes and, for a file, renames it into place. Dropping a `Sink` without finishing
    /// deletes the temporary file.
    fn finish(self) -> Result<()> {
        match self {
            Sink::Stdout(mut w) => w.flush().context("cannot write stdout"),
            Sink::Temp(w, target) => {
                let tmp = w
                    .into_inner()
                    .map_err(|e| anyhow!("cannot write {}: {}", target.display(), e.error()))?;
                tmp.as_file()
                    .sync_all()
                    .with_context(|| format!("cannot write {}", target.display()))?;
                tmp.persist(&target)
                    .map_err(|e| anyhow!("cannot write {}: {}", target.display(), e.error))?;
                Ok(())
            }
        }
    }
}

#[derive(Serialize)]
struct DecryptReq<'a> {
    ciphertext: PublicB64<'a>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    encryption_context: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct DecryptResp {
    #[serde(deserialize_with = "data::de_secret")]
    plaintext: Zeroizing<Vec<u8>>,
    key_id: String,
    key_version: u32,
    #[serde(default)]
    key_compromised: bool,
}

#[derive(Deserialize)]
struct KeyRef {
    key_id: String,
    key_version: u32,
}

fn summary(ctx: &Ctx, verb: &str, a: (&Path, &Path), key: &KeyRef, bytes: u64) {
    let (input, out) = a;
    if ctx.json() {
        print_json(&serde_json::json!({
            "in": input.display().to_string(),
            "out": out.display().to_string(),
            "key_id": key.key_id,
            "key_version": key.key_version,
            "plaintext_bytes": bytes,
        }));
    } else if !data::is_stdio(out) {
        outln!(
            "{verb} {} to {} ({bytes} bytes; key {}, version {})",
            input.display(),
            out.display(),
            key.key_id,
            key.key_version
        );
    }
}

/// Runs an `arca envelope` subcommand.
pub async fn run(ctx: &Ctx, cmd: EnvelopeCommand) -> Result<()> {
    match cmd {
        EnvelopeCommand::Encrypt(a) => encrypt(ctx, a).await,
        EnvelopeCommand::Decrypt(a) => decrypt(ctx, a).await,
    }
}

async fn encrypt(ctx: &Ctx, a: EncryptArgs) -> Result<()> {
    if data::is_stdio(&a.out) && ctx.json() {
        bail!("--output json needs --out FILE (stdout carries the encrypted data)");
    }
    if data::is_stdio(&a.out) && std::io::stdout().is_terminal() {
        bail!("refusing to write binary data to a terminal; use --out FILE");
    }
    let mut input = open_input(&a.input)?;
    let client = ctx.client()?;
    let req = DataKeyReq {
        key_spec: "AES_256",
        aad: None,
        encryption_context: data::kv_map(&a.context, "context key")?,
    };
    let body = client
        .post(&["v1", "keys", &a.key, "generate-data-key"], &req)
        .await?;
    let key_ref: KeyRef = body.parse()?;
    let (key, encrypted_key) = {
        let r: DataKeyResp = body.parse()?;
        drop(body);
        let plain = r
            .plaintext
            .ok_or_else(|| anyhow!("the server returned no plaintext data key"))?;
        // `plain` is zeroized at the end of this block, as soon as the AEAD key exists.
        (data_key(&plain)?, r.ciphertext)
    };
    let mut nonce_prefix = [0u8; 8];
    aws_lc_rs::rand::fill(&mut nonce_prefix).map_err(|_| anyhow!("no randomness"))?;
    let header = Header {
        encrypted_key,
        chunk_size: DEFAULT_CHUNK_SIZE,
        nonce_prefix,
    };
    let mut sink = Sink::new(&a.out)?;
    sink.writer()
        .write_all(&header.encode())
        .context("cannot write the output")?;
    let n = seal_stream(&key, &header, &mut input, sink.writer())?;
    drop(key);
    sink.finish()?;
    summary(ctx, "encrypted", (&a.input, &a.out), &key_ref, n);
    Ok(())
}

async fn decrypt(ctx: &Ctx, a: DecryptArgs) -> Result<()> {
    if data::is_stdio(&a.out) && ctx.json() {
        bail!("--output json needs --out FILE (stdout carries the decrypted data)");
    }
    if data::is_stdio(&a.out) && std::io::stdout().is_terminal() {
        bail!("refusing to write binary data to a terminal; use --out FILE");
    }
    let mut input = open_input(&a.input)?;
    let header = Header::read(&mut input)?;
    let client = ctx.client()?;
    let req = DecryptReq {
        ciphertext: PublicB64(&header.encrypted_key),
        encryption_context: data::kv_map(&a.context, "context key")?,
    };
    let body = client.post(&["v1", "decrypt"], &req).await?;
    let (key, key_ref) = {
        let r: DecryptResp = body.parse()?;
        drop(body);
        if r.key_compromised {
            eprintln!(
                "warning: the key (or version) is COMPROMISED: re-protect this data under another key"
            );
        }
        (
            data_key(&r.plaintext)?,
            KeyRef {
                key_id: r.key_id,
                key_version: r.key_version,
            },
        )
    };
    let mut sink = Sink::new(&a.out)?;
    let n = open_stream(&key, &header, &mut input, sink.writer())?;
    drop(key);
    sink.finish()?;
    summary(ctx, "decrypted", (&a.input, &a.out), &key_ref, n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LessSafeKey {
        data_key(&[7u8; 32]).unwrap()
    }

    fn header(chunk: u32) -> Header {
        Header {
            encrypted_key: b"encrypted-data-key".to_vec(),
            chunk_size: chunk,
            nonce_prefix: [1, 2, 3, 4, 5, 6, 7, 8],
        }
    }

    fn seal(data: &[u8], chunk: u32) -> Vec<u8> {
        let h = header(chunk);
        let mut out = h.encode();
        seal_stream(&key(), &h, &mut &data[..], &mut out).unwrap();
        out
    }

    fn open(file: &[u8]) -> Result<Vec<u8>> {
        let mut r = file;
        let h = Header::read(&mut r)?;
        let mut out = Vec::new();
        open_stream(&key(), &h, &mut r, &mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trips_at_every_boundary() {
        for len in [0usize, 1, 15, 16, 17, 32, 33, 100] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let f = seal(&data, 16);
            assert_eq!(open(&f).unwrap(), data, "len {len}");
        }
    }

    #[test]
    fn any_change_or_truncation_fails() {
        let data: Vec<u8> = (0..50u8).collect();
        let f = seal(&data, 16);
        for i in 0..f.len() {
            let mut g = f.clone();
            g[i] ^= 0x01;
            assert!(open(&g).is_err(), "flip at {i}");
        }
        for len in 0..f.len() {
            assert!(open(&f[..len]).is_err(), "truncated to {len}");
        }
        let mut longer = f.clone();
        longer.push(0);
        assert!(open(&longer).is_err());
    }

    #[test]
    fn truncation_at_a_chunk_boundary_fails() {
        let data = vec![9u8; 64];
        let f = seal(&data, 16);
        let hlen = header(16).encode().len();
        // Drop the final (empty) chunk, then also whole chunks.
        for chunks in 0..=4 {
            let cut = hlen + chunks * (16 + TAG_LEN);
            assert!(open(&f[..cut]).is_err(), "cut after {chunks} chunks");
        }
    }

    #[test]
    fn reordered_chunks_fail() {
        let data: Vec<u8> = (0..64u8).collect();
        let mut f = seal(&data, 16);
        let hlen = header(16).encode().len();
        let c = 16 + TAG_LEN;
        let (a, b) = (hlen, hlen + c);
        let first: Vec<u8> = f[a..a + c].to_vec();
        let second: Vec<u8> = f[b..b + c].to_vec();
        f[a..a + c].copy_from_slice(&second);
        f[b..b + c].copy_from_slice(&first);
        assert!(open(&f).is_err());
    }

    #[test]
    fn bad_headers_are_refused() {
        assert!(open(b"NOTANENV").is_err());
        assert!(open(b"").is_err());
        let mut h = header(16).encode();
        h[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(open(&h).is_err());
    }
}
