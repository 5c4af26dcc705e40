//! The KMIP door end to end: TTLV over a real mutual-TLS socket and over HTTPS, mapped onto
//! the service (policies, lifecycle, audit), and what it does with malformed input.

mod common;

use arca_kmip::enums::{
    cryptographic_algorithm as alg, cryptographic_usage_mask as mask, key_format_type as kft,
    object_type, operation as op, query_function, result_reason as reason, result_status,
    revocation_reason_code, state,
};
use arca_kmip::message::ProtocolVersion;
use arca_kmip::{tags, Item, Value};
use common::kmip::*;
use serde_json::json;

const V14: ProtocolVersion = ProtocolVersion::new(1, 4);
const V21: ProtocolVersion = ProtocolVersion::new(2, 1);

fn attr_v1(name: &str, value: Value) -> Item {
    Item::structure(
        tags::ATTRIBUTE,
        vec![
            Item::text_item(tags::ATTRIBUTE_NAME, name),
            Item::new(tags::ATTRIBUTE_VALUE, value),
        ],
    )
}

fn attribute_v1<'a>(payload: &'a Item, name: &str) -> Option<&'a Item> {
    payload
        .children_with(tags::ATTRIBUTE)
        .find(|a| a.child(tags::ATTRIBUTE_NAME).unwrap().text().unwrap() == name)
        .map(|a| a.child(tags::ATTRIBUTE_VALUE).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symmetric_key_lifecycle_over_kmip_1_4_and_2_1() {
    let k = KmipServer::start().await;
    let mut c = k.connect().await;

    // Discover Versions needs no principal and answers in Arca's order of preference.
    let b = c
        .op(
            V14,
            op::DISCOVER_VERSIONS,
            vec![V14.to_item(), ProtocolVersion::new(1, 2).to_item()],
        )
        .await;
    let p = ok_payload(&b);
    let versions: Vec<_> = p
        .children_with(tags::PROTOCOL_VERSION)
        .map(|v| ProtocolVersion::from_item(v).unwrap())
        .collect();
    assert_eq!(versions, vec![V14, ProtocolVersion::new(1, 2)]);

    // Query: operations and objects.
    let p = ok_payload(
        &c.op(
            V14,
            op::QUERY,
            vec![
                Item::enum_item(tags::QUERY_FUNCTION, query_function::QUERY_OPERATIONS),
                Item::enum_item(tags::QUERY_FUNCTION, query_function::QUERY_OBJECTS),
            ],
        )
        .await,
    );
    let ops: Vec<u32> = p
        .children_with(tags::OPERATION)
        .map(|o| o.enumeration().unwrap())
        .collect();
    assert!(
        ops.contains(&op::CREATE) && ops.contains(&op::GET),
        "{ops:?}"
    );

    // Create (1.4): Pre-Active, with the attributes the client gave.
    let p = ok_payload(
        &c.op(
            V14,
            op::CREATE,
            vec![
                Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
                Item::structure(
                    tags::TEMPLATE_ATTRIBUTE,
                    vec![
                        attr_v1("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
                        attr_v1("Cryptographic Length", Value::Integer(256)),
                        attr_v1(
                            "Cryptographic Usage Mask",
                            Value::Integer((mask::ENCRYPT | mask::DECRYPT) as i32),
                        ),
                        attr_v1("x-owner", Value::TextString("team-a".into())),
                        name_v1("db-master-1"),
                    ],
                ),
            ],
        )
        .await,
    );
    let id = uid(&p);
    let p = ok_payload(
        &c.op(
            V14,
            op::GET_ATTRIBUTES,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &id),
                Item::text_item(tags::ATTRIBUTE_NAME, "State"),
                Item::text_item(tags::ATTRIBUTE_NAME, "Cryptographic Length"),
                Item::text_item(tags::ATTRIBUTE_NAME, "x-owner"),
            ],
        )
        .await,
    );
    assert_eq!(
        attribute_v1(&p, "State").unwrap().enumeration().unwrap(),
        state::PRE_ACTIVE
    );
    assert_eq!(
        attribute_v1(&p, "Cryptographic Length")
            .unwrap()
            .integer()
            .unwrap(),
        256
    );
    assert_eq!(
        attribute_v1(&p, "x-owner").unwrap().text().unwrap(),
        "team-a"
    );
    assert!(attribute_v1(&p, "Cryptographic Algorithm").is_none());

    // The same key is visible through REST, under the name the client gave.
    let (st, v) = k.s.get("/v1/keys/db-master-1").await;
    assert_eq!(st.as_u16(), 200, "{v}");
    assert_eq!(v["id"], json!(id));
    assert_eq!(v["state"], "PRE_ACTIVE");
    assert_eq!(
        v["versions"][0]["digest"].as_str().map(str::len),
        Some(64),
        "{v}"
    );

    // A Pre-Active key cannot be fetched for use... but it can be read: Get is export.
    // Never served yet: fresh.
    let p = ok_payload(
        &c.op(
            V21,
            op::GET_ATTRIBUTES,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &id),
                Item::enum_item(tags::ATTRIBUTE_REFERENCE, tags::FRESH),
            ],
        )
        .await,
    );
    assert!(p
        .req(tags::ATTRIBUTES)
        .unwrap()
        .req(tags::FRESH)
        .unwrap()
        .boolean()
        .unwrap());
    // Activate, then Get (Raw) and Get (Transparent Symmetric Key) return the same bytes.
    ok_payload(
        &c.op(
            V21,
            op::ACTIVATE,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &id)],
        )
        .await,
    );
    let p = get_payload(&mut c, V21, &id).await;
    let block = p
        .req(tags::SYMMETRIC_KEY)
        .unwrap()
        .req(tags::KEY_BLOCK)
        .unwrap();
    assert_eq!(enum_of(block, tags::KEY_FORMAT_TYPE), kft::RAW);
    let raw = block
        .req(tags::KEY_VALUE)
        .unwrap()
        .req(tags::KEY_MATERIAL)
        .unwrap()
        .byte_string()
        .unwrap()
        .to_vec();
    assert_eq!(raw.len(), 32);
    let p = ok_payload(
        &c.op(
            V21,
            op::GET,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &id),
                Item::enum_item(tags::KEY_FORMAT_TYPE, kft::TRANSPARENT_SYMMETRIC_KEY),
            ],
        )
        .await,
    );
    let t = p
        .req(tags::SYMMETRIC_KEY)
        .unwrap()
        .req(tags::KEY_BLOCK)
        .unwrap()
        .req(tags::KEY_VALUE)
        .unwrap()
        .req(tags::KEY_MATERIAL)
        .unwrap()
        .req(tags::KEY)
        .unwrap()
        .byte_string()
        .unwrap()
        .to_vec();
    assert_eq!(t, raw);

    // Served to a client: no longer fresh.
    let fresh = |p: Item| {
        p.req(tags::ATTRIBUTES)
            .unwrap()
            .req(tags::FRESH)
            .unwrap()
            .boolean()
            .unwrap()
    };
    let fresh_of = |id: &str| {
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, id),
            Item::enum_item(tags::ATTRIBUTE_REFERENCE, tags::FRESH),
        ]
    };
    assert!(!fresh(ok_payload(
        &c.op(V21, op::GET_ATTRIBUTES, fresh_of(&id)).await
    )));

    // 2.1 Get Attributes with references; the state is Active now.
    let p = ok_payload(
        &c.op(
            V21,
            op::GET_ATTRIBUTES,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &id),
                Item::enum_item(tags::ATTRIBUTE_REFERENCE, tags::STATE),
            ],
        )
        .await,
    );
    let attrs = p.req(tags::ATTRIBUTES).unwrap();
    assert_eq!(enum_of(attrs, tags::STATE), state::ACTIVE);

    // Locate by name (1.4 and 2.1), and by object type with paging.
    let p = ok_payload(&c.op(V14, op::LOCATE, vec![name_v1("db-master-1")]).await);
    assert_eq!(uid(&p), id);
    let p = ok_payload(
        &c.op(
            V21,
            op::LOCATE,
            vec![
                Item::int_item(tags::MAXIMUM_ITEMS, 10),
                Item::structure(
                    tags::ATTRIBUTES,
                    vec![Item::enum_item(
                        tags::OBJECT_TYPE,
                        object_type::SYMMETRIC_KEY,
                    )],
                ),
            ],
        )
        .await,
    );
    assert_eq!(p.req(tags::LOCATED_ITEMS).unwrap().integer().unwrap(), 1);

    // Register (2.1) a raw AES-128 key; a second object with a taken name is refused.
    let register = |name: &str, material: Vec<u8>| {
        vec![
            Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
            Item::structure(
                tags::ATTRIBUTES,
                vec![
                    Item::structure(
                        tags::NAME,
                        vec![
                            Item::text_item(tags::NAME_VALUE, name),
                            Item::enum_item(tags::NAME_TYPE, 1),
                        ],
                    ),
                    Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, mask::ENCRYPT as i32),
                ],
            ),
            Item::structure(
                tags::SYMMETRIC_KEY,
                vec![Item::structure(
                    tags::KEY_BLOCK,
                    vec![
                        Item::enum_item(tags::KEY_FORMAT_TYPE, kft::RAW),
                        Item::structure(
                            tags::KEY_VALUE,
                            vec![Item::new(tags::KEY_MATERIAL, Value::bytes(material))],
                        ),
                        Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                        Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 128),
                    ],
                )],
            ),
        ]
    };
    let known = vec![0x5Au8; 16];
    let p = ok_payload(
        &c.op(V21, op::REGISTER, register("imported-1", known.clone()))
            .await,
    );
    let imported = uid(&p);
    let b = c
        .op(V21, op::REGISTER, register("imported-1", vec![1u8; 16]))
        .await;
    assert_eq!(
        result(&b).1,
        Some(reason::NON_UNIQUE_NAME_ATTRIBUTE),
        "{:?}",
        result(&b)
    );
    // Wrong material length for the attributes: Invalid Field, nothing made.
    let b = c
        .op(V21, op::REGISTER, register("imported-2", vec![1u8; 15]))
        .await;
    assert_eq!(result(&b).1, Some(reason::INVALID_FIELD));
    let (_, v) = k.s.get("/v1/keys/imported-2").await;
    assert_eq!(v["error"]["code"], "not_found", "{v}");

    // Revoke with Key Compromise: compromised; with Cessation: deactivated.
    ok_payload(
        &c.op(
            V14,
            op::REVOKE,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &id),
                Item::structure(
                    tags::REVOCATION_REASON,
                    vec![Item::enum_item(
                        tags::REVOCATION_REASON_CODE,
                        revocation_reason_code::KEY_COMPROMISE,
                    )],
                ),
            ],
        )
        .await,
    );
    let (_, v) = k.s.get(&format!("/v1/keys/{id}")).await;
    assert_eq!(v["state"], "COMPROMISED");
    ok_payload(
        &c.op(
            V14,
            op::ACTIVATE,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &imported)],
        )
        .await,
    );
    ok_payload(
        &c.op(
            V14,
            op::REVOKE,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &imported),
                Item::structure(
                    tags::REVOCATION_REASON,
                    vec![Item::enum_item(
                        tags::REVOCATION_REASON_CODE,
                        revocation_reason_code::CESSATION_OF_OPERATION,
                    )],
                ),
            ],
        )
        .await,
    );
    let (_, v) = k.s.get(&format!("/v1/keys/{imported}")).await;
    assert_eq!(v["state"], "DEACTIVATED");
    // Activating a deactivated key is the wrong lifecycle state (2.x), which 1.x, without
    // that reason, calls Permission Denied.
    let activate = vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &imported)];
    let b = c.op(V21, op::ACTIVATE, activate.clone()).await;
    assert_eq!(result(&b).1, Some(reason::WRONG_KEY_LIFECYCLE_STATE));
    let b = c.op(V14, op::ACTIVATE, activate).await;
    assert_eq!(result(&b).1, Some(reason::PERMISSION_DENIED));

    // Unknown objects and operations.
    let b = c
        .op(
            V14,
            op::GET,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, "no-such-object")],
        )
        .await;
    assert_eq!(result(&b).1, Some(reason::ITEM_NOT_FOUND));
    let b = c.op(V14, op::CERTIFY, vec![]).await;
    assert_eq!(result(&b).1, Some(reason::OPERATION_NOT_SUPPORTED));

    // A batch with the ID Placeholder: Create then Activate and Get Attributes of it.
    let r = c
        .call(&request(
            V14,
            vec![
                (
                    op::CREATE,
                    vec![
                        Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
                        Item::structure(
                            tags::TEMPLATE_ATTRIBUTE,
                            vec![attr_v1(
                                "Cryptographic Algorithm",
                                Value::Enumeration(alg::AES),
                            )],
                        ),
                    ],
                ),
                (op::ACTIVATE, vec![]),
                (
                    op::GET_ATTRIBUTES,
                    vec![Item::text_item(tags::ATTRIBUTE_NAME, "State")],
                ),
            ],
        ))
        .await;
    let items: Vec<_> = r.children_with(tags::BATCH_ITEM).collect();
    assert_eq!(items.len(), 3);
    let p = ok_payload(items[2]);
    assert_eq!(
        attribute_v1(&p, "State").unwrap().enumeration().unwrap(),
        state::ACTIVE
    );

    // Every one of these went through the service's audit trail, on the kmip door.
    k.s.service().flush_audit().await;
    let (_, v) = k.s.get("/v1/audit?operation=CreateKey&limit=10").await;
    let events = v["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["door"] == "kmip" && e["principal"] == CLIENT),
        "{v}"
    );
    k.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_strangers_and_malformed_messages() {
    let k = KmipServer::start().await;

    // A certificate from another CA fails the handshake.
    let other = Pki::new("Someone else");
    let (cert, key) = other.client("kmip-client.test");
    let r = async {
        let mut c = k.connect_as(cert.as_bytes(), key.as_bytes()).await?;
        Ok::<_, std::io::Error>(
            c.roundtrip_bytes(&arca_kmip::encode(&request(V14, vec![(op::QUERY, vec![])])))
                .await,
        )
    }
    .await;
    assert!(
        matches!(r, Err(_) | Ok(None)),
        "untrusted certificate served"
    );

    // A trusted certificate bound to nobody: Authentication Not Successful, nothing done.
    let (cert, key) = k.pki.client("stranger.test");
    let mut c = k.connect_as(cert.as_bytes(), key.as_bytes()).await.unwrap();
    let b = c
        .op(
            V14,
            op::CREATE,
            vec![Item::enum_item(
                tags::OBJECT_TYPE,
                object_type::SYMMETRIC_KEY,
            )],
        )
        .await;
    assert_eq!(result(&b).1, Some(reason::AUTHENTICATION_NOT_SUCCESSFUL));

    // Random bytes: a KMIP error response, then the connection is closed.
    let mut c = k.connect().await;
    let garbage = [
        0x42u8, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    let r = c
        .roundtrip_bytes(&garbage)
        .await
        .expect("an error response");
    let b = r.children_with(tags::BATCH_ITEM).next().unwrap();
    assert_eq!(result(b).0, result_status::OPERATION_FAILED);
    assert_eq!(result(b).1, Some(reason::INVALID_MESSAGE));
    assert!(c.read_message().await.is_none(), "connection left open");

    // An announced length beyond the limit is refused before it is read.
    let mut c = k.connect().await;
    let huge = [0x42u8, 0x00, 0x78, 0x01, 0x7F, 0xFF, 0xFF, 0xF8];
    let r = c.roundtrip_bytes(&huge).await.expect("an error response");
    let b = r.children_with(tags::BATCH_ITEM).next().unwrap();
    assert_eq!(result(b).1, Some(reason::INVALID_MESSAGE));

    // Deep nesting is refused.
    let mut deep = Item::int_item(tags::BATCH_COUNT, 1);
    for _ in 0..40 {
        deep = Item::structure(tags::REQUEST_PAYLOAD, vec![deep]);
    }
    let mut c = k.connect().await;
    let r = c.roundtrip_bytes(&arca_kmip::encode(&deep)).await.unwrap();
    let b = r.children_with(tags::BATCH_ITEM).next().unwrap();
    assert_eq!(result(b).1, Some(reason::INVALID_MESSAGE));

    // Valid TTLV that is not a request: Invalid Message, and the connection stays usable.
    let mut c = k.connect().await;
    let r = c.call(&Item::int_item(tags::BATCH_COUNT, 1)).await;
    let b = r.children_with(tags::BATCH_ITEM).next().unwrap();
    assert_eq!(result(b).1, Some(reason::INVALID_MESSAGE));
    ok_payload(&c.op(V14, op::DISCOVER_VERSIONS, vec![]).await);

    // An unsupported protocol version.
    let r = c
        .call(&request(
            ProtocolVersion::new(3, 0),
            vec![(op::QUERY, vec![])],
        ))
        .await;
    let b = r.children_with(tags::BATCH_ITEM).next().unwrap();
    assert_eq!(result(b).1, Some(reason::UNSUPPORTED_PROTOCOL_VERSION));

    // A message that stops half way is cut after the read timeout (here: the peer closes);
    // the server is still serving afterwards.
    let mut c = k.connect().await;
    use tokio::io::AsyncWriteExt;
    c.tls
        .write_all(&[0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x01, 0x00])
        .await
        .unwrap();
    drop(c);
    let mut c = k.connect().await;
    ok_payload(&c.op(V14, op::DISCOVER_VERSIONS, vec![]).await);

    // No key was made by any of this, and the refusals are audited.
    let (_, v) = k.s.get("/v1/keys").await;
    assert_eq!(v["keys"].as_array().unwrap().len(), 0, "{v}");
    k.s.service().flush_audit().await;
    let events = arca_service::trail::read_all(k.s.service().store().as_ref())
        .await
        .unwrap();
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.door == "kmip" && e.outcome != "ok")
        .map(|e| (e.operation.clone(), e.outcome.clone()))
        .collect();
    assert!(refused.len() >= 4, "{refused:?}");
    k.s.shutdown().await;
}

/// Idle connections and messages that stop arriving are cut (the limits are 1 s here); the
/// door keeps serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let k = KmipServer::start_with(|c| {
        c.kmip.idle_timeout_secs = 1;
        c.kmip.read_timeout_secs = 1;
    })
    .await;
    let closed = |mut c: KmipClient| async move {
        let mut b = [0u8; 1];
        // Generous bound: the test waits for the server, it does not time it.
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(20), c.tls.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    };
    // Idle after a request: closed.
    let mut c = k.connect().await;
    ok_payload(&c.op(V14, op::DISCOVER_VERSIONS, vec![]).await);
    assert!(closed(c).await, "an idle connection stayed open");
    // Half a message, then nothing: closed before any answer.
    let mut c = k.connect().await;
    c.tls
        .write_all(&[0x42, 0x00, 0x78, 0x01, 0x00, 0x00, 0x01, 0x00, 0x42])
        .await
        .unwrap();
    c.tls.flush().await.unwrap();
    assert!(closed(c).await, "a stalled message kept its connection");
    // The door still serves.
    let mut c = k.connect().await;
    ok_payload(&c.op(V14, op::DISCOVER_VERSIONS, vec![]).await);
    k.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kmip_over_https() {
    let k = KmipServer::start().await;
    let cert = std::fs::read(&k.client_cert).unwrap();
    let key = std::fs::read(&k.client_key).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&k.s.ca_pem()).unwrap()])
        .identity(reqwest::Identity::from_pem(&[cert, key].concat()).unwrap())
        .build()
        .unwrap();
    let msg = request(
        V21,
        vec![(
            op::CREATE,
            vec![
                Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
                Item::structure(
                    tags::ATTRIBUTES,
                    vec![
                        Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                        Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 128),
                    ],
                ),
            ],
        )],
    );
    let r = client
        .post(format!("{}/kmip", k.s.url))
        .header("content-type", "application/octet-stream")
        .body(arca_kmip::encode(&msg).to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = r.bytes().await.unwrap();
    let resp = arca_kmip::decode(&body, &arca_kmip::Limits::default()).unwrap();
    let b = resp.children_with(tags::BATCH_ITEM).next().unwrap();
    let id = uid(&ok_payload(b));
    let (_, v) = k.s.get(&format!("/v1/keys/{id}")).await;
    assert_eq!(v["spec"], "AES_128", "{v}");
    // Without a client certificate: a KMIP authentication failure, not a key.
    let r =
        k.s.client
            .post(format!("{}/kmip", k.s.url))
            .body(arca_kmip::encode(&msg).to_vec())
            .send()
            .await
            .unwrap();
    let body = r.bytes().await.unwrap();
    let resp = arca_kmip::decode(&body, &arca_kmip::Limits::default()).unwrap();
    let b = resp.children_with(tags::BATCH_ITEM).next().unwrap();
    assert_eq!(result(b).1, Some(reason::AUTHENTICATION_NOT_SUCCESSFUL));
    k.s.shutdown().await;
}

