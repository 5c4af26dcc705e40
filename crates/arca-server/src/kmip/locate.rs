//! KMIP's Locate: the caller's objects (as the service lists them) filtered by attributes,
//! two filters on one date attribute making a range.

use arca_kmip::{tags, Item, Value};
use arca_service::api::ListKeysQuery;

use super::attrs::{self, Attr};
use super::ops::{failure, payload, uid_item, Ctx, OpResult};

impl Ctx<'_> {
    /// Locate: the ids of the caller's objects that match every filter, in pages
    /// (Maximum Items, Offset Items); a single match becomes the ID Placeholder.
    pub(super) async fn locate(&mut self, p: &Item) -> OpResult {
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
            // client asks by State. Destroyed as KMIP reports it: an object whose
            // destruction is scheduled is Destroyed to a KMIP client already.
            let by_state = filters.iter().any(|f| f.tag() == Some(tags::STATE));
            for k in &page.keys {
                let destroyed = matches!(
                    attrs::state_of(k),
                    arca_kmip::enums::state::DESTROYED
                        | arca_kmip::enums::state::DESTROYED_COMPROMISED
                );
                if destroyed && !by_state {
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
