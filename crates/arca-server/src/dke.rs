//! Microsoft Purview Double Key Encryption (DKE): Arca as the customer's DKE key service.
//!
//! Office encrypts a document's content key under the public half of an Arca RSA-2048 key
//! that it fetches at `GET <prefix>/<keyName>` (no credential: the key is public), and asks
//! Arca to decrypt it at `POST <prefix>/<keyName>/<keyId>/decrypt` (`{"alg":
//! "RSA-OAEP-256","value":<base64>}`, answered `{"value":<base64>}`) with the user's Entra
//! ID token as a bearer token. The `kid` the GET answers is the URL the decrypt is posted
//! to, its last segment the version of the Arca key, so a rotated key still decrypts what
//! its earlier versions protected.
//!
//! A thin adapter: the token is judged, the user allowed or refused and the door's
//! principal chosen by [`Service::authenticate_delegated`]; the fetch and the decryption are
//! the service's `get_public_key` and `decrypt_raw`, so the key's policy, its lifecycle (a
//! suspended key refuses), approvals and audit apply, and each record names the user.

use std::sync::Arc;

use arca_core::cipher::OaepHash;
use arca_core::model::KeySpec;
use arca_core::{Action, Error};
use arca_service::api::{Bytes, RawCipher, RawDecryptRequest};
use arca_service::Door;
use arca_service::Service;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use crate::config::{DkeConfig, DkeKeyConfig};
use crate::rest::{meta_of, ApiError, AppState, JsonBody};

type App = Arc<AppState>;

/// The door name the public-key fetch is recorded under (its credential kind is `none`).
const DOOR: &str = "dke";

/// The only algorithm of DKE's decrypt: RSA-OAEP with SHA-256 (and MGF1-SHA-256).
pub const ALGORITHM: &str = "RSA-OAEP-256";

/// The DKE routes under the configured prefix (none when no key is configured).
pub fn routes(cfg: &DkeConfig) -> Router<App> {
    if cfg.keys.is_empty() {
        return Router::new();
    }
    let p = &cfg.path_prefix;
    Router::new()
        .route(&format!("{p}/{{name}}"), get(public_key))
        .route(&format!("{p}/{{name}}/{{key_id}}/decrypt"), post(decrypt))
}

fn key_config<'a>(app: &'a AppState, name: &str) -> Result<&'a DkeKeyConfig, ApiError> {
    app.dke
        .keys
        .iter()
        .find(|k| k.name == name)
        .ok_or_else(|| ApiError(Error::not_found("dke key", name)))
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// `GET <prefix>/<keyName>`: the key's public half as DKE's JSON (`kty`, `n` in base64,
/// `e` as a number, `alg` RS256 as the protocol names it, `kid` the decrypt URL without
/// `/decrypt`), and how long Office may cache it.
async fn public_key(
    State(app): State<App>,
    Path(name): Path<String>,
    parts: axum::http::request::Parts,
) -> Result<Response, ApiError> {
    let mut meta = meta_of(&parts);
    meta.door = Door::Dke;
    let k = key_config(&app, &name)?;
    let svc: &Service = &app.svc;
    let pk = svc
        .delegated_public_key(&k.access, &k.key, DOOR, meta)
        .await?;
    if pk.spec != KeySpec::Rsa2048 {
        return Err(ApiError(Error::unsuitable_key(format!(
            "a DKE key is RSA-2048; {} is {}",
            k.key, pk.spec
        ))));
    }
    let (n, e) = arca_crypto::der::rsa_public_components(&pk.public_key.0)
        .ok_or_else(|| ApiError(Error::internal("the key's public half does not parse")))?;
    let e = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .ok_or_else(|| ApiError(Error::invalid("host", "the request names no host")))?;
    let kid = format!(
        "https://{host}{}/{name}/{}",
        app.dke.path_prefix, pk.key_version
    );
    let mut body = json!({
        "key": {"kty": "RSA", "n": b64().encode(n), "e": e, "alg": "RS256", "kid": kid},
    });
    if app.dke.public_key_cache_days > 0 {
        let exp = app.svc.now() + chrono::Duration::days(i64::from(app.dke.public_key_cache_days));
        body["cache"] = json!({"exp": exp.format("%Y-%m-%dT%H:%M:%S").to_string()});
    }
    Ok(Json(body).into_response())
}

/// The body of a decrypt request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecryptBody {
    alg: String,
    value: String,
}

/// `POST <prefix>/<keyName>/<keyId>/decrypt`: RSA-OAEP-SHA-256 decryption of `value` under
/// version `keyId` of the key, for the Entra user whose token is the bearer credential.
async fn decrypt(
    State(app): State<App>,
    Path((name, key_id)): Path<(String, String)>,
    parts: axum::http::request::Parts,
    body: JsonBody,
) -> Result<Response, Response> {
    let mut meta = meta_of(&parts);
    meta.door = Door::Dke;
    let k = key_config(&app, &name).map_err(IntoResponse::into_response)?;
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("");
    // A missing token is judged like a bad one, so that the refusal is recorded.
    let caller = app
        .svc
        .authenticate_delegated(token, &k.access, meta)
        .await
        .map_err(|e| ApiError(e).into_response())?;
    let body = body
        .parse::<DecryptBody>(&app, &caller, Action::Decrypt)
        .await?;
    let refuse = |e: Error| ApiError(e).into_response();
    // The body's fields are checked inside the service's call, so that a refusal is
    // audited as the Decrypt's, naming the user.
    let r = app
        .svc
        .decrypt_raw_with(&caller, &k.key, move |_| {
            if body.alg != ALGORITHM {
                return Err(Error::invalid(
                    "alg",
                    format!("{:?} is not supported: DKE decrypts {ALGORITHM}", body.alg),
                ));
            }
            let version: u32 = key_id.parse().map_err(|_| {
                Error::not_found(
                    "version",
                    format!("{key_id} (a key id is the version number the public key named)"),
                )
            })?;
            let data = b64()
                .decode(body.value.as_bytes())
                .map_err(|_| Error::invalid("value", "is not base64"))?;
            Ok(RawDecryptRequest {
                cipher: RawCipher::RsaOaep(arca_core::cipher::OaepParams::plain(OaepHash::Sha256)),
                data: Bytes(data),
                iv: None,
                aad: Vec::new(),
                tag: None,
                key_version: Some(version),
            })
        })
        .await
        .map_err(refuse)?;
    Ok(Json(json!({"value": b64().encode(&r.data.0[..])})).into_response())
}
