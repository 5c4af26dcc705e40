//! The cryptographic operations: encrypt, decrypt, re-encrypt, sign, verify, MACs, ML-KEM,
//! data keys and random bytes. Binary data is read and written raw (see [`crate::data`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use super::key::report_file;
use super::{Ctx, NotValid};
use crate::data::{self, InArgs, OutArgs, PublicB64, SecretB64};
use crate::output::{self, get, outln, print_json};

/// Options of `arca encrypt`.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Key id, name or alias.
    #[arg(value_name = "KEY")]
    pub key: String,
    /// The input.
    #[command(flatten)]
    pub input: InArgs,
    /// The output.
    #[command(flatten)]
    pub out: OutArgs,
    /// Encryption context KEY=VALUE (repeatable); the same pairs are needed to decrypt.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = data::parse_kv)]
    pub context: Vec<(String, String)>,
    /// Additional authenticated data from this file; needed again to decrypt (AES keys).
    #[arg(long, value_name = "FILE")]
    pub aad_file: Option<PathBuf>,
    /// Encryption algorithm: SYMMETRIC_DEFAULT or RSAES_OAEP_SHA_256 [default: the key's].
    #[arg(long)]
    pub algorithm: Option<String>,
}

/// Options of `arca decrypt`.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The key that must have made the ciphertext [default: the one the ciphertext names].
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// The input.
    #[command(flatten)]
    pub input: InArgs,
    /// The output.
    #[command(flatten)]
    pub out: OutArgs,
    /// Encryption context KEY=VALUE (repeatable), as given to encrypt.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = data::parse_kv)]
    pub context: Vec<(String, String)>,
    /// Additional authenticated data from this file, as given to encrypt.
    #[arg(long, value_name = "FILE")]
    pub aad_file: Option<PathBuf>,
}

/// Options of `arca re-encrypt`.
#[derive(Debug, Args)]
pub struct ReEncryptArgs {
    /// Destination key: id, name or alias.
    #[arg(value_name = "DEST_KEY")]
    pub key: String,
    /// The input.
    #[command(flatten)]
    pub input: InArgs,
    /// The output.
    #[command(flatten)]
    pub out: OutArgs,
    /// Encryption context of the input ciphertext, KEY=VALUE (repeatable).
    #[arg(long = "source-context", value_name = "KEY=VALUE", value_parser = data::parse_kv)]
    pub source_context: Vec<(String, String)>,
    /// Encryption context of the new ciphertext, KEY=VALUE (repeatable).
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = data::parse_kv)]
    pub context: Vec<(String, String)>,
    /// Additional authenticated data of the input ciphertext, from this file.
    #[arg(long, value_name = "FILE")]
    pub source_aad_file: Option<PathBuf>,
    /// Additional authenticated data for the new ciphertext, from this file.
    #[arg(long, value_name = "FILE")]
    pub aad_file: Option<PathBuf>,
}

/// Options of `arca sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Key id, name or alias.
    #[arg(value_name = "KEY")]
    pub key: String,
    /// The input.
    #[command(flatten)]
    pub input: InArgs,
    /// The output.
    #[command(flatten)]
    pub out: OutArgs,
    /// Signing algorithm, e.g. ECDSA_SHA_256, RSASSA_PSS_SHA_256 [default: the key's first].
    #[arg(long)]
    pub algorithm: Option<String>,
    /// The input is already a digest of the message.
    #[arg(long)]
    pub digest: bool,
}

/// Options of `arca verify`.
#[derive(Debug, Args)]
#[command(after_help = "Exit status: 0 if the signature is valid, 2 if it is not, 1 on error.")]
pub struct VerifyArgs {
    /// Key id, name or alias.
    #[arg(value_name = "KEY")]
    pub key: String,
    /// File holding the signature (raw bytes).
    #[arg(long, value_name = "FILE")]
    pub signature: PathBuf,
    /// The input.
    #[command(flatten)]
    pub input: InArgs,
    /// Signing algorithm [default: the key's first].
    #[arg(long)]
    pub algorithm: Option<String>,
    /// The input is already a digest of the message.
    #[arg(long)]
    pub digest: bool,
    /// Verify with this version [default: the primary].
    #[arg(long, value_name = "N")]
    pub version: Option<u32>,
}

