//! Microsoft Purview Double Key Encryption end to end, over real HTTPS: Office's two calls
//! (`GET <prefix>/<keyName>` for the public key, `POST <kid>/decrypt` with an Entra ID
//! token) against an Arca RSA-2048 key; a ciphertext made here with the published public key
//! (RSA-OAEP-SHA-256, as Office makes it) decrypts; every bad token is refused; a user the
//! access rule does not name is refused; a suspended key refuses; every call is in the
//! audit trail naming the user.

mod common;

use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const ISSUER: &str = "https://sts.windows.test/tenant-id/";
const AUDIENCE: &str = "https://dke.contoso.test";
const ALICE: &str = "alice@contoso.test";

fn std64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// RSA-OAEP-SHA-256 under the public key a DKE GET answered (`n` base64, `e` a number).
fn oaep_encrypt(key: &Value, plaintext: &[u8]) -> Vec<u8> {
    let n = base64::engine::general_purpose::STANDARD
        .decode(key["n"].as_str().unwrap())
        .unwrap();
    let e = key["e"].as_u64().unwrap();
    let e: Vec<u8> = e
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let pk: PublicEncryptingKey = aws_lc_rs::rsa::PublicKeyComponents { n, e }
        .try_into()
        .unwrap();
    assert_eq!(pk.key_size_bits(), 2048);
    let enc = OaepPublicEncryptingKey::new(pk).unwrap();
    let mut out = vec![0u8; enc.ciphertext_size()];
    let ct = enc
        .encrypt(&OAEP_SHA256_MGF1SHA256, plaintext, &mut out, None)
        .unwrap();
    ct.to_vec()
}

