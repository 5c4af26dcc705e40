//! Keys themselves: create, describe, list, enable and disable, schedule and cancel
//! deletion, rotation and its settings, the description; and DescribeCustomKeyStores.
//! The operations that read or change a key's life and settings, not its uses.

use arca_core::model::{KeySpec, KeyState, KeyUsage};
use arca_core::Error;
use arca_service::api::{
    CreateKeyRequest, KeyInfo, ListKeysQuery, RotateRequest, UpdateKeyRequest,
};
use arca_service::LifecycleAction;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    arca_spec, arca_usage, epoch, input, limit, map_error, page, paged, tags_in, AwsError, Call,
    KeyIdOnly, KeyPage, Out, Tag,
};

/// DescribeCustomKeyStores: Arca has none. A question about the server, as KMIP's Query
/// is: authorised and recorded as one (it answered, unrecorded, before the access matrix).
pub(super) async fn custom_key_stores(call: &Call<'_>) -> Out {
    call.door
        .svc
        .query_server(call.caller)
        .await
        .map_err(map_error)?;
    Ok(json!({"CustomKeyStores": [], "Truncated": false}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateKeyInput {
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    key_usage: Option<String>,
    #[serde(default)]
    customer_master_key_spec: Option<String>,
    #[serde(default)]
    key_spec: Option<String>,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    custom_key_store_id: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    multi_region: Option<bool>,
}

/// CreateKey: AWS's spec, usage and origin in Arca's words; AWS keys have no name, so
/// the key gets a generated one.
pub(super) async fn create_key(call: &Call<'_>, body: &Value) -> Out {
    let i: CreateKeyInput = input(body)?;
    let policy = match &i.policy {
        Some(doc) => Some(crate::aws::policy::from_aws(doc, &call.account())?),
        None => None,
    };
    if i.custom_key_store_id.is_some() {
        return Err(AwsError::new(
            "CustomKeyStoreNotFoundException",
            "Arca has no custom key stores",
        ));
    }
    if i.multi_region == Some(true) {
        return Err(AwsError::unsupported(
            "multi-Region keys are not supported by Arca",
        ));
    }
    let pending_import = match i.origin.as_deref() {
        None | Some("AWS_KMS") => false,
        Some("EXTERNAL") => true,
        Some("AWS_CLOUDHSM") | Some("EXTERNAL_KEY_STORE") => {
            return Err(AwsError::unsupported(format!(
                "Origin {} is not supported by Arca yet",
                i.origin.unwrap_or_default()
            )))
        }
        Some(o) => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{o}' at 'origin' failed to satisfy constraint: Member must satisfy enum value set: [AWS_KMS, EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE]"
            )))
        }
    };
    let spec = match (i.key_spec.as_deref(), i.customer_master_key_spec.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(AwsError::validation(
                "You cannot specify both KeySpec and CustomerMasterKeySpec",
            ))
        }
        (Some(s), None) | (None, Some(s)) => arca_spec("keySpec", s)?,
        (None, None) => KeySpec::Aes256,
    };
    let usage = match i.key_usage.as_deref() {
        Some(u) => arca_usage(u)?,
        None if spec.family() == arca_core::model::KeyFamily::Hmac => {
            return Err(AwsError::validation(
                "KeyUsage GENERATE_VERIFY_MAC is required for HMAC key specs",
            ))
        }
        None => KeyUsage::EncryptDecrypt,
    };
    let req = CreateKeyRequest {
        // AWS keys have no name; Arca's must be unique and not a UUID.
        name: format!("aws-{}", Uuid::new_v4().simple()),
        description: i.description,
        spec: Some(spec),
        usage: Some(vec![usage]),
        tags: tags_in(i.tags),
        pending_import,
        policy,
        ..Default::default()
    };
    let k = call
        .door
        .svc
        .create_key(call.caller, req)
        .await
        .map_err(map_error)?;
    Ok(json!({"KeyMetadata": call.metadata(&k)}))
}

