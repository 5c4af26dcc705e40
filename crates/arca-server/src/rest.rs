//! The REST door: `/v1` over HTTPS. Each handler decodes, calls one service method, encodes.
//! Every rule lives in the service; the door only maps HTTP to it and errors back.
//!
//! This file holds the door's state, its errors and their mapping to HTTP, the router, the
//! OpenAPI document and the framing middleware every request goes through. The rest lives
//! beside it, by kind: the request extractors in `rest_extract` (re-exported here), the key
//! routes in `rest_keys`, the system routes in `rest_sys`, identity and access in
//! `rest_identity`, the audit trail in `rest_audit`.

use arca_core::Action;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arca_core::Error;
use arca_service::api::*;
use arca_service::{Door, RequestMeta, Service};
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

pub(crate) use crate::rest_extract::meta_of;
use crate::rest_extract::{cross_site_refusal, AuditedFlag, Started};
pub use crate::rest_extract::{Authed, ClientCert, JsonBody, PeerAddr, RequestId};

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
    /// The Microsoft DKE key service's keys (routes under its prefix when there are any).
    pub dke: crate::config::DkeConfig,
    /// The Google Workspace CSE key service (routes under its prefix when configured).
    pub cse: crate::config::CseConfig,
}

type App = Arc<AppState>;

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

/// An error answer made by the door itself, not by a service error (framing, a body too
/// large or unreadable, no route). `pub(crate)`: the body extractor in `rest_extract`
/// answers with it too.
pub(crate) fn error_response(
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

/// A body with no fields.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

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
    paths(crate::rest_keys::create_key, crate::rest_keys::list_keys, crate::rest_keys::describe_key, crate::rest_keys::update_key, crate::rest_keys::list_versions, crate::rest_keys::key_history, crate::rest_keys::rotate, crate::rest_keys::import_parameters, crate::rest_keys::import_material, crate::rest_keys::delete_imported_material, crate::rest_keys::export_wrapped, crate::rest_keys::key_lifecycle, crate::rest_keys::version_lifecycle,
        crate::rest_keys::encrypt, crate::rest_keys::decrypt_with, crate::rest_keys::decrypt_any, crate::rest_keys::re_encrypt, crate::rest_keys::gen_data_key, crate::rest_keys::gen_data_key_wo, crate::rest_keys::gen_pair, crate::rest_keys::gen_pair_wo, crate::rest_keys::sign, crate::rest_keys::verify, crate::rest_keys::gen_mac, crate::rest_keys::verify_mac,
        crate::rest_keys::encapsulate, crate::rest_keys::decapsulate, crate::rest_keys::public_key, crate::rest_keys::export, crate::rest_keys::random, crate::rest_sys::whoami, crate::rest_keys::list_aliases, crate::rest_keys::create_alias, crate::rest_keys::move_alias, crate::rest_keys::delete_alias, crate::rest_sys::healthz, crate::rest_sys::readyz, crate::rest_sys::metrics,
        crate::rest_sys::sys_status, crate::rest_sys::sys_unseal, crate::rest_sys::sys_seal, crate::rest_sys::sys_rekey, crate::rest_sys::sys_rekey_status, crate::rest_sys::sys_rekey_cancel, crate::rest_sys::sys_rekey_share, crate::rest_sys::sys_backup,
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
        crate::rest_audit::search, crate::rest_audit::export, crate::rest_audit::usage, crate::rest_audit::usage_series, crate::rest_audit::verify_trail, crate::rest_audit::public_key, crate::rest_audit::checkpoint, crate::rest_audit::archive, crate::rest_audit::segments, crate::rest_audit::prune, crate::rest_audit::receipts),
    components(schemas(ErrorBody, ErrorDetail, TransitionRequest, DeactivateRequest, ScheduleDestructionRequest, EmptyRequest)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The OpenAPI 3 document of this door, generated from the handlers of its modules and the
/// types they name.
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
    tracing::debug!(request_id = %rid, %method, path = %path, status = resp.status().as_u16(), peer = %peer, micros = started.elapsed().as_micros() as u64, "request");
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
        .route("/v1/openapi.json", get(openapi_json))
        .merge(crate::rest_keys::routes())
        .merge(crate::rest_sys::routes())
        .merge(crate::rest_identity::routes())
        .merge(crate::rest_audit::routes())
        .merge(crate::dke::routes(&state.dke))
        .merge(crate::cse::routes(&state.cse))
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
