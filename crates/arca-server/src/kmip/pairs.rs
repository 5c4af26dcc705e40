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
use arca_service::api::{Secret, UpdateKeyRequest};
use zeroize::Zeroizing;

use super::attrs::{self, Attr, Extras};
use super::ops::{creation_failure, failure, payload, uid_item, Ctx, OpResult};

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
    pub(super) async fn create_key_pair(&mut self, p: &Item) -> OpResult {
        let caller = self.caller()?.clone();
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
        let spec = pair_spec(&private)?;
        let priv_req = self.key_request(spec, &private, None, None)?;
        let priv_name = priv_req.name.clone();
        let priv_info = self
            .svc
            .create_key(&caller, priv_req)
            .await
            .map_err(creation_failure)?;
        let priv_id = priv_info.id.to_string();
        let spki = self
            .svc
            .get_public_key(&caller, &priv_id, None)
            .await
            .map_err(failure)?
            .public_key
            .0;
        let mut pub_req = self.key_request(
            spec,
            &public,
            Some(Secret::new(Zeroizing::new(spki))),
            Some("PublicKey".into()),
        )?;
        if pub_req.name == priv_name {
            // Both halves were named alike; Arca's own names are unique, KMIP's need not be.
            pub_req.name = format!("kmip-{}", uuid::Uuid::new_v4().simple());
        }
        let mut pub_extras: Extras = pub_req
            .meta
            .as_ref()
            .and_then(|m| m.get("kmip"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        pub_extras
            .links
            .push((link_type::PRIVATE_KEY_LINK, priv_id.clone()));
        pub_req.meta = Some(pub_extras.into_meta(&serde_json::Value::Null));
        let pub_info = self
            .svc
            .create_key(&caller, pub_req)
            .await
            .map_err(creation_failure)?;
        let pub_id = pub_info.id.to_string();
        let mut priv_extras = Extras::of(&priv_info);
        priv_extras
            .links
            .push((link_type::PUBLIC_KEY_LINK, pub_id.clone()));
        self.svc
            .update_key(
                &caller,
                &priv_id,
                UpdateKeyRequest {
                    meta: Some(priv_extras.into_meta(&priv_info.meta)),
                    ..Default::default()
                },
            )
            .await
            .map_err(failure)?;
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
        let old_extras = Extras::of(&old);
        if attrs::object_type_of(&old, &old_extras) != object_type::SYMMETRIC_KEY {
            return Err(Failure::invalid_field(
                "ReKey renews symmetric keys; use ReKey Key Pair for pairs",
            ));
        }
        let mut carried: Vec<Attr> = old_extras.other_attrs();
        carried.extend(
            attrs::object_attributes(&old)
                .into_iter()
                .filter(|a| matches!(a.tag(), Some(tags::NAME | tags::CRYPTOGRAPHIC_USAGE_MASK))),
        );
        carried.extend(attrs::group(
            p.child(tags::TEMPLATE_ATTRIBUTE)
                .or(p.child(tags::ATTRIBUTES)),
        )?);
        let now = self.svc.now();
        let offset = p.child(tags::OFFSET).map(Item::interval).transpose()?;
        let mut req = self.key_request(old.spec, &carried, None, None)?;
        if matches!(req.name.as_str(), n if n == old.name) {
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
        let mut new_extras: Extras = req
            .meta
            .as_ref()
            .and_then(|m| m.get("kmip"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        new_extras
            .links
            .push((link_type::REPLACED_OBJECT_LINK, id.clone()));
        req.meta = Some(new_extras.into_meta(&serde_json::Value::Null));
        let new = self
            .svc
            .create_key(&caller, req)
            .await
            .map_err(creation_failure)?;
        let new_id = new.id.to_string();
        let mut moved = old_extras;
        moved.names.clear();
        moved.names_moved = true;
        moved
            .links
            .push((link_type::REPLACEMENT_OBJECT_LINK, new_id.clone()));
        self.svc
            .update_key(
                &caller,
                &id,
                UpdateKeyRequest {
                    meta: Some(moved.into_meta(&old.meta)),
                    ..Default::default()
                },
            )
            .await
            .map_err(failure)?;
        self.placeholder = Some(new_id.clone());
        Ok(payload(vec![uid_item(&new_id)]))
    }
}
