//! KMIP operations mapped onto the service's operations.
//!
//! Each operation reads its payload, calls the same service function the REST door calls
//! (so roles, key policies, tenants, lifecycle rules, approvals and audit all apply), and
//! writes the KMIP response payload. No rule about who may do what lives here; what lives
//! here is translation: attribute names to fields, KMIP states to Arca's, errors to Result
//! Reasons.

use arca_core::encoding::KeyEncoding;
use arca_core::model::DeactivationReason;
use arca_core::Error;
use arca_kmip::enums::{
    batch_error_continuation_option as continuation, key_format_type as kft, object_type,
    operation as op, query_function, result_reason as reason, revocation_reason_code,
};
use arca_kmip::message::{
    error_response, parse_request, response, Outcome, ProtocolVersion, RequestBatchItem,
    ResponseBatchItem,
};
use arca_kmip::{tags, Failure, Item, Value};
use arca_service::api::{
    CreateKeyRequest, ExportRequest, KeyInfo, ListKeysQuery, RandomRequest, Secret,
};
use arca_service::LifecycleAction;
use arca_service::{Caller, RequestMeta, Service};

use std::sync::atomic::Ordering;

use super::attrs::{self, Attr, Extras};
use super::Peer;

/// The versions Arca speaks, in order of preference (Discover Versions answers in it).
pub const VERSIONS: [ProtocolVersion; 7] = [
    ProtocolVersion::new(2, 1),
    ProtocolVersion::new(2, 0),
    ProtocolVersion::new(1, 4),
    ProtocolVersion::new(1, 3),
    ProtocolVersion::new(1, 2),
    ProtocolVersion::new(1, 1),
    ProtocolVersion::new(1, 0),
];

/// The operations this door performs: Query answers with them, and `dispatch` performs no
/// other.
pub const OPERATIONS: &[u32] = &[
    op::DISCOVER_VERSIONS,
    op::QUERY,
    op::CREATE,
    op::REGISTER,
    op::GET,
    op::GET_ATTRIBUTES,
    op::GET_ATTRIBUTE_LIST,
    op::LOCATE,
    op::ACTIVATE,
    op::REVOKE,
    op::DESTROY,
    op::ARCHIVE,
    op::RECOVER,
    op::CHECK,
    op::ADD_ATTRIBUTE,
    op::MODIFY_ATTRIBUTE,
    op::DELETE_ATTRIBUTE,
    op::SET_ATTRIBUTE,
    op::RNG_RETRIEVE,
    op::ENCRYPT,
    op::DECRYPT,
    op::SIGN,
    op::SIGNATURE_VERIFY,
    op::MAC,
    op::MAC_VERIFY,
    op::CREATE_KEY_PAIR,
    op::REKEY,
    op::REKEY_KEY_PAIR,
    op::INTEROP,
    op::LOG,
];

/// The object types this door manages.
pub const OBJECT_TYPES: &[u32] = &[
    object_type::SYMMETRIC_KEY,
    object_type::PRIVATE_KEY,
    object_type::PUBLIC_KEY,
    object_type::SECRET_DATA,
    object_type::OPAQUE_DATA,
];

/// Handles one decoded request message and returns the response message. Every failure
/// that no service operation recorded (a message that is no request, a protocol version
/// Arca does not speak, a batch item the door refused itself) is recorded here, naming the
/// principal of the client's certificate when it is bound to one.
pub async fn handle(svc: &Service, meta: RequestMeta, peer: &Peer, msg: &Item) -> Item {
    let now = svc.now().timestamp();
    let req = match parse_request(msg) {
        Ok(r) => r,
        Err(e) => {
            let principal = peer.principal(svc, &meta).await;
            super::audit_refusal(
                svc,
                &meta,
                principal.as_deref(),
                None,
                Some(e.version),
                &e.failure,
            )
            .await;
            return error_response(now, &e);
        }
    };
    let version = req.header.version;
    let only_discovery = req
        .items
        .iter()
        .all(|i| i.operation == op::DISCOVER_VERSIONS);
    // Discover Versions is how a client finds a version to speak: it is answered whatever
    // version it was sent in.
    if !VERSIONS.contains(&version) && !only_discovery {
        let e = arca_kmip::message::RequestError {
            version: VERSIONS[0],
            failure: Failure::new(
                reason::UNSUPPORTED_PROTOCOL_VERSION,
                format!("protocol version {version} is not supported; Arca speaks KMIP 1.0-1.4, 2.0 and 2.1"),
            ),
        };
        let principal = peer.principal(svc, &meta).await;
        super::audit_refusal(
            svc,
            &meta,
            principal.as_deref(),
            req.items.first().map(|i| i.operation),
            Some(version),
            &e.failure,
        )
        .await;
        return error_response(now, &e);
    }
    // The same flag as the caller's meta: it tells, item by item, whether the service
    // recorded the item.
    let audited = meta.audited.clone();
    let caller = match svc.authenticate_certificate(meta).await {
        Ok(c) => c,
        Err(e) => {
            // The service recorded the failed authentication.
            let items = req
                .items
                .iter()
                .map(|i| ResponseBatchItem {
                    operation: Some(i.operation),
                    id: i.id.clone(),
                    outcome: Outcome::Failed(Failure::new(
                        reason::AUTHENTICATION_NOT_SUCCESSFUL,
                        e.to_string(),
                    )),
                })
                .collect();
            return response(version, now, items);
        }
    };
    peer.remember(&caller.principal);
    let mut ctx = Ctx {
        svc,
        caller: Some(caller),
        version,
        placeholder: None,
    };
    let keep_going = req.header.batch_error_continuation == Some(continuation::CONTINUE);
    let mut out = Vec::with_capacity(req.items.len());
    let mut any_recorded = false;
    for item in &req.items {
        audited.store(false, Ordering::Relaxed);
        let r = ctx.dispatch(item).await;
        let recorded = audited.load(Ordering::Relaxed);
        any_recorded |= recorded;
        if let (Err(f), false) = (&r, recorded) {
            if let Some(c) = &ctx.caller {
                super::audit_refusal(
                    svc,
                    &c.meta,
                    Some(&c.principal),
                    Some(item.operation),
                    Some(version),
                    f,
                )
                .await;
                any_recorded = true;
            }
        }
        let failed = r.is_err();
        out.push(ResponseBatchItem {
            operation: Some(item.operation),
            id: item.id.clone(),
            outcome: match r {
                Ok(p) => Outcome::Success(Some(p)),
                Err(f) => Outcome::Failed(f),
            },
        });
        if failed && !keep_going {
            // Stop (the default): the items after a failure are not performed.
            break;
        }
    }
    audited.store(any_recorded, Ordering::Relaxed);
    response(version, now, out)
}

/// Maps a service error to a KMIP Result Reason, keeping its message.
pub fn failure(e: Error) -> Failure {
    let r = match &e {
        // 2.x names it Object Not Found; 1.x clients get Item Not Found.
        Error::NotFound { .. } => reason::OBJECT_NOT_FOUND,
        Error::Unprocessable { field, .. } if field.as_deref() == Some("usage") => {
            reason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK
        }
        Error::InvalidInput { .. } | Error::Unprocessable { .. } => reason::INVALID_FIELD,
        Error::WrongState { state, .. } if state.is_destroyed() => reason::OBJECT_DESTROYED,
        // KMIP's Destroy is immediate: an object waiting out Arca's destruction period is
        // Destroyed to a KMIP client.
        Error::WrongState {
            detail: Some(d), ..
        } if d == arca_core::lifecycle::PENDING_DESTRUCTION => reason::OBJECT_DESTROYED,
        Error::WrongState { .. } => reason::WRONG_KEY_LIFECYCLE_STATE,
        Error::Conflict { .. } => reason::GENERAL_FAILURE,
        Error::Unauthenticated { .. } => reason::AUTHENTICATION_NOT_SUCCESSFUL,
        Error::NotPermitted { .. } | Error::NeedsApproval { .. } => reason::PERMISSION_DENIED,
        Error::RateLimited { .. } => reason::SERVER_LIMIT_EXCEEDED,
        Error::Sealed | Error::Unavailable { .. } | Error::Internal { .. } => {
            reason::GENERAL_FAILURE
        }
    };
    Failure::new(r, e.to_string())
}

