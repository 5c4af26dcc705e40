//! The REST door: `/v1` over HTTPS. Each handler decodes, calls one service method, encodes.
//! Every rule lives in the service; this file only maps HTTP to it and errors back.

use arca_core::Action;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arca_core::Error;
use arca_service::api::*;
use arca_service::custody::{
    RekeyRequest, RekeyShareRequest, RekeyStatus, SealStatus, UnsealRequest,
};
use arca_service::{Caller, Door, LifecycleAction, RequestMeta, Service};
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{request::Parts, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// Shared state of the REST door.
pub struct AppState {
    pub svc: Arc<Service>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Serve `/metrics` without a credential.
    pub metrics_unauthenticated: bool,
    /// The data directory (backups are staged there before they are sent).
    pub data_dir: std::path::PathBuf,
    /// Serve the web console under `/ui/`.
    pub console: bool,
    /// The HTTPS listener asks for client certificates (`tls.client_ca` is set), so the
    /// console may offer to sign in with one.
    pub client_certificates: bool,
}

type App = Arc<AppState>;

/// The peer address of a connection, put in each request's extensions by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The verified client certificate of a connection, put in each request's extensions by
/// the accept loop.
#[derive(Debug, Clone)]
pub struct ClientCert(pub Arc<arca_core::access::CertInfo>);

/// The request id, from `X-Request-Id` when the client sent a sane one, else generated.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The error body: `{"error": {"code", "message", "field"}}`.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `invalid_input`, `not_found`, `wrong_state`, ...
    pub code: String,
    /// What happened and why, for people.
    pub message: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
    /// With `needs_approval`: the approval request that was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_request_id: Option<String>,
}

fn error_response(
    status: StatusCode,
    code: &str,
    message: String,
    field: Option<String>,
) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message,
            field,
            approval_request_id: None,
        },
    };
    (status, Json(body)).into_response()
}

/// A service error on its way to becoming an HTTP response. The one place where the
/// domain's errors meet HTTP status codes.
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// The HTTP status of each service error.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::InvalidInput { .. } => StatusCode::BAD_REQUEST,
        Error::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::WrongState { .. } | Error::Conflict { .. } => StatusCode::CONFLICT,
        Error::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        Error::NotPermitted { .. } => StatusCode::FORBIDDEN,
        // Accepted, not done: the operation waits for its approvers.
        Error::NeedsApproval { .. } => StatusCode::ACCEPTED,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Sealed | Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = status_of(&e);
        let message = match &e {
            Error::Internal { .. } => {
                "internal error; the request id identifies it in the server log".to_string()
            }
            other => other.to_string(),
        };
        let mut r = match &e {
            Error::NeedsApproval { request_id, .. } => (
                status,
                Json(ErrorBody {
                    error: ErrorDetail {
                        code: e.code().into(),
                        message,
                        field: None,
                        approval_request_id: Some(request_id.clone()),
                    },
                }),
            )
                .into_response(),
            _ => error_response(status, e.code(), message, e.field().map(str::to_string)),
        };
        match &e {
            Error::Unauthenticated { .. } => {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"arca\""),
                );
            }
            Error::RateLimited { retry_after_secs } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            _ => {}
        }
        r
    }
}

/// The authenticated caller of a request.
pub struct Authed(pub Caller);

pub(crate) fn meta_of(parts: &Parts) -> RequestMeta {
    RequestMeta {
        client_cert: parts.extensions.get::<ClientCert>().map(|c| c.0.clone()),
        request_id: parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default(),
        source: parts
            .extensions
            .get::<PeerAddr>()
            .map(|p| p.0.ip().to_string())
            .unwrap_or_else(|| "unknown".into()),
        door: Door::Rest,
        started: parts
            .extensions
            .get::<Started>()
            .map(|s| s.0)
            .unwrap_or_else(Instant::now),
        audited: parts
            .extensions
            .get::<AuditedFlag>()
            .map(|a| a.0.clone())
            .unwrap_or_default(),
    }
}

/// The request's "recorded in the audit trail" flag, shared with its [`RequestMeta`].
#[derive(Clone)]
struct AuditedFlag(Arc<std::sync::atomic::AtomicBool>);