/// `arca mac` subcommands.
#[derive(Debug, Subcommand)]
pub enum MacCommand {
    /// Compute an HMAC with a key's primary version.
    Generate(MacGenerateArgs),
    /// Verify an HMAC (exit 0 if valid, 2 if not).
    Verify(MacVerifyArgs),
}

/// Options of `arca mac generate`.
#[derive(Debug, Args)]
pub struct MacGenerateArgs {
    /// Key id, name or alias.
    #[arg(value_name = "KEY")]
    pub key: String,
    /// The input.
    #[command(flatten)]
    pub input: InArgs,
    /// The output.
    #[command(flatten)]
    pub out: OutArgs,
    /// MAC algorithm: HMAC_SHA_256, HMAC_SHA_384, HMAC_SHA_512 [default: the key's].
    #[arg(long)]
    pub algorithm: Option<String>,
}

/// Options of `arca mac verify`.
#[derive(Debug, Args)]
#[command(after_help = "Exit status: 0 if the MAC is valid, 2 if it is not, 1 on error.")]
pub struct MacVerifyArgs {
    /// Key id, name or alias.
    #[arg(value_name = "KEY")]
    pub key: String,
    /// File holding the MAC (raw bytes).
    #[arg(long, value_name = "FILE")]
    pub mac: PathBuf,
    /// The input.
    #[command(flatten)]
    pub input: InArgs,
    /// MAC algorithm [default: the key's].
    #[arg(long)]
    pub algorithm: Option<String>,
    /// Verify with this version [default: the primary].
    #[arg(long, value_name = "N")]
    pub version: Option<u32>,
}

/// `arca kem` subcommands.
#[derive(Debug, Subcommand)]
pub enum KemCommand {
    /// ML-KEM encapsulation: a shared secret and the ciphertext that carries it.
    Encapsulate(EncapsulateArgs),
    /// ML-KEM decapsulation: the shared secret from a ciphertext.
    Decapsulate(DecapsulateArgs),
}

/// Options of `arca kem encapsulate`.
#[derive(Debug, Args)]
pub struct EncapsulateArgs {
    /// Key id, name or alias (an ML_KEM key).
    #[arg(value_name = "KEY")]
    pub key: String,
    /// Where to write the KEM ciphertext.
    #[arg(long, value_name = "FILE")]
    pub ciphertext_out: PathBuf,
    /// Where to write the shared secret (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub secret_out: PathBuf,
}

/// Options of `arca kem decapsulate`.
#[derive(Debug, Args)]
pub struct DecapsulateArgs {
    /// Key id, name or alias (an ML_KEM key).
    #[arg(value_name = "KEY")]
    pub key: String,
    /// File holding the KEM ciphertext.
    #[arg(long, value_name = "FILE")]
    pub ciphertext: PathBuf,
    /// Where to write the shared secret (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub secret_out: PathBuf,
    /// Decapsulate with this version [default: the primary].
    #[arg(long, value_name = "N")]
    pub version: Option<u32>,
}

/// `arca data-key` subcommands.
#[derive(Debug, Subcommand)]
pub enum DataKeyCommand {
    /// Generate a symmetric data key, returned in plaintext and encrypted under KEY.
    Generate(DataKeyArgs),
    /// Generate an asymmetric data key pair whose private key is encrypted under KEY.
    Pair(DataKeyPairArgs),
}

/// Data key sizes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DataKeySpec {
    /// 128-bit AES key.
    #[value(name = "AES_128")]
    Aes128,
    /// 256-bit AES key.
    #[value(name = "AES_256")]
    Aes256,
}

/// Options of `arca data-key generate`.
#[derive(Debug, Args)]
pub struct DataKeyArgs {
    /// Key id, name or alias of the wrapping key.
    #[arg(value_name = "KEY")]
    pub key: String,
    /// Data key size (any case).
    #[arg(long, value_enum, ignore_case = true, default_value = "AES_256")]
    pub spec: DataKeySpec,
    /// Return only the encrypted data key.
    #[arg(long)]
    pub without_plaintext: bool,
    /// Encryption context KEY=VALUE (repeatable).
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = data::parse_kv)]
    pub context: Vec<(String, String)>,
    /// Additional authenticated data from this file.
    #[arg(long, value_name = "FILE")]
    pub aad_file: Option<PathBuf>,
    /// Write the plaintext data key (raw bytes) to this file, mode 0600.
    #[arg(long, value_name = "FILE", conflicts_with = "without_plaintext")]
    pub plaintext_out: Option<PathBuf>,
    /// Write the encrypted data key (raw bytes) to this file.
    #[arg(long, value_name = "FILE")]
    pub ciphertext_out: Option<PathBuf>,
}

