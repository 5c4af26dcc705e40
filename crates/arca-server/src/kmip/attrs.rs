//! KMIP attributes in both of their shapes, and Arca's keys seen as KMIP managed objects.
//!
//! KMIP 1.x sends attributes as `Attribute` structures (a text name, an optional index and
//! a value item tagged `AttributeValue`), grouped in `TemplateAttribute`s; KMIP 2.x sends
//! each attribute as an item with its own tag inside `Attributes`. Both are read into one
//! form here: a list of items whose tag is the attribute's tag. Custom attributes (`x-`
//! and `y-` names) keep their name.
//!
//! The KMIP attributes that Arca's key model has no field for (several names, the usage
//! mask as given, links, object group, contact information, custom attributes) are kept in
//! the key's `meta.kmip` object, so that what a client set is what it reads back.

use arca_core::model::{KeySpec, KeyState};
use arca_kmip::enums::{
    cryptographic_algorithm as alg, hashing_algorithm, key_format_type as kft, object_type, state,
};
use arca_kmip::{tags, Failure, Item, Value};
use arca_service::api::KeyInfo;
use serde::{Deserialize, Serialize};

/// One attribute: a standard one (the item carries the attribute's tag) or a custom one.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Std(Item),
    /// `x-`/`y-` attribute: its name and its value (tagged `AttributeValue`).
    Custom {
        name: String,
        value: Item,
    },
}

impl Attr {
    pub fn tag(&self) -> Option<u32> {
        match self {
            Attr::Std(i) => Some(i.tag),
            Attr::Custom { .. } => None,
        }
    }

    /// The name a KMIP 1.x client uses for it.
    pub fn name(&self) -> String {
        match self {
            Attr::Std(i) => spaced_name(i.tag),
            Attr::Custom { name, .. } => name.clone(),
        }
    }
}

/// "Cryptographic Usage Mask" from the tag of `CryptographicUsageMask`.
pub fn spaced_name(tag: u32) -> String {
    let xml = arca_kmip::tag_label(tag);
    let mut out = String::with_capacity(xml.len() + 4);
    let mut prev_lower = false;
    for c in xml.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c);
    }
    out
}

/// Reads an `Attribute` structure: 1.x's (a name and a value), or 2.x's vendor attribute
/// (a Vendor Identification, a name and a value). A vendor attribute `v`/`n` is the same
/// thing as 1.x's custom attribute `v-n` (`x`/`ID` is `x-ID`), and is kept under that name.
pub fn from_v1(attr: &Item) -> Result<Attr, Failure> {
    let plain = attr.req(tags::ATTRIBUTE_NAME)?.text()?;
    let vendor_name;
    let name = match attr.child(tags::VENDOR_IDENTIFICATION) {
        Some(v) => {
            vendor_name = format!("{}-{plain}", v.text()?);
            vendor_name.as_str()
        }
        None => plain,
    };
    let value = attr.child(tags::ATTRIBUTE_VALUE).cloned().ok_or_else(|| {
        Failure::invalid_message(format!("attribute {name:?} has no AttributeValue"))
    })?;
    if attr.child(tags::VENDOR_IDENTIFICATION).is_some()
        || name.starts_with("x-")
        || name.starts_with("y-")
    {
        return Ok(Attr::Custom {
            name: name.to_owned(),
            value,
        });
    }
    let tag = arca_kmip::attribute_tag(name)
        .ok_or_else(|| Failure::invalid_field(format!("unknown attribute {name:?}")))?;
    Ok(Attr::Std(Item::new(tag, value.value)))
}

/// Writes an attribute in the shape of `version`.
pub fn render(a: &Attr, v2: bool) -> Item {
    match (a, v2) {
        (Attr::Std(i), true) => i.clone(),
        (Attr::Custom { name, value }, true) => {
            let (vendor, plain) = name.split_once('-').unwrap_or(("x", name));
            Item::structure(
                tags::ATTRIBUTE,
                vec![
                    Item::text_item(tags::VENDOR_IDENTIFICATION, vendor),
                    Item::text_item(tags::ATTRIBUTE_NAME, plain),
                    value.clone(),
                ],
            )
        }
        (a, _) => {
            let value = match a {
                Attr::Std(i) => Item::new(tags::ATTRIBUTE_VALUE, i.value.clone()),
                Attr::Custom { value, .. } => value.clone(),
            };
            Item::structure(
                tags::ATTRIBUTE,
                vec![Item::text_item(tags::ATTRIBUTE_NAME, a.name()), value],
            )
        }
    }
}