/// A state change authenticated only by what a browser attaches by itself (the TLS client
/// certificate; no `Authorization` header) must be sent as JSON and, when the client says
/// where it comes from, from this server's own origin. A page on another site can send
/// neither `Content-Type: application/json` without a CORS preflight (which this API never
/// grants) nor a false `Origin`, so this closes cross-site request forgery by certificate.
fn cross_site_refusal(req: &Request) -> Option<Error> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || req.headers().contains_key(header::AUTHORIZATION)
        || req.extensions().get::<ClientCert>().is_none()
    {
        return None;
    }
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    // KMIP over HTTPS carries TTLV (application/octet-stream): any type a page cannot send
    // without a preflight will do there; the JSON API wants JSON.
    let ok = if req.uri().path() == "/kmip" {
        mime.as_deref().is_some_and(|m| {
            !matches!(
                m,
                "" | "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
            )
        })
    } else {
        mime.as_deref() == Some("application/json")
    };
    if !ok {
        return Some(Error::NotPermitted {
            message: "a change authenticated by a client certificate must be sent with Content-Type: application/json (application/octet-stream for /kmip) (field content-type)".into(),
        });
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let same = host.as_deref().is_some_and(|h| {
            origin
                .to_str()
                .is_ok_and(|o| o.eq_ignore_ascii_case(&format!("https://{h}")))
        });
        if !same {
            return Some(Error::NotPermitted {
                message: "a change authenticated by a client certificate must come from this server's own origin (field origin)".into(),
            });
        }
    }
    if let Some(site) = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        if site != "same-origin" && site != "none" {
            return Some(Error::NotPermitted {
                message: format!("a change authenticated by a client certificate must come from this server's own pages, not a {site} one (field sec-fetch-site)"),
            });
        }
    }
    None
}

/// When the request arrived (set by the frame middleware, read for the latency metric).
#[derive(Clone, Copy)]
struct Started(Instant);

impl FromRequestParts<App> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let meta = meta_of(parts);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        match token {
            Some(t) => Ok(Authed(app.svc.authenticate(t, meta).await?)),
            None if meta.client_cert.is_some() => {
                Ok(Authed(app.svc.authenticate_certificate(meta).await?))
            }
            None => {
                let e = Error::Unauthenticated {
                    message: "send a credential: `Authorization: Bearer <API token, session token or JWT>` or a client certificate".into(),
                };
                Err(ApiError(
                    app.svc
                        .audit_refusal(&meta, None, Action::Authenticate, e)
                        .await,
                ))
            }
        }
    }
}

/// A request body, read within the size limit, parsed once the caller is known so that a
/// malformed body is audited against the caller who sent it.
pub struct JsonBody {
    content_type: Option<String>,
    bytes: axum::body::Bytes,
}

impl FromRequest<App> for JsonBody {
    type Rejection = Response;

    async fn from_request(req: Request, app: &App) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let limit = app.max_body_bytes;
        let mut body = req.into_body();
        let mut buf: Vec<u8> = Vec::new();
        let mut over = false;
        let mut drained = 0usize;
        let read = async {
            while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
                let Ok(data) = frame?.into_data() else {
                    continue;
                };
                if over {
                    // Read (and drop) what the client is still sending, up to a bound, so that
                    // it receives the 413 instead of a reset connection.
                    drained += data.len();
                    if drained > DRAIN_LIMIT {
                        break;
                    }
                } else if buf.len() + data.len() > limit {
                    over = true;
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(&data);
                }
            }
            Ok::<(), axum::Error>(())
        };
        let outcome = tokio::time::timeout(DRAIN_TIME, read).await;
        if over {
            return Err(error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body is larger than {limit} bytes"),
                None,
            ));
        }
        match outcome {
            Ok(Ok(())) => Ok(JsonBody {
                content_type,
                bytes: axum::body::Bytes::from(buf),
            }),
            _ => Err(error_response(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                "the request body could not be read".into(),
                None,
            )),
        }
    }
}

/// How much of an oversize body is read and dropped before answering 413.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;
/// How long reading a body (and draining an oversize one) may take.
const DRAIN_TIME: Duration = Duration::from_secs(20);

