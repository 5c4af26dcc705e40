//! `arca-loadgen`: drives N concurrent HTTPS keep-alive connections (or KMIP connections,
//! with `--kmip`) against a running Arca server and reports throughput and latency
//! percentiles per operation.
//!
//! Each connection is one TLS session with one HTTP/1.1 connection on it, sending requests
//! one after another, so N is exactly the number of requests in flight. Latency is measured
//! per request from send to the end of the response body. Every request must answer 2xx;
//! any other answer is counted and reported as an error.
//!
//! ```text
//! arca-loadgen --connections 16 --duration 10 --op all
//! ```
//! Server, CA and token come from flags, `ARCA_*` variables or the CLI profile file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(
    name = "arca-loadgen",
    about = "Load generator for a running Arca server"
)]
struct Args {
    /// Server URL, e.g. https://127.0.0.1:8443.
    #[arg(long, env = "ARCA_SERVER")]
    server: Option<String>,
    /// CA certificate (PEM) to trust.
    #[arg(long, env = "ARCA_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// API token.
    #[arg(long, env = "ARCA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Profile file written by `arca serve` (default ~/.config/arca/profile.toml).
    #[arg(long, env = "ARCA_PROFILE_FILE")]
    profile_file: Option<PathBuf>,
    /// Profile name.
    #[arg(long, env = "ARCA_PROFILE", default_value = "default")]
    profile: String,
    /// Concurrent keep-alive connections.
    #[arg(long, short = 'c', default_value_t = 16)]
    connections: usize,
    /// Seconds to run each operation.
    #[arg(long, short = 'd', default_value_t = 10)]
    duration: u64,
    /// Stop each operation after this many requests in total (whichever comes first).
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: u64,
    /// Operation: noop, encrypt, decrypt, data-key, sign-p256, sign-rsa, sign-ed25519,
    /// create-key (durable), mixed (encrypt, decrypt, data-key, sign-p256 in turn),
    /// kmip-query, kmip-encrypt, kmip-decrypt, kmip-create, kmip-get, kmip-sign-p256,
    /// kmip-sign-rsa, kmip-sign-ed25519, aws-encrypt, aws-decrypt, aws-data-key,
    /// aws-sign-p256, aws-sign-rsa, aws-sign-ed25519, aws-create-key, or all (the kmip- ones
    /// only with --kmip, the aws- ones only with --aws).
    #[arg(long, default_value = "all")]
    op: String,
    /// KMIP listener (host:port) to drive as well: TTLV over mutual TLS.
    #[arg(long)]
    kmip: Option<String>,
    /// Client certificate (PEM) for KMIP, bound to a principal that may create and use keys.
    #[arg(long)]
    client_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long)]
    client_key: Option<PathBuf>,
    /// The AWS-compatible listener (host:port) to drive as well: SigV4-signed KMS JSON.
    #[arg(long)]
    aws: Option<String>,
    /// Access key id for --aws (`arca credentials create --aws`).
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    aws_access_key_id: Option<String>,
    /// Its secret access key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    aws_secret_access_key: Option<String>,
    /// The region the AWS door answers for.
    #[arg(long, default_value = "us-east-1")]
    aws_region: String,
    /// Target rate in requests per second, over all connections (each connection sends on
    /// a fixed schedule). A request whose slot came while its connection was still busy
    /// counts its latency from the slot, so a server that falls behind shows it (no
    /// coordinated omission). Unset: as fast as the server answers.
    #[arg(long)]
    rate: Option<f64>,
    /// Print results as JSON.
    #[arg(long)]
    json: bool,
}

/// A connection's schedule under `--rate`: one request every `interval`, from a start
/// staggered by connection.
struct Pacer {
    next: Option<Instant>,
    interval: Duration,
}

impl Pacer {
    fn new(rate: Option<f64>, conns: usize, conn: usize, start: Instant) -> Pacer {
        match rate.filter(|r| *r > 0.0) {
            Some(r) => {
                let interval = Duration::from_secs_f64(conns as f64 / r);
                Pacer {
                    next: Some(start + interval.mul_f64(conn as f64 / conns as f64)),
                    interval,
                }
            }
            None => Pacer {
                next: None,
                interval: Duration::ZERO,
            },
        }
    }

