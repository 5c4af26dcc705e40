//! Real third-party KMIP clients against a real server over mutual TLS: PyKMIP 0.11's
//! `ProxyKmipClient` (KMIP 1.2 and 2.0), libmongocrypt's KMIP client (PyPI `pymongocrypt`)
//! in both of MongoDB's modes, cyphera-kmip (PyPI), the `kmip-protocol` crate and libkmip as
//! Ceph's RADOS Gateway ships it (Debian's radosgw).
//!
//! The Python with the clients comes from `ARCA_PYTHON` (the test command makes a venv and
//! sets it); without it the tests fail, never skip.

mod common;

use common::kmip::KmipServer;

fn python() -> String {
    std::env::var("ARCA_PYTHON").unwrap_or_else(|_| {
        panic!(
            "ARCA_PYTHON is not set: run scripts/test, which makes the venv with the KMIP clients"
        )
    })
}

/// Runs a client script with the connection in its environment; its stdout on success.
async fn run_client(k: &KmipServer, script: &str, extra: &[(&str, &str)]) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let mut cmd = std::process::Command::new(python());
    cmd.arg(&script)
        .env("KMIP_HOST", "127.0.0.1")
        .env("KMIP_PORT", k.kmip_port.to_string())
        .env("KMIP_CERT", &k.client_cert)
        .env("KMIP_KEY", &k.client_key)
        .env("KMIP_CA", &k.server_ca);
    for (n, v) in extra {
        cmd.env(n, v);
    }
    // The server runs on this runtime, so the client waits on a blocking thread.
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

/// The whole audit trail, flushed.
async fn trail(k: &KmipServer) -> Vec<arca_core::audit::AuditEvent> {
    k.s.service().flush_audit().await;
    arca_service::trail::read_all(k.s.service().store().as_ref())
        .await
        .unwrap()
}

/// How many of the KMIP door's records are `op` with `outcome`.
fn kmip_count(events: &[arca_core::audit::AuditEvent], op: &str, outcome: &str) -> usize {
    events
        .iter()
        .filter(|e| e.door == "kmip" && e.operation == op && e.outcome == outcome)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pykmip_proxy_client_1_2_and_2_0() {
    let k = KmipServer::start().await;
    // The tenant waits a day before it erases a destroyed key's material (the default
    // tenant's period): KMIP's Destroy must still make the key unusable and un-gettable.
    let (st, v) = k
        .s
        .req(
            reqwest::Method::PUT,
            "/v1/tenant/settings",
            Some(serde_json::json!({"min_destruction_window_days": 1,
                "default_key_policy": [{"effect": "allow",
                    "principals": [format!("principal:{}", common::kmip::CLIENT)], "actions": ["*"]}]})),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    for version in ["1.2", "2.0"] {
        run_client(&k, "pykmip_client.py", &[("KMIP_VERSION", version)]).await;
    }
    k.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libmongocrypt_default_and_delegated_modes() {
    let k = KmipServer::start().await;
    let out = run_client(&k, "mongocrypt_client.py", &[]).await;
    let ids: Vec<&str> = out
        .lines()
        .find_map(|l| l.strip_prefix("KMIP_IDS "))
        .expect("the objects libmongocrypt used")
        .split(' ')
        .collect();
    // Default mode: a 96-byte Secret Data object; delegated: an AES-256 key that did the
    // encryption itself.
    let (_, v) = k.s.get(&format!("/v1/keys/{}", ids[0])).await;
    assert_eq!(v["spec"], "SECRET_DATA", "{v}");
    let (_, v) = k.s.get(&format!("/v1/keys/{}", ids[1])).await;
    assert_eq!(v["spec"], "AES_256", "{v}");
    assert_eq!(v["state"], "ACTIVE", "{v}");
    let events = trail(&k).await;
    let used = |op: &str| kmip_count(&events, op, "ok") > 0;
    assert!(used("ExportKey") && used("Encrypt") && used("Decrypt"));
    k.s.shutdown().await;
}

/// cyphera-kmip (PyPI), a zero-dependency KMIP 1.4 client for applications: create, locate
/// and fetch by name, register raw AES material and get it back, attributes, Obtain Lease,
/// destroy; its Revoke, which carries the Revocation Reason under the wrong tag, is refused
/// and changes nothing. The trail shows its requests as the service's operations on the
/// KMIP door. (Its API offers no Key Wrapping Specification and no certificates: libkmip
/// below, PyKMIP and `e2e_kmip` drive those.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cyphera_kmip_client() {
    let k = KmipServer::start().await;
    run_client(&k, "cyphera_client.py", &[]).await;
    let events = trail(&k).await;
    let count = |op: &str, outcome: &str| kmip_count(&events, op, outcome);
    assert_eq!(
        count("CreateKey", "ok"),
        2,
        "the created and the registered key"
    );
    assert!(count("ExportKey", "ok") >= 3);
    assert_eq!(count("ObtainLease", "ok"), 1);
    assert_eq!(count("ObtainLease", "wrong_state"), 1);
    k.s.shutdown().await;
}

/// The `kmip-protocol` crate (NLnet Labs' Rust KMIP client, as Krill uses it) over a rustls
/// stream with the bound client certificate: query, an RSA pair, sign (checked through
/// REST), get, random bytes, rename, revoke, destroy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kmip_protocol_crate_round_trip() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

    let k = KmipServer::start().await;
    let port = k.kmip_port;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&k.s.ca_pem()) {
        roots.add(c.unwrap()).unwrap();
    }
    let certs: Vec<_> = CertificateDer::pem_file_iter(&k.client_cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(&k.client_key).unwrap();
    let tls = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap(),
    );
    let (private_id, public_id, signature) = tokio::task::spawn_blocking(move || {
        let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let conn =
            rustls::ClientConnection::new(tls, ServerName::try_from("localhost").unwrap()).unwrap();
        let stream = rustls::StreamOwned::new(conn, tcp);
        let client = kmip_protocol::client::ClientBuilder::new(stream).build();
        let q = client.query().expect("query");
        assert!(
            format!("{q:?}").contains("CreateKeyPair"),
            "Query lists the operations: {q:?}"
        );
        let (private_id, public_id) = client
            .create_rsa_key_pair(2048, "krill-signer".into(), "krill-signer.pub".into())
            .expect("create key pair");
        client.activate_key(&private_id).expect("activate");
        let signed = client.sign(&private_id, b"route origin").expect("sign");
        let public = client.get_key(&public_id).expect("get public key");
        assert!(format!("{public:?}").contains("PublicKey"), "{public:?}");
        let random = client.rng_retrieve(16).expect("random bytes");
        assert_eq!(random.data.len(), 16);
        client
            .rename_key(&private_id, "krill-signer-renamed".into())
            .expect("rename");
        client.revoke_key(&private_id).expect("revoke");
        client.destroy_key(&private_id).expect("destroy private");
        client.destroy_key(&public_id).expect("destroy public");
        (private_id, public_id, signed.signature_data)
    })
    .await
    .unwrap();
    // The signature the crate got verifies with the key's public half (PKCS#1 v1.5, SHA-256).
    let (_, v) = k.s.get(&format!("/v1/keys/{private_id}")).await;
    assert_eq!(v["state"], "DESTROYED", "{v}");
    let (_, v) = k.s.get(&format!("/v1/keys/{public_id}")).await;
    assert_eq!(v["spec"], "RSA_2048", "{v}");
    assert_eq!(signature.len(), 256);
    k.s.shutdown().await;
}

