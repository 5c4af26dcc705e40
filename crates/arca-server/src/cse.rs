//! Google Workspace client-side encryption: Arca as the customer's Key Access Control List
//! Service (KACLS), per Google's reference (developers.google.com/workspace/cse/reference).
//!
//! Served under `[cse] path_prefix` of the HTTPS listener, JSON, with CORS for Google's
//! client origin: `GET status`; Drive, Docs, Meet and Calendar's `wrap`, `unwrap`,
//! `rewrap`, `digest` and `delegate`; Gmail's `privatekeydecrypt` and `privatekeysign`;
//! and, when `[cse.privileged]` is set, `privilegedwrap`, `privilegedunwrap`,
//! `privilegedprivatekeydecrypt` and `wrapprivatekey`. The tokens are checked by the
//! service ([`Service::authenticate_cse`] for the two-token methods,
//! [`Service::authorize_cse`] for the authorization-only ones,
//! [`Service::authenticate_cse_privileged`] for the privileged ones); every key operation
//! is the service's raw AES-256-GCM under the configured Arca key, so the key's policy,
//! lifecycle, approvals and audit apply, and what uses an unwrapped key without handing it
//! out (the resource key hash, a user's private key) runs inside the service
//! ([`Service::kacls_unwrap_use`]). Errors have Google's structured shape:
//! `{"code": <HTTP status>, "message", "details"}`.
//!
//! Wrapped blobs are Arca's own format (Arca keeps nothing per key, as the reference asks):
//! `format (1) || key version (4, big-endian) || perimeter length (1) || perimeter_id ||
//! IV (12) || tag (16) || ciphertext`, the associated data binding the format, the
//! perimeter and (for a data encryption key) the resource name. Format 1 (before the
//! perimeter was kept) has no perimeter and the resource name alone as associated data.
//!
//! [`Service::authenticate_cse`]: arca_service::Service::authenticate_cse
//! [`Service::authorize_cse`]: arca_service::Service::authorize_cse
//! [`Service::authenticate_cse_privileged`]: arca_service::Service::authenticate_cse_privileged
//! [`Service::kacls_unwrap_use`]: arca_service::Service::kacls_unwrap_use

use std::sync::Arc;

use arca_core::cipher::RawMode;
use arca_core::{Action, Error};
use arca_crypto::digest_sign::{DigestHash, DigestSignScheme, OaepHash, RsaKeyTransport};
use arca_service::api::{Bytes, RawCipher, RawDecryptRequest, RawEncryptRequest, Secret};
use arca_service::delegated::{CseCheck, CseGrant, DelegatedAccess, CSE_MAX_RESOURCE_BYTES};
use arca_service::kacls::{KaclsOutput, KaclsUse};
use arca_service::{Caller, Door, RequestMeta};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::config::CseConfig;
use crate::rest::{meta_of, status_of, AppState, JsonBody};

type App = Arc<AppState>;
type Parts = axum::http::request::Parts;

/// The origin of Google's CSE clients, which the reference says a KACLS must allow.
pub const GOOGLE_ORIGIN: &str = "https://client-side-encryption.google.com";
/// The largest data encryption key `wrap` takes (the reference's limit).
pub const MAX_DEK: usize = 128;
/// The longest `reason` (the reference's limit: 1 KB).
pub const MAX_REASON: usize = 1024;
/// The largest wrapped private key (the reference's limit: 8 KB).
pub const MAX_WRAPPED_PRIVATE_KEY: usize = 8 * 1024;
/// The largest encrypted data encryption key `privatekeydecrypt` takes (1 KB).
pub const MAX_ENCRYPTED_DEK: usize = 1024;
/// The largest digest `privatekeysign` takes (128 bytes).
pub const MAX_DIGEST: usize = 128;

const DEK_V1: u8 = 1;
const DEK_V2: u8 = 2;
const PRIVATE_KEY_V1: u8 = 3;
/// The prefix of the associated data of every blob format after the first.
const AAD_DOMAIN: &[u8] = b"arca-kacls-";

/// The roles of Google's authorization token each method accepts.
const WRAP_ROLES: &[&str] = &["writer", "upgrader"];
const UNWRAP_ROLES: &[&str] = &["reader", "writer"];
const REWRAP_ROLES: &[&str] = &["migrator"];
const DIGEST_ROLES: &[&str] = &["migrator", "verifier", "reader", "writer"];
const DECRYPTER_ROLES: &[&str] = &["decrypter"];
const SIGNER_ROLES: &[&str] = &["signer"];
const DELEGATE_ROLES: &[&str] = &["reader", "writer"];

/// The `aud` of the delegated authentication tokens `delegate` issues (their `iss` is
/// `[cse] kacls_url`): the `[[service.jwt_issuers]]` entry that accepts them back names it.
pub const DELEGATED_AUDIENCE: &str = "kacls-delegated";

/// The KACLS routes under the prefix (none while the door is off; the privileged ones only
/// with `[cse.privileged]`).
pub fn routes(cfg: &CseConfig) -> Router<App> {
    if cfg.access.is_none() {
        return Router::new();
    }
    let p = &cfg.path_prefix;
    let mut r = Router::new()
        .route(&format!("{p}/status"), get(status).options(preflight))
        .route(&format!("{p}/wrap"), door(wrap))
        .route(&format!("{p}/unwrap"), door(unwrap))
        .route(&format!("{p}/rewrap"), door(rewrap))
        .route(&format!("{p}/digest"), door(digest))
        .route(&format!("{p}/privatekeydecrypt"), door(private_key_decrypt))
        .route(&format!("{p}/privatekeysign"), door(private_key_sign));
    if cfg.delegate_key.is_some() {
        r = r
            .route(&format!("{p}/delegate"), door(delegate))
            .route(&format!("{p}/jwks"), get(jwks).options(preflight));
    }
    if cfg.privileged.is_some() {
        r = r
            .route(&format!("{p}/privilegedwrap"), door(privileged_wrap))
            .route(&format!("{p}/privilegedunwrap"), door(privileged_unwrap))
            .route(
                &format!("{p}/privilegedprivatekeydecrypt"),
                door(privileged_private_key_decrypt),
            )
            .route(&format!("{p}/wrapprivatekey"), door(wrap_private_key));
    }
    r
}

