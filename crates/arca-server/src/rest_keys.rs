//! REST routes of keys: creating, listing and describing keys, their versions, history and
//! public keys, the cryptographic operations (made by `key_op!`), lifecycle moves, decrypting
//! any ciphertext, random bytes and aliases. Thin like the rest of the door: decode, call one
//! service method, encode.

use arca_core::Action;
use std::sync::Arc;

use arca_core::Error;
use arca_service::api::*;
use arca_service::{Caller, LifecycleAction};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};

use crate::rest::{ApiError, AppState, Authed, EmptyRequest, ErrorBody, JsonBody};
use crate::rest_extract::extract_quoted;

type App = Arc<AppState>;

fn parse_version(s: &str) -> Result<u32, ApiError> {
    s.parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(|| {
        ApiError(Error::invalid(
            "version",
            format!("{s:?} is not a version number"),
        ))
    })
}

macro_rules! key_op {
    ($fn:ident, $method:ident, $path:literal, $action:expr, $req:ty, $resp:ty, $desc:literal, |$svc:ident, $caller:ident, $key:ident, $r:ident| $call:expr) => {
        #[doc = $desc]
        #[utoipa::path($method, path = $path, tag = "crypto", description = $desc,
                    params(("key" = String, Path, description = "key id, name or alias")),
                    request_body = $req,
                    responses((status = 200, body = $resp), (status = "4XX", body = ErrorBody)),
                    security(("bearer" = [])))]
        pub async fn $fn(
            State(app): State<App>,
            Authed(caller): Authed,
            Path(key): Path<String>,
            body: JsonBody,
        ) -> Result<Json<$resp>, Response> {
            let $r: $req = body.parse(&app, &caller, $action).await?;
            let $svc = &app.svc;
            let $caller = &caller;
            let $key = key.as_str();
            $call
                .await
                .map(Json)
                .map_err(|e| ApiError(e).into_response())
        }
    };
}

key_op!(
    encrypt,
    post,
    "/v1/keys/{key}/encrypt",
    Action::Encrypt,
    EncryptRequest,
    EncryptResponse,
    "Encrypts under the key's primary version.",
    |s, c, k, r| s.encrypt(c, k, r)
);
key_op!(
    decrypt_with,
    post,
    "/v1/keys/{key}/decrypt",
    Action::Decrypt,
    DecryptRequest,
    DecryptResponse,
    "Decrypts; the ciphertext must have been made with this key.",
    |s, c, k, r| s.decrypt(c, Some(k), r)
);
key_op!(
    re_encrypt,
    post,
    "/v1/keys/{key}/re-encrypt",
    Action::ReEncrypt,
    ReEncryptRequest,
    ReEncryptResponse,
    "Decrypts under the key the ciphertext names and encrypts under this key, server-side.",
    |s, c, k, r| s.re_encrypt(c, k, r)
);
key_op!(
    gen_data_key,
    post,
    "/v1/keys/{key}/generate-data-key",
    Action::GenerateDataKey,
    GenerateDataKeyRequest,
    DataKeyResponse,
    "Generates a data key; returns it in plaintext and encrypted under this key.",
    |s, c, k, r| s.generate_data_key(c, k, r, true)
);
key_op!(
    gen_data_key_wo,
    post,
    "/v1/keys/{key}/generate-data-key-without-plaintext",
    Action::GenerateDataKeyWithoutPlaintext,
    GenerateDataKeyRequest,
    DataKeyResponse,
    "Generates a data key; returns it only encrypted under this key.",
    |s, c, k, r| s.generate_data_key(c, k, r, false)
);
key_op!(
    gen_pair,
    post,
    "/v1/keys/{key}/generate-data-key-pair", Action::GenerateDataKeyPair, GenerateDataKeyPairRequest, DataKeyPairResponse, "Generates an asymmetric data key pair; the private key in plaintext and encrypted under this key.", |s, c, k, r| s.generate_data_key_pair(c, k, r, true));
