//! The cloud door: an HTTPS listener of its own that speaks
//! - the AWS KMS API (JSON 1.1, `POST /` with `X-Amz-Target: TrentService.<Operation>`), so
//!   that AWS SDKs and the `aws` CLI use Arca by changing only their endpoint ([`kms`]);
//! - the AWS KMS External Key Store proxy API under each configured path prefix, so that
//!   AWS KMS itself uses Arca keys ([`xks`]).
//!
//! Every request is authenticated by AWS Signature Version 4 with an access key pair that
//! Arca issued to one of its principals (`arca credentials create --aws`): service `kms` for
//! the first, `kms-xks-proxy` for the second. The listener reuses the HTTPS accept loop;
//! this module turns an HTTP request into a signed-request proof ([`sigv4`]), lets the
//! service authenticate it, and hands the body to the protocol.

pub mod kms;
pub mod policy;
pub mod sigv4;
pub mod xks;

use arca_core::Action;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arca_core::access::Door;
use arca_service::{RequestMeta, Service};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::rest::PeerAddr;
use kms::AwsError;

/// What the AWS door needs: the service, its region, the external key stores, the body
/// limit.
pub struct AwsDoor {
    pub svc: Arc<Service>,
    /// The region the door answers for: in ARNs, and the one SigV4 scopes must name.
    pub region: String,
    pub max_body_bytes: usize,
    /// The XKS stores: (path prefix, tenant name).
    pub xks: Vec<(String, String)>,
}

impl AwsDoor {
    /// The 12-digit account id a tenant has in ARNs: derived from the tenant id, so stable
    /// for the tenant's life and distinct between tenants.
    pub fn account_id(&self, tenant: uuid::Uuid) -> String {
        let mut b = [0u8; 8];
        b.copy_from_slice(&tenant.as_bytes()[..8]);
        format!("{:012}", u64::from_be_bytes(b) % 1_000_000_000_000)
    }
}

/// The door's router: everything goes to one handler, as AWS's JSON protocols route by
/// header, not by path.
pub fn router(door: Arc<AwsDoor>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(door)
}

