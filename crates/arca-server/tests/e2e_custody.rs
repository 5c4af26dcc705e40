//! Split-key custody end to end: `arca init` splits the root key among custodians; every
//! start is sealed; M-1 shares do not unseal, a wrong share is named at once, M shares
//! unseal and the keys work again; sealing forgets the root key.

mod common;

use std::sync::Arc;

use arca_service::custody::{parse_share, CustodianSpec};
use arca_service::ManualClock;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

struct Node {
    running: arca_server::Running,
    url: String,
    client: reqwest::Client,
    clock: Arc<ManualClock>,
}

async fn start(cfg: &arca_server::Config) -> Node {
    init_logs();
    let clock = Arc::new(ManualClock::new());
    let running = arca_server::start_with_clock(cfg, clock.clone())
        .await
        .expect("server starts");
    let ca = std::fs::read(cfg.data_dir.join("tls").join("ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    Node {
        url: format!("https://127.0.0.1:{}", running.addr.port()),
        running,
        client,
        clock,
    }
}

impl Node {
    async fn call(
        &self,
        m: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self.client.request(m, format!("{}{}", self.url, path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let st = r.status();
        let t = r.text().await.unwrap();
        (
            st,
            if t.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&t).unwrap()
            },
        )
    }
    async fn unseal(&self, share: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/v1/sys/unseal",
            None,
            Some(json!({ "share": share })),
        )
        .await
    }
    async fn status(&self) -> Value {
        self.call(Method::GET, "/v1/sys/status", None, None).await.1
    }
}