/// The attributes of a template or attribute group (`TemplateAttribute`,
/// `CommonTemplateAttribute`, ... in 1.x; `Attributes`, `CommonAttributes`, ... in 2.x).
pub fn group(item: Option<&Item>) -> Result<Vec<Attr>, Failure> {
    let Some(item) = item else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for child in item.items() {
        match child.tag {
            tags::ATTRIBUTE => out.push(from_v1(child)?),
            // A 1.x template may name a server-side template; Arca keeps none.
            tags::NAME if is_template(item.tag) => {
                return Err(Failure::invalid_field(
                    "named templates are not supported: send the attributes themselves",
                ))
            }
            _ => out.push(Attr::Std(child.clone())),
        }
    }
    Ok(out)
}

fn is_template(tag: u32) -> bool {
    matches!(
        tag,
        tags::TEMPLATE_ATTRIBUTE
            | tags::COMMON_TEMPLATE_ATTRIBUTE
            | tags::PRIVATE_KEY_TEMPLATE_ATTRIBUTE
            | tags::PUBLIC_KEY_TEMPLATE_ATTRIBUTE
    )
}

/// The first standard attribute with this tag.
pub fn find(attrs: &[Attr], tag: u32) -> Option<&Item> {
    attrs.iter().find_map(|a| match a {
        Attr::Std(i) if i.tag == tag => Some(i),
        _ => None,
    })
}

/// What Arca keeps of a key's KMIP attributes beyond its own fields (`meta.kmip`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Extras {
    /// `PublicKey` for the public half of a pair (a key holding only the public key),
    /// `SecretData` or `OpaqueObject` for material that is not a key; absent for
    /// symmetric and private keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_type: Option<String>,
    /// Every Name as the client gave it (Arca's own name is one of them, made safe).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Set when the object's names moved to its replacement (ReKey): it has none.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub names_moved: bool,
    /// Secret Data Type (Password, Seed) of a Secret Data object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_data_type: Option<u32>,
    /// Opaque Data Type of an Opaque Object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opaque_data_type: Option<u32>,
    /// The Key Format Type the key was registered in: Get returns that format by default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_format: Option<u32>,
    /// The Cryptographic Usage Mask as the client gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_mask: Option<i32>,
    /// Links: (link type, linked object's id).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<(u32, String)>,
    /// The Revocation Reason Code a Revoke gave (kept with the move, by the service's
    /// `lifecycle_annotated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<u32>,
    /// The Revocation Message a Revoke gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_message: Option<String>,
    /// The Compromise Occurrence Date a Revoke for compromise gave (seconds since 1970).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compromise_occurrence_date: Option<i64>,
    /// Any other attribute, in the KMIP XML encoding (no secrets: attributes never hold
    /// key material).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<String>,
}

impl Extras {
    pub fn of(info: &KeyInfo) -> Extras {
        Extras::of_meta(&info.meta)
    }

    /// The extras in a `meta` value.
    pub fn of_meta(meta: &serde_json::Value) -> Extras {
        meta.get("kmip")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default()
    }

    /// The extras a key request being built carries in its `meta`.
    pub fn of_request(req: &arca_service::api::CreateKeyRequest) -> Extras {
        req.meta.as_ref().map(Extras::of_meta).unwrap_or_default()
    }

    /// The other attributes, parsed back.
    pub fn other_attrs(&self) -> Vec<Attr> {
        self.other
            .iter()
            .filter_map(|x| {
                let node = arca_kmip::xml::parse(x).ok()?.into_iter().next()?;
                let item = arca_kmip::xml::to_item(&node, &mut |_, _| None).ok()?;
                if item.tag == tags::ATTRIBUTE {
                    from_v1(&item).ok()
                } else {
                    Some(Attr::Std(item))
                }
            })
            .collect()
    }