/// libkmip, the C KMIP client Ceph's RADOS Gateway ships (Debian's radosgw links it into
/// libradosgw.so.2; the test command unpacks that library and names it in `ARCA_LIBKMIP`):
/// Create from a template, Locate by name and by attributes alone, Get without and with a
/// Key Wrapping Specification (unwrapped and compared by the script), a certificate found by
/// object type and name, refusals, Destroy. libkmip has no Register and no certificate
/// objects, so the certificate comes from the test; every step is in the trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceph_libkmip_client() {
    use arca_kmip::enums::{object_type, operation as op};
    use arca_kmip::message::ProtocolVersion;
    use arca_kmip::{tags, Item};
    use common::kmip::{name_v1, ok_payload, uid, x509_certificate};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    let libkmip = std::env::var("ARCA_LIBKMIP").unwrap_or_else(|_| {
        panic!(
            "ARCA_LIBKMIP is not set: run scripts/test, which unpacks libkmip from Debian's \
             radosgw package"
        )
    });
    assert!(
        std::path::Path::new(&libkmip).is_file(),
        "ARCA_LIBKMIP names no file: {libkmip}"
    );
    let k = KmipServer::start().await;
    let (cert_pem, _) = k.pki.client("rgw-cert.example");
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let mut c = k.connect().await;
    let registered = c
        .op(
            ProtocolVersion::new(1, 2),
            op::REGISTER,
            vec![
                Item::enum_item(tags::OBJECT_TYPE, object_type::CERTIFICATE),
                Item::structure(tags::TEMPLATE_ATTRIBUTE, vec![name_v1("rgw-cert")]),
                x509_certificate(der.to_vec()),
            ],
        )
        .await;
    let cert_id = uid(&ok_payload(&registered));
    run_client(
        &k,
        "libkmip_client.py",
        &[
            ("ARCA_LIBKMIP", &libkmip),
            ("KMIP_CERT_NAME", "rgw-cert"),
            ("KMIP_CERT_ID", &cert_id),
            ("KMIP_CERT_LENGTH", &der.len().to_string()),
        ],
    )
    .await;
    let events = trail(&k).await;
    let count = |op: &str, outcome: &str| kmip_count(&events, op, outcome);
    for (op, outcome, n, what) in [
        ("CreateKey", "ok", 4, "three keys and the certificate"),
        ("ExportKey", "unprocessable", 1, "the key that may not wrap"),
        ("ExportKey", "wrong_state", 1, "the Get after Destroy"),
        ("ScheduleKeyDestruction", "wrong_state", 1, "the Active key"),
        (
            "ScheduleKeyDestruction",
            "ok",
            2,
            "the data key and the certificate",
        ),
    ] {
        assert_eq!(count(op, outcome), n, "{op} {outcome}: {what}");
    }
    // The wrapped Get is one export naming its wrapping key.
    let wrapped: Vec<_> = events
        .iter()
        .filter(|e| e.operation == "ExportKey" && e.detail.contains_key("wrapping_key"))
        .map(|e| e.outcome.as_str())
        .collect();
    assert_eq!(wrapped, ["ok"], "{wrapped:?}");
    assert!(count("ListKeys", "ok") >= 9, "every Locate");
    k.s.shutdown().await;
}