    /// Waits for the next slot; the time latency counts from. When the connection is
    /// still busy at its slot (the server is behind), that is the slot itself; when it
    /// waited, it is when it woke: the timer's granularity (1 ms) is the client's, not the
    /// server's, and must not count as latency.
    async fn wait(&mut self) -> Instant {
        match self.next {
            Some(at) => {
                self.next = Some(at + self.interval);
                if Instant::now() >= at {
                    return at;
                }
                tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                Instant::now()
            }
            None => Instant::now(),
        }
    }
}

#[derive(Debug, Clone, serde::Deserialize, Default)]
struct Profile {
    server: Option<String>,
    ca_cert: Option<PathBuf>,
    token: Option<String>,
}

#[derive(Debug, serde::Deserialize, Default)]
struct ProfileFile {
    #[serde(default)]
    profiles: std::collections::BTreeMap<String, Profile>,
}

struct Target {
    host: String,
    port: u16,
    authority: String,
    tls: tokio_rustls::TlsConnector,
    server_name: rustls::pki_types::ServerName<'static>,
    token: String,
    kmip: Option<KmipTarget>,
    aws: Option<AwsTarget>,
}

/// The AWS-compatible listener and the access key pair that signs for it.
struct AwsTarget {
    host: String,
    port: u16,
    authority: String,
    access_key_id: String,
    secret: String,
    region: String,
}

/// The KMIP listener and the TLS configuration with the client certificate.
struct KmipTarget {
    addr: String,
    tls: tokio_rustls::TlsConnector,
}

fn resolve(args: &Args) -> Result<Target> {
    let path = args.profile_file.clone().unwrap_or_else(|| {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("arca").join("profile.toml")
    });
    let prof = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| toml::from_str::<ProfileFile>(&t).ok())
        .and_then(|f| f.profiles.get(&args.profile).cloned())
        .unwrap_or_default();
    let server = args
        .server
        .clone()
        .or(prof.server)
        .context("no server: pass --server or run `arca serve` first")?;
    let ca = args
        .ca_cert
        .clone()
        .or(prof.ca_cert)
        .context("no CA certificate: pass --ca-cert")?;
    let token = args
        .token
        .clone()
        .or(prof.token)
        .context("no token: pass --token")?;
    let rest = server
        .strip_prefix("https://")
        .context("the server URL must start with https://")?;
    let hostport = rest.trim_end_matches('/');
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse().context("bad port")?,
        ),
        None => (hostport.to_string(), 443),
    };
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&ca).with_context(|| format!("cannot open {}", ca.display()))?;
    for c in
        <rustls::pki_types::CertificateDer as rustls::pki_types::pem::PemObject>::pem_slice_iter(
            &pem,
        )
    {
        roots.add(c?)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let kmip = match &args.kmip {
        Some(addr) => {
            use rustls::pki_types::pem::PemObject;
            let cert = args
                .client_cert
                .as_ref()
                .context("--kmip needs --client-cert")?;
            let key = args
                .client_key
                .as_ref()
                .context("--kmip needs --client-key")?;
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("cannot read {}", cert.display()))?
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("cannot read {}", key.display()))?;
            let cfg = builder.clone().with_client_auth_cert(certs, key)?;
            Some(KmipTarget {
                addr: addr.clone(),
                tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
            })
        }
        None => None,
    };
    let cfg = builder.with_no_client_auth();
    let aws = match &args.aws {
        Some(addr) => {
            let (host, port) = addr.rsplit_once(':').context("--aws is host:port")?;
            Some(AwsTarget {
                host: host.to_string(),
                port: port.parse().context("--aws port")?,
                authority: addr.clone(),
                access_key_id: args
                    .aws_access_key_id
                    .clone()
                    .context("--aws needs --aws-access-key-id (or AWS_ACCESS_KEY_ID)")?,
                secret: args
                    .aws_secret_access_key
                    .clone()
                    .context("--aws needs --aws-secret-access-key (or AWS_SECRET_ACCESS_KEY)")?,
                region: args.aws_region.clone(),
            })
        }
        None => None,
    };
    Ok(Target {
        kmip,
        aws,
        authority: hostport.to_string(),
        server_name: rustls::pki_types::ServerName::try_from(host.clone())?,
        host,
        port,
        tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
        token,
    })
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(t: &Target) -> Result<Sender> {
    connect_to(t, &t.host, t.port).await
}