    /// Stores an attribute among the others.
    pub fn push_other(&mut self, a: &Attr) {
        self.other.push(arca_kmip::xml::to_xml(&render(a, false)));
    }

    /// Writes these extras into a key's `meta` (keeping the caller's other meta fields).
    pub fn into_meta(self, meta: &serde_json::Value) -> serde_json::Value {
        let mut m = match meta {
            serde_json::Value::Object(m) => m.clone(),
            _ => serde_json::Map::new(),
        };
        m.insert(
            "kmip".into(),
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null),
        );
        serde_json::Value::Object(m)
    }
}

/// The KMIP object type of a key.
pub fn object_type_of(info: &KeyInfo, extras: &Extras) -> u32 {
    if let Some(t) = &extras.object_type {
        if let Some(v) = arca_kmip::enum_value(object_type::ALL, t) {
            return v;
        }
    }
    if info.spec == KeySpec::SecretData {
        object_type::SECRET_DATA
    } else if info.spec.is_asymmetric() {
        object_type::PRIVATE_KEY
    } else {
        object_type::SYMMETRIC_KEY
    }
}

/// The Key Format Type an object is returned in when the client names none: raw bytes for
/// symmetric keys, PKCS#1 for RSA keys (as the KMIP profiles' test cases show), PKCS#8 and
/// SubjectPublicKeyInfo (X.509) for other private and public keys, Opaque for secret data.
pub fn default_format(spec: KeySpec, ot: u32) -> u32 {
    let rsa = spec.family() == arca_core::model::KeyFamily::Rsa;
    match ot {
        object_type::PRIVATE_KEY if rsa => kft::PKCS_1,
        object_type::PUBLIC_KEY if rsa => kft::PKCS_1,
        object_type::PRIVATE_KEY => kft::PKCS_8,
        object_type::PUBLIC_KEY => kft::X_509,
        object_type::SECRET_DATA | object_type::OPAQUE_DATA => kft::OPAQUE,
        _ => kft::RAW,
    }
}

/// The KMIP algorithm and length of a spec (`None` for secret data, which has neither).
pub fn algorithm_of(spec: KeySpec) -> Option<(u32, i32)> {
    use KeySpec::*;
    Some(match spec {
        Aes128 => (alg::AES, 128),
        Aes192 => (alg::AES, 192),
        Aes256 => (alg::AES, 256),
        Hmac256 => (alg::HMAC_SHA256, 256),
        Hmac384 => (alg::HMAC_SHA384, 384),
        Hmac512 => (alg::HMAC_SHA512, 512),
        Rsa1024 => (alg::RSA, 1024),
        Rsa2048 => (alg::RSA, 2048),
        Rsa3072 => (alg::RSA, 3072),
        Rsa4096 => (alg::RSA, 4096),
        EccNistP256 => (alg::ECDSA, 256),
        EccNistP384 => (alg::ECDSA, 384),
        EccNistP521 => (alg::ECDSA, 521),
        Ed25519 => (alg::ED25519, 256),
        MlKem768 => (0x0000003B, 768),
        MlKem1024 => (0x0000003B, 1024),
        MlDsa44 => (0x0000003C, 44),
        MlDsa65 => (0x0000003C, 65),
        MlDsa87 => (0x0000003C, 87),
        TripleDes => (alg::TRIPLE_DES, 168),
        ChaCha20 => (alg::CHACHA20, 256),
        ChaCha20Poly1305 => (alg::CHACHA20_POLY1305, 256),
        Dsa512 => (alg::DSA, 512),
        Dsa1024 => (alg::DSA, 1024),
        Dsa2048 => (alg::DSA, 2048),
        Dsa3072 => (alg::DSA, 3072),
        SecretData => return None,
    })
}

/// Whether a key of this spec keeps its strength against a quantum computer (KMIP 2.1's
/// Quantum Safe): AES-256 (128 bits left under Grover's search), HMAC with keys of 256 bits
/// or more, ML-KEM and ML-DSA. AES-128 and AES-192, RSA and elliptic curves (Shor) are not.
pub fn quantum_safe(spec: KeySpec) -> bool {
    use KeySpec::*;
    matches!(
        spec,
        Aes256 | Hmac256 | Hmac384 | Hmac512 | MlKem768 | MlKem1024 | MlDsa44 | MlDsa65 | MlDsa87
    )
}

