//! Key policies: get, put and list. AWS's one policy per key ("default"), translated to
//! and from Arca's statements in `aws::policy`; apart for that translation.

use arca_core::Error;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{input, map_error, AwsError, Call, KeyIdOnly, Out};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyInput {
    key_id: String,
    #[serde(default)]
    policy_name: Option<String>,
    #[serde(default)]
    policy: Option<String>,
}

fn policy_name(n: Option<&str>) -> Result<(), AwsError> {
    match n {
        None | Some("default") => Ok(()),
        Some(other) => Err(AwsError::new(
            "NotFoundException",
            format!("a key has one policy, \"default\", not {other:?}"),
        )),
    }
}

/// The service's refusal of a translated policy, in AWS's words.
fn policy_error(e: Error) -> AwsError {
    match e {
        Error::InvalidInput { field, message } if field.starts_with("statements") => AwsError {
            audited: true,
            ..AwsError::new(
                "MalformedPolicyDocumentException",
                format!("{field}: {message}"),
            )
        },
        e => map_error(e),
    }
}

/// GetKeyPolicy: the key's statements in AWS's policy language.
pub(super) async fn get_policy(call: &Call<'_>, body: &Value) -> Out {
    let i: PolicyInput = input(body)?;
    policy_name(i.policy_name.as_deref())?;
    let k = call.describe(&i.key_id).await?;
    let p = call
        .door
        .svc
        .get_key_policy(call.caller, &k.id.to_string())
        .await
        .map_err(map_error)?;
    Ok(json!({
        "Policy": crate::aws::policy::to_aws(&p.statements, &call.account()).to_string(),
        "PolicyName": "default",
    }))
}

/// PutKeyPolicy: replaces the key's statements but keeps its grants.
pub(super) async fn put_policy(call: &Call<'_>, body: &Value) -> Out {
    let i: PolicyInput = input(body)?;
    policy_name(i.policy_name.as_deref())?;
    let doc = i
        .policy
        .ok_or_else(|| AwsError::validation("1 validation error detected: Policy is required"))?;
    let mut statements = crate::aws::policy::from_aws(&doc, &call.account())?;
    let k = call.describe(&i.key_id).await?;
    // Grants are not part of an AWS key policy document: the new policy keeps them.
    let current = call
        .door
        .svc
        .get_key_policy(call.caller, &k.id.to_string())
        .await
        .map_err(map_error)?;
    statements.extend(current.statements.into_iter().filter(|s| s.grant.is_some()));
    call.door
        .svc
        .put_key_policy(call.caller, &k.id.to_string(), statements, None)
        .await
        .map_err(policy_error)?;
    Ok(json!({}))
}

/// ListKeyPolicies: a key has one policy, "default".
pub(super) async fn list_policies(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    call.describe(&i.key_id).await?;
    Ok(json!({"PolicyNames": ["default"], "Truncated": false}))
}
