//! The root key in an HSM (SoftHSM2 over PKCS#11), end to end: the server unseals itself
//! from the token, keys work over HTTPS and survive a restart, and the data directory
//! copied to a machine without the token opens nothing. Fails (never skips) without
//! SoftHSM2; `scripts/test` installs it. One test per binary: it sets SOFTHSM2_CONF.

mod common;

use std::process::Command;
use std::sync::Arc;

use arca_service::ManualClock;
use common::*;
use serde_json::{json, Value};

async fn call(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    path: &str,
    body: Value,
) -> (reqwest::StatusCode, Value) {
    let r = client
        .post(format!("{url}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_key_in_an_hsm() {
    init_logs();
    let tmp = tempfile::tempdir().unwrap();
    let conf = softhsm(tmp.path(), "arca-e2e");
    std::env::set_var("SOFTHSM2_CONF", &conf);
    std::env::set_var("ARCA_TEST_HSM_PIN", "4321");
    let mut cfg = config(&tmp.path().join("data"));
    cfg.root.mode = "hsm".into();
    cfg.root.hsm.token_label = "arca-e2e".into();
    cfg.root.hsm.pin_env = Some("ARCA_TEST_HSM_PIN".into());

    let running = arca_server::start_with_clock(&cfg, Arc::new(ManualClock::new()))
        .await
        .unwrap();
    assert!(running
        .service
        .store()
        .get_meta("root.sealed.dev")
        .await
        .unwrap()
        .is_none());
    assert!(
        !cfg.data_dir.join("unseal.key").exists(),
        "no unseal file in HSM mode"
    );
    let first = running.first_start.as_ref().expect("first start");
    let token = first.admin.as_ref().unwrap().2.token.to_string();
    let ca = std::fs::read(cfg.data_dir.join("tls").join("ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}", running.addr.port());
    let (st, v) = call(&client, &url, &token, "/v1/keys", json!({"name": "k"})).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = call(
        &client,
        &url,
        &token,
        "/v1/keys/k/encrypt",
        json!({"plaintext": b64(b"in the hsm")}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let ct = v["ciphertext"].clone();
    let (_, status) = {
        let r = client
            .get(format!("{url}/v1/sys/status"))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status["sealed"], false);
    // What is true of an HSM root: the mode, and the crypto that serves.
    assert_eq!(status["mode"], "hsm", "{status}");
    let ready: Value = client
        .get(format!("{url}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["root"], "hsm", "{ready}");
    assert_eq!(ready["crypto"], "software, pkcs11", "{ready}");
    running.shutdown().await;

    // A restart unseals itself from the token; old ciphertexts decrypt.
    let running = arca_server::start_with_clock(&cfg, Arc::new(ManualClock::new()))
        .await
        .unwrap();
    assert!(running.first_start.is_none());
    let url = format!("https://127.0.0.1:{}", running.addr.port());
    let (st, v) = call(
        &client,
        &url,
        &token,
        "/v1/decrypt",
        json!({"ciphertext": ct}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(unb64(&v["plaintext"]), b"in the hsm");
    running.shutdown().await;

    // The data directory on another machine, with a token of the same label but not the
    // key: it does not start; and dev mode cannot open it either.
    let copy = tmp.path().join("copy");
    let out = Command::new("cp")
        .arg("-a")
        .arg(&cfg.data_dir)
        .arg(&copy)
        .output()
        .unwrap();
    assert!(out.status.success());
    let other = tempfile::tempdir().unwrap();
    let conf2 = softhsm(other.path(), "arca-e2e");
    std::env::set_var("SOFTHSM2_CONF", &conf2);
    let mut cfg2 = cfg.clone();
    cfg2.data_dir = copy.clone();
    let e = arca_server::start_with_clock(&cfg2, Arc::new(ManualClock::new()))
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("no key labelled"), "{e:#}");
    cfg2.root.mode = "dev".into();
    let e = arca_server::start_with_clock(&cfg2, Arc::new(ManualClock::new()))
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("HSM"), "{e:#}");
}