/// The spec of a KMIP algorithm and length, or Invalid Field saying what is offered.
pub fn spec_of(algorithm: u32, length: Option<i32>) -> Result<KeySpec, Failure> {
    use KeySpec::*;
    let spec = match (algorithm, length) {
        (alg::AES, Some(128)) => Aes128,
        (alg::AES, Some(192)) => Aes192,
        (alg::AES, Some(256) | None) => Aes256,
        (alg::HMAC_SHA256, Some(256) | None) => Hmac256,
        (alg::HMAC_SHA384, Some(384) | None) => Hmac384,
        (alg::HMAC_SHA512, Some(512) | None) => Hmac512,
        (alg::RSA, Some(1024)) => Rsa1024,
        (alg::RSA, Some(2048) | None) => Rsa2048,
        (alg::RSA, Some(3072)) => Rsa3072,
        (alg::RSA, Some(4096)) => Rsa4096,
        (alg::ECDSA | alg::EC, Some(256) | None) => EccNistP256,
        (alg::ECDSA | alg::EC, Some(384)) => EccNistP384,
        (alg::ECDSA | alg::EC, Some(521)) => EccNistP521,
        (alg::ED25519, _) => Ed25519,
        // Keying option 1: 168 key bits, 192 with the parity bits.
        (alg::TRIPLE_DES, Some(168 | 192) | None) => TripleDes,
        (alg::CHACHA20, Some(256) | None) => ChaCha20,
        (alg::CHACHA20_POLY1305, Some(256) | None) => ChaCha20Poly1305,
        (alg::DSA, Some(512)) => Dsa512,
        (alg::DSA, Some(1024)) => Dsa1024,
        (alg::DSA, Some(2048) | None) => Dsa2048,
        (alg::DSA, Some(3072)) => Dsa3072,
        _ => {
            let name = arca_kmip::enum_name(alg::ALL, algorithm).unwrap_or("?");
            return Err(Failure::new(
                arca_kmip::enums::result_reason::INVALID_FIELD,
                format!(
                    "CryptographicAlgorithm {name} with CryptographicLength {} is not offered: use AES 128/192/256, HMAC_SHA256/384/512, RSA 2048/3072/4096, ECDSA 256/384/521 or Ed25519 (and, where the tenant allows legacy algorithms, RSA 1024, 3DES 168, ChaCha20 256, ChaCha20Poly1305 256 or DSA 512/1024/2048/3072)",
                    length.map_or("(none)".into(), |l| l.to_string())
                ),
            ));
        }
    };
    Ok(spec)
}

/// The KMIP state of a key. KMIP has no reversible suspension: a suspended key, which
/// serves nothing until it is resumed, is Pre-Active (Activate resumes it); a key whose
/// destruction is scheduled is Destroyed (KMIP's Destroy is immediate; Arca erases the
/// material when the tenant's waiting period ends).
pub fn state_of(info: &KeyInfo) -> u32 {
    let compromised = matches!(
        info.state,
        KeyState::Compromised | KeyState::DestroyedCompromised
    );
    if info.destroy_after.is_some() || info.state.is_destroyed() {
        return if compromised {
            state::DESTROYED_COMPROMISED
        } else {
            state::DESTROYED
        };
    }
    match info.state {
        KeyState::PreActive | KeyState::Suspended => state::PRE_ACTIVE,
        KeyState::Active => state::ACTIVE,
        KeyState::Deactivated => state::DEACTIVATED,
        KeyState::Compromised => state::COMPROMISED,
        KeyState::Destroyed => state::DESTROYED,
        KeyState::DestroyedCompromised => state::DESTROYED_COMPROMISED,
    }
}

/// The mask bits that stand for one of Arca's usages, each with it.
fn mask_bits() -> [(u32, arca_core::model::KeyUsage); 9] {
    use arca_core::model::KeyUsage::*;
    use arca_kmip::enums::cryptographic_usage_mask as m;
    [
        (m::ENCRYPT, Encrypt),
        (m::DECRYPT, Decrypt),
        (m::SIGN, Sign),
        (m::VERIFY, Verify),
        (m::WRAP_KEY, Wrap),
        (m::UNWRAP_KEY, Unwrap),
        (m::MAC_GENERATE, GenerateMac),
        (m::MAC_VERIFY, VerifyMac),
        (m::DERIVE_KEY, Derive),
    ]
}