/// A KACLS method as a route (`POST`, with the CORS preflight): `method` answers the JSON
/// or the error, which [`reply`] gives Google's shape.
fn door<F, Fut>(method: F) -> MethodRouter<App>
where
    F: Fn(App, Parts, JsonBody) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Value, Error>> + Send + 'static,
{
    post(
        move |State(app): State<App>, parts: Parts, raw: JsonBody| async move {
            reply(method(app, parts, raw).await)
        },
    )
    .options(preflight)
}

/// The methods this KACLS serves, as `status` lists them.
fn operations(cfg: &CseConfig) -> Vec<&'static str> {
    let mut ops = vec![
        "wrap",
        "unwrap",
        "rewrap",
        "digest",
        "privatekeydecrypt",
        "privatekeysign",
    ];
    if cfg.delegate_key.is_some() {
        ops.push("delegate");
    }
    if cfg.privileged.is_some() {
        ops.extend([
            "privilegedwrap",
            "privilegedunwrap",
            "privilegedprivatekeydecrypt",
            "wrapprivatekey",
        ]);
    }
    ops
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

fn reply(r: Result<Value, Error>) -> Response {
    match r {
        Ok(v) => cors(Json(v).into_response()),
        Err(e) => error(&e),
    }
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

/// `GET status`: what this KACLS is and which methods it serves. It carries no credential;
/// the service records it as the door principal's `QueryServer`, so the trail has every
/// call (and a door that could not act answers so).
async fn status(State(app): State<App>, parts: Parts) -> Response {
    let meta = Call::new(&app, &parts).meta;
    let recorded = match access(&app) {
        Ok(access) => app.svc.delegated_query(access, "cse", meta).await,
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        return error(&e);
    }
    cors(
        Json(json!({
            "server_type": "KACLS",
            "vendor_id": "Arca",
            "version": env!("CARGO_PKG_VERSION"),
            "name": "Arca KACLS",
            "operations_supported": operations(&app.cse),
        }))
        .into_response(),
    )
}

/// One request to the door: the state and what is known of the request before its tokens
/// (door `Cse`). Each step answers an [`Error`], which [`reply`] gives Google's shape, so
/// a handler states only its body, its roles and its operation.
struct Call<'a> {
    app: &'a AppState,
    meta: RequestMeta,
}

impl<'a> Call<'a> {
    fn new(app: &'a AppState, parts: &Parts) -> Self {
        let mut meta = meta_of(parts);
        meta.door = Door::Cse;
        Call { app, meta }
    }

    /// The body, parsed (a malformed one recorded as a refused `action`).
    async fn body<T: serde::de::DeserializeOwned>(
        &self,
        body: JsonBody,
        action: Action,
    ) -> Result<T, Error> {
        body.parse_or_error::<T>(self.app, &self.meta, action).await
    }

    /// Both tokens checked for one of `roles`: the caller (naming `reason`) and the grant.
    async fn authenticate(
        &self,
        authentication: &str,
        authorization: &str,
        roles: &[&str],
        reason: &str,
    ) -> Result<(Caller, CseGrant), Error> {
        self.authenticate_with(authentication, authorization, roles, reason, false)
            .await
    }

    /// [`Call::authenticate`], `issuing_delegation` for the `delegate` method.
    async fn authenticate_with(
        &self,
        authentication: &str,
        authorization: &str,
        roles: &[&str],
        reason: &str,
        issuing_delegation: bool,
    ) -> Result<(Caller, CseGrant), Error> {
        let access = access(self.app)?;
        let check = CseCheck {
            issuing_delegation,
            ..check(self.app, access, roles)
        };
        let (mut caller, grant) = self
            .app
            .svc
            .authenticate_cse(authentication, authorization, &check, self.meta.clone())
            .await?;
        caller.note_reason(reason);
        Ok((caller, grant))
    }

    /// Google's authorization token alone, for one of `roles` (`rewrap`, `digest`).
    async fn authorize(
        &self,
        authorization: &str,
        roles: &[&str],
        reason: &str,
    ) -> Result<(Caller, CseGrant), Error> {
        let access = access(self.app)?;
        let check = check(self.app, access, roles);
        let (mut caller, grant) = self
            .app
            .svc
            .authorize_cse(authorization, &check, self.meta.clone())
            .await?;
        caller.note_reason(reason);
        Ok((caller, grant))
    }

    /// The identity provider's token alone, judged by `[cse.privileged]`.
    async fn privileged(
        &self,
        authentication: &str,
        resource_name: Option<&str>,
        reason: &str,
    ) -> Result<Caller, Error> {
        let access = self
            .app
            .cse
            .privileged
            .as_ref()
            .ok_or_else(|| Error::internal("a privileged method without [cse.privileged]"))?;
        let mut caller = self
            .app
            .svc
            .authenticate_cse_privileged(authentication, access, resource_name, self.meta.clone())
            .await?;
        caller.note_reason(reason);
        Ok(caller)
    }
}

fn access(app: &AppState) -> Result<&DelegatedAccess, Error> {
    app.cse
        .access
        .as_ref()
        .ok_or_else(|| Error::internal("the CSE door runs without access"))
}