async fn connect_to(t: &Target, host: &str, port: u16) -> Result<Sender> {
    let tcp = tokio::net::TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    let tls = t.tls.connect(t.server_name.clone(), tcp).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request on an open connection: (status, body).
async fn call(
    s: &mut Sender,
    t: &Target,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Bytes)> {
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", &t.authority)
        .header("authorization", format!("Bearer {}", t.token))
        .header("accept", "application/json");
    let payload = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Bytes::from(serde_json::to_vec(v)?)
        }
        None => Bytes::new(),
    };
    s.ready().await?;
    let resp = s.send_request(b.body(Full::new(payload))?).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

#[derive(Clone)]
struct Op {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Value>,
    /// A KMIP request message (TTLV) instead of an HTTP request.
    kmip: Option<Arc<Vec<u8>>>,
    /// A signed AWS KMS request (headers and body) instead of a REST one.
    aws: Option<Arc<AwsRequest>>,
    /// Each request gets a name of its own in the body (`create-key`: a new durable key).
    fresh_name: bool,
    /// A mixed workload: the requests of these operations in turn.
    mix: Option<Arc<Vec<Op>>>,
}

/// One AWS KMS request, signed once: SigV4 allows replaying it within its five minutes,
/// so the server's verification cost is measured, not the client's signing.
struct AwsRequest {
    headers: Vec<(String, String)>,
    body: Bytes,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Signs a `TrentService.<op>` request with SigV4 (service `kms`), as AWS SDKs do.
fn aws_sign(a: &AwsTarget, op: &str, body: &Value) -> Result<AwsRequest> {
    use aws_lc_rs::{digest, hmac};
    let body = Bytes::from(serde_json::to_vec(body)?);
    let now = chrono::Utc::now();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = &amz_date[..8];
    let target = format!("TrentService.{op}");
    let headers = vec![
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
        ("host".to_string(), a.authority.clone()),
        ("x-amz-date".to_string(), amz_date.clone()),
        ("x-amz-target".to_string(), target),
    ];
    let signed = "content-type;host;x-amz-date;x-amz-target";
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{signed}\n{}",
        hex(digest::digest(&digest::SHA256, &body).as_ref())
    );
    let scope = format!("{date}/{}/kms/aws4_request", a.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let mut k = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{}", a.secret).as_bytes()),
        date.as_bytes(),
    );
    for part in [a.region.as_str(), "kms", "aws4_request"] {
        k = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()),
            part.as_bytes(),
        );
    }
    let sig = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()),
        to_sign.as_bytes(),
    );
    let mut headers = headers;
    headers.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={}",
            a.access_key_id,
            hex(sig.as_ref())
        ),
    ));
    Ok(AwsRequest { headers, body })
}

