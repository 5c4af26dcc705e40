//! Google Workspace client-side encryption: Arca as the customer's Key Access Control List
//! Service (KACLS), per Google's reference (developers.google.com/workspace/cse/reference).
//!
//! Served under `[cse] path_prefix` of the HTTPS listener: `GET status`, `POST wrap` and
//! `POST unwrap`, JSON, with CORS for Google's client origin. Each request carries two JWTs
//! (the customer identity provider's authentication token and Google's authorization
//! token) that [`Service::authenticate_cse`] checks; wrapping and unwrapping are the
//! service's raw AES-256-GCM operations under the configured Arca key, with the document's
//! `resource_name` as associated data, so a wrapped key opens only for the document it
//! was wrapped for, and the key's policy, lifecycle, approvals and audit apply. Errors
//! have Google's structured shape: `{"code": <HTTP status>, "message", "details"}`.
//!
//! The wrapped key is `01 || key version (4 bytes, big-endian) || IV (12) || tag (16) ||
//! ciphertext`: Arca keeps nothing per wrapped key, as the reference asks.

use std::sync::Arc;

use arca_core::cipher::RawMode;
use arca_core::{Action, Error};
use arca_service::api::{Bytes, RawCipher, RawDecryptRequest, RawEncryptRequest, Secret};
use arca_service::delegated::{CseCheck, CseGrant};
use arca_service::{Caller, Door};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use crate::config::CseConfig;
use crate::rest::{meta_of, status_of, AppState, JsonBody};

type App = Arc<AppState>;

/// The origin of Google's CSE clients, which the reference says a KACLS must allow.
pub const GOOGLE_ORIGIN: &str = "https://client-side-encryption.google.com";
/// The largest data encryption key `wrap` takes (the reference's limit).
pub const MAX_DEK: usize = 128;
/// The longest `reason` (the reference's limit: 1 KB).
pub const MAX_REASON: usize = 1024;
const BLOB_V1: u8 = 1;

/// The KACLS routes under the prefix (none while the door is off).
pub fn routes(cfg: &CseConfig) -> Router<App> {
    if cfg.access.is_none() {
        return Router::new();
    }
    let p = &cfg.path_prefix;
    Router::new()
        .route(&format!("{p}/status"), get(status).options(preflight))
        .route(&format!("{p}/wrap"), post(wrap).options(preflight))
        .route(&format!("{p}/unwrap"), post(unwrap).options(preflight))
}

/// Google's structured error reply.
fn error(e: &Error) -> Response {
    let status = status_of(e);
    let message = match e {
        Error::Internal { .. } => "internal error; the server's log has the detail".to_string(),
        other => other.to_string(),
    };
    cors(
        (
            status,
            Json(json!({"code": status.as_u16(), "message": message, "details": e.code()})),
        )
            .into_response(),
    )
}

fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static(GOOGLE_ORIGIN),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    r
}

async fn preflight() -> Response {
    let mut r = cors(StatusCode::NO_CONTENT.into_response());
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("3600"),
    );
    r
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn unb64(field: &str, v: &str) -> Result<Vec<u8>, Error> {
    b64()
        .decode(v.as_bytes())
        .map_err(|_| Error::invalid(field, "is not base64"))
}

/// `GET status`: what this KACLS is and which methods it serves.
async fn status() -> Response {
    cors(
        Json(json!({
            "server_type": "KACLS",
            "vendor_id": "Arca",
            "version": env!("CARGO_PKG_VERSION"),
            "name": "Arca KACLS",
            "operations_supported": ["wrap", "unwrap"],
        }))
        .into_response(),
    )
}