/// The Cryptographic Usage Mask of a key: the bits of what Arca's usages let it do (the
/// service checks those on every door), and, of a mask the client set, the bits Arca has no
/// usage for (Export, Content Commitment, ...) as given. A bit the client asked for that
/// the key cannot do is not reported, so the mask never promises what the key will not do.
pub fn usage_mask_of(info: &KeyInfo, extras: &Extras) -> i32 {
    use arca_kmip::enums::cryptographic_usage_mask as m;
    let mut bits = 0u32;
    let mut mappable = 0u32;
    for (bit, u) in mask_bits() {
        mappable |= bit;
        if arca_core::model::can(&info.usage, u) {
            bits |= bit;
        }
    }
    if arca_core::model::can(&info.usage, arca_core::model::KeyUsage::KeyEncapsulation) {
        bits |= m::KEY_AGREEMENT;
        mappable |= m::KEY_AGREEMENT;
    }
    match extras.usage_mask {
        Some(given) => {
            let given = given as u32;
            ((given & !mappable) | (given & bits)) as i32
        }
        None => bits as i32,
    }
}

/// Arca usages from a Cryptographic Usage Mask, for a spec: one direction per bit (a mask
/// of Encrypt alone makes a key that only encrypts, on every door). MAC bits on an AES key
/// ask for an HMAC keyed by it, a legacy usage the service allows only in tenants that
/// allow legacy algorithms. Other bits the spec cannot honour are dropped (and not
/// reported back); a mask with none it can honour gets a usage that serves no operation of
/// Arca's (Derive) where the spec has one, so that the key does nothing the mask did not
/// ask for.
pub fn usages_from_mask(
    mask: i32,
    spec: KeySpec,
) -> Result<Vec<arca_core::model::KeyUsage>, Failure> {
    use arca_core::model::KeyUsage;
    let bits = mask as u32;
    let possible = spec.possible_usages();
    let out: Vec<KeyUsage> = mask_bits()
        .into_iter()
        .filter(|(bit, u)| {
            bits & bit != 0 && (possible.contains(&u.pair()) || spec.legacy_usage(*u).is_some())
        })
        .map(|(_, u)| u)
        .collect();
    if out.is_empty() {
        return Ok(vec![if possible.contains(&KeyUsage::Derive) {
            KeyUsage::Derive
        } else {
            spec.default_usage()
        }]);
    }
    Ok(KeyUsage::canonical(&out))
}

