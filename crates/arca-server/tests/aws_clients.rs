//! Real AWS clients against Arca's AWS-compatible door over HTTPS: boto3 and the `aws` CLI
//! (PyPI `awscli`), signing with SigV4 access key pairs that Arca issued.
//!
//! The Python with the clients comes from `ARCA_PYTHON` (the test command makes a venv and
//! sets it; the `aws` CLI is installed beside it); without it the tests fail, never skip.

mod common;

use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn python() -> String {
    std::env::var("ARCA_PYTHON").unwrap_or_else(|_| {
        panic!(
            "ARCA_PYTHON is not set: run scripts/test, which makes the venv with boto3 and awscli"
        )
    })
}

/// A server with the AWS door on, a tenant whose keys its admin may use, and an access key
/// pair for that admin.
struct AwsServer {
    s: TestServer,
    endpoint: String,
    access_key_id: String,
    secret: String,
}

/// An access key pair for the principal behind `h` (issued by itself).
async fn aws_pair(h: &TestServer) -> (String, String) {
    let me = h.get("/v1/whoami").await.1;
    let pid = me["principal_id"].as_str().unwrap();
    let (st, cred) = h
        .post(
            &format!("/v1/principals/{pid}/aws-credentials"),
            json!({"name": "tests"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{cred}");
    (
        cred["access_key_id"].as_str().unwrap().to_string(),
        cred["secret_access_key"].as_str().unwrap().to_string(),
    )
}

impl AwsServer {
    async fn start() -> AwsServer {
        Self::start_with(|_| {}).await
    }

    /// A server with the door on, `/keystores/acme` serving the default tenant's keys, and
    /// `tweak` applied.
    async fn start_with(tweak: impl Fn(&mut arca_server::config::Config)) -> AwsServer {
        let s = TestServer::start_with(|c| {
            c.aws.enabled = true;
            c.aws.listen = "127.0.0.1:0".into();
            c.aws.xks = vec![arca_server::config::XksStoreConfig {
                path_prefix: "/keystores/acme".into(),
                tenant: "default".into(),
            }];
            tweak(c);
        })
        .await;
        let (st, v) = s
            .req(
                Method::PUT,
                "/v1/tenant/settings",
                Some(json!({"default_key_policy": [
                    {"effect": "allow", "principals": ["role:tenant-admin"], "actions": ["*"]}
                ]})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let (access_key_id, secret) = aws_pair(&s).await;
        let addr = s.running.as_ref().unwrap().aws_addr.expect("AWS door on");
        AwsServer {
            endpoint: format!("https://127.0.0.1:{}", addr.port()),
            access_key_id,
            secret,
            s,
        }
    }

    /// Runs a client script with the endpoint and credentials in its environment; its
    /// stdout on success.
    async fn run(&self, script: &str, extra: &[(&str, &str)]) -> String {
        run_client(
            &self.s,
            &self.endpoint,
            (&self.access_key_id, &self.secret),
            script,
            extra,
        )
        .await
    }

    /// The trail's events of one operation (read from the store: refused authentications
    /// belong to no tenant, so no tenant's auditor sees them).
    async fn audit(&self, operation: &str) -> Vec<Value> {
        let svc = self.s.service();
        svc.flush_audit().await;
        svc.store()
            .search_audit(&arca_store::AuditQuery {
                operation: Some(operation.to_string()),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .iter()
            .map(|e| serde_json::to_value(e.decode().unwrap()).unwrap())
            .collect()
    }
}

/// Runs a client script against the AWS door of `s` at `endpoint`, signing with `pair`;
/// its stdout on success (the script prints OK last).
async fn run_client(
    s: &TestServer,
    endpoint: &str,
    pair: (&str, &str),
    script: &str,
    extra: &[(&str, &str)],
) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let ca = s.data_dir.join("tls").join("ca.pem");
    let mut cmd = std::process::Command::new(python());
    cmd.arg(&script)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_CA_BUNDLE", &ca)
        .env("AWS_ACCESS_KEY_ID", pair.0)
        .env("AWS_SECRET_ACCESS_KEY", pair.1)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (n, v) in extra {
        cmd.env(n, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{}:\n{stdout}", script.display());
    assert!(
        out.status.success() && stdout.contains("OK"),
        "{} failed:\n{stdout}\n{stderr}",
        script.display()
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_covers_the_kms_api() {
    let a = AwsServer::start().await;
    let out = a.run("aws_boto3.py", &[]).await;
    // Every operation went through the service: the trail has them, from the AWS door.
    let enc = a.audit("Encrypt").await;
    assert!(
        enc.iter()
            .any(|e| e["door"] == "aws" && e["outcome"] == "ok"),
        "Encrypt events from the AWS door: {enc:?}"
    );
    // The imported material expires a day on: then the lifecycle task deletes it and the
    // key waits for an import again.
    let ext = out
        .lines()
        .find_map(|l| l.strip_prefix("EXTERNAL_KEY="))
        .expect("the script names its imported key");
    let k = a.s.get(&format!("/v1/keys/{ext}")).await.1;
    assert!(!k["pending_import"].as_bool().unwrap(), "{k}");
    assert!(k["material_expires_at"].is_string(), "{k}");
    a.s.advance(chrono::Duration::days(2)).await;
    let k = a.s.get(&format!("/v1/keys/{ext}")).await.1;
    assert!(k["pending_import"].as_bool().unwrap(), "{k}");
    let history = a.s.get(&format!("/v1/keys/{ext}/history")).await.1;
    assert!(
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "delete-imported-material" && e["actor"] == "system"),
        "{history}"
    );
    let (st, v) =
        a.s.post(
            &format!("/v1/keys/{ext}/encrypt"),
            json!({"plaintext": common::b64(b"x")}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    a.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_cli_works_by_changing_the_endpoint() {
    let a = AwsServer::start().await;
    a.run("aws_cli.py", &[]).await;
    a.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_checked_as_aws_checks_them() {
    let a = AwsServer::start().await;
    // A wrong secret, an unknown access key id, a revoked key: refused with AWS's names.
    a.run("aws_auth.py", &[("AUTH_MODE", "bad")]).await;
    let refusals = a.audit("Authenticate").await;
    assert!(
        refusals.len() >= 2,
        "failed authentications are on the record: {refusals:?}"
    );
    // A request signed ten minutes ago (by the server's clock) is refused as expired.
    a.s.advance(chrono::Duration::minutes(10)).await;
    a.run("aws_auth.py", &[("AUTH_MODE", "expired")]).await;
    a.s.advance(chrono::Duration::minutes(-10)).await;
    // A revoked pair stops working at once.
    let (st, v) =
        a.s.req(
            Method::DELETE,
            &format!("/v1/aws-credentials/{}", a.access_key_id),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["revoked_at"].is_string(), "{v}");
    a.run("aws_auth.py", &[("AUTH_MODE", "revoked")]).await;
    a.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xks_client_covers_the_proxy_api() {
    let a = AwsServer::start().await;
    let s = &a.s;
    // The store's keys: an AES-256 key, a suspended one, an HMAC key.
    let key = s.create(json!({"name": "xks-key"})).await;
    s.create(json!({"name": "xks-disabled"})).await;
    s.ok("/v1/keys/xks-disabled/suspend", json!({})).await;
    s.create(json!({"name": "xks-hmac", "spec": "HMAC_256"}))
        .await;
    // A second active pair for the same store (rotation), a principal no policy lets use
    // the keys, and a pair of another tenant.
    let (ak2, sk2) = aws_pair(s).await;
    let nogrant = s.principal("nogrant", &["crypto-user"], &[]).await;
    let (nak, nsk) = aws_pair(&nogrant).await;
    let (st, other) = s
        .operator()
        .post("/v1/tenants", json!({"name": "other"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{other}");
    let (oak, osk) = aws_pair(&s.with_token(other["admin_token"].as_str().unwrap())).await;
    let url = format!("{}/keystores/acme/kms/xks/v1", a.endpoint);
    let key_id = key["id"].as_str().unwrap().to_string();
    let env = [
        ("XKS_URL", url.as_str()),
        ("XKS_AK1", a.access_key_id.as_str()),
        ("XKS_SK1", a.secret.as_str()),
        ("XKS_AK2", ak2.as_str()),
        ("XKS_SK2", sk2.as_str()),
        ("XKS_OTHER_AK", oak.as_str()),
        ("XKS_OTHER_SK", osk.as_str()),
        ("XKS_NOGRANT_AK", nak.as_str()),
        ("XKS_NOGRANT_SK", nsk.as_str()),
        ("XKS_KEY", key_id.as_str()),
        ("XKS_DISABLED", "xks-disabled"),
        ("XKS_HMAC", "xks-hmac"),
    ];
    a.run("xks_client.py", &env).await;
    // The uses are on the record, from the XKS door, under AWS KMS's request ids.
    let enc: Vec<Value> = a
        .audit("Encrypt")
        .await
        .into_iter()
        .filter(|e| e["door"] == "xks" && e["outcome"] == "ok")
        .collect();
    assert!(enc.len() >= 4, "XKS encryptions audited: {enc:?}");
    assert!(
        enc.iter()
            .all(|e| uuid::Uuid::parse_str(e["request_id"].as_str().unwrap()).is_ok()),
        "kmsRequestId is the audit request id: {enc:?}"
    );
    // Revoking one of the two pairs leaves the other working.
    let (st, _) = s
        .req(
            Method::DELETE,
            &format!("/v1/aws-credentials/{}", a.access_key_id),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let env2 = [
        ("XKS_URL", url.as_str()),
        ("XKS_AK1", ak2.as_str()),
        ("XKS_SK1", sk2.as_str()),
        ("XKS_AK2", ak2.as_str()),
        ("XKS_SK2", sk2.as_str()),
        ("XKS_OTHER_AK", a.access_key_id.as_str()),
        ("XKS_OTHER_SK", a.secret.as_str()),
        ("XKS_NOGRANT_AK", nak.as_str()),
        ("XKS_NOGRANT_SK", nsk.as_str()),
        ("XKS_KEY", key_id.as_str()),
        ("XKS_DISABLED", "xks-disabled"),
        ("XKS_HMAC", "xks-hmac"),
    ];
    a.run("xks_client.py", &env2).await;
    a.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xks_store_over_its_rate_is_throttled() {
    let a = AwsServer::start_with(|c| {
        c.service.limits.per_principal_rps = 1.0;
        c.service.limits.per_principal_burst = 4.0;
    })
    .await;
    let url = format!("{}/keystores/acme/kms/xks/v1", a.endpoint);
    a.run(
        "xks_client.py",
        &[
            ("XKS_MODE", "throttle"),
            ("XKS_URL", url.as_str()),
            ("XKS_AK1", a.access_key_id.as_str()),
            ("XKS_SK1", a.secret.as_str()),
            ("XKS_KEY", "unused"),
        ],
    )
    .await;
    a.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byok_exports_open_with_the_destination_s_private_key() {
    let a = AwsServer::start().await;
    let s = &a.s;
    // Keys of known material (imported in plaintext here, so the test knows the bytes).
    let aes: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let kek: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(53).wrapping_add(7))
        .collect();
    let ec = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
    )
    .unwrap();
    let ec_pkcs8 = ec.to_pkcs8v1().unwrap().as_ref().to_vec();
    s.create(json!({"name": "byok-aes", "extractable": true, "material": common::b64(&aes)}))
        .await;
    s.create(
        json!({"name": "byok-ec", "spec": "ECC_NIST_P256", "extractable": true,
        "material": common::b64(&ec_pkcs8)}),
    )
    .await;
    s.create(json!({"name": "byok-kek", "material": common::b64(&kek)}))
        .await;
    s.create(json!({"name": "byok-locked"})).await;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let ca = s.data_dir.join("tls").join("ca.pem");
    let env = [
        ("ARCA_URL", s.url.clone()),
        ("ARCA_TOKEN", s.token.clone()),
        ("ARCA_CA", ca.display().to_string()),
        ("AES_KEY", "byok-aes".into()),
        ("AES_HEX", hex(&aes)),
        ("EC_KEY", "byok-ec".into()),
        ("EC_PKCS8_B64", common::b64(&ec_pkcs8)),
        ("KEK_KEY", "byok-kek".into()),
        ("KEK_HEX", hex(&kek)),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    a.run("byok_export.py", &env).await;
    // Exported keys are no longer fresh.
    let k = s.get("/v1/keys/byok-aes").await.1;
    assert_eq!(k["exported"], true, "{k}");
    // A key not created extractable never leaves, wrapped or not.
    let (st, v) = s
        .post(
            "/v1/keys/byok-locked/export-wrapped",
            json!({"target": "ARCA", "wrapping_key": "byok-kek"}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    // Under a quorum rule, the export waits for approval, and the approval runs the same
    // wrapped export (never a plaintext one).
    let (st, v) = s
        .req(
            Method::PUT,
            "/v1/tenant/settings",
            Some(json!({
                "allow_multiple_roles": true,
                "default_key_policy": [
                    {"effect": "allow", "principals": ["role:tenant-admin"], "actions": ["*"]}
                ],
                "approval_rules": [{"actions": ["ExportKey"], "approvals": 1}],
            })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let approver = s.principal("approver-1", &["approver"], &[]).await;
    let (st, v) = s
        .post(
            "/v1/keys/byok-aes/export-wrapped",
            json!({"target": "ARCA", "wrapping_key": "byok-kek"}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["error"]["approval_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, v) = approver
        .post(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, done) = s
        .post(&format!("/v1/approvals/{id}/execute"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    let r = &done["result"];
    assert_eq!(r["target"], "ARCA", "{done}");
    assert!(r.get("material").is_none(), "never plaintext: {done}");
    let unwrapped = arca_crypto::wrap::kwp_unwrap(&kek, &common::unb64(&r["wrapped"])).unwrap();
    assert_eq!(&unwrapped[..], &aes[..]);
    // The known material is nowhere in the database files.
    s.service().flush_audit().await;
    for entry in std::fs::read_dir(&s.data_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            for secret in [&aes[..], &kek[..]] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret),
                    "key material in {}",
                    path.display()
                );
            }
        }
    }
    a.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_policies_and_grants_map_onto_arca_policies() {
    let a = AwsServer::start().await;
    let app = a.s.principal("app", &["crypto-user"], &[]).await;
    let (ak, sk) = aws_pair(&app).await;
    let tenant = a.s.get("/v1/whoami").await.1["tenant_id"]
        .as_str()
        .unwrap()
        .to_string();
    let door = arca_server::aws::AwsDoor {
        svc: a.s.service().clone(),
        region: "us-east-1".into(),
        max_body_bytes: 1,
        xks: vec![],
    };
    let account = door.account_id(uuid::Uuid::parse_str(&tenant).unwrap());
    a.run(
        "aws_grants.py",
        &[("APP_AK", &ak), ("APP_SK", &sk), ("ACCOUNT", &account)],
    )
    .await;

    // A grant is a policy change: a quorum rule on PutKeyPolicy covers CreateGrant and
    // RevokeGrant on the AWS door, and the approved grant is the one that takes effect.
    let (st, mut settings) = a.s.get("/v1/tenant/settings").await;
    assert_eq!(st, StatusCode::OK, "{settings}");
    settings["approval_rules"] = json!([{"actions": ["PutKeyPolicy"], "approvals": 1}]);
    let (st, v) =
        a.s.req(Method::PUT, "/v1/tenant/settings", Some(settings))
            .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let approver = a.s.principal("grant-approver", &["approver"], &[]).await;
    let out = a
        .run(
            "aws_grants.py",
            &[
                ("APP_AK", &ak),
                ("APP_SK", &sk),
                ("ACCOUNT", &account),
                ("GRANTS_STEP", "request"),
            ],
        )
        .await;
    let word = |w: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(w))
            .unwrap()
            .trim()
            .to_string()
    };
    let (key, approval) = (word("KEY "), word("APPROVAL "));
    let (st, v) = a.s.get(&format!("/v1/approvals/{approval}")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["action"], "CreateGrant", "{v}");
    let (st, v) = approver
        .post(&format!("/v1/approvals/{approval}/approve"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) =
        a.s.post(&format!("/v1/approvals/{approval}/execute"), json!({}))
            .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["result"]["operations"],
        json!(["Encrypt", "Decrypt"]),
        "{v}"
    );
    a.run(
        "aws_grants.py",
        &[
            ("APP_AK", &ak),
            ("APP_SK", &sk),
            ("ACCOUNT", &account),
            ("GRANTS_STEP", "granted"),
            ("KEY", &key),
        ],
    )
    .await;
    a.s.shutdown().await;
}

/// XKS over a key generated in the HSM (SoftHSM2): AES-GCM runs in the token. The only
/// test of this binary that sets SOFTHSM2_CONF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xks_over_an_hsm_protected_key() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = common::softhsm(tmp.path(), "arca-xks");
    std::env::set_var("SOFTHSM2_CONF", &conf);
    std::env::set_var("ARCA_TEST_XKS_PIN", "4321");
    let a = AwsServer::start_with(|c| {
        c.root.mode = "hsm".into();
        c.root.hsm.token_label = "arca-xks".into();
        c.root.hsm.pin_env = Some("ARCA_TEST_XKS_PIN".into());
    })
    .await;
    let k =
        a.s.create(json!({"name": "xks-hsm", "protection_level": "HSM"}))
            .await;
    assert_eq!(k["protection_level"], "HSM", "{k}");
    let url = format!("{}/keystores/acme/kms/xks/v1", a.endpoint);
    a.run(
        "xks_client.py",
        &[
            ("XKS_MODE", "roundtrip"),
            ("XKS_URL", url.as_str()),
            ("XKS_AK1", a.access_key_id.as_str()),
            ("XKS_SK1", a.secret.as_str()),
            ("XKS_KEY", k["id"].as_str().unwrap()),
        ],
    )
    .await;
    a.s.shutdown().await;
}

/// The REST side of the import flow, with the server's clock: an import token expires after
/// 24 hours, a forged one names nothing, and refusals change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_tokens_expire() {
    let s = TestServer::start().await;
    s.create(json!({"name": "incoming", "pending_import": true}))
        .await;
    let (st, p) = s
        .post(
            "/v1/keys/incoming/import-parameters",
            json!({"wrapping_algorithm": "RSAES_OAEP_SHA_256", "wrapping_key_spec": "RSA_2048"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let material = [0x42u8; 32];
    let wrapped = arca_crypto::wrap::wrap_to_public(
        "public_key",
        &common::unb64(&p["public_key"]),
        arca_crypto::wrap::RsaWrap::Oaep(arca_crypto::provider::OaepHash::Sha256),
        &material,
    )
    .unwrap();
    let body = |token: &Value| json!({"import_token": token, "encrypted_key_material": common::b64(&wrapped)});
    // A forged token.
    let (st, v) = s
        .post(
            "/v1/keys/incoming/import",
            body(&json!(common::b64(
                b"arca-import-v1:00000000000000000000000000000000"
            ))),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["field"], "import_token", "{v}");
    // 25 hours later the real one has expired.
    s.advance(chrono::Duration::hours(25)).await;
    let (st, v) = s
        .post("/v1/keys/incoming/import", body(&p["import_token"]))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        v["error"]["message"],
        arca_service::byok::IMPORT_TOKEN_EXPIRED,
        "{v}"
    );
    // Until material comes, the key is neither activated nor rotated.
    let (st, v) = s.post("/v1/keys/incoming/activate", json!({})).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let (st, v) = s
        .post(
            "/v1/keys/incoming/rotate",
            json!({"material": common::b64(&material)}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let k = s.get("/v1/keys/incoming").await.1;
    assert_eq!(k["pending_import"], true, "nothing changed: {k}");
    assert_eq!(k["versions"].as_array().unwrap().len(), 0, "{k}");
    s.shutdown().await;
}

/// InternalException: a key whose stored material no longer authenticates under its
/// tenant KEK (damaged in the store) fails as the spec's generic error, and says nothing
/// of the material.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xks_internal_failures_are_internal_exception() {
    let a = AwsServer::start().await;
    let k = a.s.create(json!({"name": "damaged"})).await;
    let id = uuid::Uuid::parse_str(k["id"].as_str().unwrap()).unwrap();
    let store = a.s.service().store().clone();
    let tenant =
        uuid::Uuid::parse_str(a.s.get("/v1/whoami").await.1["tenant_id"].as_str().unwrap())
            .unwrap();
    let mut key = store.get_key(tenant, id).await.unwrap().unwrap();
    let versions = store.get_versions(id).await.unwrap();
    let expected = key.revision;
    key.revision += 1;
    store
        .write_key(&arca_store::KeyWrite {
            key,
            expected_revision: Some(expected),
            versions: vec![arca_store::VersionWrite {
                version: versions[0].clone(),
                material: arca_store::MaterialChange::Set(vec![7u8; 60]),
            }],
            events: vec![],
            next_due_at: None,
            records: vec![],
            audit: vec![],
        })
        .await
        .unwrap();
    let url = format!("{}/keystores/acme/kms/xks/v1", a.endpoint);
    a.run(
        "xks_client.py",
        &[
            ("XKS_MODE", "internal"),
            ("XKS_URL", url.as_str()),
            ("XKS_AK1", a.access_key_id.as_str()),
            ("XKS_SK1", a.secret.as_str()),
            ("XKS_KEY", k["id"].as_str().unwrap()),
        ],
    )
    .await;
    a.s.shutdown().await;
}

/// DependencyTimeoutException: the store behind the proxy stops answering (here its keys
/// table is taken away under the running server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xks_store_failures_are_dependency_timeouts() {
    let a = AwsServer::start().await;
    let k = a.s.create(json!({"name": "unreachable"})).await;
    let db = a.s.data_dir.join("arca.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("ALTER TABLE keys RENAME TO keys_gone")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let url = format!("{}/keystores/acme/kms/xks/v1", a.endpoint);
    a.run(
        "xks_client.py",
        &[
            ("XKS_MODE", "dependency"),
            ("XKS_URL", url.as_str()),
            ("XKS_AK1", a.access_key_id.as_str()),
            ("XKS_SK1", a.secret.as_str()),
            ("XKS_KEY", k["id"].as_str().unwrap()),
        ],
    )
    .await;
}

/// Issue 17: requests the AWS door refuses before any operation (a method or target the
/// API does not know, a body over the limit, a SigV4 header that cannot be read, a path
/// naming no external key store) leave a record: `AwsRequest` (`XksRequest` under an XKS
/// path) with the method, path, status and AWS error, naming the principal whose signature
/// verified, `anonymous` otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_refusals_are_audited() {
    const LIMIT: usize = 8192;
    let a = AwsServer::start_with(|c| c.http.max_body_bytes = LIMIT).await;
    a.run(
        "aws_door_refusals.py",
        &[("BODY_LIMIT", &LIMIT.to_string())],
    )
    .await;
    let svc = a.s.service();
    svc.flush_audit().await;
    let all = arca_service::trail::read_all(svc.store().as_ref())
        .await
        .unwrap();
    let s = |e: &arca_core::audit::AuditEvent, k: &str| {
        e.detail.get(k).and_then(|v| v.as_str()).map(str::to_owned)
    };
    let count = |op: &str, method: &str, path: &str, who: &str| {
        all.iter()
            .filter(|e| {
                e.operation == op
                    && e.outcome != "ok"
                    && e.principal == who
                    && s(e, "method").as_deref() == Some(method)
                    && s(e, "path").as_deref() == Some(path)
            })
            .count()
    };
    // GET / signed, then unsigned; PUT / signed.
    assert_eq!(count("AwsRequest", "GET", "/", "admin"), 1, "{all:#?}");
    assert_eq!(count("AwsRequest", "GET", "/", "anonymous"), 1, "{all:#?}");
    assert_eq!(count("AwsRequest", "PUT", "/", "admin"), 1, "{all:#?}");
    // The body over the limit: its signature cannot be checked without it.
    assert!(
        all.iter().any(|e| e.operation == "AwsRequest"
            && e.principal == "anonymous"
            && s(e, "aws_error").as_deref() == Some("ValidationException")
            && s(e, "target").as_deref() == Some("TrentService.ListKeys")),
        "oversized body: {all:#?}"
    );
    // A path under no configured external key store.
    assert_eq!(
        count(
            "XksRequest",
            "POST",
            "/keystores/nowhere/kms/xks/v1/health",
            "anonymous"
        ),
        1,
        "{all:#?}"
    );
    // An X-Amz-Target outside TrentService, and one naming no TrentService operation,
    // after the signature verified: both under the door's name, never the client's text.
    let unknown = |text: &str| {
        all.iter().any(|e| {
            e.door == "aws"
                && e.operation == "AwsRequest"
                && e.principal == "admin"
                && e.outcome == "invalid_input"
                && e.detail
                    .get("error")
                    .and_then(|v| v.as_str())
                    .is_some_and(|m| m.contains(text))
        })
    };
    assert!(unknown("X-Amz-Target must be"), "{all:#?}");
    assert!(unknown("Bogus is not an operation"), "{all:#?}");
    assert!(all.iter().all(|e| e.operation != "Bogus"));
    // An Authorization header that is no SigV4: a failed authentication.
    assert!(
        all.iter().any(|e| e.door == "aws"
            && e.operation == "Authenticate"
            && e.principal == "anonymous"
            && e.outcome == "unauthenticated"),
        "bad SigV4: {all:#?}"
    );
    // No record holds a credential or a body.
    for e in &all {
        let doc = serde_json::to_string(e).unwrap();
        assert!(!doc.contains(&a.secret), "a secret in {doc}");
        assert!(!doc.contains("Signature="), "a signature in {doc}");
    }
    a.s.shutdown().await;
}

/// The actions an XKS route performs, in order (it is allowed when each of them is), and
/// its path under the store's API path. The `match` has no wildcard: a route added to the
/// door does not compile here until it has a row, and [`xks_routes`] lists it.
fn xks_row(route: arca_server::aws::xks::Route<'_>) -> (&'static [arca_core::Action], String) {
    use arca_core::Action::*;
    use arca_server::aws::xks::Route;
    match route {
        // A question about the server, as KMIP's Query.
        Route::Health => (&[QueryServer], "/health".into()),
        Route::Metadata(k) => (&[DescribeKey], format!("/keys/{k}/metadata")),
        Route::Encrypt(k) => (&[DescribeKey, Encrypt], format!("/keys/{k}/encrypt")),
        Route::Decrypt(k) => (&[Decrypt], format!("/keys/{k}/decrypt")),
    }
}

/// Every XKS route, on key `k`: when a variant is added to `Route`, [`xks_row`] stops
/// compiling, and the new route belongs in this list too.
fn xks_routes(k: &str) -> Vec<arca_server::aws::xks::Route<'_>> {
    use arca_server::aws::xks::Route;
    vec![
        Route::Health,
        Route::Metadata(k),
        Route::Encrypt(k),
        Route::Decrypt(k),
    ]
}

/// Issue 17's matrix on the XKS door (the AWS External Key Store proxy API): every route
/// × each role (a principal of the store's tenant holding it, with an access key pair) and
/// a principal of another tenant with every tenant role. Each route's row ([`xks_row`])
/// names the actions it performs; it is allowed when the role table and the key policy
/// allow each of them ([`role_allows`]), refused with 403 AccessDeniedException otherwise;
/// another tenant's key pair does not belong to the store (401
/// AuthenticationFailedException). Every request has its audit record, door `xks`, under
/// AWS KMS's request id and the caller's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_the_xks_operations() {
    use arca_core::access::{role_allows, Category, Role};
    let a = AwsServer::start().await;
    let s = &a.s;
    let (st, v) = s
        .req(
            Method::PUT,
            "/v1/tenant/settings",
            Some(json!({"allow_multiple_roles": true, "default_key_policy": [
                {"effect": "allow", "principals": ["role:tenant-admin", "role:crypto-user"], "actions": ["*"]}
            ]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let permitted = |roles: &[Role], a: arca_core::Action| {
        role_allows(roles, a)
            && (a.category() != Category::KeyUse
                || roles
                    .iter()
                    .any(|r| matches!(r, Role::TenantAdmin | Role::CryptoUser)))
    };
    let key = s.create(json!({"name": "xm-key"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let routes = xks_routes(&key);
    let paths: Vec<String> = routes.iter().map(|r| xks_row(*r).1).collect();
    for (r, p) in routes.iter().zip(&paths) {
        // The path is the door's own: it routes back to the row's route.
        let full = format!("{}{p}", arca_server::aws::xks::API_PATH);
        assert_eq!(arca_server::aws::xks::route(&full).unwrap(), *r, "{p}");
    }

    let mut who: Vec<(String, Vec<Role>, TestServer, bool)> = Vec::new();
    for role in ["tenant-admin", "crypto-user", "auditor", "approver"] {
        let name = format!("xm-{role}");
        who.push((
            name.clone(),
            vec![Role::parse("role", role).unwrap()],
            s.principal(&name, &[role], &[]).await,
            false,
        ));
    }
    let (st, other) = s
        .operator()
        .post(
            "/v1/tenants",
            json!({"name": "xm-foreign", "settings": {"allow_multiple_roles": true}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{other}");
    let foreign = s
        .with_token(other["admin_token"].as_str().unwrap())
        .principal(
            "xm-everyone",
            &["tenant-admin", "crypto-user", "auditor", "approver"],
            &[],
        )
        .await;
    who.push((
        "xm-everyone".into(),
        vec![
            Role::TenantAdmin,
            Role::CryptoUser,
            Role::Auditor,
            Role::Approver,
        ],
        foreign,
        true,
    ));

    let url = format!("{}/keystores/acme/kms/xks/v1", a.endpoint);
    let paths_json = serde_json::to_string(&paths).unwrap();
    // (request id, caller, path, refused)
    let mut sent: Vec<(String, String, String, bool)> = Vec::new();
    let (mut allowed_seen, mut refused_seen) = (0, 0);
    for (name, roles, h, is_foreign) in &who {
        let (ak, sk) = aws_pair(h).await;
        let out = a
            .run(
                "xks_role_matrix.py",
                &[
                    ("XKS_URL", &url),
                    ("XKS_AK", &ak),
                    ("XKS_SK", &sk),
                    ("OWNER_AK", &a.access_key_id),
                    ("OWNER_SK", &a.secret),
                    ("XKS_PATHS", &paths_json),
                ],
            )
            .await;
        let got: serde_json::Map<String, Value> =
            serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(got.len(), routes.len(), "{got:?}");
        for (route, path) in routes.iter().zip(&paths) {
            let r = &got[path.as_str()];
            let (status, error) = (r["status"].as_u64().unwrap(), r["error"].as_str().unwrap());
            let what = format!("{name} {path}: {status} {error}");
            let (actions, _) = xks_row(*route);
            let refused = if *is_foreign {
                // Its key pair is its own tenant's, not this store's.
                assert_eq!(
                    (status, error),
                    (401, "AuthenticationFailedException"),
                    "{what}"
                );
                true
            } else if actions.iter().all(|a| permitted(roles, *a)) {
                allowed_seen += 1;
                assert_eq!(
                    (status, error),
                    (200, "ok"),
                    "allowed ({actions:?}), yet {what}"
                );
                false
            } else {
                refused_seen += 1;
                assert_eq!(
                    (status, error),
                    (403, "AccessDeniedException"),
                    "expected a refusal ({actions:?}): {what}"
                );
                true
            };
            sent.push((
                r["request_id"].as_str().unwrap().to_string(),
                name.clone(),
                path.clone(),
                refused,
            ));
        }
    }
    assert!(allowed_seen > 0 && refused_seen > 0);
    s.service().flush_audit().await;
    let trail = arca_service::trail::read_all(s.service().store().as_ref())
        .await
        .unwrap();
    for (rid, name, path, refused) in &sent {
        let records: Vec<_> = trail
            .iter()
            .filter(|e| &e.request_id == rid && e.door == "xks" && &e.principal == name)
            .collect();
        assert!(
            !records.is_empty(),
            "no audit record of {name} {path} ({rid})"
        );
        assert_eq!(
            records.iter().any(|e| e.outcome != "ok"),
            *refused,
            "{name} {path} ({rid}): {records:?}"
        );
    }
    a.s.shutdown().await;
}

/// The actions an AWS operation performs, in order (it is allowed when each of them is),
/// and whether it names one of the tenant's objects (which another tenant must not reach).
/// The `match` has no wildcard: an operation added to the door's list does not compile
/// here until it has a row.
fn aws_row(op: arca_server::aws::kms::Operation) -> (&'static [arca_core::Action], bool) {
    use arca_core::Action::*;
    use arca_server::aws::kms::Operation as O;
    match op {
        O::CreateKey => (&[CreateKey], false),
        O::DescribeKey => (&[DescribeKey], true),
        O::ListKeys => (&[ListKeys], false),
        O::EnableKey => (&[DescribeKey, ResumeKey], true),
        O::DisableKey => (&[DescribeKey, SuspendKey], true),
        O::ScheduleKeyDeletion => (&[DescribeKey, ScheduleKeyDestruction], true),
        O::CancelKeyDeletion => (&[DescribeKey, CancelKeyDestruction], true),
        O::Encrypt => (&[Encrypt], true),
        O::Decrypt => (&[Decrypt], true),
        O::ReEncrypt => (&[ReEncryptFrom, ReEncryptTo], true),
        O::GenerateDataKey => (&[GenerateDataKey], true),
        O::GenerateDataKeyWithoutPlaintext => (&[GenerateDataKeyWithoutPlaintext], true),
        O::GenerateDataKeyPair => (&[GenerateDataKeyPair], true),
        O::GenerateDataKeyPairWithoutPlaintext => (&[GenerateDataKeyPairWithoutPlaintext], true),
        O::GenerateRandom => (&[GenerateRandom], false),
        O::Sign => (&[Sign], true),
        O::Verify => (&[Verify], true),
        O::GenerateMac => (&[GenerateMac], true),
        O::VerifyMac => (&[VerifyMac], true),
        O::GetPublicKey => (&[GetPublicKey], true),
        O::EnableKeyRotation => (&[DescribeKey, UpdateKey], true),
        // Turning automatic rotation off is one of a key's protections.
        O::DisableKeyRotation => (&[DescribeKey, DisableKeyProtection], true),
        O::GetKeyRotationStatus => (&[DescribeKey], true),
        O::RotateKeyOnDemand => (&[DescribeKey, RotateKey], true),
        O::ListKeyRotations => (&[DescribeKey, GetKeyHistory], true),
        O::CreateAlias => (&[CreateAlias], true),
        O::UpdateAlias => (&[UpdateAlias], true),
        O::DeleteAlias => (&[DeleteAlias], true),
        O::ListAliases => (&[ListAliases], false),
        O::TagResource | O::UntagResource => (&[DescribeKey, UpdateKey], true),
        O::ListResourceTags => (&[DescribeKey], true),
        O::UpdateKeyDescription => (&[DescribeKey, UpdateKey], true),
        O::DescribeCustomKeyStores => (&[QueryServer], false),
        O::GetParametersForImport => (&[DescribeKey, GetParametersForImport], true),
        O::GetKeyPolicy => (&[DescribeKey, GetKeyPolicy], true),
        O::PutKeyPolicy => (&[DescribeKey, GetKeyPolicy, PutKeyPolicy], true),
        O::ListKeyPolicies => (&[DescribeKey], true),
        O::CreateGrant => (&[DescribeKey, CreateGrant], true),
        O::ListGrants => (&[DescribeKey, ListGrants], true),
        // The caller is neither the grantee nor the retiring principal: its roles decide.
        O::RetireGrant => (&[RetireGrant], true),
        O::RevokeGrant => (&[RevokeGrant], true),
        O::ImportKeyMaterial => (&[DescribeKey, ImportKeyMaterial], true),
        O::DeleteImportedKeyMaterial => (&[DescribeKey, DeleteImportedKeyMaterial], true),
    }
}

/// Issue 17's matrix on the AWS door: every operation the door performs
/// (`kms::Operation::ALL`, the type its dispatch matches on) and every one it knows but
/// does not offer (`kms::UNSUPPORTED`) × each role (an access key pair of a principal
/// holding it) and a principal of another tenant with every tenant role. Each operation's
/// row ([`aws_row`]) names the actions it performs; it is allowed when the role table and
/// the key policy allow each of them ([`role_allows`], as the REST door's
/// `e2e_access::the_access_matrix_covers_every_action`), refused with AccessDeniedException
/// otherwise; another tenant never reaches the tenant's objects; what the door does not
/// offer is UnsupportedOperationException for everyone. Every request, by its request id,
/// has its audit record naming the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_the_aws_operations() {
    use arca_core::access::{role_allows, Category, Role};
    use arca_server::aws::kms::{Operation, UNSUPPORTED};
    let a = AwsServer::start().await;
    let s = &a.s;
    let (st, v) = s
        .req(
            Method::PUT,
            "/v1/tenant/settings",
            Some(json!({"allow_multiple_roles": true, "default_key_policy": [
                {"effect": "allow", "principals": ["role:tenant-admin", "role:crypto-user"], "actions": ["*"]}
            ]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The role table, then the key policy: key use is granted to tenant-admins and
    // crypto-users.
    let permitted = |roles: &[Role], a: arca_core::Action| {
        role_allows(roles, a)
            && (a.category() != Category::KeyUse
                || roles
                    .iter()
                    .any(|r| matches!(r, Role::TenantAdmin | Role::CryptoUser)))
    };
    let door = arca_server::aws::AwsDoor {
        svc: s.service().clone(),
        region: "us-east-1".into(),
        max_body_bytes: 1,
        xks: vec![],
    };
    let account_of =
        |tenant: &Value| door.account_id(uuid::Uuid::parse_str(tenant.as_str().unwrap()).unwrap());
    let our_account = account_of(&s.get("/v1/whoami").await.1["tenant_id"]);
    // The grantee of the owner's grants, which the matrix's principals retire and revoke.
    s.principal("am-app", &["crypto-user"], &[]).await;
    let app = format!("arn:aws:iam::{our_account}:user/am-app");

    let mut who: Vec<(String, Vec<Role>, TestServer, bool)> = Vec::new();
    for role in ["tenant-admin", "crypto-user", "auditor", "approver"] {
        let name = format!("am-{role}");
        who.push((
            name.clone(),
            vec![Role::parse("role", role).unwrap()],
            s.principal(&name, &[role], &[]).await,
            false,
        ));
    }
    let (st, other) = s
        .operator()
        .post(
            "/v1/tenants",
            json!({"name": "am-foreign", "settings": {"allow_multiple_roles": true}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{other}");
    let foreign = s
        .with_token(other["admin_token"].as_str().unwrap())
        .principal(
            "am-everyone",
            &["tenant-admin", "crypto-user", "auditor", "approver"],
            &[],
        )
        .await;
    who.push((
        "am-everyone".into(),
        vec![
            Role::TenantAdmin,
            Role::CryptoUser,
            Role::Auditor,
            Role::Approver,
        ],
        foreign,
        true,
    ));

    let mut expected: Vec<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
    expected.extend(UNSUPPORTED);
    expected.sort_unstable();
    let unsupported = serde_json::to_string(UNSUPPORTED).unwrap();
    // (request id, caller, operation, refused by authorization)
    let mut sent: Vec<(String, String, String, bool)> = Vec::new();
    let (mut allowed_seen, mut refused_seen) = (0, 0);
    for (name, roles, h, is_foreign) in &who {
        let (ak, sk) = aws_pair(h).await;
        // The grantee is in the caller's own account (another tenant's principal names its
        // own), so that the grant fails, if at all, on the key.
        let grantee = format!(
            "arn:aws:iam::{}:user/{name}",
            account_of(&h.get("/v1/whoami").await.1["tenant_id"])
        );
        let out = a
            .run(
                "aws_role_matrix.py",
                &[
                    ("AWS_ACCESS_KEY_ID", &ak),
                    ("AWS_SECRET_ACCESS_KEY", &sk),
                    ("OWNER_AK", &a.access_key_id),
                    ("OWNER_SK", &a.secret),
                    ("GRANTEE", &grantee),
                    ("APP_GRANTEE", &app),
                    ("TAG", name),
                    ("UNSUPPORTED", &unsupported),
                ],
            )
            .await;
        let got: serde_json::Map<String, Value> =
            serde_json::from_str(out.lines().next().unwrap()).unwrap();
        // The script called exactly what the door knows: every operation it performs and
        // every one it does not offer.
        let mut called: Vec<&str> = got.keys().map(String::as_str).collect();
        called.sort_unstable();
        assert_eq!(
            called, expected,
            "the script's operations are not the door's"
        );
        for (op, r) in &got {
            let code = r["code"].as_str().unwrap();
            let denied = code == "AccessDeniedException";
            let what = format!("{name} {op}: {code}");
            sent.push((
                r["request_id"].as_str().unwrap().to_string(),
                name.clone(),
                op.clone(),
                denied,
            ));
            let Some(operation) = Operation::parse(op) else {
                assert_eq!(code, "UnsupportedOperationException", "{what}");
                continue;
            };
            let (actions, ours) = aws_row(operation);
            if *is_foreign {
                if ours {
                    assert!(
                        code == "NotFoundException" || denied,
                        "another tenant's object: {what}"
                    );
                } else {
                    // Its own tenant's: it works there, and lists nothing of ours.
                    assert_eq!(code, "ok", "{what}");
                    for id in r["keys"].as_array().into_iter().flatten() {
                        let id = id.as_str().unwrap();
                        assert_eq!(
                            s.get(&format!("/v1/keys/{id}")).await.0,
                            StatusCode::NOT_FOUND,
                            "{name} listed {id} of another tenant"
                        );
                    }
                }
                continue;
            }
            if actions.iter().all(|a| permitted(roles, *a)) {
                allowed_seen += 1;
                assert_eq!(code, "ok", "allowed ({actions:?}), yet {what}");
            } else {
                refused_seen += 1;
                assert!(
                    denied,
                    "{what}: expected AccessDeniedException ({actions:?})"
                );
            }
        }
    }
    assert_eq!(sent.len(), who.len() * expected.len());
    assert!(allowed_seen > 0 && refused_seen > 0);
    // Every request is on the record, by its request id, under its caller; a refusal by
    // authorization as not_permitted.
    s.service().flush_audit().await;
    let trail = arca_service::trail::read_all(s.service().store().as_ref())
        .await
        .unwrap();
    for (rid, name, op, denied) in &sent {
        let records: Vec<_> = trail
            .iter()
            .filter(|e| &e.request_id == rid && e.door == "aws")
            .collect();
        assert!(
            records.iter().any(|e| &e.principal == name),
            "no audit record of {name} {op} ({rid}): {records:?}"
        );
        if *denied {
            assert!(
                records.iter().any(|e| e.outcome == "not_permitted"),
                "{name} {op} ({rid}) refused, but no refusal recorded: {records:?}"
            );
        }
    }
    a.s.shutdown().await;
}

/// Where AWS's official XKS proxy test client is: `ARCA_XKS_TEST_CLIENT`, else the
/// workplace's pinned copy in `../shared/xks-test-client` beside the repository. It is a
/// fixture that is run, never copied into the project; without it the test fails.
fn xks_test_client() -> std::path::PathBuf {
    let dir = std::env::var_os("ARCA_XKS_TEST_CLIENT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/xks-test-client")
        });
    assert!(
        dir.join("test-xks-proxy").is_file(),
        "AWS's XKS proxy test client is not at {} (set ARCA_XKS_TEST_CLIENT to a checkout of aws-samples/aws-kms-xksproxy-test-client, or run scripts/fixtures to fetch it)",
        dir.display()
    );
    dir
}

/// Runs the official client (`./test-xks-proxy`, with `-a` when `all`) against the store
/// and returns its output, failing unless every one of its tests passed.
async fn run_xks_test_client(a: &AwsServer, all: bool, keys: &[(&str, String)]) -> String {
    let dir = xks_test_client();
    let ca = a.s.data_dir.join("tls").join("ca.pem");
    let host = a.endpoint.trim_start_matches("https://").to_string();
    let mut cmd = std::process::Command::new("bash");
    cmd.current_dir(&dir)
        .arg("./test-xks-proxy")
        .env("XKS_PROXY_HOST", &host)
        .env("URI_PREFIX", "keystores/acme")
        .env("SIGV4_ACCESS_KEY_ID", &a.access_key_id)
        .env("SIGV4_SECRET_ACCESS_KEY", &a.secret)
        .env("SECURE", format!("--cacert {}", ca.display()))
        .env("ANSI_ESCAPE", "0")
        .env("VERBOSE", "");
    if all {
        cmd.arg("-a");
    }
    for (n, v) in keys {
        cmd.env(n, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("bash runs the XKS test client");
    // The client writes its headers to stderr and its verdicts to stdout.
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let verdict = text
        .lines()
        .rev()
        .find(|l| l.contains("tests PASSED") || l.contains("tests FAILED"))
        .unwrap_or("")
        .to_string();
    eprintln!("XKS test client (-a: {all}): {verdict}");
    assert!(
        out.status.success()
            && verdict.contains("All ")
            && verdict.contains("tests PASSED")
            && !text.contains("FAILED"),
        "the XKS test client did not pass every test:\n{text}"
    );
    text
}

/// AWS's official XKS proxy test client, unmodified, with and without `-a`, against keys
/// made as a user makes them: an AES-256 key, an encrypt-only one, a decrypt-only one, and
/// one that can neither (a wrapping key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_xks_test_client_passes() {
    let a = AwsServer::start().await;
    let s = &a.s;
    s.create(json!({"name": "xks-key"})).await;
    let eo = s
        .create(json!({"name": "xks-encrypt-only", "usage": ["ENCRYPT"]}))
        .await;
    assert_eq!(eo["usage"], json!(["ENCRYPT"]), "{eo}");
    s.create(json!({"name": "xks-decrypt-only", "usage": ["DECRYPT"]}))
        .await;
    s.create(json!({"name": "xks-impotent", "usage": ["WRAP_UNWRAP"]}))
        .await;
    let keys = [
        ("KEY_ID", "xks-key".to_string()),
        ("ENCRYPT_ONLY_KEY_ID", "xks-encrypt-only".to_string()),
        ("DECRYPT_ONLY_KEY_ID", "xks-decrypt-only".to_string()),
        ("IMPOTENT_KEY_ID", "xks-impotent".to_string()),
    ];
    run_xks_test_client(&a, false, &keys).await;
    let text = run_xks_test_client(&a, true, &keys).await;
    assert!(
        text.contains("encrypt-only key") && text.contains("xks-impotent"),
        "-a ran the one-direction and impotent key tests:\n{text}"
    );
    // Each request was one audited use (no DescribeKey before an encrypt).
    let enc = a.audit("Encrypt").await;
    assert!(enc
        .iter()
        .any(|e| e["door"] == "xks" && e["outcome"] == "ok"));
    assert!(
        a.audit("DescribeKey")
            .await
            .iter()
            .filter(|e| e["door"] == "xks")
            .all(|e| e["request_id"]
                .as_str()
                .is_some_and(|r| !enc.iter().any(|x| x["request_id"] == r))),
        "no XKS encrypt made a DescribeKey record too"
    );
    a.s.shutdown().await;
}

/// The lifecycle states the door test puts keys in.
const DOOR_STATES: [&str; 7] = [
    "active",
    "pre-active",
    "suspended",
    "deactivated",
    "compromised",
    "scheduled",
    "destroyed",
];

/// What every door reports about a key is what it then does with it, in every lifecycle
/// state, through REST, KMIP, the AWS-compatible API (boto3) and XKS: one AES key (encrypt,
/// decrypt, export / Get, metadata) and one EC key (sign, verify) per state. Two tables
/// are checked: the service's rule (suspension and a scheduled destruction stop everything
/// on every door; deactivated and compromised keys only process, and only on the doors that
/// can say so) and, door by door, that the state or status it reports predicts each outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_door_reports_what_it_does_in_every_state() {
    use arca_kmip::enums::{operation as op, result_reason, result_status, state as kstate};
    use arca_kmip::message::ProtocolVersion;
    use arca_kmip::{tags, Item, Value as KValue};
    use base64::Engine;
    const V21: ProtocolVersion = ProtocolVersion::new(2, 1);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let k = common::kmip::KmipServer::start_with(|c| {
        c.aws.enabled = true;
        c.aws.listen = "127.0.0.1:0".into();
        c.aws.xks = vec![arca_server::config::XksStoreConfig {
            path_prefix: "/keystores/acme".into(),
            tenant: "default".into(),
        }];
    })
    .await;
    let s = &k.s;
    let policy = json!([{"effect": "allow",
        "principals": [format!("principal:{}", common::kmip::CLIENT), "role:tenant-admin"],
        "actions": ["*"]}]);
    let settings = |window: u32| json!({"min_destruction_window_days": window, "default_key_policy": policy.clone()});
    let (st, v) = s
        .req(Method::PUT, "/v1/tenant/settings", Some(settings(0)))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (ak, sk) = aws_pair(s).await;
    let endpoint = format!(
        "https://127.0.0.1:{}",
        s.running.as_ref().unwrap().aws_addr.unwrap().port()
    );
    let mut kmip = k.connect().await;
    let uid_item = |id: &str| Item::text_item(tags::UNIQUE_IDENTIFIER, id);

    // Every key made active (but one), with a ciphertext and a signature of each door made
    // while it was.
    let mut keys = serde_json::Map::new();
    // A KMIP ciphertext of each key: (data, IV, tag).
    type Sealed = (Vec<u8>, Vec<u8>, Vec<u8>);
    let mut kmip_ct: std::collections::BTreeMap<&str, Sealed> = Default::default();
    for state in DOOR_STATES {
        let pre = state == "pre-active";
        let aes = s
            .create(json!({"name": format!("door-aes-{state}"), "extractable": true, "pre_active": pre}))
            .await;
        let ec = s
            .create(json!({"name": format!("door-ec-{state}"), "spec": "ECC_NIST_P256", "pre_active": pre}))
            .await;
        let (aes_id, ec_id) = (
            aes["id"].as_str().unwrap().to_string(),
            ec["id"].as_str().unwrap().to_string(),
        );
        let mut entry = json!({"aes": aes_id, "ec": ec_id});
        if !pre {
            entry["ct"] = s
                .ok(
                    &format!("/v1/keys/{aes_id}/encrypt"),
                    json!({"plaintext": b64(b"door states")}),
                )
                .await["ciphertext"]
                .clone();
            entry["sig"] = s
                .ok(
                    &format!("/v1/keys/{ec_id}/sign"),
                    json!({"message": b64(b"door states")}),
                )
                .await["signature"]
                .clone();
            let p = common::kmip::ok_payload(
                &kmip
                    .op(
                        V21,
                        op::ENCRYPT,
                        vec![
                            uid_item(&aes_id),
                            Item::new(tags::DATA, KValue::bytes(b"door states".to_vec())),
                        ],
                    )
                    .await,
            );
            let bytes = |t| p.req(t).unwrap().byte_string().unwrap().to_vec();
            kmip_ct.insert(
                state,
                (
                    bytes(tags::DATA),
                    bytes(tags::IV_COUNTER_NONCE),
                    bytes(tags::AUTHENTICATED_ENCRYPTION_TAG),
                ),
            );
        }
        keys.insert(state.to_string(), entry);
    }
    let xks_url = format!("{endpoint}/keystores/acme/kms/xks/v1");
    let keys_json = Value::Object(keys.clone()).to_string();
    let prepared = run_client(
        s,
        &endpoint,
        (&ak, &sk),
        "door_states.py",
        &[
            ("XKS_URL", &xks_url),
            ("DOOR_MODE", "prepare"),
            ("DOOR_KEYS", &keys_json),
        ],
    )
    .await;
    let prepared: Value = serde_json::from_str(
        prepared
            .lines()
            .skip_while(|l| *l != "RESULT")
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    for state in DOOR_STATES {
        keys.get_mut(state).unwrap()["xks"] = prepared[state].clone();
    }

    // Into their states. Destroyed at once needs a zero waiting period; a scheduled
    // destruction then waits a day.
    for state in DOOR_STATES {
        let e = keys[state].clone();
        for id in [e["aes"].as_str().unwrap(), e["ec"].as_str().unwrap()] {
            let mv = |a: &str| format!("/v1/keys/{id}/{a}");
            match state {
                "suspended" => drop(s.ok(&mv("suspend"), json!({})).await),
                "deactivated" => drop(s.ok(&mv("deactivate"), json!({"reason": "REVOKED"})).await),
                "compromised" => drop(s.ok(&mv("report-compromise"), json!({})).await),
                "destroyed" => {
                    s.ok(&mv("deactivate"), json!({"reason": "REVOKED"})).await;
                    common::kmip::ok_payload(&kmip.op(V21, op::DESTROY, vec![uid_item(id)]).await);
                }
                _ => {}
            }
        }
    }
    let (st, v) = s
        .req(Method::PUT, "/v1/tenant/settings", Some(settings(1)))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    for id in [
        keys["scheduled"]["aes"].as_str().unwrap(),
        keys["scheduled"]["ec"].as_str().unwrap(),
    ] {
        s.ok(&format!("/v1/keys/{id}/suspend"), json!({})).await;
        s.ok(
            &format!("/v1/keys/{id}/schedule-destruction"),
            json!({"pending_window_days": 1}),
        )
        .await;
    }

    // The service's rule, state by state: (protect, process on REST and KMIP, exportable).
    let rule = |state: &str| match state {
        "active" => (true, true, true),
        "deactivated" | "compromised" => (false, true, true),
        "pre-active" | "suspended" => (false, false, true),
        _ => (false, false, false),
    };
    let outcome = |st: StatusCode| if st.is_success() { "ok" } else { "refused" };
    let ok = |b: bool| if b { "ok" } else { "refused" };
    for state in DOOR_STATES {
        let e = &keys[state];
        let (aes, ec) = (e["aes"].as_str().unwrap(), e["ec"].as_str().unwrap());
        let (protect, process, export) = rule(state);
        // REST: what GET reports, and what the operations do.
        let (_, info) = s.get(&format!("/v1/keys/{aes}")).await;
        let reported = &info["usable_now"];
        assert_eq!(
            (reported["protect"] == true, reported["process"] == true),
            (protect, process),
            "REST reports {state}: {info}"
        );
        let enc = s
            .post(
                &format!("/v1/keys/{aes}/encrypt"),
                json!({"plaintext": b64(b"x")}),
            )
            .await
            .0;
        let sign = s
            .post(
                &format!("/v1/keys/{ec}/sign"),
                json!({"message": b64(b"x")}),
            )
            .await
            .0;
        assert_eq!(
            (outcome(enc), outcome(sign)),
            (ok(protect), ok(protect)),
            "REST protect, {state}"
        );
        if !e["ct"].is_null() {
            let dec = s
                .post(
                    &format!("/v1/keys/{aes}/decrypt"),
                    json!({"ciphertext": e["ct"]}),
                )
                .await
                .0;
            let ver = s
                .post(
                    &format!("/v1/keys/{ec}/verify"),
                    json!({"message": b64(b"door states"), "signature": e["sig"]}),
                )
                .await
                .0;
            assert_eq!(
                (outcome(dec), outcome(ver)),
                (ok(process), ok(process)),
                "REST process, {state}"
            );
        }
        let exp = s.post(&format!("/v1/keys/{aes}/export"), json!({})).await.0;
        assert_eq!(outcome(exp), ok(export), "REST export, {state}");

        // KMIP: the State attribute, and what Encrypt, Decrypt, Sign, Get do.
        let p = common::kmip::ok_payload(
            &kmip
                .op(
                    V21,
                    op::GET_ATTRIBUTES,
                    vec![
                        uid_item(aes),
                        Item::enum_item(tags::ATTRIBUTE_REFERENCE, tags::STATE),
                    ],
                )
                .await,
        );
        let kst = p
            .req(tags::ATTRIBUTES)
            .unwrap()
            .req(tags::STATE)
            .unwrap()
            .enumeration()
            .unwrap();
        let (k_protect, k_process) = match kst {
            kstate::ACTIVE => (true, true),
            kstate::DEACTIVATED | kstate::COMPROMISED => (false, true),
            _ => (false, false),
        };
        assert_eq!(
            (k_protect, k_process),
            (protect, process),
            "KMIP reports {state}: {kst}"
        );
        let kres = |item: &Item| {
            let (status, reason, _) = common::kmip::result(item);
            (status == result_status::SUCCESS, reason)
        };
        let r = kres(
            &kmip
                .op(
                    V21,
                    op::ENCRYPT,
                    vec![
                        uid_item(aes),
                        Item::new(tags::DATA, KValue::bytes(b"x".to_vec())),
                    ],
                )
                .await,
        );
        assert_eq!(r.0, k_protect, "KMIP Encrypt, {state}: {r:?}");
        let r = kres(
            &kmip
                .op(
                    V21,
                    op::SIGN,
                    vec![
                        uid_item(ec),
                        Item::new(tags::DATA, KValue::bytes(b"x".to_vec())),
                    ],
                )
                .await,
        );
        assert_eq!(r.0, k_protect, "KMIP Sign, {state}: {r:?}");
        if let Some(sig) = e["sig"].as_str() {
            let sig = base64::engine::general_purpose::STANDARD
                .decode(sig)
                .unwrap();
            let r = kres(
                &kmip
                    .op(
                        V21,
                        op::SIGNATURE_VERIFY,
                        vec![
                            uid_item(ec),
                            Item::new(tags::DATA, KValue::bytes(b"door states".to_vec())),
                            Item::new(tags::SIGNATURE_DATA, KValue::bytes(sig)),
                        ],
                    )
                    .await,
            );
            assert_eq!(r.0, k_process, "KMIP Signature Verify, {state}: {r:?}");
        }
        if let Some((ct, iv, tag)) = kmip_ct.get(state) {
            let r = kres(
                &kmip
                    .op(
                        V21,
                        op::DECRYPT,
                        vec![
                            uid_item(aes),
                            Item::new(tags::DATA, KValue::bytes(ct.clone())),
                            Item::new(tags::IV_COUNTER_NONCE, KValue::bytes(iv.clone())),
                            Item::new(
                                tags::AUTHENTICATED_ENCRYPTION_TAG,
                                KValue::bytes(tag.clone()),
                            ),
                        ],
                    )
                    .await,
            );
            assert_eq!(r.0, k_process, "KMIP Decrypt, {state}: {r:?}");
        }
        let r = kres(&kmip.op(V21, op::GET, vec![uid_item(aes)]).await);
        assert_eq!(r.0, export, "KMIP Get, {state}: {r:?}");
        if kst == kstate::DESTROYED {
            assert_eq!(
                r.1,
                Some(result_reason::OBJECT_DESTROYED),
                "KMIP Get of a destroyed object, {state}"
            );
        }
    }

    // AWS and XKS: what they report (Enabled / keyStatus) and what they do.
    let out = run_client(
        s,
        &endpoint,
        (&ak, &sk),
        "door_states.py",
        &[
            ("XKS_URL", &xks_url),
            ("DOOR_MODE", "probe"),
            ("DOOR_KEYS", &Value::Object(keys.clone()).to_string()),
        ],
    )
    .await;
    let probe: Value =
        serde_json::from_str(out.lines().skip_while(|l| *l != "RESULT").nth(1).unwrap()).unwrap();
    for state in DOOR_STATES {
        let (aws, xks) = (&probe[state]["aws"], &probe[state]["xks"]);
        let serves = state == "active";
        let expect = if serves { "ok" } else { "refused" };
        let is = |v: &Value| if v == "ok" { "ok" } else { "refused" };
        if state == "destroyed" {
            // AWS reports a deleted key as not found, and finds it for nothing else either.
            assert_eq!(
                aws["describe"], "NotFoundException",
                "AWS reports {state}: {aws}"
            );
            for opn in ["encrypt", "decrypt", "sign", "verify"] {
                assert_eq!(aws[opn], "NotFoundException", "AWS {opn}, {state}: {aws}");
            }
        } else {
            assert_eq!(aws["Enabled"], json!(serves), "AWS reports {state}: {aws}");
            assert_eq!(
                aws["ec_Enabled"],
                json!(serves),
                "AWS reports {state}: {aws}"
            );
        }
        for opn in ["encrypt", "decrypt", "sign", "verify"] {
            if !aws[opn].is_null() {
                assert_eq!(is(&aws[opn]), expect, "AWS {opn}, {state}: {aws}");
            }
        }
        assert_eq!(
            xks["keyStatus"] == "ENABLED",
            serves,
            "XKS reports {state}: {xks}"
        );
        assert_eq!(
            xks["keyUsage"],
            json!(["ENCRYPT", "DECRYPT"]),
            "{state}: {xks}"
        );
        for opn in ["encrypt", "decrypt"] {
            if !xks[opn].is_null() {
                assert_eq!(is(&xks[opn]), expect, "XKS {opn}, {state}: {xks}");
            }
        }
        if !serves {
            assert!(
                [
                    "DisabledException",
                    "KMSInvalidStateException",
                    "NotFoundException"
                ]
                .contains(&aws["encrypt"].as_str().unwrap()),
                "AWS names the state, {state}: {aws}"
            );
            assert_eq!(
                xks["encrypt"], "InvalidStateException",
                "XKS, {state}: {xks}"
            );
        }
    }
    // The kill switch, said once more: the suspended key's decrypt is refused on every door.
    assert_eq!(probe["suspended"]["aws"]["decrypt"], "DisabledException");
    assert_eq!(
        probe["suspended"]["xks"]["decrypt"],
        "InvalidStateException"
    );
    k.s.shutdown().await;
}