/// Options of `arca data-key pair`.
#[derive(Debug, Args)]
pub struct DataKeyPairArgs {
    /// Key id, name or alias of the wrapping key.
    #[arg(value_name = "KEY")]
    pub key: String,
    /// Key pair spec: RSA_*, ECC_NIST_*, ED25519, ML_DSA_*.
    #[arg(long)]
    pub spec: String,
    /// Return only the encrypted private key.
    #[arg(long)]
    pub without_plaintext: bool,
    /// Encryption context KEY=VALUE (repeatable).
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = data::parse_kv)]
    pub context: Vec<(String, String)>,
    /// Additional authenticated data from this file.
    #[arg(long, value_name = "FILE")]
    pub aad_file: Option<PathBuf>,
    /// Write the plaintext private key (PKCS#8 DER) to this file, mode 0600.
    #[arg(long, value_name = "FILE", conflicts_with = "without_plaintext")]
    pub private_key_out: Option<PathBuf>,
    /// Write the encrypted private key (raw bytes) to this file.
    #[arg(long, value_name = "FILE")]
    pub private_key_ciphertext_out: Option<PathBuf>,
    /// Write the public key (SPKI DER) to this file.
    #[arg(long, value_name = "FILE")]
    pub public_key_out: Option<PathBuf>,
}

/// Options of `arca random`.
#[derive(Debug, Args)]
#[command(
    after_help = "With --output json and no --out FILE: the JSON {\"random\": \"<base64>\"} on stdout."
)]
pub struct RandomArgs {
    /// Number of bytes (1-1024).
    #[arg(value_name = "N")]
    pub n: u32,
    /// The output.
    #[command(flatten)]
    pub out: OutArgs,
}

type Context = BTreeMap<String, String>;

#[derive(Serialize)]
struct EncryptReq<'a> {
    plaintext: SecretB64<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aad: Option<PublicB64<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    encryption_context: Context,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_algorithm: Option<String>,
}

#[derive(Serialize)]
struct DecryptReq<'a> {
    ciphertext: PublicB64<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aad: Option<PublicB64<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    encryption_context: Context,
}

#[derive(Serialize)]
struct ReEncryptReq<'a> {
    ciphertext: PublicB64<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_aad: Option<PublicB64<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    source_encryption_context: Context,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_aad: Option<PublicB64<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    destination_encryption_context: Context,
}

#[derive(Serialize)]
struct SignReq<'a> {
    message: SecretB64<'a>,
    message_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_algorithm: Option<String>,
}

#[derive(Serialize)]
struct VerifyReq<'a> {
    message: SecretB64<'a>,
    message_type: &'static str,
    signature: PublicB64<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_version: Option<u32>,
}

#[derive(Serialize)]
struct MacReq<'a> {
    message: SecretB64<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac_algorithm: Option<String>,
}

#[derive(Serialize)]
struct MacVerifyReq<'a> {
    message: SecretB64<'a>,
    mac: PublicB64<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac_algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_version: Option<u32>,
}

#[derive(Serialize)]
struct DecapsulateReq<'a> {
    ciphertext: PublicB64<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_version: Option<u32>,
}

/// The body of generate-data-key.
#[derive(Serialize)]
pub(crate) struct DataKeyReq<'a> {
    /// `AES_256` or `AES_128`.
    pub(crate) key_spec: &'static str,
    /// Additional authenticated data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) aad: Option<PublicB64<'a>>,
    /// The encryption context.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) encryption_context: Context,
}

#[derive(Serialize)]
struct DataKeyPairReq<'a> {
    key_pair_spec: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    aad: Option<PublicB64<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    encryption_context: Context,
}

/// A response carrying one binary field (ciphertext, signature, MAC).
#[derive(Deserialize)]
struct BlobResp {
    #[serde(
        alias = "ciphertext",
        alias = "signature",
        alias = "mac",
        deserialize_with = "data::de_bytes"
    )]
    blob: Vec<u8>,
}

#[derive(Deserialize)]
struct PlaintextResp {
    #[serde(deserialize_with = "data::de_secret")]
    plaintext: Zeroizing<Vec<u8>>,
    #[serde(default)]
    key_compromised: bool,
}