/// Runs a request builder that speaks KMIP's failures inside a service call that speaks
/// Arca's errors: the failure is kept aside (so the client gets its exact result reason)
/// and the service refuses, and audits, the operation as invalid input.
pub(super) struct Kept(pub(super) Option<Failure>);

impl Kept {
    pub(super) fn wrap<T>(&mut self, r: Result<T, Failure>) -> arca_core::Result<T> {
        r.map_err(|f| {
            let e = Error::invalid("cryptographic_parameters", f.message.clone());
            self.0 = Some(f);
            e
        })
    }

    /// The kept failure if there is one, else the service's error mapped by `map`.
    pub(super) fn or(self, e: Error, map: impl FnOnce(Error) -> Failure) -> Failure {
        self.0.unwrap_or_else(|| map(e))
    }
}

pub(super) struct Ctx<'a> {
    pub(super) svc: &'a Service,
    pub(super) caller: Option<Caller>,
    pub(super) version: ProtocolVersion,
    /// The ID Placeholder: the object the previous item of the batch made or found, used
    /// by items that name none.
    pub(super) placeholder: Option<String>,
}

pub(super) type OpResult = Result<Item, Failure>;

pub(super) fn payload(items: Vec<Item>) -> Item {
    Item::structure(tags::RESPONSE_PAYLOAD, items)
}

pub(super) fn uid_item(id: &str) -> Item {
    Item::text_item(tags::UNIQUE_IDENTIFIER, id)
}

