//! Credentials end to end, over real HTTPS: API tokens (expiry, revocation, last use), JWTs
//! of a configured issuer (audience, expiry, `alg: none`, HMAC confusion), client
//! certificates (mutual TLS, untrusted CA, bindings, certificate conditions in a key
//! policy), and sessions (expiry, refresh, refresh-token reuse, logout).

mod common;

use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair as CertKey, SanType,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "arca";

fn b64u(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

struct Pki {
    issuer: Issuer<'static, CertKey>,
    ca_pem: String,
}

fn ca(name: &str) -> Pki {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    let key = CertKey::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    Pki {
        ca_pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

/// A client certificate and key (PEM, concatenated for reqwest) and its SHA-256 fingerprint.
fn client_cert(pki: &Pki, cn: &str, ou: &str, dns: &str) -> (Vec<u8>, String) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationalUnitName, ou);
    p.subject_alt_names = vec![SanType::DnsName(dns.try_into().unwrap())];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = CertKey::generate().unwrap();
    let cert = p.signed_by(&key, &pki.issuer).unwrap();
    let fp: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.der())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (
        format!("{}{}", cert.pem(), key.serialize_pem()).into_bytes(),
        fp,
    )
}

fn mtls_client(s: &TestServer, identity_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&s.ca_pem()).unwrap()])
        .identity(reqwest::Identity::from_pem(identity_pem).unwrap())
        .build()
        .unwrap()
}

