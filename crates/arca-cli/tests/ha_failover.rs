//! Failure under load, with real processes: two `arca serve` nodes on one PostgreSQL (started
//! by the test), a client that retries on the other node, and then
//! - one node killed with SIGKILL mid-load: nothing acknowledged is lost, every acknowledged
//!   ciphertext decrypts on the survivor, and the audit chain verifies;
//! - PostgreSQL restarted mid-load: both nodes reconnect by themselves.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arca_store::testing::TestPostgres;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_arca");

/// One `arca serve` process; killed when dropped.
struct Node {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a node on `data` (which may hold copies of another node's unseal key and TLS
/// files) and the shared store.
fn start_node(data: &Path, store_url: &str) -> Node {
    let dir = data.parent().unwrap().to_path_buf();
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ARCA_") {
            c.env_remove(k);
        }
    }
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let mut child = c
        .env("ARCA_PROFILE_FILE", dir.join("profile.toml"))
        .env("ARCA_STORE__URL", store_url)
        .env("ARCA_LOG__LEVEL", "info")
        .current_dir(&dir)
        .arg("serve")
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("cannot start arca serve");
    let url = common::served_url(&mut child, &dir.join("serve.log"));
    Node { child, url, dir }
}

/// A second node's data dir: its own, with the first node's unseal-key file and TLS files
/// (docs/ha.md: every node of a dev-mode cluster holds the same unseal key).
fn clone_data_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("tls")).unwrap();
    std::fs::copy(from.join("unseal.key"), to.join("unseal.key")).unwrap();
    for f in std::fs::read_dir(from.join("tls")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join("tls").join(f.file_name())).unwrap();
    }
}

/// The admin's token from the profile the first start wrote.
fn admin_token(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("profile.toml")).expect("profile");
    text.lines()
        .find(|l| l.trim_start().starts_with("token"))
        .and_then(|l| l.split('"').nth(1))
        .expect("a token")
        .to_string()
}

/// A client that sends each request to a preferred node and, when that node does not
/// answer (or answers 5xx), to the next, as a load balancer's health check would.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    urls: Vec<String>,
    token: String,
}

impl Client {
    fn new(ca: &Path, urls: Vec<String>, token: String) -> Client {
        let ca = std::fs::read(ca).unwrap();
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        Client { http, urls, token }
    }

    /// One attempt on node `i`.
    async fn once(
        &self,
        i: usize,
        method: Method,
        path: &str,
        body: &Option<Value>,
    ) -> Option<(StatusCode, Value)> {
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.urls[i], path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.ok()?;
        let status = r.status();
        let v = r.json::<Value>().await.unwrap_or(Value::Null);
        (!status.is_server_error()).then_some((status, v))
    }