/// Sends a signed AWS request: (status, body).
async fn aws_call(s: &mut Sender, r: &AwsRequest) -> Result<(u16, Bytes)> {
    let mut b = hyper::Request::builder().method("POST").uri("/");
    for (k, v) in &r.headers {
        b = b.header(k, v);
    }
    s.ready().await?;
    let resp = s.send_request(b.body(Full::new(r.body.clone()))?).await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

/// The AWS door's operations: 1 KiB Encrypt and Decrypt, and GenerateDataKey, on the
/// REST setup's AES key (the door takes Arca key names as KeyId too).
async fn aws_setup(a: &AwsTarget, t: &Target) -> Result<Vec<Op>> {
    let kib = base64::engine::general_purpose::STANDARD.encode(vec![0x61u8; 1024]);
    let encrypt = aws_sign(
        a,
        "Encrypt",
        &json!({"KeyId": "loadgen-aes", "Plaintext": kib}),
    )?;
    let mut s = connect_to(t, &a.host, a.port).await?;
    let (st, body) = aws_call(&mut s, &encrypt).await?;
    if st != 200 {
        bail!(
            "AWS Encrypt failed: {st} {} (does the key policy let the access key's principal use loadgen-aes?)",
            String::from_utf8_lossy(&body)
        );
    }
    let ct: Value = serde_json::from_slice(&body)?;
    let decrypt = aws_sign(
        a,
        "Decrypt",
        &json!({"CiphertextBlob": ct["CiphertextBlob"]}),
    )?;
    let data_key = aws_sign(
        a,
        "GenerateDataKey",
        &json!({"KeyId": "loadgen-aes", "KeySpec": "AES_256"}),
    )?;
    let aws_op = |name, r: AwsRequest| Op {
        name,
        method: "",
        path: String::new(),
        body: None,
        kmip: None,
        aws: Some(Arc::new(r)),
        fresh_name: false,
        mix: None,
    };
    let msg = base64::engine::general_purpose::STANDARD.encode(b"load generator message");
    let sign = |key: &str, alg: &str| {
        aws_sign(
            a,
            "Sign",
            &json!({"KeyId": key, "Message": msg, "SigningAlgorithm": alg}),
        )
    };
    Ok(vec![
        aws_op("aws-encrypt", encrypt),
        aws_op("aws-decrypt", decrypt),
        aws_op("aws-data-key", data_key),
        aws_op("aws-sign-p256", sign("loadgen-p256", "ECDSA_SHA_256")?),
        aws_op("aws-sign-rsa", sign("loadgen-rsa", "RSASSA_PSS_SHA_256")?),
        aws_op(
            "aws-sign-ed25519",
            sign("loadgen-ed25519", "ED25519_SHA_512")?,
        ),
        // The same signed CreateKey replayed makes a new key each time (AWS keys have no
        // name): durable key creation through this door.
        aws_op("aws-create-key", aws_sign(a, "CreateKey", &json!({}))?),
    ])
}

/// A KMIP connection: the TLS stream with the client certificate.
type KmipConn = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn kmip_connect(k: &KmipTarget, t: &Target) -> Result<KmipConn> {
    let tcp = tokio::net::TcpStream::connect(&k.addr).await?;
    tcp.set_nodelay(true)?;
    Ok(k.tls.connect(t.server_name.clone(), tcp).await?)
}

/// Sends one KMIP request message and reads the response message.
async fn kmip_call(c: &mut KmipConn, msg: &[u8]) -> Result<arca_kmip::Item> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    c.write_all(msg).await?;
    c.flush().await?;
    let mut head = [0u8; 8];
    c.read_exact(&mut head).await?;
    let limits = arca_kmip::Limits::default();
    let n = arca_kmip::item_size(&head, &limits)?;
    let mut buf = vec![0u8; n];
    buf[..8].copy_from_slice(&head);
    c.read_exact(&mut buf[8..]).await?;
    Ok(arca_kmip::decode(&buf, &limits)?)
}

/// True if every batch item of a response succeeded.
fn kmip_ok(resp: &arca_kmip::Item) -> bool {
    use arca_kmip::{enums::result_status, tags};
    let mut items = resp.children_with(tags::BATCH_ITEM).peekable();
    items.peek().is_some()
        && items.all(|b| {
            b.child(tags::RESULT_STATUS)
                .and_then(|s| s.enumeration().ok())
                == Some(result_status::SUCCESS)
        })
}

/// A one-item KMIP 1.4 request message.
fn kmip_request(operation: u32, payload: Vec<arca_kmip::Item>) -> Vec<u8> {
    use arca_kmip::{tags, Item};
    let msg = Item::structure(
        tags::REQUEST_MESSAGE,
        vec![
            Item::structure(
                tags::REQUEST_HEADER,
                vec![
                    arca_kmip::message::ProtocolVersion::new(1, 4).to_item(),
                    Item::int_item(tags::BATCH_COUNT, 1),
                ],
            ),
            Item::structure(
                tags::BATCH_ITEM,
                vec![
                    Item::enum_item(tags::OPERATION, operation),
                    Item::structure(tags::REQUEST_PAYLOAD, payload),
                ],
            ),
        ],
    );
    arca_kmip::encode(&msg).to_vec()
}