/// Create Key Pair, then ReKey Key Pair: a new linked pair replaces the old one and takes
/// its names; the new halves sign and verify; the old ones stay for verification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_pairs_and_their_renewal() {
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let named = |n: &str, mask: u32| {
        Item::structure(
            tags::ATTRIBUTES,
            vec![
                Item::structure(
                    tags::NAME,
                    vec![
                        Item::text_item(tags::NAME_VALUE, n),
                        Item::enum_item(tags::NAME_TYPE, 1),
                    ],
                ),
                Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, mask as i32),
            ],
        )
    };
    let mut private_attrs = named("signer", mask::SIGN);
    private_attrs.tag = tags::PRIVATE_KEY_ATTRIBUTES;
    let mut public_attrs = named("signer.pub", mask::VERIFY);
    public_attrs.tag = tags::PUBLIC_KEY_ATTRIBUTES;
    let p = ok_payload(
        &c.op(
            V21,
            op::CREATE_KEY_PAIR,
            vec![
                Item::structure(
                    tags::COMMON_ATTRIBUTES,
                    vec![
                        Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::ECDSA),
                        Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 256),
                    ],
                ),
                private_attrs,
                public_attrs,
            ],
        )
        .await,
    );
    let text = |p: &Item, t| p.req(t).unwrap().text().unwrap().to_owned();
    let (old_priv, old_pub) = (
        text(&p, tags::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        text(&p, tags::PUBLIC_KEY_UNIQUE_IDENTIFIER),
    );
    for id in [&old_priv, &old_pub] {
        ok_payload(
            &c.op(
                V21,
                op::ACTIVATE,
                vec![Item::text_item(tags::UNIQUE_IDENTIFIER, id)],
            )
            .await,
        );
    }
    let p = ok_payload(
        &c.op(
            V21,
            op::REKEY_KEY_PAIR,
            vec![Item::text_item(
                tags::PRIVATE_KEY_UNIQUE_IDENTIFIER,
                &old_priv,
            )],
        )
        .await,
    );
    let (new_priv, new_pub) = (
        text(&p, tags::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        text(&p, tags::PUBLIC_KEY_UNIQUE_IDENTIFIER),
    );
    assert!(new_priv != old_priv && new_pub != old_pub);
    // The names moved; the links say who replaced whom.
    let located = ok_payload(
        &c.op(
            V21,
            op::LOCATE,
            vec![Item::structure(
                tags::ATTRIBUTES,
                vec![Item::structure(
                    tags::NAME,
                    vec![
                        Item::text_item(tags::NAME_VALUE, "signer"),
                        Item::enum_item(tags::NAME_TYPE, 1),
                    ],
                )],
            )],
        )
        .await,
    );
    assert_eq!(uid(&located), new_priv);
    use arca_kmip::enums::link_type;
    assert!(links(&k, &old_priv)
        .await
        .contains(&(link_type::REPLACEMENT_OBJECT_LINK, new_priv.clone())));
    let l = links(&k, &new_priv).await;
    assert!(
        l.contains(&(link_type::REPLACED_OBJECT_LINK, old_priv.clone())),
        "{l:?}"
    );
    assert!(
        l.contains(&(link_type::PUBLIC_KEY_LINK, new_pub.clone())),
        "{l:?}"
    );
    let l = links(&k, &new_pub).await;
    assert!(
        l.contains(&(link_type::PRIVATE_KEY_LINK, new_priv.clone())),
        "{l:?}"
    );
    // The private key comes out as PKCS#8 when asked, and reads as an EC key.
    let p = ok_payload(
        &c.op(
            V21,
            op::GET,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &new_priv),
                Item::enum_item(tags::KEY_FORMAT_TYPE, kft::PKCS_8),
            ],
        )
        .await,
    );
    let block = p
        .req(tags::PRIVATE_KEY)
        .unwrap()
        .req(tags::KEY_BLOCK)
        .unwrap();
    assert_eq!(enum_of(block, tags::KEY_FORMAT_TYPE), kft::PKCS_8);
    let der = block
        .req(tags::KEY_VALUE)
        .unwrap()
        .req(tags::KEY_MATERIAL)
        .unwrap()
        .byte_string()
        .unwrap()
        .to_vec();
    assert!(aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &der
    )
    .is_ok());

    // The new pair works: the new private key signs, the new public key verifies.
    let p = ok_payload(
        &c.op(
            V21,
            op::SIGN,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &new_priv),
                Item::new(tags::DATA, Value::bytes(b"renewed".to_vec())),
            ],
        )
        .await,
    );
    let sig = p
        .req(tags::SIGNATURE_DATA)
        .unwrap()
        .byte_string()
        .unwrap()
        .to_vec();
    let p = ok_payload(
        &c.op(
            V21,
            op::SIGNATURE_VERIFY,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &new_pub),
                Item::new(tags::DATA, Value::bytes(b"renewed".to_vec())),
                Item::new(tags::SIGNATURE_DATA, Value::bytes(sig)),
            ],
        )
        .await,
    );
    assert_eq!(
        enum_of(&p, tags::VALIDITY_INDICATOR),
        arca_kmip::enums::validity_indicator::VALID
    );
    k.s.shutdown().await;
}

/// An object's Link attributes: (link type, linked id).
async fn links(k: &KmipServer, id: &str) -> Vec<(u32, String)> {
    let mut c = k.connect().await;
    let p = ok_payload(
        &c.op(
            V21,
            op::GET_ATTRIBUTES,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, id),
                Item::enum_item(tags::ATTRIBUTE_REFERENCE, tags::LINK),
            ],
        )
        .await,
    );
    p.req(tags::ATTRIBUTES)
        .unwrap()
        .children_with(tags::LINK)
        .map(|l| {
            (
                enum_of(l, tags::LINK_TYPE),
                l.req(tags::LINKED_OBJECT_IDENTIFIER)
                    .unwrap()
                    .text()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

/// Get with a Key Wrapping Specification: the material comes back under AES Key Wrap with
/// the wrapping key, and unwraps to the plain Get's bytes; a key made non-extractable does
/// not leave, wrapped or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrapped_get() {
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let create = |mask: u32, extractable: bool| {
        vec![
            Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
            Item::structure(
                tags::ATTRIBUTES,
                vec![
                    Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                    Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 256),
                    Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, mask as i32),
                    Item::new(tags::EXTRACTABLE, Value::Boolean(extractable)),
                ],
            ),
        ]
    };
    let mut ids = vec![];
    for (m, x) in [
        (mask::WRAP_KEY | mask::UNWRAP_KEY, true),
        (mask::ENCRYPT | mask::DECRYPT, true),
        (mask::ENCRYPT, false),
    ] {
        let id = uid(&ok_payload(&c.op(V21, op::CREATE, create(m, x)).await));
        ok_payload(
            &c.op(
                V21,
                op::ACTIVATE,
                vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &id)],
            )
            .await,
        );
        ids.push(id);
    }
    let (kek, key, locked) = (&ids[0], &ids[1], &ids[2]);
    let wrapped_get = |id: &str| {
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, id),
            Item::structure(
                tags::KEY_WRAPPING_SPECIFICATION,
                vec![
                    Item::enum_item(
                        tags::WRAPPING_METHOD,
                        arca_kmip::enums::wrapping_method::ENCRYPT,
                    ),
                    Item::structure(
                        tags::ENCRYPTION_KEY_INFORMATION,
                        vec![
                            Item::text_item(tags::UNIQUE_IDENTIFIER, kek),
                            Item::structure(
                                tags::CRYPTOGRAPHIC_PARAMETERS,
                                vec![Item::enum_item(
                                    tags::BLOCK_CIPHER_MODE,
                                    arca_kmip::enums::block_cipher_mode::NIST_KEY_WRAP,
                                )],
                            ),
                        ],
                    ),
                ],
            ),
        ]
    };
    let p = ok_payload(&c.op(V21, op::GET, wrapped_get(key)).await);
    let block = p
        .req(tags::SYMMETRIC_KEY)
        .unwrap()
        .req(tags::KEY_BLOCK)
        .unwrap();
    let wrapped = block
        .req(tags::KEY_VALUE)
        .unwrap()
        .byte_string()
        .unwrap()
        .to_vec();
    assert_eq!(wrapped.len(), 40);
    let wd = block.req(tags::KEY_WRAPPING_DATA).unwrap();
    assert_eq!(
        wd.req(tags::ENCRYPTION_KEY_INFORMATION)
            .unwrap()
            .req(tags::UNIQUE_IDENTIFIER)
            .unwrap()
            .text()
            .unwrap(),
        kek
    );
    let raw = |p: Item| {
        p.req(tags::SYMMETRIC_KEY)
            .unwrap()
            .req(tags::KEY_BLOCK)
            .unwrap()
            .req(tags::KEY_VALUE)
            .unwrap()
            .req(tags::KEY_MATERIAL)
            .unwrap()
            .byte_string()
            .unwrap()
            .to_vec()
    };
    let plain_key = raw(get_payload(&mut c, V21, key).await);
    let kek_bytes = raw(get_payload(&mut c, V21, kek).await);
    use aws_lc_rs::key_wrap::{AesKek, KeyWrap, AES_256};
    let mut out = vec![0u8; 32];
    let unwrapped = AesKek::new(&AES_256, &kek_bytes)
        .unwrap()
        .unwrap(&wrapped, &mut out)
        .unwrap()
        .to_vec();
    assert_eq!(unwrapped, plain_key);
    // AES-GCM with a server-chosen IV and AAD, over KMIP Encrypt and Decrypt; a changed
    // tag is a cryptographic failure.
    let gcm = || {
        Item::structure(
            tags::CRYPTOGRAPHIC_PARAMETERS,
            vec![Item::enum_item(
                tags::BLOCK_CIPHER_MODE,
                arca_kmip::enums::block_cipher_mode::GCM,
            )],
        )
    };
    let aad = || {
        Item::new(
            tags::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
            Value::bytes(b"header".to_vec()),
        )
    };
    let p = ok_payload(
        &c.op(
            V21,
            op::ENCRYPT,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, key),
                gcm(),
                Item::new(tags::DATA, Value::bytes(b"gcm plaintext".to_vec())),
                aad(),
            ],
        )
        .await,
    );
    let bytes = |t| p.req(t).unwrap().byte_string().unwrap().to_vec();
    let (ct, iv, tag) = (
        bytes(tags::DATA),
        bytes(tags::IV_COUNTER_NONCE),
        bytes(tags::AUTHENTICATED_ENCRYPTION_TAG),
    );
    assert_eq!((iv.len(), tag.len()), (12, 16));
    let decrypt = |tag: Vec<u8>| {
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, key),
            gcm(),
            Item::new(tags::DATA, Value::bytes(ct.clone())),
            Item::new(tags::IV_COUNTER_NONCE, Value::bytes(iv.clone())),
            aad(),
            Item::new(tags::AUTHENTICATED_ENCRYPTION_TAG, Value::bytes(tag)),
        ]
    };
    let p = ok_payload(&c.op(V21, op::DECRYPT, decrypt(tag.clone())).await);
    assert_eq!(
        p.req(tags::DATA).unwrap().byte_string().unwrap().to_vec(),
        b"gcm plaintext"
    );
    let mut bad = tag.clone();
    bad[0] ^= 1;
    let b = c.op(V21, op::DECRYPT, decrypt(bad)).await;
    assert_eq!(result(&b).1, Some(reason::CRYPTOGRAPHIC_FAILURE));

    // Not extractable: not even wrapped.
    let b = c.op(V21, op::GET, wrapped_get(locked)).await;
    assert_eq!(
        result(&b).1,
        Some(reason::PERMISSION_DENIED),
        "{:?}",
        result(&b)
    );

    // Bring your own key over KMIP: Register the wrapped key (its Key Wrapping Data names
    // the Arca key that unwraps it); the server unwraps and keeps the same material.
    let register_wrapped = |blob: Vec<u8>| {
        vec![
            Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
            Item::structure(
                tags::ATTRIBUTES,
                vec![
                    Item::int_item(
                        tags::CRYPTOGRAPHIC_USAGE_MASK,
                        (mask::ENCRYPT | mask::DECRYPT) as i32,
                    ),
                    Item::new(tags::EXTRACTABLE, Value::Boolean(true)),
                ],
            ),
            Item::structure(
                tags::SYMMETRIC_KEY,
                vec![Item::structure(
                    tags::KEY_BLOCK,
                    vec![
                        Item::enum_item(tags::KEY_FORMAT_TYPE, kft::RAW),
                        Item::new(tags::KEY_VALUE, Value::bytes(blob)),
                        Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                        Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 256),
                        Item::structure(
                            tags::KEY_WRAPPING_DATA,
                            vec![
                                Item::enum_item(
                                    tags::WRAPPING_METHOD,
                                    arca_kmip::enums::wrapping_method::ENCRYPT,
                                ),
                                Item::structure(
                                    tags::ENCRYPTION_KEY_INFORMATION,
                                    vec![
                                        Item::text_item(tags::UNIQUE_IDENTIFIER, kek),
                                        Item::structure(
                                            tags::CRYPTOGRAPHIC_PARAMETERS,
                                            vec![Item::enum_item(
                                                tags::BLOCK_CIPHER_MODE,
                                                arca_kmip::enums::block_cipher_mode::NIST_KEY_WRAP,
                                            )],
                                        ),
                                    ],
                                ),
                            ],
                        ),
                    ],
                )],
            ),
        ]
    };
    let p = ok_payload(
        &c.op(V21, op::REGISTER, register_wrapped(wrapped.clone()))
            .await,
    );
    let brought = uid(&p);
    let got = raw(get_payload(&mut c, V21, &brought).await);
    assert_eq!(got, plain_key, "the registered key is the wrapped one");
    // A damaged blob does not unwrap: refused, nothing made.
    let mut damaged = wrapped.clone();
    damaged[3] ^= 1;
    let before = k.s.get("/v1/keys?limit=1000").await.1["keys"]
        .as_array()
        .unwrap()
        .len();
    let b = c.op(V21, op::REGISTER, register_wrapped(damaged)).await;
    assert_eq!(
        result(&b).1,
        Some(reason::INVALID_FIELD),
        "{:?}",
        result(&b)
    );
    let after = k.s.get("/v1/keys?limit=1000").await.1["keys"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
    k.s.shutdown().await;
}

/// Issue 17's finding: an encrypt-only principal could decrypt other principals' AES-GCM
/// ciphertexts through KMIP Encrypt, by choosing the GCM IV (a repeated nonce gives the
/// keystream) or by raw ECB/CTR on the same key. Now raw block-cipher use is a property of
/// the key: a key that serves Arca's ciphertexts offers GCM with a server-drawn IV only,
/// and a key made for raw use (KMIP-created, or `raw_cipher_modes` at creation) offers
/// ECB, CBC, CTR and caller IVs (GCM's too, of any length, with tags of 12 to 16 bytes)
/// but never Arca's ciphertexts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_cipher_modes_are_a_key_property() {
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let params = |mode: u32| {
        Item::structure(
            tags::CRYPTOGRAPHIC_PARAMETERS,
            vec![Item::enum_item(tags::BLOCK_CIPHER_MODE, mode)],
        )
    };
    use arca_kmip::enums::block_cipher_mode as bcm;
    let encrypt = |id: &str, mode: u32, iv: Option<Vec<u8>>, data: &[u8]| {
        let mut v = vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, id),
            params(mode),
            Item::new(tags::DATA, Value::bytes(data.to_vec())),
        ];
        if let Some(iv) = iv {
            v.push(Item::new(tags::IV_COUNTER_NONCE, Value::bytes(iv)));
        }
        v
    };

    // A key made over REST serves Arca's own ciphertexts.
    let both = json!([{"effect": "allow", "principals": ["principal:admin", format!("principal:{CLIENT}")], "actions": ["*"]}]);
    let shared = k.s.create(json!({"name": "shared", "policy": both})).await;
    let shared_id = shared["id"].as_str().unwrap().to_string();
    assert_eq!(shared["raw_cipher_modes"], false, "{shared}");
    let (st, ct) = k.s.encrypt("shared", b"someone else's secret").await;
    assert_eq!(st, reqwest::StatusCode::OK, "{ct}");
    let arca_ct = common::unb64(&ct["ciphertext"]);

    // A caller-chosen GCM IV is refused on it (a key made for raw use takes one, below).
    let b = c
        .op(
            V21,
            op::ENCRYPT,
            encrypt(
                &shared_id,
                bcm::GCM,
                Some(arca_ct[22..34].to_vec()),
                &[0; 32],
            ),
        )
        .await;
    let (status, r, msg) = result(&b);
    assert_ne!(status, result_status::SUCCESS);
    assert_eq!(r, Some(reason::INVALID_FIELD), "{msg:?}");
    assert!(msg.as_deref().unwrap().contains("iv"));
    assert!(msg.unwrap().contains("raw_cipher_modes"));
    // ECB, CBC and CTR are not offered on it, in either direction.
    for mode in [bcm::ECB, bcm::CBC, bcm::CTR] {
        let b = c
            .op(V21, op::ENCRYPT, encrypt(&shared_id, mode, None, &[0; 16]))
            .await;
        let (status, _, msg) = result(&b);
        assert_ne!(status, result_status::SUCCESS, "mode {mode}");
        assert!(msg.unwrap().contains("raw_cipher_modes"));
        let mut d = encrypt(&shared_id, mode, Some(vec![0; 16]), &[0; 16]);
        d[0] = Item::text_item(tags::UNIQUE_IDENTIFIER, &shared_id);
        let b = c.op(V21, op::DECRYPT, d).await;
        assert_ne!(result(&b).0, result_status::SUCCESS, "mode {mode}");
    }
    // GCM with the server's IV still works on it.
    let p = ok_payload(
        &c.op(V21, op::ENCRYPT, encrypt(&shared_id, bcm::GCM, None, b"x"))
            .await,
    );
    assert_eq!(
        p.req(tags::IV_COUNTER_NONCE)
            .unwrap()
            .byte_string()
            .unwrap()
            .len(),
        12
    );
    // A raw GCM decrypt may not pose as Arca's format (whose AAD begins with the
    // ciphertext's header): that would skip the policy's encryption-context conditions.
    let b = c
        .op(
            V21,
            op::DECRYPT,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &shared_id),
                params(bcm::GCM),
                Item::new(
                    tags::DATA,
                    Value::bytes(arca_ct[34..arca_ct.len() - 16].to_vec()),
                ),
                Item::new(
                    tags::IV_COUNTER_NONCE,
                    Value::bytes(arca_ct[22..34].to_vec()),
                ),
                Item::new(
                    tags::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
                    Value::bytes(arca_ct[..22].to_vec()),
                ),
                Item::new(
                    tags::AUTHENTICATED_ENCRYPTION_TAG,
                    Value::bytes(arca_ct[arca_ct.len() - 16..].to_vec()),
                ),
            ],
        )
        .await;
    let (status, _, msg) = result(&b);
    assert_ne!(status, result_status::SUCCESS);
    assert!(msg.unwrap().contains("header"));

    // A key made over KMIP is a raw-use key: CBC and ECB with the client's IV work...
    let raw_id = uid(&ok_payload(
        &c.op(
            V21,
            op::CREATE,
            vec![
                Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
                Item::structure(
                    tags::ATTRIBUTES,
                    vec![
                        Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                        Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 256),
                        Item::int_item(
                            tags::CRYPTOGRAPHIC_USAGE_MASK,
                            (mask::ENCRYPT | mask::DECRYPT) as i32,
                        ),
                    ],
                ),
            ],
        )
        .await,
    ));
    ok_payload(
        &c.op(
            V21,
            op::ACTIVATE,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &raw_id)],
        )
        .await,
    );
    for mode in [bcm::CBC, bcm::ECB, bcm::CTR] {
        let iv = (mode != bcm::ECB).then(|| vec![7u8; 16]);
        ok_payload(
            &c.op(V21, op::ENCRYPT, encrypt(&raw_id, mode, iv, &[1; 16]))
                .await,
        );
    }
    // ...and so does GCM with the client's IV, of any length, and a tag of 12 to 16 bytes.
    // The key is the GCM specification's test case 5 key (AES-128, an 8-byte IV), so the
    // answer is checked against that published vector, tag truncated to 12 bytes.
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let tc5_id = uid(&ok_payload(
        &c.op(
            V21,
            op::REGISTER,
            vec![
                Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
                Item::structure(
                    tags::ATTRIBUTES,
                    vec![Item::int_item(
                        tags::CRYPTOGRAPHIC_USAGE_MASK,
                        (mask::ENCRYPT | mask::DECRYPT) as i32,
                    )],
                ),
                Item::structure(
                    tags::SYMMETRIC_KEY,
                    vec![Item::structure(
                        tags::KEY_BLOCK,
                        vec![
                            Item::enum_item(tags::KEY_FORMAT_TYPE, kft::RAW),
                            Item::structure(
                                tags::KEY_VALUE,
                                vec![Item::new(
                                    tags::KEY_MATERIAL,
                                    Value::bytes(hex("feffe9928665731c6d6a8f9467308308")),
                                )],
                            ),
                            Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                            Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 128),
                        ],
                    )],
                ),
            ],
        )
        .await,
    ));
    ok_payload(
        &c.op(
            V21,
            op::ACTIVATE,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &tc5_id)],
        )
        .await,
    );
    let gcm_tag = |tag_len: i32| {
        Item::structure(
            tags::CRYPTOGRAPHIC_PARAMETERS,
            vec![
                Item::enum_item(tags::BLOCK_CIPHER_MODE, bcm::GCM),
                Item::int_item(tags::TAG_LENGTH, tag_len),
            ],
        )
    };
    let (iv8, aad) = (
        hex("cafebabefacedbad"),
        hex("feedfacedeadbeeffeedfacedeadbeefabaddad2"),
    );
    let pt = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
    let gcm_encrypt = |tag_len: i32| {
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, &tc5_id),
            gcm_tag(tag_len),
            Item::new(tags::DATA, Value::bytes(pt.clone())),
            Item::new(tags::IV_COUNTER_NONCE, Value::bytes(iv8.clone())),
            Item::new(
                tags::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
                Value::bytes(aad.clone()),
            ),
        ]
    };
    let p = ok_payload(&c.op(V21, op::ENCRYPT, gcm_encrypt(12)).await);
    let bytes = |t| p.req(t).unwrap().byte_string().unwrap().to_vec();
    let (ct, tag) = (bytes(tags::DATA), bytes(tags::AUTHENTICATED_ENCRYPTION_TAG));
    assert_eq!(ct, hex("61353b4c2806934a777ff51fa22a4755699b2a714fcdc6f83766e5f97b6c742373806900e49f24b22b097544d4896b424989b5e1ebac0f07c23f4598"));
    assert_eq!(tag, hex("3612d2e79e3b0785561be14a"), "the 12-byte tag");
    assert!(p.child(tags::IV_COUNTER_NONCE).is_none(), "the client's IV");
    let decrypt = |tag: Vec<u8>| {
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, &tc5_id),
            gcm_tag(tag.len() as i32),
            Item::new(tags::DATA, Value::bytes(ct.clone())),
            Item::new(tags::IV_COUNTER_NONCE, Value::bytes(iv8.clone())),
            Item::new(
                tags::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
                Value::bytes(aad.clone()),
            ),
            Item::new(tags::AUTHENTICATED_ENCRYPTION_TAG, Value::bytes(tag)),
        ]
    };
    let p = ok_payload(&c.op(V21, op::DECRYPT, decrypt(tag.clone())).await);
    assert_eq!(
        &p.req(tags::DATA).unwrap().byte_string().unwrap()[..],
        &pt[..]
    );
    let mut bad = tag.clone();
    bad[11] ^= 1;
    let b = c.op(V21, op::DECRYPT, decrypt(bad)).await;
    assert_eq!(result(&b).1, Some(reason::CRYPTOGRAPHIC_FAILURE));
    // Tags shorter than 12 bytes are refused, making or checking one.
    let b = c.op(V21, op::ENCRYPT, gcm_encrypt(8)).await;
    let (status, r, msg) = result(&b);
    assert_ne!(status, result_status::SUCCESS);
    assert_eq!(r, Some(reason::GENERAL_FAILURE), "{msg:?}");
    assert!(msg.unwrap().contains("12 to 16"));
    let b = c.op(V21, op::DECRYPT, decrypt(tag[..8].to_vec())).await;
    assert_ne!(result(&b).0, result_status::SUCCESS);
    // The same message encrypted in three requests (Init Indicator, then the Correlation
    // Value, the last with Final Indicator) gives the same ciphertext and tag.
    let part = |data: &[u8], extra: Vec<Item>| {
        let mut v = vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, &tc5_id),
            gcm_tag(12),
            Item::new(tags::DATA, Value::bytes(data.to_vec())),
        ];
        v.extend(extra);
        v
    };
    let p1 = ok_payload(
        &c.op(
            V21,
            op::ENCRYPT,
            part(
                &pt[..20],
                vec![
                    Item::new(tags::IV_COUNTER_NONCE, Value::bytes(iv8.clone())),
                    Item::new(
                        tags::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
                        Value::bytes(aad.clone()),
                    ),
                    Item::new(tags::INIT_INDICATOR, Value::Boolean(true)),
                ],
            ),
        )
        .await,
    );
    let correlation = p1.req(tags::CORRELATION_VALUE).unwrap().clone();
    assert!(p1.child(tags::AUTHENTICATED_ENCRYPTION_TAG).is_none());
    let p2 = ok_payload(
        &c.op(
            V21,
            op::ENCRYPT,
            part(&pt[20..41], vec![correlation.clone()]),
        )
        .await,
    );
    let p3 = ok_payload(
        &c.op(
            V21,
            op::ENCRYPT,
            part(
                &pt[41..],
                vec![
                    p2.req(tags::CORRELATION_VALUE).unwrap().clone(),
                    Item::new(tags::FINAL_INDICATOR, Value::Boolean(true)),
                ],
            ),
        )
        .await,
    );
    let streamed: Vec<u8> = [&p1, &p2, &p3]
        .iter()
        .flat_map(|p| p.req(tags::DATA).unwrap().byte_string().unwrap().to_vec())
        .collect();
    assert_eq!(streamed, ct);
    assert_eq!(
        &p3.req(tags::AUTHENTICATED_ENCRYPTION_TAG)
            .unwrap()
            .byte_string()
            .unwrap()[..],
        &tag[..]
    );
    // The encryption has ended: its correlation value continues nothing.
    let b = c
        .op(V21, op::ENCRYPT, part(b"more", vec![correlation]))
        .await;
    let (status, _, msg) = result(&b);
    assert_ne!(status, result_status::SUCCESS);
    assert!(msg.unwrap().contains("correlation_value"));
    // A multi-request Decrypt is not offered (it would hand out unauthenticated parts).
    let mut d = decrypt(tag.clone());
    d.push(Item::new(tags::INIT_INDICATOR, Value::Boolean(true)));
    let b = c.op(V21, op::DECRYPT, d).await;
    assert_eq!(result(&b).1, Some(reason::OPERATION_NOT_SUPPORTED));
    // Over REST the property is asked for explicitly, and only for AES; such a key serves
    // no Arca ciphertext (REST, and so the AWS door that runs the same code).
    let made =
        k.s.create(json!({"name": "raw-rest", "raw_cipher_modes": true, "policy": both}))
            .await;
    assert_eq!(made["raw_cipher_modes"], true);
    let (st, v) = k.s.encrypt("raw-rest", b"x").await;
    assert_eq!(st, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("raw_cipher_modes"), "{v}");
    let (st, v) =
        k.s.post(
            "/v1/keys",
            json!({"name": "raw-rsa", "spec": "RSA_2048", "raw_cipher_modes": true}),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("raw_cipher_modes"), "{v}");

    // Every refusal is in the audit trail.
    let auditor = k.s.principal("raw-auditor", &["auditor"], &[]).await;
    let (st, v) = auditor
        .get(&format!(
            "/v1/audit?key={shared_id}&operation=Encrypt&limit=100"
        ))
        .await;
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    let refused = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] != "ok" && e["door"] == "kmip")
        .count();
    assert!(refused >= 4, "{v}");
}

