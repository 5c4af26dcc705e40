//! Criterion benches of the service hot path: the calls a REST, KMIP or AWS request makes
//! once its bytes are decoded, with a real SQLite store behind (which the hot path must not
//! touch once the key is cached).
//!
//! Run: `cargo bench -p arca-service --bench hot_path`

use std::sync::Arc;

use arca_crypto::SoftwareProvider;
use arca_service::api::*;
use arca_service::{Caller, Door, RequestMeta, Service, ServiceConfig, SystemClock};
use arca_store::SqliteStore;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use zeroize::Zeroizing;

struct Fixture {
    svc: Arc<Service>,
    caller: Caller,
    token: String,
    _dir: tempfile::TempDir,
}

fn fixture(rt: &tokio::runtime::Runtime) -> Fixture {
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("arca.db"))
            .await
            .unwrap();
        let svc = Arc::new(Service::new(
            Arc::new(store),
            Arc::new(SoftwareProvider),
            Arc::new(SystemClock),
            ServiceConfig {
                // The bench calls far faster than any client could; it measures the work,
                // not the quota (the limiter's own cost stays in: a zero rate skips only
                // the bucket arithmetic).
                limits: arca_service::LimitsConfig {
                    per_principal_rps: 0.0,
                    per_source_rps: 0.0,
                    ..Default::default()
                },
                ..ServiceConfig::default()
            },
        ));
        svc.unseal_dev(dir.path()).await.unwrap();
        let first = svc.ensure_default_tenant().await.unwrap().unwrap();
        let token = first.admin.unwrap().2.token.to_string();
        let caller = svc
            .authenticate(&token, RequestMeta::new("bench", "127.0.0.1", Door::Rest))
            .await
            .unwrap();
        for (name, spec, usage) in [
            ("aes", "AES_256", "ENCRYPT_DECRYPT"),
            ("p256", "ECC_NIST_P256", "SIGN_VERIFY"),
            ("rsa", "RSA_2048", "SIGN_VERIFY"),
            ("hmac", "HMAC_256", "GENERATE_VERIFY_MAC"),
        ] {
            let req: CreateKeyRequest = serde_json::from_value(
                serde_json::json!({"name": name, "spec": spec, "usage": [usage]}),
            )
            .unwrap();
            svc.create_key(&caller, req).await.unwrap();
        }
        Fixture {
            svc,
            caller,
            token,
            _dir: dir,
        }
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let f = fixture(&rt);
    let kib = vec![7u8; 1024];
    let ct = rt
        .block_on(f.svc.encrypt(
            &f.caller,
            "aes",
            EncryptRequest {
                plaintext: Secret::new(Zeroizing::new(kib.clone())),
                aad: None,
                encryption_context: Default::default(),
                encryption_algorithm: None,
            },
        ))
        .unwrap()
        .ciphertext;

    let mut g = c.benchmark_group("service");
    g.throughput(Throughput::Elements(1));
    g.bench_function("authenticate", |b| {
        b.to_async(&rt).iter(|| async {
            let meta = RequestMeta::new("b", "127.0.0.1", Door::Rest);
            f.svc.authenticate(&f.token, meta).await.unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("encrypt", "1KiB"), |b| {
        b.to_async(&rt).iter(|| async {
            let r = EncryptRequest {
                plaintext: Secret::new(Zeroizing::new(kib.clone())),
                aad: None,
                encryption_context: Default::default(),
                encryption_algorithm: None,
            };
            f.svc.encrypt(&f.caller, "aes", r).await.unwrap()
        })
    });
    g.bench_function(BenchmarkId::new("decrypt", "1KiB"), |b| {
        b.to_async(&rt).iter(|| async {
            let r = DecryptRequest {
                ciphertext: ct.clone(),
                aad: None,
                encryption_context: Default::default(),
            };
            f.svc.decrypt(&f.caller, None, r).await.unwrap()
        })
    });
    g.bench_function("generate_data_key", |b| {
        b.to_async(&rt).iter(|| async {
            f.svc
                .generate_data_key(&f.caller, "aes", GenerateDataKeyRequest::default(), true)
                .await
                .unwrap()
        })
    });
    for key in ["p256", "rsa"] {
        g.bench_function(BenchmarkId::new("sign", key), |b| {
            b.to_async(&rt).iter(|| async {
                let r = SignRequest {
                    message: Secret::new(Zeroizing::new(b"benchmark message".to_vec())),
                    message_type: Default::default(),
                    signing_algorithm: None,
                    pss_salt: None,
                };
                f.svc.sign(&f.caller, key, r).await.unwrap()
            })
        });
    }
    g.bench_function("generate_mac", |b| {
        b.to_async(&rt).iter(|| async {
            let r = MacRequest {
                message: Secret::new(Zeroizing::new(kib.clone())),
                mac_algorithm: None,
            };
            f.svc.generate_mac(&f.caller, "hmac", r).await.unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
