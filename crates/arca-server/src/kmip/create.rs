//! KMIP operations that bring an object in: Create (a symmetric key Arca generates) and
//! Register (a key, secret data or opaque object whose material the client brings, in the
//! clear or wrapped under an Arca key), and the service request both make of KMIP
//! attributes (which Create Key Pair and ReKey use too).
//!
//! Material is handed to the service as the client sent it, naming its form when it is
//! PKCS#1: the service converts it, the door parses no key material.

use arca_core::encoding::KeyEncoding;
use arca_core::{Error, Fault};
use arca_kmip::enums::{key_format_type as kft, object_type, result_reason as reason};
use arca_kmip::{tags, Bytes, Failure, Item, Value};
use arca_service::api::{CreateKeyRequest, Secret};

use super::attrs::{self, Attr, Extras};
use super::ops::{creation_failure, failure, payload, uid_item, Ctx, OpResult};
use super::wrapping::wrapping_of;

impl Ctx<'_> {
    /// Create: a symmetric key from the template's attributes (key pairs are Create Key
    /// Pair's); its id becomes the ID Placeholder.
    pub(super) async fn create(&mut self, p: &Item) -> OpResult {
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

    /// Register: a key, secret data or opaque object whose material the client brings
    /// (in the clear, or wrapped under an Arca key); its id becomes the ID Placeholder.
    pub(super) async fn register(&mut self, p: &Item) -> OpResult {
        self.caller()?;
        let ot = p.req(tags::OBJECT_TYPE)?.enumeration()?;
        if matches!(
            ot,
            object_type::SECRET_DATA | object_type::OPAQUE_DATA | object_type::CERTIFICATE
        ) {
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
            // The integers, written as the PKCS#1 they come from.
            (object_type::PRIVATE_KEY, kft::TRANSPARENT_RSA_PRIVATE_KEY) => (
                super::transparent::rsa_private_to_pkcs1(value.req(tags::KEY_MATERIAL)?)?,
                Some(KeyEncoding::Pkcs1Private),
            ),
            (object_type::PUBLIC_KEY, kft::TRANSPARENT_RSA_PUBLIC_KEY) => (
                super::transparent::rsa_public_to_pkcs1(value.req(tags::KEY_MATERIAL)?)?,
                Some(KeyEncoding::Pkcs1Public),
            ),
            // DSA's integers, laid out as the PKCS#8 and SPKI Arca keeps.
            (object_type::PRIVATE_KEY, kft::TRANSPARENT_DSA_PRIVATE_KEY) => (
                super::transparent::dsa_private_to_pkcs8(value.req(tags::KEY_MATERIAL)?)?,
                None,
            ),
            (object_type::PUBLIC_KEY, kft::TRANSPARENT_DSA_PUBLIC_KEY) => (
                super::transparent::dsa_public_to_spki(value.req(tags::KEY_MATERIAL)?)?,
                None,
            ),
            _ => {
                let name = arca_kmip::enum_name(kft::ALL, format).unwrap_or("?");
                return Err(Failure::new(
                    reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
                    format!("KeyFormatType {name} is not accepted for this object type: symmetric keys are Raw or TransparentSymmetricKey, private keys PKCS_8, PKCS_1, TransparentRSAPrivateKey or TransparentDSAPrivateKey, public keys X_509 (SubjectPublicKeyInfo), PKCS_1, TransparentRSAPublicKey or TransparentDSAPublicKey"),
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

    /// Register of Secret Data (a Key Block of raw bytes with a Secret Data Type), of an
    /// Opaque Object (an Opaque Data Type and value) or of a Certificate (X.509 DER, whose
    /// attributes the door derives): all are kept as `SECRET_DATA` objects.
    async fn register_secret(&mut self, p: &Item, ot: u32) -> OpResult {
        self.caller()?;
        let mut attrs = attrs::group(
            p.child(tags::TEMPLATE_ATTRIBUTE)
                .or(p.child(tags::ATTRIBUTES)),
        )?;
        let (material, kind) = if ot == object_type::CERTIFICATE {
            let (der, derived) = super::certificates::read(p.req(tags::CERTIFICATE)?)?;
            // What the certificate says is the server's to state: a client's copy of a
            // derived attribute (a Certificate Type in the template) gives way to it.
            attrs.retain(|a| {
                !a.tag()
                    .is_some_and(|t| super::certificates::DERIVED.contains(&t))
            });
            attrs.extend(derived);
            (Bytes::new(der), (None, None, None))
        } else if ot == object_type::SECRET_DATA {
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
            .map_err(|e| match (&e, encoding) {
                // Material the service could not read in the form it was named.
                (
                    Error::Unprocessable {
                        fault: Fault::Encoding,
                        ..
                    },
                    Some(KeyEncoding::Pkcs1Public),
                ) => Failure::invalid_field("KeyMaterial is not a PKCS#1 RSAPublicKey"),
                (
                    Error::Unprocessable {
                        fault: Fault::Encoding,
                        ..
                    },
                    _,
                ) => Failure::invalid_field("KeyMaterial is not a PKCS#1 RSAPrivateKey"),
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
            raw_cipher_modes: spec.offers_raw_modes(),
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
                tags::USAGE_LIMITS => req.usage_limits = Some(attrs::usage_limit_of(i)?),
                // KMIP 2.1's Quantum Safe: a client that asks for it gets it or nothing.
                tags::QUANTUM_SAFE => {
                    if i.boolean()? && !attrs::quantum_safe(spec) {
                        return Err(Failure::new(
                            reason::GENERAL_FAILURE,
                            format!(
                                "NOT_SAFE: a {spec} key is not quantum safe (AES-256, HMAC, ML-KEM and ML-DSA keys are)"
                            ),
                        ));
                    }
                    extras.push_other(a);
                }
                // A new object is Fresh (its material has not left Arca): a client that
                // says so states what is true; Arca itself sets it false at the first export.
                tags::FRESH if i.boolean()? => {}
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
}