/// Makes (or finds) the KMIP key of the KMIP operations and returns them.
async fn kmip_setup(k: &KmipTarget, t: &Target) -> Result<Vec<Op>> {
    use arca_kmip::enums::{
        block_cipher_mode, cryptographic_algorithm, object_type, operation, query_function,
    };
    use arca_kmip::{tags, Item, Value};
    let mut c = kmip_connect(k, t).await?;
    let name = Item::structure(
        tags::NAME,
        vec![
            Item::text_item(tags::NAME_VALUE, "loadgen-kmip-aes"),
            Item::enum_item(tags::NAME_TYPE, 1),
        ],
    );
    let attr = |n: &str, v: Value| {
        Item::structure(
            tags::ATTRIBUTE,
            vec![
                Item::text_item(tags::ATTRIBUTE_NAME, n),
                Item::new(tags::ATTRIBUTE_VALUE, v),
            ],
        )
    };
    let name_attr = Item::structure(
        tags::ATTRIBUTE,
        vec![
            Item::text_item(tags::ATTRIBUTE_NAME, "Name"),
            Item::new(tags::ATTRIBUTE_VALUE, name.value.clone()),
        ],
    );
    let found = kmip_call(
        &mut c,
        &kmip_request(operation::LOCATE, vec![name_attr.clone()]),
    )
    .await?;
    let uid_of = |r: &arca_kmip::Item| -> Option<String> {
        r.children_with(tags::BATCH_ITEM)
            .next()?
            .child(tags::RESPONSE_PAYLOAD)?
            .child(tags::UNIQUE_IDENTIFIER)?
            .text()
            .ok()
            .map(str::to_owned)
    };
    let id = match uid_of(&found) {
        Some(id) => id,
        None => {
            let created = kmip_call(
                &mut c,
                &kmip_request(
                    operation::CREATE,
                    vec![
                        Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
                        Item::structure(
                            tags::TEMPLATE_ATTRIBUTE,
                            vec![
                                attr(
                                    "Cryptographic Algorithm",
                                    Value::Enumeration(cryptographic_algorithm::AES),
                                ),
                                attr("Cryptographic Length", Value::Integer(256)),
                                attr("Cryptographic Usage Mask", Value::Integer(0x0C)),
                                name_attr,
                            ],
                        ),
                    ],
                ),
            )
            .await?;
            let id = uid_of(&created).context("KMIP Create failed: is the client certificate bound to a principal that may create keys?")?;
            let act = kmip_call(
                &mut c,
                &kmip_request(
                    operation::ACTIVATE,
                    vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &id)],
                ),
            )
            .await?;
            anyhow::ensure!(kmip_ok(&act), "KMIP Activate failed");
            id
        }
    };
    let kib = vec![0x61u8; 1024];
    let encrypt = kmip_request(
        operation::ENCRYPT,
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, &id),
            Item::structure(
                tags::CRYPTOGRAPHIC_PARAMETERS,
                vec![
                    Item::enum_item(tags::BLOCK_CIPHER_MODE, block_cipher_mode::GCM),
                    Item::new(tags::RANDOM_IV, Value::Boolean(true)),
                ],
            ),
            Item::new(tags::DATA, Value::bytes(kib)),
        ],
    );
    let check = kmip_call(&mut c, &encrypt).await?;
    anyhow::ensure!(
        kmip_ok(&check),
        "KMIP Encrypt failed: does the key policy grant the KMIP principal Encrypt?"
    );
    // Decrypt of that ciphertext: the data, IV and tag it answered.
    let payload = check
        .children_with(tags::BATCH_ITEM)
        .next()
        .and_then(|b| b.child(tags::RESPONSE_PAYLOAD))
        .context("KMIP Encrypt answered no payload")?;
    let field = |t| -> Result<Vec<u8>> {
        Ok(payload
            .child(t)
            .context("KMIP Encrypt answer lacks a field")?
            .byte_string()
            .map_err(|f| anyhow::anyhow!("KMIP Encrypt answer: {f:?}"))?
            .to_vec())
    };
    let decrypt = kmip_request(
        operation::DECRYPT,
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, &id),
            Item::structure(
                tags::CRYPTOGRAPHIC_PARAMETERS,
                vec![Item::enum_item(
                    tags::BLOCK_CIPHER_MODE,
                    block_cipher_mode::GCM,
                )],
            ),
            Item::new(tags::DATA, Value::bytes(field(tags::DATA)?)),
            Item::new(
                tags::IV_COUNTER_NONCE,
                Value::bytes(field(tags::IV_COUNTER_NONCE)?),
            ),
            Item::new(
                tags::AUTHENTICATED_ENCRYPTION_TAG,
                Value::bytes(field(tags::AUTHENTICATED_ENCRYPTION_TAG)?),
            ),
        ],
    );
    // Create of an AES-256 key (no name: each one is new), durable before the answer.
    let create = kmip_request(
        operation::CREATE,
        vec![
            Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
            Item::structure(
                tags::TEMPLATE_ATTRIBUTE,
                vec![
                    attr(
                        "Cryptographic Algorithm",
                        Value::Enumeration(cryptographic_algorithm::AES),
                    ),
                    attr("Cryptographic Length", Value::Integer(256)),
                    attr("Cryptographic Usage Mask", Value::Integer(0x0C)),
                ],
            ),
        ],
    );
    // Sign with P-256, RSA-2048 and Ed25519 private keys made by Create Key Pair (the
    // server's default parameters: ECDSA with SHA-256, RSA-PSS with SHA-256), over 32 bytes.
    let mut sign = Vec::new();
    for (label, algorithm, length) in [
        ("kmip-sign-p256", cryptographic_algorithm::EC, 256),
        ("kmip-sign-rsa", cryptographic_algorithm::RSA, 2048),
        ("kmip-sign-ed25519", cryptographic_algorithm::ED25519, 256),
    ] {
        let template = |tag, items| Item::structure(tag, items);
        let pair = kmip_call(
            &mut c,
            &kmip_request(
                operation::CREATE_KEY_PAIR,
                vec![
                    template(
                        tags::COMMON_TEMPLATE_ATTRIBUTE,
                        vec![
                            attr("Cryptographic Algorithm", Value::Enumeration(algorithm)),
                            attr("Cryptographic Length", Value::Integer(length)),
                        ],
                    ),
                    template(
                        tags::PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
                        vec![attr("Cryptographic Usage Mask", Value::Integer(0x01))],
                    ),
                    template(
                        tags::PUBLIC_KEY_TEMPLATE_ATTRIBUTE,
                        vec![attr("Cryptographic Usage Mask", Value::Integer(0x02))],
                    ),
                ],
            ),
        )
        .await?;
        let private = pair
            .children_with(tags::BATCH_ITEM)
            .next()
            .and_then(|b| b.child(tags::RESPONSE_PAYLOAD))
            .and_then(|p| p.child(tags::PRIVATE_KEY_UNIQUE_IDENTIFIER))
            .and_then(|i| i.text().ok())
            .context("KMIP Create Key Pair failed")?
            .to_owned();
        let act = kmip_call(
            &mut c,
            &kmip_request(
                operation::ACTIVATE,
                vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &private)],
            ),
        )
        .await?;
        anyhow::ensure!(kmip_ok(&act), "KMIP Activate of the {label} key failed");
        let msg = kmip_request(
            operation::SIGN,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &private),
                Item::new(tags::DATA, Value::bytes(vec![0x42u8; 32])),
            ],
        );
        let check = kmip_call(&mut c, &msg).await?;
        anyhow::ensure!(kmip_ok(&check), "KMIP Sign with the {label} key failed");
        sign.push((label, msg));
    }
    let kmip_op = |name, bytes: Vec<u8>| Op {
        name,
        method: "",
        path: String::new(),
        body: None,
        kmip: Some(Arc::new(bytes)),
        aws: None,
        fresh_name: false,
        mix: None,
    };
    Ok(vec![
        kmip_op(
            "kmip-query",
            kmip_request(
                operation::QUERY,
                vec![Item::enum_item(
                    tags::QUERY_FUNCTION,
                    query_function::QUERY_SERVER_INFORMATION,
                )],
            ),
        ),
        kmip_op("kmip-encrypt", encrypt),
        kmip_op("kmip-decrypt", decrypt),
        kmip_op("kmip-create", create),
        kmip_op(sign[0].0, sign[0].1.clone()),
        kmip_op(sign[1].0, sign[1].1.clone()),
        kmip_op(sign[2].0, sign[2].1.clone()),
        kmip_op(
            "kmip-get",
            kmip_request(
                operation::GET,
                vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &id)],
            ),
        ),
    ])
}

