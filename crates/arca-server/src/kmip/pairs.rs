//! Create Key Pair and ReKey: operations that make one object out of another, and link them.
//!
//! KMIP models a key pair as two objects, a Private Key and a Public Key, linked to each
//! other; Arca makes the private key (generated, with its public half inside) and then a
//! second key that holds only the public half, so that each has its own lifecycle, as KMIP
//! clients expect. ReKey makes a new key that replaces the old one: the names move to the
//! new key and Replacement/Replaced links join them.

use arca_core::model::KeySpec;
use arca_kmip::enums::{cryptographic_algorithm as alg, link_type, object_type, recommended_curve};
use arca_kmip::{tags, Failure, Item};
use arca_service::api::{CreateKeyRequest, KeyInfo, Secret, UpdateKeyRequest};

use super::attrs::{self, Attr, Extras};
use super::ops::{creation_failure, failure, payload, uid_item, Ctx, Kept, OpResult};

/// The attributes of a pair's half: the common ones, then the half's own (which win).
fn merged(common: &[Attr], own: &[Attr]) -> Vec<Attr> {
    let mut out: Vec<Attr> = common
        .iter()
        .filter(|c| {
            c.tag()
                .is_none_or(|t| t == tags::NAME || !own.iter().any(|o| o.tag() == Some(t)))
        })
        .cloned()
        .collect();
    out.extend(own.iter().cloned());
    out
}

/// The attributes of each half of a pair: the common ones (1.x `CommonTemplateAttribute`,
/// 2.x `CommonAttributes`) merged with the half's own.
fn pair_attributes(p: &Item) -> Result<(Vec<Attr>, Vec<Attr>), Failure> {
    let pick = |v1, v2| attrs::group(p.child(v1).or(p.child(v2)));
    let common = pick(tags::COMMON_TEMPLATE_ATTRIBUTE, tags::COMMON_ATTRIBUTES)?;
    let private = merged(
        &common,
        &pick(
            tags::PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
            tags::PRIVATE_KEY_ATTRIBUTES,
        )?,
    );
    let public = merged(
        &common,
        &pick(
            tags::PUBLIC_KEY_TEMPLATE_ATTRIBUTE,
            tags::PUBLIC_KEY_ATTRIBUTES,
        )?,
    );
    Ok((private, public))
}

/// The key spec of a pair from its attributes: RSA with a length, or ECDSA/EC with a length
/// or a Recommended Curve.
fn pair_spec(attrs: &[Attr]) -> Result<KeySpec, Failure> {
    let algorithm = attrs::find(attrs, tags::CRYPTOGRAPHIC_ALGORITHM)
        .ok_or_else(|| Failure::invalid_field("CryptographicAlgorithm is required"))?
        .enumeration()?;
    let mut len = attrs::find(attrs, tags::CRYPTOGRAPHIC_LENGTH)
        .map(Item::integer)
        .transpose()?;
    let curve = attrs::find(attrs, tags::RECOMMENDED_CURVE)
        .or_else(|| {
            attrs::find(attrs, tags::CRYPTOGRAPHIC_DOMAIN_PARAMETERS)
                .and_then(|d| d.child(tags::RECOMMENDED_CURVE))
        })
        .map(Item::enumeration)
        .transpose()?;
    if let Some(c) = curve {
        len = Some(match c {
            recommended_curve::P_256 => 256,
            recommended_curve::P_384 => 384,
            recommended_curve::P_521 => 521,
            _ => {
                return Err(Failure::invalid_field(
                    "RecommendedCurve must be P_256, P_384 or P_521",
                ))
            }
        });
    }
    let spec = attrs::spec_of(algorithm, len)?;
    if !spec.is_asymmetric() || algorithm == alg::AES {
        return Err(Failure::invalid_field(
            "Create Key Pair makes RSA, ECDSA or Ed25519 pairs; use Create for symmetric keys",
        ));
    }
    Ok(spec)
}