/// KMIP Log went around the service: unaudited, and its text written raw into the server
/// log (a client could forge log lines). Now it is authorised, audited with its message,
/// and logged with control characters escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kmip_log_is_audited_and_cannot_forge_log_lines() {
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let forged = "backup done\n2026-12-02T00:00:00Z INFO arca: operator approved everything";
    ok_payload(
        &c.op(
            V21,
            op::LOG,
            vec![Item::text_item(tags::LOG_MESSAGE, forged)],
        )
        .await,
    );
    let b = c
        .op(
            V21,
            op::LOG,
            vec![Item::text_item(tags::LOG_MESSAGE, "x".repeat(5000))],
        )
        .await;
    assert_eq!(result(&b).1, Some(reason::INVALID_FIELD));
    k.s.service().flush_audit().await;
    let all = arca_service::trail::read_all(k.s.service().store().as_ref())
        .await
        .unwrap();
    let logged: Vec<_> = all
        .iter()
        .filter(|r| r.operation == "LogMessage" && r.principal == CLIENT)
        .collect();
    assert_eq!(logged.len(), 2, "both Log requests audited");
    assert!(logged
        .iter()
        .any(|r| r.outcome == "ok" && r.detail["message"] == forged));
    assert!(logged.iter().any(|r| r.outcome == "invalid_input"));
    let logs = String::from_utf8_lossy(&common::LOGS.lock().unwrap()).into_owned();
    assert!(logs.contains("backup done\\n2026"), "escaped in the log");
    assert!(
        !logs
            .lines()
            .any(|l| l.starts_with("2026-12-02T00:00:00Z INFO arca: operator")),
        "no forged line"
    );
}

/// Hash digests what it is sent, and refuses what it does not offer (a streaming request,
/// a hash it does not have, no hash named) with the reason, each request audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_is_keyless_and_audited() {
    use arca_kmip::enums::hashing_algorithm as h;
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let params = |alg| {
        Item::structure(
            tags::CRYPTOGRAPHIC_PARAMETERS,
            vec![Item::enum_item(tags::HASHING_ALGORITHM, alg)],
        )
    };
    let data = || Item::new(tags::DATA, Value::bytes(b"abc".to_vec()));
    let r = c.op(V21, op::HASH, vec![params(h::SHA_256), data()]).await;
    let digest = ok_payload(&r)
        .req(tags::DATA)
        .unwrap()
        .byte_string()
        .unwrap()
        .to_vec();
    // FIPS 180-4's "abc".
    assert_eq!(digest[..4], [0xba, 0x78, 0x16, 0xbf], "SHA-256 of abc");
    let r = c.op(V14, op::HASH, vec![params(h::SHA3_512), data()]).await;
    assert_eq!(
        ok_payload(&r)
            .req(tags::DATA)
            .unwrap()
            .byte_string()
            .unwrap()
            .len(),
        64
    );
    // What is not offered, each with its reason.
    let md5 = c.op(V21, op::HASH, vec![params(h::MD5), data()]).await;
    assert_eq!(result(&md5).1, Some(reason::INVALID_FIELD));
    let none = c.op(V21, op::HASH, vec![data()]).await;
    assert_eq!(result(&none).1, Some(reason::INVALID_FIELD));
    let stream = c
        .op(
            V21,
            op::HASH,
            vec![
                params(h::SHA_256),
                data(),
                Item::new(tags::INIT_INDICATOR, Value::Boolean(true)),
            ],
        )
        .await;
    assert_eq!(result(&stream).1, Some(reason::OPERATION_NOT_SUPPORTED));
    let empty = c
        .op(
            V21,
            op::HASH,
            vec![
                params(h::SHA_256),
                Item::new(tags::DATA, Value::bytes(vec![])),
            ],
        )
        .await;
    assert_eq!(result(&empty).1, Some(reason::INVALID_FIELD));
    k.s.service().flush_audit().await;
    let all = arca_service::trail::read_all(k.s.service().store().as_ref())
        .await
        .unwrap();
    let hashed: Vec<_> = all
        .iter()
        .filter(|r| r.operation == "Hash" && r.principal == CLIENT)
        .collect();
    assert_eq!(
        hashed.iter().filter(|r| r.outcome == "ok").count(),
        2,
        "both digests audited"
    );
    assert!(
        hashed.iter().any(|r| r.outcome == "invalid_input"),
        "the empty Data's refusal audited: {hashed:?}"
    );
}

/// Issue 17: every KMIP request leaves a record, naming the principal of a bound
/// certificate even when the door refused the message before any operation ran: Discover
/// Versions (a request like Query, authorised and recorded by the service), an operation
/// Arca does not support, a protocol version it does not speak, a message that is no
/// request, bytes that are no TTLV (over the KMIP port and over HTTPS), and a batch item
/// the door refused while translating it. An unbound certificate is recorded as
/// `anonymous`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_refusals_are_audited_with_the_bound_principal() {
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    ok_payload(&c.op(V14, op::DISCOVER_VERSIONS, vec![]).await);
    let b = c.op(V14, op::CERTIFY, vec![]).await;
    assert_eq!(result(&b).1, Some(reason::OPERATION_NOT_SUPPORTED));
    let r = c
        .call(&request(
            ProtocolVersion::new(3, 0),
            vec![(op::QUERY, vec![])],
        ))
        .await;
    let b = r.children_with(tags::BATCH_ITEM).next().unwrap();
    assert_eq!(result(b).1, Some(reason::UNSUPPORTED_PROTOCOL_VERSION));
    let r = c.call(&Item::int_item(tags::BATCH_COUNT, 1)).await;
    let b = r.children_with(tags::BATCH_ITEM).next().unwrap();
    assert_eq!(result(b).1, Some(reason::INVALID_MESSAGE));
    // A batch: Query succeeds, then a Get that names no object and has no placeholder
    // fails in the door, before the service.
    let r = c
        .call(&request(V14, vec![(op::QUERY, vec![]), (op::GET, vec![])]))
        .await;
    let items: Vec<_> = r.children_with(tags::BATCH_ITEM).collect();
    ok_payload(items[0]);
    assert_eq!(result(items[1]).0, result_status::OPERATION_FAILED);
    // Bytes that are no TTLV, on a new connection: the certificate is resolved for the
    // record although no operation ran on it.
    let mut c = k.connect().await;
    let garbage = [
        0x42u8, 0x00, 0x78, 0x01, 0x00, 0x00, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    let r = c
        .roundtrip_bytes(&garbage)
        .await
        .expect("an error response");
    let b = r.children_with(tags::BATCH_ITEM).next().unwrap();
    assert_eq!(result(b).1, Some(reason::INVALID_MESSAGE));
    // The same over HTTPS.
    let cert = std::fs::read(&k.client_cert).unwrap();
    let key = std::fs::read(&k.client_key).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&k.s.ca_pem()).unwrap()])
        .identity(reqwest::Identity::from_pem(&[cert, key].concat()).unwrap())
        .build()
        .unwrap();
    let r = client
        .post(format!("{}/kmip", k.s.url))
        .header("content-type", "application/octet-stream")
        .body(garbage.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    // A trusted certificate bound to nobody: the malformed message is `anonymous`.
    let (cert, key) = k.pki.client("stranger.test");
    let mut c = k.connect_as(cert.as_bytes(), key.as_bytes()).await.unwrap();
    let r = c.call(&Item::int_item(tags::BATCH_COUNT, 1)).await;
    let b = r.children_with(tags::BATCH_ITEM).next().unwrap();
    assert_eq!(result(b).1, Some(reason::INVALID_MESSAGE));

    k.s.service().flush_audit().await;
    let events = arca_service::trail::read_all(k.s.service().store().as_ref())
        .await
        .unwrap();
    let kmip: Vec<_> = events.iter().filter(|e| e.door == "kmip").collect();
    let s = |e: &arca_core::audit::AuditEvent, k: &str| {
        e.detail.get(k).and_then(|v| v.as_str()).map(str::to_owned)
    };
    assert!(
        kmip.iter().any(|e| e.operation == "DiscoverVersions"
            && e.outcome == "ok"
            && e.principal == CLIENT),
        "Discover Versions not recorded: {kmip:#?}"
    );
    let refused = |reason: &str, operation: Option<&str>, version: Option<&str>, who: &str| {
        kmip.iter()
            .filter(|e| {
                e.operation == "KmipRequest"
                    && e.outcome != "ok"
                    && e.principal == who
                    && s(e, "result_reason").as_deref() == Some(reason)
                    && s(e, "kmip_operation").as_deref() == operation
                    && (version.is_none() || s(e, "protocol_version").as_deref() == version)
            })
            .count()
    };
    assert_eq!(
        refused(
            "OperationNotSupported",
            Some("Certify"),
            Some("1.4"),
            CLIENT
        ),
        1,
        "{kmip:#?}"
    );
    assert_eq!(
        refused(
            "UnsupportedProtocolVersion",
            Some("Query"),
            Some("3.0"),
            CLIENT
        ),
        1,
        "{kmip:#?}"
    );
    assert_eq!(
        refused("InvalidMessage", Some("Get"), Some("1.4"), CLIENT),
        1,
        "batch item refused in the door: {kmip:#?}"
    );
    // Not a request (once), bytes that are no TTLV (KMIP port, HTTPS).
    assert_eq!(
        refused("InvalidMessage", None, None, CLIENT),
        3,
        "{kmip:#?}"
    );
    assert_eq!(
        refused("InvalidMessage", None, None, "anonymous"),
        1,
        "{kmip:#?}"
    );
    // The batch's Query was recorded once, by the service, as a success.
    assert!(kmip
        .iter()
        .any(|e| e.operation == "QueryServer" && e.outcome == "ok" && e.principal == CLIENT));
    // No record carries a payload.
    assert!(kmip.iter().all(|e| !e.detail.contains_key("payload")));
    k.s.shutdown().await;
}

/// A KMIP Create with AES-256, returning the new object's id.
async fn create_aes(c: &mut KmipClient) -> String {
    uid(&ok_payload(
        &c.op(
            V14,
            op::CREATE,
            vec![
                Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
                Item::structure(
                    tags::TEMPLATE_ATTRIBUTE,
                    vec![
                        attr_v1("Cryptographic Algorithm", Value::Enumeration(alg::AES)),
                        attr_v1("Cryptographic Length", Value::Integer(256)),
                        attr_v1(
                            "Cryptographic Usage Mask",
                            Value::Integer((mask::ENCRYPT | mask::DECRYPT) as i32),
                        ),
                    ],
                ),
            ],
        )
        .await,
    ))
}

/// Issue 17, finding 1: a tenant-admin binds the subject, fingerprint or SAN of another
/// tenant's KMIP client certificate to its own principal. Refused while its tenant has no
/// CA of its own; accepted once it has one, but then only for certificates of that CA: the
/// victim's next Create still lands in the victim's tenant, which the attacker cannot see.
/// And binding a value first squats nothing in another tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_never_capture_another_tenants_client() {
    use rustls::pki_types::pem::PemObject;
    let k = KmipServer::start().await;
    // The victim: the default tenant's client, whose certificate the test CA issued (a CA
    // never assigned to a tenant belongs to the default tenant).
    let victim_pem = std::fs::read(&k.client_cert).unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&victim_pem).unwrap();
    let fp: String = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der.as_ref())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // The attacker: another tenant's admin.
    let (st, v) =
        k.s.operator()
            .post("/v1/tenants", json!({"name": "mallory"}))
            .await;
    assert_eq!(st, reqwest::StatusCode::CREATED, "{v}");
    let mallory = k.s.with_token(v["admin_token"].as_str().unwrap());
    mallory
        .ok(
            "/v1/principals",
            json!({"name": "thief", "roles": ["tenant-admin"]}),
        )
        .await;
    let victim = [
        ("certificate-subject", "CN=kmip-client.test".to_string()),
        ("certificate-fingerprint", fp.clone()),
        ("certificate-san", "kmip-client.test".to_string()),
    ];
    for (kind, value) in &victim {
        common::assert_error(
            &mallory
                .post(
                    "/v1/principals/thief/bindings",
                    json!({"kind": kind, "value": value}),
                )
                .await,
            reqwest::StatusCode::FORBIDDEN,
            "not_permitted",
            None,
        );
    }
    // Nor can it give itself the victim's CA: anchors are the system operator's to assign.
    common::assert_error(
        &mallory
            .post("/v1/tenants/mallory/trust", json!({"ca_pem": k.pki.ca_pem}))
            .await,
        reqwest::StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    // With a CA of its own, the same bindings are accepted: for that CA's certificates.
    let mallory_ca = k.tenant_ca("mallory").await;
    for (kind, value) in &victim {
        let (st, v) = mallory
            .post(
                "/v1/principals/thief/bindings",
                json!({"kind": kind, "value": value}),
            )
            .await;
        assert_eq!(st, reqwest::StatusCode::CREATED, "{v}");
    }
    // A CA belongs to one tenant: the operator cannot give mallory's to the victim too.
    common::assert_error(
        &k.s.operator()
            .post(
                "/v1/tenants/default/trust",
                json!({"ca_pem": mallory_ca.ca_pem}),
            )
            .await,
        reqwest::StatusCode::CONFLICT,
        "conflict",
        None,
    );
    // The victim's client: its Create lands in its own tenant, out of mallory's sight.
    let mut c = k.connect().await;
    let id = create_aes(&mut c).await;
    assert_eq!(
        k.s.get(&format!("/v1/keys/{id}")).await.0,
        reqwest::StatusCode::OK
    );
    assert_eq!(
        mallory.get(&format!("/v1/keys/{id}")).await.0,
        reqwest::StatusCode::NOT_FOUND
    );
    // A certificate of mallory's CA with the victim's very names is mallory's, not the
    // victim's: it resolves in mallory's tenant.
    let (cert, key) = mallory_ca.client("kmip-client.test");
    let mut m = k.connect_as(cert.as_bytes(), key.as_bytes()).await.unwrap();
    let b = m
        .op(
            V14,
            op::CREATE,
            vec![Item::enum_item(
                tags::OBJECT_TYPE,
                object_type::SYMMETRIC_KEY,
            )],
        )
        .await;
    // thief's subject and SAN bindings both match it: one principal, so it authenticates
    // (and fails later for want of attributes or permission, not for its identity).
    assert_ne!(result(&b).1, Some(reason::AUTHENTICATION_NOT_SUCCESSFUL));

    // Squatting: mallory binds a SAN first; the default tenant can still bind it, and a
    // default-tenant certificate with that SAN resolves into the default tenant.
    let (st, v) = mallory
        .post(
            "/v1/principals/thief/bindings",
            json!({"kind": "certificate-san", "value": "later.kmip.test"}),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::CREATED, "{v}");
    let (st, v) =
        k.s.post(
            &format!("/v1/principals/{CLIENT}/bindings"),
            json!({"kind": "certificate-san", "value": "later.kmip.test"}),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::CREATED, "{v}");
    let (cert, key) = k.pki.client("later.kmip.test");
    let mut l = k.connect_as(cert.as_bytes(), key.as_bytes()).await.unwrap();
    let id = create_aes(&mut l).await;
    assert_eq!(
        k.s.get(&format!("/v1/keys/{id}")).await.0,
        reqwest::StatusCode::OK
    );
    k.s.shutdown().await;
}