    /// Tries every node in turn, from `first`, for up to 20 s.
    async fn call(
        &self,
        first: usize,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<(StatusCode, Value)> {
        let t0 = Instant::now();
        let mut i = first;
        while t0.elapsed() < Duration::from_secs(20) {
            if let Some(r) = self
                .once(i % self.urls.len(), method.clone(), path, &body)
                .await
            {
                return Some(r);
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// What the client was told succeeded.
#[derive(Default)]
struct Acked {
    keys: Vec<String>,
    ciphertexts: Vec<(Value, Vec<u8>)>,
    /// The highest version number a rotation of the shared key answered with.
    rotated_to: u64,
    /// Successful requests, and those after `mark` was set.
    ok: u64,
    ok_after_mark: [u64; 2],
}

/// Runs `workers` clients for `secs` seconds: each creates keys, encrypts under them and
/// under the shared key, and now and then rotates the shared key.
async fn load(
    c: &Client,
    workers: usize,
    secs: u64,
    acked: Arc<Mutex<Acked>>,
    mark: Arc<Mutex<bool>>,
) {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let c = c.clone();
        let acked = acked.clone();
        let mark = mark.clone();
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let mut j = 0u64;
            while t0.elapsed() < Duration::from_secs(secs) {
                j += 1;
                let node = (w + j as usize) % c.urls.len();
                let note = |a: &mut Acked| {
                    a.ok += 1;
                    if *mark.lock().unwrap() {
                        a.ok_after_mark[node] += 1;
                    }
                };
                let name = format!("w{w}-{j}");
                match c
                    .call(node, Method::POST, "/v1/keys", Some(json!({"name": name})))
                    .await
                {
                    Some((StatusCode::CREATED, _)) => {
                        let mut a = acked.lock().unwrap();
                        a.keys.push(name.clone());
                        note(&mut a);
                    }
                    // A retry of a create the dead node committed but never answered.
                    Some((StatusCode::CONFLICT, _)) => continue,
                    other => panic!("create {name}: {other:?}"),
                }
                for key in [name.as_str(), "shared"] {
                    let pt = format!("{key}/{w}/{j}").repeat(30).into_bytes();
                    match c
                        .call(
                            node,
                            Method::POST,
                            &format!("/v1/keys/{key}/encrypt"),
                            Some(json!({"plaintext": b64(&pt)})),
                        )
                        .await
                    {
                        Some((StatusCode::OK, v)) => {
                            let mut a = acked.lock().unwrap();
                            a.ciphertexts.push((v["ciphertext"].clone(), pt));
                            note(&mut a);
                        }
                        other => panic!("encrypt under {key}: {other:?}"),
                    }
                }
                if j.is_multiple_of(8) {
                    match c
                        .call(
                            node,
                            Method::POST,
                            "/v1/keys/shared/rotate",
                            Some(json!({})),
                        )
                        .await
                    {
                        Some((StatusCode::OK, v)) => {
                            let mut a = acked.lock().unwrap();
                            let n = v["primary_version"].as_u64().expect("a version number");
                            a.rotated_to = a.rotated_to.max(n);
                            note(&mut a);
                        }
                        // Two workers rotating at once: one loses the race, as it should.
                        Some((StatusCode::CONFLICT, _)) => {}
                        other => panic!("rotate: {other:?}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Everything acknowledged is there and decrypts, asking only node `node`.
async fn check_acked(c: &Client, node: usize, acked: &Acked) {
    for name in &acked.keys {
        let got = c
            .once(node, Method::GET, &format!("/v1/keys/{name}"), &None)
            .await;
        assert_eq!(
            got.map(|g| g.0),
            Some(StatusCode::OK),
            "acknowledged key {name} lost"
        );
    }
    for (ct, pt) in &acked.ciphertexts {
        let got = c
            .once(
                node,
                Method::POST,
                "/v1/decrypt",
                &Some(json!({"ciphertext": ct})),
            )
            .await
            .expect("the node answers");
        assert_eq!(
            got.0,
            StatusCode::OK,
            "an acknowledged ciphertext does not decrypt: {}",
            got.1
        );
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(got.1["plaintext"].as_str().unwrap())
                .unwrap(),
            *pt
        );
    }
    let (_, versions) = c
        .once(node, Method::GET, "/v1/keys/shared/versions", &None)
        .await
        .unwrap();
    let n = versions.as_array().map(|v| v.len() as u64).unwrap_or(0);
    assert!(
        n >= acked.rotated_to,
        "rotations lost: {n} versions, {} acknowledged",
        acked.rotated_to
    );
}

/// `arca audit verify --store-url`: every link and checkpoint signature of the shared trail.
fn verify_audit(store_url: &str, dir: &Path) {
    let out = Command::new(BIN)
        .env_remove("ARCA_STORE__URL")
        .current_dir(dir)
        .args(["audit", "verify", "--store-url", store_url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the audit chain does not verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Cluster {
    _pg_dir: tempfile::TempDir,
    nodes: Vec<Node>,
    client: Client,
    store_url: String,
}

async fn cluster(pg: &TestPostgres, db: &str) -> Cluster {
    let store_url = pg.database(db).await;
    let tmp = tempfile::tempdir().unwrap();
    let (da, db_) = (tmp.path().join("a/data"), tmp.path().join("b/data"));
    std::fs::create_dir_all(da.parent().unwrap()).unwrap();
    let a = start_node(&da, &store_url);
    clone_data_dir(&da, &db_);
    let b = start_node(&db_, &store_url);
    let client = Client::new(
        &da.join("tls/ca.pem"),
        vec![a.url.clone(), b.url.clone()],
        admin_token(&a.dir),
    );
    let (s, v) = client
        .call(0, Method::POST, "/v1/keys", Some(json!({"name": "shared"})))
        .await
        .unwrap();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    Cluster {
        _pg_dir: tmp,
        nodes: vec![a, b],
        client,
        store_url,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_load_loses_nothing_acknowledged() {
    let pg = TestPostgres::start();
    let mut c = cluster(&pg, "kill").await;
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mark = Arc::new(Mutex::new(false));
    let loader = {
        let (client, acked, mark) = (c.client.clone(), acked.clone(), mark.clone());
        tokio::spawn(async move { load(&client, 4, 6, acked, mark).await })
    };
    tokio::time::sleep(Duration::from_millis(2000)).await;
    // SIGKILL: no shutdown, no flush, transactions cut wherever they are.
    c.nodes[0].child.kill().unwrap();
    c.nodes[0].child.wait().unwrap();
    *mark.lock().unwrap() = true;
    loader.await.unwrap();

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    eprintln!(
        "acknowledged: {} requests, {} keys, {} ciphertexts, shared key rotated to v{}; {} after the kill",
        acked.ok,
        acked.keys.len(),
        acked.ciphertexts.len(),
        acked.rotated_to,
        acked.ok_after_mark.iter().sum::<u64>()
    );
    assert!(
        acked.ok_after_mark.iter().sum::<u64>() > 0,
        "the survivor kept serving"
    );
    assert!(!acked.keys.is_empty());
    check_acked(&c.client, 1, &acked).await;
    verify_audit(&c.store_url, c.nodes[1].dir.as_path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_recover_by_themselves_after_a_postgres_restart() {
    let pg = TestPostgres::start();
    let c = cluster(&pg, "restart").await;
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mark = Arc::new(Mutex::new(false));
    let loader = {
        let (client, acked, mark) = (c.client.clone(), acked.clone(), mark.clone());
        tokio::spawn(async move { load(&client, 4, 8, acked, mark).await })
    };
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let pg = Arc::new(pg);
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.restart())
        .await
        .unwrap();
    *mark.lock().unwrap() = true;
    loader.await.unwrap();

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    eprintln!(
        "acknowledged: {} requests; after the restart {:?} per node",
        acked.ok, acked.ok_after_mark
    );
    // Both nodes serve again without being restarted.
    for node in 0..2 {
        assert!(
            acked.ok_after_mark[node] > 0,
            "node {node} served nothing after the restart"
        );
        let (s, v) = c
            .client
            .once(
                node,
                Method::POST,
                "/v1/keys/shared/encrypt",
                &Some(json!({"plaintext": b64(b"x")})),
            )
            .await
            .expect("the node answers");
        assert_eq!(s, StatusCode::OK, "node {node}: {v}");
    }
    check_acked(&c.client, 0, &acked).await;
    check_acked(&c.client, 1, &acked).await;
    // The change feed came back too: a suspension on one node reaches the other.
    let (s, v) = c
        .client
        .once(
            0,
            Method::POST,
            "/v1/keys/shared/suspend",
            &Some(json!({"reason": "test"})),
        )
        .await
        .unwrap();
    assert_eq!(s, StatusCode::OK, "{v}");
    let t0 = Instant::now();
    loop {
        let (s, _) = c
            .client
            .once(
                1,
                Method::POST,
                "/v1/keys/shared/encrypt",
                &Some(json!({"plaintext": b64(b"x")})),
            )
            .await
            .unwrap();
        if s == StatusCode::CONFLICT {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "node 1 still uses a suspended key"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    verify_audit(&c.store_url, c.nodes[1].dir.as_path());
}