impl Ctx<'_> {
    pub(super) fn caller(&self) -> Result<&Caller, Failure> {
        self.caller.as_ref().ok_or_else(|| {
            Failure::new(
                reason::AUTHENTICATION_NOT_SUCCESSFUL,
                "no authenticated principal",
            )
        })
    }

    async fn dispatch(&mut self, item: &RequestBatchItem) -> OpResult {
        let p = &item.payload;
        // OPERATIONS is the door's one account of what it performs: Query answers with it,
        // and an operation missing from it is not performed, whatever arm below would take
        // it. The access matrix (tests/e2e_kmip.rs) asks Query and fails on any operation
        // it has no row for.
        if !OPERATIONS.contains(&item.operation) {
            return Err(not_supported(item.operation));
        }
        match item.operation {
            op::DISCOVER_VERSIONS => {
                self.svc
                    .discover_versions(self.caller()?)
                    .await
                    .map_err(failure)?;
                Ok(discover_versions(p))
            }
            op::QUERY => self.query(p).await,
            op::CREATE => self.create(p).await,
            op::REGISTER => self.register(p).await,
            op::GET => self.get(p).await,
            op::GET_ATTRIBUTES => self.get_attributes(p).await,
            op::GET_ATTRIBUTE_LIST => self.get_attribute_list(p).await,
            op::LOCATE => self.locate(p).await,
            op::ACTIVATE => self.activate(p).await,
            op::REVOKE => self.revoke(p).await,
            op::DESTROY => self.simple_move(p, LifecycleAction::Destroy).await,
            op::ARCHIVE => self.simple_move(p, LifecycleAction::Archive).await,
            op::RECOVER => self.simple_move(p, LifecycleAction::Recover).await,
            op::CHECK => self.check(p).await,
            op::ADD_ATTRIBUTE => self.edit_attribute(p, Edit::Add).await,
            op::MODIFY_ATTRIBUTE => self.edit_attribute(p, Edit::Modify).await,
            op::SET_ATTRIBUTE => self.edit_attribute(p, Edit::Set).await,
            op::DELETE_ATTRIBUTE => self.edit_attribute(p, Edit::Delete).await,
            op::RNG_RETRIEVE => self.rng_retrieve(p).await,
            op::CREATE_KEY_PAIR => self.create_key_pair(p).await,
            op::REKEY => self.rekey(p).await,
            op::REKEY_KEY_PAIR => self.rekey_key_pair(p).await,
            op::ENCRYPT => self.encrypt(p).await,
            op::DECRYPT => self.decrypt(p).await,
            op::SIGN => self.sign(p).await,
            op::SIGNATURE_VERIFY => self.signature_verify(p).await,
            op::MAC => self.mac(p).await,
            op::MAC_VERIFY => self.mac_verify(p).await,
            op::INTEROP => {
                // The conformance harness brackets each test case with Interop Begin/End;
                // there is no server state to reset between them.
                let f = p.req(tags::INTEROP_FUNCTION)?.enumeration()?;
                self.svc
                    .interop(self.caller()?, f as i64)
                    .await
                    .map_err(failure)?;
                Ok(payload(vec![]))
            }
            op::LOG => {
                let m = p.req(tags::LOG_MESSAGE)?.text()?;
                self.svc
                    .client_log(self.caller()?, m)
                    .await
                    .map_err(failure)?;
                Ok(payload(vec![]))
            }
            other => Err(not_supported(other)),
        }
    }

    /// The Unique Identifier the payload names, or the ID Placeholder.
    pub(super) fn target(&self, p: &Item) -> Result<String, Failure> {
        match p.child(tags::UNIQUE_IDENTIFIER) {
            Some(i) => Ok(i.text()?.to_owned()),
            None => self.placeholder.clone().ok_or_else(|| {
                Failure::invalid_message(
                    "UniqueIdentifier is missing and no earlier batch item set the ID Placeholder",
                )
            }),
        }
    }

    async fn query(&self, p: &Item) -> OpResult {
        self.svc
            .query_server(self.caller()?)
            .await
            .map_err(failure)?;
        let mut out = Vec::new();
        for f in p.children_with(tags::QUERY_FUNCTION) {
            match f.enumeration()? {
                query_function::QUERY_OPERATIONS => out.extend(
                    OPERATIONS
                        .iter()
                        .filter(|o| **o <= last_operation(self.version))
                        .map(|o| Item::enum_item(tags::OPERATION, *o)),
                ),
                query_function::QUERY_OBJECTS => out.extend(
                    OBJECT_TYPES
                        .iter()
                        .map(|o| Item::enum_item(tags::OBJECT_TYPE, *o)),
                ),
                query_function::QUERY_SERVER_INFORMATION => {
                    out.push(Item::text_item(tags::VENDOR_IDENTIFICATION, "Arca"));
                    out.push(Item::structure(
                        tags::SERVER_INFORMATION,
                        vec![Item::text_item(
                            tags::SERVER_NAME,
                            format!("Arca KMS {}", env!("CARGO_PKG_VERSION")),
                        )],
                    ));
                }
                // Functions Arca has nothing to say for are answered with nothing.
                _ => {}
            }
        }
        Ok(payload(out))
    }

    async fn create(&mut self, p: &Item) -> OpResult {
        let caller = self.caller()?;
        let ot = p.req(tags::OBJECT_TYPE)?.enumeration()?;
        if ot != object_type::SYMMETRIC_KEY {
            return Err(Failure::new(
                reason::INVALID_FIELD,
                "Create makes symmetric keys; use Create Key Pair for key pairs",
            ));
        }
        let attrs = attrs::group(
            p.child(tags::TEMPLATE_ATTRIBUTE)
                .or(p.child(tags::ATTRIBUTES)),
        )?;
        let alg = attrs::find(&attrs, tags::CRYPTOGRAPHIC_ALGORITHM)
            .ok_or_else(|| Failure::invalid_field("CryptographicAlgorithm is required"))?
            .enumeration()?;
        let len = attrs::find(&attrs, tags::CRYPTOGRAPHIC_LENGTH)
            .map(Item::integer)
            .transpose()?;
        let spec = attrs::spec_of(alg, len)?;
        if spec.is_asymmetric() {
            return Err(Failure::invalid_field(
                "Create makes symmetric keys; use Create Key Pair for key pairs",
            ));
        }
        let req = self.key_request(spec, &attrs, None, None)?;
        let info = self
            .svc
            .create_key(caller, req)
            .await
            .map_err(creation_failure)?;
        let id = info.id.to_string();
        self.placeholder = Some(id.clone());
        Ok(payload(vec![
            Item::enum_item(tags::OBJECT_TYPE, ot),
            uid_item(&id),
        ]))
    }

    async fn register(&mut self, p: &Item) -> OpResult {
        self.caller()?;
        let ot = p.req(tags::OBJECT_TYPE)?.enumeration()?;
        if matches!(ot, object_type::SECRET_DATA | object_type::OPAQUE_DATA) {
            return self.register_secret(p, ot).await;
        }
        let object_tag = match ot {
            object_type::SYMMETRIC_KEY => tags::SYMMETRIC_KEY,
            object_type::PRIVATE_KEY => tags::PRIVATE_KEY,
            object_type::PUBLIC_KEY => tags::PUBLIC_KEY,
            other => {
                let name = arca_kmip::enum_name(object_type::ALL, other).unwrap_or("?");
                return Err(Failure::new(
                    reason::INVALID_FIELD,
                    format!("Register of a {name} is not supported (symmetric, private and public keys, secret data and opaque objects are)"),
                ));
            }
        };
        let attrs = attrs::group(
            p.child(tags::TEMPLATE_ATTRIBUTE)
                .or(p.child(tags::ATTRIBUTES)),
        )?;
        let block = p.req(object_tag)?.req(tags::KEY_BLOCK)?;
        let format = block.req(tags::KEY_FORMAT_TYPE)?.enumeration()?;
        let unwrapped;
        let value = match block.child(tags::KEY_WRAPPING_DATA) {
            None => block.req(tags::KEY_VALUE)?,
            Some(kwd) => {
                unwrapped = self
                    .unwrap_key_value(kwd, block.req(tags::KEY_VALUE)?)
                    .await?;
                &unwrapped
            }
        };
        // PKCS#1 material is handed to the service as it is, naming its form: the service
        // converts it to the PKCS#8 or SPKI it keeps.
        let (material, encoding) = match (ot, format) {
            (object_type::SYMMETRIC_KEY, kft::RAW) => {
                (value.req(tags::KEY_MATERIAL)?.byte_string()?.clone(), None)
            }
            (object_type::SYMMETRIC_KEY, kft::TRANSPARENT_SYMMETRIC_KEY) => (
                value
                    .req(tags::KEY_MATERIAL)?
                    .req(tags::KEY)?
                    .byte_string()?
                    .clone(),
                None,
            ),
            (object_type::PRIVATE_KEY, kft::PKCS_8) | (object_type::PUBLIC_KEY, kft::X_509) => {
                (value.req(tags::KEY_MATERIAL)?.byte_string()?.clone(), None)
            }
            (object_type::PRIVATE_KEY, kft::PKCS_1) => (
                value.req(tags::KEY_MATERIAL)?.byte_string()?.clone(),
                Some(KeyEncoding::Pkcs1Private),
            ),
            (object_type::PUBLIC_KEY, kft::PKCS_1) => (
                value.req(tags::KEY_MATERIAL)?.byte_string()?.clone(),
                Some(KeyEncoding::Pkcs1Public),
            ),
            _ => {
                let name = arca_kmip::enum_name(kft::ALL, format).unwrap_or("?");
                return Err(Failure::new(
                    reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                    format!("KeyFormatType {name} is not accepted for this object type: symmetric keys are Raw or TransparentSymmetricKey, private keys PKCS_8 or PKCS_1, public keys X_509 (SubjectPublicKeyInfo) or PKCS_1"),
                ));
            }
        };
        let alg = attrs::find(&attrs, tags::CRYPTOGRAPHIC_ALGORITHM)
            .or(block.child(tags::CRYPTOGRAPHIC_ALGORITHM))
            .ok_or_else(|| Failure::invalid_field("CryptographicAlgorithm is required"))?
            .enumeration()?;
        let len = match attrs::find(&attrs, tags::CRYPTOGRAPHIC_LENGTH)
            .or(block.child(tags::CRYPTOGRAPHIC_LENGTH))
        {
            Some(l) => Some(l.integer()?),
            None if ot == object_type::SYMMETRIC_KEY => Some(material.len() as i32 * 8),
            None => None,
        };
        let spec = attrs::spec_of(alg, len)?;
        if let Some(n) = spec.symmetric_len() {
            if n != material.len() {
                return Err(Failure::invalid_field(format!(
                    "the key material is {} bytes but the attributes say {} bits",
                    material.len(),
                    n * 8
                )));
            }
        }
        let kind = (ot == object_type::PUBLIC_KEY).then(|| "PublicKey".to_owned());
        let mut req = self.key_request(spec, &attrs, Some(Secret::new(material)), kind)?;
        req.material_encoding = encoding;
        if let Some(meta) = req.meta.take() {
            let mut extras = Extras::of_meta(&meta);
            extras.key_format = Some(format);
            req.meta = Some(extras.into_meta(&meta));
        }
        self.create_answering_id(req).await
    }

    /// The Key Value of a wrapped Key Block, unwrapped by the service with the named Arca
    /// key (bring your own key over KMIP: wrap under an Arca AES or RSA key, Register).
    async fn unwrap_key_value(&mut self, kwd: &Item, value: &Item) -> Result<Item, Failure> {
        let w = wrapping_of(kwd)?;
        // The wrapped bytes: the Key Value itself (a Byte String), or its Key Material.
        let wrapped = match value.child(tags::KEY_MATERIAL) {
            Some(m) => m.byte_string()?.to_vec(),
            None => value.byte_string()?.to_vec(),
        };
        let clear = self
            .svc
            .unwrap_for_import(self.caller()?, &w.key, w.cipher, &wrapped)
            .await
            .map_err(failure)?;
        if w.ttlv {
            arca_kmip::decode(&clear, &arca_kmip::Limits::default())
                .ok()
                .filter(|i| i.tag == tags::KEY_VALUE)
                .ok_or_else(|| {
                    Failure::invalid_field("the unwrapped bytes are not a TTLV Key Value")
                })
        } else {
            Ok(Item::structure(
                tags::KEY_VALUE,
                vec![Item::new(tags::KEY_MATERIAL, Value::bytes(clear.to_vec()))],
            ))
        }
    }

    /// Register of Secret Data (a Key Block of raw bytes with a Secret Data Type) or of an
    /// Opaque Object (an Opaque Data Type and value): both are kept as `SECRET_DATA` keys.
    async fn register_secret(&mut self, p: &Item, ot: u32) -> OpResult {
        self.caller()?;
        let attrs = attrs::group(
            p.child(tags::TEMPLATE_ATTRIBUTE)
                .or(p.child(tags::ATTRIBUTES)),
        )?;
        let (material, kind) = if ot == object_type::SECRET_DATA {
            let sd = p.req(tags::SECRET_DATA)?;
            let block = sd.req(tags::KEY_BLOCK)?;
            if block.child(tags::KEY_WRAPPING_DATA).is_some() {
                return Err(Failure::new(
                    reason::KEY_WRAP_TYPE_NOT_SUPPORTED,
                    "registering wrapped secret data is not supported",
                ));
            }
            let format = block.req(tags::KEY_FORMAT_TYPE)?.enumeration()?;
            if !matches!(format, kft::RAW | kft::OPAQUE) {
                return Err(Failure::new(
                    reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                    "secret data is Raw or Opaque",
                ));
            }
            let bytes = block
                .req(tags::KEY_VALUE)?
                .req(tags::KEY_MATERIAL)?
                .byte_string()?
                .clone();
            (
                bytes,
                (
                    Some(sd.req(tags::SECRET_DATA_TYPE)?.enumeration()?),
                    None,
                    Some(format),
                ),
            )
        } else {
            let oo = p.req(tags::OPAQUE_OBJECT)?;
            let bytes = oo.req(tags::OPAQUE_DATA_VALUE)?.byte_string()?.clone();
            (
                bytes,
                (
                    None,
                    Some(oo.req(tags::OPAQUE_DATA_TYPE)?.enumeration()?),
                    None,
                ),
            )
        };
        let name = arca_kmip::enum_name(object_type::ALL, ot).unwrap_or("SecretData");
        let mut req = self.key_request(
            arca_core::model::KeySpec::SecretData,
            &attrs,
            Some(Secret::new(material)),
            Some(name.to_owned()),
        )?;
        if let Some(meta) = req.meta.take() {
            let mut extras = Extras::of_meta(&meta);
            (
                extras.secret_data_type,
                extras.opaque_data_type,
                extras.key_format,
            ) = kind;
            // A usage mask that names encryption is kept as given; secret data is used
            // for nothing inside Arca whatever it says.
            req.usage = None;
            req.meta = Some(extras.into_meta(&meta));
        }
        self.create_answering_id(req).await
    }

    /// Creates the key and answers with its Unique Identifier (Register's answer), which
    /// becomes the ID Placeholder.
    async fn create_answering_id(&mut self, req: CreateKeyRequest) -> OpResult {
        let encoding = req.material_encoding;
        let info = self
            .svc
            .create_key(self.caller()?, req)
            .await
            .map_err(|e| match (e.field(), encoding) {
                // Material the service could not read in the form it was named.
                (Some("material_encoding"), Some(KeyEncoding::Pkcs1Public)) => {
                    Failure::invalid_field("KeyMaterial is not a PKCS#1 RSAPublicKey")
                }
                (Some("material_encoding"), _) => {
                    Failure::invalid_field("KeyMaterial is not a PKCS#1 RSAPrivateKey")
                }
                _ => creation_failure(e),
            })?;
        let id = info.id.to_string();
        self.placeholder = Some(id.clone());
        Ok(payload(vec![uid_item(&id)]))
    }

    /// The service request for a new key from KMIP attributes.
    pub(super) fn key_request(
        &self,
        spec: arca_core::model::KeySpec,
        attrs: &[Attr],
        material: Option<Secret>,
        object_type: Option<String>,
    ) -> Result<CreateKeyRequest, Failure> {
        let mut extras = Extras {
            object_type,
            ..Default::default()
        };
        let mut req = CreateKeyRequest {
            spec: Some(spec),
            material,
            // KMIP's default: an object is extractable unless the client says otherwise.
            extractable: true,
            // KMIP creates objects Pre-Active unless an activation date has come.
            pre_active: true,
            // KMIP clients keep their own IVs and modes (CBC, ECB, CTR): a symmetric key
            // made here is a raw-use key, which never serves Arca's ciphertexts, AWS or XKS.
            raw_cipher_modes: spec.family() == arca_core::model::KeyFamily::Aes,
            ..Default::default()
        };
        let date = |i: &Item| -> Result<chrono::DateTime<chrono::Utc>, Failure> {
            let t = i.date_time()?;
            chrono::DateTime::from_timestamp(t, 0)
                .ok_or_else(|| Failure::invalid_field("date out of range"))
        };
        for a in attrs {
            let Attr::Std(i) = a else {
                extras.push_other(a);
                continue;
            };
            match i.tag {
                tags::CRYPTOGRAPHIC_ALGORITHM | tags::CRYPTOGRAPHIC_LENGTH => {}
                tags::CRYPTOGRAPHIC_USAGE_MASK => {
                    let m = i.integer()?;
                    extras.usage_mask = Some(m);
                    req.usage = Some(attrs::usages_from_mask(m, spec)?);
                }
                tags::NAME => {
                    let n = i.req(tags::NAME_VALUE)?.text()?;
                    extras.names.push(n.to_owned());
                }
                tags::ACTIVATION_DATE => {
                    let t = date(i)?;
                    req.pre_active = false;
                    req.activation_date = Some(t);
                }
                tags::PROTECT_STOP_DATE => req.protect_stop_date = Some(date(i)?),
                tags::PROCESS_START_DATE => req.process_start_date = Some(date(i)?),
                tags::DEACTIVATION_DATE => req.deactivation_date = Some(date(i)?),
                tags::EXTRACTABLE => req.extractable = i.boolean()?,
                tags::SENSITIVE => {
                    if i.boolean()? {
                        req.extractable = false;
                    }
                }
                tags::UNIQUE_IDENTIFIER
                | tags::STATE
                | tags::INITIAL_DATE
                | tags::LAST_CHANGE_DATE
                | tags::DIGEST
                | tags::DESTROY_DATE
                | tags::COMPROMISE_DATE
                | tags::ALWAYS_SENSITIVE
                | tags::NEVER_EXTRACTABLE
                | tags::FRESH
                | tags::OBJECT_TYPE => {
                    return Err(Failure::new(
                        reason::ATTRIBUTE_READ_ONLY,
                        format!("{} is set by the server", attrs::spaced_name(i.tag)),
                    ))
                }
                _ => extras.push_other(a),
            }
        }
        req.name = match extras.names.first() {
            Some(n) if arca_core::names::validate_name("name", n).is_ok() => n.clone(),
            _ => format!("kmip-{}", uuid::Uuid::new_v4().simple()),
        };
        req.meta = Some(extras.into_meta(&serde_json::Value::Null));
        Ok(req)
    }

    pub(super) async fn describe(&self, id: &str) -> Result<KeyInfo, Failure> {
        self.svc
            .describe_key(self.caller()?, id)
            .await
            .map_err(failure)
    }

    /// [`Ctx::describe`] from the key cache, before a use of the key (the use itself reads
    /// the same cache).
    pub(super) async fn describe_for_use(&self, id: &str) -> Result<KeyInfo, Failure> {
        self.svc
            .describe_key_cached(self.caller()?, id)
            .await
            .map_err(failure)
    }

    async fn get(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        let info = self.describe_for_use(&id).await?;
        let extras = Extras::of(&info);
        let ot = attrs::object_type_of(&info, &extras);
        let wanted = p
            .child(tags::KEY_FORMAT_TYPE)
            .map(Item::enumeration)
            .transpose()?
            .or(extras.key_format)
            .or(Some(attrs::default_format(info.spec, ot)));
        if let Some(spec) = p.child(tags::KEY_WRAPPING_SPECIFICATION) {
            return self.get_wrapped(&id, &info, ot, spec).await;
        }
        // PKCS#1 is asked of the service, which converts what it keeps (PKCS#8, SPKI).
        let encoding = match (ot, wanted) {
            (object_type::PRIVATE_KEY, Some(kft::PKCS_1)) => Some(KeyEncoding::Pkcs1Private),
            (object_type::PUBLIC_KEY, Some(kft::PKCS_1)) => Some(KeyEncoding::Pkcs1Public),
            _ => None,
        };
        let exported = self
            .svc
            .export_key(
                self.caller()?,
                &id,
                ExportRequest {
                    key_version: None,
                    encoding,
                },
            )
            .await
            .map_err(|e| match (&e, e.field()) {
                // The key is not RSA, or not kept in the form PKCS#1 asks of it.
                (Error::Unprocessable { .. }, Some("encoding")) => Failure::new(
                    reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                    "PKCS_1 is for RSA keys",
                ),
                (_, Some("encoding")) => Failure::new(
                    reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                    "KeyFormatType PKCS_1 is not offered for this object",
                ),
                _ => failure(e),
            })?;
        if ot == object_type::OPAQUE_DATA {
            return self.object_answer(
                ot,
                &id,
                vec![
                    Item::enum_item(
                        tags::OPAQUE_DATA_TYPE,
                        extras.opaque_data_type.unwrap_or(0x8000_0000),
                    ),
                    Item::new(
                        tags::OPAQUE_DATA_VALUE,
                        Value::ByteString(exported.material.0.clone()),
                    ),
                ],
            );
        }
        if ot == object_type::SECRET_DATA {
            let format = match wanted {
                None => kft::OPAQUE,
                Some(f @ (kft::RAW | kft::OPAQUE)) => f,
                Some(_) => {
                    return Err(Failure::new(
                        reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                        "secret data is Raw or Opaque",
                    ))
                }
            };
            return self.object_answer(
                ot,
                &id,
                vec![
                    Item::enum_item(
                        tags::SECRET_DATA_TYPE,
                        extras
                            .secret_data_type
                            .unwrap_or(arca_kmip::enums::secret_data_type::SEED),
                    ),
                    Item::structure(
                        tags::KEY_BLOCK,
                        vec![
                            Item::enum_item(tags::KEY_FORMAT_TYPE, format),
                            Item::structure(
                                tags::KEY_VALUE,
                                vec![Item::new(
                                    tags::KEY_MATERIAL,
                                    Value::ByteString(exported.material.0.clone()),
                                )],
                            ),
                        ],
                    ),
                ],
            );
        }
        let (format, value) = match (ot, wanted) {
            (object_type::SYMMETRIC_KEY, None | Some(kft::RAW)) => (
                kft::RAW,
                Item::new(
                    tags::KEY_MATERIAL,
                    Value::ByteString(exported.material.0.clone()),
                ),
            ),
            (object_type::SYMMETRIC_KEY, Some(kft::TRANSPARENT_SYMMETRIC_KEY)) => (
                kft::TRANSPARENT_SYMMETRIC_KEY,
                Item::structure(
                    tags::KEY_MATERIAL,
                    vec![Item::new(
                        tags::KEY,
                        Value::ByteString(exported.material.0.clone()),
                    )],
                ),
            ),
            (object_type::PRIVATE_KEY, None | Some(kft::PKCS_8))
                if exported.format == KeyEncoding::Pkcs8 =>
            {
                (
                    kft::PKCS_8,
                    Item::new(
                        tags::KEY_MATERIAL,
                        Value::ByteString(exported.material.0.clone()),
                    ),
                )
            }
            (object_type::PUBLIC_KEY, None | Some(kft::X_509))
                if exported.format == KeyEncoding::Spki =>
            {
                (
                    kft::X_509,
                    Item::new(
                        tags::KEY_MATERIAL,
                        Value::ByteString(exported.material.0.clone()),
                    ),
                )
            }
            (object_type::PRIVATE_KEY, Some(kft::PKCS_1))
                if exported.format == KeyEncoding::Pkcs1Private =>
            {
                (
                    kft::PKCS_1,
                    Item::new(
                        tags::KEY_MATERIAL,
                        Value::ByteString(exported.material.0.clone()),
                    ),
                )
            }
            (object_type::PUBLIC_KEY, Some(kft::PKCS_1))
                if exported.format == KeyEncoding::Pkcs1Public =>
            {
                (
                    kft::PKCS_1,
                    Item::new(
                        tags::KEY_MATERIAL,
                        Value::ByteString(exported.material.0.clone()),
                    ),
                )
            }
            (_, Some(f)) => {
                let name = arca_kmip::enum_name(kft::ALL, f).unwrap_or("?");
                return Err(Failure::new(
                    reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                    format!("KeyFormatType {name} is not offered for this object"),
                ));
            }
            _ => {
                return Err(Failure::new(
                    reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                    format!(
                        "key material in {} cannot be returned as this object type",
                        exported.format
                    ),
                ))
            }
        };
        let mut fields = vec![
            Item::enum_item(tags::KEY_FORMAT_TYPE, format),
            Item::structure(tags::KEY_VALUE, vec![value]),
        ];
        if let Some((alg, len)) = attrs::algorithm_of(info.spec) {
            fields.push(Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg));
            fields.push(Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, len));
        }
        let block = Item::structure(tags::KEY_BLOCK, fields);
        self.object_answer(ot, &id, vec![block])
    }

    /// Get's answer: the object type, the id (which becomes the ID Placeholder) and the
    /// object's structure (Symmetric Key, Private Key, Secret Data...) with `fields`.
    fn object_answer(&mut self, ot: u32, id: &str, fields: Vec<Item>) -> OpResult {
        let object_tag = match ot {
            object_type::PRIVATE_KEY => tags::PRIVATE_KEY,
            object_type::PUBLIC_KEY => tags::PUBLIC_KEY,
            object_type::SECRET_DATA => tags::SECRET_DATA,
            object_type::OPAQUE_DATA => tags::OPAQUE_OBJECT,
            _ => tags::SYMMETRIC_KEY,
        };
        self.placeholder = Some(id.to_owned());
        Ok(payload(vec![
            Item::enum_item(tags::OBJECT_TYPE, ot),
            uid_item(id),
            Item::structure(object_tag, fields),
        ]))
    }

    /// Get with a Key Wrapping Specification: the key's raw material (or PKCS#8 / SPKI for
    /// asymmetric keys), wrapped under the named key with AES Key Wrap (NIST Key Wrap, or
    /// AES Key Wrap Padding) or RSA-OAEP, and the Key Wrapping Data that says how.
    async fn get_wrapped(&mut self, id: &str, info: &KeyInfo, ot: u32, spec: &Item) -> OpResult {
        use arca_service::api::WrappedExportRequest;
        let w = wrapping_of(spec)?;
        if w.ttlv {
            return Err(Failure::new(
                reason::ENCODING_OPTION_ERROR,
                "only No Encoding: the wrapped value is the key material itself",
            ));
        }
        let (method, wrapping_id, cipher, params) = (w.method, w.key, w.cipher, w.params);
        let r = self
            .svc
            .export_key_wrapped(
                self.caller()?,
                id,
                WrappedExportRequest {
                    wrapping_key: wrapping_id.clone(),
                    cipher,
                    key_version: None,
                },
            )
            .await
            .map_err(failure)?;
        let format = match r.format {
            KeyEncoding::Pkcs8 => kft::PKCS_8,
            KeyEncoding::Spki => kft::X_509,
            _ => kft::RAW,
        };
        let mut fields = vec![
            Item::enum_item(tags::KEY_FORMAT_TYPE, format),
            Item::new(tags::KEY_VALUE, Value::bytes(r.wrapped.0)),
        ];
        if let Some((alg, len)) = attrs::algorithm_of(info.spec) {
            fields.push(Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg));
            fields.push(Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, len));
        }
        let mut eki_out = vec![uid_item(&wrapping_id)];
        if let Some(p) = params {
            eki_out.push(p);
        }
        fields.push(Item::structure(
            tags::KEY_WRAPPING_DATA,
            vec![
                Item::enum_item(tags::WRAPPING_METHOD, method),
                Item::structure(tags::ENCRYPTION_KEY_INFORMATION, eki_out),
            ],
        ));
        self.object_answer(ot, id, vec![Item::structure(tags::KEY_BLOCK, fields)])
    }

    /// The attribute selectors of a Get Attributes request: names (1.x) or references
    /// (2.x), as tags, with custom names apart.
    fn selectors(p: &Item) -> Result<(Vec<u32>, Vec<String>), Failure> {
        let mut tags_wanted = Vec::new();
        let mut custom = Vec::new();
        for i in p.items() {
            match i.tag {
                tags::ATTRIBUTE_NAME => {
                    let n = i.text()?;
                    if n.starts_with("x-") || n.starts_with("y-") {
                        custom.push(n.to_owned());
                    } else {
                        tags_wanted.push(arca_kmip::attribute_tag(n).ok_or_else(|| {
                            Failure::invalid_field(format!("unknown attribute {n:?}"))
                        })?);
                    }
                }
                tags::ATTRIBUTE_REFERENCE => match &i.value {
                    Value::Enumeration(t) => tags_wanted.push(*t),
                    _ => {
                        let n = i.req(tags::ATTRIBUTE_NAME)?.text()?;
                        custom.push(match i.child(tags::VENDOR_IDENTIFICATION) {
                            Some(v) => format!("{}-{n}", v.text()?),
                            None => n.to_owned(),
                        });
                    }
                },
                _ => {}
            }
        }
        Ok((tags_wanted, custom))
    }

    async fn get_attributes(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        let info = self.describe(&id).await?;
        let all = self.attributes_of(&info);
        let (wanted, custom) = Self::selectors(p)?;
        let chosen: Vec<&Attr> = if wanted.is_empty() && custom.is_empty() {
            all.iter().collect()
        } else {
            all.iter()
                .filter(|a| match a {
                    Attr::Std(i) => wanted.contains(&i.tag),
                    Attr::Custom { name, .. } => custom.contains(name),
                })
                .collect()
        };
        let mut out = vec![uid_item(&id)];
        if self.version.is_v2() {
            out.push(Item::structure(
                tags::ATTRIBUTES,
                chosen.iter().map(|a| attrs::render(a, true)).collect(),
            ));
        } else {
            out.extend(chosen.iter().map(|a| attrs::render(a, false)));
        }
        self.placeholder = Some(id);
        Ok(payload(out))
    }

    /// A key's attributes as this client's protocol version knows them: 2.x adds Key Format
    /// Type; those KMIP 1.3 added are left out for older clients, which could not decode them.
    fn attributes_of(&self, info: &KeyInfo) -> Vec<Attr> {
        let mut all = attrs::object_attributes(info);
        if self.version.is_v2() {
            // KMIP 2.x made a key's Key Format Type an attribute: the format it is kept in.
            let extras = attrs::Extras::of(info);
            let ot = attrs::object_type_of(info, &extras);
            let f = attrs::default_format(info.spec, ot);
            all.push(Attr::Std(Item::enum_item(tags::KEY_FORMAT_TYPE, f)));
        }
        if (self.version.major, self.version.minor) < (1, 3) {
            all.retain(|a| {
                !matches!(
                    a.tag(),
                    Some(tags::ORIGINAL_CREATION_DATE | tags::RANDOM_NUMBER_GENERATOR)
                )
            });
        }
        all
    }

    async fn get_attribute_list(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        let info = self.describe(&id).await?;
        let all = self.attributes_of(&info);
        let mut out = vec![uid_item(&id)];
        let mut seen = Vec::new();
        for a in &all {
            let key = a.name();
            if seen.contains(&key) {
                continue;
            }
            seen.push(key.clone());
            out.push(match (a, self.version.is_v2()) {
                (Attr::Std(i), true) => Item::enum_item(tags::ATTRIBUTE_REFERENCE, i.tag),
                _ => Item::text_item(tags::ATTRIBUTE_NAME, key),
            });
        }
        self.placeholder = Some(id);
        Ok(payload(out))
    }

    async fn locate(&mut self, p: &Item) -> OpResult {
        let caller = self.caller()?;
        let filters: Vec<Attr> = if self.version.is_v2() {
            attrs::group(p.child(tags::ATTRIBUTES))?
        } else {
            p.children_with(tags::ATTRIBUTE)
                .map(attrs::from_v1)
                .collect::<Result<_, _>>()?
        };
        let max = p
            .child(tags::MAXIMUM_ITEMS)
            .map(Item::integer)
            .transpose()?
            .map(|m| m.max(0) as usize);
        let offset = p
            .child(tags::OFFSET_ITEMS)
            .map(Item::integer)
            .transpose()?
            .unwrap_or(0)
            .max(0) as usize;
        let mut found = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .svc
                .list_keys(
                    caller,
                    ListKeysQuery {
                        limit: Some(1000),
                        cursor: cursor.take(),
                        ..Default::default()
                    },
                )
                .await
                .map_err(failure)?;
            // Destroyed objects keep their metadata, but Locate finds them only when the
            // client asks by State.
            let by_state = filters.iter().any(|f| f.tag() == Some(tags::STATE));
            for k in &page.keys {
                if k.state.is_destroyed() && !by_state {
                    continue;
                }
                let have = attrs::object_attributes(k);
                if matches_all(&filters, &have) {
                    found.push(k.id.to_string());
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let total = found.len();
        let ids: Vec<String> = found
            .into_iter()
            .skip(offset)
            .take(max.unwrap_or(usize::MAX))
            .collect();
        if let [one] = ids.as_slice() {
            self.placeholder = Some(one.clone());
        }
        let mut out = Vec::new();
        if max.is_some() || offset > 0 {
            out.push(Item::int_item(tags::LOCATED_ITEMS, total as i32));
        }
        out.extend(ids.iter().map(|id| uid_item(id)));
        Ok(payload(out))
    }

    /// Activate. A suspended key is Pre-Active to a KMIP client (it serves nothing and can
    /// be made to serve again), so Activate on it resumes it, under the `ResumeKey` rules.
    async fn activate(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        match self
            .svc
            .lifecycle(self.caller()?, &id, None, LifecycleAction::Activate, None)
            .await
        {
            Err(Error::WrongState {
                state: arca_core::model::KeyState::Suspended,
                ..
            }) => self.move_to(id, LifecycleAction::Resume, None).await,
            r => {
                r.map_err(failure)?;
                self.placeholder = Some(id.clone());
                Ok(payload(vec![uid_item(&id)]))
            }
        }
    }

    /// Activate, Destroy, Archive, Recover: one lifecycle move, answered with the id.
    async fn simple_move(&mut self, p: &Item, action: LifecycleAction) -> OpResult {
        let id = self.target(p)?;
        self.move_to(id, action, None).await
    }

    /// One lifecycle move of an object, with a reason for its history.
    async fn move_to(
        &mut self,
        id: String,
        action: LifecycleAction,
        reason: Option<String>,
    ) -> OpResult {
        self.svc
            .lifecycle(self.caller()?, &id, None, action, reason)
            .await
            .map_err(failure)?;
        self.placeholder = Some(id.clone());
        Ok(payload(vec![uid_item(&id)]))
    }

    /// Check: would the object serve this usage now? Fails with Incompatible
    /// Cryptographic Usage Mask when the mask asks for more than the object allows.
    async fn check(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        let info = self.describe(&id).await?;
        if let Some(m) = p.child(tags::CRYPTOGRAPHIC_USAGE_MASK) {
            let want = m.integer()? as u32;
            let have = attrs::usage_mask_of(&info, &Extras::of(&info)) as u32;
            if want & !have != 0 {
                return Err(Failure::new(
                    reason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK,
                    format!(
                        "the object's usage mask 0x{have:X} does not allow 0x{:X}",
                        want & !have
                    ),
                ));
            }
        }
        self.placeholder = Some(id.clone());
        Ok(payload(vec![uid_item(&id)]))
    }

    /// Add, Modify, Set and Delete Attribute: edits the attributes Arca keeps for KMIP
    /// (names, links, object groups, custom attributes...) and the dates it has fields for.
    async fn edit_attribute(&mut self, p: &Item, edit: Edit) -> OpResult {
        let id = self.target(p)?;
        let info = self.describe(&id).await?;
        let extras = Extras::of(&info);
        // The attribute the request names, in the shape of its version.
        let (attr, index): (Option<Attr>, usize) = if self.version.is_v2() {
            let pick = |tag| -> Result<Option<Attr>, Failure> {
                Ok(match p.child(tag) {
                    Some(w) => match w.items().first() {
                        Some(i) if i.tag == tags::ATTRIBUTE => Some(attrs::from_v1(i)?),
                        Some(i) => Some(Attr::Std(i.clone())),
                        None => {
                            return Err(Failure::invalid_message("the attribute wrapper is empty"))
                        }
                    },
                    None => None,
                })
            };
            let new = pick(tags::NEW_ATTRIBUTE)?;
            let current = pick(tags::CURRENT_ATTRIBUTE)?;
            match edit {
                Edit::Delete => {
                    let a = match (current, p.child(tags::ATTRIBUTE_REFERENCE)) {
                        (Some(c), _) => Some(c),
                        (None, Some(r)) => Some(Attr::Std(Item::new(
                            r.enumeration()?,
                            Value::Structure(vec![]),
                        ))),
                        (None, None) => None,
                    };
                    (a, 0)
                }
                Edit::Modify => {
                    // Which instance: the one equal to CurrentAttribute, else the first.
                    let idx = match (&current, &new) {
                        (Some(c), _) => current_index(&info, c),
                        _ => 0,
                    };
                    (new, idx)
                }
                _ => (new, 0),
            }
        } else {
            let index = p
                .child(tags::ATTRIBUTE)
                .and_then(|a| a.child(tags::ATTRIBUTE_INDEX))
                .map(Item::integer)
                .transpose()?
                .unwrap_or(0)
                .max(0) as usize;
            let a = match (
                edit,
                p.child(tags::ATTRIBUTE),
                p.child(tags::ATTRIBUTE_NAME),
            ) {
                (_, Some(a), _) if a.child(tags::ATTRIBUTE_VALUE).is_some() => {
                    Some(attrs::from_v1(a)?)
                }
                (Edit::Delete, _, Some(n)) => {
                    let n = n.text()?;
                    let idx = p
                        .child(tags::ATTRIBUTE_INDEX)
                        .map(Item::integer)
                        .transpose()?
                        .unwrap_or(0)
                        .max(0) as usize;
                    let a = if n.starts_with("x-") || n.starts_with("y-") {
                        Attr::Custom {
                            name: n.to_owned(),
                            value: Item::new(tags::ATTRIBUTE_VALUE, Value::Structure(vec![])),
                        }
                    } else {
                        let t = arca_kmip::attribute_tag(n).ok_or_else(|| {
                            Failure::invalid_field(format!("unknown attribute {n:?}"))
                        })?;
                        Attr::Std(Item::new(t, Value::Structure(vec![])))
                    };
                    return self
                        .finish_edit(&id, &info, extras, Edit::Delete, a, idx)
                        .await;
                }
                _ => None,
            };
            (a, index)
        };
        let a = attr.ok_or_else(|| Failure::invalid_message("the request names no attribute"))?;
        if let Attr::Std(i) = &a {
            if is_server_managed(i.tag) {
                return Err(Failure::new(
                    reason::ATTRIBUTE_READ_ONLY,
                    format!("{} is set by the server", attrs::spaced_name(i.tag)),
                ));
            }
        }
        self.finish_edit(&id, &info, extras, edit, a, index).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish_edit(
        &mut self,
        id: &str,
        info: &KeyInfo,
        mut extras: Extras,
        edit: Edit,
        a: Attr,
        index: usize,
    ) -> OpResult {
        let mut update = arca_service::api::UpdateKeyRequest::default();
        let same = |x: &Attr| match (x, &a) {
            (Attr::Std(i), Attr::Std(j)) => i.tag == j.tag,
            (Attr::Custom { name: n, .. }, Attr::Custom { name: m, .. }) => n == m,
            _ => false,
        };
        let date_field = |i: &Item| -> Result<Option<chrono::DateTime<chrono::Utc>>, Failure> {
            match edit {
                Edit::Delete => Ok(None),
                _ => Ok(chrono::DateTime::from_timestamp(i.date_time()?, 0)),
            }
        };
        match &a {
            Attr::Std(i) if i.tag == tags::NAME => {
                // A REST-made key's one name is its Arca name until KMIP edits it.
                if extras.names.is_empty() && !extras.names_moved && info.meta.get("kmip").is_none()
                {
                    extras.names.push(info.name.clone());
                }
                let count = extras.names.len();
                let value = || -> Result<String, Failure> {
                    Ok(i.req(tags::NAME_VALUE)?.text()?.to_owned())
                };
                match edit {
                    Edit::Add => extras.names.push(value()?),
                    Edit::Modify | Edit::Set => {
                        if index >= count {
                            return Err(Failure::new(
                                reason::ATTRIBUTE_NOT_FOUND,
                                "no Name at that index",
                            ));
                        }
                        extras.names[index] = value()?;
                    }
                    Edit::Delete => {
                        if index >= count {
                            return Err(Failure::new(
                                reason::ATTRIBUTE_NOT_FOUND,
                                "no Name at that index",
                            ));
                        }
                        extras.names.remove(index);
                    }
                }
            }
            Attr::Std(i) if i.tag == tags::LINK => match edit {
                Edit::Delete => {
                    if index >= extras.links.len() {
                        return Err(Failure::new(
                            reason::ATTRIBUTE_NOT_FOUND,
                            "no Link at that index",
                        ));
                    }
                    extras.links.remove(index);
                }
                _ => {
                    let t = i.req(tags::LINK_TYPE)?.enumeration()?;
                    let to = i.req(tags::LINKED_OBJECT_IDENTIFIER)?.text()?.to_owned();
                    match edit {
                        Edit::Add => extras.links.push((t, to)),
                        _ => {
                            if index >= extras.links.len() {
                                if edit == Edit::Set {
                                    extras.links.push((t, to));
                                } else {
                                    return Err(Failure::new(
                                        reason::ATTRIBUTE_NOT_FOUND,
                                        "no Link at that index",
                                    ));
                                }
                            } else {
                                extras.links[index] = (t, to);
                            }
                        }
                    }
                }
            },
            Attr::Std(i) if i.tag == tags::ACTIVATION_DATE => {
                update.activation_date = Some(date_field(i)?)
            }
            Attr::Std(i) if i.tag == tags::DEACTIVATION_DATE => {
                update.deactivation_date = Some(date_field(i)?)
            }
            Attr::Std(i) if i.tag == tags::PROTECT_STOP_DATE => {
                update.protect_stop_date = Some(date_field(i)?)
            }
            Attr::Std(i) if i.tag == tags::PROCESS_START_DATE => {
                update.process_start_date = Some(date_field(i)?)
            }
            _ => {
                let mut others = extras.other_attrs();
                let positions: Vec<usize> = others
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| same(x))
                    .map(|(n, _)| n)
                    .collect();
                match edit {
                    Edit::Add if !positions.is_empty() && !is_multi_valued(&a) => {
                        return Err(Failure::new(
                            reason::ATTRIBUTE_SINGLE_VALUED,
                            format!(
                                "{} is single-valued and already set: use Modify or Set",
                                a.name()
                            ),
                        ))
                    }
                    Edit::Add => others.push(a.clone()),
                    Edit::Set if positions.is_empty() => others.push(a.clone()),
                    Edit::Set | Edit::Modify => match positions.get(index) {
                        Some(&n) => others[n] = a.clone(),
                        None => {
                            return Err(Failure::new(
                                reason::ATTRIBUTE_NOT_FOUND,
                                format!("{} is not set", a.name()),
                            ))
                        }
                    },
                    Edit::Delete => match positions.get(index) {
                        Some(&n) => {
                            others.remove(n);
                        }
                        None => {
                            return Err(Failure::new(
                                reason::ATTRIBUTE_NOT_FOUND,
                                format!("{} is not set", a.name()),
                            ))
                        }
                    },
                }
                extras.other.clear();
                for o in &others {
                    extras.push_other(o);
                }
            }
        }
        update.meta = Some(extras.into_meta(&info.meta));
        self.svc
            .update_key(self.caller()?, id, update)
            .await
            .map_err(failure)?;
        self.placeholder = Some(id.to_owned());
        let mut out = vec![uid_item(id)];
        if !self.version.is_v2() && edit != Edit::Delete {
            out.push(attrs::render(&a, false));
        }
        Ok(payload(out))
    }

    async fn revoke(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        let rr = p.req(tags::REVOCATION_REASON)?;
        let code = rr.req(tags::REVOCATION_REASON_CODE)?.enumeration()?;
        let message = rr
            .child(tags::REVOCATION_MESSAGE)
            .map(|m| m.text().map(str::to_owned))
            .transpose()?;
        let action = match code {
            revocation_reason_code::KEY_COMPROMISE | revocation_reason_code::CA_COMPROMISE => {
                LifecycleAction::ReportCompromise
            }
            revocation_reason_code::SUPERSEDED => {
                LifecycleAction::Deactivate(DeactivationReason::Superseded)
            }
            _ => LifecycleAction::Deactivate(DeactivationReason::Revoked),
        };
        self.move_to(id, action, message).await
    }

    async fn rng_retrieve(&mut self, p: &Item) -> OpResult {
        let n = p.req(tags::DATA_LENGTH)?.integer()?;
        if n <= 0 {
            return Err(Failure::invalid_field("DataLength must be positive"));
        }
        let r = self
            .svc
            .generate_random(
                self.caller()?,
                RandomRequest {
                    number_of_bytes: n as u32,
                },
            )
            .await
            .map_err(failure)?;
        Ok(payload(vec![Item::new(
            tags::DATA,
            Value::ByteString(r.random.0.clone()),
        )]))
    }
}

/// What a Key Wrapping Data or Key Wrapping Specification says: the wrapping key, the
/// cipher, and whether the wrapped bytes are a TTLV-encoded Key Value (else the material).
struct Wrapping {
    method: u32,
    key: String,
    cipher: arca_service::api::WrapCipher,
    params: Option<Item>,
    ttlv: bool,
}

fn wrapping_of(spec: &Item) -> Result<Wrapping, Failure> {
    use arca_kmip::enums::{
        block_cipher_mode as bcm, encoding_option, padding_method, wrapping_method,
    };
    use arca_service::api::WrapCipher;
    let method = spec.req(tags::WRAPPING_METHOD)?.enumeration()?;
    if method != wrapping_method::ENCRYPT {
        return Err(Failure::new(
            reason::KEY_WRAP_TYPE_NOT_SUPPORTED,
            "Wrapping Method Encrypt is supported (MAC/sign wrapping is not)",
        ));
    }
    if spec.child(tags::MAC_SIGNATURE_KEY_INFORMATION).is_some() {
        return Err(Failure::new(
            reason::KEY_WRAP_TYPE_NOT_SUPPORTED,
            "MAC/Signature Key Information is not supported",
        ));
    }
    // Absent means No Encoding here, as Arca's wrapped Get writes it.
    let ttlv = match spec.child(tags::ENCODING_OPTION) {
        Some(e) => e.enumeration()? != encoding_option::NO_ENCODING,
        None => false,
    };
    let eki = spec.req(tags::ENCRYPTION_KEY_INFORMATION)?;
    let key = eki.req(tags::UNIQUE_IDENTIFIER)?.text()?.to_owned();
    let params = eki.child(tags::CRYPTOGRAPHIC_PARAMETERS);
    let e = |t| {
        params
            .and_then(|p| p.child(t))
            .map(Item::enumeration)
            .transpose()
    };
    let cipher = match (e(tags::BLOCK_CIPHER_MODE)?, e(tags::PADDING_METHOD)?) {
        (Some(bcm::NIST_KEY_WRAP) | None, None) => WrapCipher::AesKeyWrap,
        (Some(bcm::AES_KEY_WRAP_PADDING), _) => WrapCipher::AesKeyWrapPadded,
        (None, Some(padding_method::OAEP)) => {
            use arca_core::cipher::OaepHash;
            use arca_kmip::enums::hashing_algorithm as h;
            WrapCipher::RsaOaep(match e(tags::HASHING_ALGORITHM)?.unwrap_or(h::SHA_1) {
                h::SHA_1 => OaepHash::Sha1,
                h::SHA_256 => OaepHash::Sha256,
                h::SHA_384 => OaepHash::Sha384,
                h::SHA_512 => OaepHash::Sha512,
                _ => {
                    return Err(Failure::invalid_field(
                        "RSA-OAEP wrapping takes SHA-1, SHA-256, SHA-384 or SHA-512",
                    ))
                }
            })
        }
        _ => {
            return Err(Failure::new(
                reason::KEY_WRAP_TYPE_NOT_SUPPORTED,
                "wrapping is NIST Key Wrap, AES Key Wrap Padding or RSA-OAEP",
            ))
        }
    };
    Ok(Wrapping {
        method,
        key,
        cipher,
        params: params.cloned(),
        ttlv,
    })
}

/// The answer to an operation the door does not perform.
fn not_supported(operation: u32) -> Failure {
    let name =
        arca_kmip::enum_name(arca_kmip::enums::operation::ALL, operation).unwrap_or("(unknown)");
    Failure::not_supported(format!(
        "operation {name} (0x{operation:08X}) is not supported by Arca's KMIP door"
    ))
}

/// The highest Operation value a protocol version defines: a client of that version cannot
/// decode later ones, so Query names only those.
fn last_operation(v: ProtocolVersion) -> u32 {
    match (v.major, v.minor) {
        (1, 0) => op::POLL,
        (1, 1) => op::DISCOVER_VERSIONS,
        (1, 2) | (1, 3) => op::JOIN_SPLIT_KEY,
        (1, _) => op::EXPORT,
        _ => u32::MAX,
    }
}

/// Which attribute edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Add,
    Modify,
    Set,
    Delete,
}