async fn call(
    client: &reqwest::Client,
    s: &TestServer,
    m: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = client.request(m, format!("{}{}", s.url, path));
    if let Some(b) = bearer {
        rb = rb.bearer_auth(b);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("request sent");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_expire_revoke_and_record_last_use() {
    let s = TestServer::start().await;
    s.ok(
        "/v1/principals",
        json!({"name": "app", "roles": ["crypto-user"]}),
    )
    .await;
    let t = s
        .ok(
            "/v1/principals/app/tokens",
            json!({"name": "ci", "expires_in_secs": 60}),
        )
        .await;
    let tok = t["token"].as_str().unwrap().to_string();
    assert!(tok.starts_with("arca_"), "recognisable prefix");
    assert!(
        tok.len() >= 5 + 12 + 1 + 43,
        "at least 256 bits of secret: {}",
        tok.len()
    );
    let app = s.with_token(&tok);
    let (st, who) = app.get("/v1/whoami").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(who["principal"], "app");
    assert_eq!(who["credential"], "api_token");
    // Last use is recorded (off the request path, so poll briefly).
    let mut seen = false;
    for _ in 0..50 {
        let (_, l) = s.get("/v1/principals/app/tokens").await;
        if l["tokens"][0]["last_used_at"].is_string() {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen, "last_used_at recorded");
    let (_, l) = s.get("/v1/tokens").await;
    assert!(!l.to_string().contains(&tok), "listings never show a token");
    // Expiry.
    s.clock.advance(chrono::Duration::seconds(61));
    assert_error(
        &app.get("/v1/whoami").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        None,
    );
    // A principal lists its own tokens, not others'.
    let t1 = s.ok("/v1/principals/app/tokens", json!({})).await;
    let app1 = s.with_token(t1["token"].as_str().unwrap());
    let (st, mine) = app1.get("/v1/principals/app/tokens").await;
    assert_eq!(st, StatusCode::OK, "{mine}");
    assert_eq!(
        app1.get("/v1/principals/admin/tokens").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app1.get("/v1/tokens").await.0, StatusCode::FORBIDDEN);
    // Revocation takes effect at once; a principal may revoke its own token.
    let t2 = s.ok("/v1/principals/app/tokens", json!({})).await;
    let app2 = s.with_token(t2["token"].as_str().unwrap());
    assert_eq!(app2.get("/v1/whoami").await.0, StatusCode::OK);
    let (st, r) = app2
        .req(
            Method::DELETE,
            &format!("/v1/tokens/{}", t2["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert!(r["revoked_at"].is_string());
    assert_error(
        &app2.get("/v1/whoami").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        None,
    );
    // A disabled principal stops authenticating.
    let t3 = s.ok("/v1/principals/app/tokens", json!({})).await;
    let app3 = s.with_token(t3["token"].as_str().unwrap());
    assert_eq!(app3.get("/v1/whoami").await.0, StatusCode::OK);
    let (st, _) = s
        .req(
            Method::PATCH,
            "/v1/principals/app",
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_error(
        &app3.get("/v1/whoami").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        None,
    );
    // Nobody changes their own roles.
    let (st, _) = s
        .req(
            Method::PATCH,
            "/v1/principals/admin",
            Some(json!({"roles": ["auditor"]})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_bearer_tokens_from_a_configured_issuer() {
    let tmp = tempfile::tempdir().unwrap();
    let idp = Idp::new();
    let jwks = tmp.path().join("jwks.json");
    std::fs::write(&jwks, idp.jwks().to_string()).unwrap();
    let jwks_path = jwks.clone();
    let s = TestServer::start_with(move |c| {
        // This test fails on purpose many times from one address.
        c.service.limits.auth_failures_free = 1000;
        c.service.jwt_issuers = vec![arca_service::JwtIssuer {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            jwks_file: Some(jwks_path.clone()),
            jwks_url: None,
            claim: "sub".into(),
            algorithms: vec!["EdDSA".into(), "ES256".into()],
        }];
    })
    .await;
    s.ok(
        "/v1/principals",
        json!({"name": "alice", "roles": ["crypto-user"]}),
    )
    .await;
    let now = s.clock_now().timestamp();
    let good = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice@idp", "iat": now, "nbf": now - 5, "exp": now + 300});
    // Not bound yet.
    assert_error(
        &s.with_token(&idp.token(good.clone()))
            .get("/v1/whoami")
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        None,
    );
    let (st, b) = s
        .post(
            "/v1/principals/alice/bindings",
            json!({"kind": "jwt", "issuer": ISSUER, "value": "alice@idp"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (st, who) = s
        .with_token(&idp.token(good.clone()))
        .get("/v1/whoami")
        .await;
    assert_eq!(st, StatusCode::OK, "{who}");
    assert_eq!(who["principal"], "alice");
    assert_eq!(who["credential"], "jwt");
    // A session started with the JWT, and a token its holder issues itself, end when the
    // JWT does (300 s here), not hours later: the identity provider's word is the limit.
    let (st, sess) = s
        .with_token(&idp.token(good.clone()))
        .post("/v1/auth/token", json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{sess}");
    assert!(
        sess["refresh_expires_in"].as_u64().unwrap() <= 300,
        "{sess}"
    );
    let (st, own) = s
        .with_token(&idp.token(good.clone()))
        .post("/v1/principals/alice/tokens", json!({"name": "from-jwt"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{own}");
    let ends = chrono::DateTime::parse_from_rfc3339(own["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert_eq!(ends, now + 300, "{own}");

    let bad = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        idp.token(c)
    };
    for (why, token) in [
        ("wrong audience", bad(json!({"aud": "someone-else"}))),
        ("expired", bad(json!({"exp": now - 1}))),
        ("not yet valid", bad(json!({"nbf": now + 60}))),
        (
            "unknown issuer",
            bad(json!({"iss": "https://evil.example"})),
        ),
        ("unbound subject", bad(json!({"sub": "mallory"}))),
    ] {
        let got = s.with_token(&token).get("/v1/whoami").await;
        assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{why}: {}", got.1);
    }
    // A forged signature.
    // (A character in the middle of the signature: every one of its 6 bits counts, unlike
    // the last character's, some of which are padding.)
    let good_token = idp.token(good.clone());
    let at = good_token.len() - 10;
    let flipped = if &good_token[at..at + 1] == "A" {
        "B"
    } else {
        "A"
    };
    let forged = format!("{}{flipped}{}", &good_token[..at], &good_token[at + 1..]);
    assert_eq!(
        s.with_token(&forged).get("/v1/whoami").await.0,
        StatusCode::UNAUTHORIZED
    );
    // `alg: none` with no signature.
    let none = format!(
        "{}.{}.",
        b64u(br#"{"alg":"none","typ":"JWT"}"#),
        b64u(good.to_string().as_bytes())
    );
    assert_eq!(
        s.with_token(&none).get("/v1/whoami").await.0,
        StatusCode::UNAUTHORIZED
    );
    // HS256 "signed" with the public key as the HMAC secret (the algorithm-confusion attack).
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = Some("k1".into());
    let confused = jsonwebtoken::encode(
        &h,
        &good,
        &jsonwebtoken::EncodingKey::from_secret(idp.pair.public_key().as_ref()),
    )
    .unwrap();
    let got = s.with_token(&confused).get("/v1/whoami").await;
    assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{}", got.1);
    // After time passes, the same token expires on the server's clock.
    s.clock.advance(chrono::Duration::seconds(301));
    assert_eq!(
        s.with_token(&idp.token(good.clone()))
            .get("/v1/whoami")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_mutual_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let trusted = ca("Clients CA");
    let untrusted = ca("Stranger CA");
    let ca_file = tmp.path().join("clients-ca.pem");
    std::fs::write(&ca_file, &trusted.ca_pem).unwrap();
    let ca_path = ca_file.clone();
    let s = TestServer::start_with(move |c| c.tls.client_ca = Some(ca_path.clone())).await;

    let (zone_a, fp_a) = client_cert(&trusted, "app", "zone-a", "i-0a1.eu-west.example");
    let (zone_b, fp_b) = client_cert(&trusted, "app", "zone-b", "i-0b2.eu-west.example");
    let (stranger, _) = client_cert(&untrusted, "app", "zone-a", "i-0a1.eu-west.example");

    // A certificate from an untrusted CA fails the handshake.
    let c = mtls_client(&s, &stranger);
    let r = c.get(format!("{}/v1/whoami", s.url)).send().await;
    assert!(r.is_err(), "untrusted client certificate accepted: {r:?}");
    // A trusted certificate bound to nobody is not a credential.
    let ca_client = mtls_client(&s, &zone_a);
    // The console offers a certificate sign-in here (and only where client_ca is set).
    let page = ca_client
        .get(format!("{}/ui/", s.url))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"<body data-client-certificates="true">"#),
        "{page}"
    );
    assert_error(
        &call(&ca_client, &s, Method::GET, "/v1/whoami", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        None,
    );
    // Bind by SAN and by fingerprint.
    s.ok(
        "/v1/principals",
        json!({"name": "app", "roles": ["crypto-user"]}),
    )
    .await;
    let (st, b) = s
        .post(
            "/v1/principals/app/bindings",
            json!({"kind": "certificate-san", "value": "i-0a1.eu-west.example"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let (st, who) = call(&ca_client, &s, Method::GET, "/v1/whoami", None, None).await;
    assert_eq!(st, StatusCode::OK, "{who}");
    assert_eq!(who["principal"], "app");
    assert_eq!(who["credential"], "certificate");
    let b_client = mtls_client(&s, &zone_b);
    assert_eq!(
        call(&b_client, &s, Method::GET, "/v1/whoami", None, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (st, _) = s
        .post(
            "/v1/principals/app/bindings",
            json!({"kind": "certificate-fingerprint", "value": fp_b}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(
        call(&b_client, &s, Method::GET, "/v1/whoami", None, None)
            .await
            .0,
        StatusCode::OK
    );
    // One certificate never maps to two principals.
    s.ok(
        "/v1/principals",
        json!({"name": "other", "roles": ["crypto-user"]}),
    )
    .await;
    let got = s
        .post(
            "/v1/principals/other/bindings",
            json!({"kind": "certificate-fingerprint", "value": fp_b}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "conflict", None);
    let got = s
        .post(
            "/v1/principals/other/bindings",
            json!({"kind": "certificate-fingerprint", "value": "nothex"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("value"),
    );
    let _ = fp_a;

    // A key usable only from zone-a instances (OU and SAN conditions).
    s.create(json!({"name": "zoned", "policy": [{"effect": "allow", "principals": ["principal:app"], "actions": ["Encrypt", "Decrypt"],
        "conditions": {"certificate": {"ou": "zone-a", "san_dns": "*.eu-west.example"}}}]}))
        .await;
    let (st, v) = call(
        &ca_client,
        &s,
        Method::POST,
        "/v1/keys/zoned/encrypt",
        None,
        Some(json!({"plaintext": b64(b"x")})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let got = call(
        &b_client,
        &s,
        Method::POST,
        "/v1/keys/zoned/encrypt",
        None,
        Some(json!({"plaintext": b64(b"x")})),
    )
    .await;
    assert_error(&got, StatusCode::FORBIDDEN, "not_permitted", None);
    // The same principal with an API token and no certificate does not meet the condition.
    let t = s.ok("/v1/principals/app/tokens", json!({})).await;
    let got = s
        .with_token(t["token"].as_str().unwrap())
        .encrypt("zoned", b"x")
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "not_permitted", None);
    // A bearer token sent over a certificate connection authenticates as the token's owner.
    let (st, who) = call(
        &ca_client,
        &s,
        Method::GET,
        "/v1/whoami",
        Some(&s.token),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(who["principal"], "admin");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_refresh_rotate_and_log_out() {
    let s = TestServer::start().await;
    let (st, t) = s.post("/v1/auth/token", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 300);
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    assert!(refresh.starts_with("arcar_"));
    let sess = s.with_token(&access);
    let (st, who) = sess.get("/v1/whoami").await;
    assert_eq!(st, StatusCode::OK, "{who}");
    assert_eq!(who["credential"], "session");
    assert_eq!(who["principal"], "admin");
    // The session grants what the principal may do.
    s.create(json!({"name": "k"})).await;
    assert_eq!(sess.encrypt("k", b"x").await.0, StatusCode::OK);
    // A credential issued by oneself lives no longer than the one in use: a session
    // cannot mint a ten-year API token or access key that outlives it (and its IdP account).
    let ten_years = json!({"name": "forever", "expires_in_secs": 10 * 365 * 86400});
    for path in [
        "/v1/principals/admin/tokens",
        "/v1/principals/admin/aws-credentials",
    ] {
        let (st, v) = sess.post(path, ten_years.clone()).await;
        assert_error(
            &(st, v),
            StatusCode::BAD_REQUEST,
            "invalid_input",
            Some("expires_in_secs"),
        );
    }
    let (st, own) = sess
        .post(
            "/v1/principals/admin/tokens",
            json!({"name": "from-session"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{own}");
    let ends = chrono::DateTime::parse_from_rfc3339(own["expires_at"].as_str().unwrap()).unwrap();
    let session_end =
        s.clock_now() + chrono::Duration::seconds(t["refresh_expires_in"].as_i64().unwrap());
    assert!(
        (ends.with_timezone(&chrono::Utc) - session_end)
            .num_seconds()
            .abs()
            <= 1,
        "capped at the session's end: {own}"
    );
    // A session cannot start another.
    assert_eq!(
        sess.post("/v1/auth/token", json!({})).await.0,
        StatusCode::BAD_REQUEST
    );
    // Five minutes later the access token has expired.
    s.clock.advance(chrono::Duration::seconds(301));
    assert_error(
        &sess.get("/v1/whoami").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        None,
    );
    // The refresh token (no other credential needed) gives a new pair and is spent.
    let refresh_call = |rt: String| {
        let s = &s;
        async move {
            let r = s
                .client
                .post(format!("{}/v1/auth/token", s.url))
                .json(&json!({"grant_type": "refresh_token", "refresh_token": rt}))
                .send()
                .await
                .unwrap();
            let st = r.status();
            (st, r.json::<Value>().await.unwrap())
        }
    };
    // Knowing the session id (it is in audit records and token claims) is not enough to
    // end the session: a made-up refresh token for it is refused, and the session goes on.
    let sid = uuid::Uuid::parse_str(t["session_id"].as_str().unwrap()).unwrap();
    let forged = format!("arcar_{}_{}", sid.simple(), "A".repeat(43));
    let (st, v) = refresh_call(forged).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    let (st, t2) = refresh_call(refresh.clone()).await;
    assert_eq!(st, StatusCode::OK, "{t2}");
    assert_eq!(t2["session_id"], t["session_id"]);
    let access2 = t2["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        s.with_token(&access2).get("/v1/whoami").await.0,
        StatusCode::OK
    );
    // Replaying the spent refresh token revokes the whole session.
    let (st, _) = refresh_call(refresh.clone()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.with_token(&access2).get("/v1/whoami").await.0,
        StatusCode::UNAUTHORIZED,
        "session revoked on reuse"
    );
    let (st, _) = refresh_call(t2["refresh_token"].as_str().unwrap().to_string()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Revoking the API token that started a session ends the session at its next refresh;
    // a session started by another token of the same principal goes on.
    let (st, issued) = s
        .post("/v1/principals/admin/tokens", json!({"name": "laptop"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{issued}");
    let laptop = s.with_token(issued["token"].as_str().unwrap());
    let (_, from_laptop) = laptop.post("/v1/auth/token", json!({})).await;
    let (_, from_admin) = s.post("/v1/auth/token", json!({})).await;
    let (st, _) = s
        .req(
            reqwest::Method::DELETE,
            &format!("/v1/tokens/{}", issued["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = refresh_call(from_laptop["refresh_token"].as_str().unwrap().to_string()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("API token that started this session"),
        "{v}"
    );
    let (st, v) = refresh_call(from_admin["refresh_token"].as_str().unwrap().to_string()).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Logout ends a fresh session: both tokens stop working.
    let (_, t3) = s
        .post("/v1/auth/token", json!({"grant_type": "credential"}))
        .await;
    let sess3 = s.with_token(t3["access_token"].as_str().unwrap());
    assert_eq!(sess3.get("/v1/whoami").await.0, StatusCode::OK);
    assert_eq!(
        sess3.post("/v1/auth/logout", json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(sess3.get("/v1/whoami").await.0, StatusCode::UNAUTHORIZED);
    let (st, _) = refresh_call(t3["refresh_token"].as_str().unwrap().to_string()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // A credential grant without a credential, and nonsense grants, are refused.
    let r = s
        .client
        .post(format!("{}/v1/auth/token", s.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (st, v) = s
        .post("/v1/auth/token", json!({"grant_type": "password"}))
        .await;
    assert_error(
        &(st, v),
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("grant_type"),
    );
    // Sessions survive a restart (the signing key is stored wrapped by the root key).
    let (_, t4) = s.post("/v1/auth/token", json!({})).await;
    let access4 = t4["access_token"].as_str().unwrap().to_string();
    let mut s = s;
    s.restart().await;
    assert_eq!(
        s.with_token(&access4).get("/v1/whoami").await.0,
        StatusCode::OK
    );
    // No token reaches the store (only hashes) or the logs.
    s.service().flush_audit().await;
    let mut files = vec![s.data_dir.clone()];
    let mut stored = Vec::new();
    while let Some(f) = files.pop() {
        if f.is_dir() {
            files.extend(std::fs::read_dir(&f).unwrap().map(|e| e.unwrap().path()));
        } else {
            stored.extend(std::fs::read(&f).unwrap());
        }
    }
    let stored = String::from_utf8_lossy(&stored).to_string();
    for secret in [&access, &refresh, &access4, &s.token] {
        assert!(
            !stored.contains(secret.as_str()),
            "a credential is in the data dir"
        );
        // The secret half: what follows `arca_<id>_` / `arcar_<id>_` (base64url, which may
        // itself hold `_`), or the signature of a JWT. A short piece could match any bytes.
        let secret_part = match secret.split_once('_') {
            Some(("arca" | "arcar", rest)) => rest.split_once('_').unwrap().1,
            _ => secret.rsplit('.').next().unwrap(),
        };
        assert!(secret_part.len() >= 40, "{}", secret_part.len());
        assert!(
            !stored.contains(secret_part),
            "a credential's secret is in the data dir"
        );
    }
    // No token or secret reaches the logs.
    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).to_string();
    for secret in [&access, &refresh, &access4, &s.token] {
        assert!(!logs.contains(secret.as_str()), "a credential was logged");
    }
    s.shutdown().await;
}

/// A JWKS served over HTTP by a tiny server on loopback: fetched at first use, and fetched
/// again when a token names a key id it does not know (the issuer rotated its keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_from_a_url_and_key_rotation() {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let old = Idp::new();
    let jwks = Arc::new(Mutex::new(old.jwks().to_string()));
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    {
        let jwks = jwks.clone();
        let fetches = fetches.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let body = jwks.lock().unwrap().clone();
                fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                        body.len(),
                        body
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                });
            }
        });
    }
    let url = format!("http://127.0.0.1:{port}/jwks.json");
    let s = TestServer::start_with(move |c| {
        c.service.jwt_issuers = vec![arca_service::JwtIssuer {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            jwks_file: None,
            jwks_url: Some(url.clone()),
            claim: "sub".into(),
            algorithms: vec!["EdDSA".into()],
        }];
    })
    .await;
    s.ok(
        "/v1/principals",
        json!({"name": "bob", "roles": ["auditor"]}),
    )
    .await;
    s.ok(
        "/v1/principals/bob/bindings",
        json!({"kind": "jwt", "issuer": ISSUER, "value": "bob"}),
    )
    .await;
    let now = s.clock_now().timestamp();
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bob", "exp": now + 600});
    assert_eq!(
        s.with_token(&old.token(claims.clone()))
            .get("/v1/whoami")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        s.with_token(&old.token(claims.clone()))
            .get("/v1/whoami")
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the JWKS is cached"
    );
    // The issuer rotates to a new key with a new kid.
    let new = Idp::new();
    let mut set = new.jwks();
    set["keys"][0]["kid"] = json!("k2");
    *jwks.lock().unwrap() = set.to_string();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    h.kid = Some("k2".into());
    let t = jsonwebtoken::encode(
        &h,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&new.pkcs8),
    )
    .unwrap();
    // Within a minute of the last fetch an unknown kid is refused without a new fetch...
    assert_eq!(
        s.with_token(&t).get("/v1/whoami").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
    // ...and after it, fetched again: the new key works, the old one no longer does.
    s.clock.advance(chrono::Duration::seconds(61));
    let now = s.clock_now().timestamp();
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bob", "exp": now + 600});
    let t = jsonwebtoken::encode(
        &h,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&new.pkcs8),
    )
    .unwrap();
    let (st, who) = s.with_token(&t).get("/v1/whoami").await;
    assert_eq!(st, StatusCode::OK, "{who}");
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        s.with_token(&old.token(claims.clone()))
            .get("/v1/whoami")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_jwt_issuer_configuration_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.service.jwt_issuers = vec![arca_service::JwtIssuer {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_file: None,
        jwks_url: Some("http://idp.example.com/jwks".into()),
        claim: "sub".into(),
        algorithms: vec!["EdDSA".into()],
    }];
    let e = arca_server::start(&cfg).await.err().expect("refused");
    assert!(e.to_string().contains("jwks_url"), "{e}");
    cfg.service.jwt_issuers[0].jwks_url = Some("https://idp.example.com/jwks".into());
    cfg.service.jwt_issuers[0].algorithms = vec!["HS256".into()];
    let e = arca_server::start(&cfg).await.err().expect("refused");
    assert!(e.to_string().contains("algorithms"), "{e}");
}

/// A client certificate (PEM certificate and key, concatenated) with the subject given as
/// RDNs in DER order (each a list of attributes), and no SAN.
fn cert_with_subject(pki: &Pki, rdns: &[(DnType, &str)]) -> Vec<u8> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    // In this order (rcgen's default name holds a CN already).
    p.distinguished_name = rcgen::DistinguishedName::new();
    for (t, v) in rdns {
        p.distinguished_name.push(t.clone(), *v);
    }
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = CertKey::generate().unwrap();
    let cert = p.signed_by(&key, &pki.issuer).unwrap();
    format!("{}{}", cert.pem(), key.serialize_pem()).into_bytes()
}

/// Issue 17, finding 2: subjects compare in canonical RFC 4514 form. A binding to
/// `CN=svc, O=Example` matches the two-RDN subject (CN=svc, O=Example) and not the one-CN
/// subject whose common name is `svc, O=Example`, which only its escaped form matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_subjects_do_not_match() {
    let tmp = tempfile::tempdir().unwrap();
    let trusted = ca("Clients CA");
    let ca_file = tmp.path().join("clients-ca.pem");
    std::fs::write(&ca_file, &trusted.ca_pem).unwrap();
    let s = TestServer::start_with(move |c| {
        c.tls.client_ca = Some(ca_file.clone());
        c.kmip.listen = "127.0.0.1:0".into();
    })
    .await;
    // DER order: O first, then CN (RFC 4514 writes it CN=svc,O=Example).
    let two_rdns = cert_with_subject(
        &trusted,
        &[
            (DnType::OrganizationName, "Example"),
            (DnType::CommonName, "svc"),
        ],
    );
    let one_cn = cert_with_subject(&trusted, &[(DnType::CommonName, "svc, O=Example")]);
    let whoami = |pem: Vec<u8>| {
        let s = &s;
        async move {
            call(
                &mtls_client(s, &pem),
                s,
                Method::GET,
                "/v1/whoami",
                None,
                None,
            )
            .await
        }
    };
    for name in ["svc", "lookalike"] {
        s.ok(
            "/v1/principals",
            json!({"name": name, "roles": ["crypto-user"]}),
        )
        .await;
    }
    let (st, b) = s
        .post(
            "/v1/principals/svc/bindings",
            json!({"kind": "certificate-subject", "value": "CN=svc, O=Example"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["value"], "CN=svc,O=Example", "stored in canonical form");
    let (st, who) = whoami(two_rdns.clone()).await;
    assert_eq!(st, StatusCode::OK, "{who}");
    assert_eq!(who["principal"], "svc");
    assert_error(
        &whoami(one_cn.clone()).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        None,
    );
    // The same name written otherwise is the same binding.
    assert_error(
        &s.post(
            "/v1/principals/lookalike/bindings",
            json!({"kind": "certificate-subject", "value": "cn=svc,o=Example"}),
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    // The one-CN subject, escaped, is another name.
    let (st, b) = s
        .post(
            "/v1/principals/lookalike/bindings",
            json!({"kind": "certificate-subject", "value": "CN=svc\\, O\\=Example"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(whoami(one_cn).await.1["principal"], "lookalike");
    assert_eq!(whoami(two_rdns).await.1["principal"], "svc");
    // A subject that does not parse is refused, naming the field.
    assert_error(
        &s.post(
            "/v1/principals/lookalike/bindings",
            json!({"kind": "certificate-subject", "value": "CN=a;b"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("value"),
    );
    s.shutdown().await;
}

/// Within one tenant a certificate resolves to one principal or to none: bound by
/// fingerprint to one principal and by SAN to another, it is refused (and audited).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_matching_two_principals_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let trusted = ca("Clients CA");
    let ca_file = tmp.path().join("clients-ca.pem");
    std::fs::write(&ca_file, &trusted.ca_pem).unwrap();
    let s = TestServer::start_with(move |c| {
        c.tls.client_ca = Some(ca_file.clone());
        c.kmip.listen = "127.0.0.1:0".into();
    })
    .await;
    let (pem, fp) = client_cert(&trusted, "app", "zone-a", "i-0a1.eu-west.example");
    for name in ["one", "two"] {
        s.ok(
            "/v1/principals",
            json!({"name": name, "roles": ["crypto-user"]}),
        )
        .await;
    }
    s.ok(
        "/v1/principals/one/bindings",
        json!({"kind": "certificate-fingerprint", "value": fp}),
    )
    .await;
    let c = mtls_client(&s, &pem);
    assert_eq!(
        call(&c, &s, Method::GET, "/v1/whoami", None, None).await.1["principal"],
        "one"
    );
    s.ok(
        "/v1/principals/two/bindings",
        json!({"kind": "certificate-san", "value": "i-0a1.eu-west.example"}),
    )
    .await;
    let got = call(&c, &s, Method::GET, "/v1/whoami", None, None).await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthenticated", None);
    // The refusal is in the audit trail, with the certificate (a refusal before there is a
    // principal is the system tenant's to read).
    let op = s.operator();
    op.ok(
        "/v1/principals",
        json!({"name": "sys-auditor", "roles": ["auditor"]}),
    )
    .await;
    let t = op.ok("/v1/principals/sys-auditor/tokens", json!({})).await;
    let (st, v) = s
        .with_token(t["token"].as_str().unwrap())
        .get("/v1/audit?limit=1000")
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(
        v.to_string().contains(&fp),
        "no audited refusal for the certificate: {v}"
    );
    // A binding made with the certificate itself (PEM) knows all its names: a binding that
    // would make it match a second principal is refused when it is made.
    let (pem2, fp2) = client_cert(&trusted, "app", "zone-b", "i-0b2.eu-west.example");
    let text = String::from_utf8(pem2.clone()).unwrap();
    let end = "-----END CERTIFICATE-----";
    let cert_only = &text[..text.find(end).unwrap() + end.len()];
    let (st, b) = s
        .post(
            "/v1/principals/one/bindings",
            json!({"kind": "certificate-fingerprint", "value": fp2, "certificate": cert_only}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert_eq!(b["certificate"]["subject"], "OU=zone-b,CN=app", "{b}");
    for (kind, value) in [
        ("certificate-san", "i-0b2.eu-west.example"),
        ("certificate-subject", "OU=zone-b,CN=app"),
    ] {
        assert_error(
            &s.post(
                "/v1/principals/two/bindings",
                json!({"kind": kind, "value": value}),
            )
            .await,
            StatusCode::CONFLICT,
            "conflict",
            None,
        );
    }
    // Naming the certificate, a value must be one of its names.
    assert_error(
        &s.post(
            "/v1/principals/one/bindings",
            json!({"kind": "certificate-san", "value": "elsewhere.example", "certificate": cert_only}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("value"),
    );
    // The same principal may add names of its own certificate.
    s.ok(
        "/v1/principals/one/bindings",
        json!({"kind": "certificate-san", "value": "i-0b2.eu-west.example", "certificate": cert_only}),
    )
    .await;
    let c2 = mtls_client(&s, &pem2);
    assert_eq!(
        call(&c2, &s, Method::GET, "/v1/whoami", None, None).await.1["principal"],
        "one"
    );
    s.shutdown().await;
}

/// Issue 17 for JWTs: an issuer belongs to one tenant. Another tenant cannot bind its
/// identities; once the operator assigns the issuer to a tenant, its tokens resolve there
/// and nowhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_identities_stay_in_their_issuers_tenant() {
    let tmp = tempfile::tempdir().unwrap();
    let idp = Idp::new();
    let jwks = tmp.path().join("jwks.json");
    std::fs::write(&jwks, idp.jwks().to_string()).unwrap();
    let s = TestServer::start_with(move |c| {
        c.service.jwt_issuers = vec![arca_service::JwtIssuer {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            jwks_file: Some(jwks.clone()),
            jwks_url: None,
            claim: "sub".into(),
            algorithms: vec!["EdDSA".into()],
        }];
    })
    .await;
    let now = s.clock_now().timestamp();
    let token =
        idp.token(json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice@idp", "exp": now + 600}));
    // The default tenant (never-assigned issuers are its) binds alice.
    s.ok(
        "/v1/principals",
        json!({"name": "alice", "roles": ["crypto-user"]}),
    )
    .await;
    s.ok(
        "/v1/principals/alice/bindings",
        json!({"kind": "jwt", "issuer": ISSUER, "value": "alice@idp"}),
    )
    .await;
    assert_eq!(
        s.with_token(&token).get("/v1/whoami").await.1["principal"],
        "alice"
    );
    // Another tenant's admin tries to take alice.
    let op = s.operator();
    let (st, v) = op.post("/v1/tenants", json!({"name": "other"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let other = s.with_token(v["admin_token"].as_str().unwrap());
    other
        .ok(
            "/v1/principals",
            json!({"name": "mallory", "roles": ["crypto-user"]}),
        )
        .await;
    assert_error(
        &other
            .post(
                "/v1/principals/mallory/bindings",
                json!({"kind": "jwt", "issuer": ISSUER, "value": "alice@idp"}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    assert_eq!(
        s.with_token(&token).get("/v1/whoami").await.1["principal"],
        "alice"
    );
    // The operator assigns the issuer to `other`: its tokens now resolve there only.
    let (st, v) = op
        .post("/v1/tenants/other/trust", json!({"jwt_issuer": ISSUER}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (_, v) = op.get("/v1/tenants/other/trust").await;
    assert_eq!(v["anchors"][0]["id"], format!("jwt:{ISSUER}"), "{v}");
    assert_eq!(
        s.with_token(&token).get("/v1/whoami").await.0,
        StatusCode::UNAUTHORIZED,
        "the default tenant's binding no longer applies"
    );
    assert_error(
        &s.post(
            "/v1/principals/alice/bindings",
            json!({"kind": "jwt", "issuer": ISSUER, "value": "bob@idp"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    other
        .ok(
            "/v1/principals/mallory/bindings",
            json!({"kind": "jwt", "issuer": ISSUER, "value": "alice@idp"}),
        )
        .await;
    assert_eq!(
        s.with_token(&token).get("/v1/whoami").await.1["principal"],
        "mallory"
    );
    // Withdrawn, it authenticates no one (it does not fall back to the default tenant).
    let (st, v) = op
        .req(
            Method::DELETE,
            &format!(
                "/v1/tenants/other/trust/{}",
                url_escape(&format!("jwt:{ISSUER}"))
            ),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        s.with_token(&token).get("/v1/whoami").await.0,
        StatusCode::UNAUTHORIZED
    );
    // A withdrawn anchor can be assigned again, to the system tenant too (its approvers may
    // sign in with the IdP's tokens).
    let (st, v) = op
        .post("/v1/tenants/system/trust", json!({"jwt_issuer": ISSUER}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    op.ok(
        "/v1/principals",
        json!({"name": "idp-approver", "roles": ["approver"]}),
    )
    .await;
    op.ok(
        "/v1/principals/idp-approver/bindings",
        json!({"kind": "jwt", "issuer": ISSUER, "value": "alice@idp"}),
    )
    .await;
    assert_eq!(
        s.with_token(&token).get("/v1/whoami").await.1["principal"],
        "idp-approver"
    );
    s.shutdown().await;
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Upgrade: bindings of an older data dir (ids not scoped by tenant, subjects as the old
/// display string in DER order) are moved at start to their tenant's scope and canonical
/// form, and keep authenticating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_of_an_older_data_dir_keep_working() {
    let tmp = tempfile::tempdir().unwrap();
    let trusted = ca("Clients CA");
    let ca_file = tmp.path().join("clients-ca.pem");
    std::fs::write(&ca_file, &trusted.ca_pem).unwrap();
    let s = TestServer::start_with(move |c| {
        c.tls.client_ca = Some(ca_file.clone());
        c.kmip.listen = "127.0.0.1:0".into();
    })
    .await;
    let (by_subject, _) = client_cert(&trusted, "app", "zone-a", "a.example");
    let (by_san, _) = client_cert(&trusted, "other", "zone-b", "b.example");
    let p = s
        .ok(
            "/v1/principals",
            json!({"name": "app", "roles": ["crypto-user"]}),
        )
        .await;
    let me = s.get("/v1/whoami").await.1;
    let store = s.service().store().clone();
    for (kind, value) in [
        ("certificate-subject", "CN=app, OU=zone-a"),
        ("certificate-san", "b.example"),
    ] {
        let id = format!("{kind}:{value}");
        let doc = json!({"id": id, "tenant_id": me["tenant_id"], "principal_id": p["id"],
            "kind": kind, "value": value, "created_at": s.clock_now()});
        store
            .put_record(
                &arca_store::Record {
                    kind: "binding".into(),
                    id,
                    tenant_id: Some(me["tenant_id"].as_str().unwrap().parse().unwrap()),
                    revision: 1,
                    doc,
                    updated_at: s.clock_now(),
                },
                None,
                &[],
            )
            .await
            .unwrap();
    }
    // What every start does.
    s.service().ensure_default_tenant().await.unwrap();
    for pem in [by_subject, by_san] {
        let (st, who) = call(
            &mtls_client(&s, &pem),
            &s,
            Method::GET,
            "/v1/whoami",
            None,
            None,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{who}");
        assert_eq!(who["principal"], "app");
    }
    let (_, list) = s.get("/v1/bindings").await;
    let values: Vec<&str> = list["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["value"].as_str().unwrap())
        .collect();
    assert!(values.contains(&"OU=zone-a,CN=app"), "{values:?}");
    assert_eq!(values.len(), 2, "{list}");
    s.shutdown().await;
}