impl Ctx<'_> {
    /// Both halves of a pair in one service call ([`arca_service::Service::create_key_pair`]):
    /// the public half's request is `public` of the private key and its SPKI, the halves are
    /// linked to each other, their names kept apart, and a refusal leaves neither.
    async fn create_pair(
        &self,
        caller: &arca_service::Caller,
        priv_req: CreateKeyRequest,
        public: impl FnOnce(&KeyInfo, Secret) -> Result<CreateKeyRequest, Failure> + Send,
    ) -> Result<(KeyInfo, KeyInfo), Failure> {
        let priv_name = priv_req.name.clone();
        let mut kept = Kept(None);
        self.svc
            .create_key_pair(
                caller,
                priv_req,
                |priv_info, spki| {
                    let mut pub_req = kept.wrap(public(priv_info, spki))?;
                    if pub_req.name == priv_name {
                        // Both halves were named alike; Arca's own names are unique,
                        // KMIP's need not be.
                        pub_req.name = format!("kmip-{}", uuid::Uuid::new_v4().simple());
                    }
                    Ok(pub_req)
                },
                |meta, pub_id| {
                    let mut e = Extras::of_meta(meta);
                    e.links
                        .push((link_type::PUBLIC_KEY_LINK, pub_id.to_string()));
                    *meta = e.into_meta(meta);
                },
            )
            .await
            .map_err(|e| kept.or(e, creation_failure))
    }

    pub(super) async fn create_key_pair(&mut self, p: &Item) -> OpResult {
        let caller = self.caller()?.clone();
        let (private, public) = pair_attributes(p)?;
        let spec = pair_spec(&private)?;
        let priv_req = self.key_request(spec, &private, None, None)?;
        let pub_req = self.key_request(spec, &public, None, Some("PublicKey".into()))?;
        let (priv_info, pub_info) = self
            .create_pair(&caller, priv_req, move |priv_info, spki| {
                let mut pub_req = pub_req;
                pub_req.material = Some(spki);
                let mut e = Extras::of_request(&pub_req);
                e.links
                    .push((link_type::PRIVATE_KEY_LINK, priv_info.id.to_string()));
                // The public half is stored as given material, but it came from Arca's
                // generator.
                if let Some(g) = attrs::generator_of(priv_info) {
                    e.push_other(&Attr::Std(g));
                }
                pub_req.meta = Some(e.into_meta(&serde_json::Value::Null));
                Ok(pub_req)
            })
            .await?;
        let (priv_id, pub_id) = (priv_info.id.to_string(), pub_info.id.to_string());
        self.placeholder = Some(priv_id.clone());
        Ok(payload(vec![
            Item::text_item(tags::PRIVATE_KEY_UNIQUE_IDENTIFIER, priv_id),
            Item::text_item(tags::PUBLIC_KEY_UNIQUE_IDENTIFIER, pub_id),
        ]))
    }

    /// ReKey: a new symmetric key of the same kind replaces the old one. The new key takes
    /// the old one's names, usage mask and other attributes; with an Offset, it activates
    /// that many seconds from now, else it is active at once if the old one was.
    pub(super) async fn rekey(&mut self, p: &Item) -> OpResult {
        let caller = self.caller()?.clone();
        let id = self.target(p)?;
        let old = self.describe(&id).await?;
        if attrs::object_type_of(&old, &Extras::of(&old)) != object_type::SYMMETRIC_KEY {
            return Err(Failure::invalid_field(
                "ReKey renews symmetric keys; use ReKey Key Pair for pairs",
            ));
        }
        let given = attrs::group(
            p.child(tags::TEMPLATE_ATTRIBUTE)
                .or(p.child(tags::ATTRIBUTES)),
        )?;
        let offset = p.child(tags::OFFSET).map(Item::interval).transpose()?;
        let req = self.replacement(&old, given, offset, None, None, vec![])?;
        let new = self
            .svc
            .create_key(&caller, req)
            .await
            .map_err(creation_failure)?;
        let new_id = new.id.to_string();
        self.retire(&old, &new_id).await?;
        self.placeholder = Some(new_id.clone());
        Ok(payload(vec![uid_item(&new_id)]))
    }

    /// ReKey Key Pair: a new pair replaces the old one, each half taking its predecessor's
    /// names, usage mask and attributes, linked to each other and to what they replace.
    pub(super) async fn rekey_key_pair(&mut self, p: &Item) -> OpResult {
        let caller = self.caller()?.clone();
        let priv_id = match p.child(tags::PRIVATE_KEY_UNIQUE_IDENTIFIER) {
            Some(i) => i.text()?.to_owned(),
            None => self.target(p)?,
        };
        let old_priv = self.describe(&priv_id).await?;
        let old_priv_extras = Extras::of(&old_priv);
        if attrs::object_type_of(&old_priv, &old_priv_extras) != object_type::PRIVATE_KEY {
            return Err(Failure::invalid_field(
                "ReKey Key Pair takes the private key of a pair",
            ));
        }
        let old_pub = match old_priv_extras
            .links
            .iter()
            .find(|(t, _)| *t == link_type::PUBLIC_KEY_LINK)
        {
            Some((_, id)) => Some(self.describe(id).await?),
            None => None,
        };
        let (private, public) = pair_attributes(p)?;
        let offset = p.child(tags::OFFSET).map(Item::interval).transpose()?;
        let priv_req = self.replacement(&old_priv, private, offset, None, None, vec![])?;
        let spec = old_priv.spec;
        let pub_template = match &old_pub {
            Some(old) => {
                self.replacement(old, public, offset, None, Some("PublicKey".into()), vec![])?
            }
            None => self.key_request(spec, &public, None, Some("PublicKey".into()))?,
        };
        let (new_priv, new_pub) = self
            .create_pair(&caller, priv_req, move |new_priv, spki| {
                let mut pub_req = pub_template;
                pub_req.material = Some(spki);
                let mut e = Extras::of_request(&pub_req);
                e.links
                    .push((link_type::PRIVATE_KEY_LINK, new_priv.id.to_string()));
                if let Some(g) = attrs::generator_of(new_priv) {
                    e.push_other(&Attr::Std(g));
                }
                pub_req.meta =
                    Some(e.into_meta(pub_req.meta.as_ref().unwrap_or(&serde_json::Value::Null)));
                Ok(pub_req)
            })
            .await?;
        let (new_priv_id, new_pub_id) = (new_priv.id.to_string(), new_pub.id.to_string());
        self.retire(&old_priv, &new_priv_id).await?;
        if let Some(old) = &old_pub {
            self.retire(old, &new_pub_id).await?;
        }
        self.placeholder = Some(new_priv_id.clone());
        Ok(payload(vec![
            Item::text_item(tags::PRIVATE_KEY_UNIQUE_IDENTIFIER, new_priv_id),
            Item::text_item(tags::PUBLIC_KEY_UNIQUE_IDENTIFIER, new_pub_id),
        ]))
    }

    /// The request for the key that replaces `old`: the same spec; its names, usage mask and
    /// client-set attributes, then `given`; a Replaced Object link to it and `links`; with
    /// an Offset, active that many seconds from now, else active at once if `old` was.
    fn replacement(
        &self,
        old: &KeyInfo,
        given: Vec<Attr>,
        offset: Option<u32>,
        material: Option<Secret>,
        object_type: Option<String>,
        links: Vec<(u32, String)>,
    ) -> Result<CreateKeyRequest, Failure> {
        let mut carried: Vec<Attr> = Extras::of(old).other_attrs();
        carried.extend(
            attrs::object_attributes(old)
                .into_iter()
                .filter(|a| matches!(a.tag(), Some(tags::NAME | tags::CRYPTOGRAPHIC_USAGE_MASK))),
        );
        carried.extend(given);
        let now = self.svc.now();
        let mut req = self.key_request(old.spec, &carried, material, object_type)?;
        // The replacement serves what the old key served, with the old key's whole usage
        // budget (KMIP: the Usage Limits Total is copied, the Count starts again).
        req.raw_cipher_modes = old.raw_cipher_modes;
        if req.usage_limits.is_none() {
            req.usage_limits = old.usage_limits.map(|l| arca_service::api::UsageLimit {
                unit: l.unit,
                total: l.total,
            });
        }
        if req.name == old.name {
            req.name = format!("kmip-{}", uuid::Uuid::new_v4().simple());
        }
        match offset {
            Some(s) => {
                req.pre_active = false;
                req.activation_date =
                    Some(now + chrono::Duration::seconds(s as i64)).filter(|t| *t > now);
            }
            None if old.state == arca_core::model::KeyState::Active => req.pre_active = false,
            None => {}
        }
        let mut e = Extras::of_request(&req);
        e.links
            .push((link_type::REPLACED_OBJECT_LINK, old.id.to_string()));
        e.links.extend(links);
        req.meta = Some(e.into_meta(&serde_json::Value::Null));
        Ok(req)
    }

    /// The replaced key gives its names to its replacement and links to it.
    async fn retire(&self, old: &KeyInfo, new_id: &str) -> Result<(), Failure> {
        let mut moved = Extras::of(old);
        moved.names.clear();
        moved.names_moved = true;
        moved
            .links
            .push((link_type::REPLACEMENT_OBJECT_LINK, new_id.to_owned()));
        self.svc
            .update_key(
                self.caller()?,
                &old.id.to_string(),
                UpdateKeyRequest {
                    meta: Some(moved.into_meta(&old.meta)),
                    ..Default::default()
                },
            )
            .await
            .map_err(failure)?;
        Ok(())
    }
}