/// Attributes an object may hold several instances of (KMIP's multi-valued attributes);
/// custom attributes may repeat too.
fn is_multi_valued(a: &Attr) -> bool {
    match a.tag() {
        None => true,
        Some(t) => matches!(
            t,
            tags::NAME
                | tags::LINK
                | tags::OBJECT_GROUP
                | tags::APPLICATION_SPECIFIC_INFORMATION
                | tags::ALTERNATIVE_NAME
                | tags::KEY_VALUE_LOCATION
                | tags::CRYPTOGRAPHIC_PARAMETERS
                | tags::CRYPTOGRAPHIC_DOMAIN_PARAMETERS
                | tags::DIGEST
        ),
    }
}

/// Attributes only the server sets.
fn is_server_managed(tag: u32) -> bool {
    matches!(
        tag,
        tags::UNIQUE_IDENTIFIER
            | tags::OBJECT_TYPE
            | tags::CRYPTOGRAPHIC_ALGORITHM
            | tags::CRYPTOGRAPHIC_LENGTH
            | tags::CRYPTOGRAPHIC_USAGE_MASK
            | tags::STATE
            | tags::INITIAL_DATE
            | tags::LAST_CHANGE_DATE
            | tags::DIGEST
            | tags::DESTROY_DATE
            | tags::COMPROMISE_DATE
            | tags::COMPROMISE_OCCURRENCE_DATE
            | tags::REVOCATION_REASON
            | tags::ALWAYS_SENSITIVE
            | tags::NEVER_EXTRACTABLE
            | tags::EXTRACTABLE
            | tags::SENSITIVE
            | tags::FRESH
            | tags::LEASE_TIME
    )
}