#[derive(Deserialize)]
struct VerdictResp {
    valid: bool,
    #[serde(default)]
    key_compromised: bool,
}

#[derive(Deserialize)]
struct EncapsulateResp {
    #[serde(deserialize_with = "data::de_bytes")]
    ciphertext: Vec<u8>,
    #[serde(deserialize_with = "data::de_secret")]
    shared_secret: Zeroizing<Vec<u8>>,
}

#[derive(Deserialize)]
struct DecapsulateResp {
    #[serde(deserialize_with = "data::de_secret")]
    shared_secret: Zeroizing<Vec<u8>>,
    #[serde(default)]
    key_compromised: bool,
}

/// A data key as the server returns it.
#[derive(Deserialize)]
pub(crate) struct DataKeyResp {
    /// The encrypted data key.
    #[serde(deserialize_with = "data::de_bytes")]
    pub(crate) ciphertext: Vec<u8>,
    /// The plaintext data key, unless asked without.
    #[serde(default, deserialize_with = "de_opt_secret")]
    pub(crate) plaintext: Option<Zeroizing<Vec<u8>>>,
}

#[derive(Deserialize)]
struct DataKeyPairResp {
    #[serde(deserialize_with = "data::de_bytes")]
    public_key: Vec<u8>,
    #[serde(deserialize_with = "data::de_bytes")]
    private_key_ciphertext: Vec<u8>,
    #[serde(default, deserialize_with = "de_opt_secret")]
    private_key_plaintext: Option<Zeroizing<Vec<u8>>>,
}

fn de_opt_secret<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Zeroizing<Vec<u8>>>, D::Error> {
    data::de_secret(d).map(Some)
}

#[derive(Deserialize)]
struct RandomResp {
    #[serde(deserialize_with = "data::de_secret")]
    random: Zeroizing<Vec<u8>>,
}

fn read_opt(p: &Option<PathBuf>) -> Result<Option<Zeroizing<Vec<u8>>>> {
    p.as_deref().map(data::read_input).transpose()
}

fn warn_compromised(compromised: bool) {
    if compromised {
        eprintln!(
            "warning: the key (or version) is COMPROMISED: re-protect this data under another key"
        );
    }
}

fn stdin_inputs<'a>(main: &'a Path, others: &[&'a Option<PathBuf>]) -> Result<()> {
    let mut all: Vec<&Path> = vec![main];
    all.extend(others.iter().filter_map(|o| o.as_deref()));
    data::one_stdin(&all)
}

/// `arca encrypt`.
pub async fn encrypt(ctx: &Ctx, a: EncryptArgs) -> Result<()> {
    data::check_out(&a.out)?;
    stdin_inputs(&a.input.input, &[&a.aad_file])?;
    let plaintext = data::read_input(&a.input.input)?;
    let aad = read_opt(&a.aad_file)?;
    let req = EncryptReq {
        plaintext: SecretB64(&plaintext),
        aad: aad.as_deref().map(|x| PublicB64(x)),
        encryption_context: data::kv_map(&a.context, "context key")?,
        encryption_algorithm: a.algorithm.as_deref().map(data::wire_name),
    };
    let body = ctx
        .client()?
        .post(&["v1", "keys", &a.key, "encrypt"], &req)
        .await?;
    let r: BlobResp = body.parse()?;
    let wrote = data::write_binary(&a.out, &r.blob, false)?;
    report_file(ctx, &body.value()?, &["ciphertext"], wrote, "ciphertext");
    Ok(())
}

/// `arca decrypt`.
pub async fn decrypt(ctx: &Ctx, a: DecryptArgs) -> Result<()> {
    data::check_out(&a.out)?;
    stdin_inputs(&a.input.input, &[&a.aad_file])?;
    let ciphertext = data::read_input(&a.input.input)?;
    let aad = read_opt(&a.aad_file)?;
    let req = DecryptReq {
        ciphertext: PublicB64(&ciphertext),
        aad: aad.as_deref().map(|x| PublicB64(x)),
        encryption_context: data::kv_map(&a.context, "context key")?,
    };
    let c = ctx.client()?;
    let body = match &a.key {
        Some(k) => c.post(&["v1", "keys", k, "decrypt"], &req).await?,
        None => c.post(&["v1", "decrypt"], &req).await?,
    };
    let r: PlaintextResp = body.parse()?;
    warn_compromised(r.key_compromised);
    let wrote = data::write_binary(&a.out, &r.plaintext, true)?;
    report_file(ctx, &body.value()?, &["plaintext"], wrote, "plaintext");
    Ok(())
}