/// DescribeKey.
pub(super) async fn describe_key(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    let k = call.describe(&i.key_id).await?;
    Ok(json!({"KeyMetadata": call.metadata(&k)}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Page {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    marker: Option<String>,
}

/// ListKeys, without the deleted keys (AWS forgets them).
pub(super) async fn list_keys(call: &Call<'_>, body: &Value) -> Out {
    let i: Page = input(body)?;
    let limit = limit(i.limit, 1000)?;
    let page = call
        .door
        .svc
        .list_keys(
            call.caller,
            ListKeysQuery {
                limit: Some(limit),
                cursor: i.marker,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| match e {
            Error::InvalidInput { field, .. } if field == "cursor" => AwsError::new(
                "InvalidMarkerException",
                "the Marker is not one this listing returned",
            ),
            e => map_error(e),
        })?;
    let keys: Vec<Value> = page
        .keys
        .iter()
        .filter(|k| !k.state.is_destroyed())
        .map(|k| json!({"KeyId": k.id.to_string(), "KeyArn": call.key_arn(k.id)}))
        .collect();
    let mut out = json!({"Keys": keys, "Truncated": page.next_cursor.is_some()});
    if let Some(c) = page.next_cursor {
        out["NextMarker"] = json!(c);
    }
    Ok(out)
}

async fn lifecycle(
    call: &Call<'_>,
    key: &str,
    action: LifecycleAction,
) -> Result<KeyInfo, AwsError> {
    call.door
        .svc
        .lifecycle(call.caller, key, None, action, None)
        .await
        .map_err(map_error)
}

/// EnableKey, or DisableKey when not `enable`.
pub(super) async fn enable_disable(call: &Call<'_>, enable: bool, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    let k = call.describe(&i.key_id).await?;
    let id = k.id.to_string();
    if k.destroy_after.is_some() {
        return Err(AwsError::new(
            "KMSInvalidStateException",
            format!("{} is pending deletion.", call.key_arn(k.id)),
        ));
    }
    // AWS's two states map onto Arca's: Enabled is ACTIVE, Disabled is SUSPENDED (or any
    // state that applies no protection). Enabling or disabling twice changes nothing.
    let action = match (enable, k.state) {
        (true, KeyState::Active) | (false, KeyState::Suspended) => {
            // Nothing to change, but only for a caller who may make the change.
            let a = if enable {
                arca_core::Action::ResumeKey
            } else {
                arca_core::Action::SuspendKey
            };
            call.door
                .svc
                .acknowledge_unchanged(call.caller, &id, a)
                .await
                .map_err(map_error)?;
            return Ok(json!({}));
        }
        (true, KeyState::PreActive) => LifecycleAction::Activate,
        (true, _) => LifecycleAction::Resume,
        (false, _) => LifecycleAction::Suspend,
    };
    lifecycle(call, &id, action).await?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleInput {
    key_id: String,
    #[serde(default)]
    pending_window_in_days: Option<u32>,
}

/// ScheduleKeyDeletion, after 7 to 30 days.
pub(super) async fn schedule_deletion(call: &Call<'_>, body: &Value) -> Out {
    let i: ScheduleInput = input(body)?;
    let days = i.pending_window_in_days.unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30"
        )));
    }
    let k = call.describe(&i.key_id).await?;
    if k.destroy_after.is_some() {
        return Err(AwsError::new(
            "KMSInvalidStateException",
            format!("{} is pending deletion.", call.key_arn(k.id)),
        ));
    }
    let k = lifecycle(
        call,
        &k.id.to_string(),
        LifecycleAction::ScheduleDestruction {
            pending_window_days: Some(days),
            suspend_if_active: true,
        },
    )
    .await?;
    let mut out = json!({
        "KeyId": call.key_arn(k.id),
        "KeyState": "PendingDeletion",
        "PendingWindowInDays": days,
    });
    if let Some(d) = k.destroy_after {
        out["DeletionDate"] = epoch(d);
    }
    Ok(out)
}

/// CancelKeyDeletion.
pub(super) async fn cancel_deletion(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    let k = call.describe(&i.key_id).await?;
    // The service decides, authorization first: a key not pending deletion is its wrong
    // state (KMSInvalidStateException), told only to a caller who may cancel.
    // The key stays disabled (suspended), as AWS leaves it.
    let k = lifecycle(call, &k.id.to_string(), LifecycleAction::CancelDestruction).await?;
    Ok(json!({"KeyId": call.key_arn(k.id)}))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotationInput {
    key_id: String,
    #[serde(default)]
    rotation_period_in_days: Option<u32>,
}

async fn update(call: &Call<'_>, id: Uuid, req: UpdateKeyRequest) -> Result<KeyInfo, AwsError> {
    call.door
        .svc
        .update_key(call.caller, &id.to_string(), req)
        .await
        .map_err(map_error)
}

/// EnableKeyRotation, or DisableKeyRotation when not `enable`.
pub(super) async fn set_rotation(call: &Call<'_>, body: &Value, enable: bool) -> Out {
    let i: RotationInput = input(body)?;
    let days = if enable {
        let d = i.rotation_period_in_days.unwrap_or(365);
        if !(90..=2560).contains(&d) {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{d}' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between 90 and 2560"
            )));
        }
        Some(d)
    } else {
        None
    };
    let k = call.describe(&i.key_id).await?;
    update(
        call,
        k.id,
        UpdateKeyRequest {
            rotation_period_days: Some(days),
            ..Default::default()
        },
    )
    .await?;
    Ok(json!({}))
}

