//! Google Workspace client-side encryption (KACLS) end to end, over real HTTPS: `status`,
//! `wrap` and `unwrap` with the two tokens Google's clients send (the customer identity
//! provider's authentication JWT and Google's authorization JWT, each signed by a test key
//! whose JWKS the test serves from a file); wrapped keys round-trip and open only for their
//! resource; each bad token and each mismatch between the two is refused with Google's
//! structured error; a suspended key refuses; every call is in the audit trail naming the
//! user and the resource. A second test runs the other methods (`rewrap`, `digest`,
//! `delegate` and its JWKS, the privileged methods, Gmail's private key methods) the same
//! way.

mod common;

use base64::Engine;
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const IDP: &str = "https://idp.contoso.test";
const IDP_AUDIENCE: &str = "kacls";
const GOOGLE: &str = "gsuitecse-tokenissuer-drive@system.gserviceaccount.com";
const KACLS_URL: &str = "https://kacls.contoso.test/cse";
const ALICE: &str = "alice@contoso.test";

fn std64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

async fn call(
    s: &TestServer,
    path: &str,
    body: Value,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let r = s
        .client
        .post(format!("{}/cse/{path}", s.url))
        .header("origin", "https://client-side-encryption.google.com")
        .json(&body)
        .send()
        .await
        .unwrap();
    answer(r).await
}

/// `GET /cse/{path}` as a browser sends it, without a credential; answered as [`call`]'s.
async fn get(s: &TestServer, path: &str) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let r = s
        .client
        .get(format!("{}/cse/{path}", s.url))
        .send()
        .await
        .unwrap();
    answer(r).await
}

/// The status, the JSON body (null when there is none) and the headers of an answer.
async fn answer(r: reqwest::Response) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let st = r.status();
    let h = r.headers().clone();
    (st, r.json().await.unwrap_or(Value::Null), h)
}

/// Google's structured error: the status again in `code`, a message, details.
fn assert_google_error(
    got: &(StatusCode, Value, reqwest::header::HeaderMap),
    status: StatusCode,
    why: &str,
) {
    assert_eq!(got.0, status, "{why}: {}", got.1);
    assert_eq!(got.1["code"], status.as_u16(), "{why}: {}", got.1);
    assert!(got.1["message"].is_string(), "{why}: {}", got.1);
    assert!(got.1["details"].is_string(), "{why}: {}", got.1);
    assert!(got.1.get("key").is_none() && got.1.get("wrapped_key").is_none());
}