key_op!(
    gen_pair_wo,
    post,
    "/v1/keys/{key}/generate-data-key-pair-without-plaintext",
    Action::GenerateDataKeyPairWithoutPlaintext,
    GenerateDataKeyPairRequest,
    DataKeyPairResponse,
    "Generates an asymmetric data key pair; the private key only encrypted under this key.",
    |s, c, k, r| s.generate_data_key_pair(c, k, r, false)
);
key_op!(
    sign,
    post,
    "/v1/keys/{key}/sign",
    Action::Sign,
    SignRequest,
    SignResponse,
    "Signs a message or digest with the primary version.",
    |s, c, k, r| s.sign(c, k, r)
);
key_op!(
    verify,
    post,
    "/v1/keys/{key}/verify",
    Action::Verify,
    VerifyRequest,
    VerifyResponse,
    "Verifies a signature (200 with valid=false when it does not verify).",
    |s, c, k, r| s.verify(c, k, r)
);
key_op!(
    gen_mac,
    post,
    "/v1/keys/{key}/generate-mac",
    Action::GenerateMac,
    MacRequest,
    MacResponse,
    "Computes an HMAC with the primary version.",
    |s, c, k, r| s.generate_mac(c, k, r)
);
key_op!(
    verify_mac,
    post,
    "/v1/keys/{key}/verify-mac",
    Action::VerifyMac,
    MacVerifyRequest,
    VerifyResponse,
    "Verifies an HMAC in constant time.",
    |s, c, k, r| s.verify_mac(c, k, r)
);
key_op!(
    decapsulate,
    post,
    "/v1/keys/{key}/decapsulate",
    Action::Decapsulate,
    DecapsulateRequest,
    DecapsulateResponse,
    "ML-KEM decapsulation.",
    |s, c, k, r| s.decapsulate(c, k, r)
);
key_op!(
    export,
    post,
    "/v1/keys/{key}/export",
    Action::ExportKey,
    ExportRequest,
    ExportResponse,
    "Exports plaintext material of a key created extractable.",
    |s, c, k, r| s.export_key(c, k, r)
);
key_op!(
    rotate,
    post,
    "/v1/keys/{key}/rotate",
    Action::RotateKey,
    RotateRequest,
    KeyInfo,
    "Rotates now: a new primary version. Imported keys bring the new material.",
    |s, c, k, r| s.rotate_key(c, k, r)
);
key_op!(
    import_parameters,
    post,
    "/v1/keys/{key}/import-parameters",
    Action::GetParametersForImport,
    arca_service::byok::ImportParametersRequest,
    arca_service::byok::ImportParameters,
    "A wrapping public key and an import token (24 hours) for a key created with pending_import.",
    |s, c, k, r| s.get_import_parameters(c, k, r)
);
key_op!(
    import_material,
    post,
    "/v1/keys/{key}/import",
    Action::ImportKeyMaterial,
    arca_service::byok::ImportMaterialRequest,
    KeyInfo,
    "Imports wrapped material with an import token; optionally with an expiry (valid_to).",
    |s, c, k, r| s.import_key_material(c, k, r)
);
key_op!(
    delete_imported_material,
    post,
    "/v1/keys/{key}/delete-imported-material",
    Action::DeleteImportedKeyMaterial,
    EmptyRequest,
    KeyInfo,
    "Deletes an imported key's material; the key waits for the same material again.",
    |s, c, k, _r| s.delete_imported_material(c, k)
);
key_op!(
    export_wrapped,
    post,
    "/v1/keys/{key}/export-wrapped",
    Action::ExportKey,
    arca_service::byok::TransferRequest,
    arca_service::byok::TransferResponse,
    "Exports an extractable key wrapped for another key manager: an Arca AES key (AES-KWP), AWS KMS ImportKeyMaterial, a Google Cloud KMS import job, or an Azure Key Vault .byok blob.",
    |s, c, k, r| s.export_for_transfer(c, k, r)
);
key_op!(
    update_key,
    patch,
    "/v1/keys/{key}",
    Action::UpdateKey,
    UpdateKeyRequest,
    KeyInfo,
    "Changes description, tags, meta, rotation period and dates (PATCH).",
    |s, c, k, r| s.update_key(c, k, r)
);

