//! KMIP's Get: an object's material, in the Key Format Type the client asks for, or wrapped
//! under another key. The service exports (and converts to PKCS#1 when asked); the door
//! lays the material out as the object's structure.

use arca_core::encoding::KeyEncoding;
use arca_kmip::enums::{key_format_type as kft, object_type, result_reason as reason};
use arca_kmip::{tags, Failure, Item, Value};
use arca_service::api::{ExportRequest, KeyInfo};

use super::attrs::{self, Extras};
use super::ops::{failure, payload, uid_item, Ctx, OpResult};
use super::wrapping::wrapping_of;

impl Ctx<'_> {
    /// Get: the object's material in the Key Format Type asked for (else the one it was
    /// registered in, else the type's default), or wrapped when a Key Wrapping
    /// Specification says so.
    pub(super) async fn get(&mut self, p: &Item) -> OpResult {
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
            (object_type::PRIVATE_KEY, Some(kft::PKCS_1 | kft::TRANSPARENT_RSA_PRIVATE_KEY)) => {
                Some(KeyEncoding::Pkcs1Private)
            }
            (object_type::PUBLIC_KEY, Some(kft::PKCS_1 | kft::TRANSPARENT_RSA_PUBLIC_KEY)) => {
                Some(KeyEncoding::Pkcs1Public)
            }
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
            // A key that never leaves Arca is Sensitive (KMIP 1.4's and 2.x's reason).
            // Otherwise the key is not RSA, or not kept in the form PKCS#1 asks of it:
            // failure() says Key Format Type Not Supported with the service's reason.
            .map_err(|e| match e {
                arca_core::Error::NotPermitted { .. } if !info.extractable => {
                    Failure::new(reason::SENSITIVE, e.to_string())
                }
                e => failure(e),
            })?;
        if ot == object_type::CERTIFICATE {
            return self.object_answer(ot, &id, super::certificates::answer(&exported.material.0));
        }
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
            (object_type::PRIVATE_KEY, Some(kft::TRANSPARENT_RSA_PRIVATE_KEY))
                if exported.format == KeyEncoding::Pkcs1Private =>
            {
                (
                    kft::TRANSPARENT_RSA_PRIVATE_KEY,
                    super::transparent::rsa_private_from_pkcs1(&exported.material.0)?,
                )
            }
            (object_type::PUBLIC_KEY, Some(kft::TRANSPARENT_RSA_PUBLIC_KEY))
                if exported.format == KeyEncoding::Pkcs1Public =>
            {
                (
                    kft::TRANSPARENT_RSA_PUBLIC_KEY,
                    super::transparent::rsa_public_from_pkcs1(&exported.material.0)?,
                )
            }
            (object_type::PRIVATE_KEY, Some(kft::TRANSPARENT_DSA_PRIVATE_KEY))
                if exported.format == KeyEncoding::Pkcs8 =>
            {
                (
                    kft::TRANSPARENT_DSA_PRIVATE_KEY,
                    super::transparent::dsa_private_from_pkcs8(&exported.material.0)?,
                )
            }
            (object_type::PUBLIC_KEY, Some(kft::TRANSPARENT_DSA_PUBLIC_KEY))
                if exported.format == KeyEncoding::Spki =>
            {
                (
                    kft::TRANSPARENT_DSA_PUBLIC_KEY,
                    super::transparent::dsa_public_from_spki(&exported.material.0)?,
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
            object_type::CERTIFICATE => tags::CERTIFICATE,
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
}