/// `arca re-encrypt`.
pub async fn re_encrypt(ctx: &Ctx, a: ReEncryptArgs) -> Result<()> {
    data::check_out(&a.out)?;
    stdin_inputs(&a.input.input, &[&a.source_aad_file, &a.aad_file])?;
    let ciphertext = data::read_input(&a.input.input)?;
    let source_aad = read_opt(&a.source_aad_file)?;
    let aad = read_opt(&a.aad_file)?;
    let req = ReEncryptReq {
        ciphertext: PublicB64(&ciphertext),
        source_aad: source_aad.as_deref().map(|x| PublicB64(x)),
        source_encryption_context: data::kv_map(&a.source_context, "source context key")?,
        destination_aad: aad.as_deref().map(|x| PublicB64(x)),
        destination_encryption_context: data::kv_map(&a.context, "context key")?,
    };
    let body = ctx
        .client()?
        .post(&["v1", "keys", &a.key, "re-encrypt"], &req)
        .await?;
    let r: BlobResp = body.parse()?;
    let wrote = data::write_binary(&a.out, &r.blob, false)?;
    report_file(ctx, &body.value()?, &["ciphertext"], wrote, "ciphertext");
    Ok(())
}

fn message_type(digest: bool) -> &'static str {
    if digest {
        "DIGEST"
    } else {
        "RAW"
    }
}

/// `arca sign`.
pub async fn sign(ctx: &Ctx, a: SignArgs) -> Result<()> {
    data::check_out(&a.out)?;
    let message = data::read_input(&a.input.input)?;
    let req = SignReq {
        message: SecretB64(&message),
        message_type: message_type(a.digest),
        signing_algorithm: a.algorithm.as_deref().map(data::wire_name),
    };
    let body = ctx
        .client()?
        .post(&["v1", "keys", &a.key, "sign"], &req)
        .await?;
    let r: BlobResp = body.parse()?;
    let wrote = data::write_binary(&a.out, &r.blob, false)?;
    report_file(ctx, &body.value()?, &["signature"], wrote, "signature");
    Ok(())
}

fn verdict(ctx: &Ctx, v: &Value, r: &VerdictResp, what: &str) -> Result<()> {
    warn_compromised(r.key_compromised);
    if ctx.json() {
        print_json(v);
    }
    if r.valid {
        if !ctx.json() {
            outln!(
                "{what} is valid (key {}, version {})",
                get(v, "key_id"),
                get(v, "key_version")
            );
        }
        Ok(())
    } else {
        Err(NotValid(format!("{what} is NOT valid")).into())
    }
}

/// `arca verify`: exit 0 if valid, 2 if not.
pub async fn verify(ctx: &Ctx, a: VerifyArgs) -> Result<()> {
    data::one_stdin(&[&a.input.input, &a.signature])?;
    let message = data::read_input(&a.input.input)?;
    let signature = data::read_input(&a.signature)?;
    let req = VerifyReq {
        message: SecretB64(&message),
        message_type: message_type(a.digest),
        signature: PublicB64(&signature),
        signing_algorithm: a.algorithm.as_deref().map(data::wire_name),
        key_version: a.version,
    };
    let body = ctx
        .client()?
        .post(&["v1", "keys", &a.key, "verify"], &req)
        .await?;
    verdict(ctx, &body.value()?, &body.parse()?, "signature")
}