impl JsonBody {
    /// Parses the body as `T`: an empty body is `{}`; anything else must be
    /// `application/json` and match `T` exactly (unknown fields are refused).
    pub async fn parse<T: DeserializeOwned>(
        self,
        app: &AppState,
        caller: &Caller,
        action: Action,
    ) -> Result<T, Response> {
        self.parse_for(app, &caller.meta, Some(&caller.principal), action)
            .await
    }

    /// [`JsonBody::parse`] for a request that has no authenticated caller (yet).
    pub async fn parse_anon<T: DeserializeOwned>(
        self,
        app: &AppState,
        meta: &RequestMeta,
        action: Action,
    ) -> Result<T, Response> {
        self.parse_for(app, meta, None, action).await
    }

    async fn parse_for<T: DeserializeOwned>(
        self,
        app: &AppState,
        meta: &RequestMeta,
        principal: Option<&arca_core::model::Principal>,
        action: Action,
    ) -> Result<T, Response> {
        match self.parse_inner() {
            Ok(v) => Ok(v),
            Err((status, e)) => {
                let e = app.svc.audit_refusal(meta, principal, action, e).await;
                if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    Err(error_response(
                        status,
                        "unsupported_media_type",
                        e.to_string(),
                        None,
                    ))
                } else {
                    Err(ApiError(e).into_response())
                }
            }
        }
    }

    fn parse_inner<T: DeserializeOwned>(&self) -> Result<T, (StatusCode, Error)> {
        let bytes: &[u8] = if self.bytes.iter().all(|b| b.is_ascii_whitespace()) {
            b"{}"
        } else {
            &self.bytes
        };
        if bytes != b"{}" {
            let ok = self.content_type.as_deref().is_some_and(|ct| {
                let mime = ct
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
            if !ok {
                return Err((
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    Error::invalid(
                        "content-type",
                        "the body must be JSON, sent with Content-Type: application/json",
                    ),
                ));
            }
        }
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let msg = inner.to_string();
            let field = if path == "." || path.is_empty() {
                // serde reports unknown and missing fields at the parent; name them anyway.
                extract_quoted(&msg).unwrap_or_else(|| "body".into())
            } else {
                path
            };
            (StatusCode::BAD_REQUEST, Error::invalid(field, msg))
        })?;
        // One JSON value per body: `{"name":"a"}{"name":"b"}` is refused, not half-read.
        de.end().map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                Error::invalid("body", "the body holds more than one JSON value"),
            )
        })?;
        Ok(value)
    }
}

