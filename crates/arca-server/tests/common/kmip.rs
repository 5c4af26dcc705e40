//! KMIP test harness: a server with the KMIP door open (mutual TLS with a test CA), a
//! client certificate bound to a principal that may manage and use keys, and a minimal
//! TTLV client over a real TLS socket.

use std::path::PathBuf;
use std::sync::Arc;

use arca_kmip::message::ProtocolVersion;
use arca_kmip::{tags, Item, Limits, Value};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair as CertKey, SanType,
};
use reqwest::{Method, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::TestServer;

/// A test certificate authority.
pub struct Pki {
    issuer: Issuer<'static, CertKey>,
    pub ca_pem: String,
    /// The intermediates a client presents after its certificate (empty for a root).
    chain: String,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let key = CertKey::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            issuer: Issuer::new(p, key),
            chain: String::new(),
        }
    }

    /// An issuing CA under this one (one tenant's, say): its clients present it after
    /// their certificate, and the handshake chains it to this CA.
    pub fn intermediate(&self, name: &str) -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        let key = CertKey::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Pki {
            ca_pem: cert.pem(),
            issuer: Issuer::new(p, key),
            chain: format!("{}{}", cert.pem(), self.chain),
        }
    }

    /// A client certificate (PEM) and its key (PEM) for `cn`, with `cn` as a DNS SAN.
    pub fn client(&self, cn: &str) -> (String, String) {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = vec![SanType::DnsName(cn.try_into().unwrap())];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = CertKey::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        (format!("{}{}", cert.pem(), self.chain), key.serialize_pem())
    }
}

/// A server with KMIP on, and the files a KMIP client needs.
pub struct KmipServer {
    pub s: TestServer,
    pub kmip_port: u16,
    pub pki: Pki,
    pub dir: tempfile::TempDir,
    /// PEM files of the bound client: certificate, key, and the server's CA.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub server_ca: PathBuf,
}

/// The name of the principal the client certificate is bound to.
pub const CLIENT: &str = "kmip-client";

impl KmipServer {
    pub async fn start() -> KmipServer {
        Self::start_with(|_| {}).await
    }

    /// A KMIP server whose configuration the test adjusts first.
    pub async fn start_with(
        tweak: impl Fn(&mut arca_server::Config) + Send + Sync + 'static,
    ) -> KmipServer {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new("KMIP test clients CA");
        let ca_path = dir.path().join("clients-ca.pem");
        std::fs::write(&ca_path, &pki.ca_pem).unwrap();
        let s = TestServer::start_with(move |c| {
            c.tls.client_ca = Some(ca_path.clone());
            c.kmip.listen = "127.0.0.1:0".into();
            tweak(c);
        })
        .await;
        let kmip_port = s
            .running
            .as_ref()
            .unwrap()
            .kmip_addr
            .expect("KMIP listener")
            .port();
        setup_tenant(&s, "kmip-client.test").await;
        let (cert, key) = pki.client("kmip-client.test");
        let client_cert = dir.path().join("client.pem");
        let client_key = dir.path().join("client.key");
        let server_ca = dir.path().join("server-ca.pem");
        std::fs::write(&client_cert, cert).unwrap();
        std::fs::write(&client_key, key).unwrap();
        std::fs::write(&server_ca, s.ca_pem()).unwrap();
        KmipServer {
            s,
            kmip_port,
            pki,
            dir,
            client_cert,
            client_key,
            server_ca,
        }
    }

    /// A new tenant set up for KMIP, and a client identity (certificate and key PEM) bound
    /// to its client principal: cases that must not see each other's objects each get one.
    /// Its clients' certificates come from its own issuing CA, which the operator assigns
    /// to it (a CA's certificates authenticate into one tenant only).
    pub async fn new_tenant(&self, name: &str) -> (String, String) {
        self.new_tenant_with(name, false).await
    }