/// `arca mac ...`.
pub async fn mac(ctx: &Ctx, cmd: MacCommand) -> Result<()> {
    match cmd {
        MacCommand::Generate(a) => {
            data::check_out(&a.out)?;
            let message = data::read_input(&a.input.input)?;
            let req = MacReq {
                message: SecretB64(&message),
                mac_algorithm: a.algorithm.as_deref().map(data::wire_name),
            };
            let body = ctx
                .client()?
                .post(&["v1", "keys", &a.key, "generate-mac"], &req)
                .await?;
            let r: BlobResp = body.parse()?;
            let wrote = data::write_binary(&a.out, &r.blob, false)?;
            report_file(ctx, &body.value()?, &["mac"], wrote, "MAC");
            Ok(())
        }
        MacCommand::Verify(a) => {
            data::one_stdin(&[&a.input.input, &a.mac])?;
            let message = data::read_input(&a.input.input)?;
            let mac = data::read_input(&a.mac)?;
            let req = MacVerifyReq {
                message: SecretB64(&message),
                mac: PublicB64(&mac),
                mac_algorithm: a.algorithm.as_deref().map(data::wire_name),
                key_version: a.version,
            };
            let body = ctx
                .client()?
                .post(&["v1", "keys", &a.key, "verify-mac"], &req)
                .await?;
            verdict(ctx, &body.value()?, &body.parse()?, "MAC")
        }
    }
}

/// `arca kem ...`.
pub async fn kem(ctx: &Ctx, cmd: KemCommand) -> Result<()> {
    match cmd {
        KemCommand::Encapsulate(a) => {
            if data::is_stdio(&a.ciphertext_out) && data::is_stdio(&a.secret_out) {
                bail!("--ciphertext-out and --secret-out cannot both be stdout");
            }
            let body = ctx
                .client()?
                .post(
                    &["v1", "keys", &a.key, "encapsulate"],
                    &serde_json::json!({}),
                )
                .await?;
            let r: EncapsulateResp = body.parse()?;
            data::write_file(&a.secret_out, &r.shared_secret, true)?;
            data::write_file(&a.ciphertext_out, &r.ciphertext, false)?;
            let v = body.value()?;
            if ctx.json() {
                print_json(&output::without(&v, &["ciphertext", "shared_secret"]));
            } else if !data::is_stdio(&a.ciphertext_out) && !data::is_stdio(&a.secret_out) {
                outln!(
                    "wrote the KEM ciphertext to {} and the shared secret to {} (key {}, version {})",
                    a.ciphertext_out.display(),
                    a.secret_out.display(),
                    get(&v, "key_id"),
                    get(&v, "key_version")
                );
            }
            Ok(())
        }
        KemCommand::Decapsulate(a) => {
            let ct = data::read_input(&a.ciphertext)?;
            let req = DecapsulateReq {
                ciphertext: PublicB64(&ct),
                key_version: a.version,
            };
            let body = ctx
                .client()?
                .post(&["v1", "keys", &a.key, "decapsulate"], &req)
                .await?;
            let r: DecapsulateResp = body.parse()?;
            warn_compromised(r.key_compromised);
            data::write_file(&a.secret_out, &r.shared_secret, true)?;
            let wrote = (!data::is_stdio(&a.secret_out)).then(|| a.secret_out.clone());
            report_file(
                ctx,
                &body.value()?,
                &["shared_secret"],
                wrote,
                "shared secret",
            );
            Ok(())
        }
    }
}

fn no_stdout(p: &Option<PathBuf>, flag: &str) -> Result<()> {
    if p.as_deref().is_some_and(data::is_stdio) {
        bail!("{flag} needs a file name (stdout carries the summary)");
    }
    Ok(())
}

