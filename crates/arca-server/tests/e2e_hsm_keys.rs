//! Keys of protection level HSM (SoftHSM2 over PKCS#11), through REST: generated in the
//! token as sensitive, non-extractable objects; encrypt, decrypt, data keys, sign and
//! verify run in the token through the same routes as software keys; what the token
//! cannot do is refused as "not supported at protection level HSM"; destruction removes
//! the token objects. Fails (never skips) without SoftHSM2. One test per binary: it sets
//! SOFTHSM2_CONF.

mod common;

use std::sync::Arc;

use arca_service::ManualClock;
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsm_protected_keys() {
    init_logs();
    let tmp = tempfile::tempdir().unwrap();
    let conf = softhsm(tmp.path(), "arca-keys");
    std::env::set_var("SOFTHSM2_CONF", &conf);
    std::env::set_var("ARCA_TEST_HSM_PIN", "4321");
    let clock = Arc::new(ManualClock::new());
    let mut cfg = config(&tmp.path().join("data"));
    cfg.root.mode = "hsm".into();
    cfg.root.hsm.token_label = "arca-keys".into();
    cfg.root.hsm.pin_env = Some("ARCA_TEST_HSM_PIN".into());
    let running = arca_server::start_with_clock(&cfg, clock.clone())
        .await
        .unwrap();
    let token = running
        .first_start
        .as_ref()
        .unwrap()
        .admin
        .as_ref()
        .unwrap()
        .2
        .token
        .to_string();
    let ca = std::fs::read(cfg.data_dir.join("tls").join("ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}", running.addr.port());
    let post = |path: &str, body: Value| {
        let (client, url, token, path) =
            (client.clone(), url.clone(), token.clone(), path.to_string());
        async move {
            let r = client
                .post(format!("{url}{path}"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let st = r.status();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let get = |path: &str| {
        let (client, url, token, path) =
            (client.clone(), url.clone(), token.clone(), path.to_string());
        async move {
            let r = client
                .get(format!("{url}{path}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            let st = r.status();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // AES-256 in the token: encrypt, decrypt, data keys.
    let (st, k) = post(
        "/v1/keys",
        json!({"name": "vault", "protection_level": "HSM"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    assert_eq!(k["protection_level"], "HSM");
    let kid = k["id"].as_str().unwrap().to_string();
    let (st, e) = post(
        "/v1/keys/vault/encrypt",
        json!({"plaintext": b64(b"kept in hardware"), "encryption_context": {"app": "t"}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{e}");
    let (st, d) = post(
        "/v1/decrypt",
        json!({"ciphertext": e["ciphertext"], "encryption_context": {"app": "t"}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(unb64(&d["plaintext"]), b"kept in hardware");
    let (st, d) = post(
        "/v1/decrypt",
        json!({"ciphertext": e["ciphertext"], "encryption_context": {"app": "other"}}),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "wrong context: {d}");
    let (st, dk) = post(
        "/v1/keys/vault/generate-data-key",
        json!({"key_spec": "AES_256"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{dk}");
    let (st, back) = post("/v1/decrypt", json!({"ciphertext": dk["ciphertext"]})).await;
    assert_eq!(st, StatusCode::OK, "{back}");
    assert_eq!(back["plaintext"], dk["plaintext"]);

    // The store holds no key bytes: only a sealed reference to the token object (checked
    // against the token after shutdown, below, since one process logs in once).
    let label = format!("arca:{kid}:v1");

    // ECC P-256 in the token: sign and verify there; a software verifier agrees.
    let (st, k) = post(
        "/v1/keys",
        json!({"name": "signer", "spec": "ECC_NIST_P256", "protection_level": "HSM"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{k}");
    let (st, s) = post("/v1/keys/signer/sign", json!({"message": b64(b"pay 10")})).await;
    assert_eq!(st, StatusCode::OK, "{s}");
    let (st, v) = post(
        "/v1/keys/signer/verify",
        json!({"message": b64(b"pay 10"), "signature": s["signature"]}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    let (_, v) = post(
        "/v1/keys/signer/verify",
        json!({"message": b64(b"pay 99"), "signature": s["signature"]}),
    )
    .await;
    assert_eq!(v["valid"], false, "{v}");
    let (st, pk) = get("/v1/keys/signer/public-key").await;
    assert_eq!(st, StatusCode::OK, "{pk}");
    let spki = unb64(&pk["public_key"]);
    let point = &spki[spki.len() - 65..];
    let sig = unb64(&s["signature"]);
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
        point,
    )
    .verify(b"pay 10", &sig)
    .expect("a software verifier accepts the token's signature");

    // Rotation makes the next version in the token; the old one still decrypts.
    let (st, r) = post("/v1/keys/vault/rotate", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let (st, d) = post(
        "/v1/decrypt",
        json!({"ciphertext": e["ciphertext"], "encryption_context": {"app": "t"}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{d}");

    // What the HSM level cannot do is refused, by field, before anything is made.
    for (body, field) in [
        (
            json!({"name": "r", "spec": "RSA_2048", "protection_level": "HSM"}),
            "spec",
        ),
        (
            json!({"name": "h", "spec": "HMAC_256", "protection_level": "HSM"}),
            "spec",
        ),
        (
            json!({"name": "x", "protection_level": "HSM", "extractable": true}),
            "extractable",
        ),
        (
            json!({"name": "i", "protection_level": "HSM", "material": b64(&[7u8; 32])}),
            "material",
        ),
        // Material to be imported later is imported material too: the HSM provider
        // admits none.
        (
            json!({"name": "p", "protection_level": "HSM", "pending_import": true}),
            "material",
        ),
    ] {
        let (st, v) = post("/v1/keys", body.clone()).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error"]["field"], field, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("protection level HSM"),
            "{v}"
        );
    }
    let (st, v) = post("/v1/keys/vault/export", json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, v) = post("/v1/keys/signer/encrypt", json!({"plaintext": b64(b"x")})).await;
    assert!(st.is_client_error(), "{v}");

    let (_, k2) = post(
        "/v1/keys",
        json!({"name": "signer2", "spec": "ECC_NIST_P256", "protection_level": "HSM"}),
    )
    .await;
    let ec2 = k2["id"].as_str().unwrap().to_string();

    // Destruction removes the objects from the token.
    post("/v1/keys/signer/suspend", json!({})).await;
    let (st, v) = post(
        "/v1/keys/signer/schedule-destruction",
        json!({"pending_window_days": 1}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    clock.advance(chrono::Duration::days(2));
    running.service.run_due().await.unwrap();
    let (_, k) = get("/v1/keys/signer").await;
    assert_eq!(k["state"], "DESTROYED", "{k}");
    let signer_id = k["id"].as_str().unwrap().to_string();

    // A backup holds HSM keys by reference: restored next to the same token, they work.
    let operator = running
        .first_start
        .as_ref()
        .unwrap()
        .operator
        .as_ref()
        .unwrap()
        .1
        .token
        .to_string();
    let r = client
        .post(format!("{url}/v1/sys/backup"))
        .bearer_auth(&operator)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let backup = r.bytes().await.unwrap();
    running.shutdown().await;
    let file = tmp.path().join("hsm.backup");
    std::fs::write(&file, &backup).unwrap();
    let header = arca_service::backup::check_backup(&file).unwrap();
    assert_eq!(header.custody, "hsm");
    let mut cfg2 = cfg.clone();
    cfg2.data_dir = tmp.path().join("data2");
    std::fs::create_dir_all(&cfg2.data_dir).unwrap();
    let store = arca_store::SqliteStore::open(&cfg2.data_dir.join("arca.db"))
        .await
        .unwrap();
    arca_service::backup::stage_restore(&store, &header)
        .await
        .unwrap();
    store.close().await;
    std::fs::copy(
        &file,
        cfg2.data_dir.join(arca_service::backup::PENDING_RESTORE),
    )
    .unwrap();
    let restored = arca_server::start_with_clock(&cfg2, clock.clone())
        .await
        .unwrap();
    assert!(restored.first_start.is_none());
    let ca2 = std::fs::read(cfg2.data_dir.join("tls").join("ca.pem")).unwrap();
    let client2 = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca2).unwrap()])
        .build()
        .unwrap();
    let r = client2
        .post(format!(
            "https://127.0.0.1:{}/v1/decrypt",
            restored.addr.port()
        ))
        .bearer_auth(&token)
        .json(&json!({"ciphertext": e["ciphertext"], "encryption_context": {"app": "t"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let d: Value = r.json().await.unwrap();
    assert_eq!(unb64(&d["plaintext"]), b"kept in hardware");
    restored.shutdown().await;
    let hsm = arca_crypto::hsm::HsmRoot::open(
        &arca_crypto::hsm::HsmSettings {
            module: MODULE.into(),
            token_label: "arca-keys".into(),
            pin: zeroize::Zeroizing::new("4321".into()),
            key_label: "arca-root".into(),
        },
        false,
    )
    .unwrap();
    assert_eq!(
        hsm.destroy_key(&format!("arca:{signer_id}:v1")).unwrap(),
        0,
        "already gone"
    );
    // The AES key is in the token as a persistent, sensitive, never-extractable object.
    let prot = hsm.object_protection(&label).unwrap();
    assert_eq!(prot.len(), 1, "one secret key object: {prot:?}");
    assert!(
        prot[0].token && prot[0].sensitive && !prot[0].extractable && prot[0].never_extractable,
        "{prot:?}"
    );
    // So is the private half of an EC key (its public half has no sensitivity).
    let prot = hsm.object_protection(&format!("arca:{ec2}:v1")).unwrap();
    assert_eq!(prot.len(), 1, "{prot:?}");
    assert!(prot[0].sensitive && !prot[0].extractable, "{prot:?}");
    drop(hsm);

    // A server without an HSM refuses the level, saying why.
    let plain = tempfile::tempdir().unwrap();
    let s = arca_server::start_with_clock(
        &config(&plain.path().join("d")),
        Arc::new(ManualClock::new()),
    )
    .await
    .unwrap();
    let t = s
        .first_start
        .as_ref()
        .unwrap()
        .admin
        .as_ref()
        .unwrap()
        .2
        .token
        .to_string();
    let url2 = format!("https://127.0.0.1:{}", s.addr.port());
    let ca2 = std::fs::read(plain.path().join("d").join("tls").join("ca.pem")).unwrap();
    let c2 = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca2).unwrap()])
        .build()
        .unwrap();
    let r = c2
        .post(format!("{url2}/v1/keys"))
        .bearer_auth(&t)
        .json(&json!({"name": "nohsm", "protection_level": "HSM"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["field"], "protection_level", "{v}");
    s.shutdown().await;
}