    /// [`KmipServer::new_tenant`], with the tenant's `allow_legacy_algorithms` set as
    /// given (the conformance runner's tenants allow them: the OASIS profiles use them).
    pub async fn new_tenant_with(&self, name: &str, legacy: bool) -> (String, String) {
        let (st, v) = self
            .s
            .operator()
            .post("/v1/tenants", json!({"name": name}))
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let admin = self.s.with_token(v["admin_token"].as_str().unwrap());
        let ca = self.tenant_ca(name).await;
        let san = format!("{}.kmip.test", name.to_ascii_lowercase());
        setup_tenant_with(&admin, &san, legacy).await;
        ca.client(&san)
    }

    /// An issuing CA under the test CA, assigned to `tenant` by the operator.
    pub async fn tenant_ca(&self, tenant: &str) -> Pki {
        let ca = self.pki.intermediate(&format!("{tenant} clients CA"));
        let (st, v) = self
            .s
            .operator()
            .post(
                &format!("/v1/tenants/{tenant}/trust"),
                json!({"ca_pem": ca.ca_pem}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        ca
    }

    /// A TLS connection to the KMIP port with the bound client certificate.
    pub async fn connect(&self) -> KmipClient {
        let cert = std::fs::read(&self.client_cert).unwrap();
        let key = std::fs::read(&self.client_key).unwrap();
        self.connect_as(&cert, &key)
            .await
            .expect("KMIP TLS handshake")
    }

    /// A TLS connection with another client identity.
    pub async fn connect_as(&self, cert_pem: &[u8], key_pem: &[u8]) -> std::io::Result<KmipClient> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(&self.s.ca_pem()) {
            roots.add(c.unwrap()).unwrap();
        }
        let certs: Vec<_> = CertificateDer::pem_slice_iter(cert_pem)
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_slice(key_pem).unwrap();
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", self.kmip_port)).await?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await?;
        Ok(KmipClient { tls })
    }
}

/// Sets the tenant of `admin` up for KMIP: the client principal ([`CLIENT`]) with both
/// roles (KMIP clients create keys and use them), bound to the certificate SAN `san`; a
/// default key policy granting it every use of the tenant's keys; Destroy at once.
pub async fn setup_tenant(admin: &TestServer, san: &str) {
    setup_tenant_with(admin, san, false).await
}

/// [`setup_tenant`], with `allow_legacy_algorithms` as given.
pub async fn setup_tenant_with(admin: &TestServer, san: &str, legacy: bool) {
    let (st, v) = admin
        .req(
            Method::PUT,
            "/v1/tenant/settings",
            Some(json!({"allow_multiple_roles": true, "min_destruction_window_days": 0,
                "allow_legacy_algorithms": legacy,
                "default_key_policy": [{"effect": "allow", "principals": [format!("principal:{CLIENT}")], "actions": ["*"]}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = admin
        .post(
            "/v1/principals",
            json!({"name": CLIENT, "roles": ["tenant-admin", "crypto-user"], "kind": "service"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = admin
        .post(
            &format!("/v1/principals/{CLIENT}/bindings"),
            json!({"kind": "certificate-san", "value": san}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

/// A TTLV client on one connection.
pub struct KmipClient {
    pub tls: TlsStream<TcpStream>,
}

impl KmipClient {
    /// Sends raw bytes and reads one response message (`None` if the server closed).
    pub async fn roundtrip_bytes(&mut self, bytes: &[u8]) -> Option<Item> {
        self.tls.write_all(bytes).await.ok()?;
        self.tls.flush().await.ok()?;
        self.read_message().await
    }

    /// Reads one message, `None` if the connection closed first.
    pub async fn read_message(&mut self) -> Option<Item> {
        let mut head = [0u8; 8];
        self.tls.read_exact(&mut head).await.ok()?;
        let n = arca_kmip::item_size(&head, &Limits::default()).unwrap();
        let mut buf = vec![0u8; n];
        buf[..8].copy_from_slice(&head);
        self.tls.read_exact(&mut buf[8..]).await.ok()?;
        Some(arca_kmip::decode(&buf, &Limits::default()).expect("valid TTLV response"))
    }

    /// Sends a request message and returns the response message.
    pub async fn call(&mut self, msg: &Item) -> Item {
        self.roundtrip_bytes(&arca_kmip::encode(msg))
            .await
            .expect("a response")
    }

    /// Sends one operation in a one-item batch and returns its batch item.
    pub async fn op(
        &mut self,
        version: ProtocolVersion,
        operation: u32,
        payload: Vec<Item>,
    ) -> Item {
        let r = self
            .call(&request(version, vec![(operation, payload)]))
            .await;
        let item = r.children_with(tags::BATCH_ITEM).next().unwrap().clone();
        item
    }
}

/// A request message of one or more operations.
pub fn request(version: ProtocolVersion, ops: Vec<(u32, Vec<Item>)>) -> Item {
    let n = ops.len();
    let mut body = vec![Item::structure(
        tags::REQUEST_HEADER,
        vec![
            version.to_item(),
            Item::int_item(tags::BATCH_COUNT, n as i32),
        ],
    )];
    for (i, (operation, payload)) in ops.into_iter().enumerate() {
        let mut fields = vec![Item::enum_item(tags::OPERATION, operation)];
        if n > 1 {
            fields.push(Item::new(
                tags::UNIQUE_BATCH_ITEM_ID,
                Value::bytes(vec![i as u8]),
            ));
        }
        fields.push(Item::structure(tags::REQUEST_PAYLOAD, payload));
        body.push(Item::structure(tags::BATCH_ITEM, fields));
    }
    Item::structure(tags::REQUEST_MESSAGE, body)
}

/// A batch item's Result Status, Result Reason and Result Message.
pub fn result(batch_item: &Item) -> (u32, Option<u32>, Option<String>) {
    (
        batch_item
            .req(tags::RESULT_STATUS)
            .unwrap()
            .enumeration()
            .unwrap(),
        batch_item
            .child(tags::RESULT_REASON)
            .map(|r| r.enumeration().unwrap()),
        batch_item
            .child(tags::RESULT_MESSAGE)
            .map(|m| m.text().unwrap().to_owned()),
    )
}

/// A batch item's Response Payload, after checking that it succeeded.
pub fn ok_payload(batch_item: &Item) -> Item {
    let (status, reason, message) = result(batch_item);
    assert_eq!(
        status,
        arca_kmip::enums::result_status::SUCCESS,
        "operation failed: reason {reason:?}: {message:?}"
    );
    batch_item
        .child(tags::RESPONSE_PAYLOAD)
        .cloned()
        .unwrap_or_else(|| Item::structure(tags::RESPONSE_PAYLOAD, vec![]))
}

/// A KMIP 1.x Name attribute (Attribute Name "Name", an uninterpreted text string).
pub fn name_v1(n: &str) -> Item {
    Item::structure(
        tags::ATTRIBUTE,
        vec![
            Item::text_item(tags::ATTRIBUTE_NAME, "Name"),
            Item::structure(
                tags::ATTRIBUTE_VALUE,
                vec![
                    Item::text_item(tags::NAME_VALUE, n),
                    Item::enum_item(tags::NAME_TYPE, 1),
                ],
            ),
        ],
    )
}

/// A payload's Unique Identifier.
pub fn uid(payload: &Item) -> String {
    payload
        .req(tags::UNIQUE_IDENTIFIER)
        .unwrap()
        .text()
        .unwrap()
        .to_owned()
}

/// A Certificate object holding one X.509 certificate (DER).
pub fn x509_certificate(der: Vec<u8>) -> Item {
    Item::structure(
        tags::CERTIFICATE,
        vec![
            Item::enum_item(
                tags::CERTIFICATE_TYPE,
                arca_kmip::enums::certificate_type::X_509,
            ),
            Item::new(tags::CERTIFICATE_VALUE, Value::bytes(der)),
        ],
    )
}