/// Every attribute a key has, as KMIP names them, standard ones first.
pub fn object_attributes(info: &KeyInfo) -> Vec<Attr> {
    let extras = Extras::of(info);
    let dt = |tag, t: chrono::DateTime<chrono::Utc>| {
        Attr::Std(Item::new(tag, Value::DateTime(t.timestamp())))
    };
    let mut out = vec![Attr::Std(Item::text_item(
        tags::UNIQUE_IDENTIFIER,
        info.id.to_string(),
    ))];
    let ot = object_type_of(info, &extras);
    out.push(Attr::Std(Item::enum_item(tags::OBJECT_TYPE, ot)));
    if let Some((a, l)) = algorithm_of(info.spec) {
        out.push(Attr::Std(Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, a)));
        out.push(Attr::Std(Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, l)));
    }
    out.push(Attr::Std(Item::int_item(
        tags::CRYPTOGRAPHIC_USAGE_MASK,
        usage_mask_of(info, &extras),
    )));
    // A key made over KMIP has the names its client gave (maybe none); a key made over
    // REST shows its Arca name.
    let made_over_kmip = info.meta.get("kmip").is_some();
    let names: Vec<String> = if extras.names_moved {
        vec![]
    } else if extras.names.is_empty() && !made_over_kmip {
        vec![info.name.clone()]
    } else {
        extras.names.clone()
    };
    for n in names {
        out.push(Attr::Std(Item::structure(
            tags::NAME,
            vec![
                Item::text_item(tags::NAME_VALUE, n),
                Item::enum_item(
                    tags::NAME_TYPE,
                    arca_kmip::enums::name_type::UNINTERPRETED_TEXT_STRING,
                ),
            ],
        )));
    }
    if let Some(d) = info
        .versions
        .iter()
        .find(|v| v.version == info.primary_version)
        .and_then(|v| v.digest.as_deref())
    {
        let bytes: Vec<u8> = (0..d.len() / 2)
            .filter_map(|i| u8::from_str_radix(&d[2 * i..2 * i + 2], 16).ok())
            .collect();
        let format = default_format(info.spec, ot);
        out.push(Attr::Std(Item::structure(
            tags::DIGEST,
            vec![
                Item::enum_item(tags::HASHING_ALGORITHM, hashing_algorithm::SHA_256),
                Item::new(tags::DIGEST_VALUE, Value::bytes(bytes)),
                Item::enum_item(tags::KEY_FORMAT_TYPE, format),
            ],
        )));
    }
    out.push(Attr::Std(Item::enum_item(tags::STATE, state_of(info))));
    out.push(dt(tags::INITIAL_DATE, info.created_at));
    out.push(dt(tags::LAST_CHANGE_DATE, info.updated_at));
    if let Some(t) = info.activation_date {
        out.push(dt(tags::ACTIVATION_DATE, t));
    }
    if let Some(t) = info.protect_stop_date {
        out.push(dt(tags::PROTECT_STOP_DATE, t));
    }
    if let Some(t) = info.process_start_date {
        out.push(dt(tags::PROCESS_START_DATE, t));
    }
    if let Some(t) = info.deactivation_date {
        out.push(dt(tags::DEACTIVATION_DATE, t));
    }
    if let Some(t) = info.compromise_date {
        out.push(dt(tags::COMPROMISE_DATE, t));
    }
    if let Some(t) = extras.compromise_occurrence_date {
        out.push(Attr::Std(Item::new(
            tags::COMPROMISE_OCCURRENCE_DATE,
            Value::DateTime(t),
        )));
    }
    if let Some(code) = extras.revocation_reason {
        let mut parts = vec![Item::enum_item(tags::REVOCATION_REASON_CODE, code)];
        if let Some(m) = &extras.revocation_message {
            parts.push(Item::text_item(tags::REVOCATION_MESSAGE, m.clone()));
        }
        out.push(Attr::Std(Item::structure(tags::REVOCATION_REASON, parts)));
    }
    if let Some(t) = info.destroyed_at {
        out.push(dt(tags::DESTROY_DATE, t));
    }
    if let Some(l) = info.usage_limits {
        out.push(Attr::Std(usage_limits_item(&l)));
    }
    let b = |tag, v| Attr::Std(Item::new(tag, Value::Boolean(v)));
    out.push(b(tags::EXTRACTABLE, info.extractable));
    out.push(b(tags::SENSITIVE, !info.extractable));
    out.push(b(tags::NEVER_EXTRACTABLE, !info.extractable));
    out.push(b(tags::ALWAYS_SENSITIVE, !info.extractable));
    out.push(b(tags::FRESH, !info.exported));
    for (t, id) in &extras.links {
        out.push(Attr::Std(Item::structure(
            tags::LINK,
            vec![
                Item::enum_item(tags::LINK_TYPE, *t),
                Item::text_item(tags::LINKED_OBJECT_IDENTIFIER, id.clone()),
            ],
        )));
    }
    let others = extras.other_attrs();
    let client_set = |t: u32| others.iter().any(|a| a.tag() == Some(t));
    // KMIP 1.3+: when the object came into being. A registered object's is its Initial
    // Date unless its client said otherwise (then the client's value is among `others`).
    if !client_set(tags::ORIGINAL_CREATION_DATE) {
        out.push(dt(tags::ORIGINAL_CREATION_DATE, info.created_at));
    }
    if let Some(rng) = generator_of(info).filter(|_| !client_set(tags::RANDOM_NUMBER_GENERATOR)) {
        out.push(Attr::Std(rng));
    }
    out.extend(others);
    out
}