/// GetKeyRotationStatus.
pub(super) async fn rotation_status(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    let k = call.describe(&i.key_id).await?;
    let mut out = json!({
        "KeyId": call.key_arn(k.id),
        "KeyRotationEnabled": k.rotation_period_days.is_some(),
    });
    if let Some(d) = k.rotation_period_days {
        out["RotationPeriodInDays"] = json!(d);
    }
    if let Some(n) = k.next_rotation_at {
        out["NextRotationDate"] = epoch(n);
    }
    Ok(out)
}

/// RotateKeyOnDemand.
pub(super) async fn rotate(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    let k = call.describe(&i.key_id).await?;
    let k = call
        .door
        .svc
        .rotate_key(call.caller, &k.id.to_string(), RotateRequest::default())
        .await
        .map_err(map_error)?;
    Ok(json!({"KeyId": call.key_arn(k.id)}))
}

/// ListKeyRotations: every version after the first.
pub(super) async fn list_rotations(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyPage = input(body)?;
    let limit = limit(i.limit, 1000)?;
    let k = call.describe(&i.key_id).await?;
    let history = call
        .door
        .svc
        .key_history(call.caller, &k.id.to_string())
        .await
        .map_err(map_error)?;
    // Every version after the first is a rotation; the history says who made it.
    let rotations: Vec<Value> = k
        .versions
        .iter()
        .filter(|v| v.version > 1)
        .map(|v| {
            let automatic = history.events.iter().any(|e| {
                e.version == Some(v.version) && e.actor == "system" && e.action == "rotate"
            });
            json!({
                "KeyId": call.key_arn(k.id),
                "RotationDate": epoch(v.created_at),
                "RotationType": if automatic { "AUTOMATIC" } else { "ON_DEMAND" },
            })
        })
        .collect();
    let (items, next) = page(&rotations, limit, i.marker.as_deref())?;
    Ok(paged(json!({"Rotations": items}), next))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescriptionInput {
    key_id: String,
    description: String,
}

/// UpdateKeyDescription.
pub(super) async fn update_description(call: &Call<'_>, body: &Value) -> Out {
    let i: DescriptionInput = input(body)?;
    let k = call.describe(&i.key_id).await?;
    update(
        call,
        k.id,
        UpdateKeyRequest {
            description: Some(i.description),
            ..Default::default()
        },
    )
    .await?;
    Ok(json!({}))
}