/// The objects the KMIP matrix works on: shared ones that no row changes, made once by the
/// tenant's KMIP client, and fresh ones per principal for the rows that change an object.
struct KmipFixtures {
    /// An active AES-256 key, a GCM ciphertext of it (data, IV, tag).
    key: String,
    ct: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    /// An active ECDSA P-256 pair and a signature of `m` by it.
    sig_private: String,
    sig_public: String,
    signature: Vec<u8>,
    /// An active HMAC-SHA256 key and its MAC of `m`.
    mac_key: String,
    mac: Vec<u8>,
    /// Pre-active AES keys for Activate/Revoke/Destroy, Archive/Recover, the attribute
    /// edits (with a custom attribute x-matrix) and ReKey; the private key of a pre-active
    /// pair for ReKey Key Pair.
    lifecycle: String,
    archive: String,
    attributes: String,
    rekey: String,
    pair: String,
}

/// One row of the KMIP matrix: the actions the operation performs, in order (it is allowed
/// when each of them is), its request payload, and whether it names one of the tenant's
/// objects (which another tenant must not reach).
struct KmipRow {
    actions: &'static [arca_core::Action],
    payload: Vec<Item>,
    ours: bool,
}

fn aes_template(usage: u32) -> Vec<Item> {
    vec![
        Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
        Item::structure(
            tags::ATTRIBUTES,
            vec![
                Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 256),
                Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, usage as i32),
            ],
        ),
    ]
}

/// Create Key Pair of an ECDSA P-256 pair (sign / verify).
fn ec_pair_template() -> Vec<Item> {
    let usage = |tag, m: u32| {
        Item::structure(
            tag,
            vec![Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, m as i32)],
        )
    };
    vec![
        Item::structure(
            tags::COMMON_ATTRIBUTES,
            vec![
                Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::ECDSA),
                Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 256),
            ],
        ),
        usage(tags::PRIVATE_KEY_ATTRIBUTES, mask::SIGN),
        usage(tags::PUBLIC_KEY_ATTRIBUTES, mask::VERIFY),
    ]
}

fn gcm_parameters() -> Item {
    Item::structure(
        tags::CRYPTOGRAPHIC_PARAMETERS,
        vec![Item::enum_item(
            tags::BLOCK_CIPHER_MODE,
            arca_kmip::enums::block_cipher_mode::GCM,
        )],
    )
}

fn sha256_parameters() -> Item {
    Item::structure(
        tags::CRYPTOGRAPHIC_PARAMETERS,
        vec![Item::enum_item(
            tags::HASHING_ALGORITHM,
            arca_kmip::enums::hashing_algorithm::SHA_256,
        )],
    )
}

/// The row of a KMIP operation, `None` for an operation the matrix does not know. Each
/// operation the server offers must have one (checked against its Query answer), so an
/// operation added to the door fails the matrix until it is placed here.
fn kmip_row(operation: u32, f: &KmipFixtures) -> Option<KmipRow> {
    use arca_core::Action::*;
    let id = |id: &str| Item::text_item(tags::UNIQUE_IDENTIFIER, id);
    let bytes = |tag, b: &[u8]| Item::new(tag, Value::bytes(b.to_vec()));
    // A custom attribute, as KMIP 2.x wraps it in New Attribute / Current Attribute.
    let custom = |wrapper, name: &str, v: &str| {
        vec![
            id(&f.attributes),
            Item::structure(wrapper, vec![attr_v1(name, Value::TextString(v.into()))]),
        ]
    };
    let (actions, payload, ours): (&'static [arca_core::Action], Vec<Item>, bool) = match operation
    {
        op::DISCOVER_VERSIONS => (&[DiscoverVersions], vec![V21.to_item()], false),
        op::QUERY => (
            &[QueryServer],
            vec![Item::enum_item(
                tags::QUERY_FUNCTION,
                query_function::QUERY_OPERATIONS,
            )],
            false,
        ),
        op::CREATE => (&[CreateKey], aes_template(mask::ENCRYPT), false),
        op::REGISTER => (
            &[CreateKey],
            vec![
                Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
                Item::structure(
                    tags::ATTRIBUTES,
                    vec![Item::int_item(
                        tags::CRYPTOGRAPHIC_USAGE_MASK,
                        mask::ENCRYPT as i32,
                    )],
                ),
                Item::structure(
                    tags::SYMMETRIC_KEY,
                    vec![Item::structure(
                        tags::KEY_BLOCK,
                        vec![
                            Item::enum_item(tags::KEY_FORMAT_TYPE, kft::RAW),
                            Item::structure(
                                tags::KEY_VALUE,
                                vec![bytes(tags::KEY_MATERIAL, &[0x5A; 16])],
                            ),
                            Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                            Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 128),
                        ],
                    )],
                ),
            ],
            false,
        ),
        op::GET => (&[DescribeKey, ExportKey], vec![id(&f.key)], true),
        op::GET_ATTRIBUTES => (&[DescribeKey], vec![id(&f.key)], true),
        op::GET_ATTRIBUTE_LIST => (&[DescribeKey], vec![id(&f.key)], true),
        op::LOCATE => (&[ListKeys], vec![], false),
        op::ACTIVATE => (&[ActivateKey], vec![id(&f.lifecycle)], true),
        op::REVOKE => (
            &[DeactivateKey],
            vec![
                id(&f.lifecycle),
                Item::structure(
                    tags::REVOCATION_REASON,
                    vec![Item::enum_item(
                        tags::REVOCATION_REASON_CODE,
                        revocation_reason_code::CESSATION_OF_OPERATION,
                    )],
                ),
            ],
            true,
        ),
        op::DESTROY => (&[ScheduleKeyDestruction], vec![id(&f.lifecycle)], true),
        op::ARCHIVE => (&[ArchiveKey], vec![id(&f.archive)], true),
        op::RECOVER => (&[RecoverKey], vec![id(&f.archive)], true),
        op::CHECK => (
            &[DescribeKey],
            vec![
                id(&f.key),
                Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, mask::ENCRYPT as i32),
            ],
            true,
        ),
        // The object has x-matrix (the owner set it): in the door's order, Add adds
        // another, Modify changes x-matrix, Delete removes it, Set sets it anew.
        op::ADD_ATTRIBUTE => (
            &[DescribeKey, UpdateKey],
            custom(tags::NEW_ATTRIBUTE, "x-added", "a"),
            true,
        ),
        op::MODIFY_ATTRIBUTE => (
            &[DescribeKey, UpdateKey],
            custom(tags::NEW_ATTRIBUTE, "x-matrix", "b"),
            true,
        ),
        op::DELETE_ATTRIBUTE => (
            &[DescribeKey, UpdateKey],
            custom(tags::CURRENT_ATTRIBUTE, "x-matrix", "b"),
            true,
        ),
        op::SET_ATTRIBUTE => (
            &[DescribeKey, UpdateKey],
            custom(tags::NEW_ATTRIBUTE, "x-matrix", "c"),
            true,
        ),
        op::RNG_RETRIEVE => (
            &[GenerateRandom],
            vec![Item::int_item(tags::DATA_LENGTH, 8)],
            false,
        ),
        op::HASH => (
            &[Hash],
            vec![sha256_parameters(), bytes(tags::DATA, b"m")],
            false,
        ),
        op::ENCRYPT => (
            &[Encrypt],
            vec![id(&f.key), gcm_parameters(), bytes(tags::DATA, b"m")],
            true,
        ),
        op::DECRYPT => (
            &[Decrypt],
            vec![
                id(&f.key),
                gcm_parameters(),
                bytes(tags::DATA, &f.ct),
                bytes(tags::IV_COUNTER_NONCE, &f.iv),
                bytes(tags::AUTHENTICATED_ENCRYPTION_TAG, &f.tag),
            ],
            true,
        ),
        op::SIGN => (
            &[Sign],
            vec![id(&f.sig_private), bytes(tags::DATA, b"m")],
            true,
        ),
        op::SIGNATURE_VERIFY => (
            &[Verify],
            vec![
                id(&f.sig_public),
                bytes(tags::DATA, b"m"),
                bytes(tags::SIGNATURE_DATA, &f.signature),
            ],
            true,
        ),
        op::MAC => (
            &[GenerateMac],
            vec![id(&f.mac_key), bytes(tags::DATA, b"m")],
            true,
        ),
        op::MAC_VERIFY => (
            &[VerifyMac],
            vec![
                id(&f.mac_key),
                bytes(tags::DATA, b"m"),
                bytes(tags::MAC_DATA, &f.mac),
            ],
            true,
        ),
        // Both halves are one service call: two CreateKey, nothing else (the public half
        // is read as part of the creation, and a refusal leaves no half behind).
        op::CREATE_KEY_PAIR => (&[CreateKey], ec_pair_template(), false),
        op::REKEY => (
            &[DescribeKey, CreateKey, UpdateKey],
            vec![id(&f.rekey)],
            true,
        ),
        op::REKEY_KEY_PAIR => (
            &[DescribeKey, CreateKey, UpdateKey],
            vec![Item::text_item(
                tags::PRIVATE_KEY_UNIQUE_IDENTIFIER,
                &f.pair,
            )],
            true,
        ),
        op::OBTAIN_LEASE => (&[ObtainLease], vec![id(&f.key)], true),
        op::INTEROP => (
            &[Interop],
            vec![Item::enum_item(
                tags::INTEROP_FUNCTION,
                arca_kmip::enums::interop_function::BEGIN,
            )],
            false,
        ),
        op::LOG => (
            &[LogMessage],
            vec![Item::text_item(tags::LOG_MESSAGE, "matrix")],
            false,
        ),
        _ => return None,
    };
    Some(KmipRow {
        actions,
        payload,
        ours,
    })
}

/// The audit records written since `after` (which moves past them).
async fn records_since(
    s: &common::TestServer,
    after: &mut u64,
) -> Vec<arca_core::audit::AuditEvent> {
    s.service().flush_audit().await;
    let mut out = Vec::new();
    loop {
        let page = s.service().store().read_audit(*after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        *after = last.seq;
        out.extend(page.into_iter().map(|e| e.decode().unwrap().event));
    }
    out
}

/// Issue 17's matrix on the KMIP door: every operation the server offers (as its Query
/// answers) × each role (a certificate bound to a principal that holds it), the usual KMIP
/// client's pair of roles, and a client of another tenant. Each operation's row names the
/// actions it performs; it is allowed when the role table and the key policy allow each
/// of them ([`role_allows`], as the REST door's `e2e_access::the_access_matrix_covers_every_action`),
/// and refused with Permission Denied otherwise; another tenant's client never reaches the
/// tenant's objects. Every request leaves its audit record, checked request by request.
/// An operation the server offers without a row here fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_the_kmip_operations() {
    use arca_core::access::{role_allows, Category, Role};
    let k = KmipServer::start().await;
    let (st, v) = k
        .s
        .req(
            reqwest::Method::PUT,
            "/v1/tenant/settings",
            Some(json!({"allow_multiple_roles": true, "min_destruction_window_days": 0,
                "default_key_policy": [{"effect": "allow",
                    "principals": [format!("principal:{CLIENT}"), "role:crypto-user"], "actions": ["*"]}]})),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    // The role table, then the key policy: key use is granted to crypto-users only.
    let permitted = |roles: &[Role], a: arca_core::Action| {
        role_allows(roles, a)
            && (a.category() != Category::KeyUse || roles.contains(&Role::CryptoUser))
    };

    // The shared objects, made and activated by the tenant's KMIP client.
    let mut owner = k.connect().await;
    async fn made(c: &mut KmipClient, operation: u32, payload: Vec<Item>) -> Item {
        ok_payload(&c.op(V21, operation, payload).await)
    }
    async fn activated(c: &mut KmipClient, id: &str) {
        made(
            c,
            op::ACTIVATE,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, id)],
        )
        .await;
    }
    let text = |p: &Item, t| p.req(t).unwrap().text().unwrap().to_owned();
    let bytes = |p: &Item, t| p.req(t).unwrap().byte_string().unwrap().to_vec();
    let key = uid(&made(
        &mut owner,
        op::CREATE,
        aes_template(mask::ENCRYPT | mask::DECRYPT),
    )
    .await);
    activated(&mut owner, &key).await;
    let p = made(
        &mut owner,
        op::ENCRYPT,
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, &key),
            gcm_parameters(),
            Item::new(tags::DATA, Value::bytes(b"m".to_vec())),
        ],
    )
    .await;
    let (ct, iv, tag) = (
        bytes(&p, tags::DATA),
        bytes(&p, tags::IV_COUNTER_NONCE),
        bytes(&p, tags::AUTHENTICATED_ENCRYPTION_TAG),
    );
    let p = made(&mut owner, op::CREATE_KEY_PAIR, ec_pair_template()).await;
    let (sig_private, sig_public) = (
        text(&p, tags::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        text(&p, tags::PUBLIC_KEY_UNIQUE_IDENTIFIER),
    );
    activated(&mut owner, &sig_private).await;
    activated(&mut owner, &sig_public).await;
    let signature = bytes(
        &made(
            &mut owner,
            op::SIGN,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &sig_private),
                Item::new(tags::DATA, Value::bytes(b"m".to_vec())),
            ],
        )
        .await,
        tags::SIGNATURE_DATA,
    );
    let mac_key = uid(&made(
        &mut owner,
        op::CREATE,
        vec![
            Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
            Item::structure(
                tags::ATTRIBUTES,
                vec![
                    Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::HMAC_SHA256),
                    Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 256),
                    Item::int_item(
                        tags::CRYPTOGRAPHIC_USAGE_MASK,
                        (mask::MAC_GENERATE | mask::MAC_VERIFY) as i32,
                    ),
                ],
            ),
        ],
    )
    .await);
    activated(&mut owner, &mac_key).await;
    let mac = bytes(
        &made(
            &mut owner,
            op::MAC,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &mac_key),
                Item::new(tags::DATA, Value::bytes(b"m".to_vec())),
            ],
        )
        .await,
        tags::MAC_DATA,
    );

    // What the server says it performs: the matrix has a row for each, and for no other.
    let offered: Vec<u32> = made(
        &mut owner,
        op::QUERY,
        vec![Item::enum_item(
            tags::QUERY_FUNCTION,
            query_function::QUERY_OPERATIONS,
        )],
    )
    .await
    .children_with(tags::OPERATION)
    .map(|o| o.enumeration().unwrap())
    .collect();
    assert!(offered.len() >= 30, "{offered:?}");

    // One principal per tenant role, each with a certificate of its own; the usual KMIP
    // client's two roles; and a client of another tenant holding those in its own tenant.
    let mut who: Vec<(String, Vec<Role>, KmipClient, bool)> = Vec::new();
    for roles in [
        &["tenant-admin"][..],
        &["crypto-user"],
        &["auditor"],
        &["approver"],
        &["tenant-admin", "crypto-user"],
    ] {
        let name = format!("kx-{}", roles.join("-"));
        k.s.ok("/v1/principals", json!({"name": name, "roles": roles}))
            .await;
        let san = format!("{name}.kmip.test");
        k.s.ok(
            &format!("/v1/principals/{name}/bindings"),
            json!({"kind": "certificate-san", "value": san}),
        )
        .await;
        let (cert, pk) = k.pki.client(&san);
        let c = k.connect_as(cert.as_bytes(), pk.as_bytes()).await.unwrap();
        let roles = roles
            .iter()
            .map(|r| Role::parse("role", r).unwrap())
            .collect();
        who.push((name, roles, c, false));
    }
    let (cert, pk) = k.new_tenant("kxforeign").await;
    let c = k.connect_as(cert.as_bytes(), pk.as_bytes()).await.unwrap();
    who.push((
        CLIENT.to_string(),
        vec![Role::TenantAdmin, Role::CryptoUser],
        c,
        true,
    ));

    let mut after = 0;
    records_since(&k.s, &mut after).await;
    let mut requests = 0;
    let (mut allowed_seen, mut refused_seen) = (0, 0);
    for (name, roles, c, foreign) in who.iter_mut() {
        // Fresh objects for the rows that change one, made by the owner.
        let mut aes = Vec::new();
        for _ in 0..4 {
            aes.push(uid(&made(
                &mut owner,
                op::CREATE,
                aes_template(mask::ENCRYPT),
            )
            .await));
        }
        let pair = text(
            &made(&mut owner, op::CREATE_KEY_PAIR, ec_pair_template()).await,
            tags::PRIVATE_KEY_UNIQUE_IDENTIFIER,
        );
        let f = KmipFixtures {
            key: key.clone(),
            ct: ct.clone(),
            iv: iv.clone(),
            tag: tag.clone(),
            sig_private: sig_private.clone(),
            sig_public: sig_public.clone(),
            signature: signature.clone(),
            mac_key: mac_key.clone(),
            mac: mac.clone(),
            lifecycle: aes[0].clone(),
            archive: aes[1].clone(),
            attributes: aes[2].clone(),
            rekey: aes[3].clone(),
            pair,
        };
        made(
            &mut owner,
            op::ADD_ATTRIBUTE,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &f.attributes),
                Item::structure(
                    tags::NEW_ATTRIBUTE,
                    vec![attr_v1("x-matrix", Value::TextString("a".into()))],
                ),
            ],
        )
        .await;
        // Every operation KMIP defines: a row exactly for those the server offers.
        for (value, op_name) in arca_kmip::enums::operation::ALL {
            assert_eq!(
                kmip_row(*value, &f).is_some(),
                offered.contains(value),
                "{op_name}: the server offers it but the matrix has no row (or the reverse)"
            );
        }
        records_since(&k.s, &mut after).await;
        for operation in &offered {
            let op_name =
                arca_kmip::enum_name(arca_kmip::enums::operation::ALL, *operation).unwrap_or("?");
            let row = kmip_row(*operation, &f).unwrap();
            let b = c.op(V21, *operation, row.payload).await;
            requests += 1;
            let (status, r, msg) = result(&b);
            let denied = r == Some(reason::PERMISSION_DENIED);
            let what = format!("{name} {op_name}: {status} {r:?} {msg:?}");
            // This request's records: at least one, from the KMIP door, naming the caller.
            let records: Vec<_> = records_since(&k.s, &mut after)
                .await
                .into_iter()
                .filter(|e| e.door == "kmip" && e.principal == *name)
                .collect();
            assert!(!records.is_empty(), "no audit record of {what}");
            let refusal_recorded = || {
                records.iter().any(|e| {
                    e.outcome != "ok" && row.actions.iter().any(|a| a.name() == e.operation)
                })
            };
            if *foreign {
                if row.ours {
                    assert!(
                        denied
                            || r == Some(reason::OBJECT_NOT_FOUND)
                            || r == Some(reason::ITEM_NOT_FOUND),
                        "another tenant's object: {what}"
                    );
                    assert!(refusal_recorded(), "{what}: {records:?}");
                } else {
                    // Its own tenant's: it works there, and finds nothing of ours.
                    assert_eq!(status, result_status::SUCCESS, "{what}");
                    if *operation == op::LOCATE {
                        for found in ok_payload(&b).children_with(tags::UNIQUE_IDENTIFIER) {
                            let id = found.text().unwrap();
                            assert_eq!(
                                k.s.get(&format!("/v1/keys/{id}")).await.0,
                                reqwest::StatusCode::NOT_FOUND,
                                "{name} located {id} of another tenant"
                            );
                        }
                    }
                }
                continue;
            }
            if row.actions.iter().all(|a| permitted(roles, *a)) {
                allowed_seen += 1;
                assert_eq!(status, result_status::SUCCESS, "allowed, yet {what}");
                for a in row.actions {
                    assert!(
                        records
                            .iter()
                            .any(|e| e.operation == a.name() && e.outcome == "ok"),
                        "{what}: no record of {a}: {records:?}"
                    );
                }
            } else {
                refused_seen += 1;
                assert!(denied, "expected Permission Denied: {what}");
                let first = row.actions.iter().find(|a| !permitted(roles, **a)).unwrap();
                assert!(
                    records
                        .iter()
                        .any(|e| e.operation == first.name() && e.outcome == "not_permitted"),
                    "{what}: no refusal record of {first}: {records:?}"
                );
            }
        }
    }
    assert_eq!(requests, 6 * offered.len());
    assert!(allowed_seen > 0 && refused_seen > 0);
    k.s.shutdown().await;
}