fn answer(status: u16, content_type: &'static str, request_id: &str, body: Value) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        body.to_string(),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

const KMS_JSON: &str = "application/x-amz-json-1.1";
const XKS_JSON: &str = "application/json";

/// The error a response carries, kept beside it for the record of a refusal that no
/// operation recorded (the body is never read back).
#[derive(Clone)]
struct Answered {
    error: &'static str,
    message: String,
}

fn kms_error(request_id: &str, e: AwsError) -> Response {
    let answered = Answered {
        error: e.error,
        message: e.message.clone(),
    };
    let mut r = answer(
        e.status,
        KMS_JSON,
        request_id,
        serde_json::json!({"__type": e.error, "message": e.message}),
    );
    r.extensions_mut().insert(answered);
    r
}

fn xks_error(request_id: &str, e: xks::XksError) -> Response {
    let answered = Answered {
        error: e.name,
        message: e.message.clone(),
    };
    let mut r = answer(e.status, XKS_JSON, request_id, e.body());
    r.extensions_mut().insert(answered);
    r
}

/// A request read off the wire: its parts and its whole body, or why the body was not
/// read (it exceeds the limit).
struct Incoming {
    parts: axum::http::request::Parts,
    body: Result<axum::body::Bytes, String>,
    headers: Vec<(String, String)>,
}

async fn read(req: Request, limit: usize) -> Incoming {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(Body::new(body), limit)
        .await
        .map_err(|_| format!("the request body exceeds {limit} bytes"));
    let headers = parts
        .headers
        .iter()
        .filter_map(|(n, v)| {
            v.to_str()
                .ok()
                .map(|v| (n.as_str().to_string(), v.to_string()))
        })
        .collect();
    Incoming {
        parts,
        body,
        headers,
    }
}

/// Why a signed request was not authenticated, in the terms of the two protocols.
enum AuthFailure {
    /// The request's signature could not be checked (AWS's name for why).
    Shape(sigv4::Refusal),
    /// The service refused the credential or the signature.
    Refused(arca_core::Error),
}

/// SigV4 for `service` (and `region`, when the door pins one), then the service's check
/// of the signature. Refusals before the service are audited here; the service audits its.
async fn authenticate(
    door: &AwsDoor,
    incoming: &Incoming,
    body: &[u8],
    service: &str,
    region: Option<&str>,
    meta: RequestMeta,
) -> Result<arca_service::Caller, AuthFailure> {
    let signed = sigv4::SignedRequest {
        method: incoming.parts.method.as_str(),
        path: incoming.parts.uri.path(),
        query: incoming.parts.uri.query().unwrap_or(""),
        headers: &incoming.headers,
        body,
    };
    let proof = match sigv4::prove(
        &signed,
        &sigv4::Expect {
            service,
            region,
            now: door.svc.now(),
        },
    ) {
        Ok(p) => p,
        Err(r) => {
            door.svc
                .audit_refusal(
                    &meta,
                    None,
                    Action::Authenticate,
                    arca_core::Error::Unauthenticated {
                        message: r.message.clone(),
                    },
                )
                .await;
            return Err(AuthFailure::Shape(r));
        }
    };
    door.svc
        .authenticate_sigv4(&proof, meta)
        .await
        .map_err(AuthFailure::Refused)
}

/// Records a refusal the door made itself (the service records its own), against the
/// authenticated caller: every refused request is on the record.
async fn audit_refusal(
    door: &AwsDoor,
    caller: &arca_service::Caller,
    action: Action,
    name: &str,
    message: &str,
) {
    door.svc
        .audit_refusal(
            &caller.meta,
            Some(&caller.principal),
            action,
            arca_core::Error::invalid("request", format!("{name}: {message}")),
        )
        .await;
}

fn peer_of(parts: &axum::http::request::Parts) -> String {
    parts
        .extensions
        .get::<PeerAddr>()
        .map(|p| p.0.to_string())
        .unwrap_or_default()
}

/// Every request of the door passes here: after the protocol has answered, a refusal
/// that no operation recorded (a method or path the protocols do not know, a body over
/// the limit, an X-Amz-Target that names nothing) is recorded by [`audit_door_refusal`],
/// as REST's framing does, so that every request leaves a record.
async fn handle(State(door): State<Arc<AwsDoor>>, req: Request) -> Response {
    let audited: Arc<AtomicBool> = Arc::default();
    let incoming = read(req, door.max_body_bytes).await;
    let path = incoming.parts.uri.path().to_string();
    let (resp, which) = 'resp: {
        if let Some((tenant, rest)) = door.xks.iter().find_map(|(prefix, tenant)| {
            path.strip_prefix(prefix.as_str())
                .filter(|r| r.starts_with(xks::API_PATH))
                .map(|r| (tenant.clone(), r.to_string()))
        }) {
            break 'resp (
                handle_xks(&door, &tenant, &rest, &incoming, &audited).await,
                Door::Xks,
            );
        }
        let request_id = uuid::Uuid::now_v7().to_string();
        if path.contains(xks::API_PATH) {
            break 'resp (
                xks_error(
                    &request_id,
                    xks::XksError::new(
                        "InvalidUriPathException",
                        "no external key store is configured at this path prefix",
                    ),
                ),
                Door::Xks,
            );
        }
        if incoming.parts.method == axum::http::Method::GET && path == "/ping" {
            // For load balancers' health checks (the XKS spec asks for one apart from the API).
            break 'resp (
                answer(
                    200,
                    XKS_JSON,
                    &request_id,
                    serde_json::json!({"status": "ok"}),
                ),
                Door::Aws,
            );
        }
        (
            handle_kms(&door, request_id, &incoming, &audited).await,
            Door::Aws,
        )
    };
    let status = resp.status();
    if (status.is_client_error() || status.is_server_error()) && !audited.load(Ordering::Relaxed) {
        let request_id = resp
            .headers()
            .get("x-amzn-requestid")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let answered = resp.extensions().get::<Answered>().cloned();
        let seen = Seen {
            request_id,
            status,
            answered,
        };
        audit_door_refusal(&door, &incoming, which, audited, seen).await;
    }
    resp
}

/// What the door answered, as the record of a refusal needs it.
struct Seen {
    request_id: String,
    status: StatusCode,
    answered: Option<Answered>,
}