/// The index, among the object's instances of an attribute, of the one equal to `current`.
fn current_index(info: &KeyInfo, current: &Attr) -> usize {
    let all = attrs::object_attributes(info);
    let Some(tag) = current.tag() else { return 0 };
    all.iter()
        .filter(|a| a.tag() == Some(tag))
        .position(|a| a == current)
        .unwrap_or(0)
}

/// Discover Versions: the versions Arca speaks that the client listed (all of them if it
/// listed none), in Arca's order of preference.
fn discover_versions(p: &Item) -> Item {
    let asked: Vec<ProtocolVersion> = p
        .children_with(tags::PROTOCOL_VERSION)
        .filter_map(|i| ProtocolVersion::from_item(i).ok())
        .collect();
    payload(
        VERSIONS
            .iter()
            .filter(|v| asked.is_empty() || asked.contains(v))
            .map(|v| v.to_item())
            .collect(),
    )
}

/// A Create or Register failure: a name that is taken is Non Unique Name Attribute.
pub(super) fn creation_failure(e: Error) -> Failure {
    match e {
        Error::Conflict { message } => Failure::new(reason::NON_UNIQUE_NAME_ATTRIBUTE, message),
        e => failure(e),
    }
}

/// True if the object matches every filter. Two filters on the same date attribute are a
/// range (KMIP Locate: from the first to the second, inclusive).
fn matches_all(filters: &[Attr], have: &[Attr]) -> bool {
    let date_of = |a: &Attr| match a {
        Attr::Std(Item {
            value: Value::DateTime(t),
            tag,
        }) => Some((*tag, *t)),
        _ => None,
    };
    let mut done = vec![false; filters.len()];
    for (i, f) in filters.iter().enumerate() {
        if done[i] {
            continue;
        }
        if let Some((tag, from)) = date_of(f) {
            let second =
                filters.iter().enumerate().skip(i + 1).find_map(|(j, g)| {
                    date_of(g).filter(|(t, _)| *t == tag).map(|(_, to)| (j, to))
                });
            if let Some((j, to)) = second {
                done[j] = true;
                let (lo, hi) = (from.min(to), from.max(to));
                let inside = have
                    .iter()
                    .filter_map(date_of)
                    .any(|(t, v)| t == tag && (lo..=hi).contains(&v));
                if !inside {
                    return false;
                }
                continue;
            }
        }
        if !matches_filter(f, have) {
            return false;
        }
    }
    true
}

/// True if the object has an attribute equal to the filter (names compare by value).
fn matches_filter(filter: &Attr, have: &[Attr]) -> bool {
    match filter {
        Attr::Std(f) if f.tag == tags::NAME => {
            let want = f.child(tags::NAME_VALUE);
            have.iter().any(|a| match a {
                Attr::Std(h) if h.tag == tags::NAME => h.child(tags::NAME_VALUE) == want,
                _ => false,
            })
        }
        other => have.contains(other),
    }
}