/// The tokens every check refuses (401), from the good claims `claims` patches: issued by
/// `wrong`'s key with its patch, for another audience, expired, `alg: none`, and with the
/// signature stripped.
fn forged_tokens(
    issuer: &Idp,
    claims: &dyn Fn(Value) -> Value,
    wrong: (&Idp, Value),
    now: i64,
) -> Vec<(&'static str, String, StatusCode)> {
    let b64u = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let good = issuer.token(claims(json!({})));
    vec![
        (
            "wrong issuer",
            wrong.0.token(claims(wrong.1)),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong audience",
            issuer.token(claims(json!({"aud": "other"}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "expired",
            issuer.token(claims(json!({"exp": now - 1}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64u(br#"{"alg":"none","typ":"JWT"}"#),
                good.split('.').nth(1).unwrap()
            ),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "unsigned",
            format!("{}.", good.rsplit_once('.').unwrap().0),
            StatusCode::UNAUTHORIZED,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kacls_wrap_unwrap_and_refusals() {
    let tmp = tempfile::tempdir().unwrap();
    let (idp, google) = (Idp::new(), Idp::new());
    let idp_jwks = tmp.path().join("idp.json");
    let google_jwks = tmp.path().join("google.json");
    std::fs::write(&idp_jwks, idp.jwks().to_string()).unwrap();
    std::fs::write(&google_jwks, google.jwks().to_string()).unwrap();
    let s = TestServer::start_with(move |c| {
        c.service.limits.auth_failures_free = 1000;
        let issuer = |iss: &str, aud: &str, f: &std::path::Path| arca_service::JwtIssuer {
            issuer: iss.into(),
            audience: aud.into(),
            jwks_file: Some(f.to_path_buf()),
            jwks_url: None,
            claim: "sub".into(),
            algorithms: vec!["EdDSA".into()],
        };
        c.service.jwt_issuers = vec![
            issuer(IDP, IDP_AUDIENCE, &idp_jwks),
            issuer(GOOGLE, "cse-authorization", &google_jwks),
        ];
        c.cse.key = "cse-kek".into();
        c.cse.kacls_url = KACLS_URL.into();
        c.cse.access = Some(arca_service::delegated::DelegatedAccess {
            tenant: "default".into(),
            principal: "cse-service".into(),
            issuer: IDP.into(),
            allowed_emails: vec![],
            allowed_domains: vec!["contoso.test".into()],
            allowed_groups: vec![],
        });
    })
    .await;
    s.principal("cse-service", &["crypto-user"], &[]).await;
    s.default_key_policy_for(&["cse-service"], &["Encrypt", "Decrypt"])
        .await;
    s.create(json!({"name": "cse-kek", "spec": "AES_256"}))
        .await;

    // status, and the CORS Google's clients need.
    let (status, st, headers) = get(&s, "status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://client-side-encryption.google.com"
    );
    assert_eq!(st["server_type"], "KACLS", "{st}");
    assert_eq!(
        st["operations_supported"],
        json!([
            "wrap",
            "unwrap",
            "rewrap",
            "digest",
            "privatekeydecrypt",
            "privatekeysign"
        ])
    );
    let r = s
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/cse/wrap", s.url))
        .header("origin", "https://client-side-encryption.google.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));

    let now = s.clock_now().timestamp();
    let authn =
        json!({"iss": IDP, "aud": IDP_AUDIENCE, "email": ALICE, "iat": now, "exp": now + 300});
    let authz = |role: &str, resource: &str| {
        json!({"iss": GOOGLE, "aud": "cse-authorization", "email": ALICE, "role": role,
            "resource_name": resource, "kacls_url": KACLS_URL, "perimeter_id": "",
            "iat": now, "exp": now + 300})
    };
    let dek = [7u8; 32];
    let wrap_body = |authn: String, authz: String| json!({"authentication": authn, "authorization": authz, "key": std64(&dek), "reason": "{\"client\":\"drive\"}"});
    let got = call(
        &s,
        "wrap",
        wrap_body(
            idp.token(authn.clone()),
            google.token(authz("writer", "doc-1")),
        ),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(
        got.2["access-control-allow-origin"],
        "https://client-side-encryption.google.com"
    );
    let wrapped = got.1["wrapped_key"].as_str().unwrap().to_string();
    let blob = base64::engine::general_purpose::STANDARD
        .decode(&wrapped)
        .unwrap();
    assert!(
        !blob.windows(dek.len()).any(|w| w == dek),
        "the wrapped key must not hold the key in the clear"
    );
    let unwrap_body = |authn: String, authz: String, wrapped: &str| json!({"authentication": authn, "authorization": authz, "wrapped_key": wrapped, "reason": ""});
    for role in ["reader", "writer"] {
        let got = call(
            &s,
            "unwrap",
            unwrap_body(
                idp.token(authn.clone()),
                google.token(authz(role, "doc-1")),
                &wrapped,
            ),
        )
        .await;
        assert_eq!(got.0, StatusCode::OK, "{role}: {}", got.1);
        assert_eq!(got.1["key"], std64(&dek));
    }
    // The wrapped key opens for its own resource only.
    let got = call(
        &s,
        "unwrap",
        unwrap_body(
            idp.token(authn.clone()),
            google.token(authz("reader", "doc-2")),
            &wrapped,
        ),
    )
    .await;
    assert!(got.0.is_client_error(), "{}", got.1);
    assert_eq!(got.1["code"], got.0.as_u16());
    // A reader does not wrap.
    let got = call(
        &s,
        "wrap",
        wrap_body(
            idp.token(authn.clone()),
            google.token(authz("reader", "doc-1")),
        ),
    )
    .await;
    assert_google_error(&got, StatusCode::FORBIDDEN, "reader wraps");

    // Bad tokens and mismatches, each refused with Google's error shape.
    let patch = |base: &Value, p: Value| {
        let mut c = base.clone();
        for (k, v) in p.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let b64u = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let good_authz = google.token(authz("reader", "doc-1"));
    let alg_none = format!(
        "{}.{}.",
        b64u(br#"{"alg":"none","typ":"JWT"}"#),
        good_authz.split('.').nth(1).unwrap()
    );
    let unsigned = format!("{}.", good_authz.rsplit_once('.').unwrap().0);
    let a = authz("reader", "doc-1");
    let cases: Vec<(&str, String, String, StatusCode)> = vec![
        (
            "authentication of the wrong issuer",
            google.token(patch(&authn, json!({"iss": GOOGLE}))),
            good_authz.clone(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "authorization of the wrong issuer",
            idp.token(authn.clone()),
            idp.token(patch(&a, json!({"iss": IDP, "aud": IDP_AUDIENCE}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "authentication of the wrong audience",
            idp.token(patch(&authn, json!({"aud": "other"}))),
            good_authz.clone(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "authorization of the wrong audience",
            idp.token(authn.clone()),
            google.token(patch(&a, json!({"aud": "other"}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "expired authentication",
            idp.token(patch(&authn, json!({"exp": now - 1}))),
            good_authz.clone(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "expired authorization",
            idp.token(authn.clone()),
            google.token(patch(&a, json!({"exp": now - 1}))),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "emails differ",
            idp.token(patch(&authn, json!({"email": "bob@contoso.test"}))),
            good_authz.clone(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "authorization alg none",
            idp.token(authn.clone()),
            alg_none,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "authorization unsigned",
            idp.token(authn.clone()),
            unsigned,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "authorization signed by the IdP's key",
            idp.token(authn.clone()),
            idp.token(a.clone()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong role",
            idp.token(authn.clone()),
            google.token(patch(&a, json!({"role": "upgrader"}))),
            StatusCode::FORBIDDEN,
        ),
        (
            "another KACLS's token",
            idp.token(authn.clone()),
            google.token(patch(&a, json!({"kacls_url": "https://evil.test/cse"}))),
            StatusCode::FORBIDDEN,
        ),
        (
            "a user outside the rule",
            idp.token(patch(&authn, json!({"email": "eve@evil.test"}))),
            google.token(patch(&a, json!({"email": "eve@evil.test"}))),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (why, an, az, status) in cases {
        let got = call(&s, "unwrap", unwrap_body(an, az, &wrapped)).await;
        assert_google_error(&got, status, why);
    }
    // google_email, when present, is what must match.
    let got = call(
        &s,
        "unwrap",
        unwrap_body(
            idp.token(patch(
                &authn,
                json!({"email": "alice@idp.contoso.test", "google_email": "ALICE@contoso.test"}),
            )),
            good_authz.clone(),
            &wrapped,
        ),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["key"], std64(&dek));

    // Bad input.
    let got = call(
        &s,
        "wrap",
        json!({"authentication": idp.token(authn.clone()), "authorization": google.token(authz("writer", "doc-1")),
            "key": std64(&[1u8; 129]), "reason": ""}),
    )
    .await;
    assert_google_error(&got, StatusCode::BAD_REQUEST, "a DEK over 128 bytes");
    let got = call(&s, "unwrap", json!({"authentication": "x"})).await;
    assert_google_error(&got, StatusCode::BAD_REQUEST, "a body without its fields");

    // Suspension is the kill switch.
    s.ok("/v1/keys/cse-kek/suspend", json!({"reason": "incident"}))
        .await;
    let got = call(
        &s,
        "unwrap",
        unwrap_body(idp.token(authn.clone()), good_authz.clone(), &wrapped),
    )
    .await;
    assert_google_error(&got, StatusCode::CONFLICT, "suspended key");

    // With its principal disabled the door cannot act, and status says so (the admin
    // console's connection test fails), in Google's error shape: unavailable, the door's
    // configuration, never a failed authentication of the caller's address (eight checks,
    // more than the free failures, leave the address unthrottled: re-enabling and the
    // next status work at once).
    let disable = |on: bool| {
        s.req(
            reqwest::Method::PATCH,
            "/v1/principals/cse-service",
            Some(json!({"disabled": on})),
        )
    };
    let (st, v) = disable(true).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    for _ in 0..8 {
        assert_google_error(
            &get(&s, "status").await,
            StatusCode::SERVICE_UNAVAILABLE,
            "status with the door principal disabled",
        );
    }
    let (st, v) = disable(false).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(get(&s, "status").await.0, StatusCode::OK);

    // Every call is in the trail, naming the user and the resource.
    s.service().flush_audit().await;
    let (_, audit) = s.get("/v1/audit?limit=1000").await;
    let cse: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["door"] == "cse")
        .collect();
    assert!(
        cse.iter().any(|e| e["operation"] == "Decrypt"
            && e["outcome"] == "ok"
            && e["detail"]["end_user"] == ALICE
            && e["detail"]["resource"] == "doc-1"),
        "{cse:#?}"
    );
    assert!(
        cse.iter()
            .any(|e| e["operation"] == "Encrypt" && e["outcome"] == "ok"),
        "{cse:#?}"
    );
    assert!(
        cse.iter().any(|e| e["operation"] == "QueryServer"
            && e["outcome"] == "ok"
            && e["principal"] == "cse-service"
            && e["credential"] == "none"),
        "the status call is recorded as the door principal's QueryServer: {cse:#?}"
    );
    assert!(
        cse.iter()
            .filter(|e| e["operation"] == "Authenticate")
            .count()
            >= 13,
        "{cse:#?}"
    );
    assert!(
        cse.iter()
            .any(|e| e["operation"] == "Decrypt" && e["outcome"] == "wrong_state"),
        "{cse:#?}"
    );
    assert!(
        cse.iter().any(|e| e["operation"] == "Encrypt"
            && e["outcome"] == "invalid_input"
            && e["detail"]["end_user"] == ALICE),
        "the oversized DEK's refusal is audited, naming the user: {cse:#?}"
    );
    s.shutdown().await;
}

const ADMIN: &str = "admin@contoso.test";
const OTHER_KACLS: &str = "https://old-kacls.contoso.test/cse";

/// A KACLS server with the privileged methods for `ADMIN`, and an AES key `cse-kek` the
/// door principals may use.
async fn kacls_server(
    idp_jwks: std::path::PathBuf,
    google_jwks: std::path::PathBuf,
    self_jwks: std::path::PathBuf,
) -> TestServer {
    let s = TestServer::start_with(move |c| {
        c.service.limits.auth_failures_free = 1000;
        let issuer = |iss: &str, aud: &str, f: &std::path::Path| arca_service::JwtIssuer {
            issuer: iss.into(),
            audience: aud.into(),
            jwks_file: Some(f.to_path_buf()),
            jwks_url: None,
            claim: "sub".into(),
            algorithms: vec!["EdDSA".into()],
        };
        c.service.jwt_issuers = vec![
            issuer(IDP, IDP_AUDIENCE, &idp_jwks),
            issuer(GOOGLE, "cse-authorization", &google_jwks),
            // This KACLS's own delegated tokens, by the JWKS it publishes.
            issuer(KACLS_URL, "kacls-delegated", &self_jwks),
        ];
        c.cse.key = "cse-kek".into();
        c.cse.kacls_url = KACLS_URL.into();
        c.cse.delegate_key = Some("cse-delegate".into());
        c.cse.rewrap_sources = vec![KACLS_URL.into(), OTHER_KACLS.into()];
        c.cse.owner_domain = Some("contoso.test".into());
        let rule = |principal: &str, emails: Vec<String>, domains: Vec<String>| {
            arca_service::delegated::DelegatedAccess {
                tenant: "default".into(),
                principal: principal.into(),
                issuer: IDP.into(),
                allowed_emails: emails,
                allowed_domains: domains,
                allowed_groups: vec![],
            }
        };
        c.cse.access = Some(rule("cse-service", vec![], vec!["contoso.test".into()]));
        c.cse.privileged = Some(rule("cse-admin", vec![ADMIN.into()], vec![]));
    })
    .await;
    s.principal("cse-service", &["crypto-user"], &[]).await;
    s.principal("cse-admin", &["crypto-user"], &[]).await;
    s.default_key_policy_for(
        &["cse-service", "cse-admin"],
        &["Encrypt", "Decrypt", "Sign", "GetPublicKey"],
    )
    .await;
    s.create(json!({"name": "cse-kek", "spec": "AES_256"}))
        .await;
    s.create(json!({"name": "cse-delegate", "spec": "ED25519", "usage": ["SIGN", "VERIFY"]}))
        .await;
    s
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&k, data).as_ref().to_vec()
}

/// The methods beyond wrap and unwrap, over HTTPS: `rewrap` round-trips and `digest`
/// answers the resource key hash the test computes from the DEK it knows; the privileged
/// methods serve the `[cse.privileged]` administrators only; a private key wrapped by
/// `wrapprivatekey` decrypts an OAEP ciphertext the test made with its public half and
/// signs a digest whose signature the public half verifies; each token kind's bad tokens
/// are refused in Google's error shape; a suspended key refuses every method; the trail
/// names the user, the resource and the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kacls_migration_privileged_and_gmail() {
    use aws_lc_rs::encoding::AsDer;
    let tmp = tempfile::tempdir().unwrap();
    let (idp, google) = (Idp::new(), Idp::new());
    let idp_jwks = tmp.path().join("idp.json");
    let google_jwks = tmp.path().join("google.json");
    std::fs::write(&idp_jwks, idp.jwks().to_string()).unwrap();
    std::fs::write(&google_jwks, google.jwks().to_string()).unwrap();
    let self_jwks = tmp.path().join("self.json");
    let s = kacls_server(idp_jwks, google_jwks, self_jwks.clone()).await;

    let st = get(&s, "status").await.1;
    for m in [
        "rewrap",
        "digest",
        "delegate",
        "privilegedwrap",
        "privilegedunwrap",
        "privilegedprivatekeydecrypt",
        "wrapprivatekey",
        "privatekeydecrypt",
        "privatekeysign",
    ] {
        assert!(
            st["operations_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(m)),
            "{st}"
        );
    }

    let now = s.clock_now().timestamp();
    let authn = |email: &str| {
        idp.token(
            json!({"iss": IDP, "aud": IDP_AUDIENCE, "email": email, "iat": now, "exp": now + 300}),
        )
    };
    let authz_claims = |role: &str, resource: &str| {
        json!({"iss": GOOGLE, "aud": "cse-authorization", "email": ALICE, "role": role,
            "resource_name": resource, "kacls_url": KACLS_URL, "perimeter_id": "eu",
            "kacls_owner_domain": "contoso.test", "iat": now, "exp": now + 300})
    };
    let authz = |role: &str, resource: &str| google.token(authz_claims(role, resource));
    let dek = [42u8; 32];

    // A key wrapped for doc-1 in perimeter eu.
    let got = call(&s, "wrap", json!({"authentication": authn(ALICE),
        "authorization": authz("writer", "doc-1"), "key": std64(&dek), "reason": "{\"op\":\"create\"}"}))
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let wrapped = got.1["wrapped_key"].as_str().unwrap().to_string();
    let want_hash = std64(&hmac_sha256(&dek, b"ResourceKeyDigest:doc-1:eu"));

    // digest: the hash the reference defines, computed inside the service.
    let got = call(
        &s,
        "digest",
        json!({"authorization": authz("migrator", "doc-1"),
        "wrapped_key": wrapped, "reason": "{\"op\":\"verify\"}"}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["resource_key_hash"], want_hash);
    assert!(got.1.get("key").is_none());

    // rewrap: from this KACLS's URL (or another of rewrap_sources) to a new blob that
    // unwraps to the same key, with its hash.
    for original in [KACLS_URL, OTHER_KACLS] {
        let got = call(
            &s,
            "rewrap",
            json!({"authorization": authz("migrator", "doc-1"),
            "original_kacls_url": original, "wrapped_key": wrapped, "reason": "migrate"}),
        )
        .await;
        assert_eq!(got.0, StatusCode::OK, "{}", got.1);
        assert_eq!(got.1["resource_key_hash"], want_hash);
        let rewrapped = got.1["wrapped_key"].as_str().unwrap();
        assert_ne!(rewrapped, wrapped);
        let back = call(
            &s,
            "unwrap",
            json!({"authentication": authn(ALICE),
            "authorization": authz("reader", "doc-1"), "wrapped_key": rewrapped, "reason": ""}),
        )
        .await;
        assert_eq!(back.0, StatusCode::OK, "{}", back.1);
        assert_eq!(back.1["key"], std64(&dek));
    }
    let got = call(&s, "rewrap", json!({"authorization": authz("migrator", "doc-1"),
        "original_kacls_url": "https://elsewhere.test/kacls", "wrapped_key": wrapped, "reason": ""}))
    .await;
    assert_google_error(
        &got,
        StatusCode::BAD_REQUEST,
        "rewrap from an unknown KACLS",
    );
    let got = call(
        &s,
        "rewrap",
        json!({"authorization": authz("reader", "doc-1"),
        "original_kacls_url": KACLS_URL, "wrapped_key": wrapped, "reason": ""}),
    )
    .await;
    assert_google_error(&got, StatusCode::FORBIDDEN, "rewrap by a reader");
    let got = call(
        &s,
        "digest",
        json!({"authorization": authz("migrator", "doc-2"),
        "wrapped_key": wrapped, "reason": ""}),
    )
    .await;
    assert!(
        got.0.is_client_error() && got.1["code"] == got.0.as_u16(),
        "{}",
        got.1
    );

    // Authorization-only bad tokens, each in Google's shape.
    let patch = |p: Value| {
        let mut c = authz_claims("migrator", "doc-1");
        for (k, v) in p.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let mut cases = forged_tokens(
        &google,
        &patch,
        (&idp, json!({"iss": IDP, "aud": IDP_AUDIENCE})),
        now,
    );
    cases.extend([
        (
            "wrong role",
            google.token(patch(json!({"role": "writer"}))),
            StatusCode::FORBIDDEN,
        ),
        (
            "another owner domain",
            google.token(patch(json!({"kacls_owner_domain": "evil.test"}))),
            StatusCode::FORBIDDEN,
        ),
        (
            "a user outside the rule",
            google.token(patch(json!({"email": "eve@evil.test"}))),
            StatusCode::FORBIDDEN,
        ),
    ]);
    for (why, token, status) in cases {
        let got = call(
            &s,
            "rewrap",
            json!({"authorization": token, "original_kacls_url": KACLS_URL,
            "wrapped_key": wrapped, "reason": ""}),
        )
        .await;
        assert_google_error(&got, status, why);
    }

    // The privileged methods: the administrator only, with the resource in the body.
    let got = call(
        &s,
        "privilegedunwrap",
        json!({"authentication": authn(ADMIN),
        "resource_name": "doc-1", "wrapped_key": wrapped, "reason": "takeout"}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["key"], std64(&dek));
    assert_eq!(got.1["perimeter_id"], "eu");
    let got = call(&s, "privilegedwrap", json!({"authentication": authn(ADMIN),
        "resource_name": "doc-9", "perimeter_id": "", "key": std64(&[9u8; 32]), "reason": "import"}))
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let w9 = got.1["wrapped_key"].as_str().unwrap().to_string();
    let got = call(
        &s,
        "privilegedunwrap",
        json!({"authentication": authn(ADMIN),
        "resource_name": "doc-9", "wrapped_key": w9, "reason": ""}),
    )
    .await;
    assert_eq!(got.1["key"], std64(&[9u8; 32]), "{}", got.1);
    let got = call(
        &s,
        "privilegedunwrap",
        json!({"authentication": authn(ADMIN),
        "resource_name": "doc-8", "wrapped_key": w9, "reason": ""}),
    )
    .await;
    assert!(
        got.0.is_client_error() && got.1["code"] == got.0.as_u16(),
        "{}",
        got.1
    );
    let idp_claims = |p: Value| {
        let mut c =
            json!({"iss": IDP, "aud": IDP_AUDIENCE, "email": ADMIN, "iat": now, "exp": now + 300});
        for (k, v) in p.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let mut cases = forged_tokens(&idp, &idp_claims, (&google, json!({"iss": GOOGLE})), now);
    cases.extend([
        (
            "signed by Google's key",
            google.token(idp_claims(json!({}))),
            StatusCode::UNAUTHORIZED,
        ),
        ("not an administrator", authn(ALICE), StatusCode::FORBIDDEN),
    ]);
    for (why, token, status) in cases {
        let got = call(
            &s,
            "privilegedunwrap",
            json!({"authentication": token,
            "resource_name": "doc-1", "wrapped_key": wrapped, "reason": ""}),
        )
        .await;
        assert_google_error(&got, status, why);
    }

    // Gmail: a user's key pair, its private half wrapped by an administrator.
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 = pair.as_der().unwrap().as_ref().to_vec();
    let pem_key = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.clone()));
    let public = aws_lc_rs::rsa::PrivateDecryptingKey::from_pkcs8(&pkcs8)
        .unwrap()
        .public_key();
    let spki = public.as_der().unwrap().as_ref().to_vec();
    let spki_hash = std64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki).as_ref());
    let got = call(
        &s,
        "wrapprivatekey",
        json!({"authentication": authn(ADMIN),
        "private_key": pem_key, "perimeter_id": ""}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let wpk = got.1["wrapped_private_key"].as_str().unwrap().to_string();
    assert!(wpk.len() <= 8 * 1024 * 4 / 3 + 4);
    let raw_wpk = base64::engine::general_purpose::STANDARD
        .decode(&wpk)
        .unwrap();
    assert!(!raw_wpk
        .windows(32)
        .any(|w| pkcs8.windows(32).any(|p| p == w)));
    let got = call(&s, "wrapprivatekey", json!({"authentication": authn(ALICE),
        "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "perimeter_id": ""}))
    .await;
    assert_google_error(&got, StatusCode::FORBIDDEN, "a user wraps a private key");
    let got = call(
        &s,
        "wrapprivatekey",
        json!({"authentication": authn(ADMIN),
        "private_key": std64(b"not a key"), "perimeter_id": ""}),
    )
    .await;
    assert_google_error(&got, StatusCode::BAD_REQUEST, "not a private key");

    // privatekeydecrypt of an OAEP ciphertext made here with the public half.
    let dek2 = [5u8; 32];
    let enc = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(public.clone()).unwrap();
    let mut ct = vec![0u8; enc.ciphertext_size()];
    let ct = enc
        .encrypt(
            &aws_lc_rs::rsa::OAEP_SHA256_MGF1SHA256,
            &dek2,
            &mut ct,
            Some(b"label"),
        )
        .unwrap()
        .to_vec();
    let gmail_authz = |role: &str, spki_hash: &str| {
        google.token(json!({"iss": GOOGLE, "aud": "cse-authorization", "email": ALICE, "role": role,
            "resource_name": "msg-1", "message_id": "msg-1", "kacls_url": KACLS_URL,
            "spki_hash": spki_hash, "spki_hash_algorithm": "SHA-256", "iat": now, "exp": now + 300}))
    };
    let decrypt_body = |authn: String, authz: String| {
        json!({"authentication": authn,
        "authorization": authz, "algorithm": "RSA/ECB/OAEPwithSHA-256andMGF1Padding",
        "encrypted_data_encryption_key": std64(&ct), "rsa_oaep_label": std64(b"label"),
        "wrapped_private_key": wpk, "reason": "{\"client\":\"gmail\"}"})
    };
    let got = call(
        &s,
        "privatekeydecrypt",
        decrypt_body(authn(ALICE), gmail_authz("decrypter", &spki_hash)),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["data_encryption_key"], std64(&dek2));
    let other_spki = std64(&[0u8; 32]);
    let got = call(
        &s,
        "privatekeydecrypt",
        decrypt_body(authn(ALICE), gmail_authz("decrypter", &other_spki)),
    )
    .await;
    assert_google_error(
        &got,
        StatusCode::FORBIDDEN,
        "another key pair's authorization",
    );
    let got = call(
        &s,
        "privatekeydecrypt",
        decrypt_body(authn(ALICE), gmail_authz("signer", &spki_hash)),
    )
    .await;
    assert_google_error(&got, StatusCode::FORBIDDEN, "a signer decrypts");
    let no_spki = google.token(
        json!({"iss": GOOGLE, "aud": "cse-authorization", "email": ALICE,
        "role": "decrypter", "resource_name": "msg-1", "kacls_url": KACLS_URL,
        "iat": now, "exp": now + 300}),
    );
    let got = call(&s, "privatekeydecrypt", decrypt_body(authn(ALICE), no_spki)).await;
    assert_google_error(
        &got,
        StatusCode::FORBIDDEN,
        "an authorization naming no key pair",
    );
    let got = call(
        &s,
        "privatekeydecrypt",
        decrypt_body(
            authn("bob@contoso.test"),
            gmail_authz("decrypter", &spki_hash),
        ),
    )
    .await;
    assert_google_error(&got, StatusCode::UNAUTHORIZED, "emails differ");
    // PKCS #1 v1.5 key transport, which S/MIME senders use.
    let enc1 = aws_lc_rs::rsa::Pkcs1PublicEncryptingKey::new(public.clone()).unwrap();
    let mut ct1 = vec![0u8; enc1.ciphertext_size()];
    let ct1 = enc1.encrypt(&dek2, &mut ct1).unwrap().to_vec();
    let got = call(
        &s,
        "privilegedprivatekeydecrypt",
        json!({"authentication": authn(ADMIN),
        "algorithm": "RSA/ECB/PKCS1Padding", "encrypted_data_encryption_key": std64(&ct1),
        "spki_hash": spki_hash, "spki_hash_algorithm": "SHA-256",
        "wrapped_private_key": wpk, "reason": "export"}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["data_encryption_key"], std64(&dek2));

    // privatekeysign: PKCS #1 v1.5 and PSS signatures of a digest the test computes, each
    // verified here over the message with the public half.
    let msg = b"DER-encoded SignedAttributes";
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, msg);
    let spki_pub = {
        // The RSAPublicKey inside the SPKI, as aws-lc-rs's verifier takes it.
        aws_lc_rs::signature::KeyPair::public_key(&pair)
            .as_ref()
            .to_vec()
    };
    for (alg, salt, verify) in [
        (
            "SHA256withRSA",
            None,
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        ),
        (
            "SHA256withRSA/PSS",
            Some(32),
            &aws_lc_rs::signature::RSA_PSS_2048_8192_SHA256,
        ),
    ] {
        let mut body = json!({"authentication": authn(ALICE),
            "authorization": gmail_authz("signer", &spki_hash), "algorithm": alg,
            "digest": std64(d.as_ref()), "wrapped_private_key": wpk, "reason": "{\"client\":\"gmail\"}"});
        if let Some(n) = salt {
            body["rsa_pss_salt_length"] = json!(n);
        }
        let got = call(&s, "privatekeysign", body).await;
        assert_eq!(got.0, StatusCode::OK, "{alg}: {}", got.1);
        let sig = base64::engine::general_purpose::STANDARD
            .decode(got.1["signature"].as_str().unwrap())
            .unwrap();
        aws_lc_rs::signature::UnparsedPublicKey::new(verify, &spki_pub)
            .verify(msg, &sig)
            .unwrap_or_else(|_| panic!("{alg}: the signature does not verify"));
    }
    let got = call(
        &s,
        "privatekeysign",
        json!({"authentication": authn(ALICE),
        "authorization": gmail_authz("signer", &spki_hash), "algorithm": "SHA384withRSA",
        "digest": std64(d.as_ref()), "wrapped_private_key": wpk, "reason": ""}),
    )
    .await;
    assert_google_error(
        &got,
        StatusCode::BAD_REQUEST,
        "a digest of the wrong length",
    );

    // delegate: a token for the delegate, verified here against the JWKS the KACLS
    // publishes, then accepted back (through the one JWT verifier, which reads that JWKS)
    // for the same delegate and resource only.
    let (status, published, _) = get(&s, "jwks").await;
    assert_eq!(status, StatusCode::OK, "{published}");
    std::fs::write(&self_jwks, published.to_string()).unwrap();
    const DELEGATE: &str = "printer@contoso.test";
    let delegated_authz = |resource: &str, to: &str| {
        let mut c = authz_claims("reader", resource);
        c["delegated_to"] = json!(to);
        google.token(c)
    };
    let got = call(
        &s,
        "delegate",
        json!({"authentication": authn(ALICE),
        "authorization": delegated_authz("doc-1", DELEGATE), "reason": "{\"op\":\"print\"}"}),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let token = got.1["delegated_authentication"]
        .as_str()
        .unwrap()
        .to_string();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(published.clone()).unwrap();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let jwk = set
        .find(&kid)
        .expect("the token's kid is in the published JWKS");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.set_audience(&["kacls-delegated"]);
    v.set_issuer(&[KACLS_URL]);
    v.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &v,
    )
    .expect("the delegated token verifies against the published JWKS")
    .claims;
    assert_eq!(
        (
            &claims["email"],
            &claims["delegated_to"],
            &claims["resource_name"]
        ),
        (&json!(ALICE), &json!(DELEGATE), &json!("doc-1"))
    );
    assert!(claims["exp"].as_i64().unwrap() <= now + 300);
    let unwrap_as = |authn: String, authz: String| json!({"authentication": authn, "authorization": authz, "wrapped_key": wrapped, "reason": ""});
    let got = call(
        &s,
        "unwrap",
        unwrap_as(token.clone(), delegated_authz("doc-1", DELEGATE)),
    )
    .await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["key"], std64(&dek));
    let tampered = format!("{}x", &token[..token.len() - 1]);
    for (why, an, az) in [
        (
            "another resource",
            token.clone(),
            delegated_authz("doc-2", DELEGATE),
        ),
        (
            "another delegate",
            token.clone(),
            delegated_authz("doc-1", "eve@contoso.test"),
        ),
        (
            "no delegation in the authorization",
            token.clone(),
            authz("reader", "doc-1"),
        ),
        (
            "the user's own token for a delegate",
            authn(ALICE),
            delegated_authz("doc-1", DELEGATE),
        ),
        (
            "a tampered delegated token",
            tampered,
            delegated_authz("doc-1", DELEGATE),
        ),
    ] {
        let got = call(&s, "unwrap", unwrap_as(an, az)).await;
        assert_google_error(&got, StatusCode::UNAUTHORIZED, why);
    }
    let got = call(
        &s,
        "delegate",
        json!({"authentication": authn(ALICE),
        "authorization": authz("reader", "doc-1"), "reason": ""}),
    )
    .await;
    assert_google_error(
        &got,
        StatusCode::BAD_REQUEST,
        "delegate without delegated_to",
    );
    let got = call(
        &s,
        "delegate",
        json!({"authentication": authn("bob@contoso.test"),
        "authorization": delegated_authz("doc-1", DELEGATE), "reason": ""}),
    )
    .await;
    assert_google_error(&got, StatusCode::UNAUTHORIZED, "delegate: emails differ");

    // Suspension is the kill switch for every method.
    s.ok(
        "/v1/keys/cse-delegate/suspend",
        json!({"reason": "incident"}),
    )
    .await;
    let got = call(
        &s,
        "delegate",
        json!({"authentication": authn(ALICE),
        "authorization": delegated_authz("doc-1", DELEGATE), "reason": ""}),
    )
    .await;
    assert_google_error(&got, StatusCode::CONFLICT, "delegate with a suspended key");
    let (status, v, _) = get(&s, "jwks").await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    s.ok("/v1/keys/cse-kek/suspend", json!({"reason": "incident"}))
        .await;
    let suspended: Vec<(&str, Value)> = vec![
        (
            "digest",
            json!({"authorization": authz("migrator", "doc-1"), "wrapped_key": wrapped, "reason": ""}),
        ),
        (
            "rewrap",
            json!({"authorization": authz("migrator", "doc-1"), "original_kacls_url": KACLS_URL, "wrapped_key": wrapped, "reason": ""}),
        ),
        (
            "privilegedunwrap",
            json!({"authentication": authn(ADMIN), "resource_name": "doc-1", "wrapped_key": wrapped, "reason": ""}),
        ),
        (
            "privilegedwrap",
            json!({"authentication": authn(ADMIN), "resource_name": "doc-1", "key": std64(&dek), "reason": ""}),
        ),
        (
            "wrapprivatekey",
            json!({"authentication": authn(ADMIN), "private_key": pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.clone())), "perimeter_id": ""}),
        ),
        (
            "privatekeydecrypt",
            decrypt_body(authn(ALICE), gmail_authz("decrypter", &spki_hash)),
        ),
        (
            "privatekeysign",
            json!({"authentication": authn(ALICE), "authorization": gmail_authz("signer", &spki_hash), "algorithm": "SHA256withRSA", "digest": std64(d.as_ref()), "wrapped_private_key": wpk, "reason": ""}),
        ),
    ];
    for (method, body) in suspended {
        let got = call(&s, method, body).await;
        assert_google_error(&got, StatusCode::CONFLICT, method);
    }

    // The trail: each use names the user (or administrator), the resource, the reason.
    s.service().flush_audit().await;
    let (_, audit) = s.get("/v1/audit?limit=1000").await;
    let cse: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["door"] == "cse")
        .collect();
    let has = |op: &str, usage: &str, user: &str, outcome: &str| {
        cse.iter().any(|e| {
            e["operation"] == op
                && e["outcome"] == outcome
                && e["detail"]["end_user"] == user
                && (usage.is_empty() || e["detail"]["kacls_use"] == usage)
        })
    };
    assert!(has("Decrypt", "resource_key_hash", ALICE, "ok"), "{cse:#?}");
    assert!(
        cse.iter().any(|e| e["operation"] == "Sign"
            && e["outcome"] == "ok"
            && e["detail"]["end_user"] == ALICE
            && e["detail"]["delegated_to"] == DELEGATE
            && e["detail"]["resource"] == "doc-1"),
        "{cse:#?}"
    );
    assert!(has("Decrypt", "rewrap", ALICE, "ok"), "{cse:#?}");
    assert!(
        has("Decrypt", "private_key_decrypt", ALICE, "ok"),
        "{cse:#?}"
    );
    assert!(has("Decrypt", "private_key_sign", ALICE, "ok"), "{cse:#?}");
    assert!(
        has("Decrypt", "private_key_decrypt", ADMIN, "ok"),
        "{cse:#?}"
    );
    assert!(has("Encrypt", "", ADMIN, "ok"), "{cse:#?}");
    assert!(has("Decrypt", "", ADMIN, "wrong_state"), "{cse:#?}");
    assert!(
        cse.iter().any(|e| e["detail"]["reason"] == "takeout"
            && e["detail"]["resource"] == "doc-1"
            && e["principal"]
                .as_str()
                .is_some_and(|p| p.contains("cse-admin"))),
        "{cse:#?}"
    );
    assert!(
        cse.iter()
            .any(|e| e["detail"]["reason"] == "{\"op\":\"verify\"}"),
        "{cse:#?}"
    );
    assert!(
        cse.iter()
            .filter(|e| e["operation"] == "Authenticate" && e["outcome"] != "ok")
            .count()
            >= 15,
        "{cse:#?}"
    );
    s.shutdown().await;
}