/// Records a refusal of the door that no operation recorded. The principal is named when
/// the request's signature verifies (the service checks it as for any request, so a bad
/// one is recorded as a failed authentication too); otherwise, and always when the body
/// was too large to read (the signature covers it), the record says `anonymous`. The
/// detail holds the method, the path, the status, the AWS error and the X-Amz-Target:
/// never the query, a header's credential, or the body.
async fn audit_door_refusal(
    door: &AwsDoor,
    incoming: &Incoming,
    which: Door,
    audited: Arc<AtomicBool>,
    seen: Seen,
) {
    let Seen {
        request_id,
        status,
        answered,
    } = seen;
    let mut meta = RequestMeta::new(request_id, peer_of(&incoming.parts), which);
    meta.audited = audited;
    let signed = incoming.parts.headers.contains_key("authorization");
    let principal = match (&incoming.body, signed) {
        (Ok(body), true) => {
            let (service, region) = match which {
                Door::Xks => ("kms-xks-proxy", None),
                _ => ("kms", Some(door.region.as_str())),
            };
            authenticate(door, incoming, body, service, region, meta.clone())
                .await
                .ok()
                .map(|c| c.principal)
        }
        _ => None,
    };
    let what = match &answered {
        Some(a) => format!("{}: {}", a.error, a.message),
        None => format!(
            "{} {} answered {status}",
            incoming.parts.method,
            incoming.parts.uri.path()
        ),
    };
    let e = match status.as_u16() {
        401 => arca_core::Error::Unauthenticated { message: what },
        403 => arca_core::Error::NotPermitted { message: what },
        s if s >= 500 => arca_core::Error::Unavailable { message: what },
        _ => arca_core::Error::invalid("request", what),
    };
    let mut detail = serde_json::Map::new();
    detail.insert("method".into(), incoming.parts.method.as_str().into());
    detail.insert("path".into(), incoming.parts.uri.path().into());
    detail.insert("status".into(), status.as_u16().into());
    if let Some(a) = &answered {
        detail.insert("aws_error".into(), a.error.into());
    }
    // The target names an operation, chosen by the client: kept only when it is short
    // printable text.
    if let Some(t) = incoming
        .parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .filter(|t| t.len() <= 128 && t.bytes().all(|b| b.is_ascii_graphic()))
    {
        detail.insert("target".into(), t.into());
    }
    let operation = match which {
        Door::Xks => Action::XksRequest,
        _ => Action::AwsRequest,
    };
    door.svc
        .audit_door_refusal(&meta, principal.as_deref(), operation, detail, e)
        .await;
}

