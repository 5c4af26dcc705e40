//! Tags: tag, untag and list. Arca replaces a key's whole tag map, so AWS's per-tag
//! changes are a read, a change and a write back; apart for that.

use std::collections::BTreeMap;

use arca_core::Error;
use arca_service::api::UpdateKeyRequest;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    input, limit, map_error, page, paged, tags_in, tags_out, AwsError, Call, KeyPage, Out, Tag,
};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagInput {
    key_id: String,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    tag_keys: Vec<String>,
}

fn tag_error(e: Error) -> AwsError {
    match e {
        Error::InvalidInput { field, message } if field.starts_with("tags") => {
            AwsError::new("TagException", format!("{field}: {message}"))
        }
        e => map_error(e),
    }
}

/// Changes a key's tags: read, change, write back (Arca replaces the whole map).
async fn retag(
    call: &Call<'_>,
    key_id: &str,
    change: impl FnOnce(&mut BTreeMap<String, String>),
) -> Out {
    let k = call.describe(key_id).await?;
    let mut tags = k.tags.clone();
    change(&mut tags);
    call.door
        .svc
        .update_key(
            call.caller,
            &k.id.to_string(),
            UpdateKeyRequest {
                tags: Some(tags),
                ..Default::default()
            },
        )
        .await
        .map_err(tag_error)?;
    Ok(json!({}))
}

/// TagResource: adds the tags given, or changes their values.
pub(super) async fn tag(call: &Call<'_>, body: &Value) -> Out {
    let i: TagInput = input(body)?;
    let added = tags_in(i.tags);
    retag(call, &i.key_id, |t| t.extend(added)).await
}

/// UntagResource: removes the tag keys given.
pub(super) async fn untag(call: &Call<'_>, body: &Value) -> Out {
    let i: TagInput = input(body)?;
    retag(call, &i.key_id, |t| {
        for k in &i.tag_keys {
            t.remove(k);
        }
    })
    .await
}

/// ListResourceTags, paged here.
pub(super) async fn list_tags(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyPage = input(body)?;
    let limit = limit(i.limit, 50)?;
    let k = call.describe(&i.key_id).await?;
    let all: Vec<(String, String)> = k.tags.into_iter().collect();
    let (items, next) = page(&all, limit, i.marker.as_deref())?;
    Ok(paged(
        json!({"Tags": tags_out(&items.into_iter().collect())}),
        next,
    ))
}
