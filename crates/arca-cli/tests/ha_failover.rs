//! Failure under load, with real processes: two `arca serve` nodes on one PostgreSQL (started
//! by the test), a client that retries on the other node, and then
//! - one node killed with SIGKILL mid-load: nothing acknowledged is lost, every acknowledged
//!   ciphertext decrypts on the survivor, and the audit chain verifies;
//! - PostgreSQL restarted mid-load: both nodes reconnect by themselves;
//! - PostgreSQL stopped mid-load: `/readyz` says not ready, requests get 503 (none served
//!   without its audit event), and the nodes serve again by themselves once it is back;
//! - PostgreSQL stopped, then SIGTERM: each node exits within its shutdown bounds, non-zero,
//!   naming what it could not save, which the next start records in the trail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
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
/// files) and the shared store, with more `ARCA_*` settings (`env`).
fn start_node_with(data: &Path, store_url: &str, env: &[(&str, &str)]) -> Node {
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
        .envs(env.iter().copied())
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
    cluster_with(pg, db, &[]).await
}

/// [`cluster`] with more `ARCA_*` settings for both nodes.
async fn cluster_with(pg: &TestPostgres, db: &str, env: &[(&str, &str)]) -> Cluster {
    let store_url = pg.database(db).await;
    let tmp = tempfile::tempdir().unwrap();
    let (da, db_) = (tmp.path().join("a/data"), tmp.path().join("b/data"));
    std::fs::create_dir_all(da.parent().unwrap()).unwrap();
    let a = start_node_with(&da, &store_url, env);
    clone_data_dir(&da, &db_);
    let b = start_node_with(&db_, &store_url, env);
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

/// One answer to the outage load.
struct Answer {
    id: String,
    node: usize,
    sent: Instant,
    answered: Instant,
    /// The HTTP status, or none if the node did not answer (within 15 s).
    status: Option<u16>,
    code: Value,
}

/// Encrypts under the shared key on each node in turn, every request with its own id, until
/// `stop`; returns every answer.
async fn outage_load(c: Client, workers: usize, stop: Arc<AtomicBool>) -> Vec<Answer> {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (c, stop) = (c.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut j = 0usize;
            while !stop.load(Ordering::Relaxed) {
                j += 1;
                let node = (w + j) % c.urls.len();
                let id = format!("outage-{w}-{j}");
                let sent = Instant::now();
                let r = c
                    .http
                    .post(format!("{}/v1/keys/shared/encrypt", c.urls[node]))
                    .bearer_auth(&c.token)
                    .header("x-request-id", &id)
                    .json(&json!({"plaintext": b64(id.as_bytes())}))
                    // Longer than any wait of the server's: every request gets its answer.
                    .timeout(Duration::from_secs(15))
                    .send()
                    .await;
                let (status, code) = match r {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let v = r.json::<Value>().await.unwrap_or(Value::Null);
                        (Some(status), v["error"]["code"].clone())
                    }
                    Err(_) => (None, Value::Null),
                };
                out.push(Answer {
                    id,
                    node,
                    sent,
                    answered: Instant::now(),
                    status,
                    code,
                });
                if status != Some(200) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

/// `/readyz` of node `node`: its status (none if no answer) and body.
async fn readyz(c: &Client, node: usize) -> (Option<u16>, Value) {
    match c.http.get(format!("{}/readyz", c.urls[node])).send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            (Some(s), r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (None, Value::Null),
    }
}

/// Waits until every node's `/readyz` answers `want` (the nodes polled side by side), for
/// up to `within`; returns when each did.
async fn readyz_becomes(c: &Client, want: u16, within: Duration) -> Vec<Instant> {
    let t0 = Instant::now();
    let polls: Vec<_> = (0..c.urls.len())
        .map(|node| {
            let c = c.clone();
            tokio::spawn(async move {
                loop {
                    let (s, v) = readyz(&c, node).await;
                    if s == Some(want) {
                        if want == 503 {
                            assert_eq!(v["error"]["code"], "unavailable", "{v}");
                        }
                        return Instant::now();
                    }
                    assert!(
                        t0.elapsed() < within,
                        "/readyz of node {node} did not answer {want} within {within:?}: {s:?} {v}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        })
        .collect();
    let mut when = Vec::new();
    for p in polls {
        when.push(p.await.unwrap());
    }
    when
}

/// Every event of the shared trail.
async fn trail(store_url: &str) -> Vec<arca_core::audit::AuditEvent> {
    let store = arca_store::open(Some(store_url), Path::new(""))
        .await
        .unwrap();
    let events = arca_service::trail::read_all(store.as_ref()).await.unwrap();
    store.close().await;
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_down_nodes_are_not_ready_and_refuse_with_503() {
    let pg = Arc::new(TestPostgres::start());
    let c = cluster(&pg, "outage").await;
    readyz_becomes(&c.client, 200, Duration::from_secs(5)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(outage_load(c.client.clone(), 4, stop.clone()));
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.stop()).await.unwrap();
    let stopped = Instant::now();
    // Not ready within a few seconds: a load balancer takes the nodes out.
    let not_ready = readyz_becomes(&c.client, 503, Duration::from_secs(8)).await;
    eprintln!(
        "not ready after {:?}",
        not_ready
            .iter()
            .map(|t| t.duration_since(stopped))
            .collect::<Vec<_>>()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let outage_end = Instant::now();
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.start_again())
        .await
        .unwrap();
    let restarted = Instant::now();
    // Ready again by themselves, and serving.
    let ready = readyz_becomes(&c.client, 200, Duration::from_secs(15)).await;
    eprintln!(
        "ready again after {:?}",
        ready
            .iter()
            .map(|t| t.duration_since(restarted))
            .collect::<Vec<_>>()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let answers = loader.await.unwrap();
    // One ERROR line for the outage, not one per refused request.
    for n in &c.nodes {
        let log = std::fs::read_to_string(n.dir.join("serve.log")).unwrap();
        let errors = log.lines().filter(|l| l.contains("ERROR")).count();
        assert!(errors <= 3, "{errors} ERROR lines:\n{log}");
    }

    let during: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.sent > not_ready[a.node] && a.answered < outage_end)
        .collect();
    let after: Vec<&Answer> = answers.iter().filter(|a| a.sent > ready[a.node]).collect();
    let slowest = during
        .iter()
        .map(|a| a.answered.duration_since(a.sent))
        .max()
        .unwrap_or_default();
    eprintln!(
        "{} requests: {} while not ready (slowest answer {slowest:?}), {} after",
        answers.len(),
        during.len(),
        after.len()
    );
    assert!(!during.is_empty(), "no request was sent during the outage");
    for a in &during {
        assert_eq!(
            (a.status, a.code.as_str()),
            (Some(503), Some("unavailable")),
            "{} on node {} while the store was down",
            a.id,
            a.node
        );
    }
    for node in 0..2 {
        assert!(
            after
                .iter()
                .any(|a| a.node == node && a.status == Some(200)),
            "node {node} served nothing once the store was back"
        );
    }
    for a in &answers {
        assert!(
            matches!(a.status, Some(200) | Some(503)),
            "{} on node {}: {:?} {}",
            a.id,
            a.node,
            a.status,
            a.code
        );
    }

    // No success without its audit event; each node's trail says the outage ended and how
    // many events it cost.
    let events = trail(&c.store_url).await;
    let ids: std::collections::HashSet<&str> =
        events.iter().map(|e| e.request_id.as_str()).collect();
    for a in answers.iter().filter(|a| a.status == Some(200)) {
        assert!(
            ids.contains(a.id.as_str()),
            "{} was served without its audit event",
            a.id
        );
    }
    let resumed: Vec<_> = events
        .iter()
        .filter(|e| e.operation == "ResumeAudit")
        .collect();
    assert!(resumed.len() >= 2, "one ResumeAudit per node: {resumed:?}");
    for e in &resumed {
        assert!(e.detail["events_not_stored"].is_u64(), "{:?}", e.detail);
    }
    verify_audit(&c.store_url, c.nodes[0].dir.as_path());

    // The outage is accounted for in the trail: a stop now is complete (status 0).
    let mut c = c;
    for n in &c.nodes {
        let st = Command::new("kill")
            .args(["-TERM", &n.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
    for (i, n) in c.nodes.iter_mut().enumerate() {
        let status = n.child.wait().unwrap();
        let log = std::fs::read_to_string(n.dir.join("serve.log")).unwrap();
        assert!(status.success(), "node {i}: {status:?}\n{log}");
        assert!(!log.contains("shutdown incomplete"), "node {i}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_stop_within_their_bounds_while_postgres_is_down() {
    let pg = Arc::new(TestPostgres::start());
    let env = [
        ("ARCA_SERVER__SHUTDOWN_GRACE_SECS", "3"),
        ("ARCA_SERVER__SHUTDOWN_FLUSH_SECS", "3"),
    ];
    let mut c = cluster_with(&pg, "shutdown", &env).await;
    let stop = Arc::new(AtomicBool::new(false));
    let loader = tokio::spawn(outage_load(c.client.clone(), 4, stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.stop()).await.unwrap();
    let sent = Instant::now();
    for n in &c.nodes {
        let st = Command::new("kill")
            .args(["-TERM", &n.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
    // Bounds 3 s + 3 s (and at most a second to close the store): well within 20 s.
    let mut exits = Vec::new();
    for n in &mut c.nodes {
        let status = loop {
            if let Some(st) = n.child.try_wait().unwrap() {
                break st;
            }
            assert!(
                sent.elapsed() < Duration::from_secs(20),
                "a node still runs {:?} after SIGTERM: {}",
                sent.elapsed(),
                std::fs::read_to_string(n.dir.join("serve.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        exits.push((status, sent.elapsed()));
    }
    eprintln!("exits after SIGTERM: {exits:?}");
    stop.store(true, Ordering::Relaxed);
    loader.await.unwrap();
    for (i, (status, _)) in exits.iter().enumerate() {
        let log = std::fs::read_to_string(c.nodes[i].dir.join("serve.log")).unwrap();
        assert_eq!(status.code(), Some(4), "node {i}: {status:?}\n{log}");
        let line = log
            .lines()
            .find(|l| l.contains("ERROR") && l.contains("shutdown incomplete"))
            .unwrap_or_else(|| panic!("node {i} did not say what it could not save:\n{log}"));
        assert!(
            line.contains("audit events were not stored")
                && line.contains("no closing checkpoint was signed"),
            "{line}"
        );
        eprintln!("node {i}: {line}");
    }

    // PostgreSQL back, the nodes restarted: the trail verifies, and each node's StartServer
    // event records what its last shutdown did not do.
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.start_again())
        .await
        .unwrap();
    for i in 0..2 {
        let dir = c.nodes[i].dir.clone();
        c.nodes[i] = start_node_with(&dir.join("data"), &c.store_url, &env);
    }
    let events = trail(&c.store_url).await;
    let reports: Vec<_> = events
        .iter()
        .filter(|e| e.operation == "StartServer")
        .filter_map(|e| e.detail.get("last_shutdown_incomplete"))
        .collect();
    assert_eq!(reports.len(), 2, "{reports:?}");
    for r in reports {
        assert!(r["events_not_stored"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["no_closing_checkpoint"], true, "{r}");
    }
    verify_audit(&c.store_url, c.nodes[0].dir.as_path());
}
