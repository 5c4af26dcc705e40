//! The REST door's request extractors: who is calling ([`Authed`]), the body read within its
//! limit and parsed once the caller is known ([`JsonBody`]), what the accept loop and the
//! framing middleware put in a request's extensions ([`PeerAddr`], [`ClientCert`],
//! [`RequestId`]) and the [`RequestMeta`] made from them (`meta_of`), and the refusal of
//! cross-site changes authenticated by a client certificate. `crate::rest` re-exports the
//! public ones, so `crate::rest::Authed` and the like keep working.

use arca_core::Action;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arca_core::Error;
use arca_service::{Caller, Door, RequestMeta};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::{request::Parts, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::rest::{error_response, ApiError, AppState};

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

/// The authenticated caller of a request.
pub struct Authed(pub Caller);

/// The [`RequestMeta`] of a request, from what the accept loop and the framing middleware
/// put in its extensions. `pub(crate)`: handlers that read their body before anyone is
/// authenticated (unseal, rekey shares, session tokens, KMIP over HTTPS) build it themselves.
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
/// `pub(crate)`: the framing middleware in `crate::rest` sets it on each request and reads
/// it to audit a refusal no operation recorded.
#[derive(Clone)]
pub(crate) struct AuditedFlag(pub(crate) Arc<std::sync::atomic::AtomicBool>);

/// A state change authenticated only by what a browser attaches by itself (the TLS client
/// certificate; no `Authorization` header) must be sent as JSON and, when the client says
/// where it comes from, from this server's own origin. A page on another site can send
/// neither `Content-Type: application/json` without a CORS preflight (which this API never
/// grants) nor a false `Origin`, so this closes cross-site request forgery by certificate.
/// `pub(crate)`: the framing middleware in `crate::rest` applies it before any route.
pub(crate) fn cross_site_refusal(req: &Request) -> Option<Error> {
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
/// `pub(crate)`: the framing middleware in `crate::rest` sets it.
#[derive(Clone, Copy)]
pub(crate) struct Started(pub(crate) Instant);

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

    /// [`JsonBody::parse_anon`] for a door with an error shape of its own (Google CSE's):
    /// the refusal is recorded the same way and handed back as the service error.
    pub async fn parse_or_error<T: DeserializeOwned>(
        self,
        app: &AppState,
        meta: &RequestMeta,
        action: Action,
    ) -> Result<T, Error> {
        match self.parse_inner() {
            Ok(v) => Ok(v),
            Err((_, e)) => Err(app.svc.audit_refusal(meta, None, action, e).await),
        }
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

/// The first `quoted` name in a serde message (the unknown or missing field it reports at
/// the parent). `pub(crate)`: the lifecycle routes in `crate::rest_keys` name fields so too.
pub(crate) fn extract_quoted(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_string())
}
