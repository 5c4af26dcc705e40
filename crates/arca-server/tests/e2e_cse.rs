//! Google Workspace client-side encryption (KACLS) end to end, over real HTTPS: `status`,
//! `wrap` and `unwrap` with the two tokens Google's clients send (the customer identity
//! provider's authentication JWT and Google's authorization JWT, each signed by a test key
//! whose JWKS the test serves from a file); wrapped keys round-trip and open only for their
//! resource; each bad token and each mismatch between the two is refused with Google's
//! structured error; a suspended key refuses; every call is in the audit trail naming the
//! user and the resource.

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
    let (st, v) = s
        .req(
            reqwest::Method::PUT,
            "/v1/tenant/settings",
            Some(json!({"default_key_policy": [
                {"effect": "allow", "principals": ["role:tenant-admin"], "actions": ["*"]},
                {"effect": "allow", "principals": ["principal:cse-service"],
                 "actions": ["Encrypt", "Decrypt"]}
            ]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    s.create(json!({"name": "cse-kek", "spec": "AES_256"}))
        .await;

    // status, and the CORS Google's clients need.
    let r = s
        .client
        .get(format!("{}/cse/status", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://client-side-encryption.google.com"
    );
    let st: Value = r.json().await.unwrap();
    assert_eq!(st["server_type"], "KACLS", "{st}");
    assert_eq!(st["operations_supported"], json!(["wrap", "unwrap"]));
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
