//! KMIP's attribute operations: Get Attributes, Get Attribute List, and Add, Modify, Set
//! and Delete Attribute. What an attribute is and how it is kept is `attrs`'; this is the
//! operations' reading of their requests (1.x and 2.x shapes) and their edits.

use arca_kmip::enums::result_reason as reason;
use arca_kmip::{tags, Failure, Item, Value};
use arca_service::api::KeyInfo;

use super::attrs::{self, Attr, Extras};
use super::ops::{failure, payload, uid_item, Ctx, OpResult};

impl Ctx<'_> {
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
                tags::ATTRIBUTE_REFERENCE => match reference(i)? {
                    Reference::Std(t) => tags_wanted.push(t),
                    Reference::Custom(n) => custom.push(n),
                },
                _ => {}
            }
        }
        Ok((tags_wanted, custom))
    }

    /// Get Attributes: those named (all of them when none is), in the shape of the
    /// client's version.
    pub(super) async fn get_attributes(&mut self, p: &Item) -> OpResult {
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
    /// Type, Short Unique Identifier and Protection Storage Mask; those KMIP 1.3 added are left out for older clients, which could not decode them.
    fn attributes_of(&self, info: &KeyInfo) -> Vec<Attr> {
        let mut all = attrs::object_attributes(info);
        if self.version.is_v2() {
            // KMIP 2.x made a key's Key Format Type an attribute: the format it is kept in.
            let extras = attrs::Extras::of(info);
            let ot = attrs::object_type_of(info, &extras);
            let f = attrs::default_format(info.spec, ot);
            all.push(Attr::Std(Item::enum_item(tags::KEY_FORMAT_TYPE, f)));
            // KMIP 2.x: the SHA-256 of the Unique Identifier, a fixed-size handle a client
            // may keep instead of the identifier.
            all.push(Attr::Std(Item::new(
                tags::SHORT_UNIQUE_IDENTIFIER,
                arca_kmip::Value::bytes(arca_crypto::digest::digest(
                    arca_core::model::DigestAlgorithm::Sha256,
                    info.id.to_string().as_bytes(),
                )),
            )));
            // KMIP 2.x: where the object is kept. An HSM-held key's material never leaves
            // the token (Hardware); every other key is wrapped by Arca's software root.
            let storage = if info.protection_level == "HSM" {
                arca_kmip::enums::protection_storage_mask::HARDWARE
            } else {
                arca_kmip::enums::protection_storage_mask::SOFTWARE
            };
            all.push(Attr::Std(Item::int_item(
                tags::PROTECTION_STORAGE_MASK,
                storage as i32,
            )));
        }
        // A client holds any object it fetches on the server's lease (Obtain Lease renews
        // it): the Lease Time is the service's, the same for every object.
        all.push(Attr::Std(Item::new(
            tags::LEASE_TIME,
            arca_kmip::Value::Interval(self.svc.config().lease_time_secs),
        )));
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

    /// Get Attribute List: the names (1.x) or references (2.x) of the attributes the
    /// object has, each once.
    pub(super) async fn get_attribute_list(&mut self, p: &Item) -> OpResult {
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
                // 2.x names a vendor attribute by its vendor and name (`x-ID` is `x`/`ID`).
                (Attr::Custom { name, .. }, true) => {
                    let (vendor, plain) = name.split_once('-').unwrap_or(("x", name));
                    Item::structure(
                        tags::ATTRIBUTE_REFERENCE,
                        vec![
                            Item::text_item(tags::VENDOR_IDENTIFICATION, vendor),
                            Item::text_item(tags::ATTRIBUTE_NAME, plain),
                        ],
                    )
                }
                _ => Item::text_item(tags::ATTRIBUTE_NAME, key),
            });
        }
        self.placeholder = Some(id);
        Ok(payload(out))
    }

    /// Add, Modify, Set and Delete Attribute: edits the attributes Arca keeps for KMIP
    /// (names, links, object groups, custom attributes...) and the dates it has fields for.
    pub(super) async fn edit_attribute(&mut self, p: &Item, edit: Edit) -> OpResult {
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
                        (None, Some(r)) => Some(match reference(r)? {
                            Reference::Std(t) => Attr::Std(Item::new(t, Value::Structure(vec![]))),
                            Reference::Custom(name) => Attr::Custom {
                                name,
                                value: Item::new(tags::ATTRIBUTE_VALUE, Value::Structure(vec![])),
                            },
                        }),
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
        // KMIP 1.x answers a Delete Attribute with the attribute it deleted.
        let deleted = (edit == Edit::Delete)
            .then(|| {
                attrs::object_attributes(info)
                    .into_iter()
                    .filter(|x| same(x))
                    .nth(index)
            })
            .flatten();
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
                // Names are unique: the object may not hold the same one twice (other
                // objects' names are refused by the service when they become the key's
                // Arca name, at Create and Register).
                if edit != Edit::Delete {
                    let v = value()?;
                    let taken = extras
                        .names
                        .iter()
                        .enumerate()
                        .any(|(n, have)| *have == v && !(edit != Edit::Add && n == index));
                    if taken {
                        return Err(Failure::new(
                            reason::NON_UNIQUE_NAME_ATTRIBUTE,
                            format!("the object already has the Name {v:?}"),
                        ));
                    }
                }
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
        if !self.version.is_v2() {
            match (edit, &deleted) {
                (Edit::Delete, Some(d)) => out.push(attrs::render(d, false)),
                (Edit::Delete, None) => {}
                _ => out.push(attrs::render(&a, false)),
            }
        }
        Ok(payload(out))
    }
}

/// Which attribute edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Edit {
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

/// Attributes only the server sets (those a certificate states among them).
fn is_server_managed(tag: u32) -> bool {
    super::certificates::DERIVED.contains(&tag)
        || matches!(
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
                | tags::SHORT_UNIQUE_IDENTIFIER
                | tags::PROTECTION_STORAGE_MASK
                // Set once at creation; the service alone spends it.
                | tags::USAGE_LIMITS
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

/// What a 2.x Attribute Reference names: a standard attribute by its tag (an Enumeration),
/// or a vendor attribute by vendor and name (a structure; `x`/`ID` is 1.x's `x-ID`).
enum Reference {
    Std(u32),
    Custom(String),
}

/// Reads an Attribute Reference in either of its shapes.
fn reference(i: &Item) -> Result<Reference, Failure> {
    Ok(match &i.value {
        Value::Enumeration(t) => Reference::Std(*t),
        _ => {
            let n = i.req(tags::ATTRIBUTE_NAME)?.text()?;
            Reference::Custom(match i.child(tags::VENDOR_IDENTIFICATION) {
                Some(v) => format!("{}-{n}", v.text()?),
                None => n.to_owned(),
            })
        }
    })
}
