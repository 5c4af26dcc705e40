//! Test harness: a real Arca server on a temp data dir, reached over real HTTPS with the dev
//! CA it generated, with an injectable clock and captured logs.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

pub mod kmip;

use arca_server::{Config, Running};
use arca_service::ManualClock;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Everything the server process logged, at every level, for secrecy checks.
pub static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;
impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

pub fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("valid base64")
}

pub struct TestServer {
    pub running: Option<Running>,
    pub url: String,
    pub client: reqwest::Client,
    pub token: String,
    /// The system operator's token (system tenant).
    pub operator_token: String,
    pub data_dir: PathBuf,
    pub clock: Arc<ManualClock>,
    _tmp: Option<tempfile::TempDir>,
}

pub fn config(dir: &Path) -> Config {
    let mut c = Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        ..Default::default()
    };
    c.service.lifecycle_interval_secs = 3600; // tests run the task themselves
    c
}

async fn launch(
    dir: &Path,
    clock: Arc<ManualClock>,
    tweak: &dyn Fn(&mut Config),
) -> (Running, String, reqwest::Client) {
    init_logs();
    let mut cfg = config(dir);
    tweak(&mut cfg);
    let running = arca_server::start_with_clock(&cfg, clock)
        .await
        .expect("server starts");
    let url = format!("https://127.0.0.1:{}", running.addr.port());
    let ca = std::fs::read(running.ca_cert.as_ref().expect("dev CA")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    (running, url, client)
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// A server whose configuration the test adjusts first.
    pub async fn start_with(tweak: impl Fn(&mut Config)) -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let clock = Arc::new(ManualClock::new());
        let (running, url, client) = launch(&dir, clock.clone(), &tweak).await;
        let first = running.first_start.as_ref().expect("first start");
        let token = first
            .admin
            .as_ref()
            .expect("default tenant")
            .2
            .token
            .to_string();
        let operator_token = first
            .operator
            .as_ref()
            .expect("system tenant")
            .1
            .token
            .to_string();
        TestServer {
            running: Some(running),
            url,
            client,
            token,
            operator_token,
            data_dir: dir,
            clock,
            _tmp: Some(tmp),
        }
    }

    /// Stops the server and starts a new one on the same data dir.
    pub async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        let (running, url, client) = launch(&self.data_dir, self.clock.clone(), &|_| {}).await;
        assert!(
            running.first_start.is_none(),
            "a restart must not re-bootstrap"
        );
        self.running = Some(running);
        self.url = url;
        self.client = client;
    }

    pub fn service(&self) -> &Arc<arca_service::Service> {
        &self.running.as_ref().unwrap().service
    }

    /// The server's current time.
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        arca_service::Clock::now(&*self.clock)
    }

    /// Moves time and runs the lifecycle task once.
    pub async fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
        self.service().run_due().await.expect("lifecycle task");
    }

    pub async fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .client
            .request(method, format!("{}{}", self.url, path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request sent");
        let status = r.status();
        let text = r.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("non-JSON answer {status}: {text}"))
        };
        (status, v)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.req(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.req(reqwest::Method::GET, path, None).await
    }

    /// POST that must succeed; returns the body.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let (s, v) = self.post(path, body).await;
        assert!(s.is_success(), "POST {path} answered {s}: {v}");
        v
    }

    pub async fn create(&self, body: Value) -> Value {
        let (s, v) = self.post("/v1/keys", body.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "create {body}: {v}");
        v
    }

    pub async fn encrypt(&self, key: &str, pt: &[u8]) -> (StatusCode, Value) {
        self.post(
            &format!("/v1/keys/{key}/encrypt"),
            json!({"plaintext": b64(pt)}),
        )
        .await
    }

    pub async fn decrypt(&self, ct: &Value) -> (StatusCode, Value) {
        self.post("/v1/decrypt", json!({"ciphertext": ct})).await
    }

    /// A second handle on the same server (another token, same client); it must not be
    /// shut down itself.
    pub fn clone_handle(&self) -> TestServer {
        TestServer {
            running: None,
            url: self.url.clone(),
            client: self.client.clone(),
            token: self.token.clone(),
            operator_token: self.operator_token.clone(),
            data_dir: self.data_dir.clone(),
            clock: self.clock.clone(),
            _tmp: None,
        }
    }

    /// The CA certificate (PEM) of the dev CA that signed the server's certificate.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.data_dir.join("tls").join("ca.pem")).expect("dev CA")
    }

    /// A handle that calls with another credential.
    pub fn with_token(&self, token: &str) -> TestServer {
        let mut h = self.clone_handle();
        h.token = token.to_string();
        h
    }

    /// The system operator's handle.
    pub fn operator(&self) -> TestServer {
        self.with_token(&self.operator_token.clone())
    }

    /// Creates a principal in the admin's tenant and returns a handle with its new token.
    pub async fn principal(&self, name: &str, roles: &[&str], groups: &[&str]) -> TestServer {
        let (s, v) = self
            .post(
                "/v1/principals",
                json!({"name": name, "roles": roles, "groups": groups}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "create principal {name}: {v}");
        let t = self
            .ok(&format!("/v1/principals/{name}/tokens"), json!({}))
            .await;
        self.with_token(t["token"].as_str().unwrap())
    }

    /// Sets the tenant's default key policy for the keys created next: the tenant
    /// administrators everything, and the principals named the `actions` (what a
    /// delegated door's principal needs on its keys).
    pub async fn default_key_policy_for(&self, principals: &[&str], actions: &[&str]) {
        let principals: Vec<String> = principals
            .iter()
            .map(|p| format!("principal:{p}"))
            .collect();
        let (st, v) = self
            .req(
                reqwest::Method::PUT,
                "/v1/tenant/settings",
                Some(json!({"default_key_policy": [
                    {"effect": "allow", "principals": ["role:tenant-admin"], "actions": ["*"]},
                    {"effect": "allow", "principals": principals, "actions": actions}
                ]})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }

    /// Another node on this server's shared store (PostgreSQL): a data dir of its own with
    /// copies of the unseal-key file and the TLS files (docs/ha.md), its own clock and
    /// caches; the same tokens work on it.
    pub async fn second_node(&self, tweak: impl Fn(&mut Config)) -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir_all(dir.join("tls")).unwrap();
        std::fs::copy(self.data_dir.join("unseal.key"), dir.join("unseal.key")).unwrap();
        for f in std::fs::read_dir(self.data_dir.join("tls")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), dir.join("tls").join(f.file_name())).unwrap();
        }
        let clock = Arc::new(ManualClock::new());
        let (running, url, client) = launch(&dir, clock.clone(), &tweak).await;
        assert!(running.first_start.is_none(), "the store was bootstrapped");
        TestServer {
            running: Some(running),
            url,
            client,
            token: self.token.clone(),
            operator_token: self.operator_token.clone(),
            data_dir: dir,
            clock,
            _tmp: Some(tmp),
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// Asserts an error answer: status, code and (when given) the field it names.
pub fn assert_error(
    got: &(StatusCode, Value),
    status: StatusCode,
    code: &str,
    field: Option<&str>,
) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
    if let Some(f) = field {
        assert_eq!(got.1["error"]["field"], f, "{}", got.1);
    }
}

/// The SoftHSM2 PKCS#11 module (Debian `softhsm2`).
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A throw-away SoftHSM2 token labelled `label` (user PIN 4321) under `dir`; returns the
/// configuration file to put in `SOFTHSM2_CONF`. Fails loudly when SoftHSM2 is missing.
pub fn softhsm(dir: &Path, label: &str) -> std::path::PathBuf {
    assert!(
        Path::new(MODULE).exists(),
        "SoftHSM2 is not installed ({MODULE} missing): run scripts/test, which installs it"
    );
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            "4321",
            "--so-pin",
            "8765",
        ])
        .output()
        .expect("softhsm2-util runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    conf
}

/// An identity provider's signing key (Ed25519, key id `k1`) and its JWKS: signs the JWTs
/// the tests present (REST bearer tokens, Microsoft DKE's Entra tokens).
pub struct Idp {
    pub pair: aws_lc_rs::signature::Ed25519KeyPair,
    pub pkcs8: Vec<u8>,
}

impl Idp {
    pub fn new() -> Self {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .unwrap()
            .as_ref()
            .to_vec();
        Idp {
            pair: aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap(),
            pkcs8,
        }
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA", "use": "sig",
            "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::signature::KeyPair::public_key(&self.pair).as_ref())}]})
    }

    pub fn token(&self, claims: Value) -> String {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        h.kid = Some("k1".into());
        jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(&self.pkcs8),
        )
        .unwrap()
    }
}

impl Default for Idp {
    fn default() -> Self {
        Idp::new()
    }
}
