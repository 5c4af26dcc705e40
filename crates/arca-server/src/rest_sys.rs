//! REST routes of the system: the caller's identity, seal status, unsealing and sealing,
//! backups, root-key rekeying, health, readiness, metrics and KMIP over HTTPS. Thin like the
//! rest of the door: decode, call one service method, encode.

use arca_core::Action;
use std::sync::Arc;

use arca_core::Error;
use arca_service::api::*;
use arca_service::custody::{
    RekeyRequest, RekeyShareRequest, RekeyStatus, SealStatus, UnsealRequest,
};
use arca_service::Door;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::rest::{meta_of, ApiError, AppState, Authed, ErrorBody, JsonBody};

type App = Arc<AppState>;

/// The caller's identity (an authenticated no-op). `include=actions` adds every action the
/// caller's roles cover, for a user interface; it is left out by default to keep the
/// no-op cheap.
#[utoipa::path(get, path = "/v1/whoami", tag = "auth",
    params(("include" = Option<String>, Query, description = "`actions`: list the actions the caller's roles cover")),
    responses((status = 200, body = WhoAmI), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn whoami(
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
pub async fn sys_status(State(app): State<App>) -> Result<Json<SealStatus>, ApiError> {
    Ok(Json(app.svc.seal_status().await?))
}

/// Submits one custodian's root-key share. The share is the credential; each submission is
/// audited with the custodian's name (never the share) and rate-limited per address.
#[utoipa::path(post, path = "/v1/sys/unseal", tag = "custody", request_body = UnsealRequest,
    responses((status = 200, body = SealStatus), (status = "4XX", body = ErrorBody)))]
pub async fn sys_unseal(
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
pub async fn sys_seal(
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
pub async fn sys_backup(
    State(app): State<App>,
    Authed(caller): Authed,
) -> Result<Response, ApiError> {
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
pub async fn sys_rekey(
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
pub async fn sys_rekey_status(State(app): State<App>) -> Result<Json<RekeyStatus>, ApiError> {
    Ok(Json(app.svc.rekey_status().await?))
}

/// Cancels the rekey in progress (system operators): the shares presented so far are
/// dropped and nothing changes.
#[utoipa::path(delete, path = "/v1/sys/rekey", tag = "custody",
    responses((status = 200, body = RekeyStatus), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn sys_rekey_cancel(
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
pub async fn sys_rekey_share(
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
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Prometheus metrics (text format 0.0.4): requests by door, operation and outcome with
/// latency histograms, keys by state, cache hits and misses, audit backlog and unsigned
/// tail, sealed. Needs a system operator's token unless `[metrics] unauthenticated`.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "text/plain", body = String), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn metrics(State(app): State<App>, req: Request) -> Response {
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
pub async fn kmip_https(State(app): State<App>, req: Request) -> Response {
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
pub async fn readyz(State(app): State<App>) -> Response {
    match app.svc.readiness().await {
        Ok(r) => Json(serde_json::json!({"status": "ready", "store": r.store, "root": r.root, "crypto": r.crypto})).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

/// The system routes.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
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
}
