//! Imported key material: import parameters, import and delete. Apart because only
//! keys of origin EXTERNAL take it, which AWS refuses with its own error.

use arca_core::{Error, Fault};
use arca_service::api::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{b64, epoch, input, map_error, parse_enum, AwsError, Call, KeyIdOnly, Out};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportParametersInput {
    key_id: String,
    wrapping_algorithm: String,
    wrapping_key_spec: String,
}

/// Only keys of origin EXTERNAL take imported material (AWS says UnsupportedOperation).
fn import_error(e: Error) -> AwsError {
    match e {
        Error::Unprocessable {
            fault: Fault::UnsuitableKey,
            message,
            ..
        } => AwsError {
            audited: true,
            ..AwsError::unsupported(message)
        },
        e => map_error(e),
    }
}

/// GetParametersForImport: a wrapping key and an import token.
pub(super) async fn import_parameters(call: &Call<'_>, body: &Value) -> Out {
    let i: ImportParametersInput = input(body)?;
    let wrapping_algorithm = match i.wrapping_algorithm.as_str() {
        "SM2PKE" => {
            return Err(AwsError::unsupported(
                "WrappingAlgorithm SM2PKE is not supported by Arca",
            ))
        }
        a => parse_enum("wrappingAlgorithm", a)?,
    };
    let wrapping_key_spec = match i.wrapping_key_spec.as_str() {
        s @ ("RSA_2048" | "RSA_3072" | "RSA_4096") => parse_enum("wrappingKeySpec", s)?,
        "SM2" => {
            return Err(AwsError::unsupported(
                "WrappingKeySpec SM2 is not supported by Arca",
            ))
        }
        s => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{s}' at 'wrappingKeySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, RSA_3072, RSA_4096, SM2]"
            )))
        }
    };
    let k = call.describe(&i.key_id).await?;
    let p = call
        .door
        .svc
        .get_import_parameters(
            call.caller,
            &k.id.to_string(),
            arca_service::byok::ImportParametersRequest {
                wrapping_algorithm,
                wrapping_key_spec,
            },
        )
        .await
        .map_err(import_error)?;
    Ok(json!({
        "KeyId": call.key_arn(p.key_id),
        "ImportToken": b64(&p.import_token.0),
        "PublicKey": b64(&p.public_key.0),
        "ParametersValidTo": epoch(p.parameters_valid_to),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportMaterialInput {
    key_id: String,
    import_token: Bytes,
    encrypted_key_material: Bytes,
    #[serde(default)]
    valid_to: Option<f64>,
    #[serde(default)]
    expiration_model: Option<String>,
    #[serde(default)]
    import_type: Option<String>,
}

/// ImportKeyMaterial: a key's first material, or the same material again.
pub(super) async fn import_material(call: &Call<'_>, body: &Value) -> Out {
    let i: ImportMaterialInput = input(body)?;
    if i.import_type.as_deref() == Some("NEW_KEY_MATERIAL") {
        return Err(AwsError::unsupported(
            "ImportType NEW_KEY_MATERIAL is not supported by Arca: rotate imported keys over REST with their new material",
        ));
    }
    let valid_to = match (i.expiration_model.as_deref(), i.valid_to) {
        (Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), Some(_)) => {
            return Err(AwsError::validation(
                "ValidTo must not be given with ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE",
            ))
        }
        (Some("KEY_MATERIAL_DOES_NOT_EXPIRE"), None) => None,
        (None | Some("KEY_MATERIAL_EXPIRES"), Some(t)) => Some(
            chrono::DateTime::from_timestamp_millis((t * 1000.0) as i64)
                .ok_or_else(|| AwsError::validation("ValidTo is not a valid time"))?,
        ),
        (Some("KEY_MATERIAL_EXPIRES"), None) => {
            return Err(AwsError::validation(
                "ValidTo is required with ExpirationModel KEY_MATERIAL_EXPIRES",
            ))
        }
        (None, None) => None,
        (Some(m), _) => {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{m}' at 'expirationModel' failed to satisfy constraint: Member must satisfy enum value set: [KEY_MATERIAL_EXPIRES, KEY_MATERIAL_DOES_NOT_EXPIRE]"
            )))
        }
    };
    let k = call.describe(&i.key_id).await?;
    let k = call
        .door
        .svc
        .import_key_material(
            call.caller,
            &k.id.to_string(),
            arca_service::byok::ImportMaterialRequest {
                import_token: i.import_token,
                encrypted_key_material: i.encrypted_key_material,
                valid_to,
            },
        )
        .await
        .map_err(import_error)?;
    Ok(json!({"KeyId": call.key_arn(k.id)}))
}

/// DeleteImportedKeyMaterial.
pub(super) async fn delete_material(call: &Call<'_>, body: &Value) -> Out {
    let i: KeyIdOnly = input(body)?;
    let k = call.describe(&i.key_id).await?;
    call.door
        .svc
        .delete_imported_material(call.caller, &k.id.to_string())
        .await
        .map_err(import_error)?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key not made for imported material is AWS's UnsupportedOperationException on the
    /// import operations; other refusals keep their names.
    #[test]
    fn a_key_not_made_for_import_is_unsupported() {
        let a = import_error(Error::unsuitable_key("not made for import"));
        assert_eq!(a.error, "UnsupportedOperationException");
        assert_eq!(a.message, "not made for import");
        assert!(a.audited);
        assert_eq!(
            import_error(Error::expired_import_token()).error,
            "ExpiredImportTokenException"
        );
        assert_eq!(
            import_error(Error::wrong_usage("m")).error,
            "InvalidKeyUsageException"
        );
    }
}
