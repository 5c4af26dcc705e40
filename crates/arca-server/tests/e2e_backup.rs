//! Backup and restore at scale, through the real server: 100,000 keys, a backup taken over
//! HTTPS while requests keep coming, refused when a byte is flipped or the file is cut,
//! staged into a new data directory and applied at start; every sampled ciphertext
//! decrypts afterwards, the old credentials work and the audit trail (restored, then
//! continued) verifies.

mod common;

use std::sync::Arc;

use arca_service::api::CreateKeyRequest;
use arca_service::{Door, ManualClock, RequestMeta};
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// 100,000 keys; `ARCA_BACKUP_TEST_KEYS` sets fewer for a quick local run.
fn keys() -> usize {
    std::env::var("ARCA_BACKUP_TEST_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}
const SAMPLES: usize = 200;

/// Where the data directories go: memory when the machine has it (the test writes
/// hundreds of thousands of rows; fsync on a disk would dominate its time).
fn scratch() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

async fn client_for(dir: &std::path::Path) -> reqwest::Client {
    let ca = std::fs::read(dir.join("tls").join("ca.pem")).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap()
}

async fn post(
    c: &reqwest::Client,
    url: &str,
    token: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = c
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
async fn backup_of_100k_keys_restores_into_a_new_data_dir() {
    init_logs();
    let keys_n = keys();
    let tmp = scratch();
    let data = tmp.path().join("data");
    let cfg = config(&data);
    let running = arca_server::start_with_clock(&cfg, Arc::new(ManualClock::new()))
        .await
        .unwrap();
    let first = running.first_start.as_ref().unwrap();
    let token = first.admin.as_ref().unwrap().2.token.to_string();
    let operator = first.operator.as_ref().unwrap().1.token.to_string();
    let svc = running.service.clone();
    let url = format!("https://127.0.0.1:{}", running.addr.port());
    let client = client_for(&data).await;

    // The keys, made through the service by eight workers.
    let t0 = std::time::Instant::now();
    let mut workers = vec![];
    for w in 0..8 {
        let (svc, token) = (svc.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let caller = svc
                .authenticate(&token, RequestMeta::new("fixture", "127.0.0.1", Door::Rest))
                .await
                .unwrap();
            for i in (w..keys_n).step_by(8) {
                let req: CreateKeyRequest =
                    serde_json::from_value(json!({"name": format!("k{i:06}")})).unwrap();
                svc.create_key(&caller, req).await.unwrap();
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    eprintln!("created {keys_n} keys in {:?}", t0.elapsed());

    // Ciphertexts under a sample of them, over HTTPS.
    let mut samples = vec![];
    for s in 0..SAMPLES {
        let name = format!("k{:06}", s * (keys_n / SAMPLES) + 7 % (keys_n / SAMPLES));
        let pt = format!("sample {s}").into_bytes();
        let (st, v) = post(
            &client,
            &url,
            &token,
            &format!("/v1/keys/{name}/encrypt"),
            json!({"plaintext": b64(&pt), "encryption_context": {"n": s.to_string()}}),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        samples.push((s, pt, v["ciphertext"].clone()));
    }
    // Something to carry besides keys: a principal, an approval rule, an alias.
    post(
        &client,
        &url,
        &token,
        "/v1/principals",
        json!({"name": "app", "roles": ["crypto-user"]}),
    )
    .await;
    post(
        &client,
        &url,
        &token,
        "/v1/aliases",
        json!({"alias": "alias/first", "key": "k000007"}),
    )
    .await;

    // The backup, over HTTPS, while other requests keep coming.
    let busy = {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tokio::spawn(async move {
            let mut n = 0;
            for _ in 0..200 {
                let (st, _) = post(
                    &client,
                    &url,
                    &token,
                    "/v1/keys/k000007/encrypt",
                    json!({"plaintext": b64(b"during")}),
                )
                .await;
                assert_eq!(st, StatusCode::OK);
                n += 1;
            }
            n
        })
    };
    let t0 = std::time::Instant::now();
    let r = client
        .post(format!("{url}/v1/sys/backup"))
        .bearer_auth(&operator)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let backup = r.bytes().await.unwrap().to_vec();
    eprintln!("backup of {} bytes in {:?}", backup.len(), t0.elapsed());
    assert_eq!(busy.await.unwrap(), 200, "the server kept serving");
    // A tenant admin may not take one.
    let (st, _) = post(&client, &url, &token, "/v1/sys/backup", json!({})).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    running.shutdown().await;
    let file = tmp.path().join("arca.backup");
    std::fs::write(&file, &backup).unwrap();
    // No key material or token in clear in the file.
    assert!(!backup.windows(12).any(|w| w == b"sample 1 cip"));
    assert!(!backup.windows(token.len()).any(|w| w == token.as_bytes()));

    // A flipped byte and a cut file are refused before anything is written.
    let mut flipped = backup.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x20;
    std::fs::write(tmp.path().join("flipped"), &flipped).unwrap();
    let e = arca_service::backup::check_backup(&tmp.path().join("flipped")).unwrap_err();
    assert!(e.to_string().contains("checksum does not match"), "{e}");
    std::fs::write(tmp.path().join("cut"), &backup[..backup.len() * 2 / 3]).unwrap();
    let e = arca_service::backup::check_backup(&tmp.path().join("cut")).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");

    // Staged into a new data directory (as `arca restore` does), applied at start.
    let header = arca_service::backup::check_backup(&file).unwrap();
    assert_eq!(header.custody, "dev");
    let data2 = tmp.path().join("data2");
    std::fs::create_dir_all(&data2).unwrap();
    let store = arca_store::SqliteStore::open(&data2.join("arca.db"))
        .await
        .unwrap();
    arca_service::backup::stage_restore(&store, &header)
        .await
        .unwrap();
    store.close().await;
    std::fs::copy(data.join("unseal.key"), data2.join("unseal.key")).unwrap();
    std::fs::copy(&file, data2.join(arca_service::backup::PENDING_RESTORE)).unwrap();
    let t0 = std::time::Instant::now();
    let running = arca_server::start_with_clock(&config(&data2), Arc::new(ManualClock::new()))
        .await
        .unwrap();
    eprintln!("restored at start in {:?}", t0.elapsed());
    assert!(
        running.first_start.is_none(),
        "no new tenant: the restored ones are there"
    );
    assert!(!data2.join(arca_service::backup::PENDING_RESTORE).exists());
    let url = format!("https://127.0.0.1:{}", running.addr.port());
    let client = client_for(&data2).await;
    for (s, pt, ct) in &samples {
        let (st, v) = post(
            &client,
            &url,
            &token,
            "/v1/decrypt",
            json!({"ciphertext": ct, "encryption_context": {"n": s.to_string()}}),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "sample {s}: {v}");
        assert_eq!(&unb64(&v["plaintext"]), pt);
    }
    let r = client
        .get(format!("{url}/v1/keys/alias%2Ffirst"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let keys = running.service.store().count_keys_by_state().await.unwrap();
    assert_eq!(keys.iter().map(|(_, n)| n).sum::<i64>(), keys_n as i64);
    // The trail is the old one, continued: it verifies, and says it was restored.
    let pk = running.service.audit_public_key().await.unwrap();
    let report = arca_service::trail::verify_store(running.service.store().as_ref(), &pk)
        .await
        .unwrap()
        .unwrap();
    assert!(report.last_seq > header.audit_head.as_ref().unwrap().0);
    let all = arca_service::trail::read_all(running.service.store().as_ref())
        .await
        .unwrap();
    assert!(all
        .iter()
        .any(|e| e.operation == "RestoreBackup" && e.outcome == "ok"));
    running.shutdown().await;

    // A forged file whose checksum was recomputed passes the first check, but its chunks do
    // not verify with the key: the server refuses to start on it and changes nothing.
    let data3 = tmp.path().join("data3");
    std::fs::create_dir_all(&data3).unwrap();
    let store = arca_store::SqliteStore::open(&data3.join("arca.db"))
        .await
        .unwrap();
    arca_service::backup::stage_restore(&store, &header)
        .await
        .unwrap();
    store.close().await;
    std::fs::copy(data.join("unseal.key"), data3.join("unseal.key")).unwrap();
    let mut forged = backup.clone();
    let body_at = 12 + u32::from_be_bytes(forged[8..12].try_into().unwrap()) as usize + 4 + 100;
    forged[body_at] ^= 1;
    let n = forged.len();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &forged[..n - 32]);
    forged[n - 32..].copy_from_slice(digest.as_ref());
    std::fs::write(data3.join(arca_service::backup::PENDING_RESTORE), &forged).unwrap();
    let e = arca_server::start_with_clock(&config(&data3), Arc::new(ManualClock::new()))
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("does not verify"), "{e:#}");
    let store = arca_store::SqliteStore::open(&data3.join("arca.db"))
        .await
        .unwrap();
    assert!(arca_store::KeyStore::list_tenants(&store)
        .await
        .unwrap()
        .is_empty());
}