/// The limit a client asks for with a Usage Limits attribute (its Usage Limits Count, if
/// sent, is the server's to keep and is ignored: a new key has its whole budget).
pub fn usage_limit_of(i: &Item) -> Result<arca_service::api::UsageLimit, Failure> {
    use arca_core::model::UsageUnit;
    use arca_kmip::enums::usage_limits_unit;
    let total = i.req(tags::USAGE_LIMITS_TOTAL)?.long_integer()?;
    if total < 1 {
        return Err(Failure::invalid_field(
            "Usage Limits Total must be at least 1",
        ));
    }
    let unit = match i.req(tags::USAGE_LIMITS_UNIT)?.enumeration()? {
        usage_limits_unit::BYTE => UsageUnit::Byte,
        usage_limits_unit::OBJECT => UsageUnit::Object,
        other => {
            return Err(Failure::invalid_field(format!(
                "Usage Limits Unit {other:#x} is not Byte or Object"
            )))
        }
    };
    Ok(arca_service::api::UsageLimit {
        unit,
        total: total as u64,
    })
}

/// A key's Usage Limits attribute: its budget and what is left of it.
fn usage_limits_item(l: &arca_core::model::UsageLimits) -> Item {
    use arca_core::model::UsageUnit;
    use arca_kmip::enums::usage_limits_unit;
    let unit = match l.unit {
        UsageUnit::Byte => usage_limits_unit::BYTE,
        UsageUnit::Object => usage_limits_unit::OBJECT,
    };
    Item::structure(
        tags::USAGE_LIMITS,
        vec![
            Item::new(tags::USAGE_LIMITS_TOTAL, Value::LongInteger(l.total as i64)),
            Item::new(
                tags::USAGE_LIMITS_COUNT,
                Value::LongInteger(l.remaining as i64),
            ),
            Item::enum_item(tags::USAGE_LIMITS_UNIT, unit),
        ],
    )
}

/// The Random Number Generator that made a key's material, for keys Arca generated:
/// aws-lc's CTR_DRBG over AES-256 (NIST SP 800-90A) for software keys; an HSM's generator
/// is the token's own, which Arca cannot name. Imported keys have none.
pub fn generator_of(info: &KeyInfo) -> Option<Item> {
    use arca_kmip::enums::{drbg_algorithm, rng_algorithm};
    if info.origin != arca_core::model::Origin::Generated {
        return None;
    }
    let parts = if info.protection_level == "HSM" {
        vec![Item::enum_item(
            tags::RNG_ALGORITHM,
            rng_algorithm::UNSPECIFIED,
        )]
    } else {
        vec![
            Item::enum_item(tags::RNG_ALGORITHM, rng_algorithm::DRBG),
            Item::enum_item(tags::CRYPTOGRAPHIC_ALGORITHM, alg::AES),
            Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 256),
            Item::enum_item(tags::DRBG_ALGORITHM, drbg_algorithm::CTR),
        ]
    };
    Some(Item::structure(tags::RANDOM_NUMBER_GENERATOR, parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_both_ways() {
        assert_eq!(
            spaced_name(tags::CRYPTOGRAPHIC_USAGE_MASK),
            "Cryptographic Usage Mask"
        );
        assert_eq!(spaced_name(tags::OBJECT_GROUP), "Object Group");
        let a = from_v1(&Item::structure(
            tags::ATTRIBUTE,
            vec![
                Item::text_item(tags::ATTRIBUTE_NAME, "Cryptographic Length"),
                Item::int_item(tags::ATTRIBUTE_VALUE, 128),
            ],
        ))
        .unwrap();
        assert_eq!(
            a,
            Attr::Std(Item::int_item(tags::CRYPTOGRAPHIC_LENGTH, 128))
        );
        assert_eq!(from_v1(&render(&a, false)).unwrap(), a);
        assert_eq!(
            spec_of(alg::TRIPLE_DES, Some(168)).unwrap(),
            KeySpec::TripleDes
        );
        assert!(spec_of(alg::TRIPLE_DES, Some(112)).is_err());
        assert_eq!(spec_of(alg::AES, Some(128)).unwrap(), KeySpec::Aes128);
    }
}