/// The Cryptographic Usage Mask is the key's usages, which the service checks on every
/// door: a key REST made encrypt-only reports Encrypt alone over KMIP and refuses KMIP
/// Decrypt (Incompatible Cryptographic Usage Mask); a pair KMIP made with a Sign-only
/// private key cannot verify or decrypt over REST, and its Verify-only public key cannot
/// sign over KMIP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_usage_mask_holds_on_every_door() {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let k = KmipServer::start().await;
    let s = &k.s;
    let mut c = k.connect().await;
    let id_item = |id: &str| Item::text_item(tags::UNIQUE_IDENTIFIER, id);
    let (st, v) = s
        .req(
            reqwest::Method::PUT,
            "/v1/tenant/settings",
            Some(json!({"default_key_policy": [{"effect": "allow",
                "principals": [format!("principal:{CLIENT}"), "role:tenant-admin"], "actions": ["*"]}]})),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");

    // REST: an encrypt-only AES key.
    let eo = s
        .create(json!({"name": "encrypt-only", "usage": ["ENCRYPT"]}))
        .await;
    assert_eq!(eo["usage"], json!(["ENCRYPT"]));
    let eo = eo["id"].as_str().unwrap().to_string();
    let ct = s
        .ok(
            &format!("/v1/keys/{eo}/encrypt"),
            json!({"plaintext": b64(b"p")}),
        )
        .await;
    let (st, v) = s
        .post(
            &format!("/v1/keys/{eo}/decrypt"),
            json!({"ciphertext": ct["ciphertext"]}),
        )
        .await;
    assert_eq!(
        (st.as_u16(), v["error"]["field"].as_str()),
        (422, Some("usage")),
        "{v}"
    );
    let p = ok_payload(
        &c.op(
            V21,
            op::GET_ATTRIBUTES,
            vec![
                id_item(&eo),
                Item::enum_item(tags::ATTRIBUTE_REFERENCE, tags::CRYPTOGRAPHIC_USAGE_MASK),
            ],
        )
        .await,
    );
    let m = p
        .req(tags::ATTRIBUTES)
        .unwrap()
        .req(tags::CRYPTOGRAPHIC_USAGE_MASK)
        .unwrap()
        .integer()
        .unwrap() as u32;
    assert_eq!(m, mask::ENCRYPT, "the mask KMIP reports is the key's usage");
    let enc = ok_payload(
        &c.op(
            V21,
            op::ENCRYPT,
            vec![
                id_item(&eo),
                Item::new(tags::DATA, Value::bytes(b"kmip".to_vec())),
            ],
        )
        .await,
    );
    let bytes = |t| enc.req(t).unwrap().byte_string().unwrap().to_vec();
    let d = c
        .op(
            V21,
            op::DECRYPT,
            vec![
                id_item(&eo),
                Item::new(tags::DATA, Value::bytes(bytes(tags::DATA))),
                Item::new(
                    tags::IV_COUNTER_NONCE,
                    Value::bytes(bytes(tags::IV_COUNTER_NONCE)),
                ),
                Item::new(
                    tags::AUTHENTICATED_ENCRYPTION_TAG,
                    Value::bytes(bytes(tags::AUTHENTICATED_ENCRYPTION_TAG)),
                ),
            ],
        )
        .await;
    assert_eq!(
        result(&d).1,
        Some(reason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK),
        "{:?}",
        result(&d)
    );

    // KMIP: an RSA pair whose private key only signs and public key only verifies.
    let attrs = |tag, mask: u32| {
        Item::structure(
            tag,
            vec![Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, mask as i32)],
        )
    };
    let p = ok_payload(
        &c.op(
            V21,
            op::CREATE_KEY_PAIR,
            vec![
                Item::structure(
                    tags::COMMON_ATTRIBUTES,
                    vec![
                        Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::RSA),
                        Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 2048),
                    ],
                ),
                attrs(tags::PRIVATE_KEY_ATTRIBUTES, mask::SIGN),
                attrs(tags::PUBLIC_KEY_ATTRIBUTES, mask::VERIFY),
            ],
        )
        .await,
    );
    let text = |t| p.req(t).unwrap().text().unwrap().to_owned();
    let (private, public) = (
        text(tags::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        text(tags::PUBLIC_KEY_UNIQUE_IDENTIFIER),
    );
    for id in [&private, &public] {
        ok_payload(&c.op(V21, op::ACTIVATE, vec![id_item(id)]).await);
    }
    let (_, info) = s.get(&format!("/v1/keys/{private}")).await;
    assert_eq!(info["usage"], json!(["SIGN"]), "{info}");
    let sig = s
        .ok(
            &format!("/v1/keys/{private}/sign"),
            json!({"message": b64(b"m")}),
        )
        .await;
    for (path, body) in [
        (
            "verify",
            json!({"message": b64(b"m"), "signature": sig["signature"]}),
        ),
        ("encrypt", json!({"plaintext": b64(b"m")})),
    ] {
        let (st, v) = s.post(&format!("/v1/keys/{private}/{path}"), body).await;
        assert_eq!(
            (st.as_u16(), v["error"]["field"].as_str()),
            (422, Some("usage")),
            "{path}: {v}"
        );
    }
    let r = c
        .op(
            V21,
            op::SIGN,
            vec![
                id_item(&public),
                Item::new(tags::DATA, Value::bytes(b"m".to_vec())),
            ],
        )
        .await;
    assert_eq!(
        result(&r).1,
        Some(reason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK),
        "{:?}",
        result(&r)
    );
    // Each refusal is on the record as the operation it refused, once.
    let svc = s.service();
    svc.flush_audit().await;
    let refused = svc
        .store()
        .search_audit(&arca_store::AuditQuery {
            operation: Some("Decrypt".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let refused: Vec<serde_json::Value> = refused
        .iter()
        .map(|e| serde_json::to_value(e.decode().unwrap()).unwrap())
        .filter(|e: &serde_json::Value| e["outcome"] != "ok")
        .collect();
    assert_eq!(
        refused
            .iter()
            .map(|e| e["door"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["rest", "kmip"],
        "each refused decrypt audited once: {refused:?}"
    );
    k.s.shutdown().await;
}

/// A key pair is made whole or not at all: a Create Key Pair whose public half the service
/// refuses (a public key cannot sign) leaves no private key behind, and is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_pair_leaves_no_half_behind() {
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let count = || async {
        let (st, v) = k.s.get("/v1/keys?limit=1000").await;
        assert_eq!(st, reqwest::StatusCode::OK, "{v}");
        v["keys"].as_array().unwrap().len()
    };
    let before = count().await;
    let attrs = |tag, m: u32| {
        Item::structure(
            tag,
            vec![Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, m as i32)],
        )
    };
    let pair = |public_mask: u32| {
        vec![
            Item::structure(
                tags::COMMON_ATTRIBUTES,
                vec![
                    Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::ECDSA),
                    Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 256),
                ],
            ),
            attrs(tags::PRIVATE_KEY_ATTRIBUTES, mask::SIGN),
            attrs(tags::PUBLIC_KEY_ATTRIBUTES, public_mask),
        ]
    };
    let r = c.op(V21, op::CREATE_KEY_PAIR, pair(mask::SIGN)).await;
    let (status, reason, message) = result(&r);
    assert_eq!(status, result_status::OPERATION_FAILED, "{message:?}");
    assert!(reason.is_some(), "{message:?}");
    assert_eq!(
        count().await,
        before,
        "no half of the refused pair was kept"
    );
    // The same pair with a verifying public half is made, both halves.
    ok_payload(&c.op(V21, op::CREATE_KEY_PAIR, pair(mask::VERIFY)).await);
    assert_eq!(count().await, before + 2);
    let svc = k.s.service();
    svc.flush_audit().await;
    let creates: Vec<serde_json::Value> = svc
        .store()
        .search_audit(&arca_store::AuditQuery {
            operation: Some("CreateKey".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::to_value(e.decode().unwrap()).unwrap())
        .collect();
    assert_eq!(
        creates.iter().filter(|e| e["outcome"] != "ok").count(),
        1,
        "the refusal is on the record once: {creates:?}"
    );
    k.s.shutdown().await;
}

/// PKCS#1, KMIP's usual form for RSA keys, in and out. The service converts it to and from
/// the PKCS#8 and SPKI it keeps (the door parses no key material), and the refusals keep
/// their Result Reasons and messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_keys_in_pkcs1_in_and_out() {
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let pair = |a: u32, len: i32| {
        let usage = |tag, m: u32| {
            Item::structure(
                tag,
                vec![Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, m as i32)],
            )
        };
        vec![
            Item::structure(
                tags::COMMON_ATTRIBUTES,
                vec![
                    Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, a),
                    Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, len),
                ],
            ),
            usage(tags::PRIVATE_KEY_ATTRIBUTES, mask::SIGN),
            usage(tags::PUBLIC_KEY_ATTRIBUTES, mask::VERIFY),
        ]
    };
    let ids = |p: &Item| {
        let text = |t| p.req(t).unwrap().text().unwrap().to_owned();
        (
            text(tags::PRIVATE_KEY_UNIQUE_IDENTIFIER),
            text(tags::PUBLIC_KEY_UNIQUE_IDENTIFIER),
        )
    };
    let get = |id: &str, format: u32| {
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, id),
            Item::enum_item(tags::KEY_FORMAT_TYPE, format),
        ]
    };
    // The material of a Get's answer, checking the object and the format it came in.
    let material = |b: &Item, object: u32, format: u32| {
        let block = ok_payload(b)
            .req(object)
            .unwrap()
            .req(tags::KEY_BLOCK)
            .unwrap()
            .clone();
        assert_eq!(enum_of(&block, tags::KEY_FORMAT_TYPE), format);
        block
            .req(tags::KEY_VALUE)
            .unwrap()
            .req(tags::KEY_MATERIAL)
            .unwrap()
            .byte_string()
            .unwrap()
            .to_vec()
    };
    let register = |ot: u32, object: u32, der: Vec<u8>| {
        vec![
            Item::enum_item(tags::OBJECT_TYPE, ot),
            Item::structure(
                tags::ATTRIBUTES,
                vec![
                    Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::RSA),
                    Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 2048),
                    Item::int_item(
                        tags::CRYPTOGRAPHIC_USAGE_MASK,
                        if ot == object_type::PUBLIC_KEY {
                            mask::VERIFY
                        } else {
                            mask::SIGN
                        } as i32,
                    ),
                ],
            ),
            Item::structure(
                object,
                vec![Item::structure(
                    tags::KEY_BLOCK,
                    vec![
                        Item::enum_item(tags::KEY_FORMAT_TYPE, kft::PKCS_1),
                        Item::structure(
                            tags::KEY_VALUE,
                            vec![Item::new(tags::KEY_MATERIAL, Value::bytes(der))],
                        ),
                    ],
                )],
            ),
        ]
    };

    let (private, public) = ids(&ok_payload(
        &c.op(V21, op::CREATE_KEY_PAIR, pair(alg::RSA, 2048)).await,
    ));
    let pkcs1 = material(
        &c.op(V21, op::GET, get(&private, kft::PKCS_1)).await,
        tags::PRIVATE_KEY,
        kft::PKCS_1,
    );
    let pkcs8 = material(
        &c.op(V21, op::GET, get(&private, kft::PKCS_8)).await,
        tags::PRIVATE_KEY,
        kft::PKCS_8,
    );
    assert!(aws_lc_rs::signature::RsaKeyPair::from_der(&pkcs1).is_ok());
    assert_eq!(
        arca_crypto::der::rsa_pkcs8_to_pkcs1(&pkcs8)
            .unwrap()
            .as_slice(),
        pkcs1.as_slice()
    );
    let public_pkcs1 = material(
        &c.op(V21, op::GET, get(&public, kft::PKCS_1)).await,
        tags::PUBLIC_KEY,
        kft::PKCS_1,
    );
    let spki = material(
        &c.op(V21, op::GET, get(&public, kft::X_509)).await,
        tags::PUBLIC_KEY,
        kft::X_509,
    );
    assert_eq!(
        arca_crypto::der::rsa_spki_to_pkcs1(&spki).unwrap(),
        public_pkcs1
    );

    // Registered back in PKCS#1, they are the same keys.
    let again = uid(&ok_payload(
        &c.op(
            V21,
            op::REGISTER,
            register(object_type::PRIVATE_KEY, tags::PRIVATE_KEY, pkcs1),
        )
        .await,
    ));
    assert_eq!(
        material(
            &c.op(V21, op::GET, get(&again, kft::PKCS_8)).await,
            tags::PRIVATE_KEY,
            kft::PKCS_8
        ),
        pkcs8
    );
    let again = uid(&ok_payload(
        &c.op(
            V21,
            op::REGISTER,
            register(object_type::PUBLIC_KEY, tags::PUBLIC_KEY, public_pkcs1),
        )
        .await,
    ));
    assert_eq!(
        material(
            &c.op(V21, op::GET, get(&again, kft::X_509)).await,
            tags::PUBLIC_KEY,
            kft::X_509
        ),
        spki
    );

    // What is not PKCS#1 is refused, naming what it should have been.
    for (ot, object, what) in [
        (object_type::PRIVATE_KEY, tags::PRIVATE_KEY, "RSAPrivateKey"),
        (object_type::PUBLIC_KEY, tags::PUBLIC_KEY, "RSAPublicKey"),
    ] {
        let b = c
            .op(V21, op::REGISTER, register(ot, object, b"not DER".to_vec()))
            .await;
        assert_eq!(
            result(&b),
            (
                result_status::OPERATION_FAILED,
                Some(reason::INVALID_FIELD),
                Some(format!("KeyMaterial is not a PKCS#1 {what}"))
            )
        );
    }
    // PKCS#1 is for RSA keys.
    let (private, public) = ids(&ok_payload(
        &c.op(V21, op::CREATE_KEY_PAIR, pair(alg::ECDSA, 256)).await,
    ));
    for id in [&private, &public] {
        let b = c.op(V21, op::GET, get(id, kft::PKCS_1)).await;
        assert_eq!(
            result(&b),
            (
                result_status::OPERATION_FAILED,
                Some(reason::KEY_FORMAT_TYPE_NOT_SUPPORTED),
                Some(format!("PKCS#1 is for RSA keys; key {id} is ECC_NIST_P256"))
            )
        );
    }
    k.s.shutdown().await;
}

/// Obtain Lease and the attributes a Revoke leaves (KMIP 1.4 §4.21, §3.31-§3.32): a lease is
/// refused while the object serves nothing and granted, with the server's Lease Time and the
/// object's Last Change Date, once it does; Lease Time shows among every object's
/// attributes (the server's lease); a Revoke for compromise keeps its Revocation
/// Reason (code and message) and Compromise Occurrence Date, which Get Attributes reads back
/// in both shapes; a Compromise Occurrence Date with another reason changes nothing. Each
/// lease is in the audit trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obtain_lease_and_revocation_attributes() {
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let id = create_aes(&mut c).await;
    let uid_of = |id: &str| vec![Item::text_item(tags::UNIQUE_IDENTIFIER, id)];

    // Pre-Active: no lease.
    let r = c.op(V14, op::OBTAIN_LEASE, uid_of(&id)).await;
    let (status, why, _) = result(&r);
    assert_eq!(status, result_status::OPERATION_FAILED);
    assert_eq!(
        why,
        Some(reason::PERMISSION_DENIED),
        "1.x: Wrong Key Lifecycle State"
    );
    let r = c.op(V21, op::OBTAIN_LEASE, uid_of(&id)).await;
    assert_eq!(result(&r).1, Some(reason::WRONG_KEY_LIFECYCLE_STATE));

    ok_payload(&c.op(V14, op::ACTIVATE, uid_of(&id)).await);
    let p = ok_payload(&c.op(V21, op::OBTAIN_LEASE, uid_of(&id)).await);
    assert_eq!(uid(&p), id);
    assert_eq!(
        p.req(tags::LEASE_TIME).unwrap().value,
        Value::Interval(3600)
    );
    assert!(p.req(tags::LAST_CHANGE_DATE).unwrap().date_time().is_ok());

    // Every object shows the server's lease, before and after a Get.
    assert_eq!(
        attribute_v1(&all_attributes(&mut c, &id).await, "Lease Time").map(|v| v.value.clone()),
        Some(Value::Interval(3600))
    );
    ok_payload(&c.op(V14, op::GET, uid_of(&id)).await);
    assert_eq!(
        attribute_v1(&all_attributes(&mut c, &id).await, "Lease Time").map(|v| v.value.clone()),
        Some(Value::Interval(3600))
    );

    // A Compromise Occurrence Date belongs to a compromise only: refused, nothing changes.
    let revoke = |code: u32, occurred: Option<i64>| {
        let mut p = uid_of(&id);
        p.push(Item::structure(
            tags::REVOCATION_REASON,
            vec![
                Item::enum_item(tags::REVOCATION_REASON_CODE, code),
                Item::text_item(tags::REVOCATION_MESSAGE, "laptop stolen"),
            ],
        ));
        if let Some(t) = occurred {
            p.push(Item::new(
                tags::COMPROMISE_OCCURRENCE_DATE,
                Value::DateTime(t),
            ));
        }
        p
    };
    let r = c
        .op(
            V21,
            op::REVOKE,
            revoke(revocation_reason_code::SUPERSEDED, Some(6)),
        )
        .await;
    assert_eq!(result(&r).1, Some(reason::INVALID_FIELD));
    let a = all_attributes(&mut c, &id).await;
    assert_eq!(
        attribute_v1(&a, "State").unwrap().value,
        Value::Enumeration(state::ACTIVE)
    );
    assert!(attribute_v1(&a, "Revocation Reason").is_none());

    ok_payload(
        &c.op(
            V14,
            op::REVOKE,
            revoke(revocation_reason_code::KEY_COMPROMISE, Some(6)),
        )
        .await,
    );
    let a = all_attributes(&mut c, &id).await;
    let rr = attribute_v1(&a, "Revocation Reason").expect("Revocation Reason kept");
    assert_eq!(
        enum_of(rr, tags::REVOCATION_REASON_CODE),
        revocation_reason_code::KEY_COMPROMISE
    );
    assert_eq!(
        rr.req(tags::REVOCATION_MESSAGE).unwrap().text().unwrap(),
        "laptop stolen"
    );
    assert_eq!(
        attribute_v1(&a, "Compromise Occurrence Date")
            .unwrap()
            .value,
        Value::DateTime(6)
    );
    // 2.x: the same attributes by reference.
    let mut req = uid_of(&id);
    for t in [tags::REVOCATION_REASON, tags::COMPROMISE_OCCURRENCE_DATE] {
        req.push(Item::enum_item(tags::ATTRIBUTE_REFERENCE, t));
    }
    let p = ok_payload(&c.op(V21, op::GET_ATTRIBUTES, req).await);
    let attrs = p.req(tags::ATTRIBUTES).unwrap();
    assert_eq!(
        attrs.req(tags::COMPROMISE_OCCURRENCE_DATE).unwrap().value,
        Value::DateTime(6)
    );
    assert!(attrs.req(tags::REVOCATION_REASON).is_ok());
    // A compromised key still processes: the lease is granted.
    ok_payload(&c.op(V21, op::OBTAIN_LEASE, uid_of(&id)).await);

    k.s.service().flush_audit().await;
    let trail = arca_service::trail::read_all(k.s.service().store().as_ref())
        .await
        .unwrap();
    let leases: Vec<_> = trail
        .iter()
        .filter(|r| r.operation == "ObtainLease" && r.principal == CLIENT)
        .collect();
    assert_eq!(leases.len(), 4, "every Obtain Lease is recorded");
    assert_eq!(
        leases.iter().filter(|r| r.outcome == "ok").count(),
        2,
        "two granted"
    );
    assert!(leases
        .iter()
        .filter(|r| r.outcome == "ok")
        .all(|r| r.detail["lease_time_secs"] == 3600));
}

/// Every attribute of an object, over KMIP 1.4.
async fn all_attributes(c: &mut KmipClient, id: &str) -> Item {
    ok_payload(
        &c.op(
            V14,
            op::GET_ATTRIBUTES,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, id)],
        )
        .await,
    )
}