async fn handle_kms(
    door: &AwsDoor,
    request_id: String,
    incoming: &Incoming,
    audited: &Arc<AtomicBool>,
) -> Response {
    let mut meta = RequestMeta::new(request_id.clone(), peer_of(&incoming.parts), Door::Aws);
    meta.audited = audited.clone();
    if incoming.parts.method != axum::http::Method::POST {
        return kms_error(
            &request_id,
            AwsError::new(
                "UnknownOperationException",
                "the AWS KMS API takes POST / with an X-Amz-Target header",
            ),
        );
    }
    let body = match &incoming.body {
        Ok(b) => b,
        Err(m) => return kms_error(&request_id, AwsError::new("ValidationException", m.clone())),
    };
    let caller = match authenticate(door, incoming, body, "kms", Some(&door.region), meta).await {
        Ok(c) => c,
        Err(AuthFailure::Shape(r)) => {
            return kms_error(&request_id, AwsError::new(r.error, r.message))
        }
        Err(AuthFailure::Refused(e)) => {
            let e = match e {
                arca_core::Error::Unauthenticated { message }
                    if message == arca_service::aws_auth::SIGNATURE_MISMATCH =>
                {
                    AwsError::new("InvalidSignatureException", message)
                }
                arca_core::Error::Unauthenticated { message } => {
                    AwsError::new("UnrecognizedClientException", message)
                }
                e => kms::map_error(e),
            };
            return kms_error(&request_id, e);
        }
    };
    let target = incoming
        .parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let result = match target.strip_prefix("TrentService.") {
        None => Err(AwsError::new(
            "UnknownOperationException",
            "X-Amz-Target must be TrentService.<Operation>",
        )),
        Some(op) => {
            let body: Result<Value, AwsError> = if body.is_empty() {
                Ok(Value::Object(Default::default()))
            } else {
                match serde_json::from_slice(body) {
                    Ok(v @ Value::Object(_)) => Ok(v),
                    _ => Err(AwsError::new(
                        "SerializationException",
                        "the body is not a JSON object",
                    )),
                }
            };
            match body {
                Ok(body) => {
                    let call = kms::Call {
                        door,
                        caller: &caller,
                    };
                    kms::dispatch(&call, op, &body).await
                }
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(v) => answer(200, KMS_JSON, &request_id, v),
        Err(e) => {
            if !e.audited {
                // The client names the operation: only a known action's name is trusted
                // into the trail's operation; anything else is an AwsRequest.
                let op = target
                    .strip_prefix("TrentService.")
                    .and_then(Action::parse)
                    .unwrap_or(Action::AwsRequest);
                audit_refusal(door, &caller, op, e.error, &e.message).await;
            }
            kms_error(&request_id, e)
        }
    }
}

/// The XKS operation's name as the audit trail calls refusals of it.
fn xks_action(route: &Result<xks::Route<'_>, xks::XksError>) -> Action {
    match route {
        Ok(xks::Route::Metadata(_)) => Action::DescribeKey,
        Ok(xks::Route::Encrypt(_)) => Action::Encrypt,
        Ok(xks::Route::Decrypt(_)) => Action::Decrypt,
        Ok(xks::Route::Health) => Action::QueryServer,
        Err(_) => Action::XksRequest,
    }
}

async fn handle_xks(
    door: &AwsDoor,
    tenant: &str,
    rest: &str,
    incoming: &Incoming,
    audited: &Arc<AtomicBool>,
) -> Response {
    let mut request_id = uuid::Uuid::now_v7().to_string();
    if incoming.parts.method != axum::http::Method::POST {
        let mut r = xks_error(
            &request_id,
            xks::XksError::new("ValidationException", "XKS proxy API calls are POST"),
        );
        *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        r.headers_mut()
            .insert("allow", HeaderValue::from_static("POST"));
        return r;
    }
    let peer = peer_of(&incoming.parts);
    let raw = match &incoming.body {
        Ok(b) => b,
        Err(m) => {
            return xks_error(
                &request_id,
                xks::XksError::new("UnsupportedOperationException", m.clone()),
            )
        }
    };
    let body: Option<Value> = serde_json::from_slice(raw).ok();
    let md: xks::RequestMetadata = body
        .as_ref()
        .and_then(|b| b.get("requestMetadata"))
        .and_then(|m| serde_json::from_value(m.clone()).ok())
        .unwrap_or_default();
    // AWS KMS's request id becomes the audit trail's, so the two logs join.
    if let Some(id) = md
        .kms_request_id
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
    {
        request_id = id.to_string();
    }
    let mut meta = RequestMeta::new(request_id.clone(), peer, Door::Xks);
    meta.audited = audited.clone();
    let caller = match authenticate(door, incoming, raw, "kms-xks-proxy", None, meta).await {
        Ok(c) => c,
        Err(AuthFailure::Shape(r)) => {
            return xks_error(
                &request_id,
                xks::XksError::new("AuthenticationFailedException", r.message),
            )
        }
        Err(AuthFailure::Refused(e)) => return xks_error(&request_id, xks::map_error(e)),
    };
    tracing::debug!(
        kms_request_id = md.kms_request_id.as_deref().unwrap_or(""),
        kms_operation = md.kms_operation.as_deref().unwrap_or(""),
        aws_principal_arn = md.aws_principal_arn.as_deref().unwrap_or(""),
        kms_key_arn = md.kms_key_arn.as_deref().unwrap_or(""),
        kms_via_service = md.kms_via_service.as_deref().unwrap_or(""),
        path = rest,
        "XKS request"
    );
    let route = xks::route(rest);
    let result = async {
        // A credential serves only its own tenant's store.
        let own = door
            .svc
            .caller_tenant_name(&caller)
            .await
            .map_err(xks::map_error)?;
        if own != tenant {
            return Err(xks::XksError::new(
                "AuthenticationFailedException",
                "this access key does not belong to this external key store",
            ));
        }
        let route = match &route {
            Ok(r) => r,
            Err(e) => return Err(xks::XksError::new(e.name, e.message.clone())),
        };
        let Some(body) = body.as_ref().filter(|b| b.is_object()) else {
            return Err(xks::XksError::new(
                "ValidationException",
                "the body is not a JSON object",
            ));
        };
        xks::dispatch(door, &caller, *route, body).await
    }
    .await;
    match result {
        Ok(v) => answer(200, XKS_JSON, &request_id, v),
        Err(e) => {
            if !e.audited {
                audit_refusal(door, &caller, xks_action(&route), e.name, &e.message).await;
            }
            xks_error(&request_id, e)
        }
    }
}