fn extract_quoted(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_string())
}

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
        async fn $fn(
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
async fn encapsulate(
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

/// A body with no fields.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

/// Creates a key (generated, or imported with `material`).
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKeyRequest,
    responses((status = 201, body = KeyInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
async fn create_key(
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
async fn list_keys(
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
async fn describe_key(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(key): Path<String>,
) -> Result<Json<KeyInfo>, ApiError> {
    Ok(Json(app.svc.describe_key(&caller, &key).await?))
}

/// A key's versions.
#[utoipa::path(get, path = "/v1/keys/{key}/versions", tag = "keys", params(("key" = String, Path, description = "key id, name or alias")),
    responses((status = 200, body = Vec<VersionInfo>), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
async fn list_versions(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(key): Path<String>,
) -> Result<Json<Vec<VersionInfo>>, ApiError> {
    Ok(Json(app.svc.describe_key(&caller, &key).await?.versions))
}

/// A key's history: transitions, rotations, changes, with actor, reason and time.
#[utoipa::path(get, path = "/v1/keys/{key}/history", tag = "keys", params(("key" = String, Path, description = "key id, name or alias")),
    responses((status = 200, body = KeyHistory), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
async fn key_history(
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
async fn public_key(
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
async fn key_lifecycle(
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
async fn version_lifecycle(
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
async fn decrypt_any(
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
async fn random(
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
async fn list_aliases(
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
async fn create_alias(
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
async fn move_alias(
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
async fn delete_alias(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(alias): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.svc.delete_alias(&caller, &alias).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's identity (an authenticated no-op). `include=actions` adds every action the
/// caller's roles cover, for a user interface; it is left out by default to keep the
/// no-op cheap.
#[utoipa::path(get, path = "/v1/whoami", tag = "auth",
    params(("include" = Option<String>, Query, description = "`actions`: list the actions the caller's roles cover")),
    responses((status = 200, body = WhoAmI), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
async fn whoami(
    State(app): State<App>,
    Authed(caller): Authed,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Result<Json<WhoAmI>, Response> {
    let mut actions = false;
    for (_, v) in
        crate::rest_identity::query(&app, &caller, Action::WhoAmI, q, &["include"]).await?
    {
        if v != "actions" {
            let e = Error::invalid("include", format!("{v:?} is not actions"));
            return Err(ApiError(
                app.svc
                    .audit_refusal(&caller.meta, Some(&caller.principal), Action::WhoAmI, e)
                    .await,
            )
            .into_response());
        }
        actions = true;
    }
    app.svc
        .whoami(&caller, actions)
        .await
        .map(Json)
        .map_err(|e| ApiError(e).into_response())
}

/// Seal status: sealed or not, custody mode, unseal progress. No credential needed.
#[utoipa::path(get, path = "/v1/sys/status", tag = "custody", responses((status = 200, body = SealStatus)))]
async fn sys_status(State(app): State<App>) -> Result<Json<SealStatus>, ApiError> {
    Ok(Json(app.svc.seal_status().await?))
}

/// Submits one custodian's root-key share. The share is the credential; each submission is
/// audited with the custodian's name (never the share) and rate-limited per address.
#[utoipa::path(post, path = "/v1/sys/unseal", tag = "custody", request_body = UnsealRequest,
    responses((status = 200, body = SealStatus), (status = "4XX", body = ErrorBody)))]
async fn sys_unseal(
    State(app): State<App>,
    req: axum::extract::Request,
) -> Result<Json<SealStatus>, Response> {
    let (parts, body) = req.into_parts();
    let meta = meta_of(&parts);
    let body = JsonBody::from_request(Request::from_parts(parts, body), &app).await?;
    let r: UnsealRequest = body.parse_anon(&app, &meta, Action::Unseal).await?;
    app.svc
        .submit_share(&meta, r)
        .await
        .map(Json)
        .map_err(|e| ApiError(e).into_response())
}

/// Seals the server (system operators): the root key and everything unwrapped with it
/// leave memory until the custodians unseal again.
#[utoipa::path(post, path = "/v1/sys/seal", tag = "custody",
    responses((status = 200, body = SealStatus), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
async fn sys_seal(
    State(app): State<App>,
    Authed(caller): Authed,
) -> Result<Json<SealStatus>, ApiError> {
    Ok(Json(app.svc.seal_server(&caller).await?))
}

/// A backup of the whole store (system operators): a consistent snapshot, encrypted under
/// a key that only this server's custody recovers. The body is the backup file
/// (`application/octet-stream`, with its length); `arca backup` saves it.
#[utoipa::path(post, path = "/v1/sys/backup", tag = "custody",
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
async fn sys_backup(State(app): State<App>, Authed(caller): Authed) -> Result<Response, ApiError> {
    let dir = app.data_dir.join("backups");
    std::fs::create_dir_all(&dir).map_err(|e| Error::Unavailable {
        message: format!("cannot create {}: {e}", dir.display()),
    })?;
    // Staged in the data directory (whose files hold nothing unwrapped) and removed once
    // sent; the snapshot itself is one read transaction, so writers are not held up.
    let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(|e| Error::Unavailable {
        message: format!("cannot create a file in {}: {e}", dir.display()),
    })?;
    let file = tmp.reopen().map_err(|e| Error::Unavailable {
        message: format!("cannot write the backup: {e}"),
    })?;
    app.svc
        .backup(&caller, std::io::BufWriter::new(file), &mut |_| {})
        .await?;
    let len = tmp
        .as_file()
        .metadata()
        .map(|m| m.len())
        .unwrap_or_default();
    let reader = tmp.reopen().map_err(|e| Error::Unavailable {
        message: format!("cannot read the backup: {e}"),
    })?;
    // The temporary file is unlinked now; the open handle keeps it readable until sent.
    drop(tmp);
    let stream = futures_util::stream::unfold(reader, |mut f| async move {
        let mut buf = vec![0u8; 256 * 1024];
        match std::io::Read::read(&mut f, &mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(len)),
        ],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// Starts a rekey (system operators): the new threshold (at least 2), the new custodians
/// with their RSA public keys, and whether to make a new root key (`rotate_root`). Nothing
/// changes until the current custodians present their threshold of shares
/// (`POST /v1/sys/rekey/share`); the answer is the attempt, with its nonce.
#[utoipa::path(post, path = "/v1/sys/rekey", tag = "custody", request_body = RekeyRequest,
    responses((status = 200, body = RekeyStatus), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
async fn sys_rekey(
    State(app): State<App>,
    Authed(caller): Authed,
    body: JsonBody,
) -> Result<Json<RekeyStatus>, Response> {
    let r: RekeyRequest = body.parse(&app, &caller, Action::StartRootRekey).await?;
    app.svc
        .start_rekey(&caller, r)
        .await
        .map(Json)
        .map_err(|e| ApiError(e).into_response())
}

/// Where rekeying stands: the plan and nonce of the attempt in progress, which current
/// custodians presented their shares (names only), and the encrypted new shares of the last
/// completed rekey. No credential needed: custodians check the plan before they approve.
#[utoipa::path(get, path = "/v1/sys/rekey", tag = "custody",
    responses((status = 200, body = RekeyStatus), (status = "4XX", body = ErrorBody)))]
async fn sys_rekey_status(State(app): State<App>) -> Result<Json<RekeyStatus>, ApiError> {
    Ok(Json(app.svc.rekey_status().await?))
}

/// Cancels the rekey in progress (system operators): the shares presented so far are
/// dropped and nothing changes.
#[utoipa::path(delete, path = "/v1/sys/rekey", tag = "custody",
    responses((status = 200, body = RekeyStatus), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
async fn sys_rekey_cancel(
    State(app): State<App>,
    Authed(caller): Authed,
) -> Result<Json<RekeyStatus>, ApiError> {
    Ok(Json(app.svc.cancel_rekey(&caller).await?))
}

/// One current custodian presents its share for the rekey in progress (`nonce`). The share
/// is the credential, as at unseal: no token; rate-limited per address; audited with the
/// custodian's name, never the share. The threshold-th valid share completes the rekey and
/// the answer carries the new shares, each encrypted to its custodian's key.
#[utoipa::path(post, path = "/v1/sys/rekey/share", tag = "custody", request_body = RekeyShareRequest,
    responses((status = 200, body = RekeyStatus), (status = "4XX", body = ErrorBody)))]
async fn sys_rekey_share(
    State(app): State<App>,
    req: axum::extract::Request,
) -> Result<Json<RekeyStatus>, Response> {
    let (parts, body) = req.into_parts();
    let meta = meta_of(&parts);
    let body = JsonBody::from_request(Request::from_parts(parts, body), &app).await?;
    let r: RekeyShareRequest = body
        .parse_anon(&app, &meta, Action::SubmitRootRekeyShare)
        .await?;
    app.svc
        .submit_rekey_share(&meta, r)
        .await
        .map(Json)
        .map_err(|e| ApiError(e).into_response())
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Object)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Prometheus metrics (text format 0.0.4): requests by door, operation and outcome with
/// latency histograms, keys by state, cache hits and misses, audit backlog and unsigned
/// tail, sealed. Needs a system operator's token unless `[metrics] unauthenticated`.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "text/plain", body = String), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
async fn metrics(State(app): State<App>, req: Request) -> Response {
    let body = if app.metrics_unauthenticated {
        app.svc.render_metrics().await
    } else {
        let (mut parts, _) = req.into_parts();
        let caller = match Authed::from_request_parts(&mut parts, &app).await {
            Ok(Authed(c)) => c,
            Err(e) => return e.into_response(),
        };
        match app.svc.read_metrics(&caller).await {
            Ok(b) => b,
            Err(e) => return ApiError(e).into_response(),
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// KMIP over HTTPS (KMIP Profiles, "HTTPS"): a TTLV request message as the body
/// (`application/octet-stream`), the TTLV response message as the reply. The client
/// authenticates by its TLS client certificate, exactly as on the KMIP port; the answer is
/// 200 whenever it is a KMIP response, failed operations included.
async fn kmip_https(State(app): State<App>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let mut meta = meta_of(&parts);
    meta.door = Door::Kmip;
    let body = match axum::body::to_bytes(body, app.max_body_bytes).await {
        Ok(b) => zeroize::Zeroizing::new(b.to_vec()),
        Err(_) => {
            return ApiError(Error::invalid(
                "body",
                format!("a KMIP message may be at most {} bytes", app.max_body_bytes),
            ))
            .into_response()
        }
    };
    let limits = arca_kmip::Limits {
        max_message: app.max_body_bytes,
        ..Default::default()
    };
    // One request per exchange: the certificate is resolved (for a refusal's record) at
    // most once for it.
    let peer = crate::kmip::Peer::default();
    let (resp, _) = crate::kmip::handle_bytes(&app.svc, meta, &peer, &body, &limits).await;
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        resp.to_vec(),
    )
        .into_response()
}

/// Readiness: unsealed and the store answers.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, body = Object), (status = 503, body = ErrorBody)))]
async fn readyz(State(app): State<App>) -> Response {
    match app.svc.readiness().await {
        Ok(r) => Json(serde_json::json!({"status": "ready", "store": r.store, "root": r.root, "crypto": r.crypto})).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("arca API token")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Arca KMS", description = "REST API of the Arca key management system. Binary fields are standard base64. Errors are {\"error\":{\"code\",\"message\",\"field\"}}."),
    paths(create_key, list_keys, describe_key, update_key, list_versions, key_history, rotate, import_parameters, import_material, delete_imported_material, export_wrapped, key_lifecycle, version_lifecycle,
        encrypt, decrypt_with, decrypt_any, re_encrypt, gen_data_key, gen_data_key_wo, gen_pair, gen_pair_wo, sign, verify, gen_mac, verify_mac,
        encapsulate, decapsulate, public_key, export, random, whoami, list_aliases, create_alias, move_alias, delete_alias, healthz, readyz, metrics,
        sys_status, sys_unseal, sys_seal, sys_rekey, sys_rekey_status, sys_rekey_cancel, sys_rekey_share, sys_backup,
        crate::rest_identity::token, crate::rest_identity::logout,
        crate::rest_identity::create_tenant, crate::rest_identity::list_tenants, crate::rest_identity::describe_tenant, crate::rest_identity::delete_tenant, crate::rest_identity::tenant_state,
        crate::rest_identity::list_trust, crate::rest_identity::add_trust, crate::rest_identity::withdraw_trust,
        crate::rest_identity::get_settings, crate::rest_identity::put_settings,
        crate::rest_identity::create_principal, crate::rest_identity::list_principals, crate::rest_identity::describe_principal, crate::rest_identity::update_principal,
        crate::rest_identity::create_token, crate::rest_identity::list_principal_tokens, crate::rest_identity::list_tokens, crate::rest_identity::revoke_token,
        crate::rest_identity::create_aws_credential, crate::rest_identity::list_principal_aws_credentials, crate::rest_identity::list_aws_credentials, crate::rest_identity::revoke_aws_credential,
        crate::rest_identity::create_binding, crate::rest_identity::list_bindings, crate::rest_identity::delete_binding,
        crate::rest_identity::get_policy, crate::rest_identity::put_policy, crate::rest_identity::policy_versions, crate::rest_identity::rollback_policy,
        crate::rest_identity::list_approvals, crate::rest_identity::describe_approval, crate::rest_identity::approval_action,
        crate::rest_audit::search, crate::rest_audit::export, crate::rest_audit::usage, crate::rest_audit::usage_series, crate::rest_audit::verify_trail, crate::rest_audit::public_key, crate::rest_audit::checkpoint, crate::rest_audit::receipts),
    components(schemas(ErrorBody, ErrorDetail, TransitionRequest, DeactivateRequest, ScheduleDestructionRequest, EmptyRequest)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The OpenAPI 3 document of this door, generated from the handlers and types above.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Request id, logging, sealed gate, `Accept` check, credentials-in-URL refusal, timeout.
async fn frame(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let rid = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(rid.clone()));
    req.extensions_mut().insert(Started(started));
    let audited = AuditedFlag(Arc::default());
    req.extensions_mut().insert(audited.clone());
    // What the audit record of a refusal made here (not by an operation) needs.
    let bearer = req.headers().get(header::AUTHORIZATION).cloned();
    let cert = req.extensions().get::<ClientCert>().map(|c| c.0.clone());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let peer = req
        .extensions()
        .get::<PeerAddr>()
        .map(|p| p.0.ip().to_string())
        .unwrap_or_default();

    let mut resp = 'resp: {
        if let Some(q) = req.uri().query() {
            for (k, _) in form_urlencoded::parse(q.as_bytes()) {
                let k = k.to_ascii_lowercase();
                if [
                    "token",
                    "access_token",
                    "api_key",
                    "apikey",
                    "password",
                    "secret",
                ]
                .contains(&k.as_str())
                {
                    break 'resp error_response(StatusCode::BAD_REQUEST, "invalid_input", format!("credentials must not be sent in the URL (query parameter {k:?}); use the Authorization header"), Some(k));
                }
            }
        }
        if let Some(accept) = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
        {
            let ok = accept.split(',').any(|a| {
                let m = a
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                m == "*/*" || m == "application/*" || m == "application/json" || m.is_empty()
            });
            // Scrapers and browsers ask for their own formats.
            if !ok && path != "/metrics" && !crate::console::is_console_path(&path) {
                break 'resp error_response(
                    StatusCode::NOT_ACCEPTABLE,
                    "not_acceptable",
                    "this API answers application/json only".into(),
                    Some("accept".into()),
                );
            }
        }
        if let Some(e) = cross_site_refusal(&req) {
            break 'resp ApiError(e).into_response();
        }
        if app.svc.is_sealed()
            && !matches!(
                path.as_str(),
                "/healthz" | "/readyz" | "/v1/sys/status" | "/v1/sys/unseal" | "/metrics"
            )
            && !crate::console::is_console_path(&path)
        {
            break 'resp ApiError(Error::Sealed).into_response();
        }
        // A backup takes as long as the store is large; everything else has a deadline.
        let limit = if path == "/v1/sys/backup" {
            Duration::from_secs(24 * 3600)
        } else {
            app.request_timeout
        };
        match tokio::time::timeout(limit, next.run(req)).await {
            Ok(r) => r,
            Err(_) => error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the request took too long".into(),
                None,
            ),
        }
    };
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && resp.headers().get(header::CONTENT_TYPE).is_none()
    {
        let allow = resp.headers().get(header::ALLOW).cloned();
        resp = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
            None,
        );
        if let Some(a) = allow {
            resp.headers_mut().insert(header::ALLOW, a);
        }
    }
    let status = resp.status();
    if (status.is_client_error() || status.is_server_error())
        && !audited.0.load(std::sync::atomic::Ordering::Relaxed)
    {
        audit_framing_refusal(
            &app, &rid, &peer, bearer, cert, audited, &method, &path, status,
        )
        .await;
    }
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    tracing::info!(request_id = %rid, %method, path = %path, status = resp.status().as_u16(), peer = %peer, micros = started.elapsed().as_micros() as u64, "request");
    resp
}

/// Records a refusal that no operation recorded (routing, framing, a body too large, a
/// request that took too long), naming the caller when its credential still says who it is.
#[allow(clippy::too_many_arguments)]
async fn audit_framing_refusal(
    app: &AppState,
    rid: &str,
    peer: &str,
    bearer: Option<HeaderValue>,
    cert: Option<Arc<arca_core::access::CertInfo>>,
    audited: AuditedFlag,
    method: &Method,
    path: &str,
    status: StatusCode,
) {
    let mut meta = RequestMeta::new(rid, peer, Door::Rest);
    meta.client_cert = cert;
    meta.audited = audited.0;
    let token = bearer.as_ref().and_then(|v| v.to_str().ok()).and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim)
    });
    let caller = match token {
        Some(t) => app.svc.authenticate(t, meta.clone()).await.ok(),
        None => None,
    };
    let principal = match caller {
        Some(c) => Some(c.principal),
        None if token.is_none() => app.svc.certificate_principal(&meta).await,
        None => None,
    };
    let what = format!("{method} {path}");
    let e = match status {
        StatusCode::NOT_FOUND => Error::not_found("route", what),
        StatusCode::METHOD_NOT_ALLOWED => {
            Error::invalid("method", format!("{method} is not allowed on {path}"))
        }
        StatusCode::NOT_ACCEPTABLE => Error::invalid("accept", "this API answers JSON only"),
        StatusCode::PAYLOAD_TOO_LARGE => Error::invalid("body", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            Error::invalid("content-type", "the body must be JSON")
        }
        StatusCode::FORBIDDEN => Error::NotPermitted {
            message: format!("{what} refused before any operation"),
        },
        StatusCode::SERVICE_UNAVAILABLE if app.svc.is_sealed() => Error::Sealed,
        s if s.is_server_error() => Error::Unavailable {
            message: format!("{what} answered {s}"),
        },
        s => Error::invalid("request", format!("{what} answered {s}")),
    };
    let mut detail = serde_json::Map::new();
    detail.insert("method".into(), method.as_str().into());
    detail.insert("path".into(), path.into());
    detail.insert("status".into(), status.as_u16().into());
    app.svc
        .audit_door_refusal(&meta, principal.as_deref(), Action::HttpRequest, detail, e)
        .await;
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {method} {}", uri.path()),
        None,
    )
}

/// The REST router.
pub fn router(state: App) -> Router {
    let console = if state.console {
        crate::console::routes()
    } else {
        Router::new()
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/openapi.json", get(openapi_json))
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
        .route("/v1/whoami", get(whoami))
        .route("/metrics", get(metrics))
        .route("/v1/sys/status", get(sys_status))
        .route("/v1/sys/unseal", post(sys_unseal))
        .route("/v1/sys/seal", post(sys_seal))
        .route(
            "/v1/sys/rekey",
            post(sys_rekey)
                .get(sys_rekey_status)
                .delete(sys_rekey_cancel),
        )
        .route("/v1/sys/rekey/share", post(sys_rekey_share))
        .route("/v1/sys/backup", post(sys_backup))
        .route("/kmip", post(kmip_https))
        .merge(crate::rest_identity::routes())
        .merge(crate::rest_audit::routes())
        .merge(console)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), frame))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one place where domain errors meet HTTP: every variant's status and headers.
    #[test]
    fn every_error_maps_to_its_status() {
        let cases: Vec<(Error, StatusCode)> = vec![
            (Error::not_found("key", "k"), StatusCode::NOT_FOUND),
            (Error::invalid("f", "m"), StatusCode::BAD_REQUEST),
            (
                Error::unprocessable("f", "m"),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                Error::WrongState {
                    operation: "o".into(),
                    target: "t".into(),
                    state: arca_core::model::KeyState::Active,
                    detail: None,
                },
                StatusCode::CONFLICT,
            ),
            (Error::conflict("c"), StatusCode::CONFLICT),
            (
                Error::Unauthenticated {
                    message: "m".into(),
                },
                StatusCode::UNAUTHORIZED,
            ),
            (
                Error::NotPermitted {
                    message: "m".into(),
                },
                StatusCode::FORBIDDEN,
            ),
            (
                Error::NeedsApproval {
                    message: "m".into(),
                    request_id: "r".into(),
                },
                StatusCode::ACCEPTED,
            ),
            (
                Error::RateLimited {
                    retry_after_secs: 7,
                },
                StatusCode::TOO_MANY_REQUESTS,
            ),
            (Error::Sealed, StatusCode::SERVICE_UNAVAILABLE),
            (
                Error::Unavailable {
                    message: "m".into(),
                },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                Error::internal("secret detail"),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (e, status) in cases {
            let code = e.code();
            let r = ApiError(e).into_response();
            assert_eq!(r.status(), status, "{code}");
            match status {
                StatusCode::UNAUTHORIZED => {
                    assert!(r.headers().contains_key(header::WWW_AUTHENTICATE))
                }
                StatusCode::TOO_MANY_REQUESTS => assert_eq!(r.headers()[header::RETRY_AFTER], "7"),
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn internal_errors_do_not_show_their_detail() {
        let r = ApiError(Error::internal("secret detail")).into_response();
        let body = http_body_util::BodyExt::collect(r.into_body())
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("secret detail"), "{text}");
        assert!(text.contains("\"internal\""), "{text}");
    }
}