/// Batch Error Continuation Undo (KMIP 2.1 §8.12): when an item fails, the items before it
/// answer Operation Undone (with what they answered) if none of them changed anything Arca
/// keeps, and the items after it do not run. Arca cannot undo a committed change (an
/// Activate) atomically, so then the earlier items stay answered as done, truthfully (the
/// key is Active), and the failure says so; a batch that does not fail runs whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_undo_undoes_only_what_changed_nothing() {
    use arca_kmip::enums::batch_error_continuation_option as continuation;
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let id = create_aes(&mut c).await;
    let undo = |ops: Vec<(u32, Vec<Item>)>| {
        let msg = request(V21, ops);
        let Value::Structure(mut body) = msg.value else {
            unreachable!()
        };
        let Value::Structure(header) = &mut body[0].value else {
            unreachable!()
        };
        header.push(Item::enum_item(
            tags::BATCH_ERROR_CONTINUATION_OPTION,
            continuation::UNDO,
        ));
        Item::structure(tags::REQUEST_MESSAGE, body)
    };
    let target = || Item::text_item(tags::UNIQUE_IDENTIFIER, &id);
    let check = |m: u32| {
        vec![
            target(),
            Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, m as i32),
        ]
    };

    let r = c
        .call(&undo(vec![
            (op::GET_ATTRIBUTE_LIST, vec![target()]),
            (op::CHECK, check(mask::ENCRYPT)),
            (op::CHECK, check(mask::SIGN)),
            (op::GET_ATTRIBUTES, vec![target()]),
        ]))
        .await;
    let items: Vec<_> = r.children_with(tags::BATCH_ITEM).collect();
    assert_eq!(items.len(), 3, "the item after the failure does not run");
    for i in &items[..2] {
        assert_eq!(
            result(i).0,
            result_status::OPERATION_UNDONE,
            "{}",
            arca_kmip::xml::to_xml(i)
        );
        assert!(i.child(tags::RESPONSE_PAYLOAD).is_some());
    }
    let (status, why, _) = result(items[2]);
    assert_eq!(status, result_status::OPERATION_FAILED);
    assert_eq!(why, Some(reason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK));

    // An Activate before the failure is done and stays done.
    let r = c
        .call(&undo(vec![
            (op::ACTIVATE, vec![target()]),
            (op::CHECK, check(mask::ENCRYPT)),
            (op::CHECK, check(mask::SIGN)),
        ]))
        .await;
    let items: Vec<_> = r.children_with(tags::BATCH_ITEM).collect();
    assert_eq!(result(items[0]).0, result_status::SUCCESS);
    assert_eq!(result(items[1]).0, result_status::SUCCESS);
    let (status, why, message) = result(items[2]);
    assert_eq!(status, result_status::OPERATION_FAILED);
    assert_eq!(why, Some(reason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK));
    assert!(message.unwrap().contains("stay done"));
    let a = all_attributes(&mut c, &id).await;
    assert_eq!(
        attribute_v1(&a, "State").unwrap().value,
        Value::Enumeration(state::ACTIVE)
    );
    // A batch that does not fail runs whole under Undo.
    let r = c
        .call(&undo(vec![
            (op::CHECK, check(mask::ENCRYPT)),
            (
                op::REVOKE,
                vec![
                    target(),
                    Item::structure(
                        tags::REVOCATION_REASON,
                        vec![Item::enum_item(
                            tags::REVOCATION_REASON_CODE,
                            revocation_reason_code::SUPERSEDED,
                        )],
                    ),
                ],
            ),
        ]))
        .await;
    assert!(r
        .children_with(tags::BATCH_ITEM)
        .all(|i| result(i).0 == result_status::SUCCESS));
    k.s.shutdown().await;
}

/// Transparent RSA keys (KMIP 2.1 §2.1.7.5-6): Get returns an RSA pair's halves as their
/// integers, which are those of the PKCS#1 forms; a Register of those integers makes keys
/// whose PKCS#1 is the original's, which sign and verify; incomplete integers are refused
/// and make nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transparent_rsa_keys_in_and_out() {
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let usage = |tag, m: u32| {
        Item::structure(
            tag,
            vec![Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, m as i32)],
        )
    };
    let p = ok_payload(
        &c.op(
            V21,
            op::CREATE_KEY_PAIR,
            vec![
                Item::structure(
                    tags::COMMON_ATTRIBUTES,
                    vec![
                        Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::RSA),
                        Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 2048),
                    ],
                ),
                usage(tags::PRIVATE_KEY_ATTRIBUTES, mask::SIGN),
                usage(tags::PUBLIC_KEY_ATTRIBUTES, mask::VERIFY),
            ],
        )
        .await,
    );
    let text = |t| p.req(t).unwrap().text().unwrap().to_owned();
    let (private, public) = (
        text(tags::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        text(tags::PUBLIC_KEY_UNIQUE_IDENTIFIER),
    );
    // The Key Value of a Get in `format`.
    async fn get(c: &mut KmipClient, id: &str, object: u32, format: u32) -> Item {
        let block = ok_payload(
            &c.op(
                V21,
                op::GET,
                vec![
                    Item::text_item(tags::UNIQUE_IDENTIFIER, id),
                    Item::enum_item(tags::KEY_FORMAT_TYPE, format),
                ],
            )
            .await,
        )
        .req(object)
        .unwrap()
        .req(tags::KEY_BLOCK)
        .unwrap()
        .clone();
        assert_eq!(enum_of(&block, tags::KEY_FORMAT_TYPE), format);
        block.req(tags::KEY_VALUE).unwrap().clone()
    }
    let der = |v: &Item| {
        v.req(tags::KEY_MATERIAL)
            .unwrap()
            .byte_string()
            .unwrap()
            .to_vec()
    };
    let big = |m: &Item, t| match &m.req(t).unwrap().value {
        Value::BigInteger(b) => {
            let s = b.iter().position(|x| *x != 0).unwrap();
            b[s..].to_vec()
        }
        v => panic!("{v:?}"),
    };

    let t_private = get(
        &mut c,
        &private,
        tags::PRIVATE_KEY,
        kft::TRANSPARENT_RSA_PRIVATE_KEY,
    )
    .await
    .req(tags::KEY_MATERIAL)
    .unwrap()
    .clone();
    let t_public = get(
        &mut c,
        &public,
        tags::PUBLIC_KEY,
        kft::TRANSPARENT_RSA_PUBLIC_KEY,
    )
    .await
    .req(tags::KEY_MATERIAL)
    .unwrap()
    .clone();
    assert_eq!(t_private.items().len(), 8);
    assert_eq!(big(&t_private, tags::PUBLIC_EXPONENT), vec![1, 0, 1]);
    assert_eq!(big(&t_private, tags::MODULUS).len(), 256);
    assert_eq!(
        big(&t_private, tags::MODULUS),
        big(&t_public, tags::MODULUS)
    );
    let pkcs1 = der(&get(&mut c, &private, tags::PRIVATE_KEY, kft::PKCS_1).await);
    let public_pkcs1 = der(&get(&mut c, &public, tags::PUBLIC_KEY, kft::PKCS_1).await);

    let register = |ot: u32, object: u32, format: u32, material: Item, m: u32| {
        vec![
            Item::enum_item(tags::OBJECT_TYPE, ot),
            Item::structure(
                tags::ATTRIBUTES,
                vec![Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, m as i32)],
            ),
            Item::structure(
                object,
                vec![Item::structure(
                    tags::KEY_BLOCK,
                    vec![
                        Item::enum_item(tags::KEY_FORMAT_TYPE, format),
                        Item::structure(tags::KEY_VALUE, vec![material]),
                        Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::RSA),
                        Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 2048),
                    ],
                )],
            ),
        ]
    };
    let again = uid(&ok_payload(
        &c.op(
            V21,
            op::REGISTER,
            register(
                object_type::PRIVATE_KEY,
                tags::PRIVATE_KEY,
                kft::TRANSPARENT_RSA_PRIVATE_KEY,
                t_private.clone(),
                mask::SIGN,
            ),
        )
        .await,
    ));
    let again_public = uid(&ok_payload(
        &c.op(
            V21,
            op::REGISTER,
            register(
                object_type::PUBLIC_KEY,
                tags::PUBLIC_KEY,
                kft::TRANSPARENT_RSA_PUBLIC_KEY,
                t_public.clone(),
                mask::VERIFY,
            ),
        )
        .await,
    ));
    assert_eq!(
        der(&get(&mut c, &again, tags::PRIVATE_KEY, kft::PKCS_1).await),
        pkcs1
    );
    assert_eq!(
        der(&get(&mut c, &again_public, tags::PUBLIC_KEY, kft::PKCS_1).await),
        public_pkcs1
    );
    // Registered in the transparent form, Get returns that form by default.
    let block = get_payload(&mut c, V21, &again_public).await;
    assert_eq!(
        block
            .req(tags::PUBLIC_KEY)
            .unwrap()
            .req(tags::KEY_BLOCK)
            .unwrap()
            .req(tags::KEY_FORMAT_TYPE)
            .unwrap()
            .enumeration()
            .unwrap(),
        kft::TRANSPARENT_RSA_PUBLIC_KEY
    );
    // The registered keys work: sign with one, verify with the other.
    for id in [&again, &again_public] {
        ok_payload(
            &c.op(
                V21,
                op::ACTIVATE,
                vec![Item::text_item(tags::UNIQUE_IDENTIFIER, id)],
            )
            .await,
        );
    }
    let sig = ok_payload(
        &c.op(
            V21,
            op::SIGN,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &again),
                Item::new(tags::DATA, Value::bytes(b"transparent".to_vec())),
            ],
        )
        .await,
    )
    .req(tags::SIGNATURE_DATA)
    .unwrap()
    .byte_string()
    .unwrap()
    .to_vec();
    let v = ok_payload(
        &c.op(
            V21,
            op::SIGNATURE_VERIFY,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &again_public),
                Item::new(tags::DATA, Value::bytes(b"transparent".to_vec())),
                Item::new(tags::SIGNATURE_DATA, Value::bytes(sig)),
            ],
        )
        .await,
    );
    assert_eq!(
        enum_of(&v, tags::VALIDITY_INDICATOR),
        arca_kmip::enums::validity_indicator::VALID
    );

    // Without its primes the private key is refused; a wrong modulus does not verify as a
    // key: nothing is made either way.
    let Value::Structure(mut partial) = t_private.value.clone() else {
        unreachable!()
    };
    partial.retain(|i| i.tag != tags::P);
    let r = c
        .op(
            V21,
            op::REGISTER,
            register(
                object_type::PRIVATE_KEY,
                tags::PRIVATE_KEY,
                kft::TRANSPARENT_RSA_PRIVATE_KEY,
                Item::structure(tags::KEY_MATERIAL, partial),
                mask::SIGN,
            ),
        )
        .await;
    assert_eq!(result(&r).0, result_status::OPERATION_FAILED);
    let Value::Structure(mut broken) = t_private.value.clone() else {
        unreachable!()
    };
    for i in &mut broken {
        if i.tag == tags::PRIVATE_EXPONENT {
            if let Value::BigInteger(b) = &mut i.value {
                let last = b.len() - 1;
                b[last] ^= 1;
            }
        }
    }
    let r = c
        .op(
            V21,
            op::REGISTER,
            register(
                object_type::PRIVATE_KEY,
                tags::PRIVATE_KEY,
                kft::TRANSPARENT_RSA_PRIVATE_KEY,
                Item::structure(tags::KEY_MATERIAL, broken),
                mask::SIGN,
            ),
        )
        .await;
    assert_eq!(
        result(&r).0,
        result_status::OPERATION_FAILED,
        "{:?}",
        result(&r)
    );
    k.s.shutdown().await;
}

/// Certificate objects (KMIP 2.1 §2.2.1): an X.509 certificate a storage array registers
/// next to its key pair comes back byte for byte from Get, in 1.4 and 2.1; its attributes are
/// the ones the certificate states (type, length, identifier, subject, issuer, common
/// name), which no client may change; Locate finds it by Object Type and by subject common
/// name; Links join it and its public key both ways; a value that is not one X.509
/// certificate makes nothing; Destroy ends it like any object; each step is in the audit
/// trail as the service's own operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_register_get_locate_link_destroy() {
    use arca_kmip::enums::{certificate_type, link_type};
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let mut params =
        rcgen::CertificateParams::new(vec!["array-01.example.com".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "array-01");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Example Storage");
    let cert_key = rcgen::KeyPair::generate().unwrap();
    let der = params.self_signed(&cert_key).unwrap().der().to_vec();

    // 2.1, with a name; 1.4, with a template.
    let id = uid(&ok_payload(
        &c.op(
            V21,
            op::REGISTER,
            vec![
                Item::enum_item(tags::OBJECT_TYPE, object_type::CERTIFICATE),
                Item::structure(
                    tags::ATTRIBUTES,
                    vec![Item::structure(
                        tags::NAME,
                        vec![
                            Item::text_item(tags::NAME_VALUE, "array-01-cert"),
                            Item::enum_item(tags::NAME_TYPE, 1),
                        ],
                    )],
                ),
                x509_certificate(der.clone()),
            ],
        )
        .await,
    ));
    let id14 = uid(&ok_payload(
        &c.op(
            V14,
            op::REGISTER,
            vec![
                Item::enum_item(tags::OBJECT_TYPE, object_type::CERTIFICATE),
                Item::structure(tags::TEMPLATE_ATTRIBUTE, vec![name_v1("array-01-cert-14")]),
                x509_certificate(der.clone()),
            ],
        )
        .await,
    ));
    for (v, id) in [(V21, &id), (V14, &id14)] {
        let p = ok_payload(
            &c.op(
                v,
                op::GET,
                vec![Item::text_item(tags::UNIQUE_IDENTIFIER, id)],
            )
            .await,
        );
        assert_eq!(enum_of(&p, tags::OBJECT_TYPE), object_type::CERTIFICATE);
        let cert = p.req(tags::CERTIFICATE).unwrap();
        assert_eq!(
            cert.req(tags::CERTIFICATE_VALUE)
                .unwrap()
                .byte_string()
                .unwrap()
                .to_vec(),
            der
        );
    }

    // The attributes the certificate states.
    let p = ok_payload(
        &c.op(
            V21,
            op::GET_ATTRIBUTES,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &id)],
        )
        .await,
    );
    let a = p.req(tags::ATTRIBUTES).unwrap();
    assert_eq!(enum_of(a, tags::CERTIFICATE_TYPE), certificate_type::X_509);
    assert_eq!(
        a.req(tags::CERTIFICATE_LENGTH).unwrap().integer().unwrap(),
        der.len() as i32
    );
    assert_eq!(
        a.req(tags::CERTIFICATE_SUBJECT_CN).unwrap().text().unwrap(),
        "array-01"
    );
    assert_eq!(
        a.req(tags::CERTIFICATE_SUBJECT_O).unwrap().text().unwrap(),
        "Example Storage"
    );
    let parsed = x509_parser::parse_x509_certificate(&der).unwrap().1;
    let ident = a.req(tags::X_509_CERTIFICATE_IDENTIFIER).unwrap();
    assert_eq!(
        ident
            .req(tags::CERTIFICATE_SERIAL_NUMBER)
            .unwrap()
            .byte_string()
            .unwrap()
            .to_vec(),
        parsed.raw_serial().to_vec()
    );
    assert_eq!(
        ident
            .req(tags::ISSUER_DISTINGUISHED_NAME)
            .unwrap()
            .byte_string()
            .unwrap()
            .to_vec(),
        parsed.issuer().as_raw().to_vec()
    );
    let subject = a.req(tags::X_509_CERTIFICATE_SUBJECT).unwrap();
    assert!(subject
        .children_with(tags::SUBJECT_ALTERNATIVE_NAME)
        .any(|n| n.text().unwrap().contains("array-01.example.com")));
    assert!(a.child(tags::DIGEST).is_some());
    let a14 = ok_payload(
        &c.op(
            V14,
            op::GET_ATTRIBUTES,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &id14)],
        )
        .await,
    );
    assert_eq!(
        attribute_v1(&a14, "Certificate Length").unwrap().value,
        Value::Integer(der.len() as i32)
    );
    // No client changes what the certificate states.
    let r = c
        .op(
            V21,
            op::MODIFY_ATTRIBUTE,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &id),
                Item::structure(
                    tags::NEW_ATTRIBUTE,
                    vec![Item::int_item(tags::CERTIFICATE_LENGTH, 123)],
                ),
            ],
        )
        .await;
    assert_eq!(result(&r).1, Some(reason::ATTRIBUTE_READ_ONLY));

    // Locate by Object Type, and by the subject's common name.
    for filter in [
        Item::enum_item(tags::OBJECT_TYPE, object_type::CERTIFICATE),
        Item::text_item(tags::CERTIFICATE_SUBJECT_CN, "array-01"),
    ] {
        let p = ok_payload(
            &c.op(
                V21,
                op::LOCATE,
                vec![Item::structure(tags::ATTRIBUTES, vec![filter])],
            )
            .await,
        );
        let mut found: Vec<String> = p
            .children_with(tags::UNIQUE_IDENTIFIER)
            .map(|i| i.text().unwrap().to_owned())
            .collect();
        found.sort();
        let mut want = vec![id.clone(), id14.clone()];
        want.sort();
        assert_eq!(found, want);
    }

    // Linked to the key pair it certifies, both ways.
    let pair = ok_payload(&c.op(V21, op::CREATE_KEY_PAIR, ec_pair_template()).await);
    let public = pair
        .req(tags::PUBLIC_KEY_UNIQUE_IDENTIFIER)
        .unwrap()
        .text()
        .unwrap()
        .to_owned();
    let link = |from: &str, t: u32, to: &str| {
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, from),
            Item::structure(
                tags::NEW_ATTRIBUTE,
                vec![Item::structure(
                    tags::LINK,
                    vec![
                        Item::enum_item(tags::LINK_TYPE, t),
                        Item::text_item(tags::LINKED_OBJECT_IDENTIFIER, to),
                    ],
                )],
            ),
        ]
    };
    ok_payload(
        &c.op(
            V21,
            op::ADD_ATTRIBUTE,
            link(&id, link_type::PUBLIC_KEY_LINK, &public),
        )
        .await,
    );
    ok_payload(
        &c.op(
            V21,
            op::ADD_ATTRIBUTE,
            link(&public, link_type::CERTIFICATE_LINK, &id),
        )
        .await,
    );
    assert!(links(&k, &id)
        .await
        .contains(&(link_type::PUBLIC_KEY_LINK, public.clone())));
    assert!(links(&k, &public)
        .await
        .contains(&(link_type::CERTIFICATE_LINK, id.clone())));

    // Not a certificate, or one with bytes after it: nothing is made.
    for bad in [
        b"not a certificate".to_vec(),
        [der.clone(), vec![0]].concat(),
    ] {
        let r = c
            .op(
                V21,
                op::REGISTER,
                vec![
                    Item::enum_item(tags::OBJECT_TYPE, object_type::CERTIFICATE),
                    x509_certificate(bad),
                ],
            )
            .await;
        assert_eq!(result(&r).1, Some(reason::INVALID_FIELD));
    }

    // Destroy: gone for every client.
    ok_payload(
        &c.op(
            V21,
            op::DESTROY,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &id)],
        )
        .await,
    );
    let r = c
        .op(
            V21,
            op::GET,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &id)],
        )
        .await;
    assert_eq!(result(&r).0, result_status::OPERATION_FAILED);

    k.s.service().flush_audit().await;
    let trail = arca_service::trail::read_all(k.s.service().store().as_ref())
        .await
        .unwrap();
    let count = |op: &str| {
        trail
            .iter()
            .filter(|r| r.operation == op && r.principal == CLIENT && r.outcome == "ok")
            .count()
    };
    assert!(
        count("CreateKey") >= 2,
        "each certificate made by the service"
    );
    assert!(count("ExportKey") >= 2, "each Get an export");
    k.s.shutdown().await;
}

/// KMIP 2.1's Quantum Safe: a Create that asks for it gets a key that is (AES-256, kept
/// with the attribute) or nothing (AES-128: General Failure NOT_SAFE, no object made).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quantum_safe_is_granted_or_refused() {
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let create = |len: i32| {
        vec![
            Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
            Item::structure(
                tags::ATTRIBUTES,
                vec![
                    Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                    Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, len),
                    Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, mask::ENCRYPT as i32),
                    Item::new(tags::QUANTUM_SAFE, Value::Boolean(true)),
                ],
            ),
        ]
    };
    let r = c.op(V21, op::CREATE, create(128)).await;
    let (status, why, message) = result(&r);
    assert_eq!(status, result_status::OPERATION_FAILED);
    assert_eq!(why, Some(reason::GENERAL_FAILURE));
    assert!(message.unwrap().starts_with("NOT_SAFE"));
    let id = uid(&ok_payload(&c.op(V21, op::CREATE, create(256)).await));
    let p = ok_payload(
        &c.op(
            V21,
            op::GET_ATTRIBUTES,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &id),
                Item::enum_item(tags::ATTRIBUTE_REFERENCE, tags::QUANTUM_SAFE),
            ],
        )
        .await,
    );
    assert_eq!(
        p.req(tags::ATTRIBUTES)
            .unwrap()
            .req(tags::QUANTUM_SAFE)
            .unwrap()
            .value,
        Value::Boolean(true)
    );
    // Only the AES-256 key exists.
    let found = ok_payload(
        &c.op(
            V21,
            op::LOCATE,
            vec![Item::structure(
                tags::ATTRIBUTES,
                vec![Item::enum_item(
                    tags::OBJECT_TYPE,
                    object_type::SYMMETRIC_KEY,
                )],
            )],
        )
        .await,
    );
    assert_eq!(found.children_with(tags::UNIQUE_IDENTIFIER).count(), 1);
    k.s.shutdown().await;
}

