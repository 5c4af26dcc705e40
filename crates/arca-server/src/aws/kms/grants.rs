//! Grants: create, list, retire and revoke. Apart because AWS's grant tokens and
//! principals are shaped here from Arca's grants.

use std::collections::BTreeMap;

use arca_core::Error;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{epoch, input, limit, map_error, page, paged, AwsError, Call, Out};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GrantConstraints {
    #[serde(default)]
    encryption_context_subset: Option<BTreeMap<String, String>>,
    #[serde(default)]
    encryption_context_equals: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateGrantInput {
    key_id: String,
    grantee_principal: String,
    #[serde(default)]
    retiring_principal: Option<String>,
    operations: Vec<String>,
    #[serde(default)]
    constraints: Option<GrantConstraints>,
    #[serde(default)]
    name: Option<String>,
}

/// A grant token names the key and the grant: RetireGrant takes it alone.
fn grant_token(key: Uuid, grant_id: &str) -> String {
    format!("{key}.{grant_id}")
}

/// CreateGrant; the token it returns names key and grant, so that RetireGrant can take
/// it alone.
pub(super) async fn create_grant(call: &Call<'_>, body: &Value) -> Out {
    let i: CreateGrantInput = input(body)?;
    let account = call.account();
    let subject = |p: &str| {
        crate::aws::policy::subject(p, &account).map_err(|e| AwsError::validation(e.message))
    };
    let grantee = subject(&i.grantee_principal)?;
    let retiring = match &i.retiring_principal {
        Some(r) => Some(subject(r)?),
        None => None,
    };
    let subset = match i.constraints {
        Some(GrantConstraints {
            encryption_context_equals: Some(_),
            ..
        }) => {
            return Err(AwsError::unsupported(
                "EncryptionContextEquals is not supported by Arca: use EncryptionContextSubset",
            ))
        }
        Some(c) => c.encryption_context_subset.unwrap_or_default(),
        None => BTreeMap::new(),
    };
    let k = call.describe(&i.key_id).await?;
    let g = call
        .door
        .svc
        .create_grant(
            call.caller,
            &k.id.to_string(),
            arca_service::grants::CreateGrantRequest {
                grantee,
                operations: i.operations,
                retiring_principal: retiring,
                encryption_context_subset: subset,
                name: i.name,
            },
        )
        .await
        .map_err(map_error)?;
    Ok(json!({"GrantToken": grant_token(k.id, &g.grant_id), "GrantId": g.grant_id}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListGrantsInput {
    key_id: String,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    marker: Option<String>,
    #[serde(default)]
    grant_id: Option<String>,
    #[serde(default)]
    grantee_principal: Option<String>,
}

/// ListGrants of a key, filtered here by `GrantId` and `GranteePrincipal`.
pub(super) async fn list_grants(call: &Call<'_>, body: &Value) -> Out {
    let i: ListGrantsInput = input(body)?;
    let limit = limit(i.limit, 100)?;
    let k = call.describe(&i.key_id).await?;
    let account = call.account();
    let grants = call
        .door
        .svc
        .list_grants(call.caller, &k.id.to_string())
        .await
        .map_err(map_error)?;
    let all: Vec<Value> = grants
        .iter()
        .filter(|g| i.grant_id.as_deref().is_none_or(|id| id == g.grant_id))
        .filter(|g| {
            i.grantee_principal
                .as_deref()
                .is_none_or(|p| crate::aws::policy::principal_arn(&g.grantee, &account) == p)
        })
        .map(|g| {
            let mut v = json!({
                "KeyId": call.key_arn(g.key_id),
                "GrantId": g.grant_id,
                "CreationDate": epoch(g.created_at),
                "GranteePrincipal": crate::aws::policy::principal_arn(&g.grantee, &account),
                "IssuingAccount": format!("arn:aws:iam::{account}:root"),
                "Operations": g.operations,
            });
            if let Some(n) = &g.name {
                v["Name"] = json!(n);
            }
            if let Some(r) = &g.retiring_principal {
                v["RetiringPrincipal"] = json!(crate::aws::policy::principal_arn(r, &account));
            }
            if !g.encryption_context_subset.is_empty() {
                v["Constraints"] = json!({"EncryptionContextSubset": g.encryption_context_subset});
            }
            v
        })
        .collect();
    let (items, next) = page(&all, limit, i.marker.as_deref())?;
    Ok(paged(json!({"Grants": items}), next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RemoveGrantInput {
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    grant_id: Option<String>,
    #[serde(default)]
    grant_token: Option<String>,
}

/// RetireGrant (by token, or by key and grant id) when `retire`, else RevokeGrant.
pub(super) async fn remove_grant(call: &Call<'_>, body: &Value, retire: bool) -> Out {
    let i: RemoveGrantInput = input(body)?;
    let (key, grant) = match (i.grant_token.as_deref(), i.key_id, i.grant_id) {
        (Some(t), _, _) if retire => {
            let (k, g) = t.split_once('.').ok_or_else(|| {
                AwsError::new(
                    "InvalidGrantTokenException",
                    "not a grant token Arca issued",
                )
            })?;
            (k.to_string(), g.to_string())
        }
        (_, Some(k), Some(g)) => (k, g),
        _ => {
            return Err(AwsError::validation(if retire {
                "give GrantToken, or KeyId and GrantId"
            } else {
                "KeyId and GrantId are required"
            }))
        }
    };
    let key = call.key_ref(&key)?;
    call.door
        .svc
        .remove_grant(call.caller, &key, &grant, retire)
        .await
        .map_err(|e| match e {
            Error::NotFound { kind: "grant", .. } => AwsError {
                audited: true,
                ..AwsError::new("InvalidGrantIdException", "no such grant on this key")
            },
            e => map_error(e),
        })?;
    Ok(json!({}))
}