fn check<'a>(app: &'a AppState, access: &'a DelegatedAccess, roles: &'a [&'a str]) -> CseCheck<'a> {
    CseCheck {
        access,
        authorization_issuers: &app.cse.authorization_issuers,
        kacls_url: &app.cse.kacls_url,
        roles,
        owner_domain: app.cse.owner_domain.as_deref(),
        delegate_issuer: app
            .cse
            .delegate_key
            .as_ref()
            .map(|_| app.cse.kacls_url.as_str()),
        issuing_delegation: false,
    }
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

fn check_perimeter(perimeter: &str) -> Result<(), Error> {
    if perimeter.len() > CSE_MAX_RESOURCE_BYTES {
        return Err(Error::invalid(
            "perimeter_id",
            format!("at most {CSE_MAX_RESOURCE_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// The associated data of a blob: a domain tag, the format, the perimeter and (for a data
/// encryption key) the resource. Format 1 binds the resource name alone.
fn aad(format: u8, perimeter: &str, resource: &str) -> Vec<u8> {
    if format == DEK_V1 {
        return resource.as_bytes().to_vec();
    }
    let tag: &[u8] = if format == PRIVATE_KEY_V1 {
        b"arca-kacls-private-key"
    } else {
        b"arca-kacls-dek"
    };
    debug_assert!(tag.starts_with(AAD_DOMAIN));
    let mut a = tag.to_vec();
    a.push(format);
    a.push(perimeter.len() as u8);
    a.extend_from_slice(perimeter.as_bytes());
    a.extend_from_slice(resource.as_bytes());
    a
}

/// A wrapped blob taken apart.
struct Blob {
    format: u8,
    version: u32,
    perimeter: String,
    iv: Vec<u8>,
    tag: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl Blob {
    /// `field`'s blob of one of `formats`, or why not.
    fn parse(field: &str, v: &str, formats: &[u8], max: usize) -> Result<Blob, Error> {
        let b = unb64(field, v)?;
        let bad = || Error::unprocessable(field, "not a key wrapped by this KACLS");
        if b.len() > max || b.is_empty() || !formats.contains(&b[0]) {
            return Err(bad());
        }
        let format = b[0];
        let mut at = 5;
        if b.len() < at {
            return Err(bad());
        }
        let version = u32::from_be_bytes([b[1], b[2], b[3], b[4]]);
        let mut perimeter = String::new();
        if format != DEK_V1 {
            let n = *b.get(5).ok_or_else(bad)? as usize;
            let p = b.get(6..6 + n).ok_or_else(bad)?;
            perimeter = String::from_utf8(p.to_vec()).map_err(|_| bad())?;
            at = 6 + n;
        }
        if b.len() < at + 12 + 16 + 1 {
            return Err(bad());
        }
        Ok(Blob {
            format,
            version,
            perimeter,
            iv: b[at..at + 12].to_vec(),
            tag: b[at + 12..at + 28].to_vec(),
            ciphertext: b[at + 28..].to_vec(),
        })
    }

    /// The raw decryption of this blob, for `resource` ("" for a private key). A format 1
    /// blob's associated data is the bare resource name, so a resource name that begins
    /// with the domain tag of the later formats is refused: otherwise a private key's or a
    /// perimeter-bound key's blob, re-laid out as format 1, would open under a resource name
    /// spelling out that blob's associated data.
    fn decrypt_request(self, resource: &str) -> Result<RawDecryptRequest, Error> {
        if self.format == DEK_V1 && resource.as_bytes().starts_with(AAD_DOMAIN) {
            return Err(Error::invalid(
                "resource_name",
                "a resource name may not begin with Arca's blob domain tag",
            ));
        }
        Ok(RawDecryptRequest {
            cipher: RawCipher::Aes(RawMode::Gcm),
            aad: aad(self.format, &self.perimeter, resource),
            iv: Some(self.iv),
            tag: Some(self.tag),
            data: Bytes(self.ciphertext),
            key_version: Some(self.version),
        })
    }
}

/// The perimeter a data encryption key was wrapped with: the blob's (format 2), else the
/// authorization token's (format 1 kept none).
fn blob_perimeter(blob: &Blob, token_perimeter: String) -> String {
    if blob.format == DEK_V1 {
        token_perimeter
    } else {
        blob.perimeter.clone()
    }
}

/// Wraps `secret` under the Arca key as a blob of `format` (an audited `Encrypt`);
/// `check` runs inside the operation first, so that its refusal is audited too.
async fn seal(
    app: &AppState,
    caller: &Caller,
    format: u8,
    perimeter: String,
    resource: String,
    secret: impl FnOnce() -> Result<Zeroizing<Vec<u8>>, Error> + Send,
) -> Result<String, Error> {
    let p = perimeter.clone();
    let e = app
        .svc
        .encrypt_raw_with(caller, &app.cse.key, move |_| {
            check_perimeter(&p)?;
            let data = secret()?;
            Ok(RawEncryptRequest {
                cipher: RawCipher::Aes(RawMode::Gcm),
                data: Secret::new(data),
                iv: None,
                aad: aad(format, &p, &resource),
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
    let mut blob = vec![format];
    blob.extend_from_slice(&e.key_version.to_be_bytes());
    blob.push(perimeter.len() as u8);
    blob.extend_from_slice(perimeter.as_bytes());
    blob.extend_from_slice(&iv);
    blob.extend_from_slice(&tag);
    blob.extend_from_slice(&e.data.0);
    Ok(b64().encode(blob))
}

/// A data encryption key from the body, checked.
fn dek_of(field: &str, v: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let dek = Zeroizing::new(unb64(field, v)?);
    if dek.is_empty() || dek.len() > MAX_DEK {
        return Err(Error::invalid(field, format!("1 to {MAX_DEK} bytes")));
    }
    Ok(dek)
}

/// Unwraps a data encryption key blob for `resource` (an audited `Decrypt`).
async fn open_dek(
    app: &AppState,
    caller: &Caller,
    wrapped: String,
    resource: String,
    reason: String,
) -> Result<(Secret, String), Error> {
    let mut perimeter = String::new();
    let p = &mut perimeter;
    let r = app
        .svc
        .decrypt_raw_with(caller, &app.cse.key, move |_| {
            check_reason(&reason)?;
            let b = Blob::parse("wrapped_key", &wrapped, &[DEK_V1, DEK_V2], 4096)?;
            *p = b.perimeter.clone();
            b.decrypt_request(&resource)
        })
        .await?;
    Ok((r.data, perimeter))
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

/// `POST wrap`: the DEK under the Arca key, bound to the resource and perimeter (role
/// `writer` or `upgrader`).
async fn wrap(app: App, parts: Parts, raw: JsonBody) -> Result<Value, Error> {
    let call = Call::new(&app, &parts);
    let b: WrapBody = call.body(raw, Action::Encrypt).await?;
    let (caller, grant) = call
        .authenticate(&b.authentication, &b.authorization, WRAP_ROLES, &b.reason)
        .await?;
    let perimeter = grant.perimeter_id.clone().unwrap_or_default();
    let w = seal(
        &app,
        &caller,
        DEK_V2,
        perimeter,
        grant.resource_name,
        move || {
            check_reason(&b.reason)?;
            dek_of("key", &b.key)
        },
    )
    .await?;
    Ok(json!({ "wrapped_key": w }))
}

/// `POST unwrap`: the DEK back, for the resource it was wrapped for (role `reader` or
/// `writer`).
async fn unwrap(app: App, parts: Parts, raw: JsonBody) -> Result<Value, Error> {
    let call = Call::new(&app, &parts);
    let b: UnwrapBody = call.body(raw, Action::Decrypt).await?;
    let (caller, grant) = call
        .authenticate(&b.authentication, &b.authorization, UNWRAP_ROLES, &b.reason)
        .await?;
    let (dek, _) = open_dek(&app, &caller, b.wrapped_key, grant.resource_name, b.reason).await?;
    Ok(json!({ "key": b64().encode(dek.expose()) }))
}

#[derive(Deserialize)]
struct RewrapBody {
    authorization: String,
    original_kacls_url: String,
    wrapped_key: String,
    #[serde(default)]
    reason: String,
}

/// `POST rewrap` (role `migrator`): a key wrapped by one of this service's KACLS URLs
/// (`rewrap_sources`), unwrapped and wrapped anew under the Arca key's current version;
/// answers the new blob and the key's resource key hash.
async fn rewrap(app: App, parts: Parts, raw: JsonBody) -> Result<Value, Error> {
    let call = Call::new(&app, &parts);
    let b: RewrapBody = call.body(raw, Action::Decrypt).await?;
    let (caller, grant) = call
        .authorize(&b.authorization, REWRAP_ROLES, &b.reason)
        .await?;
    let resource = grant.resource_name.clone();
    let opens = app.cse.opens_keys_of(&b.original_kacls_url);
    let (reason, wrapped) = (b.reason.clone(), b.wrapped_key);
    let token_perimeter = grant.perimeter_id.clone().unwrap_or_default();
    let mut perimeter = String::new();
    let kept = &mut perimeter;
    let out = app
        .svc
        .kacls_unwrap_use(&caller, &app.cse.key, move |_| {
            check_reason(&reason)?;
            if !opens {
                return Err(Error::invalid(
                    "original_kacls_url",
                    "not a KACLS URL of this service (cse.rewrap_sources)",
                ));
            }
            let blob = Blob::parse("wrapped_key", &wrapped, &[DEK_V1, DEK_V2], 4096)?;
            *kept = blob_perimeter(&blob, token_perimeter);
            let what = KaclsUse::KeyAndHash {
                resource_name: resource.clone(),
                perimeter_id: kept.clone(),
            };
            Ok((blob.decrypt_request(&resource)?, what))
        })
        .await?;
    let KaclsOutput::KeyAndHash(dek, hash) = out else {
        return Err(Error::internal("rewrap answered without the key"));
    };
    let w = seal(
        &app,
        &caller,
        DEK_V2,
        perimeter,
        grant.resource_name,
        move || Ok(dek.0),
    )
    .await?;
    Ok(json!({"wrapped_key": w, "resource_key_hash": b64().encode(hash)}))
}

#[derive(Deserialize)]
struct DigestBody {
    authorization: String,
    wrapped_key: String,
    #[serde(default)]
    reason: String,
}

/// `POST digest`: the resource key hash of a wrapped key, computed inside the service (the
/// key never leaves it).
async fn digest(app: App, parts: Parts, raw: JsonBody) -> Result<Value, Error> {
    let call = Call::new(&app, &parts);
    let b: DigestBody = call.body(raw, Action::Decrypt).await?;
    let (caller, grant) = call
        .authorize(&b.authorization, DIGEST_ROLES, &b.reason)
        .await?;
    let resource = grant.resource_name.clone();
    let token_perimeter = grant.perimeter_id.clone().unwrap_or_default();
    let (reason, wrapped) = (b.reason, b.wrapped_key);
    let out = app
        .svc
        .kacls_unwrap_use(&caller, &app.cse.key, move |_| {
            check_reason(&reason)?;
            let blob = Blob::parse("wrapped_key", &wrapped, &[DEK_V1, DEK_V2], 4096)?;
            let what = KaclsUse::ResourceKeyHash {
                resource_name: resource.clone(),
                perimeter_id: blob_perimeter(&blob, token_perimeter),
            };
            Ok((blob.decrypt_request(&resource)?, what))
        })
        .await?;
    match out {
        KaclsOutput::Hash(h) => Ok(json!({"resource_key_hash": b64().encode(h)})),
        _ => Err(Error::internal("digest answered without the hash")),
    }
}

#[derive(Deserialize)]
struct PrivilegedWrapBody {
    authentication: String,
    key: String,
    resource_name: String,
    #[serde(default)]
    perimeter_id: String,
    #[serde(default)]
    reason: String,
}

/// `POST privilegedwrap`: as `wrap`, for an administrator the `[cse.privileged]` rule
/// allows, with the resource named in the body (no authorization token).
async fn privileged_wrap(app: App, parts: Parts, raw: JsonBody) -> Result<Value, Error> {
    let call = Call::new(&app, &parts);
    let b: PrivilegedWrapBody = call.body(raw, Action::Encrypt).await?;
    let caller = call
        .privileged(&b.authentication, Some(&b.resource_name), &b.reason)
        .await?;
    let w = seal(
        &app,
        &caller,
        DEK_V2,
        b.perimeter_id,
        b.resource_name,
        move || {
            check_reason(&b.reason)?;
            dek_of("key", &b.key)
        },
    )
    .await?;
    Ok(json!({ "wrapped_key": w }))
}

#[derive(Deserialize)]
struct PrivilegedUnwrapBody {
    authentication: String,
    resource_name: String,
    wrapped_key: String,
    #[serde(default)]
    reason: String,
}

/// `POST privilegedunwrap`: the DEK of a wrapped key for an administrator the
/// `[cse.privileged]` rule allows (Google Takeout's exports), without the document's ACL;
/// the resource name must be the one the key was wrapped for.
async fn privileged_unwrap(app: App, parts: Parts, raw: JsonBody) -> Result<Value, Error> {
    let call = Call::new(&app, &parts);
    let b: PrivilegedUnwrapBody = call.body(raw, Action::Decrypt).await?;
    let caller = call
        .privileged(&b.authentication, Some(&b.resource_name), &b.reason)
        .await?;
    let (dek, perimeter) =
        open_dek(&app, &caller, b.wrapped_key, b.resource_name, b.reason).await?;
    Ok(json!({ "key": b64().encode(dek.expose()), "perimeter_id": perimeter }))
}

#[derive(Deserialize)]
struct WrapPrivateKeyBody {
    authentication: String,
    private_key: String,
    #[serde(default)]
    perimeter_id: String,
}

/// A private key as the body gives it: PEM (`PRIVATE KEY` or `RSA PRIVATE KEY`) or the
/// base64 of its DER; answered as PKCS #8 DER.
fn private_key_of(v: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let der = if v.trim_start().starts_with("-----BEGIN") {
        // Some clients send the PEM's line breaks escaped.
        let text = Zeroizing::new(v.replace("\\n", "\n"));
        let p = pem::parse(text.as_bytes())
            .map_err(|_| Error::invalid("private_key", "not a PEM private key"))?;
        Zeroizing::new(p.into_contents())
    } else {
        Zeroizing::new(unb64("private_key", v)?)
    };
    arca_crypto::digest_sign::rsa_private_key_pkcs8(&der)
}

/// `POST wrapprivatekey`: a user's RSA private key under the Arca key, for the Gmail
/// methods (an administrator the `[cse.privileged]` rule allows; Google never calls it).
async fn wrap_private_key(app: App, parts: Parts, raw: JsonBody) -> Result<Value, Error> {
    let call = Call::new(&app, &parts);
    let mut b: WrapPrivateKeyBody = call.body(raw, Action::Encrypt).await?;
    // Zeroized when dropped, whether or not the caller is admitted.
    let key = Zeroizing::new(std::mem::take(&mut b.private_key));
    let caller = call.privileged(&b.authentication, None, "").await?;
    let w = seal(
        &app,
        &caller,
        PRIVATE_KEY_V1,
        b.perimeter_id,
        String::new(),
        move || private_key_of(&key),
    )
    .await?;
    Ok(json!({ "wrapped_private_key": w }))
}

/// `RSA/ECB/PKCS1Padding` and `RSA/ECB/OAEPwithSHA-<n>andMGF1Padding` (Java's names, which
/// Gmail sends).
fn transport_of(algorithm: &str) -> Result<RsaKeyTransport, Error> {
    Ok(match algorithm.to_ascii_uppercase().as_str() {
        "RSA/ECB/PKCS1PADDING" => RsaKeyTransport::Pkcs1,
        "RSA/ECB/OAEPWITHSHA-1ANDMGF1PADDING" => RsaKeyTransport::Oaep(OaepHash::Sha1),
        "RSA/ECB/OAEPWITHSHA-256ANDMGF1PADDING" => RsaKeyTransport::Oaep(OaepHash::Sha256),
        "RSA/ECB/OAEPWITHSHA-384ANDMGF1PADDING" => RsaKeyTransport::Oaep(OaepHash::Sha384),
        "RSA/ECB/OAEPWITHSHA-512ANDMGF1PADDING" => RsaKeyTransport::Oaep(OaepHash::Sha512),
        _ => {
            return Err(Error::invalid(
                "algorithm",
                "one of RSA/ECB/PKCS1Padding, RSA/ECB/OAEPwithSHA-1andMGF1Padding, \
                 RSA/ECB/OAEPwithSHA-256andMGF1Padding (-384, -512)",
            ))
        }
    })
}

/// `SHA<n>withRSA` (PKCS #1 v1.5), `SHA<n>withRSA/PSS` and `RSASSA-PSS` (the hash told by
/// the digest's length), n one of 256, 384, 512; PSS's salt is `rsa_pss_salt_length`, else
/// the hash's length.
fn scheme_of(
    algorithm: &str,
    digest_len: usize,
    salt: Option<u32>,
) -> Result<DigestSignScheme, Error> {
    let a = algorithm.to_ascii_uppercase();
    let hash_named = |n: &str| match n {
        "SHA256" => Some(DigestHash::Sha256),
        "SHA384" => Some(DigestHash::Sha384),
        "SHA512" => Some(DigestHash::Sha512),
        _ => None,
    };
    let bad = || {
        Error::invalid(
            "algorithm",
            "one of SHA256withRSA, SHA384withRSA, SHA512withRSA, the same with /PSS, RSASSA-PSS",
        )
    };
    let pss = |h: DigestHash| DigestSignScheme::Pss(h, salt.unwrap_or(h.digest_len() as u32));
    if a == "RSASSA-PSS" {
        let h = match digest_len {
            32 => DigestHash::Sha256,
            48 => DigestHash::Sha384,
            64 => DigestHash::Sha512,
            _ => return Err(Error::invalid("digest", "a SHA-256, -384 or -512 digest")),
        };
        return Ok(pss(h));
    }
    let (name, is_pss) = match a.strip_suffix("/PSS") {
        Some(n) => (n, true),
        None => (a.as_str(), false),
    };
    let h = name
        .strip_suffix("WITHRSA")
        .and_then(hash_named)
        .ok_or_else(bad)?;
    Ok(if is_pss {
        pss(h)
    } else {
        DigestSignScheme::Pkcs1(h)
    })
}

/// The SHA-256 of the key pair an authorization names (`spki_hash`, standard base64, with
/// `spki_hash_algorithm` `SHA-256`).
fn spki_of(hash: Option<&str>, algorithm: Option<&str>) -> Result<Option<Vec<u8>>, Error> {
    let Some(h) = hash else {
        return Ok(None);
    };
    if !algorithm
        .unwrap_or("SHA-256")
        .eq_ignore_ascii_case("SHA-256")
    {
        return Err(Error::invalid(
            "spki_hash_algorithm",
            "SHA-256 is the one supported",
        ));
    }
    let h = unb64("spki_hash", h)?;
    if h.len() != 32 {
        return Err(Error::invalid("spki_hash", "a SHA-256 digest is 32 bytes"));
    }
    Ok(Some(h))
}

#[derive(Deserialize)]
struct PrivateKeyDecryptBody {
    authentication: String,
    authorization: String,
    algorithm: String,
    encrypted_data_encryption_key: String,
    #[serde(default)]
    rsa_oaep_label: Option<String>,
    wrapped_private_key: String,
    #[serde(default)]
    reason: String,
}

/// The private key decryption the body asks for, its fields checked.
fn decrypt_use(
    algorithm: &str,
    encrypted: &str,
    label: Option<&str>,
    spki_sha256: Option<Vec<u8>>,
) -> Result<KaclsUse, Error> {
    let transport = transport_of(algorithm)?;
    let ciphertext = unb64("encrypted_data_encryption_key", encrypted)?;
    if ciphertext.is_empty() || ciphertext.len() > MAX_ENCRYPTED_DEK {
        return Err(Error::invalid(
            "encrypted_data_encryption_key",
            format!("1 to {MAX_ENCRYPTED_DEK} bytes"),
        ));
    }
    let label = match (transport, label.filter(|l| !l.is_empty())) {
        (RsaKeyTransport::Oaep(_), Some(l)) => Some(unb64("rsa_oaep_label", l)?),
        _ => None,
    };
    Ok(KaclsUse::PrivateKeyDecrypt {
        transport,
        ciphertext,
        label,
        spki_sha256,
    })
}

/// The key pair a Gmail user's authorization token names: required, so that a token
/// authorizes one key pair, never whichever wrapped private key comes with it.
fn user_spki(grant: &CseGrant) -> Result<Option<Vec<u8>>, Error> {
    if grant.spki_hash.is_none() {
        return Err(Error::NotPermitted {
            message: "the authorization token names no key pair (spki_hash)".into(),
        });
    }
    spki_of(
        grant.spki_hash.as_deref(),
        grant.spki_hash_algorithm.as_deref(),
    )
}

/// Opens a wrapped private key (an audited `Decrypt` of the Arca key) and uses it as `what`
/// says; `what` checks the body's fields inside the operation.
async fn use_private_key(
    app: &AppState,
    caller: &Caller,
    wrapped_private_key: String,
    reason: String,
    what: impl FnOnce() -> Result<KaclsUse, Error> + Send,
) -> Result<KaclsOutput, Error> {
    app.svc
        .kacls_unwrap_use(caller, &app.cse.key, move |_| {
            check_reason(&reason)?;
            let blob = Blob::parse(
                "wrapped_private_key",
                &wrapped_private_key,
                &[PRIVATE_KEY_V1],
                MAX_WRAPPED_PRIVATE_KEY,
            )?;
            let what = what()?;
            Ok((blob.decrypt_request("")?, what))
        })
        .await
}

/// The data encryption key a private key decryption answered, as the reply's JSON.
fn dek_json(out: KaclsOutput) -> Result<Value, Error> {
    match out {
        KaclsOutput::Key(k) => Ok(json!({"data_encryption_key": b64().encode(k.expose())})),
        _ => Err(Error::internal("a private key decryption without its key")),
    }
}

/// `POST privatekeydecrypt` (Gmail, role `decrypter`): the data encryption key a message's
/// sender encrypted to the user's public key, decrypted inside the service with the user's
/// wrapped private key (the one the authorization token's `spki_hash` names).
async fn private_key_decrypt(app: App, parts: Parts, raw: JsonBody) -> Result<Value, Error> {
    let call = Call::new(&app, &parts);
    let b: PrivateKeyDecryptBody = call.body(raw, Action::Decrypt).await?;
    let (caller, grant) = call
        .authenticate(
            &b.authentication,
            &b.authorization,
            DECRYPTER_ROLES,
            &b.reason,
        )
        .await?;
    let out = use_private_key(&app, &caller, b.wrapped_private_key, b.reason, move || {
        let spki = user_spki(&grant)?;
        decrypt_use(
            &b.algorithm,
            &b.encrypted_data_encryption_key,
            b.rsa_oaep_label.as_deref(),
            spki,
        )
    })
    .await?;
    dek_json(out)
}

#[derive(Deserialize)]
struct PrivilegedPrivateKeyDecryptBody {
    authentication: String,
    algorithm: String,
    encrypted_data_encryption_key: String,
    #[serde(default)]
    rsa_oaep_label: Option<String>,
    #[serde(default)]
    spki_hash: Option<String>,
    #[serde(default)]
    spki_hash_algorithm: Option<String>,
    wrapped_private_key: String,
    #[serde(default)]
    reason: String,
}

/// `POST privilegedprivatekeydecrypt`: as `privatekeydecrypt` for an administrator the
/// `[cse.privileged]` rule allows (Gmail exports), the key pair named by the body's
/// `spki_hash`.
async fn privileged_private_key_decrypt(
    app: App,
    parts: Parts,
    raw: JsonBody,
) -> Result<Value, Error> {
    let call = Call::new(&app, &parts);
    let b: PrivilegedPrivateKeyDecryptBody = call.body(raw, Action::Decrypt).await?;
    let caller = call.privileged(&b.authentication, None, &b.reason).await?;
    let out = use_private_key(&app, &caller, b.wrapped_private_key, b.reason, move || {
        let spki = spki_of(b.spki_hash.as_deref(), b.spki_hash_algorithm.as_deref())?;
        decrypt_use(
            &b.algorithm,
            &b.encrypted_data_encryption_key,
            b.rsa_oaep_label.as_deref(),
            spki,
        )
    })
    .await?;
    dek_json(out)
}

#[derive(Deserialize)]
struct PrivateKeySignBody {
    authentication: String,
    authorization: String,
    algorithm: String,
    digest: String,
    #[serde(default)]
    rsa_pss_salt_length: Option<u32>,
    wrapped_private_key: String,
    #[serde(default)]
    reason: String,
}

/// `POST privatekeysign` (Gmail, role `signer`): the digest the client computed, signed
/// inside the service with the user's wrapped private key.
async fn private_key_sign(app: App, parts: Parts, raw: JsonBody) -> Result<Value, Error> {
    let call = Call::new(&app, &parts);
    let b: PrivateKeySignBody = call.body(raw, Action::Decrypt).await?;
    let (caller, grant) = call
        .authenticate(&b.authentication, &b.authorization, SIGNER_ROLES, &b.reason)
        .await?;
    let out = use_private_key(&app, &caller, b.wrapped_private_key, b.reason, move || {
        let spki = user_spki(&grant)?;
        let digest = unb64("digest", &b.digest)?;
        if digest.is_empty() || digest.len() > MAX_DIGEST {
            return Err(Error::invalid("digest", format!("1 to {MAX_DIGEST} bytes")));
        }
        let scheme = scheme_of(&b.algorithm, digest.len(), b.rsa_pss_salt_length)?;
        Ok(KaclsUse::PrivateKeySign {
            scheme,
            digest,
            spki_sha256: spki,
        })
    })
    .await?;
    match out {
        KaclsOutput::Signature(s) => Ok(json!({"signature": b64().encode(s)})),
        _ => Err(Error::internal("a signing without its signature")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names() {
        assert_eq!(
            transport_of("RSA/ECB/OAEPwithSHA-256andMGF1Padding").unwrap(),
            RsaKeyTransport::Oaep(OaepHash::Sha256)
        );
        assert_eq!(
            transport_of("RSA/ECB/PKCS1Padding").unwrap(),
            RsaKeyTransport::Pkcs1
        );
        assert!(transport_of("RSA/ECB/NoPadding").is_err());
        assert_eq!(
            scheme_of("SHA256withRSA", 32, None).unwrap(),
            DigestSignScheme::Pkcs1(DigestHash::Sha256)
        );
        assert_eq!(
            scheme_of("SHA384withRSA/PSS", 48, Some(20)).unwrap(),
            DigestSignScheme::Pss(DigestHash::Sha384, 20)
        );
        assert_eq!(
            scheme_of("RSASSA-PSS", 64, None).unwrap(),
            DigestSignScheme::Pss(DigestHash::Sha512, 64)
        );
        assert!(scheme_of("SHA1withRSA", 20, None).is_err());
        assert!(scheme_of("RSASSA-PSS", 20, None).is_err());
    }

    #[test]
    fn blobs_round_trip_their_layout() {
        let mut raw = vec![DEK_V2, 0, 0, 0, 7, 3];
        raw.extend_from_slice(b"per");
        raw.extend_from_slice(&[1u8; 12]);
        raw.extend_from_slice(&[2u8; 16]);
        raw.extend_from_slice(&[3u8; 5]);
        let b = Blob::parse("wrapped_key", &b64().encode(&raw), &[DEK_V2], 4096).unwrap();
        assert_eq!((b.version, b.perimeter.as_str()), (7, "per"));
        assert_eq!(b.ciphertext, vec![3u8; 5]);
        // A private key blob is not a data encryption key's, nor a truncated one anything.
        assert!(Blob::parse("wrapped_key", &b64().encode(&raw), &[PRIVATE_KEY_V1], 4096).is_err());
        assert!(Blob::parse("wrapped_key", &b64().encode(&raw[..20]), &[DEK_V2], 4096).is_err());
        // The associated data differs by format and perimeter.
        assert_ne!(aad(DEK_V2, "a", "r"), aad(PRIVATE_KEY_V1, "a", "r"));
        assert_ne!(aad(DEK_V2, "a", "r"), aad(DEK_V2, "", "ar"));
        // A private key's blob re-laid out as format 1 does not open under a resource name
        // that spells out its associated data.
        let mut v1 = vec![DEK_V1, 0, 0, 0, 7];
        v1.extend_from_slice(&[1u8; 12]);
        v1.extend_from_slice(&[2u8; 16]);
        v1.extend_from_slice(&[3u8; 5]);
        let forged = String::from_utf8(aad(PRIVATE_KEY_V1, "", "")).unwrap();
        let b = Blob::parse("wrapped_key", &b64().encode(&v1), &[DEK_V1], 4096).unwrap();
        assert!(b.decrypt_request(&forged).is_err());
        let b = Blob::parse("wrapped_key", &b64().encode(&v1), &[DEK_V1], 4096).unwrap();
        assert!(b.decrypt_request("drive/doc-1").is_ok());
    }
}

#[derive(Deserialize)]
struct DelegateBody {
    authentication: String,
    authorization: String,
    #[serde(default)]
    reason: String,
}

fn b64u(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// `POST delegate`: a delegated authentication token for the entity the authorization
/// token's `delegated_to` names, scoped to its `resource_name`, signed (EdDSA) by the
/// `[cse] delegate_key` Arca key as an audited `Sign` naming the user, the resource, the
/// delegate and the reason. It lasts `delegate_ttl_seconds` at most, never beyond the
/// tokens it was issued on; `<prefix>/jwks` publishes the key that verifies it.
async fn delegate(app: App, parts: Parts, raw: JsonBody) -> Result<Value, Error> {
    let call = Call::new(&app, &parts);
    let b: DelegateBody = call.body(raw, Action::Sign).await?;
    let (mut caller, grant) = call
        .authenticate_with(
            &b.authentication,
            &b.authorization,
            DELEGATE_ROLES,
            &b.reason,
            true,
        )
        .await?;
    if let Some(d) = &grant.delegated_to {
        caller.note("delegated_to", d.clone());
    }
    let Some(key) = app.cse.delegate_key.clone() else {
        return Err(Error::internal("delegate without [cse] delegate_key"));
    };
    let now = app.svc.now().timestamp();
    let mut exp = now + i64::from(app.cse.delegate_ttl_seconds);
    if let arca_service::Credential::Jwt(_, Some(until)) = &caller.credential {
        exp = exp.min(until.timestamp());
    }
    let claims = json!({
        "iss": app.cse.kacls_url,
        "aud": DELEGATED_AUDIENCE,
        "email": grant.email,
        "delegated_to": grant.delegated_to,
        "resource_name": grant.resource_name,
        "kacls_url": app.cse.kacls_url,
        "iat": now,
        "exp": exp,
    });
    let mut input = String::new();
    let signing_input = &mut input;
    let reason = b.reason;
    let sig = app
        .svc
        .sign_with(&caller, &key, move |k| {
            check_reason(&reason)?;
            if grant.delegated_to.is_none() {
                return Err(Error::invalid(
                    "authorization",
                    "names no delegated_to: there is no one to delegate to",
                ));
            }
            if k.spec != arca_core::model::KeySpec::Ed25519 {
                return Err(Error::unsuitable_key(
                    "cse.delegate_key must be an ED25519 key (tokens are signed EdDSA)",
                ));
            }
            let header = json!({"alg": "EdDSA", "typ": "JWT",
        "kid": format!("{}.{}", k.id, k.primary_version)});
            *signing_input = format!(
                "{}.{}",
                b64u(header.to_string().as_bytes()),
                b64u(claims.to_string().as_bytes())
            );
            Ok(arca_service::api::SignRequest {
                message: Secret::new(Zeroizing::new(signing_input.as_bytes().to_vec())),
                message_type: arca_core::model::MessageType::Raw,
                signing_algorithm: Some(arca_core::model::SigningAlgorithm::Ed25519Sha512),
                pss_salt: None,
            })
        })
        .await?;
    Ok(json!({"delegated_authentication": format!("{input}.{}", b64u(&sig.signature.0))}))
}

/// `GET jwks`: the public key that verifies this KACLS's delegated authentication tokens,
/// as a JWK set (the door principal's `GetPublicKey`, refused while the key may not sign).
async fn jwks(State(app): State<App>, parts: Parts) -> Response {
    let meta = Call::new(&app, &parts).meta;
    let (Some(access), Some(key)) = (app.cse.access.as_ref(), app.cse.delegate_key.as_ref()) else {
        return error(&Error::internal("jwks without [cse] delegate_key"));
    };
    let r = app
        .svc
        .delegated_public_key(access, key, "cse", meta)
        .await
        .and_then(|pk| {
            if pk.spec != arca_core::model::KeySpec::Ed25519 || pk.public_key.0.len() < 32 {
                return Err(Error::unsuitable_key(
                    "cse.delegate_key must be an ED25519 key",
                ));
            }
            // An Ed25519 SubjectPublicKeyInfo ends with the 32-byte public key.
            let x = &pk.public_key.0[pk.public_key.0.len() - 32..];
            Ok(
                json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                "kid": format!("{}.{}", pk.key_id, pk.key_version), "x": b64u(x)}]}),
            )
        });
    reply(r)
}
