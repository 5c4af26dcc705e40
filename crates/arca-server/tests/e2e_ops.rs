//! End to end through real HTTPS: every operation of the REST API.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symmetric_operations_data_keys_and_reencrypt() {
    let s = TestServer::start().await;
    let k = s
        .create(json!({"name": "app/orders", "description": "orders", "tags": {"team": "pay"}}))
        .await;
    assert_eq!(k["state"], "ACTIVE");
    assert_eq!(k["spec"], "AES_256");
    let id = k["id"].as_str().unwrap().to_string();

    // Encrypt with AAD and an encryption context; decrypt needs both back, exactly.
    let ctx = json!({"tenant": "acme", "purpose": "test"});
    let e = s.ok("/v1/keys/app%2Forders/encrypt", json!({"plaintext": b64(b"hello world"), "aad": b64(b"row-7"), "encryption_context": ctx})).await;
    assert_eq!(e["key_id"], id.as_str());
    let d = s
        .ok(
            &format!("/v1/keys/{id}/decrypt"),
            json!({"ciphertext": e["ciphertext"], "aad": b64(b"row-7"), "encryption_context": ctx}),
        )
        .await;
    assert_eq!(unb64(&d["plaintext"]), b"hello world");
    assert_eq!(d["key_compromised"], false);
    let wrong_ctx = s.post("/v1/decrypt", json!({"ciphertext": e["ciphertext"], "aad": b64(b"row-7"), "encryption_context": {"tenant": "evil", "purpose": "test"}})).await;
    assert_error(
        &wrong_ctx,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        Some("ciphertext"),
    );
    let no_aad = s
        .post(
            "/v1/decrypt",
            json!({"ciphertext": e["ciphertext"], "encryption_context": ctx}),
        )
        .await;
    assert_error(
        &no_aad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        Some("ciphertext"),
    );

    // Data keys, with and without plaintext; the ciphertext decrypts to the plaintext.
    let dk = s
        .ok(
            "/v1/keys/app%2Forders/generate-data-key",
            json!({"key_spec": "AES_128", "encryption_context": {"f": "1"}}),
        )
        .await;
    let dkp = unb64(&dk["plaintext"]);
    assert_eq!(dkp.len(), 16);
    let back = s
        .ok(
            "/v1/decrypt",
            json!({"ciphertext": dk["ciphertext"], "encryption_context": {"f": "1"}}),
        )
        .await;
    assert_eq!(unb64(&back["plaintext"]), dkp);
    let dk2 = s
        .ok(
            "/v1/keys/app%2Forders/generate-data-key-without-plaintext",
            json!({}),
        )
        .await;
    assert!(dk2.get("plaintext").is_none());
    assert_eq!(
        unb64(
            &s.ok("/v1/decrypt", json!({"ciphertext": dk2["ciphertext"]}))
                .await["plaintext"]
        )
        .len(),
        32
    );

    // Data key pairs: the encrypted private key decrypts to a PKCS#8 that matches the public key.
    for spec in ["ECC_NIST_P256", "RSA_2048", "ED25519"] {
        let p = s
            .ok(
                "/v1/keys/app%2Forders/generate-data-key-pair",
                json!({"key_pair_spec": spec}),
            )
            .await;
        let pk = unb64(&p["private_key_plaintext"]);
        let back = s
            .ok(
                "/v1/decrypt",
                json!({"ciphertext": p["private_key_ciphertext"]}),
            )
            .await;
        assert_eq!(unb64(&back["plaintext"]), pk, "{spec}");
        assert!(!unb64(&p["public_key"]).is_empty());
        let p2 = s
            .ok(
                "/v1/keys/app%2Forders/generate-data-key-pair-without-plaintext",
                json!({"key_pair_spec": spec}),
            )
            .await;
        assert!(p2.get("private_key_plaintext").is_none());
    }

    // Re-encrypt to another key without the plaintext leaving the server.
    s.create(json!({"name": "app/archive"})).await;
    let re = s.ok("/v1/keys/app%2Farchive/re-encrypt", json!({"ciphertext": e["ciphertext"], "source_aad": b64(b"row-7"), "source_encryption_context": ctx, "destination_encryption_context": {"x": "y"}})).await;
    assert_eq!(re["source_key_id"], id.as_str());
    assert!(re.get("plaintext").is_none());
    let d2 = s
        .ok(
            "/v1/decrypt",
            json!({"ciphertext": re["ciphertext"], "encryption_context": {"x": "y"}}),
        )
        .await;
    assert_eq!(unb64(&d2["plaintext"]), b"hello world");
    // Decrypt naming the wrong key is refused.
    let wrong_key = s
        .post(
            "/v1/keys/app%2Forders/decrypt",
            json!({"ciphertext": re["ciphertext"], "encryption_context": {"x": "y"}}),
        )
        .await;
    assert_error(
        &wrong_key,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        Some("key_id"),
    );

    // AES-128 and AES-192 keys encrypt too.
    for spec in ["AES_128", "AES_192"] {
        s.create(json!({"name": format!("k-{spec}"), "spec": spec}))
            .await;
        let e = s
            .ok(
                &format!("/v1/keys/k-{spec}/encrypt"),
                json!({"plaintext": b64(b"x")}),
            )
            .await;
        assert_eq!(
            unb64(
                &s.ok("/v1/decrypt", json!({"ciphertext": e["ciphertext"]}))
                    .await["plaintext"]
            ),
            b"x"
        );
    }

    // Random bytes.
    let r = s.ok("/v1/random", json!({"number_of_bytes": 48})).await;
    assert_eq!(unb64(&r["random"]).len(), 48);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asymmetric_sign_verify_oaep_kem_public_key() {
    let s = TestServer::start().await;
    let msg = b"the message";
    let cases = [
        (
            "RSA_2048",
            vec![
                "RSASSA_PSS_SHA_256",
                "RSASSA_PSS_SHA_384",
                "RSASSA_PSS_SHA_512",
                "RSASSA_PKCS1_V1_5_SHA_256",
                "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512",
            ],
        ),
        ("ECC_NIST_P256", vec!["ECDSA_SHA_256"]),
        ("ECC_NIST_P384", vec!["ECDSA_SHA_384"]),
        ("ECC_NIST_P521", vec!["ECDSA_SHA_512"]),
        ("ED25519", vec!["ED25519_SHA_512"]),
        ("ML_DSA_44", vec!["ML_DSA_SHAKE_256"]),
        ("ML_DSA_65", vec!["ML_DSA_SHAKE_256"]),
        ("ML_DSA_87", vec!["ML_DSA_SHAKE_256"]),
    ];
    for (spec, algs) in cases {
        let name = format!("sig-{spec}");
        s.create(json!({"name": name, "spec": spec, "usage": ["SIGN_VERIFY"]}))
            .await;
        for alg in algs {
            let sig = s
                .ok(
                    &format!("/v1/keys/{name}/sign"),
                    json!({"message": b64(msg), "signing_algorithm": alg}),
                )
                .await;
            assert_eq!(sig["signing_algorithm"], alg);
            let v = s.ok(&format!("/v1/keys/{name}/verify"), json!({"message": b64(msg), "signature": sig["signature"], "signing_algorithm": alg})).await;
            assert_eq!(v["valid"], true, "{spec} {alg}");
            let bad = s.ok(&format!("/v1/keys/{name}/verify"), json!({"message": b64(b"other"), "signature": sig["signature"], "signing_algorithm": alg})).await;
            assert_eq!(bad["valid"], false, "{spec} {alg}");
            // Digest mode where the scheme has one.
            let hlen = if alg.ends_with("256") && !alg.starts_with("ML") {
                Some(32)
            } else if alg.ends_with("384") {
                Some(48)
            } else if alg.ends_with("512") && !alg.starts_with("ED") {
                Some(64)
            } else {
                None
            };
            if let Some(h) = hlen {
                let digest = match h {
                    32 => aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, msg),
                    48 => aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, msg),
                    _ => aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, msg),
                };
                let v = s.ok(&format!("/v1/keys/{name}/verify"), json!({"message": b64(digest.as_ref()), "message_type": "DIGEST", "signature": sig["signature"], "signing_algorithm": alg})).await;
                assert_eq!(v["valid"], true, "{spec} {alg} digest");
                let short = s.post(&format!("/v1/keys/{name}/sign"), json!({"message": b64(&digest.as_ref()[1..]), "message_type": "DIGEST", "signing_algorithm": alg})).await;
                assert_error(
                    &short,
                    StatusCode::BAD_REQUEST,
                    "invalid_input",
                    Some("message"),
                );
            } else {
                let d = s.post(&format!("/v1/keys/{name}/sign"), json!({"message": b64(&[0u8; 64]), "message_type": "DIGEST", "signing_algorithm": alg})).await;
                assert_error(
                    &d,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unprocessable",
                    Some("message_type"),
                );
            }
        }
        // Public key in DER and PEM, and it verifies outside Arca too.
        let pk = s.get(&format!("/v1/keys/{name}/public-key")).await;
        assert_eq!(pk.0, StatusCode::OK);
        assert!(pk.1["public_key_pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----"));
        assert!(!unb64(&pk.1["public_key"]).is_empty());
    }
    // ECDSA signature checked with aws-lc-rs directly against the exported SPKI.
    let sig = s
        .ok(
            "/v1/keys/sig-ECC_NIST_P256/sign",
            json!({"message": b64(msg)}),
        )
        .await;
    let spki = unb64(&s.get("/v1/keys/sig-ECC_NIST_P256/public-key").await.1["public_key"]);
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
        &spki,
    )
    .verify(msg, &unb64(&sig["signature"]))
    .expect("signature verifies outside Arca");
    // A wrong algorithm for the spec is refused.
    let wrong = s
        .post(
            "/v1/keys/sig-ECC_NIST_P256/sign",
            json!({"message": b64(msg), "signing_algorithm": "RSASSA_PSS_SHA_256"}),
        )
        .await;
    assert_error(
        &wrong,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        Some("signing_algorithm"),
    );

    // RSA-OAEP encryption with an RSA key created for ENCRYPT_DECRYPT.
    s.create(json!({"name": "rsa-enc", "spec": "RSA_3072", "usage": ["ENCRYPT_DECRYPT"]}))
        .await;
    let e = s
        .ok(
            "/v1/keys/rsa-enc/encrypt",
            json!({"plaintext": b64(b"oaep secret")}),
        )
        .await;
    assert_eq!(e["encryption_algorithm"], "RSAES_OAEP_SHA_256");
    assert_eq!(
        unb64(
            &s.ok("/v1/decrypt", json!({"ciphertext": e["ciphertext"]}))
                .await["plaintext"]
        ),
        b"oaep secret"
    );
    let ctx = s
        .post(
            "/v1/keys/rsa-enc/encrypt",
            json!({"plaintext": b64(b"x"), "encryption_context": {"a": "b"}}),
        )
        .await;
    assert_error(
        &ctx,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        Some("encryption_context"),
    );

    // HMAC.
    for spec in ["HMAC_256", "HMAC_384", "HMAC_512"] {
        let name = format!("mac-{spec}");
        s.create(json!({"name": name, "spec": spec})).await;
        let m = s
            .ok(
                &format!("/v1/keys/{name}/generate-mac"),
                json!({"message": b64(msg)}),
            )
            .await;
        let v = s
            .ok(
                &format!("/v1/keys/{name}/verify-mac"),
                json!({"message": b64(msg), "mac": m["mac"]}),
            )
            .await;
        assert_eq!(v["valid"], true);
        let v = s
            .ok(
                &format!("/v1/keys/{name}/verify-mac"),
                json!({"message": b64(b"x"), "mac": m["mac"]}),
            )
            .await;
        assert_eq!(v["valid"], false);
    }

    // ML-KEM.
    for spec in ["ML_KEM_768", "ML_KEM_1024"] {
        let name = format!("kem-{spec}");
        let k = s.create(json!({"name": name, "spec": spec})).await;
        assert_eq!(k["usage"], json!(["KEY_ENCAPSULATION"]));
        let enc = s
            .ok(&format!("/v1/keys/{name}/encapsulate"), json!({}))
            .await;
        let dec = s
            .ok(
                &format!("/v1/keys/{name}/decapsulate"),
                json!({"ciphertext": enc["ciphertext"]}),
            )
            .await;
        assert_eq!(dec["shared_secret"], enc["shared_secret"]);
        assert_eq!(unb64(&dec["shared_secret"]).len(), 32);
        // Encapsulation with the public key alone, outside Arca, decapsulates inside.
        let spki = unb64(&s.get(&format!("/v1/keys/{name}/public-key")).await.1["public_key"]);
        assert_eq!(spki[0], 0x30);
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_export_aliases_list_update_history() {
    let s = TestServer::start().await;
    // Import raw AES bytes; export gives them back (extractable).
    let material = [0x42u8; 32];
    let k = s
        .create(json!({"name": "imp", "material": b64(&material), "extractable": true}))
        .await;
    assert_eq!(k["origin"], "IMPORTED");
    let ex = s.ok("/v1/keys/imp/export", json!({})).await;
    assert_eq!(ex["format"], "RAW");
    assert_eq!(unb64(&ex["material"]), material);
    // Not extractable: 403.
    s.create(json!({"name": "noexp"})).await;
    assert_error(
        &s.post("/v1/keys/noexp/export", json!({})).await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    // Import a PKCS#8 PEM EC key and an SPKI public-only key.
    let gen = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
    )
    .unwrap();
    let der = gen.to_pkcs8v1().unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        b64(der.as_ref())
    );
    s.create(json!({"name": "imp-ec", "spec": "ECC_NIST_P256", "material": b64(pem.as_bytes()), "extractable": true})).await;
    let sig = s
        .ok("/v1/keys/imp-ec/sign", json!({"message": b64(b"m")}))
        .await;
    let pk = s.get("/v1/keys/imp-ec/public-key").await.1;
    s.create(json!({"name": "pub-only", "spec": "ECC_NIST_P256", "material": pk["public_key"]}))
        .await;
    let v = s
        .ok(
            "/v1/keys/pub-only/verify",
            json!({"message": b64(b"m"), "signature": sig["signature"]}),
        )
        .await;
    assert_eq!(v["valid"], true);
    assert_error(
        &s.post("/v1/keys/pub-only/sign", json!({"message": b64(b"m")}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        Some("key"),
    );
    assert_eq!(
        s.ok("/v1/keys/imp-ec/export", json!({})).await["format"],
        "PKCS8"
    );
    // Wrong-size material.
    assert_error(
        &s.post(
            "/v1/keys",
            json!({"name": "bad", "material": b64(&[1u8; 7])}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("material"),
    );
    // Imported keys rotate by import.
    assert_error(
        &s.post("/v1/keys/imp/rotate", json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
        Some("material"),
    );
    let r = s
        .ok(
            "/v1/keys/imp/rotate",
            json!({"material": b64(&[0x43u8; 32])}),
        )
        .await;
    assert_eq!(r["primary_version"], 2);

    // Aliases: create, use, move, list, delete; names and aliases share one namespace.
    let a = s.create(json!({"name": "alpha"})).await;
    let b = s.create(json!({"name": "beta"})).await;
    let (st, _) = s
        .post(
            "/v1/aliases",
            json!({"alias": "alias/current", "key": "alpha"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let e = s
        .ok("/v1/keys/current/encrypt", json!({"plaintext": b64(b"p")}))
        .await;
    assert_eq!(e["key_id"], a["id"]);
    let e2 = s
        .ok(
            "/v1/keys/alias%2Fcurrent/encrypt",
            json!({"plaintext": b64(b"p")}),
        )
        .await;
    assert_eq!(e2["key_id"], a["id"]);
    assert_error(
        &s.post("/v1/aliases", json!({"alias": "current", "key": "beta"}))
            .await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    assert_error(
        &s.post("/v1/aliases", json!({"alias": "beta", "key": "alpha"}))
            .await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    assert_error(
        &s.post("/v1/keys", json!({"name": "current"})).await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    let (st, mv) = s
        .req(
            reqwest::Method::PUT,
            "/v1/aliases/current",
            Some(json!({"key": "beta"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{mv}");
    assert_eq!(
        s.ok("/v1/keys/current/encrypt", json!({"plaintext": b64(b"p")}))
            .await["key_id"],
        b["id"]
    );
    let list = s.get("/v1/aliases").await.1;
    assert_eq!(list["aliases"][0]["alias"], "current");
    assert_eq!(
        s.get("/v1/keys/beta").await.1["aliases"],
        json!(["current"])
    );
    let (st, _) = s
        .req(reqwest::Method::DELETE, "/v1/aliases/current", None)
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_error(
        &s.get("/v1/keys/current").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );

    // Update and history.
    let u = s.req(reqwest::Method::PATCH, "/v1/keys/alpha", Some(json!({"description": "d2", "tags": {"env": "prod"}, "meta": {"owner": "ops"}, "rotation_period_days": 90}))).await;
    assert_eq!(u.0, StatusCode::OK, "{}", u.1);
    assert_eq!(u.1["description"], "d2");
    assert_eq!(u.1["rotation_period_days"], 90);
    assert!(u.1["next_rotation_at"].is_string());
    let h = s.get("/v1/keys/alpha/history").await.1;
    let actions: Vec<_> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, vec!["create", "update"]);
    assert!(h["events"][0]["actor"]
        .as_str()
        .unwrap()
        .starts_with("admin:"));

    // List: filters and cursor pagination.
    for i in 0..5 {
        s.create(json!({"name": format!("page-{i}"), "tags": {"batch": "p"}, "spec": if i % 2 == 0 { "AES_256" } else { "HMAC_256" }})).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/v1/keys?tag=batch%3Dp&limit=2&cursor={c}"),
            None => "/v1/keys?tag=batch%3Dp&limit=2".to_string(),
        };
        let page = s.get(&q).await.1;
        for k in page["keys"].as_array().unwrap() {
            seen.push(k["name"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..5).map(|i| format!("page-{i}")).collect::<Vec<_>>()
    );
    let hm = s.get("/v1/keys?spec=HMAC_256&name=page").await.1;
    assert_eq!(hm["keys"].as_array().unwrap().len(), 2);
    let st = s.get("/v1/keys?state=ACTIVE&name=page-3").await.1;
    assert_eq!(st["keys"].as_array().unwrap().len(), 1);
    let al = s.get("/v1/keys?alias=nothing").await.1;
    assert_eq!(al["keys"].as_array().unwrap().len(), 0);
    // Versions listing.
    let vs = s.get("/v1/keys/imp/versions").await.1;
    assert_eq!(vs.as_array().unwrap().len(), 2);
    assert_eq!(vs[1]["primary"], true);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_restart_and_automatic_rotation() {
    let mut s = TestServer::start().await;
    s.create(json!({"name": "rot", "rotation_period_days": 1}))
        .await;
    let mut cts = Vec::new();
    for i in 0..3u8 {
        let e = s
            .ok("/v1/keys/rot/encrypt", json!({"plaintext": b64(&[i; 10])}))
            .await;
        assert_eq!(e["key_version"], i as u64 + 1);
        cts.push(e["ciphertext"].clone());
        if i < 2 {
            let r = s.ok("/v1/keys/rot/rotate", json!({})).await;
            assert_eq!(r["primary_version"], i as u64 + 2);
        }
    }
    for (i, ct) in cts.iter().enumerate() {
        assert_eq!(
            unb64(&s.decrypt(ct).await.1["plaintext"]),
            vec![i as u8; 10]
        );
    }
    // Restart: the same data decrypts, keys and versions survive.
    s.restart().await;
    for (i, ct) in cts.iter().enumerate() {
        let (st, d) = s.decrypt(ct).await;
        assert_eq!(st, StatusCode::OK, "{d}");
        assert_eq!(unb64(&d["plaintext"]), vec![i as u8; 10]);
    }
    // Automatic rotation: a day later the lifecycle task makes version 4.
    s.advance(chrono::Duration::hours(25)).await;
    let k = s.get("/v1/keys/rot").await.1;
    assert_eq!(k["primary_version"], 4, "{k}");
    let h = s.get("/v1/keys/rot/history").await.1;
    let last = h["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "rotate");
    assert_eq!(last["actor"], "system");
    assert_eq!(
        s.ok("/v1/keys/rot/encrypt", json!({"plaintext": b64(b"n")}))
            .await["key_version"],
        4
    );
    s.shutdown().await;
}

/// The first export of a key marks it exported (KMIP Fresh); eight first exports at once
/// all succeed, and the key ends up marked once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_exports_all_succeed() {
    let s = TestServer::start().await;
    s.create(json!({"name": "fresh", "extractable": true}))
        .await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let h = s.clone_handle();
        tasks.push(tokio::spawn(async move {
            h.post("/v1/keys/fresh/export", json!({})).await.0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let (_, k) = s.get("/v1/keys/fresh").await;
    assert_eq!(k["exported"], true, "{k}");
    s.shutdown().await;
}

/// The web console is served from the API's listener: HTML and scripts with a strict
/// content security policy, while sealed too (custodians unseal from it), never with a
/// credential; `[console] enabled = false` removes it. `whoami` tells a user interface what
/// the caller's roles cover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_with_a_strict_policy_and_can_be_turned_off() {
    let s = TestServer::start().await;
    let get = |path: &str| {
        s.client
            .get(format!("{}{path}", s.url))
            .header("accept", "text/html,application/xhtml+xml")
            .send()
    };
    let r = get("/ui/").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    let page = r.text().await.unwrap();
    assert!(page.contains("/ui/js/app.js"));
    // No tls.client_ca: the server asks for no certificate, and the page says so, so the
    // console does not offer a certificate sign-in (with client_ca: e2e_credentials).
    assert!(
        page.contains(r#"<body data-client-certificates="false">"#),
        "{page}"
    );
    // The page under its file name says the same.
    let named = get("/ui/index.html").await.unwrap().text().await.unwrap();
    assert_eq!(named, page);
    let js = get("/ui/js/api.js").await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        get("/ui/js/nope.js").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // Only the embedded files: no path leads anywhere else.
    assert_eq!(
        get("/ui/..%2F..%2FCargo.toml").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // `/` leads to the console (reqwest follows the redirect).
    let root = get("/").await.unwrap();
    assert_eq!(root.url().path(), "/ui/");
    // The API still answers JSON only.
    let api = get("/v1/keys").await.unwrap();
    assert_eq!(api.status(), StatusCode::NOT_ACCEPTABLE);

    // What the roles cover, for the console's buttons; the tenant's name.
    let (st, plain) = s.get("/v1/whoami").await;
    assert_eq!(st, StatusCode::OK);
    assert!(plain.get("actions").is_none(), "only on request: {plain}");
    let (st, me) = s.get("/v1/whoami?include=actions").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(me["tenant"], "default");
    let (st, bad) = s.get("/v1/whoami?include=everything").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["field"], "include");
    let actions: Vec<&str> = me["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for a in [
        "CreateKey",
        "RotateKey",
        "Encrypt",
        "ListAudit",
        "ListApprovals",
    ] {
        assert!(actions.contains(&a), "admin lacks {a}: {actions:?}");
    }
    for a in ["Approve", "CreateTenant", "Seal"] {
        assert!(!actions.contains(&a), "admin has {a}");
    }

    // Sealed: the console still loads (its unseal form is how custodians get in).
    s.service().seal_now();
    assert_eq!(get("/ui/").await.unwrap().status(), StatusCode::OK);
    assert_eq!(s.get("/v1/keys").await.0, StatusCode::SERVICE_UNAVAILABLE);

    let off = TestServer::start_with(|c| c.console.enabled = false).await;
    let r = off
        .client
        .get(format!("{}/ui/", off.url))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// A dev-mode server says what it is: `/v1/sys/status` mode `dev`, `/readyz` root `dev` and
/// software crypto (an HSM root says `hsm` and `software, pkcs11`: e2e_hsm).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_readiness_name_the_root_of_trust() {
    let s = TestServer::start().await;
    let get = |path: &'static str| {
        let c = s.client.clone();
        let url = format!("{}{path}", s.url);
        async move {
            c.get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let status = get("/v1/sys/status").await;
    assert_eq!(status["mode"], "dev", "{status}");
    let ready = get("/readyz").await;
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["root"], "dev", "{ready}");
    assert_eq!(ready["crypto"], "software", "{ready}");
    s.shutdown().await;
}

/// A usage limit (KMIP's Usage Limits, here over REST) is a budget of protection: each
/// encryption spends its bytes before it runs, concurrent requests never spend the same
/// bytes twice, past the budget every protecting use is refused (403, audited, naming what
/// is left) while decrypting goes on; an OBJECT limit counts requests (here signatures).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_limits_are_spent_once_and_refuse_past_the_budget() {
    let s = TestServer::start().await;
    let k = s
        .create(json!({"name": "budgeted", "usage_limits": {"unit": "BYTE", "total": 50}}))
        .await;
    assert_eq!(
        k["usage_limits"],
        json!({"unit": "BYTE", "total": 50, "remaining": 50})
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let h = s.clone_handle();
        tasks.push(tokio::spawn(async move {
            h.post(
                "/v1/keys/budgeted/encrypt",
                json!({"plaintext": b64(b"ten bytes!")}),
            )
            .await
        }));
    }
    let mut ciphertexts = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (st, v) = t.await.unwrap();
        match st {
            StatusCode::OK => ciphertexts.push(v["ciphertext"].clone()),
            _ => {
                assert_error(
                    &(st, v.clone()),
                    StatusCode::FORBIDDEN,
                    "not_permitted",
                    None,
                );
                assert!(v.to_string().contains("usage limit"), "{v}");
                refused += 1;
            }
        }
    }
    assert_eq!((ciphertexts.len(), refused), (5, 3));
    let (_, k) = s.get("/v1/keys/budgeted").await;
    assert_eq!(k["usage_limits"]["remaining"], 0, "{k}");
    // What it protected still decrypts.
    for c in &ciphertexts {
        let d = s.ok("/v1/decrypt", json!({"ciphertext": c})).await;
        assert_eq!(unb64(&d["plaintext"]), b"ten bytes!");
    }
    // A data key is protection too.
    let dk = s
        .post(
            "/v1/keys/budgeted/generate-data-key",
            json!({"key_spec": "AES_256"}),
        )
        .await;
    assert_error(&dk, StatusCode::FORBIDDEN, "not_permitted", None);
    let (_, v) = s.get("/v1/audit?operation=Encrypt&limit=100").await;
    let refusals: Vec<_> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] != "ok")
        .collect();
    assert_eq!(refusals.len(), 3, "{v}");
    assert!(
        refusals
            .iter()
            .all(|e| e["detail"]["usage_limits_remaining"] == 0),
        "{v}"
    );

    // OBJECT counts protecting requests, whatever their size.
    s.create(
        json!({"name": "two-signatures", "spec": "ECC_NIST_P256", "usage": ["SIGN", "VERIFY"],
        "usage_limits": {"unit": "OBJECT", "total": 2}}),
    )
    .await;
    let msg = b64(&[7u8; 1000]);
    let sig = s
        .ok("/v1/keys/two-signatures/sign", json!({"message": msg}))
        .await;
    s.ok("/v1/keys/two-signatures/sign", json!({"message": msg}))
        .await;
    let third = s
        .post("/v1/keys/two-signatures/sign", json!({"message": msg}))
        .await;
    assert_error(&third, StatusCode::FORBIDDEN, "not_permitted", None);
    let v = s
        .ok(
            "/v1/keys/two-signatures/verify",
            json!({"message": msg, "signature": sig["signature"]}),
        )
        .await;
    assert_eq!(v["valid"], true, "{v}");

    // A limit of nothing is refused, naming the field, and makes no key.
    let bad = s
        .post(
            "/v1/keys",
            json!({"name": "nothing", "usage_limits": {"unit": "BYTE", "total": 0}}),
        )
        .await;
    assert_error(
        &bad,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("usage_limits.total"),
    );
    let (st, _) = s.get("/v1/keys/nothing").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.shutdown().await;
}