/// KMIP 2.x Get Attribute List names a vendor attribute by an Attribute Reference structure
/// (Vendor Identification and Attribute Name); 1.x by its name (`x-ID`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_attributes_in_get_attribute_list() {
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let id = create_aes(&mut c).await;
    ok_payload(
        &c.op(
            V14,
            op::ADD_ATTRIBUTE,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &id),
                attr_v1("x-ID", Value::TextString("barcode-1".into())),
            ],
        )
        .await,
    );
    let uid_only = || vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &id)];
    let p = ok_payload(&c.op(V21, op::GET_ATTRIBUTE_LIST, uid_only()).await);
    let vendor: Vec<(String, String)> = p
        .children_with(tags::ATTRIBUTE_REFERENCE)
        .filter(|r| matches!(r.value, Value::Structure(_)))
        .map(|r| {
            let t = |tag| r.req(tag).unwrap().text().unwrap().to_owned();
            (t(tags::VENDOR_IDENTIFICATION), t(tags::ATTRIBUTE_NAME))
        })
        .collect();
    assert_eq!(vendor, vec![("x".to_owned(), "ID".to_owned())]);
    assert!(p
        .children_with(tags::ATTRIBUTE_REFERENCE)
        .any(|r| r.enumeration().ok() == Some(tags::CRYPTOGRAPHIC_ALGORITHM)));
    let p = ok_payload(&c.op(V14, op::GET_ATTRIBUTE_LIST, uid_only()).await);
    assert!(p
        .children_with(tags::ATTRIBUTE_NAME)
        .any(|n| n.text().unwrap() == "x-ID"));
    k.s.shutdown().await;
}

/// Usage Limits over KMIP (1.4 §3.21): a key created with a 32-byte budget encrypts 32
/// bytes and is then refused with Permission Denied (audited), while it still decrypts;
/// Get Attributes shows the Count left; the attribute is the server's to change after
/// creation; a ReKey's replacement starts with the old key's whole budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_limits_are_spent_and_carried_by_rekey() {
    use arca_kmip::enums::block_cipher_mode as bcm;
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let limits = |count: Option<i64>| {
        let mut parts = vec![Item::new(tags::USAGE_LIMITS_TOTAL, Value::LongInteger(32))];
        if let Some(n) = count {
            parts.push(Item::new(tags::USAGE_LIMITS_COUNT, Value::LongInteger(n)));
        }
        parts.push(Item::enum_item(
            tags::USAGE_LIMITS_UNIT,
            arca_kmip::enums::usage_limits_unit::BYTE,
        ));
        parts
    };
    let id = uid(&ok_payload(
        &c.op(
            V21,
            op::CREATE,
            vec![
                Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
                Item::structure(
                    tags::ATTRIBUTES,
                    vec![
                        Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
                        Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 256),
                        Item::int_item(
                            tags::CRYPTOGRAPHIC_USAGE_MASK,
                            (mask::ENCRYPT | mask::DECRYPT) as i32,
                        ),
                        Item::structure(tags::USAGE_LIMITS, limits(None)),
                    ],
                ),
            ],
        )
        .await,
    ));
    let uid_of = |id: &str| vec![Item::text_item(tags::UNIQUE_IDENTIFIER, id)];
    ok_payload(&c.op(V21, op::ACTIVATE, uid_of(&id)).await);
    let ecb = |id: &str, data: &[u8]| {
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, id),
            Item::structure(
                tags::CRYPTOGRAPHIC_PARAMETERS,
                vec![Item::enum_item(tags::BLOCK_CIPHER_MODE, bcm::ECB)],
            ),
            Item::new(tags::DATA, Value::bytes(data.to_vec())),
        ]
    };
    let ct = ok_payload(&c.op(V21, op::ENCRYPT, ecb(&id, &[1; 32])).await)
        .req(tags::DATA)
        .unwrap()
        .value
        .clone();
    let left = attribute_v1(&all_attributes(&mut c, &id).await, "Usage Limits")
        .expect("Usage Limits")
        .clone();
    assert_eq!(
        left.req(tags::USAGE_LIMITS_COUNT).unwrap().value,
        Value::LongInteger(0)
    );
    let b = c.op(V21, op::ENCRYPT, ecb(&id, &[1; 16])).await;
    let (status, why, msg) = result(&b);
    assert_eq!(status, result_status::OPERATION_FAILED);
    assert_eq!(why, Some(reason::PERMISSION_DENIED), "{msg:?}");
    assert!(msg.unwrap().contains("usage limit"));
    // What it protected still decrypts.
    let mut d = ecb(&id, &[]);
    d[2] = Item::new(tags::DATA, ct);
    let back = ok_payload(&c.op(V21, op::DECRYPT, d).await);
    assert_eq!(
        back.req(tags::DATA).unwrap().value,
        Value::bytes(vec![1; 32])
    );
    // The budget is the server's to change.
    let b = c
        .op(
            V21,
            op::MODIFY_ATTRIBUTE,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &id),
                Item::structure(
                    tags::NEW_ATTRIBUTE,
                    vec![Item::structure(tags::USAGE_LIMITS, limits(Some(32)))],
                ),
            ],
        )
        .await;
    assert_eq!(result(&b).1, Some(reason::ATTRIBUTE_READ_ONLY));
    // The replacement has the whole budget again.
    let new = uid(&ok_payload(&c.op(V21, op::REKEY, uid_of(&id)).await));
    assert_ne!(new, id);
    ok_payload(&c.op(V21, op::ENCRYPT, ecb(&new, &[2; 32])).await);
    let b = c.op(V21, op::ENCRYPT, ecb(&new, &[2; 16])).await;
    assert_eq!(result(&b).1, Some(reason::PERMISSION_DENIED));

    // Each refusal is in the audit trail.
    let (_, v) = k.s.get("/v1/audit?operation=Encrypt&limit=100").await;
    let refused = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] != "ok" && e["detail"]["usage_limits_remaining"] == 0)
        .count();
    assert_eq!(refused, 2, "{v}");
    k.s.shutdown().await;
}

/// Sets the default tenant's `allow_legacy_algorithms` over REST, keeping its other
/// settings.
async fn set_legacy(k: &KmipServer, on: bool) {
    let (st, mut s) = k.s.get("/v1/tenant/settings").await;
    assert_eq!(st, reqwest::StatusCode::OK, "{s}");
    s["allow_legacy_algorithms"] = json!(on);
    let (st, v) =
        k.s.req(reqwest::Method::PUT, "/v1/tenant/settings", Some(s))
            .await;
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    assert_eq!(v["allow_legacy_algorithms"], json!(on));
}

/// Automatic rotation makes new legacy material only while the tenant allows it, as a
/// caller's rotation does: with `allow_legacy_algorithms` off, a due Triple DES key keeps
/// its version, the lifecycle task records the refused RotateKey (naming the setting) and a
/// `rotate-skipped` event, and tries again a period later; with the setting back on, the
/// next try rotates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_rotation_of_a_legacy_key_follows_the_tenant_setting() {
    let k = KmipServer::start().await;
    set_legacy(&k, true).await;
    let admin_policy =
        json!([{"effect": "allow", "principals": ["principal:admin"], "actions": ["*"]}]);
    k.s.create(
        json!({"name": "tdes-rot", "spec": "TRIPLE_DES", "rotation_period_days": 1,
        "policy": admin_policy}),
    )
    .await;
    set_legacy(&k, false).await;
    k.s.advance(chrono::Duration::hours(25)).await;
    let key = k.s.get("/v1/keys/tdes-rot").await.1;
    assert_eq!(key["primary_version"], 1, "{key}");
    let history = || async {
        let h = k.s.get("/v1/keys/tdes-rot/history").await.1;
        h["events"].as_array().unwrap().clone()
    };
    let events = history().await;
    let last = events.last().unwrap();
    assert_eq!(last["action"], "rotate-skipped", "{last}");
    assert_eq!(last["actor"], "system", "{last}");
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("allow_legacy_algorithms"),
        "{last}"
    );
    k.s.service().flush_audit().await;
    let trail = arca_service::trail::read_all(k.s.service().store().as_ref())
        .await
        .unwrap();
    let refused: Vec<_> = trail
        .iter()
        .filter(|e| e.operation == "RotateKey" && e.outcome != "ok")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].door, "system");
    // Not retried before a period has passed; a day later, still off, skipped again.
    k.s.advance(chrono::Duration::hours(2)).await;
    assert_eq!(history().await.len(), events.len());
    k.s.advance(chrono::Duration::hours(23)).await;
    assert_eq!(history().await.len(), events.len() + 1);
    // Allowed again: the next due time rotates it.
    set_legacy(&k, true).await;
    k.s.advance(chrono::Duration::hours(25)).await;
    let key = k.s.get("/v1/keys/tdes-rot").await.1;
    assert_eq!(key["primary_version"], 2, "{key}");
    k.s.shutdown().await;
}

/// A KMIP 2.1 Register of a raw symmetric key of `algorithm`, with `usage` and, when
/// given, a Cryptographic Parameters attribute naming `params_alg`.
fn register_raw(
    algorithm: u32,
    bits: i32,
    material: &[u8],
    usage: u32,
    params_alg: Option<u32>,
) -> Vec<Item> {
    let mut attrs = vec![Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, usage as i32)];
    if let Some(a) = params_alg {
        attrs.push(Item::structure(
            tags::CRYPTOGRAPHIC_PARAMETERS,
            vec![Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, a)],
        ));
    }
    vec![
        Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
        Item::structure(tags::ATTRIBUTES, attrs),
        Item::structure(
            tags::SYMMETRIC_KEY,
            vec![Item::structure(
                tags::KEY_BLOCK,
                vec![
                    Item::enum_item(tags::KEY_FORMAT_TYPE, kft::RAW),
                    Item::structure(
                        tags::KEY_VALUE,
                        vec![Item::new(
                            tags::KEY_MATERIAL,
                            Value::bytes(material.to_vec()),
                        )],
                    ),
                    Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, algorithm),
                    Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, bits),
                ],
            )],
        ),
    ]
}

async fn activate(c: &mut KmipClient, id: &str) {
    ok_payload(
        &c.op(
            V21,
            op::ACTIVATE,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, id)],
        )
        .await,
    );
}

/// A KMIP 2.1 Create Key Pair of DSA with a p of `bits`.
fn dsa_pair_template(bits: i32) -> Vec<Item> {
    let usage = |tag, m: u32| {
        Item::structure(
            tag,
            vec![Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, m as i32)],
        )
    };
    vec![
        Item::structure(
            tags::COMMON_ATTRIBUTES,
            vec![
                Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::DSA),
                Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, bits),
            ],
        ),
        usage(tags::PRIVATE_KEY_ATTRIBUTES, mask::SIGN),
        usage(tags::PUBLIC_KEY_ATTRIBUTES, mask::VERIFY),
    ]
}

/// The 512-bit DSA private key of the OASIS profiles' BL-M-13 as a Transparent DSA
/// Private Key (P, Q, G, X).
fn oasis_dsa_private() -> Item {
    let big = |tag, h: &str| Item::new(tag, Value::BigInteger(hex_bytes(h).into()));
    Item::structure(
        tags::KEY_MATERIAL,
        vec![
            big(tags::P, "0000000000000000fca682ce8e12caba26efccf7110e526db078b05edecbcd1eb4a208f3ae1617ae01f35b91a47e6df63413c5e12ed0899bcd132acd50d99151bdc43ee737592e17"),
            big(tags::Q, "00000000962eddcc369cba8ebb260ee6b6a126d9346e38c5"),
            big(tags::G, "678471b27a9cf44ee91a49c5147db1a9aaf244f05a434d6486931d2d14271b9e35030b71fd73da179069b32e2935630e1c2062354d0da20a6c416e50be794ca4"),
            big(tags::X, "00000000095411d740d2443fa3f97d1ed9a0411bb45e7131"),
        ],
    )
}

fn register_dsa_private() -> Vec<Item> {
    vec![
        Item::enum_item(tags::OBJECT_TYPE, object_type::PRIVATE_KEY),
        Item::structure(
            tags::ATTRIBUTES,
            vec![Item::int_item(
                tags::CRYPTOGRAPHIC_USAGE_MASK,
                mask::SIGN as i32,
            )],
        ),
        Item::structure(
            tags::PRIVATE_KEY,
            vec![Item::structure(
                tags::KEY_BLOCK,
                vec![
                    Item::enum_item(tags::KEY_FORMAT_TYPE, kft::TRANSPARENT_DSA_PRIVATE_KEY),
                    Item::structure(tags::KEY_VALUE, vec![oasis_dsa_private()]),
                    Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::DSA),
                    Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 512),
                ],
            )],
        ),
    ]
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Issue 21's legacy algorithms: Triple DES, ChaCha20 and ChaCha20-Poly1305 keys, and an
/// HMAC keyed by an AES key, exist only in tenants that allow legacy algorithms. With the
/// setting off, making each and using each is refused naming `allow_legacy_algorithms`,
/// on KMIP and REST, and every refusal is audited; with it on they work (known answers);
/// turned off again, the keys made meanwhile are unusable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_algorithms_need_the_tenant_setting() {
    use arca_kmip::enums::{block_cipher_mode as bcm, padding_method as pad};
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let mut after = 0u64;
    records_since(&k.s, &mut after).await;
    let refused_naming_setting = |b: &Item| {
        let (status, _, msg) = result(b);
        assert_ne!(status, result_status::SUCCESS);
        let msg = msg.unwrap_or_default();
        assert!(msg.contains("allow_legacy_algorithms"), "{msg}");
    };
    let des3_create = vec![
        Item::enum_item(tags::OBJECT_TYPE, object_type::SYMMETRIC_KEY),
        Item::structure(
            tags::ATTRIBUTES,
            vec![
                Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::TRIPLE_DES),
                Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 168),
                Item::int_item(
                    tags::CRYPTOGRAPHIC_USAGE_MASK,
                    (mask::ENCRYPT | mask::DECRYPT) as i32,
                ),
            ],
        ),
    ];
    let chacha_key = [0u8; 32];
    let poly_key = hex_bytes("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    let aes_mac_key = hex_bytes("0123456789abcdef0123456789abcdef");
    let ed = mask::ENCRYPT | mask::DECRYPT;
    let all_mac = ed | mask::MAC_GENERATE | mask::MAC_VERIFY;

    // Off (the default): nothing legacy is made, on either door.
    refused_naming_setting(&c.op(V21, op::CREATE, des3_create.clone()).await);
    refused_naming_setting(
        &c.op(
            V21,
            op::REGISTER,
            register_raw(alg::CHACHA20, 256, &chacha_key, ed, None),
        )
        .await,
    );
    refused_naming_setting(
        &c.op(
            V21,
            op::REGISTER,
            register_raw(alg::CHACHA20_POLY1305, 256, &poly_key, ed, None),
        )
        .await,
    );
    refused_naming_setting(
        &c.op(
            V21,
            op::REGISTER,
            register_raw(alg::AES, 128, &aes_mac_key, all_mac, Some(alg::HMAC_SHA256)),
        )
        .await,
    );
    refused_naming_setting(
        &c.op(V21, op::CREATE_KEY_PAIR, dsa_pair_template(1024))
            .await,
    );
    for spec in ["TRIPLE_DES", "CHACHA20", "CHACHA20_POLY1305", "DSA_1024"] {
        let (st, v) =
            k.s.post(
                "/v1/keys",
                json!({"name": format!("rest-{spec}"), "spec": spec}),
            )
            .await;
        assert_eq!(st, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert!(v.to_string().contains("allow_legacy_algorithms"), "{v}");
    }
    let (st, v) =
        k.s.post(
            "/v1/keys",
            json!({"name": "rest-aes-mac", "spec": "AES_256", "usage": ["GENERATE_VERIFY_MAC"]}),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("allow_legacy_algorithms"), "{v}");
    // Each refusal is a CreateKey record naming the setting, on its own door.
    let recs = records_since(&k.s, &mut after).await;
    let refusals: Vec<_> = recs
        .iter()
        .filter(|e| {
            e.operation == "CreateKey"
                && e.outcome != "ok"
                && serde_json::Value::Object(e.detail.clone())
                    .to_string()
                    .contains("allow_legacy_algorithms")
        })
        .collect();
    assert_eq!(
        refusals.iter().filter(|e| e.door == "kmip").count(),
        5,
        "{recs:?}"
    );
    assert_eq!(
        refusals.iter().filter(|e| e.door == "rest").count(),
        5,
        "{recs:?}"
    );

    // On: each works, with the known answers of the OASIS cases and RFC 8439.
    set_legacy(&k, true).await;
    let des3 = uid(&ok_payload(
        &c.op(V21, op::CREATE, des3_create.clone()).await,
    ));
    activate(&mut c, &des3).await;
    let des3_got = ok_payload(
        &c.op(
            V21,
            op::GET_ATTRIBUTES,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &des3)],
        )
        .await,
    );
    let attrs = des3_got.req(tags::ATTRIBUTES).unwrap();
    assert_eq!(
        enum_of(attrs, tags::CRYPTOGRAPHIC_ALGORITHM),
        alg::TRIPLE_DES
    );
    assert_eq!(
        attrs
            .req(tags::CRYPTOGRAPHIC_LENGTH)
            .unwrap()
            .integer()
            .unwrap(),
        168
    );
    for (mode, padding, iv) in [
        (bcm::CBC, pad::PKCS5, Some(vec![9u8; 8])),
        (bcm::ECB, pad::NONE, None),
    ] {
        let params = Item::structure(
            tags::CRYPTOGRAPHIC_PARAMETERS,
            vec![
                Item::enum_item(tags::BLOCK_CIPHER_MODE, mode),
                Item::enum_item(tags::PADDING_METHOD, padding),
            ],
        );
        let mut req = vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, &des3),
            params.clone(),
            Item::new(tags::DATA, Value::bytes(b"sixteen byte msg".to_vec())),
        ];
        if let Some(iv) = &iv {
            req.push(Item::new(tags::IV_COUNTER_NONCE, Value::bytes(iv.clone())));
        }
        let p = ok_payload(&c.op(V21, op::ENCRYPT, req).await);
        let ct = p.req(tags::DATA).unwrap().byte_string().unwrap().to_vec();
        assert_eq!(ct.len(), if padding == pad::PKCS5 { 24 } else { 16 });
        let mut req = vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, &des3),
            params,
            Item::new(tags::DATA, Value::bytes(ct)),
        ];
        if let Some(iv) = iv {
            req.push(Item::new(tags::IV_COUNTER_NONCE, Value::bytes(iv)));
        }
        let p = ok_payload(&c.op(V21, op::DECRYPT, req).await);
        assert_eq!(
            p.req(tags::DATA).unwrap().byte_string().unwrap().to_vec(),
            b"sixteen byte msg"
        );
    }
    // Raw ChaCha20 with an 8-byte nonce (the original ChaCha20's first test vector).
    let chacha = uid(&ok_payload(
        &c.op(
            V21,
            op::REGISTER,
            register_raw(alg::CHACHA20, 256, &chacha_key, ed, None),
        )
        .await,
    ));
    activate(&mut c, &chacha).await;
    let p = ok_payload(
        &c.op(
            V21,
            op::ENCRYPT,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &chacha),
                Item::new(tags::DATA, Value::bytes(vec![0; 64])),
                Item::new(tags::IV_COUNTER_NONCE, Value::bytes(vec![0; 8])),
            ],
        )
        .await,
    );
    assert_eq!(
        p.req(tags::DATA).unwrap().byte_string().unwrap().to_vec(),
        hex_bytes("76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586")
    );
    // ChaCha20-Poly1305 (RFC 8439 §2.8.2): the tag, and a tampered tag refused.
    let poly = uid(&ok_payload(
        &c.op(
            V21,
            op::REGISTER,
            register_raw(alg::CHACHA20_POLY1305, 256, &poly_key, ed, None),
        )
        .await,
    ));
    activate(&mut c, &poly).await;
    let aead = |data: Vec<u8>, tag: Option<Vec<u8>>| {
        let mut v = vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, &poly),
            Item::structure(
                tags::CRYPTOGRAPHIC_PARAMETERS,
                vec![Item::enum_item(tags::BLOCK_CIPHER_MODE, bcm::AEAD)],
            ),
            Item::new(tags::DATA, Value::bytes(data)),
            Item::new(
                tags::IV_COUNTER_NONCE,
                Value::bytes(hex_bytes("070000004041424344454647")),
            ),
            Item::new(
                tags::AUTHENTICATED_ENCRYPTION_ADDITIONAL_DATA,
                Value::bytes(hex_bytes("50515253c0c1c2c3c4c5c6c7")),
            ),
        ];
        if let Some(t) = tag {
            v.push(Item::new(
                tags::AUTHENTICATED_ENCRYPTION_TAG,
                Value::bytes(t),
            ));
        }
        v
    };
    let sunscreen = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".to_vec();
    let p = ok_payload(&c.op(V21, op::ENCRYPT, aead(sunscreen.clone(), None)).await);
    let tag = p
        .req(tags::AUTHENTICATED_ENCRYPTION_TAG)
        .unwrap()
        .byte_string()
        .unwrap()
        .to_vec();
    assert_eq!(tag, hex_bytes("1ae10b594f09e26a7e902ecbd0600691"));
    let ct = p.req(tags::DATA).unwrap().byte_string().unwrap().to_vec();
    let p = ok_payload(
        &c.op(V21, op::DECRYPT, aead(ct.clone(), Some(tag.clone())))
            .await,
    );
    assert_eq!(
        p.req(tags::DATA).unwrap().byte_string().unwrap().to_vec(),
        sunscreen
    );
    let mut bad = tag.clone();
    bad[0] ^= 1;
    let b = c.op(V21, op::DECRYPT, aead(ct, Some(bad))).await;
    assert_eq!(result(&b).1, Some(reason::CRYPTOGRAPHIC_FAILURE));
    // HMAC-SHA-256 keyed by an AES key (the OASIS CS-AC-M-4 answer), and its verification.
    let aes_mac = uid(&ok_payload(
        &c.op(
            V21,
            op::REGISTER,
            register_raw(alg::AES, 128, &aes_mac_key, all_mac, Some(alg::HMAC_SHA256)),
        )
        .await,
    ));
    activate(&mut c, &aes_mac).await;
    let msg = hex_bytes("01020304050607080910111213141516");
    let p = ok_payload(
        &c.op(
            V21,
            op::MAC,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &aes_mac),
                Item::new(tags::DATA, Value::bytes(msg.clone())),
            ],
        )
        .await,
    );
    let mac = p
        .req(tags::MAC_DATA)
        .unwrap()
        .byte_string()
        .unwrap()
        .to_vec();
    assert_eq!(
        mac,
        hex_bytes("c911e78196d64c30f631bb079ea37b97a95936d4da764d6a171df030c895ecf9")
    );
    // DSA: a generated pair signs and verifies (DSA with SHA-256); the OASIS 512-bit key
    // registers as its integers and comes back as them.
    let pair = ok_payload(
        &c.op(V21, op::CREATE_KEY_PAIR, dsa_pair_template(1024))
            .await,
    );
    let text = |p: &Item, t| p.req(t).unwrap().text().unwrap().to_owned();
    let (dsa_private, dsa_public) = (
        text(&pair, tags::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        text(&pair, tags::PUBLIC_KEY_UNIQUE_IDENTIFIER),
    );
    activate(&mut c, &dsa_private).await;
    activate(&mut c, &dsa_public).await;
    let dsa_sha256 = || {
        Item::structure(
            tags::CRYPTOGRAPHIC_PARAMETERS,
            vec![Item::enum_item(
                tags::DIGITAL_SIGNATURE_ALGORITHM,
                arca_kmip::enums::digital_signature_algorithm::DSA_WITH_SHA256,
            )],
        )
    };
    let p = ok_payload(
        &c.op(
            V21,
            op::SIGN,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &dsa_private),
                dsa_sha256(),
                Item::new(tags::DATA, Value::bytes(b"signed by DSA".to_vec())),
            ],
        )
        .await,
    );
    let sig = p
        .req(tags::SIGNATURE_DATA)
        .unwrap()
        .byte_string()
        .unwrap()
        .to_vec();
    for (data, valid) in [
        (&b"signed by DSA"[..], true),
        (&b"something else"[..], false),
    ] {
        let p = ok_payload(
            &c.op(
                V21,
                op::SIGNATURE_VERIFY,
                vec![
                    Item::text_item(tags::UNIQUE_IDENTIFIER, &dsa_public),
                    dsa_sha256(),
                    Item::new(tags::DATA, Value::bytes(data.to_vec())),
                    Item::new(tags::SIGNATURE_DATA, Value::bytes(sig.clone())),
                ],
            )
            .await,
        );
        assert_eq!(
            enum_of(&p, tags::VALIDITY_INDICATOR),
            if valid {
                arca_kmip::enums::validity_indicator::VALID
            } else {
                arca_kmip::enums::validity_indicator::INVALID
            }
        );
    }
    let dsa512 = uid(&ok_payload(
        &c.op(V21, op::REGISTER, register_dsa_private()).await,
    ));
    let got = get_payload(&mut c, V21, &dsa512).await;
    let block = got
        .req(tags::PRIVATE_KEY)
        .unwrap()
        .req(tags::KEY_BLOCK)
        .unwrap();
    assert_eq!(
        enum_of(block, tags::KEY_FORMAT_TYPE),
        kft::TRANSPARENT_DSA_PRIVATE_KEY
    );
    assert_eq!(
        block
            .req(tags::KEY_VALUE)
            .unwrap()
            .req(tags::KEY_MATERIAL)
            .unwrap(),
        &oasis_dsa_private()
    );
    assert_eq!(
        block
            .req(tags::CRYPTOGRAPHIC_LENGTH)
            .unwrap()
            .integer()
            .unwrap(),
        512
    );
    // Over REST a legacy key can be made and described, and is a raw-use key: Arca's own
    // ciphertexts (REST encrypt, and so the AWS door) refuse it.
    let admin_policy =
        json!([{"effect": "allow", "principals": ["principal:admin"], "actions": ["*"]}]);
    let made =
        k.s.create(json!({"name": "rest-3des", "spec": "TRIPLE_DES", "policy": admin_policy}))
            .await;
    assert_eq!(made["spec"], "TRIPLE_DES", "{made}");
    assert_eq!(made["raw_cipher_modes"], true, "{made}");
    let (st, v) = k.s.encrypt("rest-3des", b"x").await;
    assert_eq!(st, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("raw_cipher_modes"), "{v}");
    let (st, v) = k.s.get("/v1/keys/rest-3des").await;
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");

    // Off again: the keys made meanwhile are unusable, each refusal audited.
    set_legacy(&k, false).await;
    records_since(&k.s, &mut after).await;
    let b = c
        .op(
            V21,
            op::ENCRYPT,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &chacha),
                Item::new(tags::DATA, Value::bytes(vec![0; 8])),
                Item::new(tags::IV_COUNTER_NONCE, Value::bytes(vec![1; 8])),
            ],
        )
        .await;
    refused_naming_setting(&b);
    let b = c
        .op(
            V21,
            op::MAC,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &aes_mac),
                Item::new(tags::DATA, Value::bytes(msg.clone())),
            ],
        )
        .await;
    refused_naming_setting(&b);
    let b = c
        .op(
            V21,
            op::GET,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &des3)],
        )
        .await;
    refused_naming_setting(&b);
    let b = c
        .op(
            V21,
            op::SIGN,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &dsa_private),
                Item::new(tags::DATA, Value::bytes(b"m".to_vec())),
            ],
        )
        .await;
    refused_naming_setting(&b);
    let (st, v) = k.s.post("/v1/keys/rest-3des/rotate", json!({})).await;
    assert_eq!(st, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("allow_legacy_algorithms"), "{v}");
    let rest_3des = made["id"].as_str().unwrap().to_string();
    let recs = records_since(&k.s, &mut after).await;
    for (op_name, key) in [
        ("Encrypt", &chacha),
        ("GenerateMac", &aes_mac),
        ("ExportKey", &des3),
        ("Sign", &dsa_private),
        ("RotateKey", &rest_3des),
    ] {
        assert!(
            recs.iter().any(|e| e.operation == op_name
                && e.key_id.map(|i| i.to_string()).as_deref() == Some(key.as_str())
                && e.outcome != "ok"
                && serde_json::Value::Object(e.detail.clone())
                    .to_string()
                    .contains("allow_legacy_algorithms")),
            "{op_name}: {recs:?}"
        );
    }
    // The AES key still encrypts: only its HMAC is legacy.
    ok_payload(
        &c.op(
            V21,
            op::ENCRYPT,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &aes_mac),
                gcm_parameters(),
                Item::new(tags::DATA, Value::bytes(b"x".to_vec())),
            ],
        )
        .await,
    );
    k.s.shutdown().await;
}