fn custodians(names: &[&str]) -> Vec<CustodianSpec> {
    names
        .iter()
        .map(|n| CustodianSpec {
            name: n.to_string(),
            rsa_public_key: None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shamir_init_sealed_start_unseal_seal_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&tmp.path().join("data"));
    let (shares, first) = arca_server::init_custody(
        &cfg,
        3,
        custodians(&["alice", "bob", "carol", "dave", "erin"]),
        false,
    )
    .await
    .unwrap();
    assert_eq!(shares.len(), 5);
    let share = |name: &str| {
        shares
            .iter()
            .find(|s| s.custodian == name)
            .unwrap()
            .text
            .to_string()
    };
    let first = first.expect("init bootstraps the tenants");
    let admin = first.admin.as_ref().unwrap().2.token.to_string();
    let operator = first.operator.as_ref().unwrap().1.token.to_string();
    // The root key is nowhere in the data dir: only commitments and a check value.
    let n = start(&cfg).await;
    let st = n.status().await;
    assert_eq!(st["sealed"], true, "{st}");
    assert_eq!(st["mode"], "shamir");
    assert_eq!(st["threshold"], 3);
    assert_eq!(st["progress"], 0);
    let (code, v) = n.call(Method::GET, "/v1/keys", Some(&admin), None).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "sealed");
    // A wrong share is named at once and counts for nothing.
    let mut wrong = parse_share(&share("alice")).unwrap();
    wrong.y[5] ^= 0x40;
    let wrong = arca_service::custody::share_text(&wrong);
    let got = n.unseal(&wrong).await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("share"),
    );
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("alice"),
        "{}",
        got.1
    );
    assert_error(
        &n.unseal("not a share").await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("share"),
    );
    assert_eq!(n.status().await["progress"], 0);
    // M-1 shares do not unseal; the same share twice is refused.
    assert_eq!(n.unseal(&share("alice")).await.0, StatusCode::OK);
    assert_error(
        &n.unseal(&share("alice")).await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    let (_, st) = n.unseal(&share("bob")).await;
    assert_eq!(st["sealed"], true);
    assert_eq!(st["progress"], 2);
    assert_eq!(st["submitted_by"], json!(["alice", "bob"]));
    assert_eq!(
        n.call(Method::GET, "/v1/whoami", Some(&admin), None)
            .await
            .0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // The M-th unseals.
    let (_, st) = n.unseal(&share("carol")).await;
    assert_eq!(st["sealed"], false, "{st}");
    assert_eq!(st["progress"], 0);
    let (code, _) = n
        .call(
            Method::POST,
            "/v1/keys",
            Some(&admin),
            Some(json!({"name": "k"})),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED);
    let (code, v) = n
        .call(
            Method::POST,
            "/v1/keys/k/encrypt",
            Some(&admin),
            Some(json!({"plaintext": b64(b"kept")})),
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let ct = v["ciphertext"].clone();
    assert_error(
        &n.unseal(&share("dave")).await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    // Sealing: operators only; afterwards nothing but status and unseal.
    let (code, _) = n
        .call(Method::POST, "/v1/sys/seal", Some(&admin), Some(json!({})))
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, st) = n
        .call(
            Method::POST,
            "/v1/sys/seal",
            Some(&operator),
            Some(json!({})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{st}");
    assert_eq!(st["sealed"], true);
    let (code, _) = n
        .call(
            Method::POST,
            "/v1/decrypt",
            Some(&admin),
            Some(json!({"ciphertext": ct})),
        )
        .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    n.running.service.flush_audit().await;
    let audit = arca_service::trail::read_all(n.running.service.store().as_ref())
        .await
        .unwrap();
    let unseals: Vec<_> = audit.iter().filter(|r| r.operation == "Unseal").collect();
    assert_eq!(unseals.len(), 7, "every submission is audited");
    assert!(unseals
        .iter()
        .any(
            |r| r.detail.get("custodian").and_then(|c| c.as_str()) == Some("carol")
                && r.detail.get("unsealed").and_then(|u| u.as_bool()) == Some(true)
        ));
    assert!(audit
        .iter()
        .any(|r| r.operation == "Seal" && r.outcome == "ok"));
    n.running.shutdown().await;

    // A restart is sealed again; any other three custodians unseal it; old data decrypts.
    let n = start(&cfg).await;
    assert_eq!(n.status().await["sealed"], true);
    for who in ["erin", "dave", "bob"] {
        n.unseal(&share(who)).await;
    }
    assert_eq!(n.status().await["sealed"], false);
    let (code, v) = n
        .call(
            Method::POST,
            "/v1/decrypt",
            Some(&admin),
            Some(json!({"ciphertext": ct})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(unb64(&v["plaintext"]), b"kept");
    n.running.shutdown().await;

    // No share reaches the logs, and no share or root key the data dir.
    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).to_string();
    let mut stored = Vec::new();
    for e in std::fs::read_dir(&cfg.data_dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            stored.extend(std::fs::read(p).unwrap());
        }
    }
    for s in &shares {
        let b64 = s.text.rsplit(':').next().unwrap();
        assert!(!logs.contains(b64), "a share was logged");
        let raw = parse_share(&s.text).unwrap();
        assert!(
            !stored.windows(32).any(|w| w == &raw.y[..]),
            "a share is in the data dir"
        );
    }
    assert!(
        !cfg.data_dir.join("unseal.key").exists(),
        "no dev unseal file under custody"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_encrypted_to_custodian_keys_and_init_refusals() {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{
        KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256,
    };
    use aws_lc_rs::signature::KeyPair;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&tmp.path().join("data"));
    let kp = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).unwrap();
    let spki = kp.public_key().as_der().unwrap().as_ref().to_vec();
    let pkcs8 = kp.as_der().unwrap().as_ref().to_vec();
    let specs = vec![
        CustodianSpec {
            name: "hsm-officer".into(),
            rsa_public_key: Some(spki),
        },
        CustodianSpec {
            name: "backup-officer".into(),
            rsa_public_key: None,
        },
    ];
    let (shares, _) = arca_server::init_custody(&cfg, 2, specs, false)
        .await
        .unwrap();
    let enc = shares
        .iter()
        .find(|s| s.custodian == "hsm-officer")
        .unwrap();
    assert!(enc.encrypted);
    assert!(!enc.text.starts_with("arca-share-v1:"));
    let ct = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        enc.text.as_bytes(),
    )
    .unwrap();
    let dk =
        OaepPrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(&pkcs8).unwrap()).unwrap();
    let mut out = vec![0u8; dk.min_output_size()];
    let pt = dk
        .decrypt(&OAEP_SHA256_MGF1SHA256, &ct, &mut out, None)
        .unwrap();
    let officer_share = String::from_utf8(pt.to_vec()).unwrap();
    let n = start(&cfg).await;
    n.unseal(&officer_share).await;
    let plain = shares
        .iter()
        .find(|s| s.custodian == "backup-officer")
        .unwrap();
    let (_, st) = n.unseal(&plain.text).await;
    assert_eq!(st["sealed"], false, "{st}");
    n.running.shutdown().await;
    // init never replaces a root key: not on a custody store, not on a dev one.
    assert!(
        arca_server::init_custody(&cfg, 2, custodians(&["x", "y"]), false)
            .await
            .is_err()
    );
    let dev = TestServer::start().await;
    let dev_cfg = config(&dev.data_dir);
    let e = arca_server::init_custody(&dev_cfg, 2, custodians(&["x", "y"]), false).await;
    assert!(e.is_err());
    dev.shutdown().await;
    // Bad parameters.
    let tmp2 = tempfile::tempdir().unwrap();
    let cfg2 = config(&tmp2.path().join("data"));
    assert!(
        arca_server::init_custody(&cfg2, 3, custodians(&["a", "b"]), false)
            .await
            .is_err()
    );
    assert!(
        arca_server::init_custody(&cfg2, 2, custodians(&["a", "a"]), false)
            .await
            .is_err()
    );
    // A threshold of 1 (one person holds the root key) only with the explicit dev flag.
    for (t, names) in [(1, vec!["solo"]), (1, vec!["a", "b"])] {
        let e = arca_server::init_custody(&cfg2, t, custodians(&names), false)
            .await
            .expect_err("threshold 1 refused without the dev flag");
        assert!(format!("{e:#}").contains("threshold"), "{e:#}");
    }
    // Refused before anything was recorded: the explicit dev init on the same dir works.
    let (solo, _) = arca_server::init_custody(&cfg2, 1, custodians(&["solo"]), true)
        .await
        .unwrap();
    assert_eq!(solo.len(), 1);
}

/// A new custodian with an RSA key pair: the PEM public key the rekey needs, and the
/// private key (PKCS#8) the test decrypts the custodian's new share with.
struct NewCustodian {
    name: &'static str,
    pem: String,
    pkcs8: Vec<u8>,
}

fn new_custodian(name: &'static str) -> NewCustodian {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let spki = kp.public_key().as_der().unwrap().as_ref().to_vec();
    let body = b64(&spki);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    NewCustodian {
        name,
        pem: format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        ),
        pkcs8: kp.as_der().unwrap().as_ref().to_vec(),
    }
}

impl NewCustodian {
    fn input(&self) -> Value {
        json!({"name": self.name, "rsa_public_key_pem": self.pem})
    }
    /// Finds and decrypts this custodian's new share in a completed rekey.
    fn share_from(&self, result: &Value) -> String {
        use aws_lc_rs::rsa::{
            OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256,
        };
        let enc = result["shares"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["custodian"] == self.name)
            .unwrap_or_else(|| panic!("no share for {} in {result}", self.name));
        let ct = unb64(&enc["encrypted_share"]);
        let dk =
            OaepPrivateDecryptingKey::new(PrivateDecryptingKey::from_pkcs8(&self.pkcs8).unwrap())
                .unwrap();
        let mut out = vec![0u8; dk.min_output_size()];
        let pt = dk
            .decrypt(&OAEP_SHA256_MGF1SHA256, &ct, &mut out, None)
            .unwrap();
        String::from_utf8(pt.to_vec()).unwrap()
    }
}

impl Node {
    async fn rekey_share(&self, nonce: &str, share: &str) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            "/v1/sys/rekey/share",
            None,
            Some(json!({"nonce": nonce, "share": share})),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reshare_and_rotate_need_the_custodians_quorum() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&tmp.path().join("data"));
    let (shares, first) =
        arca_server::init_custody(&cfg, 2, custodians(&["alice", "bob", "carol"]), false)
            .await
            .unwrap();
    let first = first.unwrap();
    let admin = first.admin.as_ref().unwrap().2.token.to_string();
    let operator = first.operator.as_ref().unwrap().1.token.to_string();
    let old = |name: &str| {
        shares
            .iter()
            .find(|s| s.custodian == name)
            .unwrap()
            .text
            .to_string()
    };
    let n = start(&cfg).await;
    n.unseal(&old("alice")).await;
    n.unseal(&old("bob")).await;
    n.call(
        Method::POST,
        "/v1/keys",
        Some(&admin),
        Some(json!({"name": "k"})),
    )
    .await;
    let (_, v) = n
        .call(
            Method::POST,
            "/v1/keys/k/encrypt",
            Some(&admin),
            Some(json!({"plaintext": b64(b"old data")})),
        )
        .await;
    let ct = v["ciphertext"].clone();
    let (_, t) = n
        .call(
            Method::POST,
            "/v1/auth/token",
            Some(&admin),
            Some(json!({})),
        )
        .await;
    let session = t["access_token"].as_str().unwrap().to_string();
    let keks_before = n.running.service.store().tenant_keks().await.unwrap();
    let custody_before = n.running.service.custody().await.unwrap().unwrap();
    let [dave, erin, frank, gina, hank] =
        ["dave", "erin", "frank", "gina", "hank"].map(new_custodian);
    // The rekey routes are in the OpenAPI document with the methods the router serves.
    let (_, doc) = n.call(Method::GET, "/v1/openapi.json", None, None).await;
    let rekey = &doc["paths"]["/v1/sys/rekey"];
    for m in ["post", "get", "delete"] {
        assert!(rekey[m].is_object(), "{m} /v1/sys/rekey undocumented");
    }
    assert!(doc["paths"]["/v1/sys/rekey/share"]["post"].is_object());
    assert!(doc["components"]["schemas"]["RekeyStatus"].is_object());

    // Only operators start a rekey; bad input is refused naming the field, changing nothing.
    let body = json!({"threshold": 3, "custodians": [dave.input(), erin.input(), frank.input()]});
    let (code, _) = n
        .call(
            Method::POST,
            "/v1/sys/rekey",
            Some(&admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // The finding: one operator, threshold 1, one custodian.
    let got = n
        .call(
            Method::POST,
            "/v1/sys/rekey",
            Some(&operator),
            Some(json!({"threshold": 1, "custodians": [dave.input()]})),
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("threshold"),
    );
    let got = n
        .call(
            Method::POST,
            "/v1/sys/rekey",
            Some(&operator),
            Some(json!({"threshold": 4, "custodians": [dave.input(), erin.input()]})),
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("threshold"),
    );
    // No public key: a share would have to leave in clear.
    let got = n
        .call(
            Method::POST,
            "/v1/sys/rekey",
            Some(&operator),
            Some(json!({"threshold": 2, "custodians": [dave.input(), {"name": "me"}]})),
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("custodians[1].rsa_public_key_pem"),
    );
    let got = n
        .call(
            Method::POST,
            "/v1/sys/rekey",
            Some(&operator),
            Some(json!({"threshold": 2, "custodians": [dave.input(), {"name": "me", "rsa_public_key_pem": "not a key"}]})),
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("custodians[1].rsa_public_key_pem"),
    );
    // One person, two names: the same key twice is refused.
    let got = n
        .call(
            Method::POST,
            "/v1/sys/rekey",
            Some(&operator),
            Some(json!({"threshold": 2, "custodians": [dave.input(), {"name": "dave2", "rsa_public_key_pem": dave.pem}]})),
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("custodians[1].rsa_public_key_pem"),
    );
    let (_, st) = n.call(Method::GET, "/v1/sys/rekey", None, None).await;
    assert!(st["attempt"].is_null(), "{st}");

    // A started rekey changes nothing by itself; sealing forgets it; the old shares unseal.
    let (code, st) = n
        .call(
            Method::POST,
            "/v1/sys/rekey",
            Some(&operator),
            Some(body.clone()),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{st}");
    let a = &st["attempt"];
    assert_eq!(a["required"], 2);
    assert_eq!(a["progress"], 0);
    assert_eq!(a["new_threshold"], 3);
    assert_eq!(a["rotate_root"], false);
    assert_eq!(a["started_by"], "operator");
    assert_eq!(a["new_custodians"][0]["name"], "dave");
    assert_eq!(
        a["new_custodians"][0]["key_sha256"].as_str().unwrap().len(),
        64
    );
    assert!(st["result"].is_null());
    let (code, _) = n
        .call(
            Method::POST,
            "/v1/sys/rekey",
            Some(&operator),
            Some(body.clone()),
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "one attempt at a time");
    assert_eq!(
        serde_json::to_vec(&n.running.service.custody().await.unwrap().unwrap()).unwrap(),
        serde_json::to_vec(&custody_before).unwrap(),
        "starting changes nothing"
    );
    n.call(
        Method::POST,
        "/v1/sys/seal",
        Some(&operator),
        Some(json!({})),
    )
    .await;
    n.unseal(&old("carol")).await;
    let (_, s) = n.unseal(&old("alice")).await;
    assert_eq!(s["sealed"], false, "the old shares still unseal: {s}");
    let (_, st) = n.call(Method::GET, "/v1/sys/rekey", None, None).await;
    assert!(st["attempt"].is_null(), "sealing forgot the attempt: {st}");

    // Cancel: operators only; the shares presented are dropped.
    let (_, st) = n
        .call(
            Method::POST,
            "/v1/sys/rekey",
            Some(&operator),
            Some(body.clone()),
        )
        .await;
    let nonce = st["attempt"]["nonce"].as_str().unwrap().to_string();
    let (code, v) = n.rekey_share(&nonce, &old("carol")).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["attempt"]["progress"], 1);
    assert_eq!(v["attempt"]["submitted_by"], json!(["carol"]));
    let (code, _) = n
        .call(Method::DELETE, "/v1/sys/rekey", Some(&admin), None)
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, v) = n
        .call(Method::DELETE, "/v1/sys/rekey", Some(&operator), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert!(v["attempt"].is_null());
    let got = n
        .call(Method::DELETE, "/v1/sys/rekey", Some(&operator), None)
        .await;
    assert_error(&got, StatusCode::CONFLICT, "conflict", None);
    let got = n.rekey_share(&nonce, &old("alice")).await;
    assert_error(&got, StatusCode::CONFLICT, "conflict", None);

    // Re-share: the current quorum presents its shares; wrong nonce, wrong share and a
    // repeated share are refused and named; the M-th share completes.
    let (_, st) = n
        .call(Method::POST, "/v1/sys/rekey", Some(&operator), Some(body))
        .await;
    let nonce = st["attempt"]["nonce"].as_str().unwrap().to_string();
    let got = n.rekey_share("not-the-nonce", &old("alice")).await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("nonce"),
    );
    let mut wrong = parse_share(&old("alice")).unwrap();
    wrong.y[3] ^= 0x10;
    let got = n
        .rekey_share(&nonce, &arca_service::custody::share_text(&wrong))
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("share"),
    );
    assert!(got.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("alice"));
    let got = n.rekey_share(&nonce, "not a share").await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("share"),
    );
    let (code, v) = n.rekey_share(&nonce, &old("alice")).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["attempt"]["progress"], 1);
    let got = n.rekey_share(&nonce, &old("alice")).await;
    assert_error(&got, StatusCode::CONFLICT, "conflict", None);
    assert_eq!(
        n.running.service.store().tenant_keks().await.unwrap(),
        keks_before
    );
    let (code, done) = n.rekey_share(&nonce, &old("bob")).await;
    assert_eq!(code, StatusCode::OK, "{done}");
    assert!(done["attempt"].is_null());
    let result = &done["result"];
    assert_eq!(result["rotated"], false);
    assert_eq!(result["threshold"], 3);
    assert_eq!(result["shares"].as_array().unwrap().len(), 3);
    let text = done.to_string();
    assert!(!text.contains("arca-share-v1"), "a share in clear: {text}");
    let new: Vec<String> = [&dave, &erin, &frank]
        .iter()
        .map(|c| c.share_from(result))
        .collect();
    assert!(new.iter().all(|s| s.starts_with("arca-share-v1:")));
    // The encrypted shares can be fetched again (the last custodian's answer may be lost).
    let (_, st) = n.call(Method::GET, "/v1/sys/rekey", None, None).await;
    assert_eq!(st["result"]["nonce"], nonce.as_str());
    assert_eq!(
        n.running.service.store().tenant_keks().await.unwrap(),
        keks_before,
        "re-sharing keeps the root key"
    );
    n.running.service.flush_audit().await;
    let audit = arca_service::trail::read_all(n.running.service.store().as_ref())
        .await
        .unwrap();
    let reshare = audit
        .iter()
        .find(|r| r.operation == "ReshareRootKey" && r.outcome == "ok")
        .expect("ReshareRootKey recorded");
    assert_eq!(reshare.principal, "operator");
    assert_eq!(
        reshare.detail["approved_by_custodians"],
        json!(["alice", "bob"])
    );
    assert!(audit
        .iter()
        .any(|r| r.operation == "StartRootRekey" && r.outcome == "ok"));
    assert!(audit
        .iter()
        .any(|r| r.operation == "CancelRootRekey" && r.outcome == "ok"));
    assert!(audit.iter().any(|r| r.operation == "StartRootRekey"
        && r.outcome == "invalid_input"
        && r.detail["error"]
            .as_str()
            .unwrap_or("")
            .contains("threshold")));
    let submits: Vec<_> = audit
        .iter()
        .filter(|r| r.operation == "SubmitRootRekeyShare")
        .collect();
    assert!(submits.iter().any(|r| r.outcome == "invalid_input"
        && r.detail.get("custodian").and_then(|c| c.as_str()) == Some("alice")));
    assert!(submits.iter().any(|r| r.outcome == "ok"
        && r.detail.get("custodian").and_then(|c| c.as_str()) == Some("bob")
        && r.detail.get("completed").and_then(|c| c.as_bool()) == Some(true)));
    let trail =
        serde_json::to_string(&audit.iter().map(|r| &r.detail).collect::<Vec<_>>()).unwrap();
    for s in shares.iter().map(|s| s.text.to_string()).chain(new.clone()) {
        assert!(
            !trail.contains(s.rsplit(':').next().unwrap()),
            "a share in the audit trail"
        );
    }
    n.running.shutdown().await;

    let n = start(&cfg).await;
    let got = n.unseal(&old("alice")).await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("share"),
    );
    n.unseal(&new[0]).await;
    let (_, st) = n.unseal(&new[1]).await;
    assert_eq!(st["sealed"], true, "threshold is now 3");
    let (_, st) = n.unseal(&new[2]).await;
    assert_eq!(st["sealed"], false);
    let (code, v) = n
        .call(
            Method::POST,
            "/v1/decrypt",
            Some(&admin),
            Some(json!({"ciphertext": ct})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");

    // Rotation: only with the (new) quorum; a new root key; every tenant KEK re-wrapped;
    // old ciphertexts still decrypt; sessions signed before still verify.
    let (code, st) = n
        .call(
            Method::POST,
            "/v1/sys/rekey",
            Some(&operator),
            Some(json!({"threshold": 2, "rotate_root": true, "custodians": [gina.input(), hank.input()]})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{st}");
    assert_eq!(st["attempt"]["required"], 3);
    assert_eq!(st["attempt"]["rotate_root"], true);
    let nonce = st["attempt"]["nonce"].as_str().unwrap().to_string();
    // The old custodians' shares no longer count.
    let got = n.rekey_share(&nonce, &old("alice")).await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("share"),
    );
    n.rekey_share(&nonce, &new[0]).await;
    let (_, v) = n.rekey_share(&nonce, &new[1]).await;
    assert_eq!(v["attempt"]["progress"], 2);
    assert_eq!(
        n.running.service.store().tenant_keks().await.unwrap(),
        keks_before,
        "nothing rotates before the quorum"
    );
    let (code, done) = n.rekey_share(&nonce, &new[2]).await;
    assert_eq!(code, StatusCode::OK, "{done}");
    assert_eq!(done["result"]["rotated"], true);
    let rotated: Vec<String> = [&gina, &hank]
        .iter()
        .map(|c| c.share_from(&done["result"]))
        .collect();
    let keks_after = n.running.service.store().tenant_keks().await.unwrap();
    assert_eq!(keks_after.len(), keks_before.len());
    for (a, b) in keks_before.iter().zip(&keks_after) {
        assert_eq!(a.0, b.0);
        assert_ne!(a.1, b.1, "tenant {} KEK re-wrapped", a.0);
    }
    let (code, v) = n
        .call(
            Method::POST,
            "/v1/decrypt",
            Some(&admin),
            Some(json!({"ciphertext": ct})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(
        n.call(Method::GET, "/v1/whoami", Some(&session), None)
            .await
            .0,
        StatusCode::OK
    );
    n.running.service.flush_audit().await;
    let audit = arca_service::trail::read_all(n.running.service.store().as_ref())
        .await
        .unwrap();
    assert!(audit
        .iter()
        .any(|r| r.operation == "RotateRootKey" && r.outcome == "ok"));
    n.running.shutdown().await;
    let n = start(&cfg).await;
    let got = n.unseal(&new[0]).await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("share"),
    );
    n.unseal(&rotated[0]).await;
    let (_, st) = n.unseal(&rotated[1]).await;
    assert_eq!(st["sealed"], false);
    let (code, v) = n
        .call(
            Method::POST,
            "/v1/decrypt",
            Some(&admin),
            Some(json!({"ciphertext": ct})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(unb64(&v["plaintext"]), b"old data");

    // An attempt not completed within the hour is forgotten with its shares.
    let (code, st) = n
        .call(
            Method::POST,
            "/v1/sys/rekey",
            Some(&operator),
            Some(json!({"threshold": 2, "custodians": [dave.input(), erin.input()]})),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{st}");
    let nonce = st["attempt"]["nonce"].as_str().unwrap().to_string();
    n.rekey_share(&nonce, &rotated[0]).await;
    n.clock.advance(chrono::Duration::minutes(61));
    let (_, st) = n.call(Method::GET, "/v1/sys/rekey", None, None).await;
    assert!(st["attempt"].is_null(), "{st}");
    let got = n.rekey_share(&nonce, &rotated[1]).await;
    assert_error(&got, StatusCode::CONFLICT, "conflict", None);
    let custody = n.running.service.custody().await.unwrap().unwrap();
    assert_eq!(
        custody
            .custodians
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["gina", "hank"]
    );
    n.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_shamir_custody_restores_after_the_custodians_unseal() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&tmp.path().join("data"));
    let (shares, first) =
        arca_server::init_custody(&cfg, 2, custodians(&["alice", "bob", "carol"]), false)
            .await
            .unwrap();
    let share = |i: usize| shares[i].text.to_string();
    let first = first.unwrap();
    let admin = first.admin.as_ref().unwrap().2.token.to_string();
    let operator = first.operator.as_ref().unwrap().1.token.to_string();
    let n = start(&cfg).await;
    n.unseal(&share(0)).await;
    n.unseal(&share(2)).await;
    let (st, _) = n
        .call(
            Method::POST,
            "/v1/keys",
            Some(&admin),
            Some(json!({"name": "k"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (_, e) = n
        .call(
            Method::POST,
            "/v1/keys/k/encrypt",
            Some(&admin),
            Some(json!({"plaintext": b64(b"custody")})),
        )
        .await;
    let r = n
        .client
        .post(format!("{}/v1/sys/backup", n.url))
        .bearer_auth(&operator)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let backup = r.bytes().await.unwrap();
    n.running.shutdown().await;
    let file = tmp.path().join("b.arca");
    std::fs::write(&file, &backup).unwrap();

    // An operator's backup holds nothing root-equivalent: no share, not the root key (the
    // test rebuilds it from two shares to look for it), no dev unseal key or sealed dev root.
    let root = arca_crypto::shamir::combine(&[
        parse_share(&share(0)).unwrap(),
        parse_share(&share(1)).unwrap(),
    ])
    .unwrap();
    assert!(
        !backup.windows(32).any(|w| w == &root[..]),
        "the root key is in the backup"
    );
    for s in &shares {
        let y = parse_share(&s.text).unwrap().y;
        assert!(
            !backup.windows(32).any(|w| w == &y[..]),
            "a share is in the backup"
        );
    }
    let header = arca_service::backup::check_backup(&file).unwrap();
    assert_eq!(header.custody, "shamir");
    assert_eq!(
        header.custody_meta.keys().collect::<Vec<_>>(),
        vec!["root.mode", "root.shamir"],
        "only the mode and the share commitments travel in clear"
    );
    assert!(!cfg.data_dir.join("unseal.key").exists());

    // Without the custodians the backup opens nowhere: staged without its custody values,
    // a server makes a dev root of its own, which does not open the backup's key.
    let mut stripped = header.clone();
    stripped.custody_meta.clear();
    let data3 = tmp.path().join("data3");
    std::fs::create_dir_all(&data3).unwrap();
    let store = arca_store::SqliteStore::open(&data3.join("arca.db"))
        .await
        .unwrap();
    arca_service::backup::stage_restore(&store, &stripped)
        .await
        .unwrap();
    store.close().await;
    std::fs::copy(&file, data3.join(arca_service::backup::PENDING_RESTORE)).unwrap();
    let refused = arca_server::start_with_clock(&config(&data3), Arc::new(ManualClock::new()))
        .await
        .err()
        .expect("the backup does not open without its root key");
    assert!(
        format!("{refused:#}").contains("not applied"),
        "{refused:#}"
    );

    // Staged in a new directory: the server starts sealed, stays sealed (and the backup
    // staged) until the custodians' quorum unseals it, and the backup goes in at that moment.
    let data2 = tmp.path().join("data2");
    std::fs::create_dir_all(&data2).unwrap();
    let store = arca_store::SqliteStore::open(&data2.join("arca.db"))
        .await
        .unwrap();
    arca_service::backup::stage_restore(&store, &header)
        .await
        .unwrap();
    store.close().await;
    std::fs::copy(&file, data2.join(arca_service::backup::PENDING_RESTORE)).unwrap();
    let n = start(&config(&data2)).await;
    assert_eq!(n.status().await["sealed"], true);
    n.unseal(&share(1)).await;
    assert_eq!(
        n.status().await["sealed"],
        true,
        "one custodian is not enough"
    );
    let (code, _) = n.call(Method::GET, "/v1/keys", Some(&admin), None).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let (code, _) = n
        .call(
            Method::POST,
            "/v1/sys/backup",
            Some(&operator),
            Some(json!({})),
        )
        .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(data2.join(arca_service::backup::PENDING_RESTORE).exists());
    let (st, v) = n.unseal(&share(2)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["sealed"], false, "{v}");
    assert!(!data2.join(arca_service::backup::PENDING_RESTORE).exists());
    let (st, d) = n
        .call(
            Method::POST,
            "/v1/decrypt",
            Some(&admin),
            Some(json!({"ciphertext": e["ciphertext"]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(unb64(&d["plaintext"]), b"custody");
    // The unseal before the restore is in the trail, after the restored events (the audit
    // writer is asynchronous: wait for it).
    n.running.service.flush_audit().await;
    let all = arca_service::trail::read_all(n.running.service.store().as_ref())
        .await
        .unwrap();
    let restored = all
        .iter()
        .position(|e| e.operation == "RestoreBackup")
        .unwrap();
    assert!(all[..restored].iter().any(|e| e.operation == "CreateKey"));
    n.running.shutdown().await;
}