/// ML-KEM encapsulation against the primary version.
#[utoipa::path(post, path = "/v1/keys/{key}/encapsulate", tag = "crypto",
    params(("key" = String, Path, description = "key id, name or alias")),
    responses((status = 200, body = EncapsulateResponse), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn encapsulate(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(key): Path<String>,
    body: JsonBody,
) -> Result<Json<EncapsulateResponse>, Response> {
    let _: EmptyRequest = body.parse(&app, &caller, Action::Encapsulate).await?;
    app.svc
        .encapsulate(&caller, &key)
        .await
        .map(Json)
        .map_err(|e| ApiError(e).into_response())
}

/// Creates a key (generated, or imported with `material`).
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKeyRequest,
    responses((status = 201, body = KeyInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_key(
    State(app): State<App>,
    Authed(caller): Authed,
    body: JsonBody,
) -> Result<(StatusCode, Json<KeyInfo>), Response> {
    let r: CreateKeyRequest = body.parse(&app, &caller, Action::CreateKey).await?;
    app.svc
        .create_key(&caller, r)
        .await
        .map(|k| (StatusCode::CREATED, Json(k)))
        .map_err(|e| ApiError(e).into_response())
}

/// Lists keys with filters and cursor pagination.
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    params(("name" = Option<String>, Query, description = "substring of the name"), ("alias" = Option<String>, Query), ("state" = Option<String>, Query), ("spec" = Option<String>, Query),
        ("tag" = Option<Vec<String>>, Query, description = "key=value, repeatable"), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = KeyList), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_keys(
    State(app): State<App>,
    Authed(caller): Authed,
    RawQuery(q): RawQuery,
) -> Result<Json<KeyList>, Response> {
    let query = match parse_list_query(q.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => {
            return Err(ApiError(
                app.svc
                    .audit_refusal(&caller.meta, Some(&caller.principal), Action::ListKeys, e)
                    .await,
            )
            .into_response())
        }
    };
    app.svc
        .list_keys(&caller, query)
        .await
        .map(Json)
        .map_err(|e| ApiError(e).into_response())
}

fn parse_list_query(q: &str) -> Result<ListKeysQuery, Error> {
    let mut out = ListKeysQuery::default();
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            "name" => out.name = Some(v),
            "alias" => out.alias = Some(v),
            "state" => out.state = Some(arca_core::model::KeyState::parse("state", &v)?),
            "spec" => out.spec = Some(arca_core::model::KeySpec::parse("spec", &v)?),
            "tag" => out.tag.push(v),
            "limit" => {
                out.limit = Some(
                    v.parse()
                        .map_err(|_| Error::invalid("limit", "must be a number from 1 to 1000"))?,
                )
            }
            "cursor" => out.cursor = Some(v),
            other => {
                return Err(Error::invalid(
                    other,
                    "unknown query parameter; known: name, alias, state, spec, tag, limit, cursor",
                ))
            }
        }
    }
    Ok(out)
}

/// Describes a key.
#[utoipa::path(get, path = "/v1/keys/{key}", tag = "keys", params(("key" = String, Path, description = "key id, name or alias")),
    responses((status = 200, body = KeyInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn describe_key(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(key): Path<String>,
) -> Result<Json<KeyInfo>, ApiError> {
    Ok(Json(app.svc.describe_key(&caller, &key).await?))
}

/// A key's versions.
#[utoipa::path(get, path = "/v1/keys/{key}/versions", tag = "keys", params(("key" = String, Path, description = "key id, name or alias")),
    responses((status = 200, body = Vec<VersionInfo>), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_versions(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(key): Path<String>,
) -> Result<Json<Vec<VersionInfo>>, ApiError> {
    Ok(Json(app.svc.describe_key(&caller, &key).await?.versions))
}

/// A key's history: transitions, rotations, changes, with actor, reason and time.
#[utoipa::path(get, path = "/v1/keys/{key}/history", tag = "keys", params(("key" = String, Path, description = "key id, name or alias")),
    responses((status = 200, body = KeyHistory), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn key_history(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(key): Path<String>,
) -> Result<Json<KeyHistory>, ApiError> {
    Ok(Json(app.svc.key_history(&caller, &key).await?))
}

/// The public key (SPKI, DER and PEM) of an asymmetric key.
#[utoipa::path(get, path = "/v1/keys/{key}/public-key", tag = "crypto",
    params(("key" = String, Path, description = "key id, name or alias"), ("version" = Option<u32>, Query, description = "default: primary")),
    responses((status = 200, body = PublicKeyResponse), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn public_key(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(key): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<PublicKeyResponse>, ApiError> {
    let mut version = None;
    for (k, v) in form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "version" => version = Some(parse_version(&v)?),
            other => {
                return Err(ApiError(
                    app.svc
                        .audit_refusal(
                            &caller.meta,
                            Some(&caller.principal),
                            Action::GetPublicKey,
                            Error::invalid(other, "unknown query parameter; known: version"),
                        )
                        .await,
                ))
            }
        }
    }
    Ok(Json(app.svc.get_public_key(&caller, &key, version).await?))
}

fn lifecycle_action(
    app_action: &str,
    body: &serde_json::Value,
) -> Result<(LifecycleAction, Option<String>), Error> {
    let de = |v: &serde_json::Value| -> Result<TransitionRequest, Error> {
        serde_path_to_error::deserialize(v.clone()).map_err(|e| {
            Error::invalid(
                extract_quoted(&e.inner().to_string()).unwrap_or_else(|| e.path().to_string()),
                e.inner().to_string(),
            )
        })
    };
    Ok(match app_action {
        "activate" => (LifecycleAction::Activate, de(body)?.reason),
        "suspend" => (LifecycleAction::Suspend, de(body)?.reason),
        "resume" => (LifecycleAction::Resume, de(body)?.reason),
        "report-compromise" => (LifecycleAction::ReportCompromise, de(body)?.reason),
        "archive" => (LifecycleAction::Archive, de(body)?.reason),
        "recover" => (LifecycleAction::Recover, de(body)?.reason),
        "cancel-destruction" => (LifecycleAction::CancelDestruction, de(body)?.reason),
        "deactivate" => {
            let r: DeactivateRequest =
                serde_path_to_error::deserialize(body.clone()).map_err(|e| {
                    let field = if e.path().to_string() == "." {
                        extract_quoted(&e.inner().to_string()).unwrap_or_else(|| "reason".into())
                    } else {
                        e.path().to_string()
                    };
                    Error::invalid(
                        field,
                        format!(
                            "{}; reason is one of EXPIRED, REVOKED, SUPERSEDED",
                            e.inner()
                        ),
                    )
                })?;
            (LifecycleAction::Deactivate(r.reason), r.comment)
        }
        "schedule-destruction" => {
            let r: ScheduleDestructionRequest = serde_path_to_error::deserialize(body.clone())
                .map_err(|e| {
                    let field = if e.path().to_string() == "." {
                        extract_quoted(&e.inner().to_string()).unwrap_or_else(|| "body".into())
                    } else {
                        e.path().to_string()
                    };
                    Error::invalid(field, e.inner().to_string())
                })?;
            (
                LifecycleAction::ScheduleDestruction {
                    pending_window_days: r.pending_window_days,
                    suspend_if_active: false,
                },
                r.reason,
            )
        }
        other => return Err(Error::not_found("operation", other)),
    })
}

async fn run_lifecycle(
    app: &AppState,
    caller: &Caller,
    key: &str,
    version: Option<u32>,
    action: &str,
    body: JsonBody,
) -> Result<Json<KeyInfo>, Response> {
    let v: serde_json::Value = body.parse(app, caller, Action::Lifecycle).await?;
    let (a, reason) = match lifecycle_action(action, &v) {
        Ok(x) => x,
        Err(e) => {
            return Err(ApiError(
                app.svc
                    .audit_refusal(&caller.meta, Some(&caller.principal), Action::Lifecycle, e)
                    .await,
            )
            .into_response())
        }
    };
    app.svc
        .lifecycle(caller, key, version, a, reason)
        .await
        .map(Json)
        .map_err(|e| ApiError(e).into_response())
}

/// Moves a key through its lifecycle: `activate`, `suspend`, `resume`, `deactivate`
/// (`{"reason": "EXPIRED|REVOKED|SUPERSEDED", "comment"}`), `report-compromise`, `archive`,
/// `recover`, `schedule-destruction` (`{"pending_window_days": 1..365}`),
/// `cancel-destruction`. Others take `{"reason": "free text"}`.
#[utoipa::path(post, path = "/v1/keys/{key}/{action}", tag = "lifecycle",
    params(("key" = String, Path, description = "key id, name or alias"), ("action" = String, Path, description = "activate | suspend | resume | deactivate | report-compromise | archive | recover | schedule-destruction | cancel-destruction")),
    request_body(content = Object, description = "TransitionRequest, DeactivateRequest or ScheduleDestructionRequest"),
    responses((status = 200, body = KeyInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn key_lifecycle(
    State(app): State<App>,
    Authed(caller): Authed,
    Path((key, action)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<KeyInfo>, Response> {
    run_lifecycle(&app, &caller, &key, None, &action, body).await
}

/// The same lifecycle moves for one version of a key.
#[utoipa::path(post, path = "/v1/keys/{key}/versions/{version}/{action}", tag = "lifecycle",
    params(("key" = String, Path, description = "key id, name or alias"), ("version" = u32, Path), ("action" = String, Path)),
    request_body(content = Object, description = "TransitionRequest, DeactivateRequest or ScheduleDestructionRequest"),
    responses((status = 200, body = KeyInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn version_lifecycle(
    State(app): State<App>,
    Authed(caller): Authed,
    Path((key, version, action)): Path<(String, String, String)>,
    body: JsonBody,
) -> Result<Json<KeyInfo>, Response> {
    let v = parse_version(&version).map_err(IntoResponse::into_response)?;
    run_lifecycle(&app, &caller, &key, Some(v), &action, body).await
}

/// Decrypts any Arca ciphertext of the tenant; the key and version come from it.
#[utoipa::path(post, path = "/v1/decrypt", tag = "crypto", request_body = DecryptRequest,
    responses((status = 200, body = DecryptResponse), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn decrypt_any(
    State(app): State<App>,
    Authed(caller): Authed,
    body: JsonBody,
) -> Result<Json<DecryptResponse>, Response> {
    let r: DecryptRequest = body.parse(&app, &caller, Action::Decrypt).await?;
    app.svc
        .decrypt(&caller, None, r)
        .await
        .map(Json)
        .map_err(|e| ApiError(e).into_response())
}

/// Random bytes from the server's CSPRNG.
#[utoipa::path(post, path = "/v1/random", tag = "crypto", request_body = RandomRequest,
    responses((status = 200, body = RandomResponse), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn random(
    State(app): State<App>,
    Authed(caller): Authed,
    body: JsonBody,
) -> Result<Json<RandomResponse>, Response> {
    let r: RandomRequest = body.parse(&app, &caller, Action::GenerateRandom).await?;
    app.svc
        .generate_random(&caller, r)
        .await
        .map(Json)
        .map_err(|e| ApiError(e).into_response())
}

/// Lists aliases (all of the tenant's, or `?key=` one key's).
#[utoipa::path(get, path = "/v1/aliases", tag = "aliases", params(("key" = Option<String>, Query)),
    responses((status = 200, body = AliasList), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_aliases(
    State(app): State<App>,
    Authed(caller): Authed,
    RawQuery(q): RawQuery,
) -> Result<Json<AliasList>, ApiError> {
    let mut key = None;
    for (k, v) in form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "key" => key = Some(v.into_owned()),
            other => {
                return Err(ApiError(
                    app.svc
                        .audit_refusal(
                            &caller.meta,
                            Some(&caller.principal),
                            Action::ListAliases,
                            Error::invalid(other, "unknown query parameter; known: key"),
                        )
                        .await,
                ))
            }
        }
    }
    Ok(Json(app.svc.list_aliases(&caller, key.as_deref()).await?))
}

/// Creates an alias.
#[utoipa::path(post, path = "/v1/aliases", tag = "aliases", request_body = CreateAliasRequest,
    responses((status = 201, body = AliasInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_alias(
    State(app): State<App>,
    Authed(caller): Authed,
    body: JsonBody,
) -> Result<(StatusCode, Json<AliasInfo>), Response> {
    let r: CreateAliasRequest = body.parse(&app, &caller, Action::CreateAlias).await?;
    app.svc
        .create_alias(&caller, r)
        .await
        .map(|a| (StatusCode::CREATED, Json(a)))
        .map_err(|e| ApiError(e).into_response())
}

/// Points an alias at another key.
#[utoipa::path(put, path = "/v1/aliases/{alias}", tag = "aliases", params(("alias" = String, Path)), request_body = MoveAliasRequest,
    responses((status = 200, body = AliasInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn move_alias(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(alias): Path<String>,
    body: JsonBody,
) -> Result<Json<AliasInfo>, Response> {
    let r: MoveAliasRequest = body.parse(&app, &caller, Action::UpdateAlias).await?;
    app.svc
        .move_alias(&caller, &alias, r)
        .await
        .map(Json)
        .map_err(|e| ApiError(e).into_response())
}

/// Deletes an alias.
#[utoipa::path(delete, path = "/v1/aliases/{alias}", tag = "aliases", params(("alias" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_alias(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(alias): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.svc.delete_alias(&caller, &alias).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The key routes.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/keys", post(create_key).get(list_keys))
        .route("/v1/keys/{key}", get(describe_key).patch(update_key))
        .route("/v1/keys/{key}/versions", get(list_versions))
        .route("/v1/keys/{key}/history", get(key_history))
        .route("/v1/keys/{key}/public-key", get(public_key))
        .route("/v1/keys/{key}/rotate", post(rotate))
        .route("/v1/keys/{key}/import-parameters", post(import_parameters))
        .route("/v1/keys/{key}/import", post(import_material))
        .route("/v1/keys/{key}/export-wrapped", post(export_wrapped))
        .route(
            "/v1/keys/{key}/delete-imported-material",
            post(delete_imported_material),
        )
        .route("/v1/keys/{key}/encrypt", post(encrypt))
        .route("/v1/keys/{key}/decrypt", post(decrypt_with))
        .route("/v1/keys/{key}/re-encrypt", post(re_encrypt))
        .route("/v1/keys/{key}/generate-data-key", post(gen_data_key))
        .route(
            "/v1/keys/{key}/generate-data-key-without-plaintext",
            post(gen_data_key_wo),
        )
        .route("/v1/keys/{key}/generate-data-key-pair", post(gen_pair))
        .route(
            "/v1/keys/{key}/generate-data-key-pair-without-plaintext",
            post(gen_pair_wo),
        )
        .route("/v1/keys/{key}/sign", post(sign))
        .route("/v1/keys/{key}/verify", post(verify))
        .route("/v1/keys/{key}/generate-mac", post(gen_mac))
        .route("/v1/keys/{key}/verify-mac", post(verify_mac))
        .route("/v1/keys/{key}/encapsulate", post(encapsulate))
        .route("/v1/keys/{key}/decapsulate", post(decapsulate))
        .route("/v1/keys/{key}/export", post(export))
        .route("/v1/keys/{key}/{action}", post(key_lifecycle))
        .route(
            "/v1/keys/{key}/versions/{version}/{action}",
            post(version_lifecycle),
        )
        .route("/v1/decrypt", post(decrypt_any))
        .route("/v1/random", post(random))
        .route("/v1/aliases", get(list_aliases).post(create_alias))
        .route("/v1/aliases/{alias}", put(move_alias).delete(delete_alias))
}