/// A KMIP Create Key Pair request for RSA of `bits`, with the private and public halves'
/// usage masks.
fn rsa_pair(bits: i32, private: u32, public: u32) -> Vec<Item> {
    let usage = |tag, m: u32| {
        Item::structure(
            tag,
            vec![Item::int_item(tags::CRYPTOGRAPHIC_USAGE_MASK, m as i32)],
        )
    };
    vec![
        Item::structure(
            tags::COMMON_ATTRIBUTES,
            vec![
                Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::RSA),
                Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, bits),
            ],
        ),
        usage(tags::PRIVATE_KEY_ATTRIBUTES, private),
        usage(tags::PUBLIC_KEY_ATTRIBUTES, public),
    ]
}

/// The private and public key ids of a Create Key Pair answer.
fn pair_ids(b: &Item) -> (String, String) {
    let p = ok_payload(b);
    let text = |t| p.req(t).unwrap().text().unwrap().to_owned();
    (
        text(tags::PRIVATE_KEY_UNIQUE_IDENTIFIER),
        text(tags::PUBLIC_KEY_UNIQUE_IDENTIFIER),
    )
}

/// Issue 21's legacy algorithms: RSA-1024 keys and RSA-PSS with SHA-1 are refused in a
/// tenant whose `allow_legacy_algorithms` is off (the default), naming the setting, and
/// the refusals are audited; once the tenant allows them they work (an RSA-1024 key signs
/// with PSS over SHA-1, and verifies it), and when it stops, its RSA-1024 key is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_algorithms_follow_the_tenant_setting() {
    use arca_kmip::enums::{hashing_algorithm as hash, padding_method as pad};
    let k = KmipServer::start().await;
    let mut after = 0;
    records_since(&k.s, &mut after).await;
    let pss_sha1 = || {
        Item::structure(
            tags::CRYPTOGRAPHIC_PARAMETERS,
            vec![
                Item::enum_item(tags::PADDING_METHOD, pad::PSS),
                Item::enum_item(tags::HASHING_ALGORITHM, hash::SHA_1),
            ],
        )
    };
    let sign = |id: &str| {
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, id),
            pss_sha1(),
            Item::new(tags::DATA, Value::bytes(b"legacy message".to_vec())),
        ]
    };

    // The default tenant does not allow legacy algorithms.
    let mut c = k.connect().await;
    let before = k.s.get("/v1/keys?limit=1000").await.1["keys"]
        .as_array()
        .unwrap()
        .len();
    let b = c
        .op(
            V21,
            op::CREATE_KEY_PAIR,
            rsa_pair(1024, mask::SIGN, mask::VERIFY),
        )
        .await;
    let (status, r, msg) = result(&b);
    assert_eq!(status, result_status::OPERATION_FAILED);
    assert_eq!(r, Some(reason::INVALID_FIELD), "{msg:?}");
    assert!(msg.unwrap().contains("allow_legacy_algorithms"));
    let after_refusal = k.s.get("/v1/keys?limit=1000").await.1["keys"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after_refusal, "nothing made");
    // Over REST too, where the spec is named.
    let (st, v) =
        k.s.post(
            "/v1/keys",
            json!({"name": "rsa-1024", "spec": "RSA_1024", "usage": ["SIGN_VERIFY"]}),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("allow_legacy_algorithms"), "{v}");
    // RSA-2048 is no legacy key, but a PSS signature with SHA-1 is a legacy algorithm.
    let (private, _) = pair_ids(
        &c.op(
            V21,
            op::CREATE_KEY_PAIR,
            rsa_pair(2048, mask::SIGN, mask::VERIFY),
        )
        .await,
    );
    ok_payload(
        &c.op(
            V21,
            op::ACTIVATE,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, &private)],
        )
        .await,
    );
    let b = c.op(V21, op::SIGN, sign(&private)).await;
    let (status, _, msg) = result(&b);
    assert_eq!(status, result_status::OPERATION_FAILED);
    assert!(msg.unwrap().contains("allow_legacy_algorithms"));
    // Each refusal is audited, naming the setting.
    let records = records_since(&k.s, &mut after).await;
    let refused: Vec<_> = records
        .iter()
        .filter(|r| {
            r.outcome != "ok"
                && serde_json::to_string(&r.detail)
                    .unwrap()
                    .contains("allow_legacy_algorithms")
        })
        .map(|r| (r.operation.as_str(), r.door.as_str()))
        .collect();
    assert!(refused.contains(&("CreateKey", "kmip")), "{records:#?}");
    assert!(refused.contains(&("CreateKey", "rest")), "{records:#?}");
    assert!(refused.contains(&("Sign", "kmip")), "{records:#?}");

    // Once the tenant allows them: RSA-1024 made, signing and verifying with PSS and SHA-1.
    let set_legacy = |on: bool| {
        let s = &k.s;
        async move {
            let (st, mut v) = s.get("/v1/tenant/settings").await;
            assert_eq!(st, reqwest::StatusCode::OK, "{v}");
            v["allow_legacy_algorithms"] = json!(on);
            let (st, v) = s
                .req(reqwest::Method::PUT, "/v1/tenant/settings", Some(v))
                .await;
            assert_eq!(st, reqwest::StatusCode::OK, "{v}");
        }
    };
    set_legacy(true).await;
    let (private, public) = pair_ids(
        &c.op(
            V21,
            op::CREATE_KEY_PAIR,
            rsa_pair(1024, mask::SIGN, mask::VERIFY),
        )
        .await,
    );
    for id in [&private, &public] {
        ok_payload(
            &c.op(
                V21,
                op::ACTIVATE,
                vec![Item::text_item(tags::UNIQUE_IDENTIFIER, id)],
            )
            .await,
        );
    }
    let attrs = ok_payload(
        &c.op(
            V21,
            op::GET_ATTRIBUTES,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &private),
                Item::enum_item(tags::ATTRIBUTE_REFERENCE, tags::CRYPTOGRAPHIC_LENGTH),
            ],
        )
        .await,
    );
    let length = attrs
        .req(tags::ATTRIBUTES)
        .unwrap()
        .req(tags::CRYPTOGRAPHIC_LENGTH)
        .unwrap()
        .integer()
        .unwrap();
    assert_eq!(length, 1024);
    let sig = ok_payload(&c.op(V21, op::SIGN, sign(&private)).await)
        .req(tags::SIGNATURE_DATA)
        .unwrap()
        .byte_string()
        .unwrap()
        .to_vec();
    assert_eq!(sig.len(), 128, "a 1024-bit signature");
    let verify = |data: &[u8]| {
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, &public),
            pss_sha1(),
            Item::new(tags::DATA, Value::bytes(data.to_vec())),
            Item::new(tags::SIGNATURE_DATA, Value::bytes(sig.clone())),
        ]
    };
    let valid = |b: &Item| {
        ok_payload(b)
            .req(tags::VALIDITY_INDICATOR)
            .unwrap()
            .enumeration()
            .unwrap()
    };
    use arca_kmip::enums::validity_indicator;
    assert_eq!(
        valid(
            &c.op(V21, op::SIGNATURE_VERIFY, verify(b"legacy message"))
                .await
        ),
        validity_indicator::VALID
    );
    assert_eq!(
        valid(
            &c.op(V21, op::SIGNATURE_VERIFY, verify(b"another message"))
                .await
        ),
        validity_indicator::INVALID
    );
    // When the tenant stops allowing them, the RSA-1024 key it made serves nothing.
    set_legacy(false).await;
    let b = c
        .op(
            V21,
            op::SIGN,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &private),
                Item::new(tags::DATA, Value::bytes(b"m".to_vec())),
            ],
        )
        .await;
    let (status, _, msg) = result(&b);
    assert_eq!(status, result_status::OPERATION_FAILED);
    assert!(msg.unwrap().contains("allow_legacy_algorithms"));
    k.s.shutdown().await;
}

/// RSA-OAEP with an MGF1 hash distinct from the label hash, and a label (KMIP's Mask
/// Generator Hashing Algorithm and P Source): Arca's ciphertext decrypts with an
/// independent implementation (the Python `cryptography` package) and the other way round,
/// and decrypting with another MGF1 hash or label fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oaep_with_a_distinct_mgf1_hash_and_a_label() {
    use arca_kmip::enums::{hashing_algorithm as hash, mask_generator, padding_method as pad};
    let python = std::env::var("ARCA_PYTHON").unwrap_or_else(|_| {
        panic!("ARCA_PYTHON is not set: run scripts/test, which makes the venv (with the cryptography package)")
    });
    let k = KmipServer::start().await;
    let mut c = k.connect().await;
    let (private, public) = pair_ids(
        &c.op(
            V21,
            op::CREATE_KEY_PAIR,
            rsa_pair(2048, mask::DECRYPT, mask::ENCRYPT),
        )
        .await,
    );
    for id in [&private, &public] {
        ok_payload(
            &c.op(
                V21,
                op::ACTIVATE,
                vec![Item::text_item(tags::UNIQUE_IDENTIFIER, id)],
            )
            .await,
        );
    }
    let label = b"Kilroy was here".to_vec();
    let params = |mgf1: u32, label: &[u8]| {
        Item::structure(
            tags::CRYPTOGRAPHIC_PARAMETERS,
            vec![
                Item::enum_item(tags::PADDING_METHOD, pad::OAEP),
                Item::enum_item(tags::HASHING_ALGORITHM, hash::SHA_384),
                Item::enum_item(tags::MASK_GENERATOR, mask_generator::MGF1),
                Item::enum_item(tags::MASK_GENERATOR_HASHING_ALGORITHM, mgf1),
                Item::new(tags::P_SOURCE, Value::bytes(label.to_vec())),
            ],
        )
    };
    let message = b"a data key, wrapped".to_vec();
    let ct = ok_payload(
        &c.op(
            V21,
            op::ENCRYPT,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &public),
                params(hash::SHA_256, &label),
                Item::new(tags::DATA, Value::bytes(message.clone())),
            ],
        )
        .await,
    )
    .req(tags::DATA)
    .unwrap()
    .byte_string()
    .unwrap()
    .to_vec();
    let decrypt = |mgf1: u32, label: &[u8], ct: &[u8]| {
        vec![
            Item::text_item(tags::UNIQUE_IDENTIFIER, &private),
            params(mgf1, label),
            Item::new(tags::DATA, Value::bytes(ct.to_vec())),
        ]
    };
    let p = ok_payload(
        &c.op(V21, op::DECRYPT, decrypt(hash::SHA_256, &label, &ct))
            .await,
    );
    assert_eq!(
        &p.req(tags::DATA).unwrap().byte_string().unwrap()[..],
        &message[..]
    );
    // Another MGF1 hash, or another label, does not decrypt it.
    for (mgf1, l) in [(hash::SHA_384, &label[..]), (hash::SHA_256, &b"other"[..])] {
        let b = c.op(V21, op::DECRYPT, decrypt(mgf1, l, &ct)).await;
        assert_eq!(result(&b).1, Some(reason::CRYPTOGRAPHIC_FAILURE));
    }

    // An independent implementation: the private key (PKCS#8) leaves through Get, and
    // Python's `cryptography` decrypts Arca's ciphertext and makes one Arca decrypts.
    let pkcs8 = ok_payload(
        &c.op(
            V21,
            op::GET,
            vec![
                Item::text_item(tags::UNIQUE_IDENTIFIER, &private),
                Item::enum_item(tags::KEY_FORMAT_TYPE, kft::PKCS_8),
            ],
        )
        .await,
    )
    .req(tags::PRIVATE_KEY)
    .unwrap()
    .req(tags::KEY_BLOCK)
    .unwrap()
    .req(tags::KEY_VALUE)
    .unwrap()
    .req(tags::KEY_MATERIAL)
    .unwrap()
    .byte_string()
    .unwrap()
    .to_vec();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let script = r#"
import sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
key = serialization.load_der_private_key(bytes.fromhex(sys.argv[1]), None)
oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA384(), label=bytes.fromhex(sys.argv[3]))
print(key.decrypt(bytes.fromhex(sys.argv[2]), oaep).hex())
print(key.public_key().encrypt(b"from python", oaep).hex())
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script, &hex(&pkcs8), &hex(&ct), &hex(&label)])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        hex(&message),
        "Python decrypts Arca's"
    );
    let theirs: Vec<u8> = {
        let h = lines.next().unwrap();
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect()
    };
    let p = ok_payload(
        &c.op(V21, op::DECRYPT, decrypt(hash::SHA_256, &label, &theirs))
            .await,
    );
    assert_eq!(
        &p.req(tags::DATA).unwrap().byte_string().unwrap()[..],
        b"from python"
    );
    k.s.shutdown().await;
}

/// The payload of a successful Get of `id`.
async fn get_payload(c: &mut KmipClient, v: ProtocolVersion, id: &str) -> Item {
    ok_payload(
        &c.op(
            v,
            op::GET,
            vec![Item::text_item(tags::UNIQUE_IDENTIFIER, id)],
        )
        .await,
    )
}

/// The Enumeration value of `item`'s child `tag` (which must be there).
fn enum_of(item: &Item, tag: u32) -> u32 {
    item.req(tag).unwrap().enumeration().unwrap()
}