#[derive(Deserialize)]
struct WrapBody {
    authentication: String,
    authorization: String,
    key: String,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
struct UnwrapBody {
    authentication: String,
    authorization: String,
    wrapped_key: String,
    #[serde(default)]
    reason: String,
}

/// Both tokens checked for one of `roles`: the caller and the grant.
async fn authenticate(
    app: &AppState,
    parts: &axum::http::request::Parts,
    authentication: &str,
    authorization: &str,
    roles: &[&str],
) -> Result<(Caller, CseGrant), Response> {
    let mut meta = meta_of(parts);
    meta.door = Door::Cse;
    let access = app
        .cse
        .access
        .as_ref()
        .ok_or_else(|| error(&Error::internal("the CSE door runs without access")))?;
    let check = CseCheck {
        access,
        authorization_issuers: &app.cse.authorization_issuers,
        kacls_url: &app.cse.kacls_url,
        roles,
    };
    app.svc
        .authenticate_cse(authentication, authorization, &check, meta)
        .await
        .map_err(|e| error(&e))
}

/// The body, parsed (a malformed one recorded as a refused `action`), or the error.
async fn body<T: serde::de::DeserializeOwned>(
    app: &AppState,
    parts: &axum::http::request::Parts,
    body: JsonBody,
    action: Action,
) -> Result<T, Response> {
    let mut meta = meta_of(parts);
    meta.door = Door::Cse;
    body.parse_or_error::<T>(app, &meta, action)
        .await
        .map_err(|e| error(&e))
}

/// The `reason` a Google client gives: kept to the reference's size.
fn check_reason(reason: &str) -> Result<(), Error> {
    if reason.len() > MAX_REASON {
        return Err(Error::invalid(
            "reason",
            format!("at most {MAX_REASON} bytes"),
        ));
    }
    Ok(())
}

/// `POST wrap`: the DEK under the Arca key, bound to the resource (role `writer`).
async fn wrap(
    State(app): State<App>,
    parts: axum::http::request::Parts,
    raw: JsonBody,
) -> Response {
    let b: WrapBody = match body(&app, &parts, raw, Action::Encrypt).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (caller, grant) = match authenticate(
        &app,
        &parts,
        &b.authentication,
        &b.authorization,
        &["writer"],
    )
    .await
    {
        Ok(c) => c,
        Err(r) => return r,
    };
    let r = async {
        // The body's fields are checked inside the service's call, so that a refusal is
        // audited as the operation's, naming the user and the resource.
        let resource = grant.resource_name.clone();
        let e = app
            .svc
            .encrypt_raw_with(&caller, &app.cse.key, move |_| {
                check_reason(&b.reason)?;
                let dek = unb64("key", &b.key)?;
                if dek.is_empty() || dek.len() > MAX_DEK {
                    return Err(Error::invalid("key", format!("1 to {MAX_DEK} bytes")));
                }
                Ok(RawEncryptRequest {
                    cipher: RawCipher::Aes(RawMode::Gcm),
                    data: Secret::new(zeroize::Zeroizing::new(dek)),
                    iv: None,
                    aad: resource.into_bytes(),
                    tag_length: None,
                    stream: None,
                    integrity_check: None,
                })
            })
            .await?;
        let (iv, tag) = match (e.iv, e.tag) {
            (Some(iv), Some(tag)) => (iv.0, tag.0),
            _ => return Err(Error::internal("AES-GCM answered without IV or tag")),
        };
        let mut blob = vec![BLOB_V1];
        blob.extend_from_slice(&e.key_version.to_be_bytes());
        blob.extend_from_slice(&iv);
        blob.extend_from_slice(&tag);
        blob.extend_from_slice(&e.data.0);
        Ok(json!({"wrapped_key": b64().encode(blob)}))
    }
    .await;
    match r {
        Ok(v) => cors(Json(v).into_response()),
        Err(e) => error(&e),
    }
}

/// `POST unwrap`: the DEK back, for the resource it was wrapped for (role `reader` or
/// `writer`).
async fn unwrap(
    State(app): State<App>,
    parts: axum::http::request::Parts,
    raw: JsonBody,
) -> Response {
    let b: UnwrapBody = match body(&app, &parts, raw, Action::Decrypt).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (caller, grant) = match authenticate(
        &app,
        &parts,
        &b.authentication,
        &b.authorization,
        &["reader", "writer"],
    )
    .await
    {
        Ok(c) => c,
        Err(r) => return r,
    };
    let r = async {
        let resource = grant.resource_name.clone();
        let r = app
            .svc
            .decrypt_raw_with(&caller, &app.cse.key, move |_| {
                check_reason(&b.reason)?;
                let blob = unb64("wrapped_key", &b.wrapped_key)?;
                let bad = || Error::unprocessable("wrapped_key", "not a key wrapped by this KACLS");
                if blob.len() < 1 + 4 + 12 + 16 + 1 || blob[0] != BLOB_V1 {
                    return Err(bad());
                }
                let version = u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]);
                Ok(RawDecryptRequest {
                    cipher: RawCipher::Aes(RawMode::Gcm),
                    iv: Some(blob[5..17].to_vec()),
                    tag: Some(blob[17..33].to_vec()),
                    data: Bytes(blob[33..].to_vec()),
                    aad: resource.into_bytes(),
                    key_version: Some(version),
                })
            })
            .await?;
        Ok(json!({"key": b64().encode(&r.data.0[..])}))
    }
    .await;
    match r {
        Ok(v) => cors(Json(v).into_response()),
        Err(e) => error(&e),
    }
}
