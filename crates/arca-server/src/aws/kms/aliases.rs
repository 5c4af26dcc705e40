//! Aliases: create, update (move), delete and list. Apart because AWS's alias names
//! (`alias/...`, `alias/aws/` reserved) are checked here before the service sees them.

use arca_core::Error;
use arca_service::api::{CreateAliasRequest, MoveAliasRequest};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{input, limit, map_error, page, paged, AwsError, Call, Out};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasInput {
    alias_name: String,
    #[serde(default)]
    target_key_id: Option<String>,
}

fn alias_name(a: &str) -> Result<&str, AwsError> {
    let Some(n) = a.strip_prefix("alias/") else {
        return Err(AwsError::validation(format!(
            "Alias must start with the prefix \"alias/\": {a}"
        )));
    };
    if n.starts_with("aws/") {
        return Err(AwsError::new(
            "NotAuthorizedException",
            "alias/aws/ is reserved for AWS managed keys",
        ));
    }
    Ok(n)
}

/// CreateAlias, or UpdateAlias (the alias moves to another key) when `update`.
pub(super) async fn alias(call: &Call<'_>, body: &Value, update: bool) -> Out {
    let i: AliasInput = input(body)?;
    let name = alias_name(&i.alias_name)?;
    let target = i.target_key_id.ok_or_else(|| {
        AwsError::validation("1 validation error detected: TargetKeyId is required")
    })?;
    let target = call.key_ref(&target)?;
    let svc = &call.door.svc;
    let r = if update {
        svc.move_alias(call.caller, name, MoveAliasRequest { key: target })
            .await
    } else {
        svc.create_alias(
            call.caller,
            CreateAliasRequest {
                alias: name.to_string(),
                key: target,
            },
        )
        .await
    };
    r.map_err(|e| match e {
        Error::InvalidInput { field, message } if field == "alias" => {
            AwsError::new("InvalidAliasNameException", message)
        }
        e => map_error(e),
    })?;
    Ok(json!({}))
}

/// DeleteAlias.
pub(super) async fn delete_alias(call: &Call<'_>, body: &Value) -> Out {
    let i: AliasInput = input(body)?;
    let name = alias_name(&i.alias_name)?;
    call.door
        .svc
        .delete_alias(call.caller, name)
        .await
        .map_err(map_error)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListAliasesInput {
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    marker: Option<String>,
}

/// ListAliases, of one key or of all; paged here over the service's list.
pub(super) async fn list_aliases(call: &Call<'_>, body: &Value) -> Out {
    let i: ListAliasesInput = input(body)?;
    let limit = limit(i.limit, 100)?;
    let key = match &i.key_id {
        Some(k) => Some(call.describe(k).await?.id.to_string()),
        None => None,
    };
    let list = call
        .door
        .svc
        .list_aliases(call.caller, key.as_deref())
        .await
        .map_err(map_error)?;
    let all: Vec<Value> = list
        .aliases
        .iter()
        .map(|a| {
            json!({
                "AliasName": format!("alias/{}", a.alias),
                "AliasArn": call.alias_arn(&a.alias),
                "TargetKeyId": a.key_id.to_string(),
            })
        })
        .collect();
    let (items, next) = page(&all, limit, i.marker.as_deref())?;
    Ok(paged(json!({"Aliases": items}), next))
}