/// `arca data-key ...`.
pub async fn data_key(ctx: &Ctx, cmd: DataKeyCommand) -> Result<()> {
    match cmd {
        DataKeyCommand::Generate(a) => {
            no_stdout(&a.plaintext_out, "--plaintext-out")?;
            no_stdout(&a.ciphertext_out, "--ciphertext-out")?;
            let aad = read_opt(&a.aad_file)?;
            let req = DataKeyReq {
                key_spec: match a.spec {
                    DataKeySpec::Aes128 => "AES_128",
                    DataKeySpec::Aes256 => "AES_256",
                },
                aad: aad.as_deref().map(|x| PublicB64(x)),
                encryption_context: data::kv_map(&a.context, "context key")?,
            };
            let op = if a.without_plaintext {
                "generate-data-key-without-plaintext"
            } else {
                "generate-data-key"
            };
            let body = ctx
                .client()?
                .post(&["v1", "keys", &a.key, op], &req)
                .await?;
            let r: DataKeyResp = body.parse()?;
            if let (Some(p), Some(pt)) = (&a.plaintext_out, &r.plaintext) {
                data::write_file(p, pt, true)?;
            }
            if let Some(p) = &a.ciphertext_out {
                data::write_file(p, &r.ciphertext, false)?;
            }
            let v = body.value()?;
            if ctx.json() {
                let mut strip = Vec::new();
                if a.plaintext_out.is_some() {
                    strip.push("plaintext");
                }
                print_json(&output::without(&v, &strip));
                return Ok(());
            }
            let plaintext = match (&a.plaintext_out, &r.plaintext) {
                (_, None) => "not requested".to_string(),
                (Some(p), Some(_)) => format!("written to {} (mode 0600)", p.display()),
                (None, Some(_)) => {
                    "not shown (use --plaintext-out FILE or --output json)".to_string()
                }
            };
            let ciphertext = match &a.ciphertext_out {
                Some(p) => format!("written to {}", p.display()),
                None => data::b64(&r.ciphertext),
            };
            let rows = [
                ("Key id", get(&v, "key_id")),
                ("Key version", get(&v, "key_version")),
                ("Ciphertext", ciphertext),
                ("Plaintext", plaintext),
            ];
            output::show(&output::fields_table(&rows));
            Ok(())
        }
        DataKeyCommand::Pair(a) => {
            no_stdout(&a.private_key_out, "--private-key-out")?;
            no_stdout(
                &a.private_key_ciphertext_out,
                "--private-key-ciphertext-out",
            )?;
            no_stdout(&a.public_key_out, "--public-key-out")?;
            let aad = read_opt(&a.aad_file)?;
            let req = DataKeyPairReq {
                key_pair_spec: data::wire_name(&a.spec),
                aad: aad.as_deref().map(|x| PublicB64(x)),
                encryption_context: data::kv_map(&a.context, "context key")?,
            };
            let op = if a.without_plaintext {
                "generate-data-key-pair-without-plaintext"
            } else {
                "generate-data-key-pair"
            };
            let body = ctx
                .client()?
                .post(&["v1", "keys", &a.key, op], &req)
                .await?;
            let r: DataKeyPairResp = body.parse()?;
            if let (Some(p), Some(pt)) = (&a.private_key_out, &r.private_key_plaintext) {
                data::write_file(p, pt, true)?;
            }
            if let Some(p) = &a.private_key_ciphertext_out {
                data::write_file(p, &r.private_key_ciphertext, false)?;
            }
            if let Some(p) = &a.public_key_out {
                data::write_file(p, &r.public_key, false)?;
            }
            let v = body.value()?;
            if ctx.json() {
                let mut strip = Vec::new();
                if a.private_key_out.is_some() {
                    strip.push("private_key_plaintext");
                }
                print_json(&output::without(&v, &strip));
                return Ok(());
            }
            let shown = |p: &Option<PathBuf>, b64: &[u8]| match p {
                Some(p) => format!("written to {}", p.display()),
                None => data::b64(b64),
            };
            let private = match (&a.private_key_out, &r.private_key_plaintext) {
                (_, None) => "not requested".to_string(),
                (Some(p), Some(_)) => format!("written to {} (mode 0600)", p.display()),
                (None, Some(_)) => {
                    "not shown (use --private-key-out FILE or --output json)".to_string()
                }
            };
            let rows = [
                ("Key pair spec", get(&v, "key_pair_spec")),
                ("Key id", get(&v, "key_id")),
                ("Key version", get(&v, "key_version")),
                ("Public key", shown(&a.public_key_out, &r.public_key)),
                (
                    "Private key ciphertext",
                    shown(&a.private_key_ciphertext_out, &r.private_key_ciphertext),
                ),
                ("Private key", private),
            ];
            output::show(&output::fields_table(&rows));
            Ok(())
        }
    }
}

/// `arca random`.
pub async fn random(ctx: &Ctx, a: RandomArgs) -> Result<()> {
    // `--output json` asks for JSON: the bytes in base64, as the API answers them (raw
    // bytes go to a file only when --out names one).
    let as_json = ctx.json() && a.out.file().is_none();
    if !as_json {
        data::check_out(&a.out)?;
    }
    let body = ctx
        .client()?
        .post(
            &["v1", "random"],
            &serde_json::json!({ "number_of_bytes": a.n }),
        )
        .await?;
    if as_json {
        print_json(&body.value()?);
        return Ok(());
    }
    let r: RandomResp = body.parse()?;
    let wrote = data::write_binary(&a.out, &r.random, true)?;
    report_file(ctx, &body.value()?, &["random"], wrote, "random bytes");
    Ok(())
}