async fn dke_post(
    s: &TestServer,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut rb = s.client.post(url).json(&body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    let st = r.status();
    let text = r.text().await.unwrap();
    (st, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn dke_get(s: &TestServer, path: &str) -> (StatusCode, Value) {
    let r = s
        .client
        .get(format!("{}{path}", s.url))
        .send()
        .await
        .unwrap();
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dke_public_key_and_decrypt() {
    let tmp = tempfile::tempdir().unwrap();
    let idp = Idp::new();
    let jwks = tmp.path().join("entra-jwks.json");
    std::fs::write(&jwks, idp.jwks().to_string()).unwrap();
    let s = TestServer::start_with(move |c| {
        c.service.limits.auth_failures_free = 1000;
        c.service.jwt_issuers = vec![arca_service::JwtIssuer {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            jwks_file: Some(jwks.clone()),
            jwks_url: None,
            claim: "sub".into(),
            algorithms: vec!["EdDSA".into()],
        }];
        c.dke.keys = vec![arca_server::config::DkeKeyConfig {
            name: "confidential".into(),
            key: "dke-confidential".into(),
            access: arca_service::delegated::DelegatedAccess {
                tenant: "default".into(),
                principal: "dke-service".into(),
                issuer: ISSUER.into(),
                allowed_emails: vec![ALICE.into()],
                allowed_domains: vec![],
                allowed_groups: vec!["finance-group-id".into()],
            },
        }];
    })
    .await;
    // The door's principal may fetch the public key and decrypt; nothing else.
    s.principal("dke-service", &["crypto-user"], &[]).await;
    s.default_key_policy_for(&["dke-service"], &["Decrypt", "GetPublicKey"])
        .await;
    // No key yet: the GET says so.
    let (st, v) = dke_get(&s, "/dke/confidential").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    s.create(
        json!({"name": "dke-confidential", "spec": "RSA_2048", "usage": ["ENCRYPT", "DECRYPT"]}),
    )
    .await;

    // GET: the public key as DKE's JSON.
    let (st, pk) = dke_get(&s, "/dke/confidential").await;
    assert_eq!(st, StatusCode::OK, "{pk}");
    assert_eq!(pk["key"]["kty"], "RSA");
    assert_eq!(pk["key"]["alg"], "RS256");
    assert_eq!(pk["key"]["e"], 65537);
    let kid = pk["key"]["kid"].as_str().unwrap().to_string();
    assert_eq!(kid, format!("{}/dke/confidential/1", s.url), "{pk}");
    let exp = pk["cache"]["exp"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(exp, "%Y-%m-%dT%H:%M:%S").is_ok(),
        "{exp}"
    );
    // An unknown key name.
    assert_eq!(dke_get(&s, "/dke/secret").await.0, StatusCode::NOT_FOUND);

    // Office's side: a content key under the published public key.
    let content_key = b"0123456789abcdef0123456789abcdef";
    let ct = oaep_encrypt(&pk["key"], content_key);
    let decrypt_url = format!("{kid}/decrypt");
    let body = json!({"alg": "RSA-OAEP-256", "value": std64(&ct)});
    let now = s.clock_now().timestamp();
    let good = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice-oid", "upn": ALICE,
        "iat": now, "nbf": now - 5, "exp": now + 300});
    let (st, v) = dke_post(
        &s,
        &decrypt_url,
        Some(&idp.token(good.clone())),
        body.clone(),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["value"], std64(content_key));
    // A user allowed by group rather than by address.
    let by_group = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bob-oid",
        "email": "bob@contoso.test", "groups": ["other", "finance-group-id"], "exp": now + 300});
    let (st, v) = dke_post(&s, &decrypt_url, Some(&idp.token(by_group)), body.clone()).await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Bad tokens: each refused with 401 and the error body.
    let bad = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        idp.token(c)
    };
    let b64u = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let good_token = idp.token(good.clone());
    let (signing_input, _) = good_token.rsplit_once('.').unwrap();
    let payload = good_token.split('.').nth(1).unwrap();
    let alg_none = format!("{}.{payload}.", b64u(br#"{"alg":"none","typ":"JWT"}"#));
    let unsigned = format!("{signing_input}.");
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = Some("k1".into());
    let hmac = jsonwebtoken::encode(
        &h,
        &good,
        &jsonwebtoken::EncodingKey::from_secret(idp.pair.public_key().as_ref()),
    )
    .unwrap();
    let other_idp = Idp::new();
    for (why, token) in [
        ("wrong issuer", bad(json!({"iss": "https://evil.test/"}))),
        ("wrong audience", bad(json!({"aud": "https://other.test"}))),
        ("expired", bad(json!({"exp": now - 1}))),
        ("not yet valid", bad(json!({"nbf": now + 60}))),
        ("alg none", alg_none),
        ("unsigned", unsigned),
        ("hmac confusion", hmac),
        ("signed by another key", other_idp.token(good.clone())),
        ("garbage", "not-a-jwt".to_string()),
    ] {
        let (st, v) = dke_post(&s, &decrypt_url, Some(&token), body.clone()).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{why}: {v}");
        assert_eq!(v["error"]["code"], "unauthenticated", "{why}: {v}");
        assert!(v.get("value").is_none(), "{why}: {v}");
    }
    let (st, v) = dke_post(&s, &decrypt_url, None, body.clone()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "no token: {v}");
    // A good token of a user the rule does not allow: 403.
    let mallory = bad(json!({"upn": "mallory@contoso.test", "groups": ["other"]}));
    let (st, v) = dke_post(&s, &decrypt_url, Some(&mallory), body.clone()).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "not_permitted", "{v}");

    // Bad requests.
    let token = idp.token(good.clone());
    let (st, v) = dke_post(
        &s,
        &decrypt_url,
        Some(&token),
        json!({"alg": "RSA-OAEP", "value": std64(&ct)}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = dke_post(
        &s,
        &format!("{}/dke/confidential/7/decrypt", s.url),
        Some(&token),
        body.clone(),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "a version the key does not have: {v}"
    );
    let mut tampered = ct.clone();
    tampered[10] ^= 1;
    let (st, v) = dke_post(
        &s,
        &decrypt_url,
        Some(&token),
        json!({"alg": "RSA-OAEP-256", "value": std64(&tampered)}),
    )
    .await;
    assert!(st.is_client_error(), "{st} {v}");
    assert!(v.get("value").is_none(), "{v}");

    // Suspension is the kill switch: no public key for new content, no decryption.
    s.ok(
        "/v1/keys/dke-confidential/suspend",
        json!({"reason": "incident"}),
    )
    .await;
    let (st, v) = dke_post(&s, &decrypt_url, Some(&token), body.clone()).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "wrong_state", "{v}");
    let (st, v) = dke_get(&s, "/dke/confidential").await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "public key of a suspended key: {v}"
    );
    assert_eq!(v["error"]["code"], "wrong_state", "{v}");
    s.ok("/v1/keys/dke-confidential/resume", json!({})).await;
    let (st, v) = dke_post(&s, &decrypt_url, Some(&token), body.clone()).await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Every call is in the audit trail, the decryptions naming the user.
    s.service().flush_audit().await;
    let (_, audit) = s.get("/v1/audit?limit=1000").await;
    let events = audit["events"].as_array().unwrap();
    let dke: Vec<&Value> = events.iter().filter(|e| e["door"] == "dke").collect();
    let decrypts = |outcome: &str| {
        dke.iter()
            .filter(|e| e["operation"] == "Decrypt" && e["outcome"] == outcome)
            .count()
    };
    assert!(decrypts("ok") >= 3, "{dke:#?}");
    assert!(
        dke.iter().any(|e| e["operation"] == "Decrypt"
            && e["outcome"] == "ok"
            && e["detail"]["end_user"] == ALICE
            && e["principal"].as_str().unwrap().starts_with("dke-service")),
        "{dke:#?}"
    );
    assert!(
        dke.iter()
            .any(|e| e["detail"]["end_user"] == "mallory@contoso.test"
                && e["outcome"] == "not_permitted"),
        "{dke:#?}"
    );
    let refused = dke
        .iter()
        .filter(|e| e["operation"] == "Authenticate" && e["outcome"] == "unauthenticated")
        .count();
    assert!(refused >= 10, "{refused} refused tokens recorded: {dke:#?}");
    assert!(
        dke.iter()
            .any(|e| e["operation"] == "GetPublicKey" && e["outcome"] == "ok"),
        "{dke:#?}"
    );
    assert!(
        dke.iter()
            .any(|e| e["operation"] == "Decrypt" && e["outcome"] == "wrong_state"),
        "{dke:#?}"
    );
    assert!(
        dke.iter().any(|e| e["operation"] == "Decrypt"
            && e["outcome"] == "invalid_input"
            && e["detail"]["end_user"] == ALICE),
        "the wrong alg's refusal is audited, naming the user: {dke:#?}"
    );
    s.shutdown().await;
}