async fn setup(t: &Target) -> Result<Vec<Op>> {
    let mut s = connect(t).await?;
    for (name, spec, usage) in [
        ("loadgen-aes", "AES_256", "ENCRYPT_DECRYPT"),
        ("loadgen-p256", "ECC_NIST_P256", "SIGN_VERIFY"),
        ("loadgen-rsa", "RSA_2048", "SIGN_VERIFY"),
        ("loadgen-ed25519", "ED25519", "SIGN_VERIFY"),
    ] {
        let (st, _) = call(&mut s, t, "GET", &format!("/v1/keys/{name}"), None).await?;
        if st == 404 {
            let (st, body) = call(
                &mut s,
                t,
                "POST",
                "/v1/keys",
                Some(&json!({"name": name, "spec": spec, "usage": [usage]})),
            )
            .await?;
            // 409: another load generator (another node's) made it meanwhile.
            if st != 201 && st != 409 {
                bail!(
                    "cannot create {name}: {st} {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }
    let kib = base64::engine::general_purpose::STANDARD.encode(vec![0x61u8; 1024]);
    let (st, body) = call(
        &mut s,
        t,
        "POST",
        "/v1/keys/loadgen-aes/encrypt",
        Some(&json!({"plaintext": kib})),
    )
    .await?;
    if st != 200 {
        bail!(
            "setup encrypt failed: {st} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let ct: Value = serde_json::from_slice(&body)?;
    let mut ops = vec![
        Op {
            name: "noop",
            method: "GET",
            path: "/v1/whoami".into(),
            body: None,
            kmip: None,
            aws: None,
            fresh_name: false,
            mix: None,
        },
        Op {
            name: "encrypt",
            method: "POST",
            path: "/v1/keys/loadgen-aes/encrypt".into(),
            body: Some(json!({"plaintext": kib})),
            kmip: None,
            aws: None,
            fresh_name: false,
            mix: None,
        },
        Op {
            name: "decrypt",
            method: "POST",
            path: "/v1/decrypt".into(),
            body: Some(json!({"ciphertext": ct["ciphertext"]})),
            kmip: None,
            aws: None,
            fresh_name: false,
            mix: None,
        },
        Op {
            name: "data-key",
            method: "POST",
            path: "/v1/keys/loadgen-aes/generate-data-key".into(),
            body: Some(json!({})),
            kmip: None,
            aws: None,
            fresh_name: false,
            mix: None,
        },
        Op {
            name: "sign-p256",
            method: "POST",
            path: "/v1/keys/loadgen-p256/sign".into(),
            body: Some(
                json!({"message": base64::engine::general_purpose::STANDARD.encode(b"load generator message")}),
            ),
            kmip: None,
            aws: None,
            fresh_name: false,
            mix: None,
        },
        Op {
            name: "sign-rsa",
            method: "POST",
            path: "/v1/keys/loadgen-rsa/sign".into(),
            body: Some(
                json!({"message": base64::engine::general_purpose::STANDARD.encode(b"load generator message")}),
            ),
            kmip: None,
            aws: None,
            fresh_name: false,
            mix: None,
        },
    ];
    let rest_op = |name, path: &str, body: Value| Op {
        name,
        method: "POST",
        path: path.into(),
        body: Some(body),
        kmip: None,
        aws: None,
        fresh_name: false,
        mix: None,
    };
    ops.push(rest_op(
        "sign-ed25519",
        "/v1/keys/loadgen-ed25519/sign",
        json!({"message": base64::engine::general_purpose::STANDARD.encode(b"load generator message")}),
    ));
    // A durable key creation per request: an AES-256 key, committed (WAL, fsync) before
    // the answer, with its history and audit events.
    ops.push(Op {
        fresh_name: true,
        ..rest_op(
            "create-key",
            "/v1/keys",
            json!({"name": "", "spec": "AES_256"}),
        )
    });
    // A mixed workload: encrypt, decrypt, data key and P-256 signature in turn.
    let mix: Vec<Op> = ops
        .iter()
        .filter(|o| matches!(o.name, "encrypt" | "decrypt" | "data-key" | "sign-p256"))
        .cloned()
        .collect();
    ops.push(Op {
        mix: Some(Arc::new(mix)),
        ..rest_op("mixed", "", json!({}))
    });
    if let Some(k) = &t.kmip {
        ops.extend(kmip_setup(k, t).await?);
    }
    if let Some(a) = &t.aws {
        ops.extend(aws_setup(a, t).await?);
    }
    Ok(ops)
}

/// One KMIP connection's loop: the same request until the deadline or the budget ends.
async fn kmip_loop(
    t: &Target,
    k: &KmipTarget,
    msg: &[u8],
    deadline: Instant,
    budget: &std::sync::atomic::AtomicU64,
    mut pacer: Pacer,
) -> Result<(Vec<u64>, u64)> {
    let mut c = kmip_connect(k, t).await?;
    let mut lat = Vec::new();
    let mut errors = 0u64;
    while Instant::now() < deadline {
        if budget
            .fetch_update(
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
                |b| b.checked_sub(1),
            )
            .is_err()
        {
            break;
        }
        let t0 = pacer.wait().await;
        match kmip_call(&mut c, msg).await {
            Ok(r) if kmip_ok(&r) => lat.push(t0.elapsed().as_micros() as u64),
            Ok(_) => errors += 1,
            Err(_) => {
                errors += 1;
                c = kmip_connect(k, t).await?;
            }
        }
    }
    Ok((lat, errors))
}

#[derive(serde::Serialize)]
struct Report {
    op: String,
    connections: usize,
    requests: u64,
    errors: u64,
    seconds: f64,
    throughput_rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

async fn run_op(
    t: Arc<Target>,
    op: Op,
    conns: usize,
    dur: Duration,
    max: u64,
    rate: Option<f64>,
) -> Result<Report> {
    let budget = Arc::new(std::sync::atomic::AtomicU64::new(max));
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    // Names made by `create-key` are unique across runs and connections.
    let run = start.elapsed().as_nanos() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
    for conn in 0..conns {
        let t = t.clone();
        let op = op.clone();
        let budget = budget.clone();
        tasks.push(tokio::spawn(async move {
            let mut pacer = Pacer::new(rate, conns, conn, start);
            if let (Some(msg), Some(k)) = (op.kmip.clone(), t.kmip.as_ref()) {
                return kmip_loop(&t, k, &msg, deadline, &budget, pacer).await;
            }
            let aws = op.aws.clone().zip(t.aws.as_ref());
            let to_aws = aws.is_some();
            let reconnect = |t: Arc<Target>| async move {
                match t.aws.as_ref().filter(|_| to_aws) {
                    Some(a) => connect_to(&t, &a.host, a.port).await,
                    None => connect(&t).await,
                }
            };
            let mut s = reconnect(t.clone()).await?;
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                if budget
                    .fetch_update(
                        std::sync::atomic::Ordering::Relaxed,
                        std::sync::atomic::Ordering::Relaxed,
                        |b| b.checked_sub(1),
                    )
                    .is_err()
                {
                    break;
                }
                let t0 = pacer.wait().await;
                n += 1;
                let r = match (&aws, &op.mix) {
                    (Some((req, _)), _) => aws_call(&mut s, req).await,
                    (None, Some(mix)) => {
                        let o = &mix[n as usize % mix.len()];
                        call(&mut s, &t, o.method, &o.path, o.body.as_ref()).await
                    }
                    (None, None) if op.fresh_name => {
                        let mut body = op.body.clone().unwrap_or_default();
                        body["name"] = json!(format!("loadgen-{run}-{conn}-{n}"));
                        call(&mut s, &t, op.method, &op.path, Some(&body)).await
                    }
                    (None, None) => call(&mut s, &t, op.method, &op.path, op.body.as_ref()).await,
                };
                match r {
                    Ok((st, _)) if (200..300).contains(&st) => {
                        lat.push(t0.elapsed().as_micros() as u64)
                    }
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        s = reconnect(t.clone()).await?;
                    }
                }
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await??;
        all.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        all[i] as f64 / 1000.0
    };
    Ok(Report {
        op: op.name.to_string(),
        connections: conns,
        requests: all.len() as u64,
        errors,
        seconds: secs,
        throughput_rps: all.len() as f64 / secs,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: all.last().map(|m| *m as f64 / 1000.0).unwrap_or(0.0),
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.connections >= 1 && args.connections <= 1024,
        "--connections must be 1 to 1024"
    );
    anyhow::ensure!(
        args.duration >= 1 && args.duration <= 3600,
        "--duration must be 1 to 3600 seconds"
    );
    let t = Arc::new(resolve(&args)?);
    let ops = setup(&t).await?;
    let chosen: Vec<Op> = if args.op == "all" {
        ops
    } else {
        let o = ops
            .into_iter()
            .find(|o| o.name == args.op)
            .with_context(|| format!("unknown --op {}", args.op))?;
        vec![o]
    };
    let mut reports = Vec::new();
    if !args.json {
        println!(
            "{:<16} {:>5} {:>9} {:>6} {:>10} {:>9} {:>9} {:>9}",
            "op", "conns", "requests", "errors", "req/s", "p50 ms", "p99 ms", "max ms"
        );
    }
    for op in chosen {
        let r = run_op(
            t.clone(),
            op,
            args.connections,
            Duration::from_secs(args.duration),
            args.max_requests,
            args.rate,
        )
        .await?;
        if !args.json {
            println!(
                "{:<16} {:>5} {:>9} {:>6} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
                r.op,
                r.connections,
                r.requests,
                r.errors,
                r.throughput_rps,
                r.p50_ms,
                r.p99_ms,
                r.max_ms
            );
        }
        reports.push(r);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    if reports.iter().any(|r| r.errors > 0) {
        bail!("some requests failed");
    }
    Ok(())
}
