//! End to end through real HTTPS: bad input of every kind gets the documented 4xx with a
//! message naming the problem, changes nothing and is audited; known key bytes appear in no
//! file of the data dir and in no log line.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn raw(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    ct: Option<&str>,
    body: Vec<u8>,
    accept: Option<&str>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut rb = s
        .client
        .request(method, format!("{}{}", s.url, path))
        .bearer_auth(&s.token)
        .body(body);
    if let Some(c) = ct {
        rb = rb.header("content-type", c);
    }
    if let Some(a) = accept {
        rb = rb.header("accept", a);
    }
    let r = rb.send().await.unwrap();
    let st = r.status();
    let h = r.headers().clone();
    let t = r.text().await.unwrap();
    (
        st,
        serde_json::from_str(&t).unwrap_or_else(|_| panic!("non-JSON {st}: {t}")),
        h,
    )
}

/// A snapshot of everything a failed request must not change.
async fn snapshot(s: &TestServer) -> Value {
    let keys = s.get("/v1/keys?limit=1000").await.1;
    let mut hist = Vec::new();
    for k in keys["keys"].as_array().unwrap() {
        hist.push(
            s.get(&format!("/v1/keys/{}/history", k["id"].as_str().unwrap()))
                .await
                .1,
        );
    }
    let mut keys = keys;
    for k in keys["keys"].as_array_mut().unwrap() {
        k.as_object_mut().unwrap().remove("updated_at");
    }
    json!({"keys": keys, "history": hist, "aliases": s.get("/v1/aliases").await.1})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx_changes_nothing_and_is_audited() {
    let s = TestServer::start().await;
    s.create(json!({"name": "aes"})).await;
    s.create(json!({"name": "ec", "spec": "ECC_NIST_P256"}))
        .await;
    s.create(json!({"name": "susp"})).await;
    s.ok("/v1/keys/susp/suspend", json!({})).await;
    let ct = s.encrypt("aes", b"data").await.1["ciphertext"].clone();
    let before = snapshot(&s).await;
    use reqwest::Method as M;
    let j = Some("application/json");

    // Malformed JSON.
    let r = raw(&s, M::POST, "/v1/keys", j, b"{\"name\": ".to_vec(), None).await;
    assert_error(&(r.0, r.1), StatusCode::BAD_REQUEST, "invalid_input", None);
    // Wrong types.
    let r = s.post("/v1/keys", json!({"name": 7})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_input", Some("name"));
    let r = s
        .post("/v1/keys", json!({"name": "x", "extractable": "yes"}))
        .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("extractable"),
    );
    let r = s
        .post("/v1/keys", json!({"name": "x", "spec": "AES_999"}))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_input", Some("spec"));
    // Missing field.
    let r = s.post("/v1/keys", json!({"spec": "AES_256"})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_input", Some("name"));
    // Bad base64.
    let r = s
        .post(
            "/v1/keys/aes/encrypt",
            json!({"plaintext": "!!not base64!!"}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("plaintext"),
    );
    assert!(r.1["error"]["message"].as_str().unwrap().contains("base64"));
    // Unknown fields.
    let r = s
        .post(
            "/v1/keys/aes/encrypt",
            json!({"plaintext": b64(b"x"), "plaintxt": "typo"}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("plaintxt"),
    );
    let r = s
        .post("/v1/keys", json!({"name": "x", "colour": "red"}))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_input", Some("colour"));
    // Invalid names, tags, meta, usage, rotation, dates.
    assert_error(
        &s.post("/v1/keys", json!({"name": "bad name!"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("name"),
    );
    assert_error(
        &s.post("/v1/keys", json!({"name": "aes"})).await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    assert_error(
        &s.post("/v1/keys", json!({"name": "x", "meta": [1]})).await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("meta"),
    );
    assert_error(
        &s.post(
            "/v1/keys",
            json!({"name": "x", "spec": "ECC_NIST_P256", "usage": ["ENCRYPT_DECRYPT"]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        Some("usage"),
    );
    assert_error(
        &s.post("/v1/keys", json!({"name": "x", "rotation_period_days": 0}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("rotation_period_days"),
    );
    assert_error(&s.post("/v1/keys", json!({"name": "x", "activation_date": "2030-01-02T00:00:00Z", "deactivation_date": "2030-01-01T00:00:00Z"})).await, StatusCode::BAD_REQUEST, "invalid_input", Some("deactivation_date"));
    assert_error(
        &s.post(
            "/v1/keys",
            json!({"name": "x", "activation_date": "tomorrow"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("activation_date"),
    );
    // Oversize body.
    let big = json!({"plaintext": b64(&vec![0u8; 2 * 1024 * 1024])})
        .to_string()
        .into_bytes();
    let r = raw(&s, M::POST, "/v1/keys/aes/encrypt", j, big, None).await;
    assert_error(
        &(r.0, r.1),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        None,
    );
    // Plaintext over the operation limit (under the body limit).
    let r = s
        .post(
            "/v1/keys/aes/encrypt",
            json!({"plaintext": b64(&vec![0u8; 65537])}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("plaintext"),
    );
    // Wrong content type; wrong Accept.
    let r = raw(
        &s,
        M::POST,
        "/v1/keys",
        Some("text/plain"),
        b"{\"name\":\"y\"}".to_vec(),
        None,
    )
    .await;
    assert_error(
        &(r.0, r.1),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        None,
    );
    let r = raw(
        &s,
        M::POST,
        "/v1/keys",
        None,
        b"{\"name\":\"y\"}".to_vec(),
        None,
    )
    .await;
    assert_eq!(r.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = raw(&s, M::GET, "/v1/keys", None, vec![], Some("text/html")).await;
    assert_error(
        &(r.0, r.1),
        StatusCode::NOT_ACCEPTABLE,
        "not_acceptable",
        Some("accept"),
    );
    // Method not allowed, with Allow.
    let r = raw(&s, M::DELETE, "/v1/keys/aes", None, vec![], None).await;
    assert_error(
        &(r.0, r.1.clone()),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        None,
    );
    let allow = r.2.get("allow").unwrap().to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("PATCH"), "{allow}");
    let r = raw(&s, M::GET, "/v1/nope", None, vec![], None).await;
    assert_error(&(r.0, r.1), StatusCode::NOT_FOUND, "not_found", None);
    // Unknown key, unknown action.
    assert_error(
        &s.encrypt("missing", b"x").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert_error(
        &s.encrypt(&uuid::Uuid::now_v7().to_string(), b"x").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert_error(
        &s.post("/v1/keys/aes/explode", json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    // Wrong usage: the refusal names the key's `usage`.
    assert_error(
        &s.encrypt("ec", b"x").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        Some("usage"),
    );
    assert_error(
        &s.post("/v1/keys/aes/sign", json!({"message": b64(b"m")}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        Some("usage"),
    );
    assert_error(
        &s.post("/v1/keys/aes/generate-mac", json!({"message": b64(b"m")}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        Some("usage"),
    );
    // Wrong state.
    let r = s.encrypt("susp", b"x").await;
    assert_error(&r, StatusCode::CONFLICT, "wrong_state", None);
    assert!(r.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("SUSPENDED"));
    assert_error(
        &s.post("/v1/keys/aes/activate", json!({})).await,
        StatusCode::CONFLICT,
        "wrong_state",
        None,
    );
    assert_error(
        &s.post("/v1/keys/aes/deactivate", json!({"reason": "BORED"}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("reason"),
    );
    // Tampered ciphertext: every single-byte change fails cleanly.
    let mut bytes = unb64(&ct);
    for i in [0usize, 1, 5, 20, 25, bytes.len() - 1] {
        bytes[i] ^= 0x01;
        let r = s.decrypt(&json!(b64(&bytes))).await;
        assert!(r.0.is_client_error(), "byte {i}: {} {}", r.0, r.1);
        assert_ne!(r.0, StatusCode::INTERNAL_SERVER_ERROR);
        bytes[i] ^= 0x01;
    }
    let r = s.decrypt(&json!(b64(&bytes[..10]))).await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        Some("ciphertext"),
    );
    // Wrong encryption context.
    let r = s
        .post(
            "/v1/decrypt",
            json!({"ciphertext": ct, "encryption_context": {"a": "b"}}),
        )
        .await;
    assert_error(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        Some("ciphertext"),
    );
    // Query parameters.
    assert_error(
        &s.get("/v1/keys?limit=0").await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("limit"),
    );
    assert_error(
        &s.get("/v1/keys?state=SLEEPY").await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("state"),
    );
    assert_error(
        &s.get("/v1/keys?cursor=zzz").await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("cursor"),
    );
    assert_error(
        &s.get("/v1/keys?colour=red").await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("colour"),
    );
    // Credentials in the URL.
    assert_error(
        &s.get("/v1/keys?token=abc").await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("token"),
    );
    // Authentication.
    let r = s
        .client
        .get(format!("{}/v1/keys", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("www-authenticate").is_some());
    let r = s
        .client
        .get(format!("{}/v1/keys", s.url))
        .bearer_auth("arca_nope_0123456789012345678901234567890123456789012")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let forged = format!("{}x", &s.token[..s.token.len() - 1]);
    let r = s
        .client
        .get(format!("{}/v1/keys", s.url))
        .bearer_auth(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    // Every answer carries a request id.
    let r = raw(&s, M::GET, "/v1/keys/missing", None, vec![], None).await;
    assert!(r.2.get("x-request-id").is_some());
    // One JSON value per body: a second one after it is refused, not ignored.
    let r = raw(
        &s,
        M::POST,
        "/v1/keys",
        j,
        br#"{"name":"first"}{"name":"second"}"#.to_vec(),
        None,
    )
    .await;
    assert_error(
        &(r.0, r.1),
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("body"),
    );

    // Nothing changed.
    assert_eq!(snapshot(&s).await, before);

    // Refusals are in the audit trail.
    let audit = s.get("/v1/audit?limit=1000").await.1;
    let recs = audit["events"].as_array().unwrap();
    let refused = |action: &str, code: &str| {
        recs.iter()
            .any(|r| r["operation"] == action && r["outcome"] == code)
    };
    assert!(refused("CreateKey", "invalid_input"));
    assert!(refused("Encrypt", "invalid_input"));
    assert!(refused("Encrypt", "wrong_state"));
    assert!(refused("Encrypt", "not_found"));
    assert!(refused("Decrypt", "unprocessable"));
    assert!(refused("ActivateKey", "wrong_state"));
    // Refusals made before any operation ran (routing, framing, the body limit, the
    // Accept check, credentials in the URL) are recorded too, naming the caller.
    let framing = |code: &str, status: u16| {
        recs.iter().any(|r| {
            r["operation"] == "HttpRequest"
                && r["outcome"] == code
                && r["principal"] == "admin"
                && r["detail"]["status"] == status
        })
    };
    assert!(framing("not_found", 404), "unknown route");
    assert!(framing("invalid_input", 405), "method not allowed");
    assert!(framing("invalid_input", 406), "not acceptable");
    assert!(framing("invalid_input", 413), "body too large");
    assert!(framing("invalid_input", 400), "credentials in the URL");
    assert!(recs
        .iter()
        .all(|r| r["request_id"].as_str().is_some_and(|x| !x.is_empty())));
    // Unauthenticated refusals are recorded too (not in a tenant's view; check the store).
    s.service().flush_audit().await;
    let all = arca_service::trail::read_all(s.service().store().as_ref())
        .await
        .unwrap();
    assert!(all
        .iter()
        .any(|r| r.operation == "Authenticate" && r.outcome == "unauthenticated"));
    s.shutdown().await;
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_key_bytes_are_in_no_file_and_no_log_line() {
    let mut s = TestServer::start().await;
    // Distinctive material, imported, used, exported, rotated; plus a generated key exported.
    let aes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let hmac: Vec<u8> = (0..64u8)
        .map(|i| i.wrapping_mul(91).wrapping_add(3))
        .collect();
    s.create(json!({"name": "known-aes", "material": b64(&aes), "extractable": true}))
        .await;
    s.create(json!({"name": "known-mac", "spec": "HMAC_512", "material": b64(&hmac)}))
        .await;
    let ct = s.encrypt("known-aes", b"payload").await.1["ciphertext"].clone();
    s.ok(
        "/v1/keys/known-mac/generate-mac",
        json!({"message": b64(b"m")}),
    )
    .await;
    assert_eq!(
        unb64(&s.ok("/v1/keys/known-aes/export", json!({})).await["material"]),
        aes
    );
    s.create(json!({"name": "gen", "extractable": true})).await;
    let generated = unb64(&s.ok("/v1/keys/gen/export", json!({})).await["material"]);
    let ec = s
        .create(json!({"name": "gen-ec", "spec": "ECC_NIST_P256", "extractable": true}))
        .await;
    let ec_pkcs8 = unb64(&s.ok("/v1/keys/gen-ec/export", json!({})).await["material"]);
    let dk = s.ok("/v1/keys/gen/generate-data-key", json!({})).await;
    let data_key = unb64(&dk["plaintext"]);
    s.restart().await;
    assert_eq!(unb64(&s.decrypt(&ct).await.1["plaintext"]), b"payload");
    s.service().flush_audit().await;

    // The EC private scalar sits at a fixed place in the PKCS#8; look for the whole DER.
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("imported AES", aes.clone()),
        ("imported HMAC", hmac.clone()),
        ("generated AES", generated.clone()),
        ("generated EC PKCS#8", ec_pkcs8.clone()),
        ("data key", data_key.clone()),
    ];
    let mut all = Vec::new();
    files(&s.data_dir, &mut all);
    assert!(all.iter().any(|p| p.ends_with("arca.db")));
    for f in &all {
        let bytes = std::fs::read(f).unwrap();
        for (what, secret) in &secrets {
            for form in [
                secret.clone(),
                b64(secret).into_bytes(),
                hex(secret).into_bytes(),
            ] {
                assert!(!contains(&bytes, &form), "{what} found in {}", f.display());
            }
        }
    }
    let logs = LOGS.lock().unwrap().clone();
    assert!(logs.len() > 1000, "logs were captured");
    for (what, secret) in &secrets {
        for form in [
            secret.clone(),
            b64(secret).into_bytes(),
            hex(secret).into_bytes(),
        ] {
            assert!(!contains(&logs, &form), "{what} found in the logs");
        }
    }
    assert!(
        !contains(&logs, s.token.as_bytes()),
        "the API token is in the logs"
    );
    let _ = ec;
    s.shutdown().await;
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_keys_are_not_found() {
    let s = TestServer::start().await;
    let k = s.create(json!({"name": "mine"})).await;
    let id = k["id"].as_str().unwrap().to_string();
    let ct = s.encrypt("mine", b"x").await.1["ciphertext"].clone();
    s.post("/v1/aliases", json!({"alias": "mine-alias", "key": "mine"}))
        .await;
    // A second tenant with its own principal and token.
    let svc = s.service();
    use arca_core::access::{Role, TenantSettings};
    let meta = arca_service::RequestMeta::new("test", "local", arca_service::Door::System);
    let by = arca_service::Actor::Server(&meta);
    let t2 = svc
        .create_tenant_record(
            "other",
            TenantSettings {
                allow_multiple_roles: true,
                ..Default::default()
            },
            false,
            &by,
        )
        .await
        .unwrap();
    let p2 = svc
        .create_principal_record(
            t2.id,
            "intruder",
            vec![Role::TenantAdmin, Role::CryptoUser, Role::Auditor],
            &by,
        )
        .await
        .unwrap();
    let tok = svc.issue_token(&p2, "t", None, &by).await.unwrap();
    let mut other = s.clone_handle();
    other.token = tok.token.to_string();
    for path in [
        format!("/v1/keys/{id}"),
        "/v1/keys/mine".into(),
        "/v1/keys/mine-alias".into(),
        format!("/v1/keys/{id}/history"),
        format!("/v1/keys/{id}/versions"),
    ] {
        assert_error(
            &other.get(&path).await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        );
    }
    for (path, body) in [
        (
            format!("/v1/keys/{id}/encrypt"),
            json!({"plaintext": b64(b"x")}),
        ),
        ("/v1/decrypt".to_string(), json!({"ciphertext": ct})),
        (format!("/v1/keys/{id}/suspend"), json!({})),
        (format!("/v1/keys/{id}/rotate"), json!({})),
        (
            "/v1/aliases".to_string(),
            json!({"alias": "steal", "key": id}),
        ),
    ] {
        assert_error(
            &other.post(&path, body).await,
            StatusCode::NOT_FOUND,
            "not_found",
            None,
        );
    }
    assert_eq!(other.get("/v1/keys").await.1["keys"], json!([]));
    assert_eq!(other.get("/v1/aliases").await.1["aliases"], json!([]));
    // The other tenant's own name space is separate: it may use the same name.
    assert_eq!(
        other.post("/v1/keys", json!({"name": "mine"})).await.0,
        StatusCode::CREATED
    );
    assert_eq!(s.get("/v1/keys/mine").await.1["id"], id.as_str());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_covers_every_route() {
    let s = TestServer::start().await;
    let r = s
        .client
        .get(format!("{}/v1/openapi.json", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/keys",
        "/v1/keys/{key}",
        "/v1/keys/{key}/versions",
        "/v1/keys/{key}/history",
        "/v1/keys/{key}/public-key",
        "/v1/keys/{key}/rotate",
        "/v1/keys/{key}/encrypt",
        "/v1/keys/{key}/decrypt",
        "/v1/keys/{key}/re-encrypt",
        "/v1/keys/{key}/generate-data-key",
        "/v1/keys/{key}/generate-data-key-without-plaintext",
        "/v1/keys/{key}/generate-data-key-pair",
        "/v1/keys/{key}/generate-data-key-pair-without-plaintext",
        "/v1/keys/{key}/sign",
        "/v1/keys/{key}/verify",
        "/v1/keys/{key}/generate-mac",
        "/v1/keys/{key}/verify-mac",
        "/v1/keys/{key}/encapsulate",
        "/v1/keys/{key}/decapsulate",
        "/v1/keys/{key}/export",
        "/v1/keys/{key}/{action}",
        "/v1/keys/{key}/versions/{version}/{action}",
        "/v1/decrypt",
        "/v1/random",
        "/v1/aliases",
        "/v1/aliases/{alias}",
        "/v1/audit",
        "/v1/audit/archive",
        "/v1/audit/segments",
        "/v1/audit/prune",
        "/v1/whoami",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["CreateKeyRequest"].is_object());
    for schema in ["AuditSegment", "PruneRequest", "PruneResult"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} missing from the OpenAPI document"
        );
    }
    // The forms of key material only the KMIP door asks for (PKCS#1) are no part of the
    // REST API's requests; its exports name their form with the same type.
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["CreateKeyRequest"]["properties"]["material"].is_object()
            && schemas["CreateKeyRequest"]["properties"]["material_encoding"].is_null()
            && schemas["ExportRequest"]["properties"]["key_version"].is_object()
            && schemas["ExportRequest"]["properties"]["encoding"].is_null(),
        "{schemas}"
    );
    assert!(schemas["KeyEncoding"].is_object(), "{schemas}");
    // Methods in the document are the methods the router serves.
    let key = &paths["/v1/keys/{key}"];
    assert!(
        key["get"].is_object() && key["patch"].is_object() && key["post"].is_null(),
        "{key}"
    );
    assert!(
        paths["/v1/aliases/{alias}"]["put"].is_object()
            && paths["/v1/aliases/{alias}"]["delete"].is_object()
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Client generators need each operation named once, and path parameters that are in
    // the path (query parameters documented as path ones make unusable clients).
    let mut ids = std::collections::BTreeMap::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if let Some(id) = op["operationId"].as_str() {
                if let Some(other) = ids.insert(id.to_string(), format!("{method} {path}")) {
                    panic!("operationId {id} is used by {other} and {method} {path}");
                }
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                let in_path = path.contains(&format!("{{{name}}}"));
                assert_eq!(
                    p["in"] == "path",
                    in_path,
                    "{method} {path}: parameter {name} is documented in {}",
                    p["in"]
                );
            }
        }
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_https_only_health_and_unseal_file() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TestServer::start().await;
    // Health needs no credential.
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let r = s
            .client
            .get(format!("{}{path}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap()["status"], status);
    }
    // HTTPS only: a plain HTTP request gets no HTTP answer.
    let port: u16 = s.url.rsplit(':').next().unwrap().parse().unwrap();
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(
        !buf[..n].starts_with(b"HTTP/"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // Dev mode: the unseal key is a 0600 file, the server key too, and the log says so.
    let unseal = s.data_dir.join("unseal.key");
    assert_eq!(std::fs::read(&unseal).unwrap().len(), 32);
    for f in [unseal.clone(), s.data_dir.join("tls/server.key")] {
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            f.display()
        );
    }
    assert!(contains(&LOGS.lock().unwrap(), b"DEV MODE"));
    // Without its unseal key (or with another one) the server refuses to start, and never
    // makes a new root key over the old one.
    s.create(json!({"name": "survivor"})).await;
    let ct = s.encrypt("survivor", b"kept").await.1["ciphertext"].clone();
    s.running.take().unwrap().shutdown().await;
    let saved = std::fs::read(&unseal).unwrap();
    std::fs::remove_file(&unseal).unwrap();
    let e = arca_server::start_with_clock(&config(&s.data_dir), s.clock.clone())
        .await
        .err()
        .expect("refuses without the unseal key");
    assert!(format!("{e:#}").contains("unseal"), "{e:#}");
    assert!(!unseal.exists(), "no new unseal key was made");
    std::fs::write(&unseal, [7u8; 32]).unwrap();
    let e = arca_server::start_with_clock(&config(&s.data_dir), s.clock.clone())
        .await
        .err()
        .expect("refuses a wrong unseal key");
    assert!(format!("{e:#}").contains("does not open"), "{e:#}");
    std::fs::write(&unseal, &saved).unwrap();
    s.restart().await;
    assert_eq!(unb64(&s.decrypt(&ct).await.1["plaintext"]), b"kept");
    s.shutdown().await;
}

/// Issue 17's CSRF finding: a browser holding a client certificate could be made to change
/// state by any page (an empty body was taken as `{}` whatever its type, and no Origin was
/// checked). A change that the certificate alone authenticates must now be JSON and, when
/// the client says where it comes from, come from this server's own origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_by_client_certificate_refuse_cross_site_requests() {
    let k = common::kmip::KmipServer::start().await;
    let mut pem = std::fs::read(&k.client_cert).unwrap();
    pem.extend(std::fs::read(&k.client_key).unwrap());
    let browser = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&k.s.ca_pem()).unwrap()])
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let url = |p: &str| format!("{}{p}", k.s.url);
    let own_origin = k.s.url.clone();
    let send =
        |path: &str, ct: Option<&str>, origin: Option<&str>, site: Option<&str>, body: &str| {
            let mut rb = browser.post(url(path)).body(body.to_string());
            if let Some(c) = ct {
                rb = rb.header("content-type", c);
            }
            if let Some(o) = origin {
                rb = rb.header("origin", o);
            }
            if let Some(s) = site {
                rb = rb.header("sec-fetch-site", s);
            }
            async move {
                let r = rb.send().await.unwrap();
                let st = r.status();
                (st, r.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
    let json = Some("application/json");
    // The certificate works for API clients: JSON, no Origin.
    let (st, v) = send("/v1/keys", json, None, None, r#"{"name":"by-cert"}"#).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // And for the server's own pages.
    let (st, v) = send(
        "/v1/keys",
        json,
        Some(&own_origin),
        Some("same-origin"),
        r#"{"name":"by-page"}"#,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // What a page elsewhere can send without a preflight is refused, body or not.
    for (ct, body) in [
        (Some("application/x-www-form-urlencoded"), "name=forged"),
        (Some("text/plain"), r#"{"name":"forged"}"#),
        (Some("multipart/form-data; boundary=x"), ""),
        (None, ""),
    ] {
        let (st, v) = send("/v1/keys/by-cert/suspend", ct, None, None, body).await;
        assert_error(
            &(st, v.clone()),
            StatusCode::FORBIDDEN,
            "not_permitted",
            None,
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("content-type"),
            "{v}"
        );
    }
    // JSON from another origin (after a preflight the server never grants) is refused too.
    let (st, v) = send(
        "/v1/keys/by-cert/suspend",
        json,
        Some("https://evil.example"),
        None,
        "{}",
    )
    .await;
    assert_error(
        &(st, v.clone()),
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("origin"),
        "{v}"
    );
    let (st, v) = send(
        "/v1/keys/by-cert/suspend",
        json,
        None,
        Some("cross-site"),
        "{}",
    )
    .await;
    assert_error(&(st, v), StatusCode::FORBIDDEN, "not_permitted", None);
    // KMIP over HTTPS takes TTLV, but not as a type a form can send.
    let (st, _) = send("/kmip", Some("text/plain"), None, None, "x").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Nothing changed: the key is still active.
    let (st, v) = k.s.get("/v1/keys/by-cert").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "ACTIVE", "{v}");
    // A bearer credential is not ambient: the guard does not apply (the body rules do).
    let r =
        k.s.client
            .post(url("/v1/keys/by-cert/suspend"))
            .bearer_auth(&k.s.token)
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Each refusal is audited, naming the certificate's principal.
    k.s.service().flush_audit().await;
    let all = arca_service::trail::read_all(k.s.service().store().as_ref())
        .await
        .unwrap();
    let refusals = all
        .iter()
        .filter(|r| {
            r.operation == "HttpRequest"
                && r.outcome == "not_permitted"
                && r.principal == common::kmip::CLIENT
        })
        .count();
    assert_eq!(refusals, 7, "one record per refused request");
    k.s.shutdown().await;
}

/// One raw HTTP/1.1 exchange over TLS, as no well-behaved client would send it: the
/// status of the answer (0 when the server closed without one).
async fn raw_exchange(s: &TestServer, request: &[u8]) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&s.ca_pem()) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let port: u16 = s.url.rsplit(':').next().unwrap().parse().unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(request).await.unwrap();
    tls.flush().await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tls.read_to_end(&mut out),
    )
    .await;
    let text = String::from_utf8_lossy(&out);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Issue 17: refusals made while reading the request (a broken chunked body, a path that
/// is not UTF-8) and an unsupported grant type are recorded, naming the caller whose
/// bearer token came with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_refusals_and_bad_grants_are_audited() {
    let s = TestServer::start().await;
    let auth = format!("Authorization: Bearer {}\r\n", s.token);
    // A chunk size that is no number.
    let bad_chunks = format!(
        "POST /v1/keys HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZ\r\n{{}}\r\n0\r\n\r\n"
    );
    let st = raw_exchange(&s, bad_chunks.as_bytes()).await;
    assert!((400..500).contains(&st) || st == 0, "bad chunking: {st}");
    // A percent-encoded path that does not decode to UTF-8.
    let bad_path = format!(
        "GET /v1/keys/%FF%FE HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    );
    let st = raw_exchange(&s, bad_path.as_bytes()).await;
    assert_eq!(st, 400, "invalid UTF-8 path");
    // A grant type that does not exist.
    let r = s
        .client
        .post(format!("{}/v1/auth/token", s.url))
        .bearer_auth(&s.token)
        .json(&json!({"grant_type": "nonsense"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());

    s.service().flush_audit().await;
    let all = arca_service::trail::read_all(s.service().store().as_ref())
        .await
        .unwrap();
    // Each is recorded by the framing as HttpRequest: method, path (never the query or
    // the body), status, and the caller its bearer token names.
    let framed = |method: &str, path: &str| {
        all.iter().any(|e| {
            e.operation == "HttpRequest"
                && e.principal == "admin"
                && e.outcome == "invalid_input"
                && e.detail.get("method").and_then(|v| v.as_str()) == Some(method)
                && e.detail.get("path").and_then(|v| v.as_str()) == Some(path)
                && e.detail.get("status").and_then(|v| v.as_u64()) == Some(400)
        })
    };
    assert!(framed("POST", "/v1/keys"), "bad chunking not recorded");
    assert!(
        framed("GET", "/v1/keys/%FF%FE"),
        "invalid UTF-8 path not recorded"
    );
    assert!(
        framed("POST", "/v1/auth/token"),
        "unsupported grant type not recorded"
    );
    // Raw bytes beyond ASCII in the request line: HTTP itself refuses to parse it, and
    // the refusal is recorded (nothing of the request could be read, so `anonymous`).
    let mut raw_path = b"GET /v1/keys/\xff\xfe HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    raw_path.extend_from_slice(auth.as_bytes());
    raw_path.extend_from_slice(b"Connection: close\r\n\r\n");
    assert_eq!(raw_exchange(&s, &raw_path).await, 400);
    // The server records it as the connection ends, which the client may see first: wait.
    let mut recorded = false;
    for _ in 0..100 {
        s.service().flush_audit().await;
        let all = arca_service::trail::read_all(s.service().store().as_ref())
            .await
            .unwrap();
        recorded = all.iter().any(|e| {
            e.operation == "HttpRequest"
                && e.door == "rest"
                && e.principal == "anonymous"
                && e.outcome == "invalid_input"
                && e.detail.get("status").and_then(|v| v.as_u64()) == Some(400)
                && e.detail.get("path").is_none()
        });
        if recorded {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(recorded, "an unparsable request line not recorded");
    s.shutdown().await;
}
